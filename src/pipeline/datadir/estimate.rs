//! What reading a data dir's blocks will produce, from their indexes and chunk headers alone (no
//! chunk decoded): samples, series and OpenMetrics bytes per output window. The sink plans each
//! window's shard count from it before the first sample, and `convert --dry-run` prints it.

use std::collections::BTreeMap;

use anyhow::Result;
use rayon::prelude::*;

use super::stats::ReadOptions;
use super::Block;
use crate::format::openmetrics;
use crate::format::tsdb::chunks;
use crate::format::tsdb::tombstones::Tombstones;
use crate::select::postings;

/// Bytes a sample line adds to its series prefix: value, timestamp, separators. The sink sizes
/// its shards with the same figure (see `Sink::push`).
pub const LINE_BYTES: u64 = 26;
/// A native histogram sample's side-file text, roughly (its size depends on its buckets).
const HIST_TEXT_BYTES: u64 = 96;

/// The estimate for one output window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowEstimate {
    pub samples: u64,
    /// Series with a chunk in the window (a series in two blocks of one window counts twice).
    pub series: u64,
    /// OpenMetrics text, as the sink sizes shards: prefix plus [`LINE_BYTES`] per sample.
    pub text_bytes: u64,
}

/// The estimate of a read of the blocks, by window start.
#[derive(Clone, Debug, Default)]
pub struct Estimate {
    pub windows: BTreeMap<i64, WindowEstimate>,
    /// Selected series, summed over blocks (a series in several blocks counts in each).
    pub block_series: u64,
    /// Selected series, each once: by the hash of its text prefix (as shards are chosen).
    pub series: u64,
    /// The hashes of one block's series, until [`estimate`] counts them.
    hashes: Vec<u64>,
    pub chunks: u64,
    /// Blocks whose time range meets --start/--end.
    pub blocks: u64,
}

impl Estimate {
    pub fn samples(&self) -> u64 {
        self.windows.values().map(|w| w.samples).sum()
    }

    pub fn text_bytes(&self) -> u64 {
        self.windows.values().map(|w| w.text_bytes).sum()
    }

    fn add(&mut self, o: Estimate) {
        for (k, v) in o.windows {
            let w = self.windows.entry(k).or_default();
            w.samples += v.samples;
            w.series += v.series;
            w.text_bytes += v.text_bytes;
        }
        self.block_series += o.block_series;
        self.chunks += o.chunks;
        self.blocks += o.blocks;
    }
}

/// Estimates what reading `blocks` with `opts` gives, in windows of `window_ms`. Exact for
/// blocks that do not overlap, whose chunks lie inside --start/--end and inside one window
/// (as Prometheus cuts them); a chunk across a boundary is shared out by time. Samples of
/// overlapping blocks count once per block, and the head is not read.
pub fn estimate(blocks: &[Block], opts: &ReadOptions, window_ms: i64) -> Result<Estimate> {
    let f = &opts.filter;
    let (start, end) = (f.start.unwrap_or(i64::MIN), f.end.unwrap_or(i64::MAX));
    let parts: Vec<Estimate> = blocks
        .par_iter()
        .filter(|b| b.meta.min_time <= end && start < b.meta.max_time)
        .map(|b| block_estimate(b, opts, window_ms))
        .collect::<Result<_>>()?;
    let mut out = Estimate::default();
    let mut distinct = rustc_hash::FxHashSet::default();
    for mut p in parts {
        distinct.extend(std::mem::take(&mut p.hashes));
        out.add(p);
    }
    out.series = distinct.len() as u64;
    Ok(out)
}

fn block_estimate(b: &Block, opts: &ReadOptions, window_ms: i64) -> Result<Estimate> {
    let f = &opts.filter;
    let (start, end) = (f.start.unwrap_or(i64::MIN), f.end.unwrap_or(i64::MAX));
    let bad = |e: &dyn std::fmt::Display| crate::bad_input!("block {}: index: {e}", b.name());
    let ix = b.index()?;
    let ids = postings::for_selectors(&ix, &f.selectors).map_err(|e| bad(&e))?;
    let mut out = Estimate {
        blocks: 1,
        ..Estimate::default()
    };
    let (mut metas, mut prefix) = (Vec::new(), Vec::new());
    let mut last_window = None;
    for id in ids {
        // A damaged series is the read's to report (or skip under --skip-invalid).
        let Ok(mut labels) = ix.series(id, &mut metas) else {
            continue;
        };
        if !f.keeps_series(&labels) {
            continue;
        }
        f.edits.apply(&mut labels);
        prefix.clear();
        openmetrics::write_series_prefix(&labels, &mut prefix);
        let deleted = b.tombstones.intervals(u64::from(id));
        let mut any = false;
        for c in &metas {
            if c.max_time < start
                || c.min_time > end
                || Tombstones::covers(deleted, c.min_time, c.max_time)
            {
                continue;
            }
            let (seg, off) = chunks::unpack_ref(c.chunk_ref);
            let Some(Ok((enc, n))) = b.segments.get(seg).map(|s| chunks::header_at(s, off)) else {
                continue;
            };
            let line = prefix.len() as u64
                + if is_histogram(enc) {
                    HIST_TEXT_BYTES
                } else {
                    LINE_BYTES
                };
            any = true;
            out.chunks += 1;
            share(
                c.min_time.max(start),
                c.max_time.min(end),
                u64::from(n),
                window_ms,
            )
            .for_each(|(w, k)| {
                let e = out.windows.entry(w).or_default();
                e.samples += k;
                e.text_bytes += k * line;
                if last_window != Some((id, w)) {
                    e.series += 1;
                    last_window = Some((id, w));
                }
            });
        }
        out.block_series += u64::from(any);
        if any {
            out.hashes
                .push(crate::format::shard_dir::series_hash(&prefix));
        }
        if let Some(c) = metas.last().filter(|_| out.block_series % 4096 == 0) {
            // Headers read are not needed again: keep the resident size bounded.
            b.release_chunks_before(c.chunk_ref);
        }
    }
    b.release_chunks_before(u64::MAX);
    b.restart_release();
    Ok(out)
}

/// Chunk encodings of native histograms (Prometheus's EncHistogram, EncFloatHistogram).
fn is_histogram(enc: u8) -> bool {
    enc == 2 || enc == 3
}

/// `n` samples spread evenly over `[lo, hi]`, shared out among the windows they cross.
fn share(lo: i64, hi: i64, n: u64, d: i64) -> impl Iterator<Item = (i64, u64)> {
    let first = lo.div_euclid(d) * d;
    let last = hi.div_euclid(d) * d;
    let span = (hi as i128 - lo as i128 + 1).max(1);
    let mut given = 0u64;
    let mut w = first;
    std::iter::from_fn(move || {
        if w > last {
            return None;
        }
        let k = if w == last {
            n - given
        } else {
            let upto = (w + d - 1).min(hi);
            let covered = upto as i128 - lo as i128 + 1;
            ((n as i128 * covered / span) as u64).saturating_sub(given)
        };
        given += k;
        let at = w;
        w = w.saturating_add(d);
        Some((at, k))
    })
    .filter(|&(_, k)| k > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_inside_one_window_counts_there_whole() {
        let v: Vec<_> = share(7_200_000, 14_399_000, 240, 7_200_000).collect();
        assert_eq!(v, vec![(7_200_000, 240)]);
    }

    #[test]
    fn a_chunk_across_a_boundary_is_shared_by_time() {
        let v: Vec<_> = share(0, 1999, 200, 1000).collect();
        assert_eq!(v, vec![(0, 100), (1000, 100)]);
        let v: Vec<_> = share(-500, 499, 7, 1000).collect();
        assert_eq!(v.iter().map(|x| x.1).sum::<u64>(), 7);
        assert_eq!(v[0].0, -1000);
    }

    /// Counts what the sink would size its shards by.
    #[derive(Default)]
    struct Counting {
        prefixes: Vec<u64>,
        samples: u64,
        text_bytes: u64,
    }

    impl crate::pipeline::feed::SampleSink for Counting {
        fn series(
            &mut self,
            labels: crate::labels::Labels,
            _: crate::pipeline::feed::Provenance<'_>,
        ) -> Result<u32> {
            let mut p = Vec::new();
            openmetrics::write_series_prefix(&labels, &mut p);
            self.prefixes.push(p.len() as u64);
            Ok(self.prefixes.len() as u32 - 1)
        }

        fn float(&mut self, id: u32, _: i64, _: u64) -> Result<()> {
            self.samples += 1;
            self.text_bytes += self.prefixes[id as usize] + LINE_BYTES;
            Ok(())
        }
    }

    #[test]
    fn the_golden_block_is_estimated_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        super::super::tests::copy_block("golden-block", &tmp.path().join("b"));
        let opened = super::super::open(&tmp.path().join("b")).unwrap();
        let opts = ReadOptions::default();
        let est = estimate(&opened.blocks, &opts, 7_200_000).unwrap();
        let mut sink = Counting::default();
        super::super::read_blocks(
            &opened.blocks,
            &opts,
            &mut sink,
            &indicatif::ProgressBar::hidden(),
            None,
        )
        .unwrap();
        assert_eq!(est.samples(), sink.samples);
        assert_eq!(est.text_bytes(), sink.text_bytes);
        assert_eq!(est.block_series, 3);
    }
}
