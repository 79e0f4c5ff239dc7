//! The `convert` pipeline: dump text → parsed, filtered samples → a [`SampleSink`]. Inputs are cut
//! into newline-aligned chunks that are parsed in parallel; each chunk remembers the decision for
//! each series it met, so a line of a series the filters drop costs little more than finding its
//! end. Chunks are merged in input order, which keeps "the later input wins" deterministic.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use anyhow::{Context, Result};
use bstr::ByteSlice;
use rayon::prelude::*;

use crate::format::dump::{self, Value};
use crate::format::openmetrics;
use crate::labels::Labels;
use crate::pipeline::feed::{Provenance, SampleSink, SeriesId};
use crate::pipeline::input::{self, Chunker, InputSpec};
use crate::select::filter::{Filter, LabelEdits};

// 1 MiB: thousands of lines per parallel task, and little memory in flight.
const CHUNK_BYTES: usize = 1 << 20;
/// Bad lines reported in detail under --skip-invalid; the rest are only counted.
const MAX_REPORTED: usize = 5;
/// Distinct series the selectors dropped that are counted, for the message of a run that keeps
/// nothing (about 4 MiB of hashes); beyond it the count is a lower bound.
const MAX_COUNTED_DROPPED: usize = 1 << 18;

#[derive(Clone, Debug, Default)]
pub struct ConvertOptions {
    pub filter: Filter,
    pub skip_invalid: bool,
    pub progress: bool,
}

/// What the input held and what the filters did with it.
#[derive(Clone, Debug, Default)]
pub struct ConvertStats {
    pub bytes: u64,
    pub lines: u64,
    pub samples_kept: u64,
    /// Samples of series that no selector matched.
    pub dropped_by_match: u64,
    /// Samples of kept series outside --start/--end.
    pub dropped_by_time: u64,
    pub histograms_skipped: u64,
    pub invalid_lines: u64,
    pub empty_lines: u64,
    /// `file:line: message: excerpt` of the first few bad lines.
    pub invalid_reported: Vec<String>,
    /// Earliest and latest timestamp of the input's samples (for a series the selectors drop,
    /// those of the first and last line of each run of its lines).
    pub input_range: Option<(i64, i64)>,
    /// Earliest and latest timestamp of the samples of the series the selectors keep, before
    /// --start/--end.
    pub matched_range: Option<(i64, i64)>,
    /// Distinct series the selectors dropped, counted (up to `MAX_COUNTED_DROPPED`) only while
    /// no sample has been kept: they only matter to say why a run kept nothing.
    pub dropped_series: HashSet<u64>,
    /// The source labels of a series whose value an `--add-label` replaced (the first one).
    pub add_label_override: Option<Labels>,
}

impl ConvertStats {
    fn add(&mut self, o: &ChunkStats) {
        self.lines += o.lines;
        self.samples_kept += o.kept;
        self.dropped_by_match += o.dropped_by_match;
        self.dropped_by_time += o.dropped_by_time;
        self.histograms_skipped += o.histograms;
        self.invalid_lines += o.invalid;
        self.empty_lines += o.empty;
        self.input_range = widen(self.input_range, o.input_range);
        self.matched_range = widen(self.matched_range, o.matched_range);
    }

    /// Distinct series in the input, and whether that is a lower bound (too many to count).
    pub fn input_series(&self, matched: usize) -> (u64, bool) {
        let dropped = self.dropped_series.len();
        ((dropped + matched) as u64, dropped >= MAX_COUNTED_DROPPED)
    }
}

/// The smallest range holding both.
fn widen(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
        (a, None) => a,
        (None, b) => b,
    }
}

fn widen_ts(r: &mut Option<(i64, i64)>, ts: i64) {
    *r = widen(*r, Some((ts, ts)));
}

#[derive(Default)]
struct ChunkStats {
    lines: u64,
    kept: u64,
    dropped_by_match: u64,
    dropped_by_time: u64,
    histograms: u64,
    invalid: u64,
    empty: u64,
    input_range: Option<(i64, i64)>,
    matched_range: Option<(i64, i64)>,
}

/// A parsed chunk: its series (kept ones with their edited labels), its kept samples, and the
/// bad lines it met (line numbers within the chunk, from 1).
struct Parsed {
    series: Vec<Labels>,
    /// Per kept series, what the label edits erased (empty without edits).
    origins: Vec<Box<[u8]>>,
    /// A kept series (local index) whose value an `--add-label` replaced.
    overrode: Option<u32>,
    /// Hashes of the label blocks of the series the selectors dropped.
    dropped: Vec<u64>,
    samples: Vec<(u32, i64, f64)>,
    stats: ChunkStats,
    bad: Vec<(u64, String)>,
    /// Set when a bad line ends the run (no --skip-invalid): nothing after it is used.
    fatal: bool,
}

/// Runs the whole conversion of `inputs` into `sink`.
pub fn convert(
    inputs: &[InputSpec],
    opts: &ConvertOptions,
    sink: &mut impl SampleSink,
) -> Result<ConvertStats> {
    let total: u64 = inputs.iter().filter_map(|i| i.size()).sum();
    let pb = if opts.progress {
        crate::progress::bar(total, "reading", true)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut stats = ConvertStats::default();
    let read = Arc::new(AtomicU64::new(0));
    for spec in inputs {
        convert_one(spec, opts, sink, &mut stats, read.clone(), &pb)?;
    }
    pb.finish_and_clear();
    stats.bytes = read.load(Ordering::Relaxed);
    Ok(stats)
}

fn convert_one(
    spec: &InputSpec,
    opts: &ConvertOptions,
    sink: &mut impl SampleSink,
    stats: &mut ConvertStats,
    read: Arc<AtomicU64>,
    pb: &indicatif::ProgressBar,
) -> Result<()> {
    let name = spec.name();
    let reader = input::open(spec, read.clone())?;
    let batch = 2 * rayon::current_num_threads().max(1);
    // A reader thread keeps decompression and I/O off the parsing threads.
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(2);
    let reader_thread = std::thread::spawn(move || {
        let mut ch = Chunker::new(reader, CHUNK_BYTES);
        loop {
            let next = ch.next_chunk().transpose();
            let end = !matches!(next, Some(Ok(_)));
            if let Some(item) = next {
                if tx.send(item).is_err() {
                    return;
                }
            }
            if end {
                return;
            }
        }
    });
    let mut line_base = 0u64;
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(batch);
    let mut finished = false;
    while !finished {
        chunks.clear();
        while chunks.len() < batch {
            match rx.recv() {
                Ok(Ok(c)) => chunks.push(c),
                Ok(Err(e)) => return Err(e).with_context(|| format!("reading {name}")),
                Err(_) => {
                    finished = true;
                    break;
                }
            }
        }
        let parsed: Vec<Parsed> = chunks
            .par_iter()
            .map(|c| parse_chunk(c, &opts.filter, opts.skip_invalid))
            .collect();
        for (chunk, p) in chunks.iter().zip(parsed) {
            merge(p, &opts.filter.edits, chunk, &name, line_base, sink, stats)?;
            line_base += chunk.iter().filter(|&&b| b == b'\n').count() as u64
                + u64::from(!chunk.ends_with(b"\n"));
        }
        pb.set_position(read.load(Ordering::Relaxed));
    }
    let _ = reader_thread.join();
    Ok(())
}

/// Adds a parsed chunk to the sink, turning its bad lines into `file:line` reports.
fn merge(
    p: Parsed,
    edits: &LabelEdits,
    chunk: &[u8],
    name: &str,
    line_base: u64,
    sink: &mut impl SampleSink,
    stats: &mut ConvertStats,
) -> Result<()> {
    for (line_no, msg) in &p.bad {
        let text = format!("{name}:{}: {msg}", line_base + line_no);
        if p.fatal {
            return Err(crate::bad_input!("{text}")
                .context("invalid dump line (use --skip-invalid to skip such lines)"));
        }
        if stats.invalid_reported.len() < MAX_REPORTED {
            stats.invalid_reported.push(text);
        }
    }
    let _ = chunk;
    stats.add(&p.stats);
    if stats.samples_kept == 0 {
        for h in p.dropped {
            if stats.dropped_series.len() < MAX_COUNTED_DROPPED {
                stats.dropped_series.insert(h);
            }
        }
    } else if !stats.dropped_series.is_empty() {
        stats.dropped_series = HashSet::new();
    }
    if let (None, Some(i)) = (&stats.add_label_override, p.overrode) {
        let i = i as usize;
        stats.add_label_override = Some(edits.restore(&p.series[i], &p.origins[i]));
    }
    let mut ids: Vec<SeriesId> = Vec::with_capacity(p.series.len());
    for (i, l) in p.series.into_iter().enumerate() {
        let from = Provenance {
            origin: Some(p.origins.get(i).map_or(&[][..], |o| &o[..])),
            // The dump prints a staleness marker as NaN: the sink guesses which NaNs are.
            nan_markers: true,
        };
        ids.push(sink.series(l, from)?);
    }
    for (local, ts, v) in p.samples {
        sink.float(ids[local as usize], ts, v.to_bits())?;
    }
    Ok(())
}

/// What a chunk decided for a series it met: its local index, or dropped by the selectors.
#[derive(Clone, Copy)]
enum Decision {
    Keep(u32),
    Drop,
}

fn parse_chunk(chunk: &[u8], filter: &Filter, skip_invalid: bool) -> Parsed {
    let mut p = Parsed {
        series: Vec::new(),
        origins: Vec::new(),
        overrode: None,
        dropped: Vec::new(),
        samples: Vec::with_capacity(chunk.len() / 64),
        stats: ChunkStats::default(),
        bad: Vec::new(),
        fatal: false,
    };
    let mut seen: HashMap<&[u8], Decision> = HashMap::new();
    let mut prev: (&[u8], Decision) = (b"", Decision::Drop);
    // The last line of the current run of a dropped series: its timestamp is read when the run
    // ends, so that the input's time range costs one parse per run, not per line.
    let mut run_tail: Option<&[u8]> = None;
    for (i, line) in chunk.lines_with_terminator().enumerate() {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        p.stats.lines += 1;
        if line.is_empty() {
            p.stats.empty += 1;
            continue;
        }
        // Same series as the line before: no need to look at the labels again.
        let same = !prev.0.is_empty()
            && line.len() > prev.0.len()
            && line[prev.0.len()] == b' '
            && line.starts_with(prev.0);
        if same {
            if let Decision::Drop = prev.1 {
                p.stats.dropped_by_match += 1;
                run_tail = Some(line);
                continue;
            }
        }
        if let Some(tail) = run_tail.take() {
            end_dropped_run(&mut p.stats, tail, prev.0.len());
        }
        let parsed = if same {
            dump::parse_after_labels(line, prev.0.len())
        } else {
            dump::parse_line(line)
        };
        let parsed = match parsed {
            Ok(l) => l,
            Err(e) => {
                if bad_line(&mut p, i, line, &e.to_string(), skip_invalid) {
                    return p;
                }
                continue;
            }
        };
        let decision = if same {
            prev.1
        } else {
            match seen.get(parsed.labels) {
                Some(&d) => d,
                None => match decide(parsed.labels, filter, &mut p) {
                    Ok(d) => {
                        seen.insert(parsed.labels, d);
                        d
                    }
                    Err(e) => {
                        if bad_line(&mut p, i, line, &e.to_string(), skip_invalid) {
                            return p;
                        }
                        continue;
                    }
                },
            }
        };
        prev = (parsed.labels, decision);
        widen_ts(&mut p.stats.input_range, parsed.ts);
        let Decision::Keep(local) = decision else {
            p.stats.dropped_by_match += 1;
            continue;
        };
        widen_ts(&mut p.stats.matched_range, parsed.ts);
        match parsed.value {
            Value::Histogram(_) => p.stats.histograms += 1,
            Value::Float(_) if !filter.keeps_time(parsed.ts) => p.stats.dropped_by_time += 1,
            Value::Float(_) if !openmetrics::timestamp_supported(parsed.ts) => {
                let msg = format!(
                    "timestamp {} ms is out of range: OpenMetrics carries |t| <= {} ms (about year 280000) exactly",
                    parsed.ts,
                    openmetrics::MAX_ABS_TIMESTAMP_MS
                );
                if bad_line(&mut p, i, line, &msg, skip_invalid) {
                    return p;
                }
            }
            Value::Float(v) => {
                p.stats.kept += 1;
                p.samples.push((local, parsed.ts, v));
            }
        }
    }
    if let Some(tail) = run_tail {
        end_dropped_run(&mut p.stats, tail, prev.0.len());
    }
    p
}

/// Adds the timestamp of the last line of a dropped series' run (its labels `n` bytes long) to
/// the input's time range.
fn end_dropped_run(stats: &mut ChunkStats, tail: &[u8], n: usize) {
    if let Ok(l) = dump::parse_after_labels(tail, n) {
        widen_ts(&mut stats.input_range, l.ts);
    }
}

/// Decodes a new series' labels and applies the selectors and edits.
fn decide(raw: &[u8], filter: &Filter, p: &mut Parsed) -> Result<Decision, dump::LineError> {
    let mut labels = dump::decode_series(raw)?;
    if !filter.keeps_series(&labels) {
        // Fixed keys: the same block hashes the same in every chunk.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        h.write(raw);
        p.dropped.push(h.finish());
        return Ok(Decision::Drop);
    }
    let local = p.series.len() as u32;
    if !filter.edits.is_empty() {
        let traced = filter.edits.apply_traced(&mut labels);
        if traced.overrides && p.overrode.is_none() {
            p.overrode = Some(local);
        }
        p.origins.push(traced.origin);
    }
    p.series.push(labels);
    Ok(Decision::Keep(local))
}

/// Records a bad line; returns true when it ends the chunk (no --skip-invalid).
fn bad_line(p: &mut Parsed, i: usize, line: &[u8], msg: &str, skip_invalid: bool) -> bool {
    p.stats.invalid += 1;
    if p.bad.len() < MAX_REPORTED || !skip_invalid {
        p.bad
            .push((i as u64 + 1, format!("{msg}: {}", excerpt(line))));
    }
    if !skip_invalid {
        p.fatal = true;
    }
    p.fatal
}

/// The start of a line, printable, for error messages.
pub fn excerpt(line: &[u8]) -> String {
    const MAX: usize = 80;
    let cut = &line[..line.len().min(MAX)];
    let mut s = format!("{:?}", cut.as_bstr());
    if line.len() > MAX {
        s.push('…');
    }
    s
}
