//! Series of several blocks merged in label order (a k-way merge over each block's postings),
//! each series whole: its chunks inside the time range decoded in parallel batches, tombstones
//! applied, staleness markers told apart by their exact bits, then pushed to the sink.

use anyhow::Result;
use rayon::prelude::*;

use super::gomerge::{self, GoHeap};
use super::headhold::Hold;
use super::samples::{push_merged, Samples, Val};
use super::stats::{DirStats, ReadOptions};
use super::Block;
use crate::format::histogram::HistogramValue;
use crate::format::tsdb::chunkenc::{self, Value};
use crate::format::tsdb::chunks;
use crate::format::tsdb::index::{ChunkMeta, Index};
use crate::format::tsdb::tombstones::Tombstones;
use crate::labels::Labels;
use crate::pipeline::feed::{Provenance, SampleSink};
use crate::select::postings;

/// Chunks decoded per parallel batch (about a million samples).
const BATCH_CHUNKS: usize = 8192;

/// The share of the time range one read covers. A data dir may be read in passes split at a
/// time (see `datadir::read_dir`): each chunk and sample is then counted by exactly one pass.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pass {
    /// Timestamps this pass reads, inclusive; --start/--end apply within.
    pub lo: i64,
    pub hi: i64,
    /// This pass counts the blocks of the time range (one pass does).
    pub count_blocks: bool,
}

impl Pass {
    /// One pass over everything.
    pub const WHOLE: Pass = Pass {
        lo: i64::MIN,
        hi: i64::MAX,
        count_blocks: true,
    };

    /// The data before `t`, blocks not counted.
    pub fn before(t: i64) -> Pass {
        Pass {
            lo: i64::MIN,
            hi: t.saturating_sub(1),
            count_blocks: false,
        }
    }

    /// The data from `t` on.
    pub fn from(t: i64, count_blocks: bool) -> Pass {
        Pass {
            lo: t,
            hi: i64::MAX,
            count_blocks,
        }
    }

    fn holds(&self, t: i64) -> bool {
        self.lo <= t && t <= self.hi
    }
}

/// Series counted by earlier passes (label order), and the union with this pass when wanted:
/// the earlier ones move into it, so a read in many passes clones each series once per pass.
pub(super) struct Seen {
    earlier: std::iter::Peekable<std::vec::IntoIter<Labels>>,
    union: Option<Vec<Labels>>,
}

impl Seen {
    pub fn new(earlier: Vec<Labels>, union: bool) -> Seen {
        Seen {
            earlier: earlier.into_iter().peekable(),
            union: union.then(Vec::new),
        }
    }

    /// Whether series `labels` (coming in label order) is new to the passes so far.
    fn first(&mut self, labels: &Labels) -> bool {
        while let Some(e) = self.earlier.next_if(|e| e < labels) {
            if let Some(u) = &mut self.union {
                u.push(e);
            }
        }
        let seen = self.earlier.next_if(|e| e == labels).is_some();
        if let Some(u) = &mut self.union {
            u.push(labels.clone());
        }
        !seen
    }

    /// The series of this and the earlier passes, in label order (empty unless asked for).
    fn into_union(self) -> Vec<Labels> {
        match self.union {
            Some(mut u) => {
                u.extend(self.earlier);
                u
            }
            None => Vec::new(),
        }
    }
}

/// One block's share of a series: the series ref in its index and the chunk metas.
struct Part {
    block: usize,
    series_ref: u32,
    chunks: Vec<ChunkMeta>,
}

/// A series whole: its labels (unedited) and its parts, in Prometheus's merge order.
struct Work {
    labels: Labels,
    parts: Vec<Part>,
}

/// Walks one block's selected series in label order.
struct Cursor<'a> {
    block: usize,
    index: &'a Index<'a>,
    ids: Vec<u32>,
    pos: usize,
}

impl Cursor<'_> {
    /// The next series the selectors keep, or `None` at the end. A damaged series is an error,
    /// or skipped and counted under --skip-invalid.
    fn next(
        &mut self,
        blocks: &[Block],
        opts: &ReadOptions,
        pass: &Pass,
        stats: &mut DirStats,
    ) -> Result<Option<(Labels, Part)>> {
        while self.pos < self.ids.len() {
            let id = self.ids[self.pos];
            self.pos += 1;
            let mut chunks = Vec::new();
            let labels = match self.index.series(id, &mut chunks) {
                Ok(l) => l,
                Err(e) => {
                    let b = &blocks[self.block];
                    let msg = format!("block {}: index: {e} (series ref {id})", b.name());
                    if !opts.skip_invalid {
                        return Err(crate::bad_input!("{msg}")
                            .context("damaged block (use --skip-invalid to skip damaged series)"));
                    }
                    stats.invalid_skipped += 1;
                    stats.report(msg);
                    continue;
                }
            };
            if !opts.filter.keeps_series(&labels) {
                continue;
            }
            // As Prometheus's blockBaseSeriesSet: only chunks in range and not wholly deleted;
            // a series left without chunks is not part of the merge at all. A chunk skipped is
            // counted by the pass holding its start; one in range is read by each pass it
            // reaches into.
            let f = &opts.filter;
            let (start, end) = (f.start.unwrap_or(i64::MIN), f.end.unwrap_or(i64::MAX));
            let (lo, hi) = (start.max(pass.lo), end.min(pass.hi));
            let deleted = blocks[self.block].tombstones.intervals(id as u64);
            let mut skipped = 0;
            chunks.retain(|c| {
                if c.max_time < start
                    || c.min_time > end
                    || Tombstones::covers(deleted, c.min_time, c.max_time)
                {
                    skipped += u64::from(pass.holds(c.min_time));
                    return false;
                }
                !(c.max_time < lo || c.min_time > hi)
            });
            stats.chunks_skipped += skipped;
            if chunks.is_empty() {
                continue;
            }
            let part = Part {
                block: self.block,
                series_ref: id,
                chunks,
            };
            return Ok(Some((labels, part)));
        }
        Ok(None)
    }
}

/// Reads every selected series of `blocks` into the sink, in label order, each whole; the held
/// head's series join in that order.
pub fn read_blocks(
    blocks: &[Block],
    opts: &ReadOptions,
    sink: &mut impl SampleSink,
    progress: &indicatif::ProgressBar,
    head: Option<&mut Hold>,
) -> Result<DirStats> {
    let seen = Seen::new(Vec::new(), false);
    let r = Reader {
        blocks,
        opts,
        pass: Pass::WHOLE,
        only: None,
    };
    Ok(r.read(sink, progress, head, seen)?.0)
}

/// The blocks' series sets merged as Prometheus's genericMergeSeriesSet merges them, so that
/// blocks with the same series come out in the same order as there (see gomerge): each series
/// whole, with its part of every block that has it.
struct Merge<'a> {
    cursors: Vec<Cursor<'a>>,
    /// Each cursor's current series, while in the heap.
    current: Vec<Option<(Labels, Part)>>,
    heap: GoHeap<usize>,
    /// The cursors to move on before the next series.
    advance: Vec<usize>,
    /// Block series taken so far.
    done: u64,
}

impl<'a> Merge<'a> {
    fn new(cursors: Vec<Cursor<'a>>) -> Merge<'a> {
        Merge {
            current: (0..cursors.len()).map(|_| None).collect(),
            advance: (0..cursors.len()).collect(),
            cursors,
            heap: GoHeap::new(),
            done: 0,
        }
    }

    /// The next series in label order, or `None` at the end.
    fn next(&mut self, r: &Reader<'_>, stats: &mut DirStats) -> Result<Option<Work>> {
        let less = |a: &usize, b: &usize, cur: &[Option<(Labels, Part)>]| {
            let la = &cur[*a].as_ref().expect("in heap").0;
            let lb = &cur[*b].as_ref().expect("in heap").0;
            la < lb
        };
        let current = &mut self.current;
        for &b in &self.advance {
            current[b] = self.cursors[b].next(r.blocks, r.opts, &r.pass, stats)?;
            if current[b].is_some() {
                self.heap.push(b, &|x, y| less(x, y, current));
            }
        }
        self.advance.clear();
        let Some(&top) = self.heap.items.first() else {
            return Ok(None);
        };
        let labels = current[top].as_ref().expect("in heap").0.clone();
        let mut parts = Vec::new();
        while self
            .heap
            .items
            .first()
            .is_some_and(|&b| current[b].as_ref().is_some_and(|c| c.0 == labels))
        {
            let b = self
                .heap
                .pop(&|x, y| less(x, y, current))
                .expect("not empty");
            parts.push(current[b].take().expect("in heap").1);
            self.advance.push(b);
            self.done += 1;
        }
        Ok(Some(Work { labels, parts }))
    }
}

/// One pass over blocks.
#[derive(Clone, Copy)]
pub(super) struct Reader<'a> {
    pub blocks: &'a [Block],
    pub opts: &'a ReadOptions,
    pub pass: Pass,
    /// Set: only the blocks marked here are read.
    pub only: Option<&'a [bool]>,
}

impl Reader<'_> {
    /// Reads the pass's share of every selected series into the sink, in label order; the held
    /// head's series join in that order. Series in `seen` are not counted again; returns the
    /// stats and the union of `seen` with this pass's series when `seen` was asked for it.
    pub fn read(
        &self,
        sink: &mut impl SampleSink,
        progress: &indicatif::ProgressBar,
        mut head: Option<&mut Hold>,
        mut seen: Seen,
    ) -> Result<(DirStats, Vec<Labels>)> {
        let mut stats = DirStats::default();
        let indexes = self.indexes(&mut stats)?;
        let cursors = self.cursors(&indexes)?;
        let total: u64 = cursors.iter().map(|c| c.ids.len() as u64).sum();
        progress.set_length(total);
        let mut merge = Merge::new(cursors);
        let mut batch: Vec<Work> = Vec::new();
        let mut batch_chunks = 0;
        while let Some(work) = merge.next(self, &mut stats)? {
            batch_chunks += work.parts.iter().map(|p| p.chunks.len()).sum::<usize>();
            batch.push(work);
            if batch_chunks >= BATCH_CHUNKS {
                self.flush(&mut batch, sink, &mut stats, &mut seen, head.as_deref_mut())?;
                batch_chunks = 0;
                progress.set_position(merge.done);
            }
        }
        self.flush(&mut batch, sink, &mut stats, &mut seen, head.as_deref_mut())?;
        if let Some(h) = head {
            h.finish(sink)?;
        }
        Ok((stats, seen.into_union()))
    }

    /// The index of each block this pass reads (`None` for the others); counts the blocks of
    /// the time range when the pass does. Blocks outside the time range take no part, as in
    /// Prometheus's querier.
    fn indexes(&self, stats: &mut DirStats) -> Result<Vec<Option<Index<'_>>>> {
        let (blocks, opts, pass) = (self.blocks, self.opts, &self.pass);
        let (start, end) = (
            opts.filter.start.unwrap_or(i64::MIN),
            opts.filter.end.unwrap_or(i64::MAX),
        );
        let (lo, hi) = (start.max(pass.lo), end.min(pass.hi));
        let in_range = |b: &Block, lo: i64, hi: i64| b.meta.min_time <= hi && lo < b.meta.max_time;
        if pass.count_blocks {
            stats.blocks = blocks.iter().filter(|b| in_range(b, start, end)).count() as u64;
        }
        blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let wanted = self.only.is_none_or(|o| o[i]) && in_range(b, lo, hi);
                wanted.then(|| b.index()).transpose()
            })
            .collect()
    }

    /// A cursor over the selected series of each index.
    fn cursors<'i>(&self, indexes: &'i [Option<Index<'i>>]) -> Result<Vec<Cursor<'i>>> {
        let (blocks, opts) = (self.blocks, self.opts);
        let mut cursors = Vec::with_capacity(blocks.len());
        for (i, ix) in indexes.iter().enumerate() {
            let Some(ix) = ix else { continue };
            let ids = postings::for_selectors(ix, &opts.filter.selectors)
                .map_err(|e| crate::bad_input!("block {}: index: {e}", blocks[i].name()))?;
            cursors.push(Cursor {
                block: i,
                index: ix,
                ids,
                pos: 0,
            });
        }
        Ok(cursors)
    }

    fn flush(
        &self,
        batch: &mut Vec<Work>,
        sink: &mut impl SampleSink,
        stats: &mut DirStats,
        seen: &mut Seen,
        mut head: Option<&mut Hold>,
    ) -> Result<()> {
        let decoded: Vec<DecodedSeries> =
            batch.par_iter().map(|w| decode_series(w, self)).collect();
        self.release(batch);
        for (w, d) in batch.drain(..).zip(decoded) {
            if let Some(e) = d.error {
                return Err(crate::bad_input!("{e}")
                    .context("damaged block (use --skip-invalid to skip damaged chunks)"));
            }
            stats.add(&d.stats);
            stats.series += u64::from(seen.first(&w.labels));
            let held = match head.as_deref_mut() {
                Some(h) => h.advance(&w.labels, sink)?,
                None => Samples::default(),
            };
            if d.samples.is_empty() && held.is_empty() {
                continue;
            }
            let mut labels = w.labels;
            self.opts.filter.edits.apply(&mut labels);
            let id = sink.series(labels, Provenance::EXACT)?;
            push_merged(sink, id, &d.samples, &held)?;
        }
        Ok(())
    }
}

impl Reader<'_> {
    /// Releases each block's chunk pages before the last chunk `batch` decoded there: the
    /// blocks' resident pages stay bounded by a batch, not the blocks' size.
    fn release(&self, batch: &[Work]) {
        let mut upto = vec![0u64; self.blocks.len()];
        for p in batch.iter().flat_map(|w| &w.parts) {
            if let Some(c) = p.chunks.last() {
                upto[p.block] = upto[p.block].max(c.chunk_ref);
            }
        }
        for (b, &r) in self.blocks.iter().zip(&upto) {
            if r > 0 {
                b.release_chunks_before(r);
            }
        }
    }
}

/// A series' samples, decoded, with what was dropped or skipped on the way.
#[derive(Default)]
struct DecodedSeries {
    samples: Samples,
    stats: DirStats,
    error: Option<String>,
}

/// A series' samples part by part (one part per block) while its chunks are decoded: floats
/// alone until a histogram chunk comes, then every part mixed.
#[derive(Default)]
struct Parts {
    done: Vec<Samples>,
    cur: Samples,
}

impl Parts {
    fn mixed(&self) -> bool {
        matches!(self.cur, Samples::Mixed { .. })
    }

    /// Makes every part mixed: a histogram chunk was found.
    fn make_mixed(&mut self) {
        for p in self.done.iter_mut().chain([&mut self.cur]) {
            p.mixed();
        }
    }

    fn end_part(&mut self) {
        let next = if self.mixed() {
            let mut m = Samples::default();
            m.mixed();
            m
        } else {
            Samples::default()
        };
        self.done.push(std::mem::replace(&mut self.cur, next));
    }

    /// The parts merged as Prometheus's querier merges blocks.
    fn chain(self) -> Samples {
        if !self.mixed() {
            let floats: Vec<Vec<(i64, u64)>> = (self.done.into_iter())
                .map(|p| match p {
                    Samples::Floats(v) => v,
                    Samples::Mixed { .. } => unreachable!("all parts are alike"),
                })
                .collect();
            return Samples::Floats(gomerge::chain(&floats));
        }
        // Histogram indices are made global to the series.
        let mut hists = Vec::new();
        let mut inputs: Vec<Vec<(i64, Val)>> = Vec::with_capacity(self.done.len());
        for p in self.done {
            let Samples::Mixed { samples, hists: h } = p else {
                unreachable!("all parts are alike")
            };
            let base = hists.len() as u32;
            inputs.push(
                (samples.into_iter())
                    .map(|(t, v)| match v {
                        Val::Hist(k) => (t, Val::Hist(base + k)),
                        f => (t, f),
                    })
                    .collect(),
            );
            hists.extend(h);
        }
        Samples::Mixed {
            samples: gomerge::chain(&inputs),
            hists,
        }
    }
}

fn decode_series(w: &Work, r: &Reader<'_>) -> DecodedSeries {
    let (blocks, opts) = (r.blocks, r.opts);
    let start = opts.filter.start.unwrap_or(i64::MIN);
    let mut out = DecodedSeries::default();
    let mut parts = Parts::default();
    for part in &w.parts {
        let block = &blocks[part.block];
        let deleted = block.tombstones.intervals(part.series_ref as u64);
        for c in &part.chunks {
            let before = parts.cur.len();
            // The chunk is counted by the pass holding its first sample in range.
            let owner = r.pass.holds(c.min_time.max(start));
            let res = decode_chunk(
                block,
                c,
                deleted,
                (opts, &r.pass, owner),
                &mut parts,
                &mut out,
            );
            if let Err(msg) = res {
                parts.cur.truncate(before);
                let msg = format!("block {}: {msg} (series {})", block.name(), w.labels);
                if !opts.skip_invalid {
                    out.error = Some(msg);
                    return out;
                }
                if owner {
                    out.stats.invalid_skipped += 1;
                    out.stats.report(msg);
                }
            }
        }
        parts.end_part();
    }
    // Overlapping blocks: one value per timestamp, the one Prometheus would return.
    out.samples = keep(parts.chain(), opts.keep_stale, &mut out.stats);
    out
}

/// The merged samples less the staleness markers dropped, counted.
fn keep(merged: Samples, keep_stale: bool, st: &mut DirStats) -> Samples {
    match merged {
        Samples::Floats(mut merged) => {
            merged.retain(|&(_, v)| st.float(v, keep_stale));
            Samples::Floats(merged)
        }
        Samples::Mixed { mut samples, hists } => {
            samples.retain(|&(_, v)| match v {
                Val::Float(v) => st.float(v, keep_stale),
                Val::Hist(k) => st.histogram(&hists[k as usize], keep_stale),
            });
            Samples::Mixed { samples, hists }
        }
    }
}

/// Decodes one chunk into the series' current part, the samples of `pass`, counted in `out`'s
/// stats when `owner`; Err is the message for a damaged chunk.
fn decode_chunk(
    block: &Block,
    c: &ChunkMeta,
    deleted: &[(i64, i64)],
    (opts, pass, owner): (&ReadOptions, &Pass, bool),
    parts: &mut Parts,
    out: &mut DecodedSeries,
) -> std::result::Result<(), String> {
    let (seg, off) = chunks::unpack_ref(c.chunk_ref);
    let file = format!("chunks/{:06}", seg + 1);
    let Some(bytes) = block.segments.get(seg) else {
        return Err(format!(
            "{file}: chunk segment missing (the block has {} segment files), chunk ref {:#x}",
            block.segments.len(),
            c.chunk_ref
        ));
    };
    let chunk = chunks::chunk_at(bytes, off).map_err(|e| format!("{file}: {e}"))?;
    out.stats.chunks_read += u64::from(owner);
    let f = &opts.filter;
    let (start, end) = (f.start.unwrap_or(i64::MIN), f.end.unwrap_or(i64::MAX));
    let st = &mut out.stats;
    let float = matches!(chunk.encoding, chunkenc::ENC_XOR | chunkenc::ENC_XOR2);
    if !float && !parts.mixed() {
        parts.make_mixed();
    }
    // Whether a sample of the chunk is kept (and counts what is not).
    let mut wanted = |t: i64| {
        if t < start || t > end {
            st.dropped_by_time += u64::from(owner);
            false
        } else if pass.holds(t) {
            let gone = !deleted.is_empty() && Tombstones::deleted(deleted, t);
            st.deleted += u64::from(gone);
            !gone
        } else {
            false
        }
    };
    let res = match &mut parts.cur {
        // The float path: no histogram in the series so far.
        Samples::Floats(samples) => chunkenc::decode(chunk.encoding, chunk.data, |t, v| {
            if wanted(t) {
                samples.push((t, v));
            }
        })
        .map(|_| ()),
        cur => chunkenc::decode_samples(chunk.encoding, chunk.data, |_, t, v| {
            if wanted(t) {
                match v {
                    Value::Float(b) => cur.float(t, b),
                    Value::Histogram(h) => cur.histogram(t, HistogramValue::Int(h.clone())),
                    Value::FloatHistogram(h) => cur.histogram(t, HistogramValue::Float(h.clone())),
                }
            }
        })
        .map(|_| ()),
    };
    res.map_err(|e| {
        format!(
            "{file}: chunk at byte {off}: {} ({})",
            e.what,
            chunkenc::encoding_name(chunk.encoding)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::histogram::Histogram;

    fn h(count: u64) -> HistogramValue {
        HistogramValue::Int(Histogram {
            count,
            ..Default::default()
        })
    }

    #[test]
    fn a_histogram_chunk_turns_every_part_mixed_and_the_chain_picks_as_for_floats() {
        // Block 0: floats at 1, 2, 3; block 1: histograms at 2, 4 (a series that changed type
        // in an overlapping block).
        let mut p = Parts::default();
        for (t, v) in [(1, 10), (2, 20), (3, 30)] {
            p.cur.float(t, v);
        }
        p.end_part();
        assert!(!p.mixed());
        p.make_mixed();
        p.cur.histogram(2, h(2));
        p.cur.histogram(4, h(4));
        p.end_part();
        let Samples::Mixed { samples, hists } = p.chain() else {
            panic!("mixed")
        };
        // Go's heap hands the tie at 2 to the input that was not current: block 1's histogram.
        let got: Vec<String> = samples
            .iter()
            .map(|&(t, v)| match v {
                Val::Float(b) => format!("{t}:f{b}"),
                Val::Hist(k) => format!("{t}:{:?}", hists[k as usize].is_stale()),
            })
            .collect();
        assert_eq!(got, ["1:f10", "2:false", "3:f30", "4:false"]);
        let counts: Vec<u64> = samples
            .iter()
            .filter_map(|&(_, v)| match v {
                Val::Hist(k) => match &hists[k as usize] {
                    HistogramValue::Int(h) => Some(h.count),
                    HistogramValue::Float(_) => None,
                },
                Val::Float(_) => None,
            })
            .collect();
        assert_eq!(counts, [2, 4]);
        // Floats alone stay on the float path.
        let mut p = Parts::default();
        p.cur.float(1, 1);
        p.end_part();
        assert_eq!(p.chain(), Samples::Floats(vec![(1, 1)]));
    }

    #[test]
    fn markers_are_counted_apart_and_dropped_unless_kept() {
        let mut s = Samples::default();
        s.float(1, STALE);
        s.float(2, 5);
        s.histogram(3, HistogramValue::Int(Histogram::stale()));
        s.histogram(4, h(1));
        let mut st = DirStats::default();
        let kept = keep(s.clone(), false, &mut st);
        assert_eq!(kept.len(), 2);
        assert_eq!(
            (
                st.stale_dropped,
                st.histogram_stale_dropped,
                st.samples_kept,
                st.histograms_kept
            ),
            (1, 1, 1, 1)
        );
        let mut st = DirStats::default();
        assert_eq!(keep(s, true, &mut st).len(), 4);
        assert_eq!((st.stale_kept, st.histogram_stale_kept), (1, 1));
        assert_eq!(st.histogram_samples(), 1);
    }

    const STALE: u64 = crate::format::value::STALE_NAN_BITS;
}
