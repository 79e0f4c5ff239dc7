//! One byte cursor for every TSDB reader: big-endian integers and Go varints over part of a
//! file, knowing the part's offset for messages, or over a WAL record's payload.

use super::{Error, ErrorKind, Result};

/// A cursor over bytes of a file (or of a record). Every read names what it reads, for the
/// message when the bytes end or do not make sense.
#[derive(Clone, Copy)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// Absolute offset of `data[0]` in the file; `None` for a record's payload, which has no
    /// place of its own in a file.
    base: Option<usize>,
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`, which lies at byte `base` of its file.
    pub fn new(data: &'a [u8], base: usize) -> Cursor<'a> {
        Cursor {
            data,
            pos: 0,
            base: Some(base),
        }
    }

    /// A cursor over a WAL record's payload: its errors have no offset.
    pub fn record(data: &'a [u8]) -> Cursor<'a> {
        Cursor {
            data,
            pos: 0,
            base: None,
        }
    }

    /// Absolute offset of the next byte (the position in the payload for a record).
    pub fn offset(&self) -> usize {
        self.base.unwrap_or(0) + self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.data.len()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    /// An error at position `pos` of the data.
    fn error_at(&self, kind: ErrorKind, pos: usize, what: String) -> Error {
        match self.base {
            Some(b) => Error::new(kind, b + pos, what),
            None => Error::unplaced(kind, what),
        }
    }

    /// An error about what starts at the cursor.
    pub fn error(&self, kind: ErrorKind, what: impl Into<String>) -> Error {
        self.error_at(kind, self.pos, what.into())
    }

    #[cold]
    fn short(&self, what: &str) -> Error {
        let msg = match self.base {
            Some(_) => format!("{what} runs past the end"),
            None => format!("record ends inside {what}"),
        };
        self.error(ErrorKind::Truncated, msg)
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
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.short(what)),
        }
    }

    pub fn be32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")))
    }

    pub fn be64(&mut self, what: &str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        Ok(u64::from_be_bytes(b.try_into().expect("8 bytes")))
    }

    /// Go's `binary.Uvarint`: at most 10 bytes, the tenth at most 1.
    pub fn uvarint(&mut self, what: &str) -> Result<u64> {
        let start = self.pos;
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
        let msg = format!("{what}: varint overflows 64 bits");
        Err(self.error_at(ErrorKind::Malformed, start, msg))
    }

    /// Go's `binary.Varint` (zig-zag).
    pub fn varint(&mut self, what: &str) -> Result<i64> {
        let u = self.uvarint(what)?;
        let x = (u >> 1) as i64;
        Ok(if u & 1 != 0 { !x } else { x })
    }

    /// A uvarint that must fit in 32 bits (symbol references, counts).
    pub fn uvarint32(&mut self, what: &str) -> Result<u32> {
        let at = self.pos;
        let v = self.uvarint(what)?;
        u32::try_from(v).map_err(|_| {
            self.error_at(
                ErrorKind::Malformed,
                at,
                format!("{what} {v} exceeds 32 bits"),
            )
        })
    }

    /// A uvarint length followed by that many bytes.
    pub fn uvarint_bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let n = self.uvarint(what)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.bytes(n, what)
    }

    /// A uvarint count of items that each take at least `min_size` bytes: bounded by what is
    /// left, so that a damaged count cannot make the reader allocate.
    pub fn count(&mut self, min_size: usize, what: &str) -> Result<usize> {
        let at = self.pos;
        let n = self.uvarint(what)?;
        if n > (self.remaining() / min_size.max(1)) as u64 {
            let msg = format!("{what} {n} exceeds the bytes left");
            return Err(self.error_at(ErrorKind::Malformed, at, msg));
        }
        Ok(n as usize)
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
    let got = crc32c::crc32c(data);
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
pub fn section<'a>(file: &'a [u8], off: usize, crc: bool, what: &str) -> Result<Cursor<'a>> {
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
    let mut head = Cursor::new(&file[off..], off);
    let len = head.be32(what)? as usize;
    let content = head.bytes(len, what)?;
    let sum = head.bytes(4, &format!("{what} checksum"))?;
    if crc {
        check_crc(content, sum, off, what)?;
    }
    Ok(Cursor::new(content, off + 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_name_what_ran_short_and_where() {
        let mut c = Cursor::new(&[0, 0, 0, 7, 0x80], 100);
        assert_eq!(c.be32("count").unwrap(), 7);
        let e = c.uvarint("length").unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::Truncated, Some(105)));
        assert_eq!(e.to_string(), "at byte 105: length runs past the end");
        let mut r = Cursor::record(&[1]);
        let e = r.be64("series ref").unwrap_err();
        assert_eq!(e.to_string(), "record ends inside series ref");
        let e = Cursor::new(&[0xff; 11], 0).uvarint("x").unwrap_err();
        assert!(e.what.contains("overflows"), "{e}");
        assert_eq!(
            Cursor::new(&[3, 1], 0).count(1, "n").unwrap_err().kind,
            ErrorKind::Malformed
        );
        assert_eq!(
            Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0x10], 0)
                .uvarint32("r")
                .unwrap_err()
                .offset,
            Some(0)
        );
    }

    proptest! {
        #[test]
        fn varints_round_trip(x in any::<i64>(), u in any::<u64>(), b in proptest::collection::vec(any::<u8>(), 0..20)) {
            let mut buf = Vec::new();
            put_varint(&mut buf, x);
            put_uvarint(&mut buf, u);
            put_uvarint_bytes(&mut buf, &b);
            let mut c = Cursor::new(&buf, 0);
            prop_assert_eq!(c.varint("x").unwrap(), x);
            prop_assert_eq!(c.uvarint("u").unwrap(), u);
            prop_assert_eq!(c.uvarint_bytes("b").unwrap(), &b[..]);
            prop_assert!(c.is_empty());
        }
    }
}
