//! Prometheus TSDB formats, one module per layer as in Prometheus's `tsdb/` packages: chunk
//! encodings (`xor`, `chunkenc`), block files (`index`, `chunks`, `tombstones`, `meta`), the
//! head's files (`wal` segments, their `record`s, `head_chunks`). Readers take byte slices and
//! return lazy views; errors carry the byte offset. Writers (`index_writer`, `block_writer`) take
//! `io::Write` and write blocks as Prometheus 2.42 does.

pub mod block_writer;
pub mod chunkenc;
pub mod chunks;
pub mod head_chunks;
pub mod index;
pub mod index_writer;
pub mod meta;
pub mod record;
pub mod tombstones;
pub mod wal;
pub mod xor;
pub mod xor2;

use std::fmt;

/// What is wrong with a TSDB file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file ends before a structure it announces.
    Truncated,
    /// A CRC32C over a section or chunk does not match.
    Checksum,
    /// Wrong magic number or unsupported version.
    Header,
    /// A value out of range or an inconsistent structure.
    Malformed,
    /// A chunk encoding this reader does not know.
    UnknownEncoding(u8),
}

/// A format error at a byte offset of the file being read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub offset: u64,
    pub what: String,
}

impl Error {
    pub fn new(kind: ErrorKind, offset: usize, what: impl Into<String>) -> Error {
        Error {
            kind,
            offset: offset as u64,
            what: what.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Prometheus's CRC32: Castagnoli.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// A cursor over part of a file that knows its absolute offset, for messages.
#[derive(Clone, Copy)]
pub struct Buf<'a> {
    data: &'a [u8],
    pos: usize,
    /// Absolute offset of `data[0]` in the file.
    base: usize,
}

impl<'a> Buf<'a> {
    pub fn new(data: &'a [u8], base: usize) -> Buf<'a> {
        Buf { data, pos: 0, base }
    }

    /// Absolute offset of the next byte.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn short(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Truncated,
            self.offset(),
            format!("{what} runs past the end"),
        )
    }

    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(self.short(what));
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub fn byte(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    pub fn be32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn be64(&mut self, what: &str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Go's `binary.Uvarint`.
    pub fn uvarint(&mut self, what: &str) -> Result<u64> {
        let start = self.offset();
        let mut x = 0u64;
        for i in 0..10 {
            let Some(&b) = self.data.get(self.pos) else {
                return Err(self.short(what));
            };
            self.pos += 1;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    break;
                }
                return Ok(x | (b as u64) << (7 * i));
            }
            x |= ((b & 0x7f) as u64) << (7 * i);
        }
        Err(Error::new(
            ErrorKind::Malformed,
            start,
            format!("{what}: varint overflows 64 bits"),
        ))
    }

    /// Go's `binary.Varint` (zig-zag).
    pub fn varint(&mut self, what: &str) -> Result<i64> {
        let u = self.uvarint(what)?;
        let x = (u >> 1) as i64;
        Ok(if u & 1 != 0 { !x } else { x })
    }

    /// A uvarint that must fit in 32 bits (symbol references, counts).
    pub fn uvarint32(&mut self, what: &str) -> Result<u32> {
        let at = self.offset();
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| {
            Error::new(
                ErrorKind::Malformed,
                at,
                format!("{what} {v} exceeds 32 bits"),
            )
        })
    }

    /// A uvarint length followed by that many bytes.
    pub fn uvarint_bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.uvarint(what)?;
        let n = usize::try_from(n).map_err(|_| self.short(what))?;
        self.bytes(n, what)
    }
}

/// Appends Go's `binary.PutUvarint` encoding of `x`.
pub fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push(x as u8 | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

/// Appends Go's `binary.PutVarint` (zig-zag) encoding of `x`.
pub fn put_varint(buf: &mut Vec<u8>, x: i64) {
    put_uvarint(buf, ((x << 1) ^ (x >> 63)) as u64);
}

/// Appends a uvarint length and the bytes, as Go's `PutUvarintStr`.
pub fn put_uvarint_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// Checks the big-endian CRC32C stored in `sum` against `data`, which starts at `offset`.
pub fn check_crc(data: &[u8], sum: &[u8], offset: usize, what: &str) -> Result<()> {
    let want = u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]]);
    let got = crc32c(data);
    if got != want {
        return Err(Error::new(
            ErrorKind::Checksum,
            offset,
            format!("{what}: CRC32C mismatch (stored {want:08x}, computed {got:08x})"),
        ));
    }
    Ok(())
}

/// A section as Prometheus's `NewDecbufAt` reads it: BE32 length at `off`, that many bytes, then
/// their CRC32C (checked unless `crc` is false). Returns a cursor over the content.
pub fn section<'a>(file: &'a [u8], off: usize, crc: bool, what: &str) -> Result<Buf<'a>> {
    let mut head = Buf::new(file, 0);
    if off > file.len() {
        return Err(Error::new(
            ErrorKind::Truncated,
            off,
            format!(
                "{what} starts past the end of the file ({} bytes)",
                file.len()
            ),
        ));
    }
    head.pos = off;
    let len = head.be32(what)? as usize;
    let content = head.bytes(len, what)?;
    let sum = head.bytes(4, &format!("{what} checksum"))?;
    if crc {
        check_crc(content, sum, off, what)?;
    }
    Ok(Buf::new(content, off + 4))
}

/// Library entry point for the fuzz targets: every reader in this module over arbitrary bytes.
/// Must never panic, whatever the input.
pub fn fuzz_tsdb_index(data: &[u8]) {
    index::fuzz(data);
}

/// Fuzz entry point for a chunk segment file and every chunk encoding in it.
pub fn fuzz_tsdb_chunks(data: &[u8]) {
    chunks::fuzz(data);
    let _ = tombstones::parse(data);
    let _ = meta::parse(data);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    const INDEX: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/index");
    const SEGMENT: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/chunks/000001");

    /// Applies byte edits and a cut to a real file.
    fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
        let mut b = base.to_vec();
        for &(i, x) in edits {
            let n = b.len();
            b[i % n] ^= x;
        }
        b.truncate(cut % (base.len() + 1));
        b
    }

    #[test]
    fn the_real_files_pass_the_fuzz_logic() {
        super::fuzz_tsdb_index(INDEX);
        super::fuzz_tsdb_chunks(SEGMENT);
        super::fuzz_tsdb_index(&[]);
        super::fuzz_tsdb_chunks(&[]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            super::fuzz_tsdb_index(&data);
            super::fuzz_tsdb_chunks(&data);
        }

        #[test]
        fn mutated_real_files_never_panic(
            edits in proptest::collection::vec((any::<usize>(), 1u8..), 0..8),
            cut in any::<usize>(),
        ) {
            super::fuzz_tsdb_index(&mutate(INDEX, &edits, cut));
            super::fuzz_tsdb_chunks(&mutate(SEGMENT, &edits, cut));
        }

        #[test]
        fn chunk_bodies_with_fixed_checksums_never_panic(
            edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..6),
        ) {
            // Damage inside chunk data behind a valid CRC: the decoders themselves must cope.
            let mut seg = SEGMENT.to_vec();
            let chunks: Vec<(usize, usize)> = super::chunks::iter(SEGMENT)
                .map(|c| { let (o, c) = c.unwrap(); (o, c.data.len()) })
                .collect();
            for &(i, x) in &edits {
                let (off, len) = chunks[i % chunks.len()];
                let body = off + 2;
                seg[body + 1 + (i / 7) % len] ^= x;
                let crc = super::crc32c(&seg[body..body + 1 + len]);
                seg[body + 1 + len..body + 5 + len].copy_from_slice(&crc.to_be_bytes());
            }
            for c in super::chunks::iter(&seg) {
                let (_, c) = c.unwrap();
                let _ = super::chunkenc::decode(c.encoding, c.data, |_, _| {});
            }
        }
    }
}
