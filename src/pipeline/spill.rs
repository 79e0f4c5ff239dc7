//! Samples in transit through the sink, and the temporary binary files they are spilled to when
//! the memory budget is used up. A run file is a plain sequence of fixed-size records, so it can be
//! appended to, read back in batches, and merged without any framing; a native histogram's value
//! is of any length, so its record only says where the value lies in its window's [`Texts`].

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// One sample of an interned series. `val` holds the f64 bits, so NaN payloads survive; of a
/// native histogram sample, where its value text lies in its window's [`Texts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rec {
    pub ts: i64,
    pub val: u64,
    pub series: u32,
    /// A native histogram sample (in the padding: the record takes no more memory for it).
    pub hist: bool,
}

impl Rec {
    pub fn float(series: u32, ts: i64, bits: u64) -> Rec {
        Rec {
            ts,
            val: bits,
            series,
            hist: false,
        }
    }
}

/// Series ids and ranks stay below this: on disk the top bit of the series marks a histogram.
pub const MAX_SERIES: u32 = 1 << 31;

/// Bytes of one record in memory (`Vec<Rec>`), for the memory budget.
pub const REC_MEM: u64 = std::mem::size_of::<Rec>() as u64;
/// Bytes of one record on disk.
const REC_DISK: usize = 20;

fn encode(r: &Rec, out: &mut [u8]) {
    out[..8].copy_from_slice(&r.ts.to_le_bytes());
    out[8..16].copy_from_slice(&r.val.to_le_bytes());
    let series = r.series | (u32::from(r.hist) << 31);
    out[16..20].copy_from_slice(&series.to_le_bytes());
}

fn decode(b: &[u8]) -> Rec {
    let series = u32::from_le_bytes(b[16..20].try_into().expect("4 bytes"));
    Rec {
        ts: i64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        val: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        series: series & (MAX_SERIES - 1),
        hist: series >= MAX_SERIES,
    }
}

/// An append-only run file. It holds no open file and no buffer between appends: a dump over
/// months has thousands of windows, each with its own run file, and neither file descriptors nor
/// a buffer per window would stay bounded.
pub struct SpillWriter {
    path: PathBuf,
    count: u64,
}

impl SpillWriter {
    pub fn create(path: PathBuf) -> io::Result<SpillWriter> {
        File::create(&path)?;
        Ok(SpillWriter { path, count: 0 })
    }

    pub fn append(&mut self, recs: &[Rec]) -> io::Result<()> {
        const BATCH: usize = 4096;
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        let mut buf = vec![0u8; REC_DISK * BATCH.min(recs.len())];
        for chunk in recs.chunks(BATCH) {
            for (i, r) in chunk.iter().enumerate() {
                encode(r, &mut buf[i * REC_DISK..]);
            }
            f.write_all(&buf[..chunk.len() * REC_DISK])?;
        }
        self.count += recs.len() as u64;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Ends the file, returning what reads it back.
    pub fn finish(self) -> io::Result<SpillFile> {
        Ok(SpillFile {
            path: self.path,
            count: self.count,
        })
    }
}

/// A finished run file.
#[derive(Debug)]
pub struct SpillFile {
    pub path: PathBuf,
    pub count: u64,
}

impl SpillFile {
    pub fn reader(&self) -> io::Result<SpillReader> {
        SpillReader::open(&self.path)
    }
}

/// Reads a run file back in batches, in the order it was written.
pub struct SpillReader {
    r: BufReader<File>,
    buf: Vec<u8>,
}

impl SpillReader {
    pub fn open(path: &Path) -> io::Result<SpillReader> {
        Ok(SpillReader {
            r: BufReader::with_capacity(1 << 20, File::open(path)?),
            buf: vec![0u8; REC_DISK * 4096],
        })
    }

    /// Appends up to `max` records to `out`; returns how many (0 at the end).
    pub fn read_batch(&mut self, max: usize, out: &mut Vec<Rec>) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            let want = (max - n).min(4096) * REC_DISK;
            let got = read_full(&mut self.r, &mut self.buf[..want])?;
            if got % REC_DISK != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "spill file ends inside a record",
                ));
            }
            out.extend(self.buf[..got].chunks_exact(REC_DISK).map(decode));
            n += got / REC_DISK;
            if got < want {
                break;
            }
        }
        Ok(n)
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The value texts of one window's histogram samples, each as its length (4 bytes, LE) then its
/// bytes, appended as they come: a record's `val` is where its text starts. In memory while the
/// window is; appended to a file beside the window's run file when it spills, the records
/// written with the file's offsets; read back through a memory map.
pub enum Texts {
    Mem(Vec<u8>),
    File(memmap2::Mmap),
}

impl std::ops::Deref for Texts {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Texts::Mem(v) => v,
            Texts::File(m) => m,
        }
    }
}

/// Appends `text` to a window's texts; returns where it starts.
pub fn push_text(texts: &mut Vec<u8>, text: &[u8]) -> u64 {
    let at = texts.len() as u64;
    let len = u32::try_from(text.len()).expect("a histogram's text is far below 4 GiB");
    texts.extend_from_slice(&len.to_le_bytes());
    texts.extend_from_slice(text);
    at
}

/// The text starting at `at` of a window's texts.
pub fn text_at(texts: &[u8], at: u64) -> &[u8] {
    let at = at as usize;
    let len = u32::from_le_bytes(texts[at..at + 4].try_into().expect("4 bytes")) as usize;
    &texts[at + 4..at + 4 + len]
}

/// The texts of a window that spilled: a file appended to at each spill.
pub struct TextsFile {
    path: PathBuf,
    len: u64,
}

impl TextsFile {
    pub fn create(path: PathBuf) -> io::Result<TextsFile> {
        File::create(&path)?;
        Ok(TextsFile { path, len: 0 })
    }

    /// Appends `texts` (as [`push_text`] made them) and returns the offset it starts at.
    pub fn append(&mut self, texts: &[u8]) -> io::Result<u64> {
        let at = self.len;
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        f.write_all(texts)?;
        self.len += texts.len() as u64;
        Ok(at)
    }

    /// Maps the whole file for reading (an empty file as an empty buffer).
    pub fn finish(self) -> io::Result<Texts> {
        if self.len == 0 {
            return Ok(Texts::Mem(Vec::new()));
        }
        let f = File::open(&self.path)?;
        // SAFETY: the file is this run's own spill file, under a directory only this process
        // writes, and nothing writes it any more.
        let map = unsafe { memmap2::Mmap::map(&f)? };
        Ok(Texts::File(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpillWriter::create(dir.path().join("run")).unwrap();
        let recs: Vec<Rec> = (0..10_000)
            .map(|i| Rec {
                ts: i * 15_000 - 7,
                val: (i as f64).to_bits() ^ 0x7ff0_0000_0000_0002,
                series: i as u32 % 17,
                hist: i % 3 == 0,
            })
            .collect();
        w.append(&recs[..3000]).unwrap();
        w.append(&recs[3000..]).unwrap();
        let f = w.finish().unwrap();
        assert_eq!(f.count, 10_000);
        let mut r = f.reader().unwrap();
        let mut got = Vec::new();
        while r.read_batch(777, &mut got).unwrap() > 0 {}
        assert_eq!(got, recs);
    }

    #[test]
    fn texts_in_memory_and_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut mem = Vec::new();
        let a = push_text(&mut mem, b"{count:1}");
        let b = push_text(&mut mem, b"");
        assert_eq!(
            (text_at(&mem, a), text_at(&mem, b)),
            (&b"{count:1}"[..], &b""[..])
        );
        let mut f = TextsFile::create(dir.path().join("t")).unwrap();
        assert_eq!(f.append(&mem).unwrap(), 0);
        let at = f.append(&mem).unwrap();
        let t = f.finish().unwrap();
        assert_eq!(text_at(&t, at + a), b"{count:1}");
        let empty = TextsFile::create(dir.path().join("e")).unwrap();
        assert!(empty.finish().unwrap().is_empty());
    }
}
