//! Float native-histogram chunks (`tsdb/chunkenc/float_histogram.go`; encoding 3, and 6 with
//! start timestamps): the decoder, and the encoder that writes what Prometheus 3's
//! `FloatHistogramAppender` writes (its cut and recode rules in `float_histogram_append`).
//!
//! The header is the integer chunks'. The first sample writes the layout, a varbit time and the
//! 64 bits of count, zero count, sum and each bucket; later ones a varbit delta-of-delta of time
//! and the XOR of each value against its value before, each with its own window.

use anyhow::bail;

use super::bstream::{no_header, BitReader, BitWriter, Fault, Result};
use super::histogram_meta::{
    checked_buckets, read_layout, write_layout, xor_read, xor_write, CounterResetHeader, Layout,
    Sample,
};
use super::st::StartTimes;
use super::{varbit, Error};
use crate::format::histogram::{bucket_count, FloatHistogram, Span};
use crate::format::value::is_stale;

const HEADER: usize = 3;
const ST_COUNT_MASK: u16 = 0x3fff;

/// A value XORed against the one before it, with its window (Prometheus's `xorValue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct XorValue {
    pub value: u64,
    leading: u32,
    trailing: u32,
}

impl XorValue {
    /// A writer's value before its first XOR: no window yet.
    fn new(value: u64) -> XorValue {
        XorValue {
            value,
            leading: 0xff,
            trailing: 0,
        }
    }

    /// A reader's: Prometheus's iterator starts from zeros.
    fn read(value: u64) -> XorValue {
        XorValue {
            value,
            leading: 0,
            trailing: 0,
        }
    }

    fn write(&mut self, w: &mut BitWriter, v: u64) {
        xor_write(w, v, self.value, &mut self.leading, &mut self.trailing);
        self.value = v;
    }

    fn next(&mut self, r: &mut BitReader) -> Result<u64> {
        xor_read(r, &mut self.value, &mut self.leading, &mut self.trailing)?;
        Ok(self.value)
    }
}

/// Reads a float histogram chunk sample by sample; each sample lends the decoder's histogram.
pub struct Decoder<'a> {
    r: BitReader<'a>,
    total: usize,
    read: usize,
    header: CounterResetHeader,
    st: Option<StartTimes>,
    name: &'static str,
    h: FloatHistogram,
    stale: FloatHistogram,
    t: i64,
    t_delta: i64,
    cnt: XorValue,
    zcnt: XorValue,
    sum: XorValue,
    p: Vec<XorValue>,
    n: Vec<XorValue>,
}

impl<'a> Decoder<'a> {
    /// A decoder of an encoding 3 chunk (the bytes after the encoding byte).
    pub fn new(chunk: &'a [u8]) -> std::result::Result<Decoder<'a>, Error> {
        Decoder::open(chunk, false)
    }

    /// A decoder of an encoding 6 chunk (with start timestamps).
    pub fn with_start_times(chunk: &'a [u8]) -> std::result::Result<Decoder<'a>, Error> {
        Decoder::open(chunk, true)
    }

    fn open(chunk: &'a [u8], st: bool) -> std::result::Result<Decoder<'a>, Error> {
        let name = if st {
            "float histogram ST"
        } else {
            "float histogram"
        };
        if chunk.len() < HEADER {
            return Err(no_header(name, chunk.len()));
        }
        let n = u16::from_be_bytes([chunk[0], chunk[1]]);
        let (total, header, st) = if st {
            let h = CounterResetHeader::from_bits(chunk[0]);
            (
                n & ST_COUNT_MASK,
                h,
                Some(StartTimes::from_header(chunk[2])),
            )
        } else {
            (n, CounterResetHeader::from_bits(chunk[2]), None)
        };
        let zero = XorValue::read(0);
        Ok(Decoder {
            r: BitReader::new(&chunk[HEADER..]),
            total: total as usize,
            read: 0,
            header,
            st,
            name,
            h: FloatHistogram::default(),
            stale: FloatHistogram::stale(),
            t: 0,
            t_delta: 0,
            cnt: zero,
            zcnt: zero,
            sum: zero,
            p: Vec::new(),
            n: Vec::new(),
        })
    }

    /// The number of samples the header announces.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub fn header(&self) -> CounterResetHeader {
        self.header
    }

    /// The start time of the sample read last (0 when unknown; always 0 for encoding 3).
    pub fn start_time(&self) -> i64 {
        self.st.map_or(0, |s| s.st())
    }

    /// The next sample, as [`super::histogram::Decoder::next`] gives it.
    #[allow(clippy::should_implement_trait)] // lends from self: not an Iterator
    pub fn next(&mut self) -> Option<std::result::Result<Sample<'_, FloatHistogram>, Error>> {
        if self.read >= self.total {
            return None;
        }
        let at = HEADER + self.r.consumed_bits() / 8;
        let prev_t = self.t;
        let res = if self.read == 0 {
            self.first()
        } else {
            self.later()
        };
        let res = res.and_then(|()| match &mut self.st {
            Some(st) => st.decode(&mut self.r, self.read as u16 + 1, self.t, prev_t),
            None => Ok(()),
        });
        if let Err(e) = res {
            let err = e.at(self.name, self.read, self.total, at);
            self.read = self.total;
            return Some(Err(err));
        }
        let hint = self.header.hint(self.read);
        self.read += 1;
        let st = self.start_time();
        let h = if is_stale(self.sum.value) {
            self.stale.hint = hint;
            &self.stale
        } else {
            self.h.hint = hint;
            &self.h
        };
        Some(Ok(Sample { st, t: self.t, h }))
    }

    fn first(&mut self) -> Result<()> {
        let Layout {
            schema,
            zero_threshold,
            positive,
            negative,
            custom,
        } = read_layout(&mut self.r)?;
        let np = checked_buckets(&self.r, &positive, 64)?;
        let nn = checked_buckets(&self.r, &negative, 64)?;
        self.t = varbit::read_int(&mut self.r)?;
        let r = &mut self.r;
        self.cnt = XorValue::read(r.bits(64)?);
        self.zcnt = XorValue::read(r.bits(64)?);
        self.sum = XorValue::read(r.bits(64)?);
        self.p = (0..np)
            .map(|_| r.bits(64).map(XorValue::read))
            .collect::<Result<_>>()?;
        self.n = (0..nn)
            .map(|_| r.bits(64).map(XorValue::read))
            .collect::<Result<_>>()?;
        let h = &mut self.h;
        h.schema = schema;
        h.zero_threshold = zero_threshold;
        h.positive_spans = positive;
        h.negative_spans = negative;
        h.custom_values = custom;
        self.fill();
        Ok(())
    }

    fn later(&mut self) -> Result<()> {
        let r = &mut self.r;
        self.t_delta = self.t_delta.wrapping_add(varbit::read_int(r)?);
        self.t = self.t.wrapping_add(self.t_delta);
        self.cnt.next(r)?;
        self.zcnt.next(r)?;
        self.sum.next(r)?;
        if is_stale(self.sum.value) {
            return Ok(());
        }
        for b in self.p.iter_mut().chain(self.n.iter_mut()) {
            b.next(r)?;
        }
        self.fill();
        Ok(())
    }

    /// The lent histogram from the values read.
    fn fill(&mut self) {
        let h = &mut self.h;
        h.count = self.cnt.value;
        h.zero_count = self.zcnt.value;
        h.sum = self.sum.value;
        h.positive_buckets.clear();
        h.positive_buckets.extend(self.p.iter().map(|v| v.value));
        h.negative_buckets.clear();
        h.negative_buckets.extend(self.n.iter().map(|v| v.value));
    }
}

/// Decodes a float histogram chunk, with start timestamps when `st` (encoding 6, else 3),
/// calling `f(sample)` per sample in order; returns the number of samples.
pub fn decode(
    chunk: &[u8],
    st: bool,
    mut f: impl FnMut(Sample<'_, FloatHistogram>),
) -> std::result::Result<usize, Error> {
    let mut d = Decoder::open(chunk, st)?;
    let mut n = 0;
    while let Some(s) = d.next() {
        f(s?);
        n += 1;
    }
    Ok(n)
}

/// A float histogram chunk being written, as Prometheus's `FloatHistogramAppender` writes it;
/// the mirror of [`super::histogram::Encoder`].
#[derive(Clone, Debug)]
pub struct Encoder {
    pub(super) w: BitWriter,
    pub(super) n: usize,
    pub(super) header: CounterResetHeader,
    pub(super) st: Option<(StartTimes, u8)>,
    pub(super) schema: i32,
    pub(super) zero_threshold: u64,
    pub(super) p_spans: Vec<Span>,
    pub(super) n_spans: Vec<Span>,
    pub(super) custom: Vec<u64>,
    pub(super) t: i64,
    t_delta: i64,
    pub(super) cnt: XorValue,
    pub(super) zcnt: XorValue,
    pub(super) sum: XorValue,
    pub(super) p_buckets: Vec<XorValue>,
    pub(super) n_buckets: Vec<XorValue>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// An empty chunk of encoding 3.
    pub fn new() -> Encoder {
        Encoder {
            w: BitWriter::default(),
            n: 0,
            header: CounterResetHeader::Unknown,
            st: None,
            schema: 0,
            zero_threshold: 0,
            p_spans: Vec::new(),
            n_spans: Vec::new(),
            custom: Vec::new(),
            t: i64::MIN,
            t_delta: 0,
            cnt: XorValue::new(0),
            zcnt: XorValue::new(0),
            sum: XorValue::new(0),
            p_buckets: Vec::new(),
            n_buckets: Vec::new(),
        }
    }

    /// An empty chunk of encoding 6 (with start timestamps).
    pub fn with_start_times() -> Encoder {
        Encoder {
            st: Some((StartTimes::default(), 0)),
            ..Encoder::new()
        }
    }

    pub(super) fn empty_like(&self) -> Encoder {
        match self.st {
            Some(_) => Encoder::with_start_times(),
            None => Encoder::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Size of the chunk so far, header included.
    pub fn size(&self) -> usize {
        HEADER + self.w.bytes.len()
    }

    pub fn header(&self) -> CounterResetHeader {
        self.header
    }

    pub fn set_header(&mut self, h: CounterResetHeader) {
        self.header = h;
    }

    fn capacity(&self) -> usize {
        match self.st {
            Some(_) => ST_COUNT_MASK as usize,
            None => u16::MAX as usize,
        }
    }

    /// Appends `h` at `t` as Prometheus's `appendFloatHistogram` does, after checking that it
    /// fits the chunk's layout (see [`super::histogram::Encoder::push`]).
    pub fn push(&mut self, st: i64, t: i64, h: &FloatHistogram) -> anyhow::Result<()> {
        if self.n >= self.capacity() {
            bail!(
                "a float histogram chunk holds at most {} samples",
                self.capacity()
            );
        }
        let stale = h.is_stale();
        let fits = if self.n == 0 {
            stale
                || (bucket_count(&h.positive_spans) == h.positive_buckets.len()
                    && bucket_count(&h.negative_spans) == h.negative_buckets.len())
        } else {
            stale
                || (h.schema == self.schema
                    && h.zero_threshold == self.zero_threshold
                    && h.positive_spans == self.p_spans
                    && h.negative_spans == self.n_spans
                    && h.custom_values == self.custom
                    && h.positive_buckets.len() == self.p_buckets.len()
                    && h.negative_buckets.len() == self.n_buckets.len())
        };
        if !fits {
            bail!("sample at {t}: {}", Fault::Layout);
        }
        if self.n > 0 && is_stale(self.sum.value) && !stale {
            bail!("sample at {t} after a staleness marker in the same chunk");
        }
        let prev_t = self.t;
        self.write(t, h);
        self.n += 1;
        if let Some((s, byte)) = &mut self.st {
            s.encode(&mut self.w, byte, self.n as u16, t, prev_t, st);
        }
        Ok(())
    }

    fn write(&mut self, t: i64, h: &FloatHistogram) {
        let stale;
        let h = if h.is_stale() {
            stale = FloatHistogram::stale();
            &stale
        } else {
            h
        };
        let mut t_delta = 0;
        let w = &mut self.w;
        if self.n == 0 {
            write_layout(
                w,
                h.schema,
                h.zero_threshold,
                &h.positive_spans,
                &h.negative_spans,
                &h.custom_values,
            );
            self.schema = h.schema;
            self.zero_threshold = h.zero_threshold;
            self.p_spans = h.positive_spans.clone();
            self.n_spans = h.negative_spans.clone();
            self.custom = h.custom_values.clone();
            self.p_buckets = h
                .positive_buckets
                .iter()
                .map(|&b| XorValue::new(b))
                .collect();
            self.n_buckets = h
                .negative_buckets
                .iter()
                .map(|&b| XorValue::new(b))
                .collect();
            varbit::put_int(w, t);
            for v in [h.count, h.zero_count, h.sum] {
                w.put(v, 64);
            }
            self.cnt.value = h.count;
            self.zcnt.value = h.zero_count;
            self.sum.value = h.sum;
            for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
                w.put(b, 64);
            }
        } else {
            t_delta = t.wrapping_sub(self.t);
            varbit::put_int(w, t_delta.wrapping_sub(self.t_delta));
            self.cnt.write(w, h.count);
            self.zcnt.write(w, h.zero_count);
            self.sum.write(w, h.sum);
            for (x, &b) in self.p_buckets.iter_mut().zip(&h.positive_buckets) {
                x.write(w, b);
            }
            for (x, &b) in self.n_buckets.iter_mut().zip(&h.negative_buckets) {
                x.write(w, b);
            }
        }
        self.t = t;
        self.t_delta = t_delta;
    }

    /// The chunk's bytes: header (count, counter-reset bits, start-time byte), bit stream.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size());
        match self.st {
            Some((_, st_byte)) => {
                let n = (self.n as u16 & ST_COUNT_MASK) | (self.header.bits() as u16) << 8;
                out.extend_from_slice(&n.to_be_bytes());
                out.push(st_byte);
            }
            None => {
                out.extend_from_slice(&(self.n as u16).to_be_bytes());
                out.push(self.header.bits());
            }
        }
        out.extend_from_slice(&self.w.bytes);
        out
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes()
    }
}

/// Encodes samples into one float histogram chunk (encoding 3) with [`Encoder::push`], the
/// header from the first sample's hint.
pub fn encode(samples: &[(i64, FloatHistogram)]) -> anyhow::Result<Vec<u8>> {
    let mut e = Encoder::new();
    if let Some((_, h)) = samples.first() {
        e.set_header(CounterResetHeader::of_hint(h.hint));
    }
    for (t, h) in samples {
        e.push(0, *t, h)?;
    }
    Ok(e.finish())
}

/// Fuzz logic: arbitrary bytes as a float histogram chunk of both encodings; never panics.
pub fn fuzz_float_histogram_chunk(data: &[u8]) {
    for d in [Decoder::new(data), Decoder::with_start_times(data)]
        .into_iter()
        .flatten()
    {
        let mut d = d;
        let mut n = 0;
        while let Some(s) = d.next() {
            n += 1;
            if s.is_err() || n > 70_000 {
                break;
            }
        }
    }
}

#[cfg(test)]
#[path = "float_histogram_tests.rs"]
mod tests;
