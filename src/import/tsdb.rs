//! `import --tsdb`: a shard directory into a Prometheus data dir. Each shard is read once, checked
//! against the manifest in that read, written as a block by prom2om's block writer (or backfilled
//! by `promtool` with `--promtool`) into its own staging dir (several at once), its blocks
//! counted, and only then are the whole block dirs renamed into the data dir.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::blocks::{move_blocks, read_blocks, BlockMeta};
use super::home_version::{self, Home};
use super::outcome::{Destination, Outcome, Progress, ShardResult, Summary};
use super::promtool::Promtool;
use super::state::{self, ImportState, Record, StateFile, Status};
use super::window_gate::WindowGate;
use super::{build, lock};
use crate::format::shard_dir::{Manifest, SeriesHashes, ShardDir, ShardEntry};
use crate::format::tsdb::block_writer::HistogramStats;

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

/// Imports the shards of `dir` into the data dir `tsdb`.
///
/// Errors are for the run as a whole (missing promtool, data dir in use: plain). A shard that
/// fails is an [`Outcome::Failed`] in the summary and stops nothing else.
pub fn import(
    dir: &ShardDir,
    tsdb: &Path,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Summary> {
    let started = Instant::now();
    let manifest = dir.manifest();
    let promtool = match &opts.promtool {
        Some(path) => {
            let p = Promtool::detect(path)?;
            p.check_quoted_names(manifest.quoted_names.as_ref(), dir.path())?;
            Some(p)
        }
        None => None,
    };
    // Who will read the blocks: the histograms of the shards are checked against it before
    // anything is written, and each shard's again before its blocks move in.
    let home = match promtool {
        None => home_version::of_data_dir(tsdb),
        Some(_) => None,
    };
    refuse_unreadable_histograms(dir, home.as_ref())?;
    let (staging, _guard) = open_staging(tsdb, opts.force, progress)?;
    let state_path = staging.join(state::STATE_FILE);
    let mut st = ImportState::load(&state_path)?;
    let recovered = recover_moves(&mut st, &staging, tsdb, &state_path)?;
    clean_staging(&staging)?;

    progress.verifying(manifest.shards.len() as u64);
    let warnings = warnings(dir, promtool.is_some());
    let (mut results, todo) = plan(manifest, &st, &recovered);
    for r in results.iter().flatten() {
        progress.finished(r);
    }
    let todo_samples = todo.iter().map(|&i| manifest.shards[i].samples).sum();
    progress.planned(todo.len() as u64, todo_samples);
    let (gate, hash_only) = match WindowGate::new(dir, &todo) {
        Some((gate, extra)) => (Some(Mutex::new(gate)), extra),
        None => (None, Vec::new()),
    };
    let job = Job {
        dir,
        tsdb,
        staging: &staging,
        promtool: promtool.as_ref(),
        home,
        block_duration_ms: manifest.block_duration_ms,
        state: Mutex::new(st),
        state_path: &state_path,
        no_space: AtomicBool::new(false),
        gate,
        held: Mutex::new(HashMap::new()),
        histograms: Mutex::new(HashMap::new()),
    };
    for r in job.run_all(&todo, &hash_only, opts.jobs, progress) {
        let i = r.index;
        results[i] = Some(r);
    }
    let no_space = job.no_space.load(Ordering::Relaxed);
    let mut warnings = warnings;
    warnings.extend(job.unchecked_histograms(&results));
    drop(job);
    Ok(Summary {
        results: results
            .into_iter()
            .map(|r| r.expect("every shard has a result"))
            .collect(),
        warnings,
        destination: Destination::Blocks { staging, no_space },
        elapsed: started.elapsed(),
    })
}

/// Refuses the import, before anything is written, when the home Prometheus is known and too
/// old for the kinds of native histogram the shards' side files hold (read for it only then:
/// a home that reads every kind needs no look).
fn refuse_unreadable_histograms(dir: &ShardDir, home: Option<&Home>) -> Result<()> {
    let t = &dir.manifest().totals;
    let Some(home) = home else {
        return Ok(());
    };
    if t.histogram_samples + t.histogram_stale_markers == 0
        || home_version::reads_every_kind(home.version)
    {
        return Ok(());
    }
    let kinds = home_version::kinds(dir);
    if let Some(why) = home_version::refusal(home, &kinds, "the shards'") {
        bail!("{why}. Nothing was imported");
    }
    Ok(())
}

/// Creates the data dir and its staging area (refused when another process uses the data dir,
/// unless `force`) and takes the staging lock.
fn open_staging(
    tsdb: &Path,
    force: bool,
    progress: &dyn Progress,
) -> Result<(PathBuf, crate::pipeline::run_lock::RunLock)> {
    fs::create_dir_all(tsdb)
        .with_context(|| format!("{}: cannot create the data dir", tsdb.display()))?;
    if !force {
        refuse_if_in_use(tsdb, progress)?;
    }
    let staging = tsdb.join(STAGING_DIR);
    fs::create_dir_all(&staging)
        .with_context(|| format!("{}: cannot create the staging dir", staging.display()))?;
    let guard = crate::pipeline::run_lock::acquire(
        &staging.join(STAGING_LOCK),
        &format!("the import staging dir {}", staging.display()),
    )?;
    Ok((staging, guard))
}

/// What is said before the shards: the directory's problems as a whole, and the staleness
/// markers promtool's path cannot carry.
fn warnings(dir: &ShardDir, promtool: bool) -> Vec<String> {
    let mut warnings = crate::verify::dir_problems(dir);
    let markers = dir.manifest().totals.stale_markers;
    if promtool && markers > 0 {
        // Loss must be said: OpenMetrics, hence promtool's backfill, has no staleness marker.
        warnings.push(format!(
            "{markers} staleness markers in the shards' sidecars are not imported: promtool's \
             backfill cannot write staleness markers, so those series stay on graphs up to 5 \
             minutes after they ended (prometheus --query.lookback-delta); import without \
             --promtool, or --remote-write, carries them"
        ));
    }
    let t = &dir.manifest().totals;
    let hist = t.histogram_samples + t.histogram_stale_markers;
    if promtool && hist > 0 {
        warnings.push(format!(
            "{hist} native histogram samples (markers included) in the shards' side files are \
             not imported: promtool's backfill reads OpenMetrics 1.0, which has no native \
             histograms"
        ));
    }
    warnings
}

/// Refuses a data dir another process uses, or a Prometheus that may (its data dir cannot be
/// told); says what could not be checked.
fn refuse_if_in_use(tsdb: &Path, progress: &dyn Progress) -> Result<()> {
    let found = lock::check(tsdb)
        .with_context(|| format!("{}: cannot check who uses it", tsdb.display()))?;
    if let Some(h) = found.holder {
        bail!(
            "{} is in use: {h}. Stop Prometheus first, or pass --force to add the blocks anyway \
             (a running server loads new blocks at its next reload, within a minute)",
            tsdb.display()
        );
    }
    if let Some(u) = found.unseen.iter().find(|u| u.prometheus) {
        bail!(
            "cannot tell whether {} is in use: process {} runs `{}`, a Prometheus whose data dir \
             cannot be told from here (its open files and working directory are readable only by \
             its user and root, and its --storage.tsdb.path is relative or not given). Run the \
             import as root or as that user to check, or stop that Prometheus; pass --force if \
             it does not use this dir",
            tsdb.display(),
            u.pid,
            u.command
        );
    }
    if let Some(u) = found.unseen.first() {
        progress.warn(&format!(
            "could not check {} processes of other users (such as {} `{}`) for files open in {}: \
             their /proc/PID/fd is readable only by their user and root. None of them runs a \
             Prometheus; run the import as root for a complete check",
            found.unseen.len(),
            u.pid,
            u.command,
            tsdb.display()
        ));
    }
    if found.no_proc {
        progress.warn(&format!(
            "could not list /proc, so only {}/lock was checked (a Prometheus takes it only with \
             --storage.tsdb.use-lockfile): make sure no Prometheus uses {} while importing",
            tsdb.display(),
            tsdb.display()
        ));
    }
    Ok(())
}

/// The results known before any job (shards imported by earlier runs) and the manifest indices
/// still to import.
fn plan(
    manifest: &Manifest,
    st: &ImportState,
    recovered: &[Record],
) -> (Vec<Option<ShardResult>>, Vec<usize>) {
    let mut results = vec![None; manifest.shards.len()];
    let mut todo = Vec::new();
    for (i, e) in manifest.shards.iter().enumerate() {
        let key = state::key(&e.file, &e.sha256);
        if let Some(r) = recovered.iter().find(|r| r.key() == key) {
            let blocks = r.blocks.clone();
            results[i] = Some(result(i, e, Outcome::Recovered { blocks }));
        } else if st.is_done(&key) {
            results[i] = Some(result(i, e, Outcome::Skipped));
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

/// Finishes the block moves an interrupted run left in `Moving` state; returns those records.
fn recover_moves(
    st: &mut ImportState,
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
    dir: &'a ShardDir,
    tsdb: &'a Path,
    staging: &'a Path,
    /// `None`: prom2om writes the blocks itself.
    promtool: Option<&'a Promtool>,
    /// The Prometheus that will read the blocks, when known.
    home: Option<Home>,
    block_duration_ms: i64,
    state: Mutex<ImportState>,
    state_path: &'a Path,
    /// Set when a shard failed for want of disk space.
    no_space: AtomicBool,
    /// In a directory with side files: the check across each window's shards, which the staged
    /// shards of a window wait for in `held`.
    gate: Option<Mutex<WindowGate>>,
    held: Mutex<HashMap<usize, Step>>,
    /// The native histograms of each shard's block, by kind.
    histograms: Mutex<HashMap<usize, HistogramStats>>,
}

/// What a shard's blocks hold, checked before they move: in the manifest's words.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    samples: u64,
    /// Float staleness markers.
    markers: u64,
    /// Native histogram samples, and their staleness markers.
    histograms: u64,
    histogram_markers: u64,
}

/// A shard's blocks, built in its work dir, and what they hold.
struct Built {
    blocks: Vec<BlockMeta>,
    held: Held,
}

/// Where a shard stands after its read.
enum Step {
    /// Its blocks wait in its work dir (`staging/<work_name>/blocks`).
    Staged {
        work_name: String,
        blocks: Vec<BlockMeta>,
        held: Held,
    },
    /// Nothing of it waits: its outcome (a refusal, a failure).
    Done(Outcome),
}

impl Job<'_> {
    /// Runs the shards `todo` (manifest indices), and reads the shards `hash_only` for the check
    /// across their windows, on `jobs` threads, each running one shard (or promtool) at a time;
    /// a shard's failure is its result, never the others'.
    fn run_all(
        &self,
        todo: &[usize],
        hash_only: &[usize],
        jobs: usize,
        progress: &dyn Progress,
    ) -> Vec<ShardResult> {
        let mut work: Vec<(usize, bool)> = todo.iter().map(|&i| (i, true)).collect();
        work.extend(hash_only.iter().map(|&i| (i, false)));
        // Manifest order, so the windows complete one after the other.
        work.sort_unstable();
        let next = AtomicUsize::new(0);
        let done = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..jobs.clamp(1, work.len().max(1)) {
                s.spawn(|| {
                    while let Some(&(i, import)) = work.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if import {
                            self.run_one(i, progress, &done);
                        } else {
                            let r = self.dir.shard(i).check();
                            self.through_gate(i, r.hashes, progress, &done);
                        }
                    }
                });
            }
        });
        done.into_inner().expect("threads joined")
    }

    /// Reads, checks and stages shard `i`, then moves its blocks into the data dir: at once, or
    /// once its window has been read whole.
    fn run_one(&self, i: usize, progress: &dyn Progress, done: &Mutex<Vec<ShardResult>>) {
        let mut hashes = SeriesHashes::default();
        let step = self
            .stage(i, &mut hashes)
            .unwrap_or_else(|err| Step::Done(Outcome::Failed(self.failure(&err))));
        if self.gate.is_none() {
            return self.settle(i, step, &[], progress, done);
        }
        self.held
            .lock()
            .expect("no panics while held")
            .insert(i, step);
        self.through_gate(i, hashes, progress, done);
    }

    /// Records the read of shard `i` at the gate; the last shard of a window settles the
    /// window's held shards, each refused by a problem of the window that names it.
    fn through_gate(
        &self,
        i: usize,
        hashes: SeriesHashes,
        progress: &dyn Progress,
        done: &Mutex<Vec<ShardResult>>,
    ) {
        let m = self.dir.manifest();
        let gate = self.gate.as_ref().expect("only with a gate");
        let Some(problems) = gate
            .lock()
            .expect("no panics while held")
            .read(m, i, hashes)
        else {
            return;
        };
        let window = m.shards[i].window_start_ms;
        let waiting: Vec<(usize, Step)> = {
            let mut held = self.held.lock().expect("no panics while held");
            let mine: Vec<usize> = held
                .keys()
                .copied()
                .filter(|&j| m.shards[j].window_start_ms == window)
                .collect();
            mine.into_iter()
                .map(|j| (j, held.remove(&j).expect("listed")))
                .collect()
        };
        for (j, step) in waiting {
            let of_j: Vec<&str> = problems
                .iter()
                .filter(|(k, _)| *k == j)
                .map(|(_, p)| p.as_str())
                .collect();
            self.settle(j, step, &of_j, progress, done);
        }
    }

    /// The outcome of a shard after its read (and its window's check): its staged blocks moved
    /// into the data dir, or removed when `problems` refuse it.
    fn settle(
        &self,
        i: usize,
        step: Step,
        problems: &[&str],
        progress: &dyn Progress,
        done: &Mutex<Vec<ShardResult>>,
    ) {
        let work_dir = |name: &str| self.staging.join(name);
        let outcome = match step {
            Step::Done(o) => o,
            Step::Staged { work_name, .. } if !problems.is_empty() => {
                match remove_dir_if_exists(&work_dir(&work_name)) {
                    Ok(()) => Outcome::Failed(format!("verify: {}", problems.join("; "))),
                    Err(err) => Outcome::Failed(self.failure(&err)),
                }
            }
            Step::Staged {
                work_name,
                blocks,
                held,
            } => {
                let e = &self.dir.manifest().shards[i];
                let moved = self
                    .commit(e, &work_name, blocks, held)
                    .context("moving the blocks into the data dir (the next run finishes the move)")
                    .and_then(|o| remove_dir_if_exists(&work_dir(&work_name)).map(|()| o));
                moved.unwrap_or_else(|err| Outcome::Failed(self.failure(&err)))
            }
        };
        // promtool says so in Go's words when its blocks do not fit.
        if matches!(&outcome, Outcome::Failed(why) if why.contains("no space left on device")) {
            self.no_space.store(true, Ordering::Relaxed);
        }
        let r = result(i, &self.dir.manifest().shards[i], outcome);
        progress.samples_done(r.expected_samples);
        progress.finished(&r);
        done.lock().expect("no panics while held").push(r);
    }

    /// A failure of the machine, said; a full disk noted.
    fn failure(&self, err: &anyhow::Error) -> String {
        if is_no_space(err) {
            self.no_space.store(true, Ordering::Relaxed);
        }
        format!("{err:#}")
    }

    /// Reads and checks shard `i`, builds its blocks into its work dir and counts them. `Err`
    /// and `Done` leave nothing of it behind; `hashes` gets what its read gathered.
    fn stage(&self, i: usize, hashes: &mut SeriesHashes) -> Result<Step> {
        let work_name = format!("shard-{i}");
        let work = self.staging.join(&work_name);
        remove_dir_if_exists(&work)?;
        let out_dir = work.join("blocks");
        fs::create_dir_all(&out_dir)
            .with_context(|| format!("{}: cannot create", out_dir.display()))?;
        match self.backfill(i, &work, &out_dir, hashes) {
            Ok(Ok(Built { blocks, held })) => Ok(Step::Staged {
                work_name,
                blocks,
                held,
            }),
            Ok(Err(refused)) => {
                remove_dir_if_exists(&work)?;
                Ok(Step::Done(refused))
            }
            Err(err) => {
                remove_dir_if_exists(&work)?;
                Err(err)
            }
        }
    }

    /// Reads and verifies the shard, builds its blocks and counts them: `Ok(Err(Failed))` is a
    /// shard that is refused, `Err` a failure of the machine.
    fn backfill(
        &self,
        i: usize,
        work: &Path,
        out_dir: &Path,
        hashes: &mut SeriesHashes,
    ) -> Result<Result<Built, Outcome>> {
        let files = self.dir.shard(i);
        let Some(promtool) = self.promtool else {
            return self.write_blocks(i, files, out_dir, hashes);
        };
        let e = &self.dir.manifest().shards[i];
        // promtool reads plain text: a gzip shard's text, from this one read, goes into the
        // work dir for it.
        let input = if self.dir.manifest().compressed {
            let target = work.join("shard.om");
            if let Some(text) = files.text().filter(|_| files.sound()) {
                fs::write(&target, text).map_err(|err| {
                    anyhow::Error::new(err).context(format!(
                        "cannot write the decompressed shard into the staging dir ({})",
                        target.display()
                    ))
                })?;
            }
            target
        } else {
            self.dir.path().join(&e.file)
        };
        let report = files.check();
        *hashes = report.hashes;
        if !report.problems.is_empty() {
            let why = format!("verify: {}", report.problems.join("; "));
            return Ok(Err(Outcome::Failed(why)));
        }
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
        let held = Held {
            samples,
            ..Held::default()
        };
        Ok(Ok(Built { blocks, held }))
    }

    /// The default path: prom2om's writer makes one block of the shard and its side files,
    /// which must hold the shard's samples, the side files' staleness markers and native
    /// histograms (markers included), each as many as the manifest says.
    fn write_blocks(
        &self,
        i: usize,
        files: crate::format::shard_dir::ShardFiles<'_>,
        out_dir: &Path,
        hashes: &mut SeriesHashes,
    ) -> Result<Result<Built, Outcome>> {
        // The head range promtool's backfill gives its writer, so chunks are cut alike.
        let duration = if self.block_duration_ms > 0 {
            self.block_duration_ms
        } else {
            2 * 3_600_000
        };
        let (report, block) = build::build(files, 2 * duration);
        *hashes = report.hashes;
        let Some(block) = block else {
            let why = format!("verify: {}", report.problems.join("; "));
            return Ok(Err(Outcome::Failed(why)));
        };
        let histograms = block.histograms();
        if let Some(why) = self.unreadable(&histograms) {
            return Ok(Err(Outcome::Failed(why)));
        }
        let e = &self.dir.manifest().shards[i];
        let held = Held {
            samples: e.samples,
            markers: report.stale_markers,
            histograms: report.histogram_samples,
            histogram_markers: report.histogram_stale_markers,
        };
        // Every histogram of the side files went in as one: the read checked their count
        // against the manifest.
        if histograms.samples != held.histograms + held.histogram_markers {
            return Ok(Err(Outcome::Failed(format!(
                "built a block holding {} native histogram samples, the side files hold {} and \
                 {} histogram staleness markers; nothing written",
                histograms.samples, held.histograms, held.histogram_markers
            ))));
        }
        self.histograms
            .lock()
            .expect("no panics while held")
            .insert(i, histograms);
        build::write_block(block, out_dir)?;
        let blocks = read_blocks(out_dir)?;
        let samples: u64 = blocks.iter().map(|b| b.stats.num_samples).sum();
        let side: u64 = e.sidecars.iter().map(|s| s.samples).sum();
        if samples != e.samples + side {
            return Ok(Err(Outcome::Failed(format!(
                "wrote {} block(s) holding {samples} samples, the manifest says {} and {side} \
                 in side files (staleness markers, native histograms); blocks not moved",
                blocks.len(),
                e.samples
            ))));
        }
        Ok(Ok(Built { blocks, held }))
    }

    /// Why the Prometheus at home cannot read these histograms, when it is known to be too old
    /// for them: the shard is then refused before anything of it is written.
    fn unreadable(&self, h: &HistogramStats) -> Option<String> {
        home_version::refusal(self.home.as_ref()?, h, "its")
    }

    /// What to say of the histograms imported when no Prometheus could be asked whether it
    /// reads them: the version they need.
    fn unchecked_histograms(&self, results: &[Option<ShardResult>]) -> Option<String> {
        if self.home.is_some() {
            return None;
        }
        let per_shard = self.histograms.lock().expect("no panics while held");
        let mut total = HistogramStats::default();
        for r in results.iter().flatten() {
            if matches!(r.outcome, Outcome::Imported { .. }) {
                total += per_shard.get(&r.index).copied().unwrap_or_default();
            }
        }
        let (need, what) = home_version::needed(&total)?;
        Some(format!(
            "the imported blocks hold {} native histogram samples: serve the data dir with \
             Prometheus {need} or newer, the first that reads {what} ({}); no Prometheus runs \
             on the data dir and none is on PATH to check",
            total.samples,
            home_version::MINIMUMS
        ))
    }

    /// Records the blocks as moving, renames them into the data dir, records the shard done.
    fn commit(
        &self,
        e: &ShardEntry,
        work_name: &str,
        blocks: Vec<BlockMeta>,
        held: Held,
    ) -> Result<Outcome> {
        let out_dir = self.staging.join(work_name).join("blocks");
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
        move_blocks(&out_dir, self.tsdb, &rec.blocks)?;
        rec.status = Status::Done;
        self.save(rec.clone())?;
        // The blocks hold the shard's samples and what its side files carry (checked before
        // they were moved; only the samples through promtool): counted apart, as the manifest
        // does.
        Ok(Outcome::Imported {
            blocks: rec.blocks,
            samples: held.samples,
            markers: held.markers,
            histograms: held.histograms,
            histogram_markers: held.histogram_markers,
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

/// Whether the error is a full disk or an exhausted quota somewhere in its chain.
pub fn is_no_space(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .and_then(|io| io.raw_os_error())
            .is_some_and(|code| code == libc::ENOSPC || code == libc::EDQUOT)
    })
}
