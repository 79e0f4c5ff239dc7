//! `import`: loads a shard directory into a Prometheus data dir. Each shard is checked against the
//! manifest, written as a block by prom2om's block writer (or backfilled by `promtool` with
//! `--promtool`) into its own staging dir (several at once), its blocks counted, and only then are
//! the whole block dirs renamed into the data dir.

pub mod blocks;
pub mod build;
pub mod lock;
pub mod promtool;
pub mod remote_write;
pub mod sidecar;
pub mod state;
pub mod verify_remote;

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::bad_input;
use crate::format::shard_dir::{Manifest, ShardEntry, MANIFEST_FILE};
use blocks::{move_blocks, read_blocks, BlockMeta};
pub use promtool::Promtool;
use state::{Record, State, Status};

/// The staging area inside the data dir: same filesystem, so moving a block is one rename.
/// Prometheus only opens directories named like a ULID, so it never looks in here.
pub const STAGING_DIR: &str = ".prom2om-import";
/// The lock of the staging area: one `import` at a time into a data dir.
const STAGING_LOCK: &str = "lock";

#[derive(Clone, Debug)]
pub struct Options {
    /// Backfill with this promtool (a path, or a name looked up on PATH) instead of writing the
    /// blocks with prom2om's own writer.
    pub promtool: Option<PathBuf>,
    /// Shards built at once, at least 1.
    pub jobs: usize,
    /// Import even when another process uses the data dir.
    pub force: bool,
}

/// What became of one shard.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Its blocks are in the data dir and hold exactly the manifest's samples.
    Imported {
        blocks: Vec<String>,
        samples: u64,
        min_time_ms: Option<i64>,
        max_time_ms: Option<i64>,
    },
    /// An earlier run imported it (same file name and checksum).
    Skipped,
    /// An earlier run was interrupted while moving its blocks; this run finished the move.
    Recovered { blocks: Vec<String> },
    /// Nothing of it reached the data dir; the reason, with promtool's own error when it failed.
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct ShardResult {
    /// Position in the manifest.
    pub index: usize,
    pub file: String,
    pub expected_samples: u64,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// One result per manifest shard, in manifest order.
    pub results: Vec<ShardResult>,
    /// Problems `verify` found in the directory as a whole (totals, files the manifest does not
    /// list): reported, but no reason to refuse the shards.
    pub warnings: Vec<String>,
    /// The staging area: import state, and the work dirs of running jobs.
    pub staging: PathBuf,
    /// A shard failed because the disk (or quota) of the data dir was full.
    pub no_space: bool,
    pub elapsed: Duration,
}

impl Summary {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }
    pub fn imported(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Imported { .. }))
    }
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped | Outcome::Recovered { .. }))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }
    /// Blocks and samples this run put into the data dir.
    pub fn blocks_and_samples(&self) -> (usize, u64) {
        let mut acc = (0, 0);
        for r in &self.results {
            match &r.outcome {
                Outcome::Imported {
                    blocks, samples, ..
                } => {
                    acc.0 += blocks.len();
                    acc.1 += samples;
                }
                Outcome::Recovered { blocks } => acc.0 += blocks.len(),
                _ => {}
            }
        }
        acc
    }
    /// Earliest sample time imported by this run.
    pub fn min_time_ms(&self) -> Option<i64> {
        self.results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Imported { min_time_ms, .. } => *min_time_ms,
                _ => None,
            })
            .min()
    }
}

/// Told about the run as it goes, e.g. to draw a progress bar. Called from worker threads.
pub trait Progress: Sync {
    /// Before the shards are verified (read whole and parsed before any job; without --promtool
    /// and sidecars only the listing, each job verifying its shard).
    fn verifying(&self, _shards: u64) {}
    /// Before the first job: how many shards and samples are to be imported.
    fn planned(&self, _shards: u64, _samples: u64) {}
    fn finished(&self, _result: &ShardResult) {}
}

/// No progress reporting.
pub struct Silent;
impl Progress for Silent {}

/// Imports the shards of `dir` (a directory with a manifest) into the data dir `tsdb`.
///
/// Errors are for the run as a whole (bad manifest: [`crate::exit_codes::BadInput`]; missing
/// promtool, data dir in use: plain). A shard that fails is an [`Outcome::Failed`] in the summary
/// and stops nothing else.
pub fn import(dir: &Path, tsdb: &Path, opts: &Options, progress: &dyn Progress) -> Result<Summary> {
    let started = Instant::now();
    let manifest = load_manifest(dir)?;
    let promtool = match &opts.promtool {
        Some(path) => {
            let p = Promtool::detect(path)?;
            p.check_quoted_names(manifest.quoted_names.as_ref(), dir)?;
            Some(p)
        }
        None => None,
    };
    fs::create_dir_all(tsdb)
        .with_context(|| format!("{}: cannot create the data dir", tsdb.display()))?;
    if !opts.force {
        refuse_if_in_use(tsdb)?;
    }
    let staging = tsdb.join(STAGING_DIR);
    fs::create_dir_all(&staging)
        .with_context(|| format!("{}: cannot create the staging dir", staging.display()))?;
    let _guard = crate::pipeline::run_lock::acquire(
        &staging.join(STAGING_LOCK),
        &format!("the import staging dir {}", staging.display()),
    )?;
    let state_path = staging.join(state::STATE_FILE);
    let mut st = State::load(&state_path)?;
    let recovered = recover_moves(&mut st, &staging, tsdb, &state_path)?;
    clean_staging(&staging)?;

    progress.verifying(manifest.shards.len() as u64);
    // The writer verifies each shard in the read that builds its block, when every check is
    // one of a single shard (no sidecars: none across shards); otherwise all first.
    let verify_in_jobs =
        promtool.is_none() && manifest.shards.iter().all(|e| e.sidecars.is_empty());
    let mut report = if verify_in_jobs {
        crate::verify::verify_listing(dir)?
    } else {
        crate::verify::verify_dir(dir)?
    };
    if promtool.is_some() && manifest.totals.stale_markers > 0 {
        // Loss must be said: OpenMetrics, hence promtool's backfill, has no staleness marker.
        report.problems.push(format!(
            "{} staleness markers in the shards' sidecars are not imported: promtool's backfill \
             cannot write staleness markers, so those series stay on graphs up to 5 minutes \
             after they ended (prometheus --query.lookback-delta); import without --promtool, \
             or --remote-write, carries them",
            manifest.totals.stale_markers
        ));
    }
    let (mut results, todo) = plan(&manifest, &st, &recovered, &report, verify_in_jobs);
    for r in results.iter().flatten() {
        progress.finished(r);
    }
    let todo_samples = todo.iter().map(|&i| manifest.shards[i].samples).sum();
    progress.planned(todo.len() as u64, todo_samples);
    let job = Job {
        dir,
        tsdb,
        staging: &staging,
        promtool: promtool.as_ref(),
        compressed: manifest.compressed,
        verify_in_jobs,
        block_duration_ms: manifest.block_duration_ms,
        state: Mutex::new(st),
        state_path: &state_path,
        no_space: AtomicBool::new(false),
    };
    for r in job.run_all(&manifest.shards, &todo, opts.jobs, progress) {
        let i = r.index;
        results[i] = Some(r);
    }
    let no_space = job.no_space.load(Ordering::Relaxed);
    drop(job);
    Ok(Summary {
        results: results
            .into_iter()
            .map(|r| r.expect("every shard has a result"))
            .collect(),
        warnings: report.problems,
        staging,
        no_space,
        elapsed: started.elapsed(),
    })
}

fn refuse_if_in_use(tsdb: &Path) -> Result<()> {
    let holder = lock::holder(tsdb)
        .with_context(|| format!("{}: cannot check who uses it", tsdb.display()))?;
    match holder {
        None => Ok(()),
        Some(h) => bail!(
            "{} is in use: {h}. Stop Prometheus first, or pass --force to add the blocks anyway \
             (a running server loads new blocks at its next reload, within a minute)",
            tsdb.display()
        ),
    }
}

/// The results known before any job (shards imported by earlier runs, shards `verify` refused)
/// and the manifest indices still to import. `verify_in_jobs`: the report holds no shards, each
/// job verifies its own.
fn plan(
    manifest: &Manifest,
    st: &State,
    recovered: &[Record],
    report: &crate::verify::Report,
    verify_in_jobs: bool,
) -> (Vec<Option<ShardResult>>, Vec<usize>) {
    let problems_of: std::collections::HashMap<&str, &[String]> = report
        .files
        .iter()
        .map(|f| (f.file.as_str(), &f.problems[..]))
        .collect();
    let mut results = vec![None; manifest.shards.len()];
    let mut todo = Vec::new();
    for (i, e) in manifest.shards.iter().enumerate() {
        let key = state::key(&e.file, &e.sha256);
        let unverified = ["not in the manifest verify read (did it change?)".to_string()];
        let problems = match problems_of.get(e.file.as_str()) {
            Some(p) => *p,
            None if verify_in_jobs => &[],
            None => &unverified,
        };
        if let Some(r) = recovered.iter().find(|r| r.key() == key) {
            let blocks = r.blocks.clone();
            results[i] = Some(result(i, e, Outcome::Recovered { blocks }));
        } else if st.is_done(&key) {
            results[i] = Some(result(i, e, Outcome::Skipped));
        } else if !problems.is_empty() {
            let why = format!("verify: {}", problems.join("; "));
            results[i] = Some(result(i, e, Outcome::Failed(why)));
        } else {
            todo.push(i);
        }
    }
    (results, todo)
}

fn result(index: usize, e: &ShardEntry, outcome: Outcome) -> ShardResult {
    ShardResult {
        index,
        file: e.file.clone(),
        expected_samples: e.samples,
        outcome,
    }
}

/// Reads and checks the manifest; anything wrong with it is bad input (exit 2).
pub fn load_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    if !path.is_file() {
        return Err(bad_input!(
            "{}: no manifest: DIR must be a shard directory written by `prom2om convert -o` or \
             `prom2om fetch -o`",
            path.display()
        ));
    }
    let m = Manifest::load(dir).map_err(|e| bad_input!("{e:#}"))?;
    sidecar::check_kinds(&m, &path)?;
    let mut seen = std::collections::HashSet::new();
    for e in &m.shards {
        if !is_plain_relative(&e.file) {
            return Err(bad_input!(
                "{}: shard file name {:?} is not a plain relative path",
                path.display(),
                e.file
            ));
        }
        if !seen.insert(e.file.as_str()) {
            return Err(bad_input!(
                "{}: shard {} is listed twice",
                path.display(),
                e.file
            ));
        }
    }
    Ok(m)
}

fn is_plain_relative(file: &str) -> bool {
    let p = Path::new(file);
    !file.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Finishes the block moves an interrupted run left in `Moving` state; returns those records.
fn recover_moves(
    st: &mut State,
    staging: &Path,
    tsdb: &Path,
    state_path: &Path,
) -> Result<Vec<Record>> {
    let moving: Vec<Record> = st
        .shards
        .values()
        .filter(|r| r.status == Status::Moving)
        .cloned()
        .collect();
    for r in &moving {
        let from = staging.join(&r.work_dir).join("blocks");
        move_blocks(&from, tsdb, &r.blocks)?;
        let mut done = r.clone();
        done.status = Status::Done;
        st.put(done);
        st.save(state_path)?;
        remove_dir_if_exists(&staging.join(&r.work_dir))?;
    }
    Ok(moving)
}

/// Removes what killed runs left in the staging area (decompressed shards, unfinished promtool
/// output), keeping the state and the lock. Run after recovery, when no block waits there.
fn clean_staging(staging: &Path) -> Result<()> {
    for entry in
        fs::read_dir(staging).with_context(|| format!("{}: cannot list", staging.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        if name == STAGING_LOCK || name == state::STATE_FILE {
            continue;
        }
        let p = entry.path();
        if entry.file_type()?.is_dir() {
            remove_dir_if_exists(&p)?;
        } else {
            fs::remove_file(&p).with_context(|| format!("{}: cannot remove", p.display()))?;
        }
    }
    Ok(())
}

fn remove_dir_if_exists(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("{}: cannot remove", p.display()))
        }
        _ => Ok(()),
    }
}

/// What every worker shares.
struct Job<'a> {
    dir: &'a Path,
    tsdb: &'a Path,
    staging: &'a Path,
    /// `None`: prom2om writes the blocks itself.
    promtool: Option<&'a Promtool>,
    compressed: bool,
    /// The writer's jobs verify their shards (see [`build::build_shard`]).
    verify_in_jobs: bool,
    block_duration_ms: i64,
    state: Mutex<State>,
    state_path: &'a Path,
    /// Set when a shard failed for want of disk space.
    no_space: AtomicBool,
}

impl Job<'_> {
    /// Runs the shards `todo` (manifest indices) on `jobs` threads, each running one promtool at
    /// a time; a shard's failure is its result, never the others'.
    fn run_all(
        &self,
        shards: &[ShardEntry],
        todo: &[usize],
        jobs: usize,
        progress: &dyn Progress,
    ) -> Vec<ShardResult> {
        let next = AtomicUsize::new(0);
        let done = Mutex::new(Vec::new());
        let no_space = &self.no_space;
        std::thread::scope(|s| {
            for _ in 0..jobs.clamp(1, todo.len().max(1)) {
                s.spawn(|| {
                    while let Some(&i) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let e = &shards[i];
                        let outcome = self.shard(i, e).unwrap_or_else(|err| {
                            if is_no_space(&err) {
                                no_space.store(true, Ordering::Relaxed);
                            }
                            Outcome::Failed(format!("{err:#}"))
                        });
                        // promtool says so in Go's words when its blocks do not fit.
                        if matches!(&outcome, Outcome::Failed(why) if why.contains("no space left on device"))
                        {
                            no_space.store(true, Ordering::Relaxed);
                        }
                        let r = result(i, e, outcome);
                        progress.finished(&r);
                        done.lock().expect("no panics while held").push(r);
                    }
                });
            }
        });
        done.into_inner().expect("threads joined")
    }

    /// Checks, backfills, counts and moves one shard. `Err` and `Failed` both leave the data dir
    /// untouched by this shard, except an error while moving: the state then says `Moving` and
    /// the work dir stays, for the next run to finish the move.
    fn shard(&self, index: usize, e: &ShardEntry) -> Result<Outcome> {
        let work_name = format!("shard-{index}");
        let work = self.staging.join(&work_name);
        remove_dir_if_exists(&work)?;
        let out_dir = work.join("blocks");
        fs::create_dir_all(&out_dir)
            .with_context(|| format!("{}: cannot create", out_dir.display()))?;
        let blocks = match self.backfill(e, &work, &out_dir) {
            Ok(Ok(blocks)) => blocks,
            Ok(Err(refused)) => {
                remove_dir_if_exists(&work)?;
                return Ok(refused);
            }
            Err(err) => {
                remove_dir_if_exists(&work)?;
                return Err(err);
            }
        };
        let outcome = self
            .commit(e, &work_name, &out_dir, blocks)
            .context("moving the blocks into the data dir (the next run finishes the move)")?;
        remove_dir_if_exists(&work)?;
        Ok(outcome)
    }

    /// Verifies the file, builds its blocks and counts them: `Ok(Err(Failed))` is a shard that
    /// is refused, `Err` a failure of the machine.
    fn backfill(
        &self,
        e: &ShardEntry,
        work: &Path,
        out_dir: &Path,
    ) -> Result<Result<Vec<BlockMeta>, Outcome>> {
        let Some(promtool) = self.promtool else {
            return self.write_blocks(e, out_dir);
        };
        let src = self.dir.join(&e.file);
        let input = match verify_and_open(&src, e, work)? {
            Ok(p) => p,
            Err(why) => return Ok(Err(Outcome::Failed(why))),
        };
        // promtool builds its head in TMPDIR: keep it on the data dir's filesystem, where the
        // next run cleans up after a killed job.
        let tmp = work.join("tmp");
        fs::create_dir_all(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
        if let Err(why) = promtool.create_blocks(&input, out_dir, &tmp, self.block_duration_ms)? {
            return Ok(Err(Outcome::Failed(why)));
        }
        let blocks = read_blocks(out_dir)?;
        let samples: u64 = blocks.iter().map(|b| b.stats.num_samples).sum();
        if samples != e.samples {
            return Ok(Err(Outcome::Failed(format!(
                "promtool made {} block(s) holding {samples} samples, the manifest says {}; \
                 blocks not moved",
                blocks.len(),
                e.samples
            ))));
        }
        Ok(Ok(blocks))
    }

    /// The default path: prom2om's writer makes one block of the shard and its sidecars, which
    /// must hold the shard's samples plus the sidecars' staleness markers.
    fn write_blocks(
        &self,
        e: &ShardEntry,
        out_dir: &Path,
    ) -> Result<Result<Vec<BlockMeta>, Outcome>> {
        // The head range promtool's backfill gives its writer, so chunks are cut alike.
        let duration = if self.block_duration_ms > 0 {
            self.block_duration_ms
        } else {
            2 * 3_600_000
        };
        let (dir, compressed, verify) = (self.dir, self.compressed, self.verify_in_jobs);
        if let Err(why) = build::build_shard(dir, compressed, e, verify, out_dir, 2 * duration)? {
            return Ok(Err(Outcome::Failed(why)));
        }
        let blocks = read_blocks(out_dir)?;
        let samples: u64 = blocks.iter().map(|b| b.stats.num_samples).sum();
        let markers: u64 = e.sidecars.iter().map(|s| s.samples).sum();
        if samples != e.samples + markers {
            return Ok(Err(Outcome::Failed(format!(
                "wrote {} block(s) holding {samples} samples, the manifest says {} and {markers} \
                 staleness markers; blocks not moved",
                blocks.len(),
                e.samples
            ))));
        }
        Ok(Ok(blocks))
    }

    /// Records the blocks as moving, renames them into the data dir, records the shard done.
    fn commit(
        &self,
        e: &ShardEntry,
        work_name: &str,
        out_dir: &Path,
        blocks: Vec<BlockMeta>,
    ) -> Result<Outcome> {
        let mut rec = Record {
            file: e.file.clone(),
            sha256: e.sha256.clone(),
            status: Status::Moving,
            work_dir: work_name.to_string(),
            blocks: blocks.iter().map(|b| b.ulid.clone()).collect(),
            samples: blocks.iter().map(|b| b.stats.num_samples).sum(),
            min_time_ms: blocks.iter().map(|b| b.min_time).min(),
            max_time_ms: blocks.iter().map(|b| b.max_time).max(),
        };
        self.save(rec.clone())?;
        move_blocks(out_dir, self.tsdb, &rec.blocks)?;
        rec.status = Status::Done;
        self.save(rec.clone())?;
        Ok(Outcome::Imported {
            blocks: rec.blocks,
            samples: rec.samples,
            min_time_ms: rec.min_time_ms,
            max_time_ms: rec.max_time_ms,
        })
    }

    fn save(&self, rec: Record) -> Result<()> {
        let mut st = self.state.lock().expect("no panics while held");
        st.put(rec);
        st.save(self.state_path)
    }
}

/// Checks size and checksum against the manifest and returns the plain OpenMetrics file for
/// promtool: the shard itself, or (for `.gz`) its text decompressed into `work` while hashing.
/// `Ok(Err(reason))` when the shard does not match its manifest entry.
fn verify_and_open(src: &Path, e: &ShardEntry, work: &Path) -> Result<Result<PathBuf, String>> {
    let f = match fs::File::open(src) {
        Ok(f) => f,
        Err(err) => return Ok(Err(format!("cannot open {}: {err}", src.display()))),
    };
    let len = f.metadata()?.len();
    if len != e.bytes {
        return Ok(Err(format!(
            "{len} bytes, the manifest says {} (truncated or changed?)",
            e.bytes
        )));
    }
    let mut hashed = HashingReader {
        inner: io::BufReader::with_capacity(1 << 16, f),
        hash: Sha256::new(),
    };
    let target;
    if e.file.ends_with(".gz") {
        target = work.join("shard.om");
        let mut out = io::BufWriter::with_capacity(
            1 << 16,
            fs::File::create(&target).with_context(|| format!("{}", target.display()))?,
        );
        let mut dec = flate2::read::MultiGzDecoder::new(&mut hashed);
        let copied = copy_apart(&mut dec, &mut out);
        drop(dec);
        // Hash what the decoder left unread, so the checksum covers the whole file.
        io::copy(&mut hashed, &mut io::sink())?;
        let sum = hex(hashed.hash.finalize_reset());
        if sum != e.sha256 {
            return Ok(Err(checksum_mismatch(&sum, &e.sha256)));
        }
        let staging_write = |err: io::Error| {
            anyhow::Error::new(err).context(format!(
                "cannot write the decompressed shard into the staging dir ({})",
                target.display()
            ))
        };
        let n = match copied {
            Ok(n) => n,
            Err(Copy::Read(err)) => return Ok(Err(format!("not valid gzip: {err}"))),
            Err(Copy::Write(err)) => return Err(staging_write(err)),
        };
        io::Write::flush(&mut out).map_err(staging_write)?;
        if n != e.uncompressed_bytes {
            return Ok(Err(format!(
                "{n} bytes of OpenMetrics inside, the manifest says {}",
                e.uncompressed_bytes
            )));
        }
    } else {
        target = src.to_path_buf();
        io::copy(&mut hashed, &mut io::sink())?;
        let sum = hex(hashed.hash.finalize_reset());
        if sum != e.sha256 {
            return Ok(Err(checksum_mismatch(&sum, &e.sha256)));
        }
    }
    Ok(Ok(target))
}

/// Which side of a copy failed: a bad gzip stream is the shard's fault, a failed write (a full
/// disk) is the machine's.
enum Copy {
    Read(io::Error),
    Write(io::Error),
}

fn copy_apart(r: &mut impl Read, w: &mut impl io::Write) -> Result<u64, Copy> {
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let got = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        w.write_all(&buf[..got]).map_err(Copy::Write)?;
        n += got as u64;
    }
}

/// Whether the error is a full disk or an exhausted quota somewhere in its chain.
pub fn is_no_space(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .and_then(|io| io.raw_os_error())
            .is_some_and(|code| code == libc::ENOSPC || code == libc::EDQUOT)
    })
}

fn checksum_mismatch(got: &str, want: &str) -> String {
    format!("checksum mismatch: sha256 {got}, the manifest says {want} (corrupted or changed)")
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn hex(bytes: impl AsRef<[u8]>) -> String {
    bytes.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_relative_paths() {
        assert!(is_plain_relative("a.om.gz"));
        assert!(is_plain_relative("sub/a.om"));
        assert!(!is_plain_relative("../a.om"));
        assert!(!is_plain_relative("/etc/passwd"));
        assert!(!is_plain_relative("./a.om"));
        assert!(!is_plain_relative(""));
    }

    fn entry(file: &str, content: &[u8]) -> ShardEntry {
        ShardEntry {
            file: file.into(),
            bytes: content.len() as u64,
            sha256: crate::format::shard_dir::sha256_hex(content).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn verify_gz_and_plain_and_refuse_changes() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let text = b"a 1 1\n# EOF\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        fs::write(dir.path().join("s.om.gz"), &gz).unwrap();
        fs::write(dir.path().join("s.om"), text).unwrap();
        let mut e = entry("s.om.gz", &gz);
        e.uncompressed_bytes = text.len() as u64;
        let work = tempfile::tempdir().unwrap();
        let p = verify_and_open(&dir.path().join("s.om.gz"), &e, work.path())
            .unwrap()
            .unwrap();
        assert_eq!(fs::read(p).unwrap(), text);
        let e2 = entry("s.om", text);
        let p = verify_and_open(&dir.path().join("s.om"), &e2, work.path())
            .unwrap()
            .unwrap();
        assert_eq!(p, dir.path().join("s.om"));

        let mut changed = gz.clone();
        let mid = changed.len() / 2;
        changed[mid] ^= 1;
        fs::write(dir.path().join("s.om.gz"), &changed).unwrap();
        let why = verify_and_open(&dir.path().join("s.om.gz"), &e, work.path())
            .unwrap()
            .unwrap_err();
        assert!(why.contains("checksum mismatch"), "{why}");
        fs::write(dir.path().join("s.om.gz"), &gz[..gz.len() - 1]).unwrap();
        let why = verify_and_open(&dir.path().join("s.om.gz"), &e, work.path())
            .unwrap()
            .unwrap_err();
        assert!(why.contains("bytes, the manifest says"), "{why}");
    }

    #[test]
    fn bad_manifests_are_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let code = |e: anyhow::Error| crate::exit_codes::ExitCode::of(&e).code();
        assert_eq!(code(load_manifest(dir.path()).unwrap_err()), 2);
        fs::write(dir.path().join(MANIFEST_FILE), b"{").unwrap();
        assert_eq!(code(load_manifest(dir.path()).unwrap_err()), 2);
        let mut m = Manifest::default();
        m.shards.push(entry("../x.om", b""));
        fs::write(
            dir.path().join(MANIFEST_FILE),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        assert_eq!(code(load_manifest(dir.path()).unwrap_err()), 2);
    }
}
