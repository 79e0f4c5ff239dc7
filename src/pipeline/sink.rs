//! The shard sink: takes samples of any number of series in any order, sorts and deduplicates
//! each series, and writes window-aligned OpenMetrics shards (or one stream) in bounded memory,
//! native histograms into side files beside the shards. Every source delivers here through
//! [`SampleSink`], so their output is the same.

mod plan;
mod write;

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::format::histogram::HistogramValue;
use crate::format::shard_dir::{Filters, Loss, QuotedNames};
use crate::format::{histtext, openmetrics};
use crate::labels::Labels;
use crate::pipeline::atomic_file::{self, TempPath};
use crate::pipeline::feed::{Provenance, SampleSink, SeriesId};
use crate::pipeline::out_dir::{self, OutDir};
use crate::pipeline::series::SeriesTable;
pub use crate::pipeline::shard::StaleMode;
use crate::pipeline::shard::WriteStats;
use crate::pipeline::spill::{push_text, Rec, SpillWriter, TextsFile, MAX_SERIES, REC_MEM};
use crate::pipeline::stream::{Layout, Streamer};
use crate::select::filter::LabelEdits;
use plan::layout_of;
use write::{rank_order, DirOut, RankedTable};

/// Where the OpenMetrics goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// One OpenMetrics stream on stdout (`-o -`).
    Stdout,
    /// Shards and `manifest.json` in a directory.
    Dir { path: PathBuf, compress: bool },
}

/// Default upper bound for the OpenMetrics text of one shard.
pub const DEFAULT_SHARD_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug)]
pub struct SinkOptions {
    pub output: Output,
    /// Block window, as backfill aligns it: `start = d * floor(t / d)`.
    pub block_duration_ms: i64,
    /// Shards per window; `None`: enough that each holds about `target_shard_bytes` at most.
    pub shards: Option<u32>,
    pub target_shard_bytes: u64,
    /// Bound on the sink's memory; beyond it samples are spilled to `temp_dir`.
    pub memory_limit: u64,
    /// Where spill files go; default: the output directory (or the system temp dir for stdout).
    pub temp_dir: Option<PathBuf>,
    pub stale: StaleMode,
    pub compression_level: u32,
    /// Replace the shards and manifest of an earlier run in a non-empty output directory, once
    /// this run is complete (see [`crate::pipeline::out_dir`]).
    pub force: bool,
    pub progress: bool,
    /// Write shards while reading when the input comes in series order (see [`crate::pipeline::stream`]).
    pub stream: bool,
}

#[cfg(test)]
impl SinkOptions {
    /// For tests: shards in directory `path` (gzip when `compress`), 10-minute windows, as many
    /// shards as a 1 GiB target gives, 1 GiB of memory, markers kept, streaming on; change what
    /// a test needs with struct update syntax.
    pub(crate) fn test_dir(path: &std::path::Path, compress: bool) -> SinkOptions {
        SinkOptions {
            output: Output::Dir {
                path: path.to_path_buf(),
                compress,
            },
            block_duration_ms: 600_000,
            shards: None,
            target_shard_bytes: 1 << 30,
            memory_limit: 1 << 30,
            temp_dir: None,
            stale: StaleMode::Keep,
            compression_level: 1,
            force: false,
            progress: false,
            stream: true,
        }
    }
}

/// What produced the samples, for the manifest.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    pub source: String,
    pub inputs: Vec<String>,
    pub filters: Filters,
    /// What the inputs held that could not be read (the manifest's `losses`).
    pub losses: Vec<Loss>,
}

/// What the sink did.
#[derive(Clone, Debug, Default)]
pub struct SinkSummary {
    pub written: WriteStats,
    /// Distinct series written (`written.series` counts a series once per shard).
    pub series: u64,
    pub shards: usize,
    pub bytes: u64,
    /// Bytes of samples that went through spill files (0 when everything fit in memory).
    pub spilled_bytes: u64,
    /// Samples before 1970: promtool's backfill may skip some of them (see the README).
    pub negative_ts: u64,
    /// Samples later than the sink's creation (a source host whose clock was ahead).
    pub later: Later,
    /// Shards written while reading (the input came in series order).
    pub streamed_shards: usize,
    /// Written series with a quoted name, which promtool before 2.51 cannot import.
    pub quoted_names: QuotedNames,
}

/// Samples (staleness markers included) later than the time the sink was created, counted as
/// they are delivered: a repeated sample of a dump counts each time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Later {
    /// The sink's creation, Unix ms.
    pub than_ms: i64,
    pub samples: u64,
    pub latest_ms: Option<i64>,
}

/// Digits of shard numbers in file names: at least 3, enough for `n` shards.
fn shard_width(n: u32) -> usize {
    n.to_string().len().max(3)
}

/// The first and last sample of one series in one window, for the staleness rule.
#[derive(Clone, Copy)]
struct Bound {
    min_ts: i64,
    min_nan: bool,
    max_ts: i64,
    max_nan: bool,
}

/// Samples of one block window, in input order; its histogram samples' texts apart.
struct Window {
    start: i64,
    mem: Vec<Rec>,
    spill: Option<SpillWriter>,
    /// The texts of the histogram records of `mem` ([`crate::pipeline::spill::Texts`]), and of
    /// those spilled.
    texts: Vec<u8>,
    texts_file: Option<TextsFile>,
    count: u64,
    est_bytes: u64,
    /// Shards the streamed path writes the window in (planned, or as --shards says).
    planned: u32,
}

pub struct Sink {
    opts: SinkOptions,
    series: SeriesTable,
    windows: Vec<Window>,
    window_index: HashMap<i64, usize>,
    last_window: Option<(i64, usize)>,
    bounds: Vec<Bound>,
    bound_index: HashMap<(SeriesId, usize), usize>,
    last_bound: ((SeriesId, usize), usize),
    mem_records: u64,
    /// Bytes of histogram texts in memory.
    mem_texts: u64,
    /// Histogram samples received (markers included).
    histograms: u64,
    /// A histogram's text, rendered before it is stored.
    scratch: Vec<u8>,
    /// Memory a reader holds for the sink meanwhile ([`Sink::hold_memory`]).
    held: u64,
    budget: u64,
    spill_dir: Option<TempPath>,
    spilled_bytes: u64,
    negative_ts: u64,
    later: Later,
    stream: Option<Streamer>,
    /// How the streamer lays its shards out.
    stream_layout: Option<Layout>,
    /// Shards per window start, planned before the first sample ([`Sink::plan_windows`]).
    planned: HashMap<i64, u32>,
    /// The output directory, until [`Sink::finish`] commits the run to it.
    out_dir: Option<OutDir>,
    /// The output directory did not exist before this run.
    created_dir: bool,
    /// By series id: its NaNs get the staleness guess (a dump series, and not `--stale keep`).
    guess: Vec<bool>,
    /// The input came in passes ([`SampleSink::begin_pass`]).
    passes: bool,
}

impl Sink {
    /// Prepares the output: refuses a non-empty directory unless `force` (then the earlier
    /// run's files stay until [`Sink::finish`] has written everything, see [`out_dir`]).
    pub fn create(opts: SinkOptions) -> Result<Sink> {
        let mut stream = None;
        let mut stream_layout = None;
        let mut created_dir = false;
        let mut prepared = None;
        if let Output::Dir { path, compress } = &opts.output {
            created_dir = !path.exists();
            prepared = Some(out_dir::prepare(path, opts.force)?);
            if opts.stream {
                let layout = layout_of(&opts, path, *compress, HashMap::new());
                stream = Some(Streamer::start(layout.clone(), opts.memory_limit));
                stream_layout = Some(layout);
            }
        }
        Ok(Sink {
            stream,
            stream_layout,
            planned: HashMap::new(),
            budget: (opts.memory_limit / 2).max(1 << 20),
            opts,
            series: SeriesTable::default(),
            windows: Vec::new(),
            window_index: HashMap::new(),
            last_window: None,
            bounds: Vec::new(),
            bound_index: HashMap::new(),
            last_bound: ((u32::MAX, usize::MAX), 0),
            mem_records: 0,
            mem_texts: 0,
            histograms: 0,
            scratch: Vec::new(),
            held: 0,
            spill_dir: None,
            spilled_bytes: 0,
            negative_ts: 0,
            later: Later {
                than_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(i64::MAX, |d| d.as_millis() as i64),
                ..Later::default()
            },
            out_dir: prepared,
            created_dir,
            guess: Vec::new(),
            passes: false,
        })
    }

    /// The output window's length.
    pub fn block_duration_ms(&self) -> i64 {
        self.opts.block_duration_ms
    }

    /// A series of a source that prints staleness markers as `NaN` (dump text): its lone NaNs
    /// are taken for markers, unless `Keep` ([`Provenance::nan_markers`]).
    fn note_series(&mut self, id: SeriesId, nan_markers: bool) -> SeriesId {
        if nan_markers && self.opts.stale != StaleMode::Keep {
            if self.passes {
                // See [`SampleSink::begin_pass`].
                self.stream = None;
            }
            let i = id as usize;
            if self.guess.len() <= i {
                self.guess.resize(i + 1, false);
            }
            self.guess[i] = true;
        }
        id
    }

    fn guessed(&self, id: SeriesId) -> bool {
        self.guess.get(id as usize).copied().unwrap_or(false)
    }

    /// Refuses label edits that make two source series one, for the series delivered with
    /// their [`Provenance::origin`]. Call it before the first series.
    pub fn refuse_merges(&mut self, edits: &LabelEdits) {
        self.series.refuse_merges(edits);
    }

    /// Distinct series interned so far (those with no sample in the time range included).
    pub fn series_count(&self) -> usize {
        self.series.labels.len()
    }

    /// Native histogram samples received so far (staleness markers included, repeats too).
    pub fn histogram_samples(&self) -> u64 {
        self.histograms
    }

    /// Gives up the run: nothing is written, and an output directory this run created (still
    /// empty) is removed, so no finished-looking or half-made output stays behind.
    pub fn abandon(mut self) {
        drop(self.stream.take());
        drop(self.spill_dir.take());
        if let (true, Output::Dir { path, .. }) = (self.created_dir, &self.opts.output) {
            let _ = std::fs::remove_dir(path);
        }
    }

    /// Refuses a timestamp the shards cannot carry; counts those before 1970.
    fn check_ts(&mut self, ts: i64) -> Result<()> {
        if ts < 0 {
            if !openmetrics::timestamp_supported(ts) {
                return Err(unsupported_ts(ts));
            }
            self.negative_ts += 1;
        } else if !openmetrics::timestamp_supported(ts) {
            return Err(unsupported_ts(ts));
        }
        if ts > self.later.than_ms {
            self.later.samples += 1;
            self.later.latest_ms = self.later.latest_ms.max(Some(ts));
        }
        Ok(())
    }

    /// Adds one sample of series `id`, `val` its value's bits.
    fn push(&mut self, id: SeriesId, ts: i64, val: u64) -> Result<()> {
        self.check_ts(ts)?;
        let w = self.window_for(ts);
        let win = &mut self.windows[w];
        win.mem.push(Rec::float(id, ts, val));
        win.count += 1;
        // Prefix, value, timestamp and separators: close enough to size the shards.
        win.est_bytes += self.series.prefixes[id as usize].len() as u64 + 26;
        if self.stream.is_some() {
            // More text than the window's streamed shards hold means more shards.
            let win = &self.windows[w];
            let at = (w, win.start, self.outgrown(win));
            let st = self.stream.as_mut().expect("checked");
            let table = (
                &self.series.labels[..],
                &self.series.prefixes[..],
                &self.guess[..],
            );
            if !st.push(id, ts, val, at, table)? {
                self.stream = None;
            }
        }
        if self.guessed(id) {
            self.track_bound(id, w, ts, f64::from_bits(val).is_nan());
        }
        self.mem_records += REC_MEM;
        self.within_budget()
    }

    /// Spills every window when the memory in use exceeds the budget. While the shards are
    /// written as the input is read, what the sink keeps is only for a window that turns out to
    /// need the sorted path: a quarter of the budget is kept in memory then, so that the open
    /// shards, the batches queued for them and the reader's share fit beside it.
    fn within_budget(&mut self) -> Result<()> {
        let used = self.mem_records + self.mem_texts + self.series.mem + self.bounds_mem();
        let streaming = self.stream.is_some() && used > self.budget / 4;
        if used + self.held > self.budget || streaming {
            self.spill_all()?;
        }
        Ok(())
    }

    /// Adds one histogram sample of series `id`, `text` its value as the side file writes it.
    /// Its record goes with the floats, so the sort keeps their input order; the text beside.
    fn push_hist(&mut self, id: SeriesId, ts: i64, text: &[u8]) -> Result<()> {
        self.check_ts(ts)?;
        let w = self.window_for(ts);
        let win = &mut self.windows[w];
        let at = push_text(&mut win.texts, text);
        win.mem.push(Rec {
            ts,
            val: at,
            series: id,
            hist: true,
        });
        win.count += 1;
        // Prefix, value, timestamp and separators, in the side file.
        win.est_bytes += self.series.prefixes[id as usize].len() as u64 + text.len() as u64 + 20;
        if self.stream.is_some() {
            let win = &self.windows[w];
            let at = (w, win.start, self.outgrown(win));
            let st = self.stream.as_mut().expect("checked");
            let table = (
                &self.series.labels[..],
                &self.series.prefixes[..],
                &self.guess[..],
            );
            if !st.push_hist(id, ts, text, at, table)? {
                self.stream = None;
            }
        }
        self.mem_records += REC_MEM;
        self.mem_texts += text.len() as u64 + 4;
        self.histograms += 1;
        self.within_budget()
    }

    /// The start of the output window holding `ts` (`i64::MIN` for stdout: one window).
    fn window_start(&self, ts: i64) -> i64 {
        match self.opts.output {
            Output::Stdout => i64::MIN,
            Output::Dir { .. } => {
                let d = self.opts.block_duration_ms;
                ts.div_euclid(d) * d
            }
        }
    }

    fn window_for(&mut self, ts: i64) -> usize {
        let start = self.window_start(ts);
        if let Some((s, idx)) = self.last_window {
            if s == start {
                return idx;
            }
        }
        let n = self.windows.len();
        let idx = *self.window_index.entry(start).or_insert(n);
        if idx == n {
            let planned = self.planned.get(&start).copied();
            let planned = planned.unwrap_or(self.opts.shards.unwrap_or(1).max(1));
            self.windows.push(Window {
                planned,
                start,
                mem: Vec::new(),
                spill: None,
                texts: Vec::new(),
                texts_file: None,
                count: 0,
                est_bytes: 0,
            });
        }
        self.last_window = Some((start, idx));
        idx
    }

    fn track_bound(&mut self, id: SeriesId, w: usize, ts: i64, nan: bool) {
        let key = (id, w);
        let idx = if self.last_bound.0 == key {
            self.last_bound.1
        } else {
            let n = self.bounds.len();
            let idx = *self.bound_index.entry(key).or_insert(n);
            if idx == n {
                self.bounds.push(Bound {
                    min_ts: ts,
                    min_nan: nan,
                    max_ts: ts,
                    max_nan: nan,
                });
            }
            self.last_bound = (key, idx);
            idx
        };
        let b = &mut self.bounds[idx];
        // On equal timestamps the later input wins, as in the dedup.
        if ts <= b.min_ts {
            (b.min_ts, b.min_nan) = (ts, nan);
        }
        if ts >= b.max_ts {
            (b.max_ts, b.max_nan) = (ts, nan);
        }
    }

    fn bounds_mem(&self) -> u64 {
        self.bounds.len() as u64 * 56
    }

    fn spill_root(&self) -> PathBuf {
        match (&self.opts.temp_dir, &self.opts.output) {
            (Some(t), _) => t.clone(),
            (None, Output::Dir { path, .. }) => path.clone(),
            (None, Output::Stdout) => std::env::temp_dir(),
        }
    }

    /// Moves every buffered sample to its window's run file.
    fn spill_all(&mut self) -> Result<()> {
        if self.spill_dir.is_none() {
            let root = self.spill_root();
            // Under a shared temp dir this is the only place a killed run's spill is found.
            atomic_file::remove_dead_leftovers(&root).with_context(|| {
                format!("removing a killed run's spill from {}", root.display())
            })?;
            let dir = TempPath::in_dir(&root, "spill");
            std::fs::create_dir_all(dir.path())
                .with_context(|| format!("creating spill directory {}", dir.path().display()))?;
            self.spill_dir = Some(dir);
        }
        let dir = self
            .spill_dir
            .as_ref()
            .expect("created above")
            .path()
            .to_path_buf();
        for (i, w) in self.windows.iter_mut().enumerate() {
            if w.mem.is_empty() {
                continue;
            }
            if w.spill.is_none() {
                let p = dir.join(format!("window-{i}.run"));
                w.spill = Some(SpillWriter::create(p).context("creating a spill file")?);
            }
            if !w.texts.is_empty() {
                self.spilled_bytes += w.texts.len() as u64;
                spill_texts(w, &dir, i)?;
            }
            let sw = w.spill.as_mut().expect("created above");
            sw.append(&w.mem)
                .context("writing a spill file (is the temp dir full?)")?;
            self.spilled_bytes += w.mem.len() as u64 * REC_MEM;
            w.mem = Vec::new();
        }
        self.mem_records = 0;
        self.mem_texts = 0;
        Ok(())
    }

    /// Sorts, deduplicates and writes everything; for a directory, writes the manifest last.
    pub fn finish(mut self, info: RunInfo) -> Result<SinkSummary> {
        let streamed = match self.stream.take() {
            Some(st) => Some(st.finish(&self.series.prefixes, &self.guess)?),
            None => None,
        };
        if self.spill_dir.is_some() {
            self.spill_all()?;
        }
        let ranks = self.rank_series();
        let plan = self.plan();
        let neighbours = self.neighbours(&ranks);
        let mut guess = vec![false; ranks.len()];
        for (id, &g) in self.guess.iter().enumerate() {
            guess[ranks[id] as usize] = g;
        }
        let table = RankedTable {
            written: (0..ranks.len()).map(|_| Default::default()).collect(),
            prefixes: rank_order(&ranks, std::mem::take(&mut self.series.prefixes)),
            neighbours,
            guess,
        };
        match self.opts.output.clone() {
            Output::Stdout => self.write_stdout(plan, &ranks, &table),
            Output::Dir { compress, .. } => {
                let out = DirOut {
                    dir: self.out_dir.take().expect("prepared by Sink::create"),
                    compress,
                    info,
                };
                self.write_dir(plan, &ranks, &table, out, streamed)
            }
        }
    }

    /// Rank of each series id: by metric name, then labels, so families are contiguous and the
    /// output does not depend on input order.
    fn rank_series(&self) -> Vec<u32> {
        let l = &self.series.labels;
        let mut order: Vec<u32> = (0..l.len() as u32).collect();
        order.par_sort_unstable_by(|&a, &b| {
            let (a, b) = (&l[a as usize], &l[b as usize]);
            a.metric_name().cmp(b.metric_name()).then_with(|| a.cmp(b))
        });
        let mut rank = vec![0u32; l.len()];
        for (r, &id) in order.iter().enumerate() {
            rank[id as usize] = r as u32;
        }
        rank
    }
}

impl SampleSink for Sink {
    /// Interns the series. With merges refused ([`Sink::refuse_merges`]), a second source series
    /// with the same edited labels is bad input naming both: their samples would interleave.
    fn series(&mut self, labels: Labels, from: Provenance<'_>) -> Result<SeriesId> {
        let id = match from.origin {
            Some(origin) => self.series.intern_traced(labels, origin)?,
            None => self.series.intern(labels),
        };
        if id >= MAX_SERIES {
            return Err(anyhow::anyhow!(
                "more than {MAX_SERIES} series: more than the sink can tell apart"
            ));
        }
        Ok(self.note_series(id, from.nan_markers))
    }

    #[inline]
    fn float(&mut self, id: SeriesId, ts: i64, bits: u64) -> Result<()> {
        self.push(id, ts, bits)
    }

    /// Stores a histogram sample as the text its side file will hold. `-o -` has no side file:
    /// a histogram there is bad input, refused before anything is written.
    fn histogram(&mut self, id: SeriesId, ts: i64, h: &HistogramValue) -> Result<()> {
        let labels = || &self.series.labels[id as usize];
        if matches!(self.opts.output, Output::Stdout) {
            return Err(crate::bad_input!(
                "-o - cannot carry native histograms (the first: {} at {ts} ms): write to a \
                 directory (-o DIR), where they go into side files beside the shards, or \
                 leave them out with --match",
                labels()
            ));
        }
        if let Some(why) = histtext::layout_problem(h) {
            return Err(crate::bad_input!(
                "a native histogram of {} at {ts} ms: {why}",
                labels()
            ));
        }
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        histtext::write_value(h, &mut text);
        let r = self.push_hist(id, ts, &text);
        self.scratch = text;
        r
    }

    /// The start of the output window holding `t`.
    fn pass_start(&self, t: i64) -> i64 {
        self.window_start(t)
    }

    fn plan_ranges(&mut self, ranges: &[(i64, i64, u64)]) {
        self.plan_text_ranges(ranges)
    }

    fn pass_end(&self, from: i64, until: i64) -> i64 {
        self.pass_end_for(from, until)
    }

    /// Ends a pass over the input, for a reader that feeds the sink in passes, each in series
    /// order (data before `from` first, then the rest): the windows before `from` are taken as complete, and
    /// series order starts over. A later sample in such a window only sends that window to the
    /// sorted path (the sink keeps every sample), so the shards are the same bytes either way.
    fn begin_pass(&mut self, from: i64) -> Result<()> {
        self.passes = true;
        if self.guess.iter().any(|&g| g) {
            // The staleness guess looks at neighbours across windows: sort everything.
            self.stream = None;
        }
        if let Some(st) = self.stream.as_mut() {
            st.begin_pass(from, &self.series.prefixes, &self.guess)?;
        }
        self.plan_like_last(from)
    }

    /// Half the memory the sink may use before spilling (itself half of --memory-limit).
    fn memory_share(&self) -> u64 {
        self.budget / 2
    }

    fn hold_memory(&mut self, bytes: u64) {
        self.held = bytes;
    }
}

/// Appends window `w`'s histogram texts (window index `i`) to its texts file under `dir`, the
/// records of `w.mem` made to point into the file.
fn spill_texts(w: &mut Window, dir: &std::path::Path, i: usize) -> Result<()> {
    if w.texts_file.is_none() {
        let p = dir.join(format!("window-{i}.texts"));
        w.texts_file = Some(TextsFile::create(p).context("creating a spill file")?);
    }
    let f = w.texts_file.as_mut().expect("created above");
    let base = f
        .append(&w.texts)
        .context("writing a spill file (is the temp dir full?)")?;
    for r in w.mem.iter_mut().filter(|r| r.hist) {
        r.val += base;
    }
    w.texts = Vec::new();
    Ok(())
}

fn unsupported_ts(ts: i64) -> anyhow::Error {
    crate::bad_input!(
        "timestamp {ts} ms is beyond what an OpenMetrics timestamp can carry exactly (|t| < 8.8e15 ms, year 280000)"
    )
}

/// Per series rank: whether the samples just before and after a window are NaN.
type Neighbours = HashMap<u32, (Option<bool>, Option<bool>)>;

impl Sink {
    /// Per window, for each series present in it, whether the neighbouring samples in the
    /// nearest earlier and later windows that hold the series are NaN.
    fn neighbours(&self, ranks: &[u32]) -> Vec<Neighbours> {
        let mut out = vec![HashMap::new(); self.windows.len()];
        if self.bounds.is_empty() || self.windows.len() < 2 {
            return out;
        }
        let mut keys: Vec<(&(SeriesId, usize), &usize)> = self.bound_index.iter().collect();
        keys.sort_by_key(|((s, w), _)| (*s, self.windows[*w].start));
        for pair in keys.windows(2) {
            let ((s0, w0), &b0) = pair[0];
            let ((s1, w1), &b1) = pair[1];
            if s0 != s1 {
                continue;
            }
            let rank = ranks[*s0 as usize];
            out[*w0].entry(rank).or_insert((None, None)).1 = Some(self.bounds[b1].min_nan);
            out[*w1].entry(rank).or_insert((None, None)).0 = Some(self.bounds[b0].max_nan);
        }
        out
    }
}
