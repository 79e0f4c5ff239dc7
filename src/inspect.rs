//! `inspect`: what a dump or a shard directory holds — metric families with their series and
//! sample counts, label cardinality, time range — and how much the filters would keep, so a user
//! can choose --match/--start/--end before a long run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::format::dump::{self, Value};
use crate::format::shard_dir::{ShardDir, SIDECAR_STALE_MARKERS};
use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::labels::Labels;
use crate::pipeline::input::{self, Chunker, InputSpec};
use crate::select::filter::Filter;

/// One metric family.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Family {
    pub name: String,
    pub series: u64,
    /// Samples, staleness markers not included (of a data directory; a dump's markers print as
    /// NaN and count as samples).
    pub samples: u64,
    /// Staleness markers of a data directory (not in `samples`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stale_markers: u64,
    /// Samples that pass the filters.
    pub kept_samples: u64,
    pub kept_series: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One label name and how many distinct values it has.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LabelCardinality {
    pub name: String,
    pub values: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Report {
    pub families: Vec<Family>,
    pub labels: Vec<LabelCardinality>,
    pub series: u64,
    /// Samples, staleness markers not included (see [`Family::samples`]).
    pub samples: u64,
    pub min_ts_ms: Option<i64>,
    pub max_ts_ms: Option<i64>,
    pub kept_series: u64,
    pub kept_samples: u64,
    /// OpenMetrics text the kept samples would make, estimated from their series and values.
    pub estimated_output_bytes: u64,
    pub invalid_lines: u64,
    /// Where the first invalid lines are: `file:line: what is wrong: excerpt`.
    pub first_invalid: Vec<String>,
    /// The staleness markers (not in `samples`): a shard directory's sidecars carry them, a
    /// data directory's chunks and head hold them. `None` for a dump, whose markers print as NaN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_markers: Option<u64>,
    /// Of a data directory: the staleness markers that pass the filters (what `convert` carries
    /// in sidecars, or keeps with `--stale keep`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_stale_markers: Option<u64>,
}

/// Per-series counts while scanning.
#[derive(Default)]
struct SeriesAcc {
    samples: u64,
    kept: u64,
    markers: u64,
    kept_markers: u64,
    prefix_len: u64,
}

/// Accumulates series and samples from any source.
#[derive(Default)]
struct Scan {
    series: HashMap<Labels, SeriesAcc>,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
    invalid: u64,
    first_invalid: Vec<String>,
    out_bytes: u64,
}

impl Scan {
    /// Counts a bad line and keeps where the first few are, as `convert` reports them.
    fn invalid_line(&mut self, name: &str, line_no: u64, e: &impl std::fmt::Display, line: &[u8]) {
        self.invalid += 1;
        if self.first_invalid.len() < 5 {
            self.first_invalid.push(format!(
                "{name}:{line_no}: {e}: {}",
                crate::pipeline::convert::excerpt(line)
            ));
        }
    }

    fn sample(
        &mut self,
        labels: &Labels,
        kept_series: bool,
        ts: i64,
        value_len: usize,
        filter: &Filter,
    ) {
        self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        let acc = match self.series.get_mut(labels) {
            Some(a) => a,
            None => {
                let mut prefix = Vec::new();
                let mut edited = labels.clone();
                filter.edits.apply(&mut edited);
                crate::format::openmetrics::write_series_prefix(&edited, &mut prefix);
                self.series.entry(labels.clone()).or_insert(SeriesAcc {
                    prefix_len: prefix.len() as u64,
                    ..Default::default()
                })
            }
        };
        acc.samples += 1;
        if kept_series && filter.keeps_time(ts) {
            acc.kept += 1;
            // prefix + value + ' ' + seconds (about 14 bytes) + '\n'
            self.out_bytes += acc.prefix_len + value_len as u64 + 16;
        }
    }

    fn report(mut self, filter: &Filter, top: Option<usize>) -> Report {
        let mut fams: BTreeMap<String, Family> = BTreeMap::new();
        let mut values: BTreeMap<String, HashSet<String>> = BTreeMap::new();
        let mut r = Report {
            min_ts_ms: self.min_ts,
            max_ts_ms: self.max_ts,
            invalid_lines: self.invalid,
            first_invalid: std::mem::take(&mut self.first_invalid),
            estimated_output_bytes: self.out_bytes,
            ..Default::default()
        };
        for (labels, acc) in &self.series {
            let f = fams.entry(labels.metric_name().to_string()).or_default();
            f.name = labels.metric_name().to_string();
            f.series += 1;
            f.samples += acc.samples;
            f.stale_markers += acc.markers;
            f.kept_samples += acc.kept;
            f.kept_series += u64::from(acc.kept > 0);
            r.series += 1;
            r.samples += acc.samples;
            r.kept_series += u64::from(acc.kept > 0);
            r.kept_samples += acc.kept;
            for (n, v) in labels.iter() {
                values
                    .entry(n.to_string())
                    .or_default()
                    .insert(v.to_string());
            }
        }
        let _ = filter;
        r.families = fams.into_values().collect();
        r.families
            .sort_by(|a, b| b.samples.cmp(&a.samples).then_with(|| a.name.cmp(&b.name)));
        r.labels = values
            .into_iter()
            .map(|(name, v)| LabelCardinality {
                name,
                values: v.len() as u64,
            })
            .collect();
        r.labels
            .sort_by(|a, b| b.values.cmp(&a.values).then_with(|| a.name.cmp(&b.name)));
        if let Some(n) = top {
            r.families.truncate(n);
            r.labels.truncate(n);
        }
        r
    }
}

/// Inspects dump inputs (files or stdin, plain or gzip).
pub fn inspect_dump(inputs: &[InputSpec], filter: &Filter, top: Option<usize>) -> Result<Report> {
    let mut scan = Scan::default();
    for spec in inputs {
        let r = input::open(spec, Default::default())?;
        scan_dump(r, &spec.name(), filter, &mut scan)
            .with_context(|| format!("reading {}", spec.name()))?;
    }
    Ok(scan.report(filter, top))
}

fn scan_dump(r: Box<dyn Read + Send>, name: &str, filter: &Filter, scan: &mut Scan) -> Result<()> {
    let mut ch = Chunker::new(r, 4 << 20);
    let mut cache: HashMap<Vec<u8>, (Labels, bool)> = HashMap::new();
    let mut line_no = 0u64;
    while let Some(chunk) = ch.next_chunk()? {
        for line in chunk.split(|&b| b == b'\n') {
            line_no += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let l = match dump::parse_line(line) {
                Ok(l) => l,
                Err(e) => {
                    scan.invalid_line(name, line_no, &e, line);
                    continue;
                }
            };
            if !cache.contains_key(l.labels) {
                let labels = match dump::decode_series(l.labels) {
                    Ok(labels) => labels,
                    Err(e) => {
                        scan.invalid_line(name, line_no, &e, line);
                        continue;
                    }
                };
                let keep = filter.keeps_series(&labels);
                cache.insert(l.labels.to_vec(), (labels, keep));
            }
            let (labels, keep) = &cache[l.labels];
            if let Value::Float(_) = l.value {
                let value_len = line.len() - l.labels.len() - 2 - ts_len(l.ts);
                scan.sample(labels, *keep, l.ts, value_len, filter);
            }
        }
        // A chunk holds whole lines: its split yields one empty piece after the last newline.
        line_no -= u64::from(chunk.ends_with(b"\n"));
    }
    Ok(())
}

fn ts_len(ts: i64) -> usize {
    let mut buf = itoa_len(ts.unsigned_abs());
    if ts < 0 {
        buf += 1;
    }
    buf
}

fn itoa_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// Inspects a Prometheus data directory or block from its indexes and chunks: distinct series
/// across blocks, samples and staleness markers apart (every float chunk is decoded, since only
/// a value's bits tell a marker), the time range from the chunk metas.
pub fn inspect_tsdb(dir: &Path, filter: &Filter, top: Option<usize>) -> Result<Report> {
    use crate::pipeline::datadir;
    use rayon::prelude::*;
    let opened = datadir::open(dir)?;
    // Blocks are scanned in parallel, then their series merged: a series in several blocks is
    // one series.
    let per_block = opened
        .blocks
        .par_iter()
        .map(|b| scan_block(b, filter))
        .collect::<Result<Vec<_>>>()?;
    let mut per_block = per_block;
    if let Some(head) = &opened.head_dir {
        per_block.push(scan_head(head, &opened.blocks, filter)?);
    }
    let mut scan = Scan::default();
    for (series, range) in per_block {
        if let Some((a, b)) = range {
            scan.min_ts = Some(scan.min_ts.map_or(a, |t| t.min(a)));
            scan.max_ts = Some(scan.max_ts.map_or(b, |t| t.max(b)));
        }
        for (labels, n) in series {
            let acc = match scan.series.get_mut(&labels) {
                Some(a) => a,
                None => {
                    let mut prefix = Vec::new();
                    let mut edited = labels.clone();
                    filter.edits.apply(&mut edited);
                    crate::format::openmetrics::write_series_prefix(&edited, &mut prefix);
                    scan.series.entry(labels).or_insert(SeriesAcc {
                        prefix_len: prefix.len() as u64,
                        ..Default::default()
                    })
                }
            };
            acc.samples += n.samples;
            acc.kept += n.kept;
            acc.markers += n.markers;
            acc.kept_markers += n.kept_markers;
            // prefix + a value of about 10 characters + timestamp and separators
            scan.out_bytes += n.kept * (acc.prefix_len + 26);
        }
    }
    let (markers, kept_markers) = scan
        .series
        .values()
        .fold((0, 0), |(m, k), a| (m + a.markers, k + a.kept_markers));
    let mut report = scan.report(filter, top);
    report.stale_markers = Some(markers);
    report.kept_stale_markers = Some(kept_markers);
    Ok(report)
}

/// One series' counts in one block or the head: samples and staleness markers apart, and of
/// each what the filters keep.
#[derive(Default)]
struct Counts {
    samples: u64,
    markers: u64,
    kept: u64,
    kept_markers: u64,
}

impl Counts {
    fn add(&mut self, stale: bool, kept: bool) {
        let (all, k) = match stale {
            true => (&mut self.markers, &mut self.kept_markers),
            false => (&mut self.samples, &mut self.kept),
        };
        *all += 1;
        *k += u64::from(kept);
    }
}

/// The head's series and samples, counted by replaying it as `convert` does. The replay may give
/// a sample twice (an out-of-order chunk on disk and the wbl that wrote it): count it once.
fn scan_head(
    dir: &Path,
    blocks: &[crate::pipeline::datadir::Block],
    filter: &Filter,
) -> Result<BlockScan> {
    use crate::pipeline::head::{self, HeadOptions, HeadVisitor};
    struct Count {
        series: Vec<(Labels, Vec<(i64, bool)>)>,
    }
    impl HeadVisitor for Count {
        fn series(&mut self, labels: &Labels) -> Result<Option<u32>> {
            self.series.push((labels.clone(), Vec::new()));
            Ok(Some(self.series.len() as u32 - 1))
        }
        fn sample(&mut self, id: u32, ts: i64, bits: u64) -> Result<()> {
            self.series[id as usize]
                .1
                .push((ts, bits == STALE_NAN_BITS));
            Ok(())
        }
    }
    let opts = HeadOptions {
        min_valid_time: blocks.last().map_or(i64::MIN, |b| b.meta.max_time),
        mint: i64::MIN,
        maxt: i64::MAX,
        skip_invalid: false,
    };
    let mut c = Count { series: Vec::new() };
    head::read_head(dir, &opts, &mut c)?;
    let mut range: Option<(i64, i64)> = None;
    let mut out = Vec::new();
    for (labels, mut ts) in c.series {
        ts.sort_unstable_by_key(|&(t, _)| t);
        ts.dedup_by_key(|&mut (t, _)| t);
        let (Some(&(a, _)), Some(&(b, _))) = (ts.first(), ts.last()) else {
            continue;
        };
        range = Some(range.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
        let keep = filter.keeps_series(&labels);
        let mut n = Counts::default();
        for &(t, stale) in &ts {
            n.add(stale, keep && filter.keeps_time(t));
        }
        out.push((labels, n));
    }
    Ok((out, range))
}

/// Per series of one block: labels and counts; and the block's time range from its chunk metas.
type BlockScan = (Vec<(Labels, Counts)>, Option<(i64, i64)>);

fn scan_block(block: &crate::pipeline::datadir::Block, filter: &Filter) -> Result<BlockScan> {
    use crate::format::tsdb::tombstones::Tombstones;
    use crate::format::tsdb::{chunkenc, chunks};
    let (start, end) = (
        filter.start.unwrap_or(i64::MIN),
        filter.end.unwrap_or(i64::MAX),
    );
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
        let mut n = Counts::default();
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
            let (enc, _) = chunks::header_at(bytes, off).map_err(|e| bad(e, &file))?;
            if !matches!(enc, chunkenc::ENC_XOR | chunkenc::ENC_XOR2) {
                continue;
            }
            let (a, b) = range.unwrap_or((m.min_time, m.max_time));
            range = Some((a.min(m.min_time), b.max(m.max_time)));
            let c = chunks::chunk_at(bytes, off).map_err(|e| bad(e, &file))?;
            c.decode(|t, bits| {
                if !Tombstones::deleted(deleted, t) {
                    n.add(bits == STALE_NAN_BITS, keep && start <= t && t <= end);
                }
            })
            .map_err(|e| bad(e, &file))?;
        }
        out.push((labels, n));
    }
    Ok((out, range))
}

/// Inspects a shard directory through its manifest and the shards' OpenMetrics, each shard read
/// once and checked as `verify` checks it: a shard that does not match its manifest is an error
/// naming it.
pub fn inspect_dir(dir: &Path, filter: &Filter, top: Option<usize>) -> Result<Report> {
    let dir = ShardDir::open(dir)?;
    let mut scan = Scan::default();
    let mut fmt = Vec::new();
    for i in 0..dir.manifest().shards.len() {
        dir.read_samples(i, |s| {
            let keep = filter.keeps_series(s.labels);
            fmt.clear();
            crate::format::gofloat::format_g(s.value, &mut fmt);
            scan.sample(s.labels, keep, s.ts_ms, fmt.len(), filter);
            Ok(())
        })?;
    }
    let mut report = scan.report(filter, top);
    let markers = dir.manifest().shards.iter().flat_map(|e| &e.sidecars);
    let markers = markers.filter(|s| s.kind == SIDECAR_STALE_MARKERS);
    let n: u64 = markers.map(|s| s.samples).sum();
    report.stale_markers = (n > 0).then_some(n);
    Ok(report)
}
