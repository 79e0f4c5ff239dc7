//! A Prometheus data directory as a source: lists and opens its blocks (read-only memory maps,
//! nothing created, no lock), merges their series in label order and feeds the sink; the head
//! (WAL) comes after the blocks. A block that vanishes while opening (compaction) is re-listed.

mod bound;
mod gomerge;
mod headfeed;
mod headhold;
mod merge;

pub use headfeed::{read_head, HeadFeed};
pub use headhold::{hold_head, Hold};
pub use merge::{read_blocks, DirStats, ReadOptions};

use merge::{Pass, Reader, Seen};

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use memmap2::Mmap;

use crate::format::tsdb::index::Index;
use crate::format::tsdb::meta::{self, Meta};
use crate::format::tsdb::{chunks, tombstones};

/// Listing and opening are retried this often when a block disappears meanwhile.
const OPEN_ATTEMPTS: u32 = 8;

/// What a directory given as input is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirKind {
    /// A data directory: block directories and/or `wal/`.
    DataDir,
    /// One block directory (has `meta.json`).
    Block,
}

/// Tells a data dir from a block dir; anything else is bad input.
pub fn detect(dir: &Path) -> Result<DirKind> {
    if dir.join("meta.json").is_file() {
        return Ok(DirKind::Block);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io_error(e, dir))?;
    for e in entries {
        let e = e.map_err(|e| io_error(e, dir))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if e.path().is_dir() && (meta::is_ulid(&name) || name == "wal" || name == "chunks_head") {
            return Ok(DirKind::DataDir);
        }
    }
    Err(crate::bad_input!(
        "{} is neither a Prometheus data directory (block directories, wal/) nor a block directory (meta.json)",
        dir.display()
    ))
}

/// File contents: a read-only map, or nothing for an empty file (which cannot be mapped).
pub(crate) enum Bytes {
    Map(Mmap),
    Empty,
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
            Bytes::Empty => &[],
        }
    }
}

/// Why opening failed: the caller re-lists on `Vanished`.
enum OpenError {
    Vanished(PathBuf),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for OpenError {
    fn from(e: anyhow::Error) -> Self {
        OpenError::Other(e)
    }
}

/// An I/O error with the file named; permission problems say that read access is enough.
pub(crate) fn io_error(e: io::Error, path: &Path) -> anyhow::Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        anyhow::anyhow!(
            "cannot read {}: permission denied (prom2om only needs read access to the data directory)",
            path.display()
        )
    } else {
        anyhow::Error::new(e).context(format!("reading {}", path.display()))
    }
}

fn map_file(path: &Path) -> std::result::Result<Bytes, OpenError> {
    let f = File::open(path).map_err(|e| classify(e, path))?;
    let len = f.metadata().map_err(|e| classify(e, path))?.len();
    if len == 0 {
        return Ok(Bytes::Empty);
    }
    // SAFETY: Prometheus never modifies a block file in place (blocks are written under a
    // temporary name and renamed, and deleted whole); the map is read-only.
    let m = unsafe { Mmap::map(&f) }.map_err(|e| classify(e, path))?;
    Ok(Bytes::Map(m))
}

/// A file that is not found is a block being deleted (compaction) when its block directory is
/// gone too: re-list. A file missing from a block that is still there is damage.
fn classify(e: io::Error, path: &Path) -> OpenError {
    if e.kind() != io::ErrorKind::NotFound {
        return OpenError::Other(io_error(e, path));
    }
    let block_gone = path
        .ancestors()
        .skip(1)
        .find(|a| a.join("meta.json").exists() || !a.exists())
        .is_none_or(|a| !a.exists());
    if block_gone {
        OpenError::Vanished(path.to_path_buf())
    } else {
        OpenError::Other(crate::bad_input!(
            "{}: missing from its block (a damaged block?)",
            path.display()
        ))
    }
}

/// One opened block: its metadata and its files mapped.
pub struct Block {
    pub dir: PathBuf,
    pub meta: Meta,
    pub(crate) index: Bytes,
    pub(crate) segments: Vec<Bytes>,
    pub(crate) tombstones: tombstones::Tombstones,
}

impl Block {
    fn open(dir: &Path, meta: Meta) -> std::result::Result<Block, OpenError> {
        let index = map_file(&dir.join("index"))?;
        let chunk_dir = dir.join("chunks");
        let mut names: Vec<(u64, String)> = Vec::new();
        let entries = std::fs::read_dir(&chunk_dir).map_err(|e| classify(e, &chunk_dir))?;
        for e in entries {
            let e = e.map_err(|e| classify(e, &chunk_dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(n) = name.parse::<u64>() {
                names.push((n, name));
            }
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for (i, (n, name)) in names.iter().enumerate() {
            if *n != i as u64 + 1 {
                return Err(OpenError::Other(crate::bad_input!(
                    "block {}: chunk segment {:06} is missing (found {name})",
                    dir.display(),
                    i + 1
                )));
            }
            let path = chunk_dir.join(name);
            let seg = map_file(&path)?;
            chunks::check_segment(&seg)
                .map_err(|e| crate::bad_input!("{}: {e}", path.display()))?;
            segments.push(seg);
        }
        let ts_path = dir.join("tombstones");
        let tombstones = match std::fs::read(&ts_path) {
            Ok(b) => tombstones::parse(&b)
                .map_err(|e| crate::bad_input!("{}: {e}", ts_path.display()))?,
            // Prometheus reads a missing tombstones file as none.
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir.join("meta.json").exists() => {
                Default::default()
            }
            Err(e) => return Err(classify(e, &ts_path)),
        };
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            segments,
            tombstones,
        })
    }

    /// The block's index, parsed (symbols and postings table).
    pub fn index(&self) -> Result<Index<'_>> {
        Index::parse(&self.index)
            .map_err(|e| crate::bad_input!("{}: {e}", self.dir.join("index").display()))
    }

    /// Short name for messages: the block's directory name.
    pub fn name(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.dir.display().to_string())
    }
}

/// The opened blocks of a data dir (sorted by minTime, as Prometheus orders them) or the one
/// block given, and the data dir itself when it may hold a head.
pub struct Opened {
    pub blocks: Vec<Block>,
    pub head_dir: Option<PathBuf>,
    /// Block directories skipped as Prometheus skips them (unreadable meta.json), with why.
    pub skipped: Vec<String>,
}

/// Lists and opens the blocks under `dir`, re-listing when one vanishes meanwhile.
pub fn open(dir: &Path) -> Result<Opened> {
    let kind = detect(dir)?;
    let mut last = None;
    for attempt in 0..OPEN_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(50 << attempt.min(4)));
        }
        match open_once(dir, &kind) {
            Ok(o) => return Ok(o),
            Err(OpenError::Vanished(p)) => last = Some(p),
            Err(OpenError::Other(e)) => return Err(e),
        }
    }
    let p = last.expect("an attempt failed");
    Err(anyhow::anyhow!(
        "{} kept disappearing while opening the blocks of {} ({OPEN_ATTEMPTS} attempts; is the TSDB being deleted?)",
        p.display(),
        dir.display()
    ))
}

fn open_once(dir: &Path, kind: &DirKind) -> std::result::Result<Opened, OpenError> {
    let mut skipped = Vec::new();
    if *kind == DirKind::Block {
        let meta = read_meta(dir)?.map_err(|e| OpenError::Other(crate::bad_input!("{e}")))?;
        return Ok(Opened {
            blocks: vec![Block::open(dir, meta)?],
            head_dir: None,
            skipped,
        });
    }
    let mut blocks = Vec::new();
    for d in block_dirs(dir)? {
        match read_meta(&d)? {
            Ok(m) => blocks.push(Block::open(&d, m)?),
            Err(why) => skipped.push(why),
        }
    }
    blocks.sort_by_key(|b| b.meta.min_time);
    Ok(Opened {
        blocks,
        head_dir: Some(dir.to_path_buf()),
        skipped,
    })
}

/// The block directories of data dir `dir`, sorted.
fn block_dirs(dir: &Path) -> std::result::Result<Vec<PathBuf>, OpenError> {
    let entries = std::fs::read_dir(dir).map_err(|e| classify(e, dir))?;
    let mut dirs = Vec::new();
    for e in entries {
        let e = e.map_err(|e| classify(e, dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        // Like Prometheus's isBlockDir: a directory named by a ULID; `*.tmp-for-*` and other
        // names are blocks being written or deleted.
        if meta::is_ulid(&name) && e.path().is_dir() {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// The blocks of data dir `dir` not among `known`: written by a compaction since `known` was
/// listed (then the head may have lost their data already). In minTime order; a block that
/// vanishes meanwhile makes it list again, as [`open`] does.
pub fn late_blocks(dir: &Path, known: &[Block]) -> Result<Vec<Block>> {
    let mut last = None;
    for attempt in 0..OPEN_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(50 << attempt.min(4)));
        }
        match late_once(dir, known) {
            Ok(blocks) => return Ok(blocks),
            Err(OpenError::Vanished(p)) => last = Some(p),
            Err(OpenError::Other(e)) => return Err(e),
        }
    }
    let p = last.expect("an attempt failed");
    Err(anyhow::anyhow!(
        "{} kept disappearing while listing the blocks of {} again ({OPEN_ATTEMPTS} attempts)",
        p.display(),
        dir.display()
    ))
}

fn late_once(dir: &Path, known: &[Block]) -> std::result::Result<Vec<Block>, OpenError> {
    let mut blocks = Vec::new();
    for d in block_dirs(dir)? {
        if known.iter().any(|b| b.dir == d) {
            continue;
        }
        // A block Prometheus would skip was reported by `open` already.
        if let Ok(m) = read_meta(&d)? {
            blocks.push(Block::open(&d, m)?);
        }
    }
    blocks.sort_by_key(|b| b.meta.min_time);
    Ok(blocks)
}

/// Reads the opened blocks and head into the sink. A head small enough is replayed first and
/// held, so that its series join the blocks' label-ordered stream; a bigger one goes to the sink
/// after the blocks. Blocks a compaction wrote after the listing are read too: their data may
/// have left the head before it was replayed (a sample read twice is deduplicated by the sink).
///
/// When the head's samples are known to start at or after some output window, the blocks' data
/// before that window is read first, so that its shards are written while the head is replayed
/// (see [`read_split`]).
pub fn read_dir(
    opened: Opened,
    opts: &ReadOptions,
    sink: &mut crate::pipeline::sink::Sink,
    pb: &indicatif::ProgressBar,
) -> Result<DirStats> {
    let blocks = opened.blocks;
    let Some(head) = &opened.head_dir else {
        return read_blocks(&blocks, opts, sink, pb, None);
    };
    match split_time(head, &blocks, opts, sink) {
        Some(w) => read_split(blocks, head, w, opts, sink, pb),
        None => read_held(blocks, head, opts, sink, pb),
    }
}

/// Reads blocks and head in one pass, the head held when it fits, after the blocks otherwise.
fn read_held(
    mut blocks: Vec<Block>,
    head: &Path,
    opts: &ReadOptions,
    sink: &mut crate::pipeline::sink::Sink,
    pb: &indicatif::ProgressBar,
) -> Result<DirStats> {
    match hold_head(head, &blocks, opts, sink)? {
        Some((head_stats, mut hold)) => {
            blocks.extend(late_blocks(head, &blocks)?);
            blocks.sort_by_key(|b| b.meta.min_time);
            let mut stats = read_blocks(&blocks, opts, sink, pb, Some(&mut hold))?;
            stats.add(&head_stats);
            Ok(stats)
        }
        None => {
            let mut stats = read_blocks(&blocks, opts, sink, pb, None)?;
            stats.add(&read_head(head, &blocks, opts, sink)?);
            let late = late_blocks(head, &blocks)?;
            if !late.is_empty() {
                stats.add(&read_blocks(&late, opts, sink, pb, None)?);
            }
            Ok(stats)
        }
    }
}

/// The start of the output window from which the head may have samples, when blocks hold data
/// before it and reading in two passes writes the same shards and stats: no label edits (the
/// head would not be held), no --skip-invalid (damage would be met twice), and no blocks
/// overlapping in time (their merge picks among equal timestamps by what came before).
fn split_time(
    head: &Path,
    blocks: &[Block],
    opts: &ReadOptions,
    sink: &crate::pipeline::sink::Sink,
) -> Option<i64> {
    if !opts.filter.edits.is_empty() || opts.skip_invalid {
        return None;
    }
    let mut end = i64::MIN;
    for b in blocks {
        if b.meta.min_time < end {
            return None;
        }
        end = end.max(b.meta.max_time);
    }
    let start = opts.filter.start.unwrap_or(i64::MIN);
    let w = sink.window_start(bound::head_lower_bound(head, blocks)?.max(start));
    let first = blocks
        .iter()
        .any(|b| b.meta.min_time < w && start < b.meta.max_time);
    (start < w && first).then_some(w)
}

/// Reads in passes split at window start `w`, below which the head has no sample: the blocks'
/// data before `w` (its windows complete, the sink's writers start on them), then the head
/// replayed and held while they write, then the blocks' data from `w` on with the held head, as
/// [`read_dir`] does. A block the head lost data to meanwhile (compaction) may reach back before
/// `w`: that share is read last, into windows the sink then sorts. Series are counted once, and
/// each chunk and sample by one pass, so the stats are those of one pass.
fn read_split(
    blocks: Vec<Block>,
    head: &Path,
    w: i64,
    opts: &ReadOptions,
    sink: &mut crate::pipeline::sink::Sink,
    pb: &indicatif::ProgressBar,
) -> Result<DirStats> {
    let before = Reader {
        blocks: &blocks,
        opts,
        pass: Pass::before(w),
        only: None,
    };
    let (mut stats, seen) = before.read(sink, pb, None, Seen::new(&[], true))?;
    sink.begin_pass(w)?;
    let Some((head_stats, mut hold)) = hold_head(head, &blocks, opts, sink)? else {
        let after = Reader {
            pass: Pass::from(w, true),
            ..before
        };
        stats.add(&after.read(sink, pb, None, Seen::new(&seen, false))?.0);
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
    let (st, seen) = after.read(sink, pb, Some(&mut hold), Seen::new(&seen, early_late))?;
    stats.add(&st);
    if early_late {
        let is_late: Vec<bool> = all.iter().map(|b| !known.contains(&b.dir)).collect();
        let late_before = Reader {
            pass: Pass::before(w),
            only: Some(&is_late),
            ..after
        };
        stats.add(&late_before.read(sink, pb, None, Seen::new(&seen, false))?.0);
    }
    stats.add(&head_stats);
    Ok(stats)
}

/// A block's meta.json; `Ok(Err(why))` when Prometheus would skip the block for it.
fn read_meta(dir: &Path) -> std::result::Result<std::result::Result<Meta, String>, OpenError> {
    let path = dir.join("meta.json");
    match std::fs::read(&path) {
        Ok(b) => Ok(meta::parse(&b).map_err(|e| format!("{}: {e:#}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound && dir.is_dir() => {
            Ok(Err(format!("{}: missing", path.display())))
        }
        Err(e) => Err(classify(e, &path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_errors_say_read_access_is_enough() {
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        let msg = io_error(e, Path::new("/data/01ABC/index")).to_string();
        assert!(msg.contains("/data/01ABC/index"), "{msg}");
        assert!(msg.contains("only needs read access"), "{msg}");
        assert_eq!(
            crate::exit_codes::ExitCode::of(&io_error(
                io::Error::from(io::ErrorKind::PermissionDenied),
                Path::new("x")
            )),
            crate::exit_codes::ExitCode::Failure
        );
    }

    fn copy_block(from: &str, to: &Path) {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/tsdb")
            .join(from);
        std::fs::create_dir_all(to.join("chunks")).unwrap();
        for f in ["meta.json", "index", "tombstones", "chunks/000001"] {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }

    #[test]
    fn late_blocks_are_those_written_since_the_listing() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path();
        std::fs::create_dir(data.join("wal")).unwrap();
        copy_block("golden-block", &data.join("01M8MX6V563YAV666ATQ07V9E4"));
        let opened = open(data).unwrap();
        assert_eq!(opened.blocks.len(), 1);
        assert!(late_blocks(data, &opened.blocks).unwrap().is_empty());
        // A compaction finishes: its block is renamed into place; another is still being written.
        copy_block("index_format_v1", &data.join("01M8MX6V563YAV666ATQ07V9E5"));
        copy_block(
            "golden-block",
            &data.join("01M8MX6V563YAV666ATQ07V9E6.tmp-for-creation"),
        );
        let late = late_blocks(data, &opened.blocks).unwrap();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].name(), "01M8MX6V563YAV666ATQ07V9E5");
    }

    #[test]
    fn missing_file_in_a_present_block_is_damage_in_a_vanished_one_a_retry() {
        let tmp = tempfile::tempdir().unwrap();
        let block = tmp.path().join("01M8MX6V563YAV666ATQ07V9E4");
        std::fs::create_dir_all(block.join("chunks")).unwrap();
        std::fs::write(block.join("meta.json"), b"{}").unwrap();
        let nf = || io::Error::from(io::ErrorKind::NotFound);
        assert!(matches!(
            classify(nf(), &block.join("index")),
            OpenError::Other(_)
        ));
        assert!(matches!(
            classify(nf(), &block.join("chunks/000001")),
            OpenError::Other(_)
        ));
        std::fs::remove_dir_all(&block).unwrap();
        assert!(matches!(
            classify(nf(), &block.join("chunks/000001")),
            OpenError::Vanished(_)
        ));
        assert!(matches!(
            classify(nf(), &block.join("meta.json")),
            OpenError::Vanished(_)
        ));
    }

    /// A data dir: the golden block (16000 to 2274052 ms, 3 series) and a WAL whose samples
    /// start 30 s before the block's end (those are dropped by the replay) and run 3.3 hours:
    /// one series of the block, one sorting before every block series, one after.
    fn golden_data_dir(data: &Path) {
        use crate::format::tsdb::record::{encode_samples, encode_series};
        use crate::format::tsdb::wal::{Compression, Writer, PAGE_SIZE};
        copy_block("golden-block", &data.join("01M8MX6V563YAV666ATQ07V9E4"));
        let mut recs = vec![encode_series(&[
            (1, &[("__name__", "golden"), ("s", "0"), ("x", "a\"b")][..]),
            (2, &[("__name__", "aaa")][..]),
            (3, &[("__name__", "zzz"), ("j", "x")]),
        ])];
        let t0 = 2_274_052 - 30_000;
        for k in 0..200i64 {
            let s: Vec<(u64, i64, u64)> = (0..60i64)
                .flat_map(|i| {
                    let t = t0 + (k * 60 + i) * 1000;
                    (1..=3u64).map(move |r| (r, t, ((r as i64 * t) as f64).to_bits()))
                })
                .collect();
            recs.push(encode_samples(&s));
        }
        let mut w = Writer::new(PAGE_SIZE * 64, Compression::Snappy);
        for r in &recs {
            w.log(r);
        }
        std::fs::create_dir_all(data.join("wal")).unwrap();
        for (i, s) in w.segments().iter().enumerate() {
            std::fs::write(data.join("wal").join(format!("{i:08}")), s).unwrap();
        }
    }

    /// How a test reads the data dir.
    #[derive(Clone, Copy)]
    enum How {
        /// As `convert` does.
        Auto,
        /// One pass, the head held.
        Held,
        /// In passes split at this time.
        Split(i64),
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
        use crate::pipeline::sink::{Output, RunInfo, Sink, SinkOptions, StaleMode};
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let mut sink = Sink::create(SinkOptions {
            output: Output::Dir {
                path: out.clone(),
                compress: false,
            },
            block_duration_ms: 600_000,
            shards: None,
            target_shard_bytes: 1 << 30,
            memory_limit: limit,
            temp_dir: None,
            stale: StaleMode::Keep,
            compression_level: 1,
            force: false,
            progress: false,
            stream: true,
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
        }
        .unwrap();
        let summary = sink.finish(RunInfo::default()).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
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
        use crate::pipeline::sink::{Output, Sink, SinkOptions, StaleMode};
        let tmp = tempfile::tempdir().unwrap();
        let sink = Sink::create(SinkOptions {
            output: Output::Dir {
                path: tmp.path().join("out"),
                compress: false,
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
            stream: false,
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
