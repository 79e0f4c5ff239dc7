//! One listed file read in one pass: opened once, hashed and counted as it is read, gunzipped in
//! the same pass (compressed directories) no further than the size the manifest states.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::checks::{is_plain_file_name, mismatch};

/// What the manifest says of one file (a shard or a side file).
pub(super) struct Listed<'a> {
    /// File name, relative to the directory.
    pub file: &'a str,
    /// Size as written.
    pub bytes: u64,
    /// SHA-256 of the file as written, hex.
    pub sha256: &'a str,
    /// Size of the OpenMetrics text inside.
    pub uncompressed: u64,
}

/// Reads `dir/l.file` once: its size and SHA-256 against the manifest, its text (gunzipped when
/// `compressed`) against the stated uncompressed size. The text is `None` when the file cannot be
/// read or unzipped, or holds more text than the manifest says (then only that much plus one
/// byte was unzipped: a damaged manifest or a gzip bomb costs no more memory than the shard
/// should). Every mismatch goes into `problems`.
pub(super) fn read_listed(
    dir: &Path,
    compressed: bool,
    l: &Listed<'_>,
    problems: &mut Vec<String>,
) -> Option<Vec<u8>> {
    if !is_plain_file_name(l.file) {
        problems.push("the manifest names a path, not a file of the directory".into());
        return None;
    }
    let ext = if compressed { ".om.gz" } else { ".om" };
    if !l.file.ends_with(ext) {
        problems.push(format!("name does not end in {ext}, as the manifest says"));
    }
    let f = match File::open(dir.join(l.file)) {
        Ok(f) => f,
        Err(err) => {
            problems.push(format!("cannot read: {err}"));
            return None;
        }
    };
    let on_disk = f.metadata().map_or(0, |m| m.len());
    let mut src = Hashing {
        inner: f,
        hash: Sha256::new(),
        read: 0,
        failed: false,
    };
    // Sized from the manifest, but never past what deflate can expand the file to (1032:1).
    let room = if compressed {
        on_disk.saturating_mul(1032).saturating_add(64)
    } else {
        on_disk
    };
    let mut text = Vec::with_capacity(usize::try_from(l.uncompressed.min(room)).unwrap_or(0));
    let limit = l.uncompressed.saturating_add(1);
    let unzipped = if compressed {
        let buffered = BufReader::with_capacity(1 << 16, &mut src);
        let gz = flate2::bufread::MultiGzDecoder::new(buffered);
        gz.take(limit).read_to_end(&mut text)
    } else {
        (&mut src).take(limit).read_to_end(&mut text)
    };
    // What the decoder left unread (past the cap, after the gzip end) is hashed too: the
    // checksum and the size cover the whole file.
    let drained = io::copy(&mut src, &mut io::sink());
    let read_error = match (&unzipped, &drained) {
        (Err(err), _) if src.failed => Some(err.to_string()),
        (_, Err(err)) => Some(err.to_string()),
        _ => None,
    };
    if let Some(err) = read_error {
        problems.push(format!("cannot read: {err}"));
        return None;
    }
    if src.read != l.bytes {
        problems.push(mismatch("size in bytes", src.read, l.bytes));
    }
    let sum = hex(&src.hash.finalize());
    if sum != l.sha256 {
        problems.push(mismatch("sha256", sum, l.sha256));
    }
    if let Err(err) = unzipped {
        problems.push(format!("not valid gzip: {err}"));
        return None;
    }
    if text.len() as u64 > l.uncompressed {
        // Only the start was read: checking its text would report a cut, not the shard.
        problems.push(format!(
            "uncompressed size is larger than the manifest's {}",
            l.uncompressed
        ));
        return None;
    }
    if (text.len() as u64) < l.uncompressed {
        problems.push(mismatch("uncompressed size", text.len(), l.uncompressed));
    }
    Some(text)
}

/// A reader that hashes and counts every byte it passes on, and remembers a failed read (so a
/// read error is not taken for bad gzip).
struct Hashing {
    inner: File,
    hash: Sha256,
    read: u64,
    failed: bool,
}

impl Read for Hashing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            self.failed |= e.kind() != io::ErrorKind::Interrupted;
        })?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::shard_dir::sha256_hex;
    use crate::format::shard_dir::tests::gzip;

    fn read(
        dir: &Path,
        compressed: bool,
        file: &str,
        stored: &[u8],
        text: u64,
    ) -> (Option<Vec<u8>>, Vec<String>) {
        let sum = sha256_hex(stored).unwrap();
        let l = Listed {
            file,
            bytes: stored.len() as u64,
            sha256: &sum,
            uncompressed: text,
        };
        let mut problems = Vec::new();
        let got = read_listed(dir, compressed, &l, &mut problems);
        (got, problems)
    }

    #[test]
    fn gzip_and_plain_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"a 1 1\n# EOF\n";
        let gz = gzip(text);
        std::fs::write(dir.path().join("s.om.gz"), &gz).unwrap();
        std::fs::write(dir.path().join("s.om"), text).unwrap();
        let n = text.len() as u64;
        assert_eq!(
            read(dir.path(), true, "s.om.gz", &gz, n),
            (Some(text.to_vec()), vec![])
        );
        assert_eq!(
            read(dir.path(), false, "s.om", text, n),
            (Some(text.to_vec()), vec![])
        );
    }

    #[test]
    fn more_text_than_the_manifest_says_is_refused_after_one_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let text = vec![b'x'; 100_000];
        let gz = gzip(&text);
        std::fs::write(dir.path().join("s.om.gz"), &gz).unwrap();
        let (got, problems) = read(dir.path(), true, "s.om.gz", &gz, 10);
        assert_eq!(got, None);
        assert_eq!(
            problems,
            ["uncompressed size is larger than the manifest's 10"]
        );
        // The checksum still covers the whole file: a changed last byte is seen.
        let mut changed = gz.clone();
        *changed.last_mut().unwrap() ^= 1;
        std::fs::write(dir.path().join("s.om.gz"), &changed).unwrap();
        let (_, problems) = read(dir.path(), true, "s.om.gz", &gz, 10);
        assert!(problems[0].starts_with("sha256 is "), "{problems:?}");
        // Plain text too.
        std::fs::write(dir.path().join("s.om"), &text).unwrap();
        let (got, problems) = read(dir.path(), false, "s.om", &text, 10);
        assert_eq!((got, problems.len()), (None, 1));
    }

    #[test]
    fn size_checksum_and_gzip_problems_are_named_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"a 1 1\n# EOF\n";
        let gz = gzip(text);
        std::fs::write(dir.path().join("s.om.gz"), &gz[..gz.len() - 3]).unwrap();
        let (got, problems) = read(dir.path(), true, "s.om.gz", &gz, text.len() as u64);
        assert_eq!(got, None);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("size in bytes is "), "{problems:?}");
        assert!(problems[1].starts_with("sha256 is "), "{problems:?}");
        assert!(problems[2].starts_with("not valid gzip: "), "{problems:?}");
        let (got, problems) = read(dir.path(), true, "gone.om.gz", &gz, 1);
        assert_eq!(got, None);
        assert!(problems[0].starts_with("cannot read: "), "{problems:?}");
        let (_, problems) = read(dir.path(), true, "../s.om.gz", &gz, 1);
        assert_eq!(
            problems,
            ["the manifest names a path, not a file of the directory"]
        );
    }
}
