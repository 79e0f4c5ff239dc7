//! The streamed write path. When the input holds each series whole, time-sorted and in the
//! output's (metric name, labels) order — as `promtool tsdb dump` prints persisted blocks — shards
//! are written on worker threads while the input is still being read, not after a sort. The sink
//! keeps every sample as well, so the first series out of order only ends streaming, and the
//! sorted path then writes the same bytes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};

use crate::format::shard_dir;
use crate::labels::Labels;
use crate::pipeline::shard::StaleMode;
use crate::pipeline::shard::{
    self, FinishedShard, Hists, ShardFile, ShardTarget, TextWriter, WriteStats,
};
use crate::pipeline::spill::push_text;

/// Whole series go to the workers in batches of about this many samples (16 bytes each; a
/// histogram sample counts its text too).
const BATCH_SAMPLES: usize = 1 << 16;
/// Batches queued for the workers at most (each batch is shared by all of them): enough that the
/// reader need not wait for the writers while it has data at hand (a data dir's blocks are
/// read before its head is replayed, see `datadir::read_dir`), bounded by a sixteenth of the
/// memory limit.
const MAX_QUEUED: u64 = 16;
/// Rough memory of one open shard: text buffer, file buffer and deflate state.
const WRITER_MEM: u64 = 5 << 18;
const FILE_BUFFER: usize = 1 << 18;
/// Open shard files at most, whatever the memory limit.
const MAX_WRITERS: u64 = 256;
/// Shards a pass over a data dir opens at most (see [`Streamer::pass_writers`]): enough windows
/// for both workers, few enough that their buffers stay in cache and in a small share of memory.
const PASS_WRITERS: u64 = 32;

/// How streamed shards are laid out: fixed before the first sample, so a window whose final plan
/// differs (more shards) is left to the sorted path.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub compress: Option<u32>,
    pub block_duration_ms: i64,
    /// Shards of a window not in `planned`.
    pub shards: u32,
    /// Shards per window start, planned from an estimate of the input (a data dir's index).
    pub planned: Arc<HashMap<i64, u32>>,
    pub width: usize,
    pub stale: StaleMode,
}

impl Layout {
    /// The shards of the window starting at `start`.
    pub fn shards_at(&self, start: i64) -> u32 {
        self.planned.get(&start).copied().unwrap_or(self.shards)
    }
}

/// One whole series, time-sorted; repeated timestamps are merged by the worker. No timestamp
/// has both a float and a histogram (such input is left to the sorted path).
struct Run {
    id: u32,
    hash: u64,
    prefix: Box<[u8]>,
    /// The series gets the staleness guess (a dump series).
    guess: bool,
    samples: Vec<(i64, u64)>,
    /// Histogram samples: timestamp and where the text lies in `texts`.
    hists: Vec<(i64, u64)>,
    texts: Vec<u8>,
}

/// The sink's series table, by series id: labels, rendered prefixes, staleness guess.
pub type Table<'a> = (&'a [Labels], &'a [Box<[u8]>], &'a [bool]);

enum Msg {
    Runs(Arc<Vec<Run>>),
    /// The window starting here goes to the sorted path: drop what was written of it.
    Abandon(i64),
    /// The windows starting before this are complete: finish their shards, free their writers.
    Close(i64),
    /// The window starting here, which no sample reached yet, is written in this many shards.
    Plan(i64, u32),
    Finish,
}

/// What the workers wrote, for the windows still streamed at the end.
#[derive(Default)]
pub struct Streamed {
    pub shards: Vec<FinishedShard>,
    /// By series id: at least one sample written.
    pub written: Vec<bool>,
    /// By sink window index: written here (true) or left to the sorted path.
    pub windows: Vec<bool>,
}

pub struct Streamer {
    layout: Layout,
    senders: Vec<SyncSender<Msg>>,
    handles: Vec<JoinHandle<Result<Streamed>>>,
    cur: Option<u32>,
    samples: Vec<(i64, u64)>,
    hists: Vec<(i64, u64)>,
    texts: Vec<u8>,
    batch: Vec<Run>,
    /// Of the batch: samples, plus a sixteenth of its histogram texts' bytes.
    batch_samples: usize,
    max_series_samples: usize,
    /// By sink window index: still streamed.
    open: Vec<bool>,
    /// By sink window index: its start, and the writers it counts in `writers` (0 once its
    /// shards are finished or dropped).
    counted: Vec<(i64, u64)>,
    /// Windows starting before this were closed by [`Streamer::begin_pass`].
    closed_before: i64,
    writers: u64,
    max_writers: u64,
}

impl Streamer {
    /// Starts one worker per thread; `memory_limit` bounds the open shards and a pending series.
    pub fn start(layout: Layout, memory_limit: u64) -> Streamer {
        let k = rayon::current_num_threads().max(1);
        let batch_mem = BATCH_SAMPLES as u64 * 16;
        let queued = (memory_limit / 16 / batch_mem).clamp(2, MAX_QUEUED) as usize;
        let (mut senders, mut handles) = (Vec::new(), Vec::new());
        for me in 0..k {
            let (tx, rx) = sync_channel(queued);
            let layout = layout.clone();
            senders.push(tx);
            handles.push(std::thread::spawn(move || work(me, k, &layout, rx)));
        }
        Streamer {
            senders,
            handles,
            cur: None,
            samples: Vec::new(),
            hists: Vec::new(),
            texts: Vec::new(),
            batch: Vec::new(),
            batch_samples: 0,
            max_series_samples: (memory_limit / 16 / 16) as usize,
            open: Vec::new(),
            counted: Vec::new(),
            closed_before: i64::MIN,
            writers: 0,
            max_writers: (memory_limit / 4 / WRITER_MEM).clamp(1, MAX_WRITERS.min(fd_room())),
            layout,
        }
    }

    /// Takes the next sample of the input. `w` is the sink's index of its window; `over` says the
    /// window has outgrown the streamed layout. Returns false when the input turns out not to be
    /// in series order: the caller then drops the streamer and sorts.
    pub fn push(
        &mut self,
        id: u32,
        ts: i64,
        val: u64,
        (w, start, over): (usize, i64, bool),
        (labels, prefixes, guess): Table<'_>,
    ) -> Result<bool> {
        if start < self.closed_before {
            // A closed window was complete: one more sample sends it to the sorted path.
            self.close_window(w, start)?;
            return Ok(true);
        }
        self.track_window(w, start, over)?;
        if self.cur == Some(id) {
            // A histogram at this timestamp: which of the two wins is the sort's to decide.
            if self.samples.last().is_some_and(|&(t, _)| ts < t)
                || self.hists.last().is_some_and(|&(t, _)| ts <= t)
                || self.pending() >= self.max_series_samples
            {
                return Ok(false);
            }
            self.samples.push((ts, val));
            return Ok(true);
        }
        if !self.next_series(id, (labels, prefixes, guess))? {
            return Ok(false);
        }
        self.samples.push((ts, val));
        Ok(true)
    }

    /// [`Streamer::push`] for a histogram sample, `text` its value as the side file writes it.
    pub fn push_hist(
        &mut self,
        id: u32,
        ts: i64,
        text: &[u8],
        (w, start, over): (usize, i64, bool),
        table: Table<'_>,
    ) -> Result<bool> {
        if start < self.closed_before {
            self.close_window(w, start)?;
            return Ok(true);
        }
        self.track_window(w, start, over)?;
        if self.cur == Some(id) {
            if self.hists.last().is_some_and(|&(t, _)| ts < t)
                || self.samples.last().is_some_and(|&(t, _)| ts <= t)
                || self.pending() >= self.max_series_samples
            {
                return Ok(false);
            }
        } else if !self.next_series(id, table)? {
            return Ok(false);
        }
        let at = push_text(&mut self.texts, text);
        self.hists.push((ts, at));
        Ok(true)
    }

    /// What the pending series holds, in samples of 16 bytes.
    fn pending(&self) -> usize {
        self.samples.len() + self.hists.len() + self.texts.len() / 16
    }

    /// Series `id` begins: the one before it is complete. False when `id` does not come after
    /// it in the series order.
    fn next_series(&mut self, id: u32, (labels, prefixes, guess): Table<'_>) -> Result<bool> {
        if let Some(prev) = self.cur {
            if rank_key(&labels[prev as usize]) >= rank_key(&labels[id as usize]) {
                return Ok(false);
            }
            self.complete(prev, &prefixes[prev as usize], guessed(guess, prev))?;
        }
        self.cur = Some(id);
        Ok(true)
    }

    fn track_window(&mut self, w: usize, start: i64, over: bool) -> Result<()> {
        if w == self.open.len() {
            let n = u64::from(self.layout.shards_at(start));
            let fits = self.writers + n <= self.max_writers;
            if fits {
                self.writers += n;
            }
            self.open.push(fits);
            self.counted.push((start, if fits { n } else { 0 }));
            if !fits {
                self.abandon(start)?;
            }
        } else if over && self.open[w] {
            self.open[w] = false;
            self.release(w);
            self.abandon(start)?;
        }
        Ok(())
    }

    /// Lays the window starting at `start` out in `n` shards: a window no sample has reached
    /// yet (the caller makes sure), as a sink plans the next pass's window by the last one's size.
    pub fn plan(&mut self, start: i64, n: u32) -> Result<()> {
        Arc::make_mut(&mut self.layout.planned).insert(start, n);
        for k in 0..self.senders.len() {
            self.send(k, Msg::Plan(start, n))?;
        }
        Ok(())
    }

    /// Window `w`'s writers are closed or dropped: they no longer count.
    fn release(&mut self, w: usize) {
        if let Some(c) = self.counted.get_mut(w) {
            self.writers -= std::mem::take(&mut c.1);
        }
    }

    /// Open shard files a pass may add: `PASS_WRITERS`, or half of the bound, so that those of
    /// the pass before, still being finished by the workers, fit beside them.
    pub fn pass_writers(&self) -> u64 {
        (self.max_writers / 2).clamp(1, PASS_WRITERS)
    }

    /// Ends a pass over the input: the windows before `from` are complete, and the next series
    /// may come from the start of the series order again. The caller promises that no series
    /// gets the staleness guess (which looks across windows, hence across passes).
    pub fn begin_pass(&mut self, from: i64, prefixes: &[Box<[u8]>], guess: &[bool]) -> Result<()> {
        if let Some(prev) = self.cur.take() {
            self.complete(prev, &prefixes[prev as usize], guessed(guess, prev))?;
        }
        // The workers get all of this pass now, to write it while the next one is read; then
        // they finish the windows it completed, which frees their writers for the next pass.
        self.send_batch()?;
        self.closed_before = self.closed_before.max(from);
        for k in 0..self.senders.len() {
            self.send(k, Msg::Close(self.closed_before))?;
        }
        for w in 0..self.counted.len() {
            if self.counted[w].0 < self.closed_before {
                self.release(w);
            }
        }
        Ok(())
    }

    /// Window `w` (starting at `start`) of a finished pass: left to the sorted path.
    fn close_window(&mut self, w: usize, start: i64) -> Result<()> {
        if w == self.open.len() {
            self.open.push(false);
            self.counted.push((start, 0));
        } else if self.open[w] {
            self.open[w] = false;
            self.release(w);
        } else {
            return Ok(());
        }
        self.abandon(start)
    }

    fn abandon(&mut self, start: i64) -> Result<()> {
        let k = owner(start, self.layout.block_duration_ms, self.senders.len());
        self.send(k, Msg::Abandon(start))
    }

    fn complete(&mut self, id: u32, prefix: &[u8], guess: bool) -> Result<()> {
        self.batch_samples += self.pending();
        self.batch.push(Run {
            id,
            hash: shard_dir::series_hash(prefix),
            prefix: prefix.into(),
            guess,
            samples: std::mem::take(&mut self.samples),
            hists: std::mem::take(&mut self.hists),
            texts: std::mem::take(&mut self.texts),
        });
        if self.batch_samples >= BATCH_SAMPLES {
            self.send_batch()?;
        }
        Ok(())
    }

    fn send_batch(&mut self) -> Result<()> {
        let runs = Arc::new(std::mem::take(&mut self.batch));
        self.batch_samples = 0;
        for k in 0..self.senders.len() {
            self.send(k, Msg::Runs(runs.clone()))?;
        }
        Ok(())
    }

    /// Sends to worker `k`; a worker that stopped did so on an error, which is returned.
    fn send(&mut self, k: usize, msg: Msg) -> Result<()> {
        if self.senders[k].send(msg).is_ok() {
            return Ok(());
        }
        self.senders.clear();
        let h = self.handles.remove(k);
        match h.join() {
            Ok(Err(e)) => Err(e),
            _ => Err(anyhow!("a shard writer thread stopped")),
        }
    }

    /// Ends the input: writes the last series, finishes every streamed shard under its temporary
    /// name, and returns them.
    pub fn finish(mut self, prefixes: &[Box<[u8]>], guess: &[bool]) -> Result<Streamed> {
        if let Some(prev) = self.cur.take() {
            self.complete(prev, &prefixes[prev as usize], guessed(guess, prev))?;
        }
        self.send_batch()?;
        for k in 0..self.senders.len() {
            self.send(k, Msg::Finish)?;
        }
        self.senders.clear();
        let mut out = Streamed {
            windows: std::mem::take(&mut self.open),
            ..Streamed::default()
        };
        for h in std::mem::take(&mut self.handles) {
            let part = h
                .join()
                .map_err(|_| anyhow!("a shard writer thread panicked"))??;
            out.shards.extend(part.shards);
            if out.written.len() < part.written.len() {
                out.written.resize(part.written.len(), false);
            }
            for (o, p) in out.written.iter_mut().zip(part.written) {
                *o |= p;
            }
        }
        Ok(out)
    }
}

impl Drop for Streamer {
    /// Dropped unfinished (input out of order, or an error): the workers delete their files.
    fn drop(&mut self) {
        self.senders.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Shard files that may be open at once: half of what the open-file limit leaves after a margin
/// for inputs, spill and run files, and the shards the sorted path writes.
fn fd_room() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1;
    }
    (lim.rlim_cur.saturating_sub(32) / 2).max(1)
}

/// The output order of series: by metric name, then all labels.
fn rank_key(l: &Labels) -> (&str, &Labels) {
    (l.metric_name(), l)
}

fn guessed(guess: &[bool], id: u32) -> bool {
    guess.get(id as usize).copied().unwrap_or(false)
}

/// Which worker writes the window starting at `start`.
fn owner(start: i64, d: i64, k: usize) -> usize {
    start.div_euclid(d).rem_euclid(k as i64) as usize
}

/// A sample in a run: its timestamp and value bits (of a histogram, where its text lies).
type Sample = (i64, u64);

/// The shards of one window on a worker; `None` once the window was abandoned.
type WindowShards = Option<Vec<Option<TextWriter<ShardFile>>>>;

struct Worker<'a> {
    me: usize,
    k: usize,
    layout: &'a Layout,
    windows: HashMap<i64, WindowShards>,
    /// Windows a pass completed, their shards finished (dropped, and so deleted, if the window
    /// is abandoned after all).
    finished: HashMap<i64, Vec<FinishedShard>>,
    /// Shards of windows planned after the start ([`Streamer::plan`]).
    plans: HashMap<i64, u32>,
    written: Vec<bool>,
    scratch: Vec<(i64, u64)>,
    hscratch: Vec<(i64, u64)>,
}

/// A worker: writes the windows it owns from every batch, in order.
fn work(me: usize, k: usize, layout: &Layout, rx: Receiver<Msg>) -> Result<Streamed> {
    let mut w = Worker {
        me,
        k,
        layout,
        windows: HashMap::new(),
        finished: HashMap::new(),
        plans: HashMap::new(),
        written: Vec::new(),
        scratch: Vec::new(),
        hscratch: Vec::new(),
    };
    for msg in rx {
        match msg {
            Msg::Runs(runs) => {
                for run in runs.iter() {
                    w.run(run)?;
                }
            }
            Msg::Abandon(start) => {
                w.windows.insert(start, None);
                w.finished.remove(&start);
            }
            Msg::Close(before) => w.close(before)?,
            Msg::Plan(start, n) => {
                w.plans.insert(start, n);
            }
            Msg::Finish => return w.finish(),
        }
    }
    // Cancelled: the unfinished shard files are deleted as the writers drop.
    Ok(Streamed::default())
}

impl Worker<'_> {
    /// Writes the segments of one series that fall in this worker's windows.
    fn run(&mut self, run: &Run) -> Result<()> {
        let (s, h, d) = (&run.samples, &run.hists, self.layout.block_duration_ms);
        let nan = |i: usize| f64::from_bits(s[i].1).is_nan();
        let (mut i, mut k) = (0, 0);
        while i < s.len() || k < h.len() {
            let first = match (s.get(i), h.get(k)) {
                (Some(a), Some(b)) => a.0.min(b.0),
                (Some(a), None) => a.0,
                (None, Some(b)) => b.0,
                (None, None) => unreachable!("one of them has more"),
            };
            let start = first.div_euclid(d) * d;
            let end = start.saturating_add(d);
            let j = i + s[i..].partition_point(|&(t, _)| t < end);
            let l = k + h[k..].partition_point(|&(t, _)| t < end);
            if owner(start, d, self.k) == self.me {
                // The staleness rule looks past the window: at the sample before, and at the one
                // that wins the next timestamp (the last of its repeats).
                let guess = run.guess.then(|| {
                    let before = (i > 0).then(|| nan(i - 1));
                    let after = (j < s.len()).then(|| {
                        let t = s[j].0;
                        nan(j + s[j..].partition_point(|&(u, _)| u == t) - 1)
                    });
                    (before, after)
                });
                self.segment(run, start, (&s[i..j], &h[k..l]), guess)?;
            }
            (i, k) = (j, l);
        }
        Ok(())
    }

    fn segment(
        &mut self,
        run: &Run,
        start: i64,
        (seg, hseg): (&[Sample], &[Sample]),
        guess: shard::Guess,
    ) -> Result<()> {
        if self.finished.contains_key(&start) {
            // The streamer sends no sample of a closed window (it abandons the window instead).
            return Err(anyhow!(
                "a sample for a finished window reached a shard writer"
            ));
        }
        let n = self
            .plans
            .get(&start)
            .copied()
            .unwrap_or_else(|| self.layout.shards_at(start));
        let Some(shards) = self
            .windows
            .entry(start)
            .or_insert_with(|| Some((0..n).map(|_| None).collect()))
        else {
            return Ok(());
        };
        let s = (run.hash % u64::from(n)) as usize;
        let text = match &mut shards[s] {
            Some(t) => t,
            slot => slot.insert(open_shard(self.layout, start, s)?),
        };
        self.scratch.clear();
        for &(t, v) in seg {
            shard::push_dedup(&mut self.scratch, t, v, &mut text.stats);
        }
        self.hscratch.clear();
        for &(t, at) in hseg {
            shard::push_dedup_hist(&mut self.hscratch, &run.texts, t, at, &mut text.stats);
        }
        let layout = self.layout;
        let h = Hists {
            texts: &run.texts,
            samples: &self.hscratch,
        };
        let wrote = text
            .series(&run.prefix, &self.scratch, h, guess)
            .with_context(|| {
                let name = shard_dir::file_name(start, s, layout.width, layout.compress.is_some());
                format!("writing {}", layout.dir.join(name).display())
            })?;
        if wrote {
            let id = run.id as usize;
            if self.written.len() <= id {
                self.written.resize(id + 1, false);
            }
            self.written[id] = true;
        }
        Ok(())
    }

    /// Finishes the shards of the windows starting before `before`: a pass completed them.
    fn close(&mut self, before: i64) -> Result<()> {
        let done: Vec<i64> = self
            .windows
            .iter()
            .filter(|(&start, shards)| start < before && shards.is_some())
            .map(|(&start, _)| start)
            .collect();
        for start in done {
            let texts = self.windows.remove(&start).flatten().unwrap_or_default();
            let shards = finish_shards(self.layout, texts)?;
            self.finished.insert(start, shards);
        }
        Ok(())
    }

    fn finish(self) -> Result<Streamed> {
        let mut shards: Vec<FinishedShard> = self.finished.into_values().flatten().collect();
        for texts in self.windows.into_values().flatten() {
            shards.extend(finish_shards(self.layout, texts)?);
        }
        Ok(Streamed {
            shards,
            written: self.written,
            windows: Vec::new(),
        })
    }
}

/// Finishes the shard files of one window under their temporary names.
fn finish_shards(
    layout: &Layout,
    texts: Vec<Option<TextWriter<ShardFile>>>,
) -> Result<Vec<FinishedShard>> {
    let mut shards = Vec::new();
    for text in texts.into_iter().flatten() {
        let (file, stats): (ShardFile, WriteStats) = text
            .finish()
            .with_context(|| format!("writing a shard in {}", layout.dir.display()))?;
        shards.extend(file.finish(stats)?);
    }
    Ok(shards)
}

fn open_shard(layout: &Layout, start: i64, s: usize) -> Result<TextWriter<ShardFile>> {
    let target = ShardTarget {
        dir: &layout.dir,
        file: shard_dir::file_name(start, s, layout.width, layout.compress.is_some()),
        compress: layout.compress,
        window_start_ms: start,
        window_end_ms: start.saturating_add(layout.block_duration_ms),
        shard: s as u32,
    };
    Ok(TextWriter::new(
        ShardFile::create(&target, FILE_BUFFER)?,
        layout.stale,
    ))
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
