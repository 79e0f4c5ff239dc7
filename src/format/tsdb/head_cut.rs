//! Where Prometheus's head cuts a series' chunks, floats and native histograms alike: XOR chunks
//! as 2.42's `appendPreprocessor` cuts them, histogram chunks as 3.5's `histogramsAppendPreprocessor`
//! and `appendHistogram` do, and a new chunk whenever the sample type changes.
//!
//! Floats keep 2.42's rule (120 samples per chunk, cut at the chunk-range end or where the rest
//! of the range divides evenly), so float-only series stay byte-identical to promtool 2.42's
//! backfill. Histogram chunks aim at 1024 bytes with at least 10 samples, cut at the chunk-range
//! end, and also where the appender itself cuts (counter reset, schema change, ...).

use anyhow::{bail, Result};

use super::chunkenc::{ENC_FLOAT_HISTOGRAM, ENC_HISTOGRAM, ENC_XOR};
use super::histogram_append::Appended;
use super::{float_histogram, histogram, xor};
use crate::format::histogram::{FloatHistogram, Histogram, HistogramValue};
use crate::format::value::is_stale;

/// The head's target for samples per float chunk (`samplesPerChunk` in `tsdb/head_append.go`).
pub const SAMPLES_PER_CHUNK: usize = 120;
/// The head's size target of a histogram chunk (`chunkenc.TargetBytesPerHistogramChunk`).
pub const TARGET_BYTES_PER_HISTOGRAM_CHUNK: usize = 1024;
/// The fewest samples a histogram chunk is cut at for its size or its estimated end
/// (`chunkenc.MinSamplesPerHistogramChunk`), unless its chunk range ends.
pub const MIN_SAMPLES_PER_HISTOGRAM_CHUNK: usize = 10;

/// The head chunk being filled: one encoding each.
enum Open {
    Xor(xor::Encoder),
    Int(histogram::Encoder),
    Float(float_histogram::Encoder),
}

impl Open {
    fn of(encoding: u8) -> Open {
        match encoding {
            ENC_HISTOGRAM => Open::Int(histogram::Encoder::new()),
            ENC_FLOAT_HISTOGRAM => Open::Float(float_histogram::Encoder::new()),
            _ => Open::Xor(xor::Encoder::new()),
        }
    }

    fn encoding(&self) -> u8 {
        match self {
            Open::Xor(_) => ENC_XOR,
            Open::Int(_) => ENC_HISTOGRAM,
            Open::Float(_) => ENC_FLOAT_HISTOGRAM,
        }
    }

    fn len(&self) -> usize {
        match self {
            Open::Xor(e) => e.len(),
            Open::Int(e) => e.len(),
            Open::Float(e) => e.len(),
        }
    }

    /// Bytes so far, header included (`len(chunk.Bytes())`).
    fn size(&self) -> usize {
        match self {
            Open::Xor(e) => e.size(),
            Open::Int(e) => e.size(),
            Open::Float(e) => e.size(),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Open::Xor(e) => e.finish(),
            Open::Int(e) => e.finish(),
            Open::Float(e) => e.finish(),
        }
    }
}

/// A complete chunk of a series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub encoding: u8,
    pub data: Vec<u8>,
    pub min_time: i64,
    pub max_time: i64,
}

/// One series as the head holds it while samples are appended in time order: the open chunk
/// and when the next one is due. Each append returns the chunk it completed, if any.
pub struct SeriesHead {
    chunk_range: i64,
    open: Option<Open>,
    /// The open chunk's first and last sample times (`minTime`, `maxTime`).
    min_time: i64,
    max_time: i64,
    /// When the next chunk must start at the latest (`nextAt`).
    next_at: i64,
    /// Whether the open histogram chunk's end was estimated (`histogramChunkHasComputedEndTime`,
    /// which the appender's own cuts leave as it was, as Prometheus's do).
    hist_end_computed: bool,
}

impl SeriesHead {
    /// `chunk_range` is the head's chunk range (its blocks' duration); at least 1.
    pub fn new(chunk_range: i64) -> SeriesHead {
        SeriesHead {
            chunk_range: chunk_range.max(1),
            open: None,
            min_time: 0,
            max_time: i64::MIN,
            next_at: i64::MAX,
            hist_end_computed: false,
        }
    }

    fn check_order(&self, t: i64) -> Result<()> {
        if self.open.as_ref().is_some_and(|o| o.len() > 0) && t <= self.max_time {
            bail!(
                "sample at {t} ms is not after the one at {} ms",
                self.max_time
            );
        }
        Ok(())
    }

    /// Starts a new chunk of `encoding` at `t` (`cutNewHeadChunk`); returns the one it ends.
    fn cut(&mut self, encoding: u8, t: i64) -> Option<(Cut, Open)> {
        let old = self.open.replace(Open::of(encoding));
        let done = old.filter(|o| o.len() > 0).map(|o| {
            let cut = Cut {
                encoding: o.encoding(),
                data: Vec::new(),
                min_time: self.min_time,
                max_time: self.max_time,
            };
            (cut, o)
        });
        self.min_time = t;
        self.next_at = range_end(t, self.chunk_range);
        done
    }

    /// Appends a float (raw bits) as 2.42's head does. A staleness marker in a series whose
    /// last sample was a histogram becomes that kind's histogram marker (`headAppender.Append`).
    pub fn append_float(&mut self, t: i64, v: u64) -> Result<Option<Cut>> {
        match self.open {
            Some(Open::Int(_)) if is_stale(v) => {
                return self.append_histogram(t, &HistogramValue::Int(Histogram::stale()));
            }
            Some(Open::Float(_)) if is_stale(v) => {
                let h = HistogramValue::Float(FloatHistogram::stale());
                return self.append_histogram(t, &h);
            }
            _ => {}
        }
        self.check_order(t)?;
        let mut done = None;
        if !matches!(self.open, Some(Open::Xor(_))) {
            done = self.cut(ENC_XOR, t);
        }
        let n = self.open.as_ref().map_or(0, Open::len);
        if n == SAMPLES_PER_CHUNK / 4 {
            self.next_at = chunk_end_time(self.min_time, self.max_time, self.next_at);
        }
        if n > 0 && (t >= self.next_at || n >= 2 * SAMPLES_PER_CHUNK) {
            done = self.cut(ENC_XOR, t);
        }
        let Some(Open::Xor(e)) = self.open.as_mut() else {
            unreachable!("an XOR chunk is open")
        };
        e.append(t, v)?;
        self.max_time = t;
        Ok(done.map(|(c, o)| with_data(c, o)))
    }

    /// Appends a histogram as 3.5's head does (`appendHistogram`/`appendFloatHistogram` after
    /// `histogramsAppendPreprocessor`).
    pub fn append_histogram(&mut self, t: i64, h: &HistogramValue) -> Result<Option<Cut>> {
        self.check_order(t)?;
        let encoding = match h {
            HistogramValue::Int(_) => ENC_HISTOGRAM,
            HistogramValue::Float(_) => ENC_FLOAT_HISTOGRAM,
        };
        let mut done = None;
        let mut created = false;
        if self.open.as_ref().map(Open::encoding) != Some(encoding) {
            done = self.cut(encoding, t);
            created = true;
        }
        let open = self.open.as_ref().expect("opened above");
        let (n, bytes) = (open.len(), open.size());
        if n == 0 {
            self.min_time = t;
            self.next_at = range_end(t, self.chunk_range);
        }
        // Before the end is estimated, `next_at` is the range's end: the minimum count yields
        // to it either way.
        let range_ends = if self.hist_end_computed {
            range_end(self.min_time, self.chunk_range)
        } else {
            self.next_at
        };
        if !self.hist_end_computed && bytes >= TARGET_BYTES_PER_HISTOGRAM_CHUNK / 4 {
            let ratio = TARGET_BYTES_PER_HISTOGRAM_CHUNK as f64 / bytes as f64;
            self.next_at = chunk_end_time_ratio(self.min_time, self.max_time, self.next_at, ratio);
            self.hist_end_computed = true;
        }
        if (t >= self.next_at || bytes >= 2 * TARGET_BYTES_PER_HISTOGRAM_CHUNK)
            && (n >= MIN_SAMPLES_PER_HISTOGRAM_CHUNK || t >= range_ends)
        {
            done = self.cut(encoding, t);
            created = true;
        }
        if created {
            self.hist_end_computed = false;
        }
        // The chunk before decides a new chunk's counter-reset header when the head cut it for
        // its size or time, and only when it held the same kind of histogram.
        let prev = done.as_ref().map(|(_, o)| o);
        let appended = self.append_to_open(prev, t, h)?;
        let mut done = done.map(|(c, o)| with_data(c, o));
        if let Some(next) = appended {
            // The appender cut (a counter reset, a new schema, ...): a new head chunk.
            let old = self.open.replace(next).expect("open");
            debug_assert!(done.is_none(), "a chunk cut by the head starts empty");
            done = Some(Cut {
                encoding: old.encoding(),
                data: old.finish(),
                min_time: self.min_time,
                max_time: self.max_time,
            });
            self.min_time = t;
            self.next_at = range_end(t, self.chunk_range);
        }
        self.max_time = t;
        Ok(done)
    }

    /// The appender's `AppendHistogram`/`AppendFloatHistogram` on the open chunk: the chunk it
    /// cut, if it did.
    fn append_to_open(
        &mut self,
        prev: Option<&Open>,
        t: i64,
        h: &HistogramValue,
    ) -> Result<Option<Open>> {
        Ok(match (self.open.as_mut(), h) {
            (Some(Open::Int(e)), HistogramValue::Int(h)) => {
                let prev = match prev {
                    Some(Open::Int(p)) => Some(p),
                    _ => None,
                };
                match e.append(prev, 0, t, h)? {
                    Appended::Appended => None,
                    Appended::Cut(next) => Some(Open::Int(next)),
                }
            }
            (Some(Open::Float(e)), HistogramValue::Float(h)) => {
                let prev = match prev {
                    Some(Open::Float(p)) => Some(p),
                    _ => None,
                };
                match e.append(prev, 0, t, h)? {
                    Appended::Appended => None,
                    Appended::Cut(next) => Some(Open::Float(next)),
                }
            }
            _ => unreachable!("a chunk of the sample's kind is open"),
        })
    }

    /// The open chunk, complete, if it holds a sample.
    pub fn finish(self) -> Option<Cut> {
        let o = self.open.filter(|o| o.len() > 0)?;
        Some(Cut {
            encoding: o.encoding(),
            data: o.finish(),
            min_time: self.min_time,
            max_time: self.max_time,
        })
    }
}

fn with_data(mut c: Cut, o: Open) -> Cut {
    c.data = o.finish();
    c
}

/// The end of the chunk range holding `t` (`rangeForTimestamp`; Go's division truncates, as
/// Rust's does).
pub fn range_end(t: i64, width: i64) -> i64 {
    (t / width).saturating_mul(width).saturating_add(width)
}

/// Where to cut a float chunk so the samples spread evenly over the rest of its range,
/// estimated at a quarter of a chunk (2.42's integer `computeChunkEndTime`).
pub fn chunk_end_time(start: i64, cur: i64, max: i64) -> i64 {
    let span = (cur.wrapping_sub(start).wrapping_add(1)).saturating_mul(4);
    let n = max.wrapping_sub(start) / span.max(1);
    if n <= 1 {
        return max;
    }
    start + max.wrapping_sub(start) / n
}

/// 3.5's `computeChunkEndTime` with the chunk `1/ratio` full, in Go's float arithmetic.
pub fn chunk_end_time_ratio(start: i64, cur: i64, max: i64, ratio: f64) -> i64 {
    let n =
        (max.wrapping_sub(start)) as f64 / (cur.wrapping_sub(start).wrapping_add(1) as f64 * ratio);
    if n <= 1.0 {
        return max;
    }
    (start as f64 + (max.wrapping_sub(start)) as f64 / n.floor()) as i64
}

#[cfg(test)]
#[path = "head_cut_tests.rs"]
mod tests;
