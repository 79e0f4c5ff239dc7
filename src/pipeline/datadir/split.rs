//! A data dir read in passes by time: the blocks' data in passes of whole output windows up to the
//! window from which the head may have samples, so the sink's writers work while the head is
//! replayed and the shards open at once stay few.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::merge::{Pass, Reader, Seen};
use super::{bound, hold_head, late_blocks, read_blocks, read_head, Block, DirStats, ReadOptions};
use crate::labels::Labels;
use crate::pipeline::feed::SampleSink;

/// Whether reading `blocks` in passes by time writes the same shards and stats as one pass: no
/// label edits (the head would not be held), no --skip-invalid (damage would be met twice), and
/// no blocks overlapping in time (their merge picks among equal timestamps by what came before).
pub(super) fn passes_allowed(blocks: &[Block], opts: &ReadOptions) -> bool {
    if !opts.filter.edits.is_empty() || opts.skip_invalid {
        return false;
    }
    let mut end = i64::MIN;
    for b in blocks {
        if b.meta.min_time < end {
            return false;
        }
        end = end.max(b.meta.max_time);
    }
    true
}

/// The start of the output window from which the head may have samples, when blocks hold data
/// before it and [`passes_allowed`].
pub(super) fn split_time(
    head: &Path,
    blocks: &[Block],
    opts: &ReadOptions,
    sink: &impl SampleSink,
) -> Option<i64> {
    if !passes_allowed(blocks, opts) {
        return None;
    }
    let start = opts.filter.start.unwrap_or(i64::MIN);
    let w = sink.pass_start(bound::head_lower_bound(head, blocks)?.max(start));
    let first = blocks
        .iter()
        .any(|b| b.meta.min_time < w && start < b.meta.max_time);
    (start < w && first).then_some(w)
}

/// Reads in passes split at window start `w`, below which the head has no sample: the blocks'
/// data before `w` (its windows complete, the sink's writers start on them), then the head
/// replayed and held while they write, then the blocks' data from `w` on with the held head, as
/// [`super::read_dir`] does. A block the head lost data to meanwhile (compaction) may reach back before
/// `w`: that share is read last, into windows the sink then sorts. Series are counted once, and
/// each chunk and sample by one pass, so the stats are those of one pass.
pub(super) fn read_split(
    blocks: Vec<Block>,
    head: &Path,
    w: i64,
    opts: &ReadOptions,
    sink: &mut impl SampleSink,
    pb: &indicatif::ProgressBar,
) -> Result<DirStats> {
    let (mut stats, seen) = read_passes(&blocks, w, false, opts, sink, pb)?;
    sink.begin_pass(w)?;
    let Some((head_stats, mut hold)) = hold_head(head, &blocks, opts, sink)? else {
        let after = Reader {
            blocks: &blocks,
            opts,
            pass: Pass::from(w, true),
            only: None,
        };
        stats.add(&after.read(sink, pb, None, Seen::new(seen, false))?.0);
        stats.add(&read_head(head, &blocks, opts, sink)?);
        let late = late_blocks(head, &blocks)?;
        if !late.is_empty() {
            stats.add(&read_blocks(&late, opts, sink, pb, None)?);
        }
        return Ok(stats);
    };
    let known: Vec<PathBuf> = blocks.iter().map(|b| b.dir.clone()).collect();
    let late = late_blocks(head, &blocks)?;
    let early_late = late.iter().any(|b| b.meta.min_time < w);
    let mut all = blocks;
    all.extend(late);
    all.sort_by_key(|b| b.meta.min_time);
    let after = Reader {
        blocks: &all,
        opts,
        pass: Pass::from(w, true),
        only: None,
    };
    let (st, seen) = after.read(sink, pb, Some(&mut hold), Seen::new(seen, early_late))?;
    stats.add(&st);
    if early_late {
        let is_late: Vec<bool> = all.iter().map(|b| !known.contains(&b.dir)).collect();
        let late_before = Reader {
            pass: Pass::before(w),
            only: Some(&is_late),
            ..after
        };
        stats.add(&late_before.read(sink, pb, None, Seen::new(seen, false))?.0);
    }
    stats.add(&head_stats);
    Ok(stats)
}

/// Reads the blocks' data before `until` in passes of whole output windows, each as long as
/// the sink's [`SampleSink::pass_end`] allows, so that the shards a pass opens are finished while
/// the next is read: the open shards stay bounded whatever the data dir's length. Every pass but
/// the last ends with [`SampleSink::begin_pass`]. The first counts the blocks when `count_blocks`.
/// Returns the stats and the series read, in label order. Requires [`passes_allowed`].
pub(super) fn read_passes(
    blocks: &[Block],
    until: i64,
    count_blocks: bool,
    opts: &ReadOptions,
    sink: &mut impl SampleSink,
    pb: &indicatif::ProgressBar,
) -> Result<(DirStats, Vec<Labels>)> {
    let ends = pass_ends(blocks, until, opts, sink);
    let (mut lo, mut stats, mut seen) = (i64::MIN, DirStats::default(), Vec::new());
    for (i, &end) in ends.iter().enumerate() {
        if ends.len() > 1 {
            pb.set_message(format!("reading blocks (pass {} of {})", i + 1, ends.len()));
        }
        let pass = Pass {
            lo,
            hi: end.saturating_sub(1),
            count_blocks: count_blocks && lo == i64::MIN,
        };
        let reader = Reader {
            blocks,
            opts,
            pass,
            only: None,
        };
        let (st, union) = reader.read(sink, pb, None, Seen::new(seen, true))?;
        stats.add(&st);
        seen = union;
        if end == until {
            break;
        }
        // The blocks this pass finished are not read again: their index pages can go.
        for b in blocks {
            if b.meta.max_time <= end {
                b.release_index();
            } else {
                // Read again from the front by the next pass: release its chunks afresh.
                b.restart_release();
            }
        }
        sink.begin_pass(end)?;
        lo = end;
    }
    Ok((stats, seen))
}

/// Where each pass of [`read_passes`] ends: the last at `until`.
fn pass_ends(blocks: &[Block], until: i64, opts: &ReadOptions, sink: &impl SampleSink) -> Vec<i64> {
    let f = &opts.filter;
    let first = blocks.iter().map(|b| b.meta.min_time).min();
    let mut from = first.unwrap_or(until).max(f.start.unwrap_or(i64::MIN));
    // Past the blocks' data (and --end) a pass has nothing to read: the last one runs to `until`.
    let last = blocks.iter().map(|b| b.meta.max_time).max();
    let data_end = last
        .unwrap_or(until)
        .min(f.end.map_or(i64::MAX, |e| e.saturating_add(1)))
        .min(until);
    let mut ends = Vec::new();
    while from < data_end {
        let end = sink.pass_end(from, data_end).clamp(from + 1, data_end);
        if end >= data_end {
            break;
        }
        ends.push(end);
        from = end;
    }
    ends.push(until);
    ends
}

#[cfg(test)]
mod tests {
    use super::super::tests::{copy_block, golden_data_dir};
    use super::super::{open, read_dir, read_held};
    use super::*;

    /// How a test reads the data dir.
    #[derive(Clone, Copy)]
    enum How {
        /// As `convert` does.
        Auto,
        /// One pass, the head held.
        Held,
        /// In passes split at this time.
        Split(i64),
        /// The blocks in one pass, no head.
        Whole,
    }

    struct Run {
        files: Vec<(String, Vec<u8>)>,
        stats: DirStats,
        streamed: usize,
    }

    /// Reads `data` into a streaming sink of 10-minute windows: every file written, the stats.
    fn run(data: &Path, opts: &ReadOptions, how: How) -> Run {
        run_with(data, opts, how, 1 << 30, None)
    }

    /// As [`run`] with memory limit `limit`, and with a block (from testdata, with this ULID)
    /// written into `data` just after it was listed, as a compaction would.
    fn run_with(
        data: &Path,
        opts: &ReadOptions,
        how: How,
        limit: u64,
        late: Option<(&str, &str)>,
    ) -> Run {
        use crate::pipeline::sink::{RunInfo, Sink, SinkOptions};
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut sink = Sink::create(SinkOptions {
            memory_limit: limit,
            ..SinkOptions::test_dir(&out, false)
        })
        .unwrap();
        let opened = open(data).unwrap();
        if let Some((from, ulid)) = late {
            copy_block(from, &data.join(ulid));
        }
        let pb = indicatif::ProgressBar::hidden();
        let stats = match how {
            How::Auto => read_dir(opened, opts, &mut sink, &pb),
            How::Held => read_held(opened.blocks, data, opts, &mut sink, &pb),
            How::Split(w) => read_split(opened.blocks, data, w, opts, &mut sink, &pb),
            How::Whole => read_blocks(&opened.blocks, opts, &mut sink, &pb, None),
        }
        .unwrap();
        let summary = sink.finish(RunInfo::default()).unwrap();
        let files = crate::pipeline::files_in(&out);
        if let Some((_, ulid)) = late {
            std::fs::remove_dir_all(data.join(ulid)).unwrap();
        }
        Run {
            files,
            stats,
            streamed: summary.streamed_shards,
        }
    }

    fn split_at(data: &Path, opts: &ReadOptions) -> Option<i64> {
        use crate::pipeline::sink::{Sink, SinkOptions};
        let tmp = tempfile::tempdir().unwrap();
        let sink = Sink::create(SinkOptions {
            stream: false,
            ..SinkOptions::test_dir(&tmp.path().join("out"), false)
        })
        .unwrap();
        let opened = open(data).unwrap();
        let w = split_time(data, &opened.blocks, opts, &sink);
        sink.abandon();
        w
    }

    fn opts(start: Option<i64>, end: Option<i64>) -> ReadOptions {
        ReadOptions {
            filter: crate::select::filter::Filter {
                start,
                end,
                ..Default::default()
            },
            keep_stale: true,
            skip_invalid: false,
        }
    }

    #[test]
    fn passes_split_at_the_head_write_what_one_pass_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        golden_data_dir(&data);
        // The head starts at the block's end, 2274052: in the window from 1800000. The block
        // reaches into that window, so its chunks there are cut by time between the passes.
        for (start, end) in [
            (None, None),
            (Some(500_000), Some(2_000_000)),
            (Some(1_000_000), Some(2_500_000)),
        ] {
            let o = opts(start, end);
            assert_eq!(split_at(&data, &o), Some(1_800_000), "{start:?} {end:?}");
            let want = run(&data, &o, How::Held);
            let got = run(&data, &o, How::Auto);
            assert!(got.files == want.files, "{start:?} {end:?}: shards differ");
            assert_eq!(got.stats, want.stats, "{start:?} {end:?}");
            assert!(want.stats.samples_kept > 0);
            assert_eq!(got.streamed, want.streamed);
        }
        let all = run(&data, &opts(None, None), How::Auto);
        assert_eq!((all.files.len(), all.streamed), (25, 24));
        // Series are counted by the blocks and by the head, once each.
        assert_eq!((all.stats.blocks, all.stats.series), (1, 6));
    }

    #[test]
    fn a_pass_a_window_writes_what_one_pass_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        golden_data_dir(&data);
        // 16 MiB: room for 3 open shards, so each pass reads one 10-minute window: the blocks'
        // data comes in the three passes before the head's window, the block alone in four.
        let block = data.join("01M8MX6V563YAV666ATQ07V9E4");
        for (dir, start, end) in [
            (&data, None, None),
            (&data, Some(700_000), Some(2_500_000)),
            (&block, None, None),
            (&block, Some(100_000), Some(1_300_000)),
        ] {
            let o = opts(start, end);
            let want = run(dir, &o, How::Held);
            let got = run_with(dir, &o, How::Auto, 16 << 20, None);
            assert!(
                got.files == want.files,
                "{dir:?} {start:?} {end:?}: shards differ"
            );
            assert_eq!(got.stats, want.stats, "{dir:?} {start:?} {end:?}");
            assert!(want.stats.samples_kept > 0);
            if *dir == block {
                // Each pass's shard is finished before the next opens: all of them streamed,
                // where one pass streams three and sorts the rest. (The head's windows, read in
                // one pass with it held, are more than three.)
                assert_eq!(got.streamed, got.files.len() - 1, "{start:?} {end:?}");
                let whole = run_with(dir, &o, How::Whole, 16 << 20, None);
                assert!(whole.files == want.files);
                assert_eq!(whole.streamed.min(got.streamed), 3, "{start:?} {end:?}");
            }
        }
    }

    #[test]
    fn a_wrong_bound_costs_speed_not_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        golden_data_dir(&data);
        let o = opts(None, None);
        let want = run(&data, &o, How::Held);
        // Head samples from 2274052 come after the window from 1800000 was closed: it is
        // sorted, the others still streamed. A split lower than needed costs nothing.
        for (w, streamed) in [(2_400_000, 23), (1_200_000, 24), (600_000, 24)] {
            let got = run(&data, &o, How::Split(w));
            assert!(got.files == want.files, "split at {w}: shards differ");
            assert_eq!(got.stats, want.stats, "split at {w}");
            assert_eq!(got.streamed, streamed, "split at {w}");
        }
    }

    #[test]
    fn a_head_too_big_to_hold_after_the_first_pass_goes_after_the_blocks() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        golden_data_dir(&data);
        let o = opts(None, None);
        // 4 MiB: the hold may take 1 MiB, the head's 36000 samples take more.
        let want = run_with(&data, &o, How::Held, 4 << 20, None);
        let got = run_with(&data, &o, How::Split(1_800_000), 4 << 20, None);
        assert!(got.files == want.files);
        assert_eq!(got.stats, want.stats);
        assert_eq!(got.stats.samples_kept, 450 + 3 * 12_000 - 3 * 30);
    }

    #[test]
    fn a_block_written_meanwhile_is_read_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        golden_data_dir(&data);
        let o = opts(None, None);
        // A block from 0 to 7200000 appears after the listing: its share before the split is
        // read last, into windows then sorted.
        let late = Some(("index_format_v1", "01M8MX6V563YAV666ATQ07V9E7"));
        let want = run_with(&data, &o, How::Held, 1 << 30, late);
        let got = run_with(&data, &o, How::Split(1_800_000), 1 << 30, late);
        assert!(got.files == want.files);
        assert_eq!(got.stats, want.stats);
        assert_eq!(got.stats.blocks, 2);
        assert!(got.streamed < want.files.len() - 1, "{}", got.streamed);
    }

    #[test]
    fn no_split_where_passes_could_differ_or_gain_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        golden_data_dir(&data);
        let mut o = opts(None, None);
        o.filter.edits = crate::select::filter::LabelEdits::parse(&["s".into()], &[]).unwrap();
        assert_eq!(
            split_at(&data, &o),
            None,
            "label edits: the head is not held"
        );
        let want = run(&data, &o, How::Held);
        assert!(run(&data, &o, How::Auto).files == want.files);
        let mut o = opts(None, None);
        o.skip_invalid = true;
        assert_eq!(split_at(&data, &o), None, "damage would be met twice");
        // The window of the head's first sample holds all of the block's data.
        assert_eq!(split_at(&data, &opts(Some(2_000_000), None)), None);
        // Head only: nothing to read first.
        let head_only = tmp.path().join("head-only");
        golden_data_dir(&head_only);
        std::fs::remove_dir_all(head_only.join("01M8MX6V563YAV666ATQ07V9E4")).unwrap();
        assert_eq!(split_at(&head_only, &opts(None, None)), None);
        let r = run(&head_only, &opts(None, None), How::Auto);
        assert_eq!(r.stats.series, 3);
        // No head: the block alone.
        let block = data.join("01M8MX6V563YAV666ATQ07V9E4");
        let r = run(&block, &opts(None, None), How::Auto);
        assert_eq!((r.stats.blocks, r.stats.samples_kept), (1, 450));
        // Overlapping blocks: their merge depends on what came before a timestamp.
        copy_block("golden-block", &data.join("01M8MX6V563YAV666ATQ07V9E5"));
        assert_eq!(split_at(&data, &opts(None, None)), None);
    }
}
