//! `inspect` of a Prometheus data directory or block: series and samples (floats, native
//! histograms and the staleness markers of each apart) from the block indexes and chunks, and
//! the head replayed; a sample two sources hold is counted once, as Prometheus's querier merges.
//!
//! Every chunk is decoded, since only a value's bits tell a staleness marker. Sources overlap
//! where a block's time range overlaps another's, or where the head holds samples older than the
//! newest block (out-of-order chunks Prometheus 3 keeps in chunks_head after compacting them, an
//! in-order chunk across the last block's end): there the samples are merged by timestamp.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use rayon::prelude::*;

use super::{Report, Scan, SeriesAcc};
use crate::format::histogram::HistogramValue;
use crate::format::tsdb::chunkenc::Value;
use crate::format::tsdb::chunks;
use crate::format::tsdb::tombstones::Tombstones;
use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::labels::Labels;
use crate::pipeline::datadir::{self, Block};
use crate::select::filter::Filter;

/// What a sample is, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A float sample, not a staleness marker.
    Float,
    FloatMarker,
    Histogram,
    HistogramMarker,
}

impl Kind {
    fn of(v: &Value<'_>) -> Kind {
        match v {
            Value::Float(bits) if *bits == STALE_NAN_BITS => Kind::FloatMarker,
            Value::Float(_) => Kind::Float,
            Value::Histogram(h) if h.is_stale() => Kind::HistogramMarker,
            Value::FloatHistogram(h) if h.is_stale() => Kind::HistogramMarker,
            _ => Kind::Histogram,
        }
    }

    fn of_histogram(h: &HistogramValue) -> Kind {
        if h.is_stale() {
            Kind::HistogramMarker
        } else {
            Kind::Histogram
        }
    }
}

/// Samples of one series in one source, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    floats: u64,
    float_markers: u64,
    histograms: u64,
    markers: u64,
    /// Of those, floats, float markers and histograms the filters keep.
    kept_floats: u64,
    kept_float_markers: u64,
    kept_histograms: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.floats += o.floats;
        self.float_markers += o.float_markers;
        self.kept_float_markers += o.kept_float_markers;
        self.histograms += o.histograms;
        self.markers += o.markers;
        self.kept_floats += o.kept_floats;
        self.kept_histograms += o.kept_histograms;
    }

    fn count(&mut self, k: Kind, n: u64, kept: u64) {
        match k {
            Kind::Float => {
                self.floats += n;
                self.kept_floats += kept;
            }
            Kind::FloatMarker => {
                self.float_markers += n;
                self.kept_float_markers += kept;
            }
            Kind::Histogram => {
                self.histograms += n;
                self.kept_histograms += kept;
            }
            Kind::HistogramMarker => self.markers += n,
        }
    }

    /// Counts every sample of a time-ordered list.
    fn of_samples(samples: &[(i64, Kind)], keep: bool, filter: &Filter) -> Counts {
        let mut c = Counts::default();
        for &(t, k) in samples {
            c.count(k, 1, u64::from(keep && filter.keeps_time(t)));
        }
        c
    }
}

/// Samples of a series ordered by time, one per timestamp: the later of two at one timestamp
/// wins (the head after the blocks, as the reader hands them to the sink).
fn dedup(mut samples: Vec<(i64, Kind)>) -> Vec<(i64, Kind)> {
    samples.sort_by_key(|s| s.0);
    let mut out: Vec<(i64, Kind)> = Vec::with_capacity(samples.len());
    for s in samples {
        match out.last_mut() {
            Some(last) if last.0 == s.0 => *last = s,
            _ => out.push(s),
        }
    }
    out
}

/// One source's share of a series: its counts from the chunk headers, and the samples of the
/// chunks where sources may overlap (merged across sources before counting).
type SeriesScan = (Labels, Counts, Vec<(i64, Kind)>);
/// A source's series and the time range its data covers.
type SourceScan = (Vec<SeriesScan>, Option<(i64, i64)>);

/// Inspects a Prometheus data directory or block from its indexes and chunk headers: distinct
/// series across blocks and head, sample counts from the chunk headers, the time range from the
/// chunk metas. Chunks cut by --start/--end or by a tombstone, native histogram chunks (for
/// their staleness markers) and chunks where sources overlap are decoded.
pub fn inspect_tsdb(dir: &Path, filter: &Filter, top: Option<usize>) -> Result<Report> {
    let opened = datadir::open(dir)?;
    let blocks = &opened.blocks;
    let (head, head_range) = match &opened.head_dir {
        Some(h) => scan_head(h, blocks)?,
        None => (Vec::new(), None),
    };
    // Head samples a block may hold too: those before the newest block's end. The other head
    // series are counted as they are.
    let blocks_end = blocks.iter().map(|b| b.meta.max_time).max();
    let mut early: HashMap<Labels, (i64, i64)> = HashMap::new();
    let mut head_scan = Vec::with_capacity(head.len());
    for (labels, samples) in head {
        let end = blocks_end.unwrap_or(i64::MIN);
        match samples.iter().take_while(|x| x.0 < end).last() {
            Some(last) => {
                early.insert(labels.clone(), (samples[0].0, last.0));
                head_scan.push((labels, Counts::default(), samples));
            }
            None => {
                let c = Counts::of_samples(&samples, filter.keeps_series(&labels), filter);
                head_scan.push((labels, c, Vec::new()));
            }
        }
    }
    let per_block = blocks
        .par_iter()
        .enumerate()
        .map(|(i, b)| {
            let overlapped = blocks.iter().enumerate().any(|(j, o)| {
                j != i && o.meta.min_time < b.meta.max_time && b.meta.min_time < o.meta.max_time
            });
            scan_block(b, filter, overlapped, &early)
        })
        .collect::<Result<Vec<_>>>()?;
    let head = (head_scan, head_range);
    let scan = merge(per_block.into_iter().chain([head]), filter);
    let (markers, kept_markers) = scan
        .series
        .values()
        .fold((0, 0), |(m, k), a| (m + a.markers, k + a.kept_markers));
    let mut report = scan.report(filter, top);
    report.stale_markers = Some(markers);
    report.kept_stale_markers = Some(kept_markers);
    Ok(report)
}

/// Sums the sources' counts per series (a series in several blocks is one series) and counts the
/// merged samples of their overlapping chunks once.
fn merge(sources: impl Iterator<Item = SourceScan>, filter: &Filter) -> Scan {
    let mut scan = Scan::default();
    let mut totals: HashMap<Labels, Counts> = HashMap::new();
    let mut exact: HashMap<Labels, Vec<(i64, Kind)>> = HashMap::new();
    for (series, range) in sources {
        if let Some((a, b)) = range {
            scan.min_ts = Some(scan.min_ts.map_or(a, |t| t.min(a)));
            scan.max_ts = Some(scan.max_ts.map_or(b, |t| t.max(b)));
        }
        for (labels, counts, samples) in series {
            if !samples.is_empty() {
                exact.entry(labels.clone()).or_default().extend(samples);
            }
            totals.entry(labels).or_default().add(&counts);
        }
    }
    for (labels, samples) in exact {
        let keep = filter.keeps_series(&labels);
        let c = Counts::of_samples(&dedup(samples), keep, filter);
        totals.entry(labels).or_default().add(&c);
    }
    for (labels, c) in totals {
        let a = acc(&mut scan, labels, filter);
        a.samples += c.floats;
        a.kept += c.kept_floats;
        a.markers += c.float_markers;
        a.kept_markers += c.kept_float_markers;
        a.histograms += c.histograms;
        a.hist_markers += c.markers;
        a.kept_histograms += c.kept_histograms;
        // prefix + a value of about 10 characters + timestamp and separators
        let out_bytes = c.kept_floats * (a.prefix_len + 26);
        scan.out_bytes += out_bytes;
    }
    scan
}

/// The accumulator of series `labels`, made on first sight.
fn acc<'s>(scan: &'s mut Scan, labels: Labels, filter: &Filter) -> &'s mut SeriesAcc {
    scan.series.entry(labels).or_insert_with_key(|labels| {
        let mut prefix = Vec::new();
        let mut edited = labels.clone();
        filter.edits.apply(&mut edited);
        crate::format::openmetrics::write_series_prefix(&edited, &mut prefix);
        SeriesAcc {
            prefix_len: prefix.len() as u64,
            ..Default::default()
        }
    })
}

/// The head's series and samples, replayed as `convert` does: every sample listed (one per
/// timestamp: the replay may give one twice, an out-of-order chunk on disk and the wbl that
/// wrote it), so that those a block holds too can be counted once; and their time range.
#[allow(clippy::type_complexity)]
fn scan_head(
    dir: &Path,
    blocks: &[Block],
) -> Result<(Vec<(Labels, Vec<(i64, Kind)>)>, Option<(i64, i64)>)> {
    use crate::pipeline::head::{self, HeadOptions, HeadVisitor};
    struct Collect {
        series: Vec<(Labels, Vec<(i64, Kind)>)>,
    }
    impl HeadVisitor for Collect {
        fn series(&mut self, labels: &Labels) -> Result<Option<u32>> {
            self.series.push((labels.clone(), Vec::new()));
            Ok(Some(self.series.len() as u32 - 1))
        }
        fn sample(&mut self, id: u32, ts: i64, bits: u64) -> Result<()> {
            let kind = match bits == STALE_NAN_BITS {
                true => Kind::FloatMarker,
                false => Kind::Float,
            };
            self.series[id as usize].1.push((ts, kind));
            Ok(())
        }
        fn histogram(&mut self, id: u32, ts: i64, h: &HistogramValue) -> Result<()> {
            self.series[id as usize].1.push((ts, Kind::of_histogram(h)));
            Ok(())
        }
    }
    let opts = HeadOptions {
        min_valid_time: blocks.last().map_or(i64::MIN, |b| b.meta.max_time),
        mint: i64::MIN,
        maxt: i64::MAX,
        skip_invalid: false,
    };
    let mut c = Collect { series: Vec::new() };
    head::read_head(dir, &opts, &mut c)?;
    let mut range: Option<(i64, i64)> = None;
    let mut out = Vec::new();
    for (labels, samples) in c.series {
        let samples = dedup(samples);
        let (Some(a), Some(b)) = (samples.first(), samples.last()) else {
            continue;
        };
        range = Some(range.map_or((a.0, b.0), |(x, y)| (x.min(a.0), y.max(b.0))));
        out.push((labels, samples));
    }
    Ok((out, range))
}

/// One block's series: counts from the chunk headers, or the samples of chunks another source
/// may hold too (all of them when the block overlaps another; those reaching into the head's
/// early samples of the series, `early`).
fn scan_block(
    block: &Block,
    filter: &Filter,
    overlapped: bool,
    early: &HashMap<Labels, (i64, i64)>,
) -> Result<SourceScan> {
    let ix = block.index()?;
    let name = block.name();
    let bad =
        |e: crate::format::tsdb::Error, file: &str| crate::bad_input!("block {name}: {file}: {e}");
    let mut metas = Vec::new();
    let mut out = Vec::new();
    let mut range: Option<(i64, i64)> = None;
    for id in ix.all_postings().map_err(|e| bad(e, "index"))? {
        let labels = ix.series(id, &mut metas).map_err(|e| bad(e, "index"))?;
        let keep = filter.keeps_series(&labels);
        let deleted = block.tombstones.intervals(id as u64);
        let head_span = early.get(&labels).copied();
        let mut counts = Counts::default();
        let mut exact = Vec::new();
        for m in &metas {
            if Tombstones::covers(deleted, m.min_time, m.max_time) {
                continue;
            }
            let (seg, off) = chunks::unpack_ref(m.chunk_ref);
            let file = format!("chunks/{:06}", seg + 1);
            let bytes = block
                .segments
                .get(seg)
                .ok_or_else(|| crate::bad_input!("block {name}: {file} is missing"))?;
            chunks::header_at(bytes, off).map_err(|e| bad(e, &file))?;
            let (a, b) = range.unwrap_or((m.min_time, m.max_time));
            range = Some((a.min(m.min_time), b.max(m.max_time)));
            let shared =
                overlapped || head_span.is_some_and(|(a, b)| a <= m.max_time && m.min_time <= b);
            let chunk = ChunkAt {
                bytes,
                off,
                deleted,
            };
            if shared {
                chunk
                    .samples(|t, k| exact.push((t, k)))
                    .map_err(|e| bad(e, &file))?;
                continue;
            }
            chunk
                .samples(|t, k| counts.count(k, 1, u64::from(keep && filter.keeps_time(t))))
                .map_err(|e| bad(e, &file))?;
        }
        out.push((labels, counts, exact));
    }
    Ok((out, range))
}

/// A chunk of a block, with the tombstones of its series.
struct ChunkAt<'a> {
    bytes: &'a [u8],
    off: usize,
    deleted: &'a [(i64, i64)],
}

impl ChunkAt<'_> {
    /// Every sample the tombstones leave, by kind.
    fn samples(&self, mut f: impl FnMut(i64, Kind)) -> crate::format::tsdb::Result<()> {
        let c = chunks::chunk_at(self.bytes, self.off)?;
        c.decode_samples(|_, t, v| {
            if !Tombstones::deleted(self.deleted, t) {
                f(t, Kind::of(&v));
            }
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_later_of_two_samples_at_one_timestamp_is_counted() {
        let s = vec![
            (5, Kind::Float),
            (1, Kind::Float),
            (5, Kind::Histogram),
            (3, Kind::HistogramMarker),
        ];
        assert_eq!(
            dedup(s),
            [
                (1, Kind::Float),
                (3, Kind::HistogramMarker),
                (5, Kind::Histogram)
            ]
        );
        let c = Counts::of_samples(
            &[
                (1, Kind::Float),
                (3, Kind::HistogramMarker),
                (5, Kind::Histogram),
            ],
            true,
            &Filter {
                end: Some(4),
                ..Default::default()
            },
        );
        assert_eq!(
            c,
            Counts {
                floats: 1,
                histograms: 1,
                markers: 1,
                kept_floats: 1,
                ..Default::default()
            }
        );
    }
}
