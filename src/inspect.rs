//! `inspect`: what a dump or a shard directory holds — metric families with their series and
//! sample counts, label cardinality, time range — and how much the filters would keep, so a user
//! can choose --match/--start/--end before a long run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

mod tsdb;

pub use tsdb::inspect_tsdb;

use crate::format::dump::{self, Value};
use crate::format::shard_dir::{self, ShardDir, SIDECAR_STALE_MARKERS};
use crate::labels::Labels;
use crate::pipeline::input::{self, Chunker, InputSpec};
use crate::select::filter::Filter;

/// One metric family.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Family {
    pub name: String,
    pub series: u64,
    /// Samples, staleness markers not included (of a data or shard directory; a dump's markers
    /// print as NaN and count as samples).
    pub samples: u64,
    /// Staleness markers of a data directory (not in `samples`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stale_markers: u64,
    /// Native histogram samples, staleness markers excluded (of a data or shard directory).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub histogram_samples: u64,
    /// Native histogram staleness markers (of a data or shard directory).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub histogram_stale_markers: u64,
    /// Float samples that pass the filters.
    pub kept_samples: u64,
    /// Histogram samples that pass the filters.
    #[serde(skip_serializing_if = "is_zero")]
    pub kept_histogram_samples: u64,
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
    /// Native histogram samples, staleness markers excluded (of a data directory).
    #[serde(skip_serializing_if = "is_zero")]
    pub histogram_samples: u64,
    /// Native histogram staleness markers (of a data directory).
    #[serde(skip_serializing_if = "is_zero")]
    pub histogram_stale_markers: u64,
    pub min_ts_ms: Option<i64>,
    pub max_ts_ms: Option<i64>,
    pub kept_series: u64,
    pub kept_samples: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub kept_histogram_samples: u64,
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
    /// Float samples and those kept.
    samples: u64,
    kept: u64,
    /// Float staleness markers and those kept.
    markers: u64,
    kept_markers: u64,
    /// Histogram samples, histogram staleness markers, histogram samples kept.
    histograms: u64,
    hist_markers: u64,
    kept_histograms: u64,
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

    /// A float sample, `value_len` the length of its value's text.
    fn sample(
        &mut self,
        labels: &Labels,
        kept_series: bool,
        ts: i64,
        value_len: usize,
        filter: &Filter,
    ) {
        self.count(labels, (kept_series, ts, value_len), filter, false);
    }

    /// A native histogram sample (not a marker) of a shard directory, `value_len` the length of
    /// its text in the side file.
    fn histogram(
        &mut self,
        labels: &Labels,
        kept_series: bool,
        ts: i64,
        value_len: usize,
        filter: &Filter,
    ) {
        self.count(labels, (kept_series, ts, value_len), filter, true);
    }

    /// Counts a sample of either kind, and the text it would make when kept.
    fn count(
        &mut self,
        labels: &Labels,
        (kept_series, ts, value_len): (bool, i64, usize),
        filter: &Filter,
        hist: bool,
    ) {
        let acc = self.series_acc(labels, ts, filter);
        let (all, kept) = match hist {
            true => (&mut acc.histograms, &mut acc.kept_histograms),
            false => (&mut acc.samples, &mut acc.kept),
        };
        *all += 1;
        if kept_series && filter.keeps_time(ts) {
            *kept += 1;
            // prefix + value + ' ' + seconds (about 14 bytes) + '\n'
            self.out_bytes += acc.prefix_len + value_len as u64 + 16;
        }
    }

    /// The counts of series `labels`, which has a sample at `ts`.
    fn series_acc(&mut self, labels: &Labels, ts: i64, filter: &Filter) -> &mut SeriesAcc {
        self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        if !self.series.contains_key(labels) {
            let mut prefix = Vec::new();
            let mut edited = labels.clone();
            filter.edits.apply(&mut edited);
            crate::format::openmetrics::write_series_prefix(&edited, &mut prefix);
            let acc = SeriesAcc {
                prefix_len: prefix.len() as u64,
                ..Default::default()
            };
            self.series.insert(labels.clone(), acc);
        }
        self.series.get_mut(labels).expect("inserted above")
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
            let kept = acc.kept + acc.kept_histograms > 0;
            f.samples += acc.samples;
            f.stale_markers += acc.markers;
            f.histogram_samples += acc.histograms;
            f.histogram_stale_markers += acc.hist_markers;
            f.kept_samples += acc.kept;
            f.kept_histogram_samples += acc.kept_histograms;
            f.kept_series += u64::from(kept);
            r.series += 1;
            r.samples += acc.samples;
            r.histogram_samples += acc.histograms;
            r.histogram_stale_markers += acc.hist_markers;
            r.kept_series += u64::from(kept);
            r.kept_samples += acc.kept;
            r.kept_histogram_samples += acc.kept_histograms;
            for (n, v) in labels.iter() {
                values
                    .entry(n.to_string())
                    .or_default()
                    .insert(v.to_string());
            }
        }
        let _ = filter;
        r.families = fams.into_values().collect();
        let size = |f: &Family| f.samples + f.histogram_samples + f.histogram_stale_markers;
        r.families
            .sort_by(|a, b| size(b).cmp(&size(a)).then_with(|| a.name.cmp(&b.name)));
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

/// Inspects a shard directory through its manifest and the shards' OpenMetrics, each shard read
/// once and checked as `verify` checks it: a shard that does not match its manifest is an error
/// naming it.
pub fn inspect_dir(dir: &Path, filter: &Filter, top: Option<usize>) -> Result<Report> {
    let dir = ShardDir::open(dir)?;
    let mut scan = Scan::default();
    let mut fmt = Vec::new();
    for i in 0..dir.manifest().shards.len() {
        dir.read_points(i, |p| {
            let keep = filter.keeps_series(p.labels);
            fmt.clear();
            match p.value {
                shard_dir::Value::Float(v) => {
                    crate::format::gofloat::format_g(v, &mut fmt);
                    scan.sample(p.labels, keep, p.ts_ms, fmt.len(), filter);
                }
                shard_dir::Value::StaleMarker => {}
                shard_dir::Value::Histogram(h) if h.is_stale() => {
                    scan.series_acc(p.labels, p.ts_ms, filter).hist_markers += 1
                }
                shard_dir::Value::Histogram(h) => {
                    crate::format::histtext::write_value(h, &mut fmt);
                    scan.histogram(p.labels, keep, p.ts_ms, fmt.len(), filter);
                }
            }
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
