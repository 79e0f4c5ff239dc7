//! The sink's output: the windows sorted and written as shards (in parallel when in memory,
//! one at a time when spilled) or as one stream, then the manifest.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::{shard_width, Neighbours, Output, RunInfo, SeriesId, Sink, SinkSummary, StaleMode};
use crate::format::openmetrics;
use crate::format::shard_dir::{self, Manifest, QuotedNames, ShardEntry, Totals};
use crate::pipeline::out_dir::OutDir;
use crate::pipeline::shard::{self, SeriesInfo, ShardTarget, WriteStats};
use crate::pipeline::sorter::{self, Partition};
use crate::pipeline::spill::Texts;
use crate::pipeline::stream::Streamed;

/// Where [`Sink::write_dir`] writes.
pub(super) struct DirOut {
    pub(super) dir: OutDir,
    pub(super) compress: bool,
    pub(super) info: RunInfo,
}

/// What the writer needs, indexed by series rank.
pub(super) struct RankedTable {
    pub(super) prefixes: Vec<Box<[u8]>>,
    /// Set when a series had at least one sample written, for the distinct-series total.
    pub(super) written: Vec<std::sync::atomic::AtomicBool>,
    /// Per window: rank -> is the sample just before / after the window NaN.
    pub(super) neighbours: Vec<Neighbours>,
    /// By rank: the series gets the staleness guess.
    pub(super) guess: Vec<bool>,
}

/// The table as seen while writing window `w`.
struct WindowView<'a> {
    t: &'a RankedTable,
    w: usize,
}

impl SeriesInfo for WindowView<'_> {
    fn prefix(&self, series: u32) -> &[u8] {
        &self.t.prefixes[series as usize]
    }

    fn guess(&self, series: u32) -> shard::Guess {
        if !self.t.guess[series as usize] {
            return None;
        }
        let nb = self.t.neighbours.get(self.w);
        Some(
            nb.and_then(|m| m.get(&series).copied())
                .unwrap_or((None, None)),
        )
    }

    fn mark_written(&self, series: u32) {
        self.t.written[series as usize].store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl RankedTable {
    fn distinct_written(&self) -> u64 {
        use std::sync::atomic::Ordering;
        self.written
            .iter()
            .filter(|w| w.load(Ordering::Relaxed))
            .count() as u64
    }
}

pub(super) fn rank_order(ranks: &[u32], items: Vec<Box<[u8]>>) -> Vec<Box<[u8]>> {
    let mut out: Vec<Box<[u8]>> = vec![Box::default(); items.len()];
    for (id, item) in items.into_iter().enumerate() {
        out[ranks[id] as usize] = item;
    }
    out
}

/// The totals of the shard entries, and of what their files hold (`written`).
fn totals(entries: &[ShardEntry], written: &WriteStats, series: u64) -> Totals {
    // A shard of markers only holds no sample: it has no time range.
    let nonempty = || entries.iter().filter(|e| e.samples > 0);
    Totals {
        shards: entries.len() as u64,
        series,
        samples: entries.iter().map(|e| e.samples).sum(),
        bytes: entries.iter().map(|e| e.bytes).sum(),
        uncompressed_bytes: entries.iter().map(|e| e.uncompressed_bytes).sum(),
        min_ts_ms: nonempty().map(|e| e.min_ts_ms).min(),
        max_ts_ms: nonempty().map(|e| e.max_ts_ms).max(),
        stale_markers: written.markers.markers,
        histogram_samples: written.histograms.samples,
        histogram_stale_markers: written.histograms.stale_markers,
    }
}

/// One window for the sorted path: its index, shard count, start and samples (the histogram
/// samples' texts in `texts`).
struct WindowTask {
    w: usize,
    n: u32,
    start: i64,
    part: Partition,
    texts: Texts,
}

/// What the sorted path writes every window with.
struct SortedJob<'a> {
    path: &'a Path,
    width: usize,
    level: Option<u32>,
    block_duration_ms: i64,
    stale: StaleMode,
    ranks: &'a [u32],
    t: &'a RankedTable,
    /// The shard hash of each series, by rank.
    hashes: Vec<u64>,
    /// Memory a window's sort may use, and where it spills beyond.
    budget: u64,
    sort_root: PathBuf,
}

impl SortedJob<'_> {
    /// Sorts window `task` into its shards.
    fn window(
        &self,
        task: WindowTask,
        pb: &indicatif::ProgressBar,
    ) -> Result<Vec<shard::FinishedShard>> {
        let WindowTask {
            w,
            n,
            start,
            part,
            texts,
        } = task;
        let view = WindowView { t: self.t, w };
        let shard_of = |rank: u32| (self.hashes[rank as usize] % n as u64) as usize;
        let out = std::sync::Mutex::new(Vec::new());
        sorter::sorted(
            part,
            self.ranks,
            shard_of,
            n as usize,
            self.budget,
            self.sort_root.clone(),
            |s, recs| {
                let target = ShardTarget {
                    dir: self.path,
                    file: shard_dir::file_name(start, s, self.width, self.level.is_some()),
                    compress: self.level,
                    window_start_ms: start,
                    window_end_ms: start.saturating_add(self.block_duration_ms),
                    shard: s as u32,
                };
                if let Some(r) = shard::write_shard(&target, &view, self.stale, &texts, recs)? {
                    out.lock().expect("not poisoned").push(r);
                }
                pb.inc(1);
                Ok(())
            },
        )?;
        Ok(out.into_inner().expect("not poisoned"))
    }
}

impl Sink {
    /// For each window: how many shards, and the shard of each series (by rank).
    pub(super) fn plan(&self) -> Vec<(usize, u32)> {
        let target = self.opts.target_shard_bytes.max(1);
        let mut plan: Vec<(usize, u32)> = self
            .windows
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let n = match (&self.opts.output, self.opts.shards) {
                    (Output::Stdout, _) => 1,
                    (_, Some(n)) => n.max(1),
                    (_, None) => w.est_bytes.div_ceil(target).clamp(1, 1 << 16) as u32,
                };
                (i, n)
            })
            .collect();
        plan.sort_by_key(|&(i, _)| self.windows[i].start);
        plan
    }

    pub(super) fn write_stdout(
        mut self,
        plan: Vec<(usize, u32)>,
        ranks: &[u32],
        t: &RankedTable,
    ) -> Result<SinkSummary> {
        let out = std::sync::Mutex::new(std::io::BufWriter::with_capacity(
            1 << 20,
            crate::exit_codes::stdout(),
        ));
        let mut written = WriteStats::default();
        let root = self.spill_root_for_sort();
        for (w, _) in plan {
            // The sink refuses histograms for stdout: none are in the window.
            let (part, _) = self.take_partition(w)?;
            let view = WindowView { t, w };
            let stats = std::sync::Mutex::new(WriteStats::default());
            sorter::sorted(
                part,
                ranks,
                |_| 0,
                1,
                self.budget,
                root.clone(),
                |_, recs| {
                    let mut out = out.lock().expect("one shard");
                    let plain = shard::NoSidecar(&mut *out);
                    let mut enc = shard::Encoder::new(&view, self.opts.stale, &[], plain);
                    for r in recs {
                        enc.push(&r?)?;
                    }
                    let (_, st) = enc.finish()?;
                    stats.lock().expect("one shard").add(&st);
                    Ok(())
                },
            )?;
            written.add(&stats.into_inner().expect("not poisoned"));
        }
        let mut out = out.into_inner().expect("not poisoned");
        out.write_all(openmetrics::EOF_LINE)
            .and_then(|_| out.flush())
            .context("writing to stdout")?;
        drop(self.spill_dir.take());
        Ok(SinkSummary {
            series: t.distinct_written(),
            written,
            shards: 1,
            bytes: 0,
            spilled_bytes: self.spilled_bytes,
            negative_ts: self.negative_ts,
            later: self.later,
            streamed_shards: 0,
            quoted_names: self.quoted_names(ranks, t),
        })
    }

    /// The written series with a quoted name: how many, and the first few names in output order.
    fn quoted_names(&self, ranks: &[u32], t: &RankedTable) -> QuotedNames {
        let mut written: Vec<(u32, SeriesId)> = self
            .series
            .quoted
            .iter()
            .map(|&id| (ranks[id as usize], id))
            .filter(|&(r, _)| t.written[r as usize].load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        written.sort_unstable();
        let mut examples: Vec<String> = Vec::new();
        for &(_, id) in &written {
            let labels = &self.series.labels[id as usize];
            let name = openmetrics::quoted_name(labels).expect("quoted when interned");
            if !examples.iter().any(|e| e == name) {
                examples.push(name.to_string());
                if examples.len() == 3 {
                    break;
                }
            }
        }
        QuotedNames {
            series: written.len() as u64,
            examples,
        }
    }

    fn spill_root_for_sort(&self) -> PathBuf {
        match &self.spill_dir {
            Some(d) => d.path().to_path_buf(),
            None => self.spill_root(),
        }
    }

    /// Takes a window's samples out of the sink, with its histograms' texts: in memory, or its
    /// finished run file (and texts file).
    fn take_partition(&mut self, w: usize) -> Result<(Partition, Texts)> {
        let win = &mut self.windows[w];
        let texts = match win.texts_file.take() {
            Some(f) => f.finish().context("reading a spill file back")?,
            None => Texts::Mem(std::mem::take(&mut win.texts)),
        };
        let part = match win.spill.take() {
            Some(sw) => Partition::File(sw.finish().context("finishing a spill file")?),
            None => Partition::Mem(std::mem::take(&mut win.mem)),
        };
        Ok((part, texts))
    }

    /// Writes the windows not streamed whole through the sorted path, then gives every shard
    /// its final name and writes the manifest.
    pub(super) fn write_dir(
        mut self,
        plan: Vec<(usize, u32)>,
        ranks: &[u32],
        t: &RankedTable,
        out: DirOut,
        streamed: Option<Streamed>,
    ) -> Result<SinkSummary> {
        let DirOut {
            dir,
            compress,
            info,
        } = out;
        let width = shard_width(plan.iter().map(|&(_, n)| n).max().unwrap_or(1));
        let pre = self.take_streamed(&plan, width, ranks, t, streamed);
        let done: std::collections::HashSet<usize> = pre.iter().map(|&(w, _)| w).collect();
        let plan: Vec<(usize, u32)> = plan
            .into_iter()
            .filter(|(w, _)| !done.contains(w))
            .collect();
        let job = SortedJob {
            path: dir.path(),
            width,
            level: compress.then_some(self.opts.compression_level),
            block_duration_ms: self.opts.block_duration_ms,
            stale: self.opts.stale,
            ranks,
            t,
            hashes: series_hashes(t),
            budget: self.budget,
            sort_root: self.spill_root_for_sort(),
        };
        let mut finished = self.write_sorted(&plan, &job)?;
        // Every shard is complete: only now do they get their final names (replacing an earlier
        // run's files), the manifest last.
        let streamed_shards: usize = pre.iter().map(|(_, s)| s.len()).sum();
        finished.extend(pre.into_iter().flat_map(|(_, s)| s));
        finished.sort_by(|a, b| a.entry.file.cmp(&b.entry.file));
        let (manifest, written) = self.manifest(&finished, info, compress, ranks, t);
        dir.commit(finished, &manifest)?;
        drop(self.spill_dir.take());
        Ok(SinkSummary {
            series: manifest.totals.series,
            shards: manifest.shards.len(),
            bytes: manifest.totals.bytes,
            written,
            spilled_bytes: self.spilled_bytes,
            negative_ts: self.negative_ts,
            later: self.later,
            streamed_shards,
            quoted_names: manifest.quoted_names.unwrap_or_default(),
        })
    }

    /// Sorts and writes the windows of `plan` as shards under their temporary names. Spilled
    /// data is processed a window at a time so only one window is resident; data that fit in
    /// memory is resident anyway, so windows go in parallel.
    fn write_sorted(
        &mut self,
        plan: &[(usize, u32)],
        job: &SortedJob<'_>,
    ) -> Result<Vec<shard::FinishedShard>> {
        let total_shards: u64 = plan.iter().map(|&(_, n)| n as u64).sum();
        let pb = if self.opts.progress {
            crate::progress::bar(total_shards, "writing shards", false)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let tasks: Vec<WindowTask> = plan
            .iter()
            .map(|&(w, n)| {
                let (part, texts) = self.take_partition(w)?;
                Ok(WindowTask {
                    w,
                    n,
                    start: self.windows[w].start,
                    part,
                    texts,
                })
            })
            .collect::<Result<_>>()?;
        let process = |task| job.window(task, &pb);
        let results: Vec<Vec<shard::FinishedShard>> = if self.spilled_bytes > 0 {
            tasks.into_iter().map(process).collect::<Result<_>>()?
        } else {
            tasks.into_par_iter().map(process).collect::<Result<_>>()?
        };
        pb.finish_and_clear();
        Ok(results.into_iter().flatten().collect())
    }

    /// The manifest of the finished shards, and what they hold.
    fn manifest(
        &self,
        finished: &[shard::FinishedShard],
        info: RunInfo,
        compress: bool,
        ranks: &[u32],
        t: &RankedTable,
    ) -> (Manifest, WriteStats) {
        let mut written = WriteStats::default();
        let mut shards: Vec<ShardEntry> = Vec::with_capacity(finished.len());
        for f in finished {
            written.add(&f.stats);
            shards.push(f.entry.clone());
        }
        let manifest = Manifest {
            prom2om_version: env!("CARGO_PKG_VERSION").to_string(),
            source: info.source,
            inputs: info.inputs,
            filters: info.filters,
            block_duration_ms: self.opts.block_duration_ms,
            compressed: compress,
            totals: totals(&shards, &written, t.distinct_written()),
            shards,
            quoted_names: Some(self.quoted_names(ranks, t)),
            losses: info.losses,
        };
        (manifest, written)
    }

    /// The streamed shards of the windows that need no sorted pass: streamed whole, and laid out
    /// as the final plan says. The others are dropped (deleted) here, before the sorted path
    /// writes those windows under the same temporary names.
    fn take_streamed(
        &self,
        plan: &[(usize, u32)],
        width: usize,
        ranks: &[u32],
        t: &RankedTable,
        streamed: Option<Streamed>,
    ) -> Vec<(usize, Vec<shard::FinishedShard>)> {
        let Some(st) = streamed else {
            return Vec::new();
        };
        let Some(layout) = &self.stream_layout else {
            return Vec::new();
        };
        let mut keep: HashMap<i64, (usize, Vec<shard::FinishedShard>)> = plan
            .iter()
            .filter(|&&(w, n)| {
                let start = self.windows[w].start;
                st.windows.get(w) == Some(&true)
                    && n == layout.shards_at(start)
                    && width == layout.width
            })
            .map(|&(w, _)| (self.windows[w].start, (w, Vec::new())))
            .collect();
        for f in st.shards {
            if let Some((_, v)) = keep.get_mut(&f.entry.window_start_ms) {
                v.push(f);
            }
        }
        for (id, &w) in st.written.iter().enumerate() {
            if w {
                t.written[ranks[id] as usize].store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        keep.into_values().collect()
    }
}

/// The shard hash of each series, by rank.
fn series_hashes(t: &RankedTable) -> Vec<u64> {
    t.prefixes
        .iter()
        .map(|p| shard_dir::series_hash(p))
        .collect()
}
