//! Head samples into a [`SampleSink`]: the head reader (`pipeline::head`) offers series and raw
//! samples in any order; this applies the same selectors, time range, label edits and exact
//! staleness rule as the blocks, and leaves ordering and repeated samples to the sink.

use anyhow::Result;

use super::stats::{DirStats, ReadOptions};
use crate::format::histogram::HistogramValue;
use crate::labels::Labels;
use crate::pipeline::feed::{Provenance, SampleSink, SeriesId};

pub struct HeadFeed<'a, S: SampleSink> {
    sink: &'a mut S,
    opts: &'a ReadOptions,
    ids: Vec<SeriesId>,
    pub stats: DirStats,
}

impl<'a, S: SampleSink> HeadFeed<'a, S> {
    pub fn new(sink: &'a mut S, opts: &'a ReadOptions) -> Self {
        HeadFeed {
            sink,
            opts,
            ids: Vec::new(),
            stats: DirStats::default(),
        }
    }

    /// A head series: `Some(id)` when the selectors keep it.
    pub fn series(&mut self, labels: &Labels) -> Result<Option<u32>> {
        if !self.opts.filter.keeps_series(labels) {
            return Ok(None);
        }
        let mut l = labels.clone();
        self.opts.filter.edits.apply(&mut l);
        let sid = self.sink.series(l, Provenance::EXACT)?;
        self.ids.push(sid);
        self.stats.series += 1;
        Ok(Some(self.ids.len() as u32 - 1))
    }

    /// One raw sample of a kept series.
    pub fn sample(&mut self, id: u32, ts: i64, bits: u64) -> Result<()> {
        if !self.opts.filter.keeps_time(ts) {
            self.stats.dropped_by_time += 1;
            return Ok(());
        }
        if !self.stats.float(bits, self.opts.keep_stale) {
            return Ok(());
        }
        self.sink.float(self.ids[id as usize], ts, bits)
    }

    /// One native histogram sample of a kept series.
    pub fn histogram(&mut self, id: u32, ts: i64, h: &HistogramValue) -> Result<()> {
        if !self.opts.filter.keeps_time(ts) {
            self.stats.dropped_by_time += 1;
            return Ok(());
        }
        if !self.stats.histogram(h, self.opts.keep_stale) {
            return Ok(());
        }
        self.sink.histogram(self.ids[id as usize], ts, h)
    }
}

impl<S: SampleSink> crate::pipeline::head::HeadVisitor for HeadFeed<'_, S> {
    fn series(&mut self, labels: &Labels) -> Result<Option<u32>> {
        HeadFeed::series(self, labels)
    }

    fn wants(&mut self, labels: &Labels) -> bool {
        self.opts.filter.keeps_series(labels)
    }

    fn sample(&mut self, id: u32, ts: i64, bits: u64) -> Result<()> {
        HeadFeed::sample(self, id, ts, bits)
    }

    fn histogram(&mut self, id: u32, ts: i64, h: &HistogramValue) -> Result<()> {
        HeadFeed::histogram(self, id, ts, h)
    }
}

/// Replays the head of data dir `dir` into the sink (the shard sink after the blocks, or the
/// [`Hold`](super::Hold) that joins the head to them): WAL samples older than the newest block's
/// maxTime are discarded, as Prometheus does.
pub fn read_head(
    dir: &std::path::Path,
    blocks: &[super::Block],
    opts: &ReadOptions,
    sink: &mut impl SampleSink,
) -> Result<DirStats> {
    use crate::pipeline::head::{self, HeadOptions};
    let f = &opts.filter;
    let hopts = HeadOptions {
        // Prometheus's loadDataAsQueryable: the maxTime of the last block in minTime order.
        min_valid_time: blocks.last().map_or(i64::MIN, |b| b.meta.max_time),
        mint: f.start.unwrap_or(i64::MIN),
        maxt: f.end.unwrap_or(i64::MAX),
        skip_invalid: opts.skip_invalid,
    };
    let mut feed = HeadFeed::new(sink, opts);
    let hs = head::read_head(dir, &hopts, &mut feed)?;
    let mut st = feed.stats;
    st.head_series = st.series;
    st.invalid_skipped += hs.skipped_invalid;
    for r in hs.reported {
        st.report(format!("head: {r}"));
    }
    st.torn = hs.torn;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sink::{RunInfo, Sink, SinkOptions};
    use crate::select::filter::Filter;
    use crate::select::selector::Selector;

    #[test]
    fn filters_and_staleness_as_for_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut sink = Sink::create(SinkOptions {
            block_duration_ms: 7_200_000,
            memory_limit: 64 << 20,
            stream: false,
            ..SinkOptions::test_dir(&out, false)
        })
        .unwrap();
        let opts = ReadOptions {
            filter: Filter {
                selectors: vec![Selector::parse("up").unwrap()],
                start: Some(1000),
                end: Some(5000),
                ..Default::default()
            },
            keep_stale: false,
            skip_invalid: false,
        };
        let mut feed = HeadFeed::new(&mut sink, &opts);
        assert_eq!(
            feed.series(&Labels::from_pairs([("__name__", "down")]))
                .unwrap(),
            None
        );
        let id = feed
            .series(&Labels::from_pairs([("__name__", "up"), ("job", "a")]))
            .unwrap()
            .unwrap();
        let nan = f64::NAN.to_bits();
        use crate::format::value::STALE_NAN_BITS;
        for (ts, bits) in [
            (3000, nan),
            (2000, STALE_NAN_BITS),
            (1000, 1),
            (9000, 2),
            (3000, nan),
        ] {
            feed.sample(id, ts, bits).unwrap();
        }
        let st = feed.stats.clone();
        assert_eq!(
            (
                st.series,
                st.samples_kept,
                st.stale_dropped,
                st.dropped_by_time
            ),
            (1, 3, 1, 1)
        );
        sink.finish(RunInfo::default()).unwrap();
        let shard = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "om"))
            .unwrap();
        let text = std::fs::read_to_string(shard).unwrap();
        assert!(
            text.contains("up{job=\"a\"} 5e-324 1\nup{job=\"a\"} NaN 3\n"),
            "{text}"
        );
    }
}
