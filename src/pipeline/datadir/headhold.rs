//! The head held in memory while the blocks are read, when it fits a share of the sink's budget:
//! each head series then joins the blocks' label-ordered stream, so shards keep streaming.
//!
//! The sink sees, per series, the same samples in the same relative order among equal timestamps
//! as when the head is pushed after the blocks (block samples first, then the head's in replay
//! order), so "the later input wins" picks the same sample and the shards are the same bytes. A
//! head too big for its share is replayed again straight into the sink, after the blocks.

use anyhow::Result;

use super::headfeed::read_head;
use super::stats::{DirStats, ReadOptions};
use crate::labels::Labels;
use crate::pipeline::feed::{Provenance, SampleSink, SeriesId};

/// Memory counted per held sample: the pair, and the slack of a growing vector.
const HELD_SAMPLE_MEM: u64 = 32;
/// Memory counted per held series besides its labels (vector headers, order, ids).
const HELD_SERIES_MEM: u64 = 96;

/// Kept head samples by series, in replay order, until the blocks' stream takes them.
pub struct Hold {
    /// By hold id (as [`Holding`] gives them): labels, sink id, samples.
    series: Vec<Held>,
    samples: u64,
    label_bytes: u64,
    /// Bound on `mem()`; past it the replay stops with [`TooBig`].
    cap: u64,
    /// Feed ids with samples in label order, once sealed; `next` is the first not yet pushed.
    order: Vec<u32>,
    next: usize,
}

struct Held {
    labels: Labels,
    id: SeriesId,
    samples: Vec<(i64, u64)>,
}

/// The head did not fit the share of the budget it may hold.
#[derive(Debug)]
pub struct TooBig;

impl std::fmt::Display for TooBig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the head is larger than its share of --memory-limit")
    }
}

impl std::error::Error for TooBig {}

impl Hold {
    fn new(cap: u64) -> Hold {
        Hold {
            series: Vec::new(),
            samples: 0,
            label_bytes: 0,
            cap,
            order: Vec::new(),
            next: 0,
        }
    }

    /// Memory held, roughly, for the sink's budget.
    fn mem(&self) -> u64 {
        self.samples * HELD_SAMPLE_MEM
            + self.series.len() as u64 * HELD_SERIES_MEM
            + self.label_bytes
    }

    /// A series the feed kept, sink id `id`; returns its hold id, the next.
    pub(super) fn series(&mut self, labels: &Labels, id: SeriesId) -> u32 {
        self.label_bytes += labels
            .iter()
            .map(|(n, v)| n.len() + v.len() + 48)
            .sum::<usize>() as u64;
        self.series.push(Held {
            labels: labels.clone(),
            id,
            samples: Vec::new(),
        });
        self.series.len() as u32 - 1
    }

    /// A kept sample of hold id `id`; [`TooBig`] when the hold is full.
    pub(super) fn sample(&mut self, id: u32, ts: i64, bits: u64) -> Result<()> {
        if self.mem() >= self.cap {
            return Err(TooBig.into());
        }
        self.samples += 1;
        self.series[id as usize].samples.push((ts, bits));
        Ok(())
    }

    /// Orders each series by time (stable: equal timestamps keep replay order) and the series
    /// by label set, the blocks' merge order.
    fn seal(&mut self) {
        for h in &mut self.series {
            h.samples.sort_by_key(|&(t, _)| t);
        }
        let mut order: Vec<u32> = (0..self.series.len() as u32)
            .filter(|&i| !self.series[i as usize].samples.is_empty())
            .collect();
        order.sort_by(|&a, &b| {
            self.series[a as usize]
                .labels
                .cmp(&self.series[b as usize].labels)
        });
        self.order = order;
    }

    /// Pushes the held series ordered before `labels` and returns the samples of the one equal
    /// to it, if held: the blocks' stream is at `labels`.
    pub(super) fn advance(
        &mut self,
        labels: &Labels,
        sink: &mut impl SampleSink,
    ) -> Result<Vec<(i64, u64)>> {
        while let Some(&i) = self.order.get(self.next) {
            let h = &mut self.series[i as usize];
            match h.labels.cmp(labels) {
                std::cmp::Ordering::Less => {
                    let samples = std::mem::take(&mut h.samples);
                    push_merged(sink, h.id, &[], &samples)?;
                }
                std::cmp::Ordering::Equal => {
                    self.next += 1;
                    return Ok(std::mem::take(&mut h.samples));
                }
                std::cmp::Ordering::Greater => break,
            }
            self.next += 1;
        }
        Ok(Vec::new())
    }

    /// Pushes the held series not pushed yet (after the blocks' last series).
    pub(super) fn finish(&mut self, sink: &mut impl SampleSink) -> Result<()> {
        while let Some(&i) = self.order.get(self.next) {
            let h = &mut self.series[i as usize];
            let samples = std::mem::take(&mut h.samples);
            push_merged(sink, h.id, &[], &samples)?;
            self.next += 1;
        }
        sink.hold_memory(0);
        Ok(())
    }
}

/// The sink a head replay feeds while it is held: each series is interned in the sink below as
/// it comes (the same ids as when the head goes there directly), its samples kept in the hold.
struct Holding<'a, S> {
    sink: &'a mut S,
    hold: &'a mut Hold,
}

impl<S: SampleSink> SampleSink for Holding<'_, S> {
    fn series(&mut self, labels: Labels, from: Provenance<'_>) -> Result<SeriesId> {
        let id = self.sink.series(labels.clone(), from)?;
        Ok(self.hold.series(&labels, id))
    }

    fn float(&mut self, id: SeriesId, ts: i64, bits: u64) -> Result<()> {
        self.hold.sample(id, ts, bits)
    }
}

/// Pushes one series: its block samples and its head samples (both time-ordered) merged by
/// time, block samples first among equal timestamps, as when the head came after the blocks.
pub(super) fn push_merged(
    sink: &mut impl SampleSink,
    id: SeriesId,
    block: &[(i64, u64)],
    head: &[(i64, u64)],
) -> Result<()> {
    let (mut i, mut j) = (0, 0);
    while i < block.len() || j < head.len() {
        let take_block = j == head.len() || (i < block.len() && block[i].0 <= head[j].0);
        let (t, v) = if take_block {
            i += 1;
            block[i - 1]
        } else {
            j += 1;
            head[j - 1]
        };
        sink.float(id, t, v)?;
    }
    Ok(())
}

/// Replays the head of `dir` into a [`Hold`] when it fits the sink's memory share (the sink
/// counts it while it is held); `None` when it does not fit or label edits are set (two source
/// series could then become one sink series, whose samples would come in another order).
pub fn hold_head(
    dir: &std::path::Path,
    blocks: &[super::Block],
    opts: &ReadOptions,
    sink: &mut impl SampleSink,
) -> Result<Option<(DirStats, Hold)>> {
    if !opts.filter.edits.is_empty() {
        return Ok(None);
    }
    let mut hold = Hold::new(sink.memory_share());
    let mut holding = Holding {
        sink: &mut *sink,
        hold: &mut hold,
    };
    match read_head(dir, blocks, opts, &mut holding) {
        Ok(st) => {
            hold.seal();
            sink.hold_memory(hold.mem());
            Ok(Some((st, hold)))
        }
        Err(e) if e.chain().any(|c| c.is::<TooBig>()) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sink::Sink;

    #[test]
    fn seal_orders_series_by_labels_and_samples_stably_by_time() {
        let mut h = Hold::new(u64::MAX);
        let b = Labels::from_pairs([("__name__", "b")]);
        let a = Labels::from_pairs([("__name__", "a")]);
        h.series(&b, 7);
        h.series(&a, 9);
        h.series(&Labels::from_pairs([("__name__", "c")]), 3);
        for (id, t, v) in [(0, 5, 1), (0, 3, 2), (0, 5, 3), (1, 1, 4)] {
            h.sample(id, t, v).unwrap();
        }
        h.seal();
        assert_eq!(
            h.order,
            vec![1, 0],
            "a series without samples is not pushed"
        );
        assert_eq!(h.series[0].samples, vec![(3, 2), (5, 1), (5, 3)]);
    }

    /// A sink writing plain shards of 10-minute windows into `out`, as the tests here need.
    fn sink(out: &std::path::Path, limit: u64, stream: bool) -> Sink {
        use crate::pipeline::sink::SinkOptions;
        Sink::create(SinkOptions {
            memory_limit: limit,
            stream,
            ..SinkOptions::test_dir(out, false)
        })
        .unwrap()
    }

    /// Reads data dir `data` as convert does into a fresh sink; the shards' text by name.
    fn convert(data: &std::path::Path, out: &std::path::Path, limit: u64) -> Vec<(String, String)> {
        let mut sink = sink(out, limit, true);
        let opts = ReadOptions {
            keep_stale: true,
            ..Default::default()
        };
        let opened = super::super::open(data).unwrap();
        let pb = indicatif::ProgressBar::hidden();
        super::super::read_dir(opened, &opts, &mut sink, &pb).unwrap();
        sink.finish(crate::pipeline::sink::RunInfo::default())
            .unwrap();
        let mut shards: Vec<(String, String)> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "om"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        shards.sort();
        shards
    }

    /// Whether the head of `data` is held with a sink of memory limit `limit`.
    fn held(data: &std::path::Path, out: &std::path::Path, limit: u64) -> bool {
        let mut sink = sink(out, limit, false);
        let opened = super::super::open(data).unwrap();
        let h = hold_head(data, &opened.blocks, &ReadOptions::default(), &mut sink).unwrap();
        sink.abandon();
        h.is_some()
    }

    #[test]
    fn held_and_unheld_heads_write_the_same_shards() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        // Ref 1 is a series of the block; 2 sorts before every block series, 3 after; the WAL's
        // samples before the block's end are dropped by the replay.
        super::super::tests::golden_data_dir(&data);
        assert!(held(&data, &tmp.path().join("h1"), 1 << 30));
        assert!(!held(&data, &tmp.path().join("h2"), 1 << 20));
        let a = convert(&data, &tmp.path().join("a"), 1 << 30);
        let b = convert(&data, &tmp.path().join("b"), 1 << 20);
        assert_eq!(a, b);
        let text: String = a.iter().map(|(_, t)| t.as_str()).collect();
        // The block's last sample, then the head's first kept one; older WAL samples dropped.
        let golden = "golden{s=\"0\",x=\"a\\\"b\"}";
        let joined = format!("{golden} +Inf 2274.051\n{golden} 2.274052e+06 2274.052\n");
        assert!(!text.contains(" 2244.052"), "{text}");
        for l in [
            "aaa 4.548104e+06 2274.052",
            "zzz{j=\"x\"} 6.822156e+06 2274.052",
            &joined,
        ] {
            assert!(text.contains(l), "{l} missing:\n{text}");
        }
    }

    #[test]
    fn a_full_hold_refuses_samples() {
        let mut h = Hold::new(HELD_SERIES_MEM + 57 + 2 * HELD_SAMPLE_MEM);
        h.series(&Labels::from_pairs([("__name__", "a")]), 0);
        h.sample(0, 1, 1).unwrap();
        h.sample(0, 2, 1).unwrap();
        let e = h.sample(0, 3, 1).unwrap_err();
        assert!(e.is::<TooBig>());
    }
}
