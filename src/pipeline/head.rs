//! Replays the head of a Prometheus data directory (chunks_head, the newest checkpoint, the WAL
//! after it, the out-of-order wbl) into float and native histogram samples, as `OpenDBReadOnly`
//! + `tsdb dump` (2.42; 3.5 for what only Prometheus 3 writes: histograms out of order).
//!
//! Two passes over the log: the first learns every series record and tombstone, so that the
//! second can apply 2.42's replay rules while streaming samples, holding no samples in memory:
//! - a series whose labels come again under another ref (gc'd and re-created) is reset: what was
//!   replayed for it before its last series record is dropped, and its m-mapped chunks are those
//!   of the last ref;
//! - WAL samples older than `min_valid_time` are dropped, so are samples at or before the last
//!   m-mapped chunk of the series or the last accepted sample (in order only; floats and
//!   histograms alike: one series has one in-order time line whatever the kind);
//! - tombstones apply to in-order data (m-mapped chunks and WAL) of the ref they name when that is
//!   the series' first ref; out-of-order data ignores them (2.42 queries OOO without tombstones);
//! - out-of-order samples and histograms from the wbl go through the out-of-order head chunk (32
//!   samples, duplicates rejected, emptied by an m-map marker of a chunk present in
//!   chunks_head), `ooo`.

mod batch;
mod files;
mod ooo;

use crate::bad_input;
use crate::format::histogram::HistogramValue;
use crate::format::tsdb::chunkenc::Value;
use crate::format::tsdb::head_chunks::{self, HeadChunk, HeadChunks};
use crate::format::tsdb::record::{self, RecordType};
use crate::format::tsdb::{self, wal, xor};
use crate::labels::Labels;
use anyhow::{Context, Result};
use files::{HeadFiles, Mapped};
use rustc_hash::FxHashMap;
use std::path::Path;

pub struct HeadOptions {
    /// The newest block's maxTime; `i64::MIN` when the directory has no block. As 2.42's
    /// `OpenDBReadOnly`: the maxTime of the last block in minTime order.
    pub min_valid_time: i64,
    pub mint: i64,
    pub maxt: i64,
    pub skip_invalid: bool,
}

pub trait HeadVisitor {
    /// A series the head holds. Some(id): its samples are wanted and come as `sample(id, ..)`.
    fn series(&mut self, labels: &Labels) -> Result<Option<u32>>;
    /// Asked once per series before any sample is read: false when [`HeadVisitor::series`]
    /// would refuse it, so that its chunks and samples are not decoded at all.
    fn wants(&mut self, _labels: &Labels) -> bool {
        true
    }
    /// One float sample, raw value bits (staleness markers included), any order, maybe repeated.
    fn sample(&mut self, id: u32, ts: i64, bits: u64) -> Result<()>;
    /// One native histogram sample (staleness markers included), as [`HeadVisitor::sample`].
    fn histogram(&mut self, id: u32, ts: i64, h: &HistogramValue) -> Result<()>;
}

#[derive(Default, Debug, Clone)]
pub struct HeadStats {
    /// Series with samples in [mint, maxt] offered to the visitor.
    pub series: u64,
    /// Float samples passed to the visitor.
    pub samples: u64,
    /// Native histogram samples passed to the visitor.
    pub histograms: u64,
    /// Damaged records and chunks skipped (`skip_invalid`).
    pub skipped_invalid: u64,
    /// One short line per skipped damage (the first [`MAX_REPORTED`]).
    pub reported: Vec<String>,
    /// Logs (WAL, wbl) whose newest segment ends inside a record, as a crash leaves them: that
    /// record is not read, as Prometheus's repair drops it at its next start (`wlog.Repair`).
    /// One line each: the segment, where the record starts, how much of it was written.
    pub torn: Vec<String>,
}

/// At most this many damage lines are kept in [`HeadStats::reported`].
pub const MAX_REPORTED: usize = 100;
/// Prometheus' out-of-order head chunk capacity (`DefaultOutOfOrderCapMax`).
const OOO_CAP: usize = 32;

/// Replays the head of the data directory `dir` into `v`.
pub fn read_head(dir: &Path, opts: &HeadOptions, v: &mut dyn HeadVisitor) -> Result<HeadStats> {
    let files =
        files::open(dir).with_context(|| format!("reading the head of {}", dir.display()))?;
    let mut r = Replay::new(opts, v);
    r.run(&files)
        .with_context(|| format!("reading the head of {}", dir.display()))?;
    // Unmapping the files takes a while (page tables): not on the way of the caller.
    std::thread::spawn(move || drop(files));
    Ok(r.stats)
}

/// Head series labels and time range without exporting samples, for `inspect`: the series with
/// data and the [min, max] timestamp the head would give `read_head` (the same replay, so exact).
pub fn head_series(
    dir: &Path,
    opts: &HeadOptions,
    f: &mut dyn FnMut(&Labels),
) -> Result<Option<(i64, i64)>> {
    struct Range<'f> {
        f: &'f mut dyn FnMut(&Labels),
        range: Option<(i64, i64)>,
    }
    impl HeadVisitor for Range<'_> {
        fn series(&mut self, labels: &Labels) -> Result<Option<u32>> {
            (self.f)(labels);
            Ok(Some(0))
        }
        fn sample(&mut self, _: u32, ts: i64, _: u64) -> Result<()> {
            let (a, b) = self.range.unwrap_or((ts, ts));
            self.range = Some((a.min(ts), b.max(ts)));
            Ok(())
        }
        fn histogram(&mut self, id: u32, ts: i64, _: &HistogramValue) -> Result<()> {
            self.sample(id, ts, 0)
        }
    }
    let mut v = Range { f, range: None };
    read_head(dir, opts, &mut v)?;
    Ok(v.range)
}

enum Visit {
    Unasked,
    Wanted(u32),
    Unwanted,
}

/// Replay state of one series (one label set).
struct Series {
    /// The ref of its first series record: the one tombstones must name.
    first_ref: u64,
    /// The ref of its last series record: the one whose m-mapped chunks count.
    last_ref: u64,
    /// Position of its last series record: samples logged before it are dropped.
    last_seq: u64,
    /// Newest accepted in-order timestamp (m-mapped chunks included).
    last_t: i64,
    tombstones: Vec<(i64, i64)>,
    visit: Visit,
    /// The visitor does not want it: its samples are not decoded.
    skip: bool,
    /// The out-of-order head chunk: sorted, at most [`OOO_CAP`].
    ooo: Vec<(i64, ooo::OooVal)>,
}

impl Series {
    fn deleted(&self, t: i64) -> bool {
        self.tombstones.iter().any(|&(a, b)| a <= t && t <= b)
    }
}

struct Replay<'o> {
    opts: &'o HeadOptions,
    v: &'o mut dyn HeadVisitor,
    stats: HeadStats,
    labels: Vec<Labels>,
    series: Vec<Series>,
    by_labels: FxHashMap<Labels, u32>,
    /// Every ref seen in a series record: (series index, position of that record).
    refs: FxHashMap<u64, (u32, u64)>,
    /// `refs` as a table indexed by ref, built after the first pass when refs are dense.
    dense: DenseRefs,
    /// The last chunk in chunks_head: WBL m-map markers past it are ignored.
    last_chunk_ref: u64,
}

/// The ref map as a vector indexed by ref, when refs are dense enough (Prometheus numbers series
/// from 1 up): the WAL's samples look their ref up without hashing.
#[derive(Default)]
struct DenseRefs(Vec<(u32, u64)>);

/// Whether refs are dense enough for tables indexed by ref: the largest ref, if so.
fn dense_max(refs: &FxHashMap<u64, (u32, u64)>) -> Option<u64> {
    let max = refs.keys().copied().max().unwrap_or(0);
    (max <= 2 * refs.len() as u64 + (1 << 16)).then_some(max)
}

impl DenseRefs {
    const ABSENT: u32 = u32::MAX;

    fn new(refs: &FxHashMap<u64, (u32, u64)>) -> DenseRefs {
        let Some(max) = dense_max(refs) else {
            return DenseRefs::default();
        };
        let mut v = vec![(Self::ABSENT, 0); max as usize + 1];
        for (&r, &e) in refs {
            v[r as usize] = e;
        }
        DenseRefs(v)
    }

    /// The entry of `r`: from the table when built, else from `refs`.
    #[inline]
    fn get(&self, refs: &FxHashMap<u64, (u32, u64)>, r: u64) -> Option<(u32, u64)> {
        if self.0.is_empty() {
            return refs.get(&r).copied();
        }
        match self.0.get(r as usize) {
            Some(&(idx, seq)) if idx != Self::ABSENT => Some((idx, seq)),
            _ => None,
        }
    }
}

/// A stream of segments read in order (the checkpoint's, the WAL's), and whether it is live:
/// may end in a record being written.
type Stream<'f> = (&'f [Mapped], bool);

/// What a walk over the log does with each record.
#[derive(Clone, Copy)]
enum Pass {
    /// Series records and tombstones.
    Index,
    /// Out-of-order samples, histograms and m-map markers.
    Wbl,
}

impl Pass {
    /// Whether records of type `t` matter to this pass. Unknown types go to the passes that
    /// report them (the first over the WAL, and the wbl's).
    fn wants(self, t: u8) -> bool {
        let known = (1..=13).contains(&t);
        match self {
            Pass::Index => matches!(t, 1 | 3) || !known,
            Pass::Wbl => matches!(t, 2 | 5 | 7..=13) || !known,
        }
    }
}

/// Where a record came from, for messages.
#[derive(Clone, Copy)]
struct Loc<'a> {
    file: &'a str,
    offset: usize,
}

impl<'o> Replay<'o> {
    fn new(opts: &'o HeadOptions, v: &'o mut dyn HeadVisitor) -> Replay<'o> {
        Replay {
            opts,
            v,
            stats: HeadStats::default(),
            labels: Vec::new(),
            series: Vec::new(),
            by_labels: FxHashMap::default(),
            refs: FxHashMap::default(),
            dense: DenseRefs::default(),
            last_chunk_ref: 0,
        }
    }

    fn run(&mut self, files: &HeadFiles) -> Result<()> {
        let streams = [(&files.checkpoint[..], false), (&files.wal[..], true)];
        let notes = self.index_pass(files, streams)?;
        self.by_labels = FxHashMap::default();
        for (s, labels) in self.series.iter_mut().zip(&self.labels) {
            s.skip = !self.v.wants(labels);
        }
        self.dense = DenseRefs::new(&self.refs);
        self.samples_pass(files, streams, &notes)?;
        self.walk(&files.wbl, true, 0, Pass::Wbl, None, None)?;
        for i in 0..self.series.len() {
            self.flush_ooo(i)?;
        }
        Ok(())
    }

    /// First pass over the checkpoint and the WAL: series records and tombstones; returns the
    /// records the second pass reads, per stream.
    fn index_pass(
        &mut self,
        files: &HeadFiles,
        streams: [Stream<'_>; 2],
    ) -> Result<[batch::Notes; 2]> {
        let mut notes = [batch::Notes::default(), batch::Notes::default()];
        let wal_bytes: Vec<&[u8]> = files.wal.iter().map(Mapped::bytes).collect();
        let checks = wal::PageChecks::new(&wal_bytes);
        std::thread::scope(|s| {
            // A second thread checks the WAL's CRCs from its end while the first pass reads it
            // from its start, then maps the chunk files' pages for the chunk walk.
            s.spawn(|| {
                checks.check_backwards(&wal_bytes);
                files.populate_chunks();
            });
            let mut seq = 0;
            let mut pass1 = || {
                for ((segs, live), notes) in streams.into_iter().zip(&mut notes) {
                    let checks = live.then_some(&checks);
                    seq = self.walk(segs, live, seq, Pass::Index, checks, Some(notes))?;
                }
                anyhow::Ok(())
            };
            let res = pass1();
            checks.stop();
            res
        })?;
        Ok(notes)
    }

    /// Second pass: the m-mapped chunks, then the noted WAL samples in log order.
    fn samples_pass(
        &mut self,
        files: &HeadFiles,
        streams: [Stream<'_>; 2],
        notes: &[batch::Notes; 2],
    ) -> Result<()> {
        let wanted = batch::Wanted::new(&self.refs, |idx| !self.series[idx as usize].skip);
        let accept = batch::Accept {
            min_valid_time: self.opts.min_valid_time,
            wanted: &wanted,
        };
        std::thread::scope(|s| {
            // The second pass's records are decoded (on the rayon pool) while this thread
            // walks chunks_head, and a batch while this thread replays the one before.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let accept = &accept;
            s.spawn(move || {
                for ((segs, _), notes) in streams.into_iter().zip(notes) {
                    let bytes: Vec<&[u8]> = segs.iter().map(Mapped::bytes).collect();
                    for b in notes.batches() {
                        if tx.send((segs, b, notes.decode(&bytes, b, accept))).is_err() {
                            return; // the replay failed
                        }
                    }
                }
            });
            self.chunks(&files.chunks)?;
            for (segs, b, decoded) in rx {
                self.replay_batch(segs, b, decoded)?;
            }
            anyhow::Ok(())
        })
    }

    /// Damage: an error, or with `skip_invalid` a count and a line in the report.
    fn damage(&mut self, msg: String) -> Result<()> {
        if !self.opts.skip_invalid {
            return Err(bad_input!("{msg}"));
        }
        self.stats.skipped_invalid += 1;
        if self.stats.reported.len() < MAX_REPORTED {
            self.stats.reported.push(msg);
        }
        Ok(())
    }

    /// Reads the records of `segs` (one stream) through `pass`, numbering them from `seq`,
    /// trusting the pages `checks` found sound; `notes` gets those the second pass reads (WAL
    /// samples and histograms).
    fn walk(
        &mut self,
        segs: &[Mapped],
        live: bool,
        mut seq: u64,
        pass: Pass,
        checks: Option<&wal::PageChecks>,
        mut notes: Option<&mut batch::Notes>,
    ) -> Result<u64> {
        let mut rd = wal::Records::new(segs.iter().map(Mapped::bytes).collect(), live);
        if let Some(c) = checks {
            rd = rd.with_checks(c);
        }
        while let Some(res) = rd.next_raw() {
            let raw = match res {
                Ok(raw) => raw,
                Err(e) => {
                    let file = &segs[e.segment].rel;
                    self.damage(e.in_file(file).to_string())?;
                    continue;
                }
            };
            seq += 1;
            let loc = Loc {
                file: &segs[raw.segment].rel,
                offset: raw.offset,
            };
            // Skip records of other types without decompressing them when possible.
            let hint = raw.type_hint();
            if let Some(notes) = notes.as_deref_mut() {
                if hint.is_none_or(batch::wanted_type) {
                    notes.push(seq, hint, &raw);
                }
            }
            if hint.is_some_and(|t| !pass.wants(t)) {
                continue;
            }
            let data = match raw.data() {
                Ok(d) => d,
                Err(e) => {
                    self.damage(e.in_file(loc.file).to_string())?;
                    continue;
                }
            };
            match pass {
                Pass::Index => self.index(seq, data, loc)?,
                Pass::Wbl => self.wbl(data, loc)?,
            }
        }
        if let Some((seg, offset)) = rd.torn_tail() {
            let m = &segs[seg];
            self.stats.torn.push(format!(
                "{}: byte {offset}: the segment ends inside a record ({} bytes of it written)",
                m.rel,
                m.bytes().len().saturating_sub(offset)
            ));
        }
        Ok(seq)
    }

    /// Second pass: a batch of noted records, decoded, replayed in log order.
    fn replay_batch(
        &mut self,
        segs: &[Mapped],
        b: &[batch::Noted],
        decoded: Vec<batch::Decoded>,
    ) -> Result<()> {
        for (p, d) in b.iter().zip(decoded) {
            let loc = Loc {
                file: &segs[p.segment].rel,
                offset: p.offset,
            };
            match d {
                batch::Decoded::Other => {}
                // A record of unknown type (zstd) is decompressed by both passes: reported by
                // the first.
                batch::Decoded::Logged(msg) => {
                    if p.hint.is_some() {
                        let e = tsdb::Error::new(tsdb::ErrorKind::Malformed, p.offset, msg);
                        self.damage(e.in_file(loc.file).to_string())?;
                    }
                }
                batch::Decoded::Bad(hist, e) => {
                    let what = if hist { "histogram" } else { "samples" };
                    self.bad_record(loc, what, e)?;
                }
                batch::Decoded::Samples(v) => self.replay_floats(p.seq, &v)?,
                batch::Decoded::Histograms(v) => self.replay_histograms(p.seq, v)?,
            }
        }
        Ok(())
    }

    fn bad_record(&mut self, loc: Loc<'_>, what: &str, e: impl std::fmt::Display) -> Result<()> {
        self.damage(format!(
            "{}: byte {}: {what} record: {e}",
            loc.file, loc.offset
        ))
    }

    /// First pass: series records and tombstones.
    fn index(&mut self, seq: u64, rec: &[u8], loc: Loc<'_>) -> Result<()> {
        match record::record_type(rec) {
            Err(e) => self.damage(format!("{}: byte {}: {e}", loc.file, loc.offset)),
            Ok(Some(RecordType::Series)) => {
                let entries: Result<Vec<_>, _> = record::series(rec).and_then(|it| it.collect());
                match entries {
                    Ok(entries) => {
                        for e in entries {
                            if let Err(msg) = self.add_series(seq, &e) {
                                self.bad_record(loc, "series", msg)?;
                            }
                        }
                        Ok(())
                    }
                    Err(e) => self.bad_record(loc, "series", e),
                }
            }
            Ok(Some(RecordType::Tombstones)) => {
                let stones: Result<Vec<_>, _> = record::tombstones(rec).and_then(|it| it.collect());
                match stones {
                    Ok(stones) => {
                        for s in stones {
                            self.add_tombstone(seq, s);
                        }
                        Ok(())
                    }
                    Err(e) => self.bad_record(loc, "tombstones", e),
                }
            }
            Ok(_) => Ok(()),
        }
    }

    fn add_series(&mut self, seq: u64, e: &record::SeriesEntry<'_>) -> Result<(), String> {
        let mut pairs = Vec::with_capacity(e.labels.len());
        for (n, v) in &e.labels {
            let n = std::str::from_utf8(n).map_err(|_| "label name is not UTF-8".to_string())?;
            let v = std::str::from_utf8(v).map_err(|_| format!("value of {n} is not UTF-8"))?;
            pairs.push((n, v));
        }
        let labels = Labels::from_pairs(pairs);
        let idx = match self.by_labels.get(&labels) {
            Some(&i) => i,
            None => {
                let i = self.series.len() as u32;
                self.series.push(Series {
                    first_ref: e.series_ref,
                    last_ref: e.series_ref,
                    last_seq: seq,
                    last_t: i64::MIN,
                    tombstones: Vec::new(),
                    visit: Visit::Unasked,
                    skip: false,
                    ooo: Vec::new(),
                });
                self.by_labels.insert(labels.clone(), i);
                self.labels.push(labels);
                i
            }
        };
        let s = &mut self.series[idx as usize];
        s.last_ref = e.series_ref;
        s.last_seq = seq;
        let known = self.refs.get(&e.series_ref).is_some_and(|r| r.0 == idx);
        if !known {
            self.refs.insert(e.series_ref, (idx, seq));
        }
        Ok(())
    }

    fn add_tombstone(&mut self, seq: u64, t: record::Tombstone) {
        if t.maxt < self.opts.min_valid_time {
            return;
        }
        if let Some(&(idx, at)) = self.refs.get(&t.series_ref) {
            let s = &mut self.series[idx as usize];
            if at < seq && s.first_ref == t.series_ref {
                s.tombstones.push((t.mint, t.maxt));
            }
        }
    }

    /// The series a chunk of `series_ref` belongs to, if that ref is its last one.
    fn chunk_owner(&self, series_ref: u64) -> Option<usize> {
        let &(idx, _) = self.refs.get(&series_ref)?;
        (self.series[idx as usize].last_ref == series_ref).then_some(idx as usize)
    }

    /// The m-mapped chunks: emitted, and the in-order ones set where WAL replay resumes.
    fn chunks(&mut self, chunk_files: &[(u32, Mapped)]) -> Result<()> {
        let mut last_maxt: FxHashMap<u64, i64> = FxHashMap::default();
        let mut buf = Vec::new();
        for (i, (seq, m)) in chunk_files.iter().enumerate() {
            if let Err(e) = head_chunks::check_header(m.bytes()) {
                self.damage(e.in_file(&m.rel).to_string())?;
                continue;
            }
            let newest = i + 1 == chunk_files.len();
            for c in HeadChunks::new(m.bytes()) {
                let c = match c {
                    // A chunk being written: its samples are still in the WAL, which the
                    // replay reads from after the last complete chunk (as 2.42 would).
                    Err(e) if newest && e.is_torn() => break,
                    Err(e) => {
                        self.damage(e.in_file(&m.rel).to_string())?;
                        continue;
                    }
                    Ok(c) => c,
                };
                self.last_chunk_ref = head_chunks::chunk_ref(*seq, c.offset);
                let ooo = c.is_ooo();
                if !ooo && c.maxt < self.opts.min_valid_time {
                    continue;
                }
                let enc = c.base_encoding();
                if !(1..=3).contains(&enc) {
                    let msg = format!(
                        "{}: byte {}: chunk encoding {} of series ref {} is unknown",
                        m.rel, c.offset, c.encoding, c.series_ref
                    );
                    self.damage(msg)?;
                    continue;
                }
                if !ooo {
                    let prev = last_maxt.get(&c.series_ref).copied();
                    if prev.is_some_and(|p| p >= c.mint) {
                        let msg = format!(
                            "{}: byte {}: chunk [{}, {}] of series ref {} overlaps the one before it (ends {})",
                            m.rel, c.offset, c.mint, c.maxt, c.series_ref, prev.unwrap_or_default()
                        );
                        self.damage(msg)?;
                        continue;
                    }
                    last_maxt.insert(c.series_ref, c.maxt);
                }
                let Some(idx) = self.chunk_owner(c.series_ref) else {
                    continue;
                };
                if self.series[idx].skip {
                    continue;
                }
                if enc != 1 {
                    self.histogram_chunk(idx, &c, &m.rel)?;
                    continue;
                }
                buf.clear();
                if let Err(e) = xor::decode(c.data, |t, v| buf.push((t, v))) {
                    let msg = format!(
                        "{}: byte {}: chunk of series ref {}: {e}",
                        m.rel, c.offset, c.series_ref
                    );
                    self.damage(msg)?;
                    continue;
                }
                for &(t, bits) in &buf {
                    if ooo || !self.series[idx].deleted(t) {
                        self.emit(idx, t, bits)?;
                    }
                }
            }
        }
        for s in &mut self.series {
            s.last_t = last_maxt.get(&s.last_ref).copied().unwrap_or(i64::MIN);
        }
        Ok(())
    }

    /// An m-mapped histogram chunk of series `idx`, in order or not: its samples emitted,
    /// tombstones applied (Prometheus 3's head querier applies them to out-of-order data too).
    fn histogram_chunk(&mut self, idx: usize, c: &HeadChunk<'_>, file: &str) -> Result<()> {
        let mut hists: Vec<(i64, HistogramValue)> = Vec::with_capacity(c.num_samples() as usize);
        let res = c.decode_samples(|_, t, v| match v {
            Value::Histogram(h) => hists.push((t, HistogramValue::Int(h.clone()))),
            Value::FloatHistogram(h) => hists.push((t, HistogramValue::Float(h.clone()))),
            Value::Float(_) => unreachable!("a histogram encoding decodes to histograms"),
        });
        if let Err(e) = res {
            let msg = format!(
                "{file}: byte {}: chunk of series ref {}: {e}",
                c.offset, c.series_ref
            );
            return self.damage(msg);
        }
        for (t, h) in &hists {
            if !self.series[idx].deleted(*t) {
                self.emit_hist(idx, *t, h)?;
            }
        }
        Ok(())
    }

    /// The in-order rules for a WAL sample or histogram of series ref `r` at `t` in the record
    /// at position `seq`: the series' index when it is replayed (and not deleted there).
    #[inline]
    fn in_order(&mut self, seq: u64, r: u64, t: i64) -> Option<usize> {
        if t < self.opts.min_valid_time {
            return None;
        }
        let (idx, known_at) = self.dense.get(&self.refs, r)?;
        let s = &mut self.series[idx as usize];
        if s.skip || known_at > seq || seq < s.last_seq || t <= s.last_t {
            return None;
        }
        s.last_t = t;
        (!s.deleted(t)).then_some(idx as usize)
    }

    /// WAL samples of the record at position `seq` through the in-order rules.
    fn replay_floats(&mut self, seq: u64, decoded: &[(u64, i64, u64)]) -> Result<()> {
        for &(r, t, bits) in decoded {
            if let Some(idx) = self.in_order(seq, r, t) {
                self.emit(idx, t, bits)?;
            }
        }
        Ok(())
    }

    /// WAL histograms of the record at position `seq` through the in-order rules.
    fn replay_histograms(
        &mut self,
        seq: u64,
        decoded: Vec<(u64, i64, HistogramValue)>,
    ) -> Result<()> {
        for (r, t, h) in decoded {
            if let Some(idx) = self.in_order(seq, r, t) {
                self.emit_hist(idx, t, &h)?;
            }
        }
        Ok(())
    }
}

impl Replay<'_> {
    /// Passes one sample in [mint, maxt] to the visitor, asking about its series first.
    fn emit(&mut self, idx: usize, t: i64, bits: u64) -> Result<()> {
        let Some(id) = self.visit(idx, t)? else {
            return Ok(());
        };
        self.stats.samples += 1;
        self.v.sample(id, t, bits)
    }

    /// [`emit`](Self::emit) for a histogram.
    fn emit_hist(&mut self, idx: usize, t: i64, h: &HistogramValue) -> Result<()> {
        let Some(id) = self.visit(idx, t)? else {
            return Ok(());
        };
        self.stats.histograms += 1;
        self.v.histogram(id, t, h)
    }

    /// The visitor's id of series `idx` for a sample at `t`: `None` when `t` is outside [mint,
    /// maxt] or the visitor refuses the series (asked once).
    #[inline]
    fn visit(&mut self, idx: usize, t: i64) -> Result<Option<u32>> {
        if t < self.opts.mint || t > self.opts.maxt {
            return Ok(None);
        }
        let s = &mut self.series[idx];
        Ok(match s.visit {
            Visit::Wanted(id) => Some(id),
            Visit::Unwanted => None,
            Visit::Unasked => {
                self.stats.series += 1;
                match self.v.series(&self.labels[idx])? {
                    Some(id) => {
                        s.visit = Visit::Wanted(id);
                        Some(id)
                    }
                    None => {
                        s.visit = Visit::Unwanted;
                        None
                    }
                }
            }
        })
    }
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
