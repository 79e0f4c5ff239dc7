//! A Prometheus data directory as a source: lists and opens its blocks (read-only memory maps,
//! nothing created, no lock), merges their series in label order and feeds the sink; the head
//! (WAL) comes after the blocks. A block that vanishes while opening (compaction) is re-listed.

mod bound;
mod estimate;
mod gomerge;
mod headfeed;
mod headhold;
mod merge;
mod samples;
mod split;
mod stats;

pub use estimate::{estimate, Estimate, WindowEstimate, LINE_BYTES};
pub use headfeed::{read_head, HeadFeed};
pub use headhold::{hold_head, Hold};
pub use merge::read_blocks;
pub use stats::{DirStats, ReadOptions};

use split::{read_passes, read_split, split_time};

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use memmap2::Mmap;

use crate::format::tsdb::index::Index;
use crate::format::tsdb::meta::{self, Meta};
use crate::format::tsdb::{chunks, tombstones};
use crate::pipeline::feed::SampleSink;

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

impl Bytes {
    /// Drops the mapped pages of `[from, to)` (whole pages inside it) from this process's memory:
    /// touched again, they are read back from the page cache or the file. A read walking a file
    /// front to back so keeps its resident size bounded, whatever the file's length.
    pub(crate) fn release(&self, from: usize, to: usize) {
        const PAGE: usize = 4096;
        let Bytes::Map(m) = self else { return };
        let (from, to) = (from.next_multiple_of(PAGE), to.min(m.len()) / PAGE * PAGE);
        if from < to {
            // SAFETY: the map is private and read-only (never written through), so dropping its
            // pages loses nothing: they are read again from the file when touched.
            let _ = unsafe {
                m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    }
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
    /// The chunk reference before which the segments' pages were released.
    released: std::sync::atomic::AtomicU64,
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
            released: Default::default(),
        })
    }

    /// The block's index, parsed (symbols and postings table).
    pub fn index(&self) -> Result<Index<'_>> {
        Index::parse(&self.index)
            .map_err(|e| crate::bad_input!("{}: {e}", self.dir.join("index").display()))
    }

    /// Releases the pages of the chunk segments before `chunk_ref` ([`Bytes::release`]): a read
    /// in series order has done with them (Prometheus writes a block's chunks in series order).
    /// Were they needed again, they would be read again.
    pub(crate) fn release_chunks_before(&self, chunk_ref: u64) {
        use std::sync::atomic::Ordering;
        let done = self.released.fetch_max(chunk_ref, Ordering::Relaxed);
        if done >= chunk_ref || self.segments.is_empty() {
            return;
        }
        let (s0, o0) = chunks::unpack_ref(done);
        let (s1, o1) = chunks::unpack_ref(chunk_ref);
        for s in s0..=s1.min(self.segments.len().saturating_sub(1)) {
            let from = if s == s0 { o0 } else { 0 };
            let to = if s == s1 { o1 } else { usize::MAX };
            self.segments[s].release(from, to);
        }
    }

    /// Releases the index's pages ([`Bytes::release`]): a read that has done with the block.
    pub(crate) fn release_index(&self) {
        self.index.release(0, self.index.len());
    }

    /// Starts releasing over for a new read from the front ([`Block::release_chunks_before`]).
    pub(crate) fn restart_release(&self) {
        self.released.store(0, std::sync::atomic::Ordering::Relaxed);
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
/// (see the `split` module).
pub fn read_dir(
    opened: Opened,
    opts: &ReadOptions,
    sink: &mut impl SampleSink,
    pb: &indicatif::ProgressBar,
) -> Result<DirStats> {
    let blocks = opened.blocks;
    let Some(head) = &opened.head_dir else {
        if split::passes_allowed(&blocks, opts) {
            return Ok(read_passes(&blocks, i64::MAX, true, opts, sink, pb)?.0);
        }
        return read_blocks(&blocks, opts, sink, pb, None);
    };
    match split_time(head, &blocks, opts, sink) {
        Some(w) => read_split(blocks, head, w, opts, sink, pb),
        None => read_held(blocks, head, opts, sink, pb),
    }
}

/// Reads blocks and head in one pass, the head held when it fits, after the blocks otherwise.
pub(super) fn read_held(
    mut blocks: Vec<Block>,
    head: &Path,
    opts: &ReadOptions,
    sink: &mut impl SampleSink,
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

    /// A data dir: the golden block (16000 to 2274052 ms, 3 series) and a WAL whose samples
    /// start 30 s before the block's end (those are dropped by the replay) and run 3.3 hours:
    /// one series of the block, one sorting before every block series, one after.
    pub(super) fn golden_data_dir(data: &Path) {
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

    pub(super) fn copy_block(from: &str, to: &Path) {
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
}
