//! Checks a shard directory without importing it: the manifest, every shard's size, checksum and
//! OpenMetrics validity, and that the counts and windows the manifest claims are what the shards
//! hold. `import` can then trust the directory; a user can check a copy before shipping it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::format::shard_dir::{window_problems, QuotedNames, ShardDir, ShardReport, Totals};
use crate::pipeline::atomic_file;

/// The outcome for a whole directory.
#[derive(Clone, Debug)]
pub struct Report {
    pub dir: PathBuf,
    /// One entry per shard, in manifest order.
    pub files: Vec<ShardReport>,
    /// Problems of the directory as a whole (totals, unlisted or repeated files), each naming
    /// the file concerned.
    pub problems: Vec<String>,
    /// The manifest's totals, for the summary.
    pub totals: Totals,
    /// The manifest's count of series with quoted names (`None` from older versions).
    pub quoted_names: Option<QuotedNames>,
    /// What the export lacks of its source (the manifest's `losses`): said, not a problem.
    pub losses: Vec<crate::format::shard_dir::Loss>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problem_count() == 0
    }

    pub fn problem_count(&self) -> usize {
        self.problems.len() + self.files.iter().map(|f| f.problems.len()).sum::<usize>()
    }
}

/// Verifies the shard directory `dir`. Fails only when there is nothing to verify (not a
/// directory, no manifest or one that does not parse: bad input, as in `import`; an unreadable
/// manifest: an error naming it); every other problem goes into the report. Shards are checked
/// in parallel, each read once.
pub fn verify_dir(dir: &Path) -> anyhow::Result<Report> {
    let sd = ShardDir::open(dir)?;
    let problems = dir_problems(&sd);
    let n = sd.manifest().shards.len();
    let mut files: Vec<ShardReport> = (0..n)
        .into_par_iter()
        .map(|i| sd.shard(i).check())
        .collect();
    if sd.has_side_files() {
        let windows: BTreeSet<i64> = sd
            .manifest()
            .shards
            .iter()
            .map(|e| e.window_start_ms)
            .collect();
        for w in windows {
            for (i, p) in window_problems(sd.manifest(), w, |i| &files[i].hashes) {
                files[i].problems.push(p);
            }
        }
    }
    let m = sd.manifest();
    let mut problems = problems;
    problems.extend(histogram_split(&sd, &files));
    Ok(Report {
        dir: dir.to_path_buf(),
        files,
        problems,
        totals: m.totals.clone(),
        quoted_names: m.quoted_names.clone(),
        losses: m.losses.clone(),
    })
}

/// The manifest's histogram totals against what the side files hold, samples and markers apart
/// (the manifest lists only their sum per file). Checked when every shard read cleanly: else its
/// problems say more.
fn histogram_split(sd: &ShardDir, files: &[ShardReport]) -> Vec<String> {
    if !files.iter().all(ShardReport::is_ok) {
        return Vec::new();
    }
    let t = &sd.manifest().totals;
    let path = sd.path().join(crate::format::shard_dir::MANIFEST_FILE);
    let read = |f: fn(&ShardReport) -> u64| files.iter().map(f).sum::<u64>();
    let mut problems = Vec::new();
    for (what, total, held) in [
        (
            "histogram_samples",
            t.histogram_samples,
            read(|f| f.histogram_samples),
        ),
        (
            "histogram_stale_markers",
            t.histogram_stale_markers,
            read(|f| f.histogram_stale_markers),
        ),
    ] {
        if total != held {
            problems.push(format!(
                "{}: totals.{what} is {total}, the side files hold {held}",
                path.display()
            ));
        }
    }
    problems
}

/// Problems of the directory as a whole ([`ShardDir::problems`]), and temporary files of
/// prom2om runs in it: what `verify` and `import` report before reading a shard.
pub fn dir_problems(sd: &ShardDir) -> Vec<String> {
    let mut problems = sd.problems();
    let names: Vec<String> = match std::fs::read_dir(sd.path()) {
        Ok(entries) => entries
            .filter_map(|d| d.ok())
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .collect(),
        // Said by the listing check already.
        Err(_) => Vec::new(),
    };
    problems.extend(check_unfinished(sd.path(), &names));
    problems
}

/// Temporary files of prom2om runs: what is there is not (yet) the finished output.
fn check_unfinished(dir: &Path, names: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut temps: Vec<(&String, u32)> = names
        .iter()
        .filter_map(|n| atomic_file::temp_name_pid(n).map(|pid| (n, pid)))
        .collect();
    temps.sort();
    for (n, pid) in temps {
        let whose = if atomic_file::is_alive(pid) {
            format!("of the prom2om run {pid}, still running")
        } else {
            format!("left by a prom2om run (PID {pid}) that was killed; the next run into the directory removes it")
        };
        problems.push(format!(
            "{}: temporary file {whose}, not part of the output",
            dir.join(n).display()
        ));
    }
    problems
}
