//! Integer native-histogram chunks (`tsdb/chunkenc/histogram.go`; encoding 2, and 5 with start
//! timestamps, `histogram_st.go`): the decoder, and the encoder that writes what Prometheus 3's
//! `HistogramAppender` writes (its cut and recode rules in `histogram_append`).
//!
//! Header: BE16 sample count, then a byte whose top two bits are the counter-reset header
//! (encoding 5: those bits top the count, which keeps 14 bits, and the third byte is the start
//! times' header). The first sample writes the layout (zero threshold, schema, spans, custom
//! bounds), a varbit time, count and zero count, the sum's 64 bits and varbit bucket deltas;
//! later ones varbit delta-of-deltas of time, counts and buckets and the XOR of the sum.

use anyhow::bail;

use super::bstream::{no_header, BitReader, BitWriter, Fault, Result};
use super::histogram_meta::{
    checked_buckets, read_layout, write_layout, xor_read, xor_write, CounterResetHeader, Layout,
    Sample,
};
use super::st::StartTimes;
use super::{varbit, Error};
use crate::format::histogram::{bucket_count, Histogram};
use crate::format::value::is_stale;

/// Header bytes before the bit stream.
const HEADER: usize = 3;
/// The sample count's bits in the start-time encoding (its top two are the reset header).
const ST_COUNT_MASK: u16 = 0x3fff;

/// Reads a histogram chunk sample by sample; each sample lends the decoder's histogram.
pub struct Decoder<'a> {
    r: BitReader<'a>,
    total: usize,
    read: usize,
    header: CounterResetHeader,
    st: Option<StartTimes>,
    name: &'static str,
    /// The sample read last (buckets as Prometheus's iterator keeps them), and a staleness
    /// marker to lend instead when the sample is one.
    h: Histogram,
    stale: Histogram,
    t: i64,
    t_delta: i64,
    cnt_delta: i64,
    zcnt_delta: i64,
    p_delta: Vec<i64>,
    n_delta: Vec<i64>,
    leading: u32,
    trailing: u32,
}

impl<'a> Decoder<'a> {
    /// A decoder of an encoding 2 chunk (the bytes after the encoding byte).
    pub fn new(chunk: &'a [u8]) -> std::result::Result<Decoder<'a>, Error> {
        Decoder::open(chunk, false)
    }

    /// A decoder of an encoding 5 chunk (with start timestamps).
    pub fn with_start_times(chunk: &'a [u8]) -> std::result::Result<Decoder<'a>, Error> {
        Decoder::open(chunk, true)
    }

    fn open(chunk: &'a [u8], st: bool) -> std::result::Result<Decoder<'a>, Error> {
        let name = if st { "histogram ST" } else { "histogram" };
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
        Ok(Decoder {
            r: BitReader::new(&chunk[HEADER..]),
            total: total as usize,
            read: 0,
            header,
            st,
            name,
            h: Histogram::default(),
            stale: Histogram::stale(),
            t: 0,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            p_delta: Vec::new(),
            n_delta: Vec::new(),
            leading: 0,
            trailing: 0,
        })
    }

    /// The number of samples the header announces.
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How the chunk began: the counter-reset header.
    pub fn header(&self) -> CounterResetHeader {
        self.header
    }

    /// The start time of the sample read last (0 when unknown; always 0 for encoding 2).
    pub fn start_time(&self) -> i64 {
        self.st.map_or(0, |s| s.st())
    }

    /// The next sample: its start time, time and histogram (hint from the header: see
    /// [`CounterResetHeader::hint`]), `None` after the last; an error at the byte of the chunk
    /// where the sample that broke starts, after which the decoder stops.
    #[allow(clippy::should_implement_trait)] // lends from self: not an Iterator
    pub fn next(&mut self) -> Option<std::result::Result<Sample<'_, Histogram>, Error>> {
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
        let h = if is_stale(self.h.sum) {
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
        let np = checked_buckets(&self.r, &positive, 1)?;
        let nn = checked_buckets(&self.r, &negative, 1)?;
        self.t = varbit::read_int(&mut self.r)?;
        let h = &mut self.h;
        h.schema = schema;
        h.zero_threshold = zero_threshold;
        h.positive_spans = positive;
        h.negative_spans = negative;
        h.custom_values = custom;
        h.count = varbit::read_uint(&mut self.r)?;
        h.zero_count = varbit::read_uint(&mut self.r)?;
        h.sum = self.r.bits(64)?;
        h.positive_buckets = (0..np)
            .map(|_| varbit::read_int(&mut self.r))
            .collect::<Result<_>>()?;
        h.negative_buckets = (0..nn)
            .map(|_| varbit::read_int(&mut self.r))
            .collect::<Result<_>>()?;
        self.p_delta = vec![0; np];
        self.n_delta = vec![0; nn];
        Ok(())
    }

    fn later(&mut self) -> Result<()> {
        let r = &mut self.r;
        self.t_delta = self.t_delta.wrapping_add(varbit::read_int(r)?);
        self.t = self.t.wrapping_add(self.t_delta);
        self.cnt_delta = self.cnt_delta.wrapping_add(varbit::read_int(r)?);
        self.h.count = self.h.count.wrapping_add(self.cnt_delta as u64);
        self.zcnt_delta = self.zcnt_delta.wrapping_add(varbit::read_int(r)?);
        self.h.zero_count = self.h.zero_count.wrapping_add(self.zcnt_delta as u64);
        xor_read(r, &mut self.h.sum, &mut self.leading, &mut self.trailing)?;
        if is_stale(self.h.sum) {
            return Ok(());
        }
        for (b, d) in self.h.positive_buckets.iter_mut().zip(&mut self.p_delta) {
            *d = d.wrapping_add(varbit::read_int(r)?);
            *b = b.wrapping_add(*d);
        }
        for (b, d) in self.h.negative_buckets.iter_mut().zip(&mut self.n_delta) {
            *d = d.wrapping_add(varbit::read_int(r)?);
            *b = b.wrapping_add(*d);
        }
        Ok(())
    }
}

/// Decodes a histogram chunk, with start timestamps when `st` (encoding 5, else 2), calling
/// `f(sample)` per sample in order; returns the number of samples.
pub fn decode(
    chunk: &[u8],
    st: bool,
    mut f: impl FnMut(Sample<'_, Histogram>),
) -> std::result::Result<usize, Error> {
    let mut d = Decoder::open(chunk, st)?;
    let mut n = 0;
    while let Some(s) = d.next() {
        f(s?);
        n += 1;
    }
    Ok(n)
}

/// A histogram chunk being written, as Prometheus's `HistogramAppender` writes it: [`push`]
/// appends whatever it is given that fits the chunk's layout (`appendHistogram`), [`append`]
/// decides as Prometheus does whether the sample fits at all (`AppendHistogram`).
///
/// [`push`]: Encoder::push
/// [`append`]: Encoder::append
#[derive(Clone, Debug)]
pub struct Encoder {
    pub(super) w: BitWriter,
    pub(super) n: usize,
    pub(super) header: CounterResetHeader,
    /// Start times (encoding 5) and their header byte.
    pub(super) st: Option<(StartTimes, u8)>,
    pub(super) schema: i32,
    pub(super) zero_threshold: u64,
    pub(super) p_spans: Vec<crate::format::histogram::Span>,
    pub(super) n_spans: Vec<crate::format::histogram::Span>,
    pub(super) custom: Vec<u64>,
    pub(super) t: i64,
    pub(super) cnt: u64,
    pub(super) zcnt: u64,
    t_delta: i64,
    cnt_delta: i64,
    zcnt_delta: i64,
    pub(super) p_buckets: Vec<i64>,
    pub(super) n_buckets: Vec<i64>,
    p_delta: Vec<i64>,
    n_delta: Vec<i64>,
    pub(super) sum: u64,
    leading: u32,
    trailing: u32,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// An empty chunk of encoding 2.
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
            cnt: 0,
            zcnt: 0,
            t_delta: 0,
            cnt_delta: 0,
            zcnt_delta: 0,
            p_buckets: Vec::new(),
            n_buckets: Vec::new(),
            p_delta: Vec::new(),
            n_delta: Vec::new(),
            sum: 0,
            // No window yet: the second sample's sum always opens one.
            leading: 0xff,
            trailing: 0,
        }
    }

    /// An empty chunk of encoding 5 (with start timestamps).
    pub fn with_start_times() -> Encoder {
        Encoder {
            st: Some((StartTimes::default(), 0)),
            ..Encoder::new()
        }
    }

    /// An empty chunk of the same encoding.
    pub(super) fn empty_like(&self) -> Encoder {
        match self.st {
            Some(_) => Encoder::with_start_times(),
            None => Encoder::new(),
        }
    }

    /// Samples so far.
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

    /// The most samples a chunk holds (16 bits of count, 14 with start times).
    pub(super) fn capacity(&self) -> usize {
        match self.st {
            Some(_) => ST_COUNT_MASK as usize,
            None => u16::MAX as usize,
        }
    }

    /// Appends `h` at `t` as Prometheus's `appendHistogram` does, after checking that it fits:
    /// the first sample sets the layout, later ones must share it (a staleness marker fits
    /// any). Start time `st` is written for encoding 5 only.
    pub fn push(&mut self, st: i64, t: i64, h: &Histogram) -> anyhow::Result<()> {
        if self.n >= self.capacity() {
            bail!(
                "a histogram chunk holds at most {} samples",
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
        if self.n > 0 && is_stale(self.sum) && !stale {
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

    /// `appendHistogram`'s bits and state, the sample known to fit.
    fn write(&mut self, t: i64, h: &Histogram) {
        let stale;
        let h = if h.is_stale() {
            // No buckets, and an empty layout if it is the chunk's first sample.
            stale = Histogram::stale();
            &stale
        } else {
            h
        };
        let (mut t_delta, mut cnt_delta, mut zcnt_delta) = (0, 0, 0);
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
            self.p_buckets = vec![0; h.positive_buckets.len()];
            self.n_buckets = vec![0; h.negative_buckets.len()];
            self.p_delta = vec![0; h.positive_buckets.len()];
            self.n_delta = vec![0; h.negative_buckets.len()];
            varbit::put_int(w, t);
            varbit::put_uint(w, h.count);
            varbit::put_uint(w, h.zero_count);
            w.put(h.sum, 64);
            for &b in h.positive_buckets.iter().chain(&h.negative_buckets) {
                varbit::put_int(w, b);
            }
        } else {
            t_delta = t.wrapping_sub(self.t);
            cnt_delta = (h.count as i64).wrapping_sub(self.cnt as i64);
            zcnt_delta = (h.zero_count as i64).wrapping_sub(self.zcnt as i64);
            let (mut cnt_dod, mut zcnt_dod) = (
                cnt_delta.wrapping_sub(self.cnt_delta),
                zcnt_delta.wrapping_sub(self.zcnt_delta),
            );
            if h.is_stale() {
                (cnt_dod, zcnt_dod) = (0, 0);
            }
            varbit::put_int(w, t_delta.wrapping_sub(self.t_delta));
            varbit::put_int(w, cnt_dod);
            varbit::put_int(w, zcnt_dod);
            xor_write(w, h.sum, self.sum, &mut self.leading, &mut self.trailing);
            let sides = [
                (&h.positive_buckets, &self.p_buckets, &mut self.p_delta),
                (&h.negative_buckets, &self.n_buckets, &mut self.n_delta),
            ];
            for (new, old, deltas) in sides {
                for ((b, o), d) in new.iter().zip(old.iter()).zip(deltas.iter_mut()) {
                    let delta = b.wrapping_sub(*o);
                    varbit::put_int(w, delta.wrapping_sub(*d));
                    *d = delta;
                }
            }
        }
        self.t = t;
        self.cnt = h.count;
        self.zcnt = h.zero_count;
        self.t_delta = t_delta;
        self.cnt_delta = cnt_delta;
        self.zcnt_delta = zcnt_delta;
        for (o, b) in self.p_buckets.iter_mut().zip(&h.positive_buckets) {
            *o = *b;
        }
        for (o, b) in self.n_buckets.iter_mut().zip(&h.negative_buckets) {
            *o = *b;
        }
        self.sum = h.sum;
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

/// Encodes samples into one histogram chunk (encoding 2) with [`Encoder::push`]: the counter
/// reset header from the first sample's hint, as decoding gives it back.
pub fn encode(samples: &[(i64, Histogram)]) -> anyhow::Result<Vec<u8>> {
    let mut e = Encoder::new();
    if let Some((_, h)) = samples.first() {
        e.set_header(CounterResetHeader::of_hint(h.hint));
    }
    for (t, h) in samples {
        e.push(0, *t, h)?;
    }
    Ok(e.finish())
}

/// Fuzz logic: arbitrary bytes as a histogram chunk of both encodings; never panics.
pub fn fuzz_histogram_chunk(data: &[u8]) {
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
#[path = "histogram_tests.rs"]
pub(crate) mod tests;
