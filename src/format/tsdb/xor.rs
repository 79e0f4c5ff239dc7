//! Prometheus' Gorilla-style XOR float chunks (`tsdb/chunkenc/xor.go`), decoder and encoder: the
//! chunks of remote read and of block files alike. Values are raw bits so a staleness marker
//! (0x7ff0000000000002) can be told from an ordinary NaN exactly.

use anyhow::bail;

use super::bstream::{no_header, BitReader, BitWriter, Fault, Result};
use super::Error;

pub use crate::format::value::STALE_NAN_BITS;

/// Decodes one XOR chunk, calling `f(timestamp_ms, value_bits)` for each sample in order.
/// Returns the number of samples. Fails on a truncated or malformed chunk, at the byte of the
/// chunk where the sample that broke starts.
pub fn decode(chunk: &[u8], f: impl FnMut(i64, u64)) -> Result<usize, Error> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("bmi2") && std::is_x86_feature_detected!("lzcnt") {
        // SAFETY: the CPU has the features `decode_bmi2` is compiled for.
        return unsafe { decode_bmi2(chunk, f) };
    }
    decode_any(chunk, f)
}

/// The same decoder built with one-instruction variable shifts and bit counts (`shlx`,
/// `lzcnt`), which the per-sample path is made of: 5-15% faster where the CPU has them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi2,lzcnt")]
fn decode_bmi2(chunk: &[u8], f: impl FnMut(i64, u64)) -> Result<usize, Error> {
    decode_any(chunk, f)
}

#[inline(always)]
fn decode_any(chunk: &[u8], mut f: impl FnMut(i64, u64)) -> Result<usize, Error> {
    if chunk.len() < 2 {
        return Err(no_header("XOR", chunk.len()));
    }
    let total = u16::from_be_bytes([chunk[0], chunk[1]]) as usize;
    let body = &chunk[2..];
    let mut st = State::default();
    // Sample `i`, which starts at byte `at` of the body, is where the chunk broke.
    let fail = |i: usize, at: usize, e: Fault| e.at("XOR", i, total, 2 + at);
    if total == 0 {
        return Ok(0);
    }
    // The first two samples start on byte boundaries: their varints and the first value are read
    // as bytes, which matters in chunks of a few samples.
    let (u, mut p) = uvarint_at(body, 0).map_err(|e| fail(0, 0, e))?;
    st.t = (u >> 1) as i64 ^ -((u & 1) as i64);
    let v = body.get(p..p + 8).ok_or_else(|| fail(0, 0, Fault::Short))?;
    st.v = u64::from_be_bytes(v.try_into().unwrap());
    p += 8;
    f(st.t, st.v);
    if total == 1 {
        return Ok(1);
    }
    let second = p;
    let (delta, n) = uvarint_at(body, p).map_err(|e| fail(1, second, e))?;
    p += n;
    st.t_delta = delta;
    st.t = st.t.wrapping_add(delta as i64);
    let mut r = BitReader::new(&body[p..]);
    st.second_value(&mut r).map_err(|e| fail(1, second, e))?;
    f(st.t, st.v);
    // The hot loop, straight from the chunk while a whole sample and its loads fit in it.
    let mut bit = p * 8 + r.consumed_bits();
    let mut i = 2;
    let last_start = body.len().saturating_sub(MARGIN);
    while i < total && bit >> 3 < last_start {
        if st.sample(body, &mut bit).is_err() {
            return Err(fail(i, st.broke_at >> 3, st.window_fault()));
        }
        f(st.t, st.v);
        i += 1;
    }
    if i == total {
        return Ok(total);
    }
    // The last bytes, copied in front of zeros: reading past their end is harmless there, and a
    // sample that used a bit past it is where the chunk was cut.
    let base = bit >> 3;
    let rest = &body[base..];
    let mut tail = [0u8; 2 * MARGIN];
    tail[..rest.len()].copy_from_slice(rest);
    let end = rest.len() * 8;
    bit &= 7;
    while i < total {
        let at = base + (bit >> 3);
        let res = st.sample(&tail, &mut bit);
        if bit > end {
            return Err(fail(i, at, Fault::Short));
        }
        if res.is_err() {
            return Err(fail(i, at, st.window_fault()));
        }
        f(st.t, st.v);
        i += 1;
    }
    Ok(total)
}

/// Go's `binary.Uvarint` at byte `p` of `data`: the value and its length in bytes.
#[inline(always)]
fn uvarint_at(data: &[u8], p: usize) -> Result<(u64, usize)> {
    let mut x = 0u64;
    for i in 0..10 {
        let Some(&b) = data.get(p + i) else {
            return Err(Fault::Short);
        };
        if b < 0x80 {
            if i == 9 && b > 1 {
                break;
            }
            return Ok((x | (b as u64) << (7 * i), i + 1));
        }
        x |= ((b & 0x7f) as u64) << (7 * i);
    }
    Err(Fault::Overflow)
}

/// Bytes a sample may need from its first byte on: 145 bits at most (a 68-bit timestamp, a
/// 77-bit value) from any bit of that byte, and the 9-byte load at the last of them.
const MARGIN: usize = 32;

/// At least 57 bits from bit `bit` of `data`, left-aligned; `data` holds 8 bytes there.
#[inline(always)]
fn peek(data: &[u8], bit: usize) -> u64 {
    let p = bit >> 3;
    let w = u64::from_be_bytes(data[p..p + 8].try_into().unwrap());
    w << (bit & 7)
}

/// `n` bits (1..=64) from bit `bit` of `data`, which holds 9 bytes there: no branch on `n`.
#[inline(always)]
fn take(data: &[u8], bit: usize, n: u32) -> u64 {
    let p = bit >> 3;
    let s = bit & 7;
    let c = &data[p..p + 9];
    let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    ((w << s) | (((c[8] as u64) << s) >> 8)) >> (64 - n)
}

struct State {
    t: i64,
    v: u64,
    t_delta: u64,
    /// The value window: trailing zeros and significant bits (64 until a window is written).
    trailing: u32,
    sig: u32,
    /// The bit where the sample that broke starts: kept by the error path alone, so that the
    /// hot loop holds no copy of each sample's start.
    broke_at: usize,
    /// The window (leading zeros, significant bits) that broke it.
    bad_window: (u32, u32),
}

/// A sample broke at its value window (see `State::bad_window`).
struct Broke;

impl Default for State {
    fn default() -> Self {
        State {
            t: 0,
            v: 0,
            t_delta: 0,
            trailing: 0,
            sig: 64,
            broke_at: 0,
            bad_window: (0, 0),
        }
    }
}

impl State {
    /// The second sample's value, after its timestamp.
    fn second_value(&mut self, r: &mut BitReader) -> Result<()> {
        match r.ones(2)? {
            0 => return Ok(()),
            1 => {}
            _ => {
                let lt = r.bits(11)? as u32;
                self.new_window(lt >> 6, lt & 63)
                    .map_err(|Broke| self.window_fault())?;
            }
        }
        self.v ^= r.bits(self.sig)? << self.trailing;
        Ok(())
    }

    #[inline(always)]
    fn new_window(&mut self, leading: u32, sig: u32) -> Result<(), Broke> {
        // 64 significant bits do not fit in six bits; the writer stores them as 0.
        let sig = if sig == 0 { 64 } else { sig };
        if leading + sig > 64 {
            // The one error a sample can hold once its bits are known to be there: the
            // window is kept for the message, the hot path carries no more than a flag.
            self.bad_window = (leading, sig);
            return Err(Broke);
        }
        self.sig = sig;
        self.trailing = 64 - leading - sig;
        Ok(())
    }

    /// The window that broke a sample, as a fault.
    #[cold]
    fn window_fault(&self) -> Fault {
        let (leading, sig) = self.bad_window;
        Fault::Window { leading, sig }
    }

    /// A sample that broke at its value window, which ends at `b + used + 13`: `*bit` goes
    /// there, and `broke_at` to the sample's start.
    #[cold]
    #[inline(never)]
    fn broke(&mut self, b: usize, used: u32, bit: &mut usize) -> Broke {
        *bit = b + used as usize + 13;
        // `used` is 0 only after a 64-bit timestamp, which moved `b` past its 68 bits.
        self.broke_at = if used == 0 { b - 68 } else { b };
        Broke
    }

    /// One sample after the second, from bit `*bit` of `data`, which holds at least `MARGIN`
    /// bytes from there; `*bit` moves past it (past the window header on error).
    #[inline(always)]
    fn sample(&mut self, data: &[u8], bit: &mut usize) -> Result<(), Broke> {
        let mut b = *bit;
        // One load serves the timestamp and the value's control bits: at most 24 + 13 of its
        // 57 bits (the 64-bit timestamp case loads again).
        let mut w = peek(data, b);
        // Delta-of-delta prefix: 0, 10, 110, 1110 or 1111.
        let used = if w >> 62 != 0b11 {
            // `0` (the same step) or `10` and 14 bits: the common cases, which jittered scrapes
            // mix unpredictably, told apart without a branch.
            let one = (w >> 63) as u32;
            let raw = (w << 2) >> 50;
            // The writer's range is [-(2^(sz-1) - 1), 2^(sz-1)]: anything above 2^(sz-1)
            // is a negative number in sz-bit two's complement.
            let dod = (raw as i64 - (((raw > 1 << 13) as i64) << 14)) & -(one as i64);
            self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
            1 + 15 * one
        } else {
            let ones = w.leading_ones().min(4);
            let (dod, used) = if ones == 4 {
                let d = take(data, b + 4, 64) as i64;
                b += 68;
                w = peek(data, b);
                (d, 0)
            } else {
                let sz = 11 + 3 * ones;
                let raw = (w << (ones + 1)) >> (64 - sz);
                let d = if raw > 1 << (sz - 1) {
                    raw as i64 - (1i64 << sz)
                } else {
                    raw as i64
                };
                (d, ones + 1 + sz)
            };
            self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
            used
        };
        self.t = self.t.wrapping_add(self.t_delta as i64);
        // Value: 0 same, 10 reuse the window, 11 new window (5 bits leading, 6 bits size).
        let c = w << used;
        if (c as i64) >= 0 {
            *bit = b + used as usize + 1;
            return Ok(());
        }
        let skip = if ((c << 1) as i64) >= 0 {
            used + 2
        } else {
            let hdr = ((c << 2) >> 53) as u32;
            if self.new_window(hdr >> 6, hdr & 63).is_err() {
                return Err(self.broke(b, used, bit));
            }
            used + 13
        };
        b += skip as usize;
        self.v ^= take(data, b, self.sig) << self.trailing;
        *bit = b + self.sig as usize;
        Ok(())
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
    pub fn append(&mut self, t: i64, v: u64) -> anyhow::Result<()> {
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
pub fn encode(samples: &[(i64, u64)]) -> anyhow::Result<Vec<u8>> {
    let mut e = Encoder::new();
    for &(t, v) in samples {
        e.append(t, v)?;
    }
    Ok(e.finish())
}

#[cfg(test)]
#[path = "xor_tests.rs"]
pub(crate) mod tests;
