//! Opening inputs (files, or stdin for `-`), detecting gzip by its magic bytes, and reading them
//! in large newline-aligned chunks that can be parsed independently and in parallel.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

/// One input as the user named it.
#[derive(Clone, Debug)]
pub enum InputSpec {
    Stdin,
    File(PathBuf),
}

impl InputSpec {
    /// `-` is stdin; anything else a file path.
    pub fn parse(s: &str) -> InputSpec {
        if s == "-" {
            InputSpec::Stdin
        } else {
            InputSpec::File(PathBuf::from(s))
        }
    }

    pub fn name(&self) -> String {
        match self {
            InputSpec::Stdin => "<stdin>".to_string(),
            InputSpec::File(p) => p.display().to_string(),
        }
    }

    /// Size on disk, when known (for the progress bar).
    pub fn size(&self) -> Option<u64> {
        match self {
            InputSpec::Stdin => None,
            InputSpec::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }
}

/// Counts bytes as they are read from the underlying file, before any decompression.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens an input; gzip (magic `1f 8b`) is decompressed transparently, concatenated members too;
/// damaged gzip (truncated, corrupt, trailing bytes) is bad input naming its byte offset.
/// `raw_read` is increased by the bytes read from the file or pipe itself.
pub fn open(spec: &InputSpec, raw_read: Arc<AtomicU64>) -> Result<Box<dyn Read + Send>> {
    let inner: Box<dyn Read + Send> = match spec {
        InputSpec::Stdin if stdin_is_pipe() => {
            enlarge_stdin_pipe();
            Box::new(Patient {
                inner: io::stdin(),
                short: false,
            })
        }
        InputSpec::Stdin => Box::new(io::stdin()),
        InputSpec::File(p) => {
            let f = File::open(p).map_err(|e| {
                let err =
                    anyhow::Error::new(e).context(format!("cannot open input {}", p.display()));
                if p.exists() {
                    err
                } else {
                    err.context(crate::exit_codes::BadInput(format!(
                        "no such input file: {}",
                        p.display()
                    )))
                }
            })?;
            Box::new(f)
        }
    };
    let mut r = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner,
            count: raw_read,
        },
    );
    let head = r
        .fill_buf()
        .with_context(|| format!("reading {}", spec.name()))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            GzMembers::new(r),
        )))
    } else {
        Ok(Box::new(r))
    }
}

/// A `BufRead` that counts the bytes its user consumed: the offset in the compressed input.
struct Consumed<R> {
    inner: R,
    pos: u64,
}

impl<R: BufRead> Read for Consumed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Consumed<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
        self.inner.consume(n);
    }
}

/// Gzip members one after another (as `cat a.gz b.gz` makes them). Unlike flate2's
/// `MultiGzDecoder` it tells a truncated or corrupt member, and bytes after the last member that
/// are not another one, from the end of the input, with the byte offset where it happened.
struct GzMembers<R: BufRead> {
    member: Option<flate2::bufread::GzDecoder<Consumed<R>>>,
}

impl<R: BufRead> GzMembers<R> {
    fn new(r: R) -> Self {
        let r = Consumed { inner: r, pos: 0 };
        GzMembers {
            member: Some(flate2::bufread::GzDecoder::new(r)),
        }
    }
}

/// An I/O error that carries [`BadInput`](crate::exit_codes::BadInput): exit code 2.
fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, crate::exit_codes::BadInput(msg))
}

impl<R: BufRead> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(dec) = self.member.as_mut() else {
                return Ok(0);
            };
            match dec.read(buf) {
                Ok(0) if !buf.is_empty() => {
                    let mut r = self.member.take().expect("checked above").into_inner();
                    let at = r.pos;
                    let rest = r.fill_buf()?;
                    if rest.is_empty() {
                        return Ok(0);
                    }
                    if !rest.starts_with(&[0x1f, 0x8b]) {
                        return Err(bad_data(format!(
                            "trailing bytes after the end of the gzip data, from byte {at}, are not gzip"
                        )));
                    }
                    self.member = Some(flate2::bufread::GzDecoder::new(r));
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
                Err(e) => {
                    let at = dec.get_ref().pos;
                    return Err(bad_data(format!(
                        "truncated or corrupt gzip data at byte {at}: {e}"
                    )));
                }
            }
        }
    }
}

/// When stdin is a pipe (`promtool tsdb dump | prom2om`), asks for a 1 MiB pipe buffer instead of
/// 64 KiB: the writer then blocks far less often, and both sides spend less time switching.
/// Best effort: a kernel that refuses leaves the default.
fn enlarge_stdin_pipe() {
    #[cfg(target_os = "linux")]
    // SAFETY: fcntl on fd 0 with an integer argument touches no memory of ours.
    unsafe {
        libc::fcntl(0, libc::F_SETPIPE_SZ, 1 << 20);
    }
}

fn stdin_is_pipe() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        use std::os::unix::io::AsFd;
        let stdin = io::stdin();
        let Ok(fd) = stdin.as_fd().try_clone_to_owned() else {
            return false;
        };
        File::from(fd)
            .metadata()
            .is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    false
}

/// A pipe reader that lets the pipe fill before reading again. `promtool tsdb dump` writes each
/// line with its own write(2); a reader that takes every line as it comes is woken per line, and
/// the two processes spend a third of their time switching (measured: `dump | cat` is 34%
/// slower than `dump > /dev/null`). After a short read it waits 2 ms, far less than the 1 MiB
/// pipe takes to fill at dump speed, so the writer never waits on us and reads come in ~100 KB.
struct Patient<R> {
    inner: R,
    short: bool,
}

const SHORT_READ: usize = 256 << 10;

impl<R: Read> Read for Patient<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.short {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let n = self.inner.read(buf)?;
        self.short = n > 0 && n < SHORT_READ.min(buf.len());
        Ok(n)
    }
}

/// Splits a stream into chunks of whole lines (the last may lack its newline).
pub struct Chunker<R> {
    r: R,
    size: usize,
    carry: Vec<u8>,
    done: bool,
}

impl<R: Read> Chunker<R> {
    pub fn new(r: R, size: usize) -> Self {
        Chunker {
            r,
            size,
            carry: Vec::new(),
            done: false,
        }
    }

    /// The next chunk, ending at a newline unless it is the end of the input.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.reserve(self.size + (self.size >> 3));
        loop {
            let len = buf.len();
            if len >= self.size {
                if let Some(nl) = memchr::memrchr(b'\n', &buf) {
                    self.carry = buf[nl + 1..].to_vec();
                    buf.truncate(nl + 1);
                    return Ok(Some(buf));
                }
            }
            // Fill up to the chunk size; past it, grow until a newline turns up.
            let want = if len < self.size {
                self.size - len
            } else {
                1 << 16
            };
            buf.resize(len + want, 0);
            let n = loop {
                match self.r.read(&mut buf[len..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            buf.truncate(len + n);
            if n == 0 {
                self.done = true;
                return Ok(if buf.is_empty() { None } else { Some(buf) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &[u8], size: usize) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(data, size);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch);
        }
        out
    }

    #[test]
    fn chunks_end_on_newlines_and_keep_everything() {
        let data: Vec<u8> = (0..1000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let cs = chunks(&data, 100);
        assert!(cs.len() > 10);
        assert!(cs.iter().all(|c| c.ends_with(b"\n")));
        assert_eq!(cs.concat(), data);
        let cs = chunks(b"a\nb", 1);
        assert_eq!(cs.concat(), b"a\nb");
        assert!(chunks(b"", 10).is_empty());
    }

    #[test]
    fn gzip_detected_by_magic() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.txt.whatever");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello\n").unwrap();
        let mut bytes = gz.finish().unwrap();
        let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz2.write_all(b"world\n").unwrap();
        bytes.extend(gz2.finish().unwrap());
        std::fs::write(&p, bytes).unwrap();
        let mut s = String::new();
        open(&InputSpec::File(p), Default::default())
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hello\nworld\n");
    }

    #[test]
    fn damaged_gzip_is_bad_input_with_its_offset() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"hello\n").unwrap();
        let good = gz.finish().unwrap();
        let read = |bytes: Vec<u8>| {
            let mut s = String::new();
            GzMembers::new(&bytes[..]).read_to_string(&mut s).map(|_| s)
        };
        assert_eq!(read(good.clone()).unwrap(), "hello\n");
        let e = read(good[..good.len() - 3].to_vec()).unwrap_err();
        assert!(
            e.to_string()
                .contains("truncated or corrupt gzip data at byte"),
            "{e}"
        );
        let e = read([&good[..], b"junk"].concat()).unwrap_err();
        assert!(
            e.to_string().contains(&format!("from byte {}", good.len())),
            "{e}"
        );
        let inner = e.get_ref().unwrap();
        assert!(inner
            .downcast_ref::<crate::exit_codes::BadInput>()
            .is_some());
    }
}
