//! Bit streams as Prometheus's `tsdb/chunkenc/bstream.go` writes them, most significant bit
//! first: the reader every chunk decoder shares, and the writer of the chunk encoders.

use std::fmt;

use super::{Error, ErrorKind};

pub(super) type Result<T, E = Fault> = std::result::Result<T, E>;

/// What broke inside a sample of a chunk's bit stream; the decoder says where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// The chunk ends inside a sample.
    Short,
    /// A varint longer than 64 bits.
    Overflow,
    /// A value window wider than 64 bits.
    Window { leading: u32, sig: u32 },
    /// A histogram schema Prometheus does not know.
    Schema(i64),
    /// More buckets than the chunk has bits left for.
    Buckets(u64),
    /// A sample whose layout its chunk cannot hold (an encoder's input).
    Layout,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Short => f.write_str("chunk ends in the middle of a sample"),
            Fault::Overflow => f.write_str("varint overflows 64 bits"),
            Fault::Window { leading, sig } => write!(
                f,
                "{leading} leading zeros and {sig} significant bits exceed 64"
            ),
            Fault::Schema(s) => write!(f, "unknown histogram schema {s}"),
            Fault::Buckets(n) => write!(f, "{n} buckets do not fit in what is left of the chunk"),
            Fault::Layout => f.write_str("the histogram's buckets do not match its spans"),
        }
    }
}

impl Fault {
    /// The error for sample `i` (from 0) of `total` in a chunk of encoding `name`, which
    /// starts at byte `offset` of the chunk's data.
    #[cold]
    pub(super) fn at(self, name: &str, i: usize, total: usize, offset: usize) -> Error {
        let msg = format!(
            "corrupt {name} chunk at sample {} of {total}: {self}",
            i + 1
        );
        Error::new(ErrorKind::Malformed, offset, msg)
    }
}

/// A chunk too short for its header.
#[cold]
pub(super) fn no_header(name: &str, len: usize) -> Error {
    let msg = format!("{name} chunk of {len} bytes has no header");
    Error::new(ErrorKind::Truncated, 0, msg)
}

/// Reads bits most-significant first from a byte slice, the order `bstream` writes them. A
/// 64-bit buffer is refilled with one unaligned 8-byte load: the bits below the counted ones are
/// the stream's next bits too, so or-ing the next load over them changes nothing.
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Unread bits, left-aligned; `avail` of them are counted.
    buf: u64,
    avail: u32,
}

impl<'a> BitReader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Tops the buffer up to at least 57 counted bits, or to the end of the data.
    #[inline(always)]
    fn refill(&mut self) {
        match self.data.get(self.pos..self.pos + 8) {
            Some(b) => {
                let w = u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                self.buf |= w >> self.avail;
                let bytes = (63 - self.avail) >> 3;
                self.pos += bytes as usize;
                self.avail += bytes << 3;
            }
            None => self.refill_tail(),
        }
    }

    #[cold]
    fn refill_tail(&mut self) {
        while self.avail <= 56 && self.pos < self.data.len() {
            self.buf |= (self.data[self.pos] as u64) << (56 - self.avail);
            self.avail += 8;
            self.pos += 1;
        }
    }

    /// Bits read so far.
    pub(super) fn consumed_bits(&self) -> usize {
        self.pos * 8 - self.avail as usize
    }

    /// Bits not read yet.
    pub(super) fn remaining_bits(&self) -> usize {
        (self.data.len() - self.pos) * 8 + self.avail as usize
    }

    /// The next `n` bits (1..=64) as the low bits of the result.
    #[inline(always)]
    pub(super) fn bits(&mut self, n: u32) -> Result<u64> {
        debug_assert!((1..=64).contains(&n));
        if n > 56 {
            return self.bits_wide(n);
        }
        if n > self.avail {
            self.refill();
            if n > self.avail {
                return Err(Fault::Short);
            }
        }
        let v = self.buf >> (64 - n);
        self.buf <<= n;
        self.avail -= n;
        Ok(v)
    }

    /// More than 56 bits: two reads, so every shift stays below 64.
    #[inline(never)]
    fn bits_wide(&mut self, n: u32) -> Result<u64> {
        let hi = self.bits(n - 32)?;
        let lo = self.bits(32)?;
        Ok((hi << 32) | lo)
    }

    #[inline(always)]
    pub(super) fn bit(&mut self) -> Result<bool> {
        Ok(self.bits(1)? == 1)
    }

    /// Leading one bits, at most `max` (< 57), consuming them and the zero that ends them.
    #[inline(always)]
    pub(super) fn ones(&mut self, max: u32) -> Result<u32> {
        if self.avail <= max {
            self.refill();
        }
        // Past the end of the data the buffer holds zeros: the count stops there.
        let n = self.buf.leading_ones().min(max);
        let used = n + u32::from(n < max);
        if used > self.avail {
            return Err(Fault::Short);
        }
        self.buf <<= used;
        self.avail -= used;
        Ok(n)
    }

    pub(super) fn byte(&mut self) -> Result<u8> {
        Ok(self.bits(8)? as u8)
    }

    /// Go's `binary.ReadUvarint` over the bit stream.
    pub(super) fn uvarint(&mut self) -> Result<u64> {
        let mut x = 0u64;
        let mut shift = 0u32;
        for i in 0..10 {
            let b = self.byte()?;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(Fault::Overflow);
                }
                return Ok(x | (b as u64) << shift);
            }
            x |= ((b & 0x7f) as u64) << shift;
            shift += 7;
        }
        Err(Fault::Overflow)
    }

    /// Go's `binary.ReadVarint` (zig-zag).
    pub(super) fn varint(&mut self) -> Result<i64> {
        let u = self.uvarint()?;
        let x = (u >> 1) as i64;
        Ok(if u & 1 != 0 { !x } else { x })
    }
}

/// Writes bits most-significant first, as Prometheus's `bstream` does.
#[derive(Default, Clone, Debug)]
pub(super) struct BitWriter {
    pub(super) bytes: Vec<u8>,
    /// Free low bits in the last byte.
    free: u32,
    /// The last write ended on a byte boundary with whole bytes: `bstream.writeByte` up to
    /// Prometheus 2.55 has then appended an empty byte that ends up in the chunk if nothing
    /// follows (3.0 writes no such byte: prometheus#14854).
    pub(super) empty_tail: bool,
}

impl BitWriter {
    /// Appends the low `n` bits of `v` (n ≤ 64).
    pub(super) fn put(&mut self, v: u64, n: u32) {
        let mut left = n;
        while left > 0 {
            if self.free == 0 {
                self.bytes.push(0);
                self.free = 8;
            }
            let take = left.min(self.free);
            let chunk = (v >> (left - take)) & ((1u64 << take) - 1);
            let last = self.bytes.len() - 1;
            self.bytes[last] |= (chunk as u8) << (self.free - take);
            self.free -= take;
            left -= take;
        }
        self.empty_tail = n >= 8 && n % 8 == 0 && self.free == 0;
    }

    pub(super) fn put_uvarint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.put((x as u8 | 0x80) as u64, 8);
            x >>= 7;
        }
        self.put(x, 8);
    }

    pub(super) fn put_varint(&mut self, x: i64) {
        self.put_uvarint(((x << 1) ^ (x >> 63)) as u64);
    }
}
