//! The collecting side of `fetch`: the workers' series go to the spool and the sink unit by
//! unit, in time order, so that the sink can write shards as they come; finished units go into
//! the checkpoint.

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use super::plan::{Checkpoint, Unit};
use super::remote_read::SeriesData;
use super::{spool, worker, FetchStats};
use crate::format::histogram::HistogramValue;
use crate::labels::Labels;
use crate::pipeline::feed::{Provenance, SampleSink};

/// Takes the workers' messages on the calling thread: series into the spool and the sink, each
/// finished unit into the checkpoint. Units reach the sink whole and in the order of `pending`
/// (time order): the series of a unit ahead of the current one are held until its turn, and a
/// unit whose window nothing delivered before reaches begins a pass of the sink
/// ([`SampleSink::begin_pass`]), so that the shard writer streams them.
pub(super) struct Collector<'a, S> {
    sink: &'a mut S,
    stats: &'a mut FetchStats,
    spool: Option<spool::SpoolWriter>,
    checkpoint: Option<Checkpoint>,
    bar: indicatif::ProgressBar,
    warned_range: bool,
    order: Order<'a>,
}

/// Which unit the sink gets now, and what came early.
pub(super) struct Order<'a> {
    units: &'a [Unit],
    pending: &'a [usize],
    /// Of `pending`: the unit whose series go to the sink as they come.
    pos: usize,
    /// Series of units after it, by unit index.
    held: HashMap<usize, Vec<SeriesData>>,
    /// Units whose every series has come (their `Done`).
    complete: HashSet<usize>,
    held_bytes: u64,
    /// The latest time of the units delivered so far.
    reach: i64,
}

impl<'a> Order<'a> {
    /// The units of this run, `pending` in the order they go to the sink; those `done` (from the
    /// spool) went to it first.
    pub(super) fn new(units: &'a [Unit], pending: &'a [usize], done: &[bool]) -> Order<'a> {
        Order {
            units,
            pending,
            pos: 0,
            held: HashMap::new(),
            complete: HashSet::new(),
            held_bytes: 0,
            // No pass begins inside what the spool gave.
            reach: (units.iter().zip(done))
                .filter(|(_, d)| **d)
                .map(|(u, _)| u.end_ms)
                .max()
                .unwrap_or(i64::MIN),
        }
    }
}

/// Memory a held series takes, roughly.
fn held_size(sd: &SeriesData) -> u64 {
    let hist = std::mem::size_of::<(i64, HistogramValue)>() as u64 + 64;
    64 + sd.samples.len() as u64 * 16 + sd.histograms.len() as u64 * hist
}

impl<'a, S: SampleSink> Collector<'a, S> {
    pub(super) fn new(
        sink: &'a mut S,
        stats: &'a mut FetchStats,
        (spool, checkpoint): (Option<spool::SpoolWriter>, Option<Checkpoint>),
        bar: indicatif::ProgressBar,
        order: Order<'a>,
    ) -> Self {
        Collector {
            sink,
            stats,
            spool,
            checkpoint,
            bar,
            warned_range: false,
            order,
        }
    }

    pub(super) fn finish(self) {
        self.bar.finish_and_clear();
    }

    /// Takes one message; returns how many of the pending units the sink has had whole.
    pub(super) fn take(&mut self, msg: worker::Msg) -> Result<usize> {
        match msg {
            worker::Msg::Series(u, sd) => {
                if self.order.pending.get(self.order.pos) == Some(&u) {
                    self.series(sd)?;
                } else {
                    self.order.held_bytes += held_size(&sd);
                    self.order.held.entry(u).or_default().push(sd);
                    self.sink.hold_memory(self.order.held_bytes);
                }
            }
            worker::Msg::Done(u) => {
                self.order.complete.insert(u);
                self.advance()?;
            }
            worker::Msg::Failed(e) => return Err(e),
        }
        Ok(self.order.pos)
    }

    /// Moves past every unit that is complete, in order: each is recorded in the checkpoint, and
    /// the next one's held series go to the sink.
    fn advance(&mut self) -> Result<()> {
        loop {
            let o = &mut self.order;
            let Some(&u) = o.pending.get(o.pos).filter(|u| o.complete.remove(u)) else {
                return Ok(());
            };
            if let (Some(sp), Some(cp)) = (self.spool.as_mut(), self.checkpoint.as_mut()) {
                let len = sp.commit()?;
                cp.done(u, len)?;
            }
            self.bar.inc(1);
            o.pos += 1;
            let Some(&next) = o.pending.get(o.pos) else {
                return Ok(());
            };
            o.reach = o.reach.max(o.units[u].end_ms);
            let from = o.units[next].start_ms;
            let held = o.held.remove(&next).unwrap_or_default();
            // A pass may begin only where nothing delivered reaches: its windows are then
            // written by the passes to come alone (a unit longer than the next one's start
            // leaves the series order to the sink, which sorts what comes out of it).
            let at = self.sink.pass_start(from);
            if at > i64::MIN && o.reach < at {
                self.sink.begin_pass(at)?;
            }
            for sd in held {
                self.order.held_bytes -= held_size(&sd);
                self.series(sd)?;
            }
            self.sink.hold_memory(self.order.held_bytes);
        }
    }

    /// One series of the current unit: counted, spooled, delivered.
    fn series(&mut self, sd: SeriesData) -> Result<()> {
        let stats = &mut *self.stats;
        {
            {
                stats.stale_markers += sd.stale_markers;
                if sd.histograms_skipped > 0 && !self.warned_range {
                    self.warned_range = true;
                    self.bar.suspend(|| eprintln!("prom2om: warning: --method range skips native histograms (series {}): query_range resamples them; use --method remote-read (exact) or raw", sd.labels));
                }
                stats.histograms_skipped += sd.histograms_skipped;
                stats.guessed.add(&sd.guessed);
                if sd.samples.is_empty() && sd.histograms.is_empty() {
                    return Ok(());
                }
                stats.series_batches += 1;
                stats.samples += sd.samples.len() as u64;
                let hists = sd.histograms.len() as u64;
                stats.histogram_stale_markers += sd.histogram_stale_markers;
                stats.histogram_samples += hists - sd.histogram_stale_markers;
                self.bar.set_message(format!("{} samples", stats.samples));
                if let Some(sp) = self.spool.as_mut() {
                    sp.append(&sd.labels, &sd.samples, &sd.histograms)?;
                }
                deliver(self.sink, sd.labels, &sd.samples, &sd.histograms)
            }
        }
    }
}

/// Hands one batch of one series to the sink: its float samples, then its histograms (of a
/// timestamp a method gives one or the other). Remote read gives the values' exact bits.
pub(super) fn deliver(
    sink: &mut impl SampleSink,
    labels: Labels,
    samples: &[(i64, f64)],
    histograms: &[(i64, HistogramValue)],
) -> Result<()> {
    let id = sink.series(labels, Provenance::EXACT)?;
    for &(t, v) in samples {
        sink.float(id, t, v.to_bits())?;
    }
    for (t, h) in histograms {
        sink.histogram(id, *t, h)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sink::{RunInfo, Sink, SinkOptions};
    use worker::Msg;

    fn unit(a: i64, b: i64) -> Unit {
        Unit {
            matchers: Vec::new(),
            start_ms: a,
            end_ms: b,
            est_samples: 0,
        }
    }

    /// Series `name`'s samples in `[a, b]`, one every 10 s.
    fn series(name: &str, (a, b): (i64, i64)) -> SeriesData {
        SeriesData {
            labels: Labels::from_pairs([("__name__", name), ("k", "v")]),
            samples: (a..=b)
                .step_by(10_000)
                .map(|t| (t, t as f64 / 7.0))
                .collect(),
            ..Default::default()
        }
    }

    /// The messages of `units` (each with its series names) as workers running them at once
    /// send them: one series of each unit in turn, in the order `turns` gives the units.
    fn interleaved(units: &[Unit], names: &[&[&str]], turns: &[usize]) -> Vec<Msg> {
        let mut queues: Vec<Vec<Msg>> = (0..units.len())
            .map(|i| {
                let u = &units[i];
                let mut q: Vec<Msg> = (names[i].iter())
                    .map(|n| Msg::Series(i, series(n, (u.start_ms, u.end_ms))))
                    .collect();
                q.push(Msg::Done(i));
                q.reverse();
                q
            })
            .collect();
        let mut out = Vec::new();
        while queues.iter().any(|q| !q.is_empty()) {
            for &i in turns {
                out.extend(queues[i].pop());
            }
        }
        out
    }

    /// The collector's output of `msgs` in 10-minute windows: the files, and the shards streamed.
    fn collect(units: &[Unit], msgs: Vec<Msg>, stream: bool) -> (Vec<(String, Vec<u8>)>, usize) {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut sink = Sink::create(SinkOptions {
            stream,
            ..SinkOptions::test_dir(&out, true)
        })
        .unwrap();
        let mut stats = FetchStats::default();
        let pending: Vec<usize> = (0..units.len()).collect();
        let order = Order::new(units, &pending, &vec![false; units.len()]);
        let bar = indicatif::ProgressBar::hidden();
        let mut c = Collector::new(&mut sink, &mut stats, (None, None), bar, order);
        for m in msgs {
            c.take(m).unwrap();
        }
        assert_eq!(c.order.pos, units.len(), "every unit delivered");
        assert!(c.order.held.is_empty() && c.order.held_bytes == 0);
        c.finish();
        let summary = sink.finish(RunInfo::default()).unwrap();
        let files = crate::pipeline::files_in(&out);
        (files, summary.streamed_shards)
    }

    #[test]
    fn units_arriving_mixed_reach_the_sink_in_order_and_stream() {
        // Three 10-minute units of one metric each with three series, their messages mixed.
        let units: Vec<Unit> = (0..3)
            .map(|k| unit(k * 600_000, k * 600_000 + 599_999))
            .collect();
        let names: &[&[&str]] = &[&["a", "b", "c"], &["a", "b", "c"], &["a", "b", "c"]];
        for turns in [[1, 0, 2], [2, 1, 0], [0, 1, 2]] {
            let msgs = || interleaved(&units, names, &turns);
            let (sorted, none) = collect(&units, msgs(), false);
            let (streamed, n) = collect(&units, msgs(), true);
            assert!(streamed == sorted, "{turns:?}: shards differ");
            assert_eq!((none, n), (0, 3), "{turns:?}");
        }
    }

    #[test]
    fn a_unit_reaching_past_the_next_ones_start_begins_no_pass() {
        // Two metrics' units over 20 minutes: "a" in one unit, "b" in two. No pass may begin at
        // b's second unit, whose window a's unit reached: a's series were written there first.
        let units = [
            unit(0, 1_199_999),
            unit(0, 599_999),
            unit(600_000, 1_199_999),
        ];
        let names: &[&[&str]] = &[&["a"], &["b"], &["b"]];
        let msgs = || interleaved(&units, names, &[2, 1, 0]);
        let (sorted, _) = collect(&units, msgs(), false);
        let (streamed, n) = collect(&units, msgs(), true);
        assert!(streamed == sorted, "shards differ");
        assert_eq!(n, 2, "series in order: both windows streamed");
        // The metrics the other way round: b's units before a's long one. The series come out
        // of order for the shards: the sink sorts, and writes the same bytes.
        let names: &[&[&str]] = &[&["b"], &["a"], &["a"]];
        let (sorted, _) = collect(&units, interleaved(&units, names, &[0, 1, 2]), false);
        let (got, n) = collect(&units, interleaved(&units, names, &[0, 1, 2]), true);
        assert!(got == sorted, "shards differ");
        assert_eq!(n, 0);
        // "b" over both windows, then "c" in the first, then "a" in the second: a pass begun
        // there would write "a" after "b" into the second window's shard.
        let names: &[&[&str]] = &[&["b"], &["c"], &["a"]];
        let (sorted, _) = collect(&units, interleaved(&units, names, &[0, 1, 2]), false);
        let (got, _) = collect(&units, interleaved(&units, names, &[0, 1, 2]), true);
        assert!(got == sorted, "shards differ");
    }
}
