//! Prometheus' Gorilla-style XOR float chunks (`tsdb/chunkenc/xor.go`), decoder and encoder: the
//! chunks of remote read and of block files alike. Values are raw bits so a staleness marker
//! (0x7ff0000000000002) can be told from an ordinary NaN exactly.

use anyhow::{bail, Result};

/// The exact bit pattern Prometheus writes as a staleness marker.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

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
                return Err(short());
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
    fn ones(&mut self, max: u32) -> Result<u32> {
        if self.avail <= max {
            self.refill();
        }
        // Past the end of the data the buffer holds zeros: the count stops there.
        let n = self.buf.leading_ones().min(max);
        let used = n + u32::from(n < max);
        if used > self.avail {
            return Err(short());
        }
        self.buf <<= used;
        self.avail -= used;
        Ok(n)
    }

    fn byte(&mut self) -> Result<u8> {
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
                    bail!("varint overflows 64 bits");
                }
                return Ok(x | (b as u64) << shift);
            }
            x |= ((b & 0x7f) as u64) << shift;
            shift += 7;
        }
        bail!("varint overflows 64 bits")
    }

    /// Go's `binary.ReadVarint` (zig-zag).
    pub(super) fn varint(&mut self) -> Result<i64> {
        let u = self.uvarint()?;
        let x = (u >> 1) as i64;
        Ok(if u & 1 != 0 { !x } else { x })
    }
}

#[cold]
fn short() -> anyhow::Error {
    anyhow::anyhow!("chunk ends in the middle of a sample")
}

/// Decodes one XOR chunk, calling `f(timestamp_ms, value_bits)` for each sample in order.
/// Returns the number of samples. Fails on a truncated or malformed chunk.
pub fn decode(chunk: &[u8], mut f: impl FnMut(i64, u64)) -> Result<usize> {
    if chunk.len() < 2 {
        bail!("XOR chunk of {} bytes has no header", chunk.len());
    }
    let total = u16::from_be_bytes([chunk[0], chunk[1]]) as usize;
    let mut r = BitReader::new(&chunk[2..]);
    let mut st = State::default();
    let fail = |i: usize, e: anyhow::Error| {
        anyhow::anyhow!("corrupt XOR chunk at sample {} of {total}: {e}", i + 1)
    };
    for i in 0..total.min(2) {
        let res = if i == 0 {
            st.first(&mut r)
        } else {
            st.second(&mut r)
        };
        res.map_err(|e| fail(i, e))?;
        f(st.t, st.v);
    }
    // The hot loop: every later sample has the same shape.
    for i in 2..total {
        st.next(&mut r).map_err(|e| fail(i, e))?;
        f(st.t, st.v);
    }
    Ok(total)
}

#[derive(Default)]
struct State {
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u32,
    trailing: u32,
}

impl State {
    fn first(&mut self, r: &mut BitReader) -> Result<()> {
        self.t = r.varint()?;
        self.v = r.bits(64)?;
        Ok(())
    }

    fn second(&mut self, r: &mut BitReader) -> Result<()> {
        self.t_delta = r.uvarint()?;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.value(r)
    }

    #[inline(always)]
    fn next(&mut self, r: &mut BitReader) -> Result<()> {
        // Delta-of-delta prefix: 0, 10, 110, 1110 or 1111, at most four bits.
        let dod: i64 = match r.ones(4)? {
            0 => 0,
            4 => r.bits(64)? as i64,
            ones => {
                let sz = [14u32, 17, 20][ones as usize - 1];
                let raw = r.bits(sz)?;
                // The writer's range is [-(2^(sz-1) - 1), 2^(sz-1)]: anything above 2^(sz-1)
                // is a negative number in sz-bit two's complement.
                if raw > 1 << (sz - 1) {
                    raw as i64 - (1i64 << sz)
                } else {
                    raw as i64
                }
            }
        };
        self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.value(r)
    }

    #[inline(always)]
    fn value(&mut self, r: &mut BitReader) -> Result<()> {
        // 0: same value; 10: reuse leading/trailing; 11: new leading (5), significant bits (6).
        match r.ones(2)? {
            0 => return Ok(()),
            1 => {}
            _ => {
                let lt = r.bits(11)? as u32;
                self.leading = lt >> 6;
                // 64 significant bits do not fit in six bits; the writer stores them as 0.
                let sig = match lt & 63 {
                    0 => 64,
                    s => s,
                };
                if self.leading + sig > 64 {
                    bail!(
                        "{} leading zeros and {sig} significant bits exceed 64",
                        self.leading
                    );
                }
                self.trailing = 64 - self.leading - sig;
            }
        }
        // On reuse the previous counts apply (initially 0 and 0: all 64 bits).
        let sig = 64 - self.leading - self.trailing;
        let bits = r.bits(sig)?;
        self.v ^= bits << self.trailing;
        Ok(())
    }
}

/// Writes bits most-significant first, as Prometheus's `bstream` does.
#[derive(Default, Clone)]
pub(super) struct BitWriter {
    pub(super) bytes: Vec<u8>,
    /// Free low bits in the last byte.
    free: u32,
    /// The last write ended on a byte boundary with whole bytes: `bstream.writeByte` has then
    /// appended an empty byte that ends up in the chunk if nothing follows.
    empty_tail: bool,
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

/// XOR chunk encoder, the mirror of [`decode`] and of Prometheus's `xorAppender`: the bytes it
/// writes are the bytes Prometheus writes for the same samples.
#[derive(Clone)]
pub struct Encoder {
    w: BitWriter,
    n: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u32,
    trailing: u32,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder {
            w: BitWriter::default(),
            n: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            // No window yet: the first value delta always opens one.
            leading: 0xff,
            trailing: 0,
        }
    }
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    /// Samples so far.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Size of the chunk so far, header included.
    pub fn size(&self) -> usize {
        2 + self.w.bytes.len() + self.w.empty_tail as usize
    }

    /// Appends a sample; timestamps are expected to increase, as the TSDB guarantees.
    /// Fails once the chunk holds 65535 samples (the count is 16 bits).
    pub fn append(&mut self, t: i64, v: u64) -> Result<()> {
        match self.n {
            u16::MAX => bail!("an XOR chunk holds at most 65535 samples"),
            0 => {
                self.w.put_varint(t);
                self.w.put(v, 64);
            }
            1 => {
                self.t_delta = t.wrapping_sub(self.t) as u64;
                self.w.put_uvarint(self.t_delta);
                self.put_value(v);
            }
            _ => {
                let td = t.wrapping_sub(self.t) as u64;
                let dod = td.wrapping_sub(self.t_delta) as i64;
                let fits = |n: u32| -((1i64 << (n - 1)) - 1) <= dod && dod <= 1i64 << (n - 1);
                if dod == 0 {
                    self.w.put(0, 1);
                } else if fits(14) {
                    self.w.put(0b10, 2);
                    self.w.put(dod as u64 & ((1 << 14) - 1), 14);
                } else if fits(17) {
                    self.w.put(0b110, 3);
                    self.w.put(dod as u64 & ((1 << 17) - 1), 17);
                } else if fits(20) {
                    self.w.put(0b1110, 4);
                    self.w.put(dod as u64 & ((1 << 20) - 1), 20);
                } else {
                    self.w.put(0b1111, 4);
                    self.w.put(dod as u64, 64);
                }
                self.t_delta = td;
                self.put_value(v);
            }
        }
        self.t = t;
        self.v = v;
        self.n += 1;
        Ok(())
    }

    fn put_value(&mut self, v: u64) {
        let x = v ^ self.v;
        if x == 0 {
            self.w.put(0, 1);
            return;
        }
        self.w.put(1, 1);
        let leading = x.leading_zeros().min(31);
        let trailing = x.trailing_zeros();
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.w.put(0, 1);
            self.w
                .put(x >> self.trailing, 64 - self.leading - self.trailing);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.w.put(1, 1);
            self.w.put(leading as u64, 5);
            let sig = 64 - leading - trailing;
            self.w.put((sig & 63) as u64, 6);
            self.w.put(x >> trailing, sig);
        }
    }

    /// The chunk: BE16 sample count, then the bit stream (with Prometheus's empty last byte).
    pub fn finish(self) -> Vec<u8> {
        let mut out = self.n.to_be_bytes().to_vec();
        out.extend_from_slice(&self.w.bytes);
        if self.w.empty_tail {
            out.push(0);
        }
        out
    }
}

/// Encodes samples into one XOR chunk (at most 65535 of them).
pub fn encode(samples: &[(i64, u64)]) -> Result<Vec<u8>> {
    let mut e = Encoder::new();
    for &(t, v) in samples {
        e.append(t, v)?;
    }
    Ok(e.finish())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The library encoder, for tests elsewhere that need a chunk.
    pub(crate) fn encode(samples: &[(i64, u64)]) -> Vec<u8> {
        super::encode(samples).unwrap()
    }

    fn roundtrip(samples: &[(i64, u64)]) {
        let chunk = encode(samples);
        let mut got = Vec::new();
        let n = decode(&chunk, |t, v| got.push((t, v))).unwrap();
        assert_eq!(n, samples.len());
        assert_eq!(got, samples);
    }

    #[test]
    fn dod_bucket_edges() {
        // Each bucket's extreme values, both signs, and the first value past each bucket.
        let mut samples = vec![(1_000_000, 1.0f64.to_bits()), (1_015_000, 2.0f64.to_bits())];
        let mut td: i64 = 15_000;
        for dod in [
            0,
            8192,
            -8191,
            8193,
            -8192,
            65536,
            -65535,
            65537,
            -65536,
            524288,
            -524287,
            524289,
            -524288,
            1 << 40,
            -(1 << 40),
        ] {
            td += dod;
            let t = samples.last().unwrap().0 + td;
            samples.push((t, (t as f64).to_bits()));
        }
        roundtrip(&samples);
    }

    #[test]
    fn special_values_and_64_significant_bits() {
        let vals = [
            0.0f64.to_bits(),
            STALE_NAN_BITS,
            f64::NAN.to_bits(),
            0x7ff8_0000_0000_0001,
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            (-0.0f64).to_bits(),
            // XOR with the previous value has no leading and no trailing zeros: 64 sig bits.
            0x8000_0000_0000_0001 ^ f64::NEG_INFINITY.to_bits() ^ (-0.0f64).to_bits(),
            u64::MAX,
            1,
            0x8000_0000_0000_0000,
            1.5f64.to_bits(),
            1.5f64.to_bits(),
        ];
        let samples: Vec<_> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| (-5_000 + i as i64 * 7, v))
            .collect();
        roundtrip(&samples);
        roundtrip(&samples[..1]);
        roundtrip(&samples[..2]);
        roundtrip(&[]);
    }

    #[test]
    fn first_delta_reuses_zero_leading_trailing() {
        // Second sample written with the "reuse" bit while leading = trailing = 0: 64 bits.
        let mut e = Encoder::new();
        e.append(10, 3.0f64.to_bits()).unwrap();
        let x = 7.25f64.to_bits();
        e.w.put_uvarint(5);
        e.w.put(0b10, 2);
        e.w.put(x ^ 3.0f64.to_bits(), 64);
        e.n = 2;
        let chunk = e.finish();
        let mut got = Vec::new();
        decode(&chunk, |t, v| got.push((t, v))).unwrap();
        assert_eq!(got, vec![(10, 3.0f64.to_bits()), (15, x)]);
    }

    #[test]
    fn truncated_and_malformed_chunks_fail() {
        let chunk = encode(&[(1, 1), (2, 2), (3, 5), (100, 77)]);
        for cut in 2..chunk.len() - 1 {
            assert!(decode(&chunk[..cut], |_, _| {}).is_err(), "cut at {cut}");
        }
        assert!(decode(&[0], |_, _| {}).is_err());
        // Header claims one sample with leading 31 + 63 significant bits: impossible.
        let mut e = Encoder::new();
        e.append(0, 0).unwrap();
        e.w.put_uvarint(1);
        e.w.put(0b11, 2);
        e.w.put(31, 5);
        e.w.put(63, 6);
        e.w.put(0, 63);
        e.n = 2;
        assert!(decode(&e.finish(), |_, _| {}).is_err());
    }

    proptest! {
        #[test]
        fn random_series_roundtrip(
            start in -1_000_000_000_000i64..4_000_000_000_000i64,
            steps in proptest::collection::vec((0i64..3_000_000, any::<u64>(), 0u8..4), 0..300),
        ) {
            let mut t = start;
            let mut prev = 0u64;
            let mut samples = Vec::new();
            for (dt, bits, kind) in steps {
                t += dt;
                // Mix repeated, nearby and arbitrary values so every value branch is taken.
                let v = match kind {
                    0 => prev,
                    1 => (f64::from_bits(prev) + 1.0).to_bits(),
                    2 => bits,
                    _ => STALE_NAN_BITS,
                };
                prev = v;
                samples.push((t, v));
            }
            roundtrip(&samples);
        }
    }
}
