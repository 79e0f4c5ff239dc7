//! What the histogram chunk encodings share (`tsdb/chunkenc/histogram_meta.go`): the layout a
//! chunk's first sample writes (zero threshold, schema, spans, NHCB custom bounds), the counter
//! reset header, and the bucket inserts with which an appender widens a chunk's layout.

use super::bstream::{BitReader, BitWriter, Fault, Result};
use super::varbit;
use crate::format::histogram::{
    bucket_count, bucket_indices, is_custom_buckets, is_known_schema, CounterResetHint, Span,
};

/// The two bits of a chunk's header that say how it began (`CounterResetHeader`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterResetHeader {
    /// Nothing known: a reader detects a reset against the chunk before.
    #[default]
    Unknown,
    /// The chunk was cut for a counter reset.
    CounterReset,
    /// Definitely no counter reset since the chunk before.
    NotCounterReset,
    /// A chunk of gauge histograms.
    Gauge,
}

impl CounterResetHeader {
    /// From the header byte's two top bits.
    pub fn from_bits(b: u8) -> CounterResetHeader {
        match b >> 6 {
            0b10 => CounterResetHeader::CounterReset,
            0b01 => CounterResetHeader::NotCounterReset,
            0b11 => CounterResetHeader::Gauge,
            _ => CounterResetHeader::Unknown,
        }
    }

    /// The header byte's two top bits.
    pub fn bits(self) -> u8 {
        match self {
            CounterResetHeader::Unknown => 0,
            CounterResetHeader::CounterReset => 0b1000_0000,
            CounterResetHeader::NotCounterReset => 0b0100_0000,
            CounterResetHeader::Gauge => 0b1100_0000,
        }
    }

    /// The header a chunk that begins with a sample of this hint carries: what the appender
    /// decided about the sample (Prometheus's `CounterResetHintToHeader`).
    pub fn of_hint(h: CounterResetHint) -> CounterResetHeader {
        match h {
            CounterResetHint::Unknown => CounterResetHeader::Unknown,
            CounterResetHint::CounterReset => CounterResetHeader::CounterReset,
            CounterResetHint::NotCounterReset => CounterResetHeader::NotCounterReset,
            CounterResetHint::Gauge => CounterResetHeader::Gauge,
        }
    }

    /// The hint of sample `i` of a chunk with this header. Sample 0 gets the header itself (the
    /// hint it was appended with; Prometheus's iterator says "unknown" there, not knowing
    /// whether the chunk before still exists), later ones "not a reset" or "gauge".
    pub fn hint(self, i: usize) -> CounterResetHint {
        match (self, i) {
            (CounterResetHeader::Gauge, _) => CounterResetHint::Gauge,
            (_, 0) => match self {
                CounterResetHeader::CounterReset => CounterResetHint::CounterReset,
                CounterResetHeader::NotCounterReset => CounterResetHint::NotCounterReset,
                _ => CounterResetHint::Unknown,
            },
            _ => CounterResetHint::NotCounterReset,
        }
    }
}

/// A sample a chunk decoder lends: start time (0 when unknown), time, histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample<'a, H> {
    pub st: i64,
    pub t: i64,
    pub h: &'a H,
}

/// `xorWrite`: `v` XOR the value before it, in the Gorilla window scheme of the XOR chunks, the
/// window (leading and trailing zero bits, leading 0xff: none yet) kept per value.
pub(super) fn xor_write(
    w: &mut BitWriter,
    v: u64,
    prev: u64,
    leading: &mut u32,
    trailing: &mut u32,
) {
    let delta = v ^ prev;
    if delta == 0 {
        w.put(0, 1);
        return;
    }
    w.put(1, 1);
    let new_leading = delta.leading_zeros().min(31);
    let new_trailing = delta.trailing_zeros();
    if *leading != 0xff && new_leading >= *leading && new_trailing >= *trailing {
        w.put(0, 1);
        w.put(delta >> *trailing, 64 - *leading - *trailing);
        return;
    }
    (*leading, *trailing) = (new_leading, new_trailing);
    w.put(1, 1);
    w.put(new_leading as u64, 5);
    let sig = 64 - new_leading - new_trailing;
    // 64 significant bits do not fit in six: written as 0.
    w.put((sig & 63) as u64, 6);
    w.put(delta >> new_trailing, sig);
}

/// `xorRead`: the value after `v`, in place.
pub(super) fn xor_read(
    r: &mut BitReader,
    v: &mut u64,
    leading: &mut u32,
    trailing: &mut u32,
) -> Result<()> {
    if !r.bit()? {
        return Ok(());
    }
    let sig = if !r.bit()? {
        64u32.saturating_sub(*leading + *trailing)
    } else {
        let l = r.bits(5)? as u32;
        let sig = match r.bits(6)? as u32 {
            0 => 64,
            s => s,
        };
        if l + sig > 64 {
            return Err(Fault::Window { leading: l, sig });
        }
        (*leading, *trailing) = (l, 64 - l - sig);
        sig
    };
    if sig > 0 {
        *v ^= r.bits(sig)? << *trailing;
    }
    Ok(())
}

/// A chunk's layout: what its first sample fixes for all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Layout {
    pub schema: i32,
    pub zero_threshold: u64,
    pub positive: Vec<Span>,
    pub negative: Vec<Span>,
    pub custom: Vec<u64>,
}

/// `readHistogramChunkLayout`, and Prometheus's check that it knows the schema.
pub(super) fn read_layout(r: &mut BitReader) -> Result<Layout> {
    let zero_threshold = read_zero_threshold(r)?;
    let schema = varbit::read_int(r)?;
    if !is_known_schema(schema as i32) || schema != schema as i32 as i64 {
        return Err(Fault::Schema(schema));
    }
    let schema = schema as i32;
    let positive = read_spans(r)?;
    let negative = read_spans(r)?;
    let custom = if is_custom_buckets(schema) {
        read_custom_bounds(r)?
    } else {
        Vec::new()
    };
    Ok(Layout {
        schema,
        zero_threshold,
        positive,
        negative,
        custom,
    })
}

/// `writeHistogramChunkLayout`.
pub(super) fn write_layout(
    w: &mut BitWriter,
    schema: i32,
    zero_threshold: u64,
    positive: &[Span],
    negative: &[Span],
    custom: &[u64],
) {
    put_zero_threshold(w, zero_threshold);
    varbit::put_int(w, schema as i64);
    for spans in [positive, negative] {
        varbit::put_uint(w, spans.len() as u64);
        for s in spans {
            varbit::put_uint(w, s.length as u64);
            varbit::put_int(w, s.offset as i64);
        }
    }
    if is_custom_buckets(schema) {
        varbit::put_uint(w, custom.len() as u64);
        for &b in custom {
            put_custom_bound(w, b);
        }
    }
}

/// A count of items of at least `min_bits` each, bounded by the bits left.
fn count(r: &mut BitReader, min_bits: usize) -> Result<usize> {
    let n = varbit::read_uint(r)?;
    if n > (r.remaining_bits() / min_bits) as u64 {
        return Err(Fault::Short);
    }
    Ok(n as usize)
}

fn read_spans(r: &mut BitReader) -> Result<Vec<Span>> {
    let n = count(r, 2)?;
    let mut spans = Vec::with_capacity(n);
    for _ in 0..n {
        let length = varbit::read_uint(r)? as u32;
        let offset = varbit::read_int(r)? as i32;
        spans.push(Span { offset, length });
    }
    Ok(spans)
}

fn read_custom_bounds(r: &mut BitReader) -> Result<Vec<u64>> {
    let n = count(r, 1)?;
    (0..n).map(|_| read_custom_bound(r)).collect()
}

/// The bucket count of `spans`, refused when the first sample's buckets (`min_bits` each at
/// least) cannot fit in the bits left: a damaged count must not make the reader allocate.
pub(super) fn checked_buckets(r: &BitReader, spans: &[Span], min_bits: usize) -> Result<usize> {
    let n = bucket_count(spans);
    if n > r.remaining_bits() / min_bits {
        return Err(Fault::Buckets(n as u64));
    }
    Ok(n)
}

/// `putZeroThreshold`: 0 as a zero byte, a power of two from 2^-243 to 2^10 as one byte
/// (its exponent + 243), anything else as 255 and the 8 bytes of the float.
fn put_zero_threshold(w: &mut BitWriter, bits: u64) {
    if f64::from_bits(bits) == 0.0 {
        w.put(0, 8);
        return;
    }
    // frexp's 0.5 fraction: a positive normal number with no mantissa bits; its exponent
    // (as frexp counts it) is the biased exponent - 1022.
    let e = (bits >> 52) as i64;
    if bits & ((1 << 52) - 1) == 0 && (1..2047).contains(&e) && (-242..=11).contains(&(e - 1022)) {
        w.put((e - 1022 + 243) as u64, 8);
        return;
    }
    w.put(255, 8);
    w.put(bits, 64);
}

fn read_zero_threshold(r: &mut BitReader) -> Result<u64> {
    Ok(match r.byte()? {
        0 => 0,
        255 => r.bits(64)?,
        // Ldexp(0.5, b - 243) = 2^(b - 244): biased exponent b + 779.
        b => (b as u64 + 779) << 52,
    })
}

/// `putCustomBound`: a bound that is a multiple of 0.001 from 0 to 33554.43 as the varbit of
/// 1000 times it plus one; anything else as a zero bit and the 8 bytes of the float.
fn put_custom_bound(w: &mut BitWriter, bits: u64) {
    let f = f64::from_bits(bits);
    let tf = f * 1000.0;
    let whole = !f.is_nan() && (0.0..=33_554_430.0).contains(&tf) && {
        // Go's isWholeWhenMultiplied: uint(math.Round(f * 1000)) / 1000 == f.
        let i = tf.round() as u64;
        i as f64 / 1000.0 == f
    };
    if whole {
        varbit::put_uint(w, tf.round() as u64 + 1);
    } else {
        w.put(0, 1);
        w.put(bits, 64);
    }
}

fn read_custom_bound(r: &mut BitReader) -> Result<u64> {
    Ok(match varbit::read_uint(r)? {
        0 => r.bits(64)?,
        b => ((b - 1) as f64 / 1000.0).to_bits(),
    })
}

/// New buckets to insert before bucket `pos` of a bucket list: `num` of them, the first with
/// index `bucket_idx` (Prometheus's `Insert`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Insert {
    pub pos: usize,
    pub num: usize,
    pub bucket_idx: i32,
}

/// Collects inserts of consecutive bucket indices (`addInsert`).
fn add_insert(inserts: &mut Vec<Insert>, cur: &mut Insert, idx: i32) {
    if cur.num == 0 {
        cur.bucket_idx = idx;
    } else if cur.bucket_idx.wrapping_add(cur.num as i32) != idx {
        inserts.push(*cur);
        cur.num = 0;
        cur.bucket_idx = idx;
    }
    cur.num += 1;
}

/// `expandIntSpansAndBuckets` and `expandFloatSpansAndBuckets`, on absolute bucket counts: the
/// inserts that widen layout `a` to cover `b` (forward) and `b` to cover the empty buckets of
/// `a` it lacks (backward); `None` when a bucket of `a` in use is missing from `b` or has
/// fallen, which is a counter reset.
pub(super) fn expand_spans_and_buckets<T: Copy + PartialOrd + Default>(
    a: &[Span],
    b: &[Span],
    a_counts: &[T],
    b_counts: &[T],
) -> Option<(Vec<Insert>, Vec<Insert>)> {
    let (mut ai, mut bi) = (bucket_indices(a), bucket_indices(b));
    let (mut a_ins, mut b_ins) = (Vec::new(), Vec::new());
    let (mut a_cur, mut b_cur) = (Insert::default(), Insert::default());
    let (mut an, mut bn) = (ai.next(), bi.next());
    let (mut a_pos, mut b_pos) = (0usize, 0usize);
    let zero = T::default();
    loop {
        let a_count = an.map(|_| a_counts[a_pos]);
        let b_count = bn.map(|_| b_counts[b_pos]);
        let (advance_a, advance_b) = match (an, bn) {
            (Some(x), Some(y)) if x == y => {
                if a_count > b_count {
                    return None;
                }
                (true, true)
            }
            (Some(x), Some(y)) if x > y => {
                add_insert(&mut a_ins, &mut a_cur, y);
                (false, true)
            }
            (Some(x), _) => {
                // b lacks a bucket of a: fine only when it is empty in a.
                if a_count != Some(zero) {
                    return None;
                }
                add_insert(&mut b_ins, &mut b_cur, x);
                (true, false)
            }
            (None, Some(y)) => {
                add_insert(&mut a_ins, &mut a_cur, y);
                (false, true)
            }
            (None, None) => break,
        };
        if advance_a {
            if a_cur.num > 0 {
                a_ins.push(a_cur);
                a_cur.num = 0;
            }
            an = ai.next();
            a_cur.pos += 1;
            a_pos += 1;
        }
        if advance_b {
            if b_cur.num > 0 {
                b_ins.push(b_cur);
                b_cur.num = 0;
            }
            bn = bi.next();
            b_cur.pos += 1;
            b_pos += 1;
        }
    }
    if a_cur.num > 0 {
        a_ins.push(a_cur);
    }
    if b_cur.num > 0 {
        b_ins.push(b_cur);
    }
    Some((a_ins, b_ins))
}

/// Builds spans from ascending bucket indices (`addBucket` of Prometheus's span mergers).
struct SpanBuilder {
    spans: Vec<Span>,
    last: i32,
}

impl SpanBuilder {
    fn new() -> SpanBuilder {
        SpanBuilder {
            spans: Vec::new(),
            last: 0,
        }
    }

    fn add(&mut self, b: i32) {
        let mut offset = b.wrapping_sub(self.last).wrapping_sub(1);
        match self.spans.last_mut() {
            Some(s) if offset == 0 => s.length += 1,
            _ => {
                if self.spans.is_empty() {
                    offset = offset.wrapping_add(1);
                }
                self.spans.push(Span { offset, length: 1 });
            }
        }
        self.last = b;
    }
}

/// `expandSpansBothWays`, for gauge histograms: the forward and backward inserts and the merged
/// spans of two layouts, counts ignored.
pub(super) fn expand_spans_both_ways(
    a: &[Span],
    b: &[Span],
) -> (Vec<Insert>, Vec<Insert>, Vec<Span>) {
    let (mut ai, mut bi) = (bucket_indices(a), bucket_indices(b));
    let (mut f_ins, mut b_ins) = (Vec::new(), Vec::new());
    let (mut f_cur, mut b_cur) = (Insert::default(), Insert::default());
    let mut merged = SpanBuilder::new();
    let (mut av, mut bv) = (ai.next(), bi.next());
    let flush = |ins: &mut Vec<Insert>, cur: &mut Insert| {
        if cur.num > 0 {
            ins.push(*cur);
            cur.num = 0;
        }
    };
    loop {
        match (av, bv) {
            (Some(x), Some(y)) if x == y => {
                flush(&mut f_ins, &mut f_cur);
                flush(&mut b_ins, &mut b_cur);
                merged.add(x);
                av = ai.next();
                bv = bi.next();
                f_cur.pos += 1;
                b_cur.pos += 1;
            }
            (Some(x), Some(y)) if x < y => {
                b_cur.num += 1;
                flush(&mut f_ins, &mut f_cur);
                merged.add(x);
                f_cur.pos += 1;
                av = ai.next();
            }
            (Some(_), Some(y)) => {
                f_cur.num += 1;
                flush(&mut b_ins, &mut b_cur);
                merged.add(y);
                b_cur.pos += 1;
                bv = bi.next();
            }
            (Some(x), None) => {
                b_cur.num += 1;
                merged.add(x);
                av = ai.next();
            }
            (None, Some(y)) => {
                f_cur.num += 1;
                merged.add(y);
                bv = bi.next();
            }
            (None, None) => break,
        }
    }
    flush(&mut f_ins, &mut f_cur);
    flush(&mut b_ins, &mut b_cur);
    (f_ins, b_ins, merged.spans)
}

/// `insert` for delta-encoded buckets: the new buckets are empty, and the bucket after them
/// takes up the difference they skip.
pub(super) fn insert_deltas(input: &[i64], len: usize, inserts: &[Insert]) -> Vec<i64> {
    let mut out = Vec::with_capacity(len);
    let (mut v, mut ii) = (0i64, 0usize);
    for (i, &d) in input.iter().enumerate() {
        let mut first = true;
        while ii < inserts.len() && inserts[ii].pos == i {
            out.push(if first { v.wrapping_neg() } else { 0 });
            first = false;
            out.extend(std::iter::repeat_n(0, inserts[ii].num - 1));
            ii += 1;
        }
        out.push(if first { d } else { d.wrapping_add(v) });
        v = v.wrapping_add(d);
    }
    // Empty buckets after the last one.
    while ii < inserts.len() {
        out.push(v.wrapping_neg());
        out.extend(std::iter::repeat_n(0, inserts[ii].num - 1));
        ii += 1;
        v = 0;
    }
    out.resize(len, 0);
    out
}

/// `insert` for absolute buckets (float bits): the new buckets are 0.
pub(super) fn insert_absolute(input: &[u64], len: usize, inserts: &[Insert]) -> Vec<u64> {
    let mut out = Vec::with_capacity(len);
    let mut ii = 0usize;
    for (i, &d) in input.iter().enumerate() {
        while ii < inserts.len() && inserts[ii].pos == i {
            out.extend(std::iter::repeat_n(0, inserts[ii].num));
            ii += 1;
        }
        out.push(d);
    }
    while ii < inserts.len() {
        out.extend(std::iter::repeat_n(0, inserts[ii].num));
        ii += 1;
    }
    out.resize(len, 0);
    out
}

/// `adjustForInserts`: `spans` widened by the buckets `inserts` add.
pub(super) fn adjust_for_inserts(spans: &[Span], inserts: &[Insert]) -> Vec<Span> {
    if inserts.is_empty() {
        return spans.to_vec();
    }
    let mut merged = SpanBuilder::new();
    let (mut i, mut idx, mut num) = (0usize, inserts[0].bucket_idx, inserts[0].num);
    let consume = |i: &mut usize, idx: &mut i32, num: &mut usize| {
        *num -= 1;
        if *num == 0 {
            *i += 1;
            if let Some(ins) = inserts.get(*i) {
                *idx = ins.bucket_idx;
                *num = ins.num;
            }
        } else {
            *idx = idx.wrapping_add(1);
        }
    };
    let mut it = bucket_indices(spans).peekable();
    while let Some(&b) = it.peek() {
        if i < inserts.len() && idx < b {
            merged.add(idx);
            consume(&mut i, &mut idx, &mut num);
        } else {
            merged.add(b);
            it.next();
        }
    }
    while i < inserts.len() {
        merged.add(idx);
        consume(&mut i, &mut idx, &mut num);
    }
    merged.spans
}

#[cfg(test)]
#[path = "histogram_meta_tests.rs"]
mod tests;
