//! Checks a shard directory without importing it: the manifest, every shard's size, checksum and
//! OpenMetrics validity, and that the counts and windows the manifest claims are what the shards
//! hold. `import` can then trust the directory; a user can check a copy before shipping it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::bad_input;
use crate::format::openmetrics::{self, ReadStats};
use crate::pipeline::atomic_file;
use crate::pipeline::manifest::{sha256_hex, Manifest, ShardEntry};

/// The outcome for one shard the manifest lists.
#[derive(Clone, Debug)]
pub struct FileReport {
    /// The file name, as the manifest gives it.
    pub file: String,
    /// What the reader saw, when the file could be read and is valid OpenMetrics.
    pub stats: Option<ReadStats>,
    /// Everything wrong with the file; empty when it is fine.
    pub problems: Vec<String>,
}

/// The outcome for a whole directory.
#[derive(Clone, Debug)]
pub struct Report {
    pub dir: PathBuf,
    /// One entry per shard, in manifest order.
    pub files: Vec<FileReport>,
    /// Problems of the directory as a whole (totals, unlisted or repeated files), each naming
    /// the file concerned.
    pub problems: Vec<String>,
    /// The manifest's totals, for the summary.
    pub totals: crate::pipeline::manifest::Totals,
    /// The manifest's count of series with quoted names (`None` from older versions).
    pub quoted_names: Option<crate::pipeline::manifest::QuotedNames>,
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
/// directory, or no manifest: bad input, as in `import`; an unreadable manifest: an error
/// naming it); every other problem goes into the report. Shards are checked in parallel, each read whole into memory.
pub fn verify_dir(dir: &Path) -> anyhow::Result<Report> {
    let mut report = verify_listing(dir)?;
    let manifest = Manifest::load(dir)?;
    report.files = manifest
        .shards
        .par_iter()
        .map(|e| verify_shard(dir, manifest.compressed, e))
        .collect();
    Ok(report)
}

/// [`verify_dir`] without reading the shards (`files` is empty): the manifest, its totals and
/// the directory listing. `import` then verifies each shard with [`verify_shard_with`].
pub fn verify_listing(dir: &Path) -> anyhow::Result<Report> {
    if !dir.is_dir() {
        return Err(bad_input!("{}: not a directory", dir.display()));
    }
    let path = dir.join(crate::pipeline::manifest::MANIFEST_FILE);
    if !path.is_file() {
        return Err(bad_input!(
            "{}: no manifest: DIR must be a shard directory written by `prom2om convert -o` or \
             `prom2om fetch -o` (a directory without it is an unfinished run)",
            path.display()
        ));
    }
    let manifest = Manifest::load(dir)?;
    let mut problems = check_totals(dir, &manifest);
    problems.extend(check_listing(dir, &manifest));
    Ok(Report {
        dir: dir.to_path_buf(),
        files: Vec::new(),
        problems,
        totals: manifest.totals,
        quoted_names: manifest.quoted_names,
    })
}

fn verify_shard(dir: &Path, compressed: bool, e: &ShardEntry) -> FileReport {
    verify_shard_with(dir, compressed, e, &mut |_| Ok(()))
}

/// Every check `verify` makes of one shard, handing each sample to `on_sample` as the shard is
/// read: `import` builds its block in the same pass. An error of `on_sample` is a problem of the
/// shard (its message stands as it is).
pub fn verify_shard_with(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    on_sample: &mut dyn FnMut(&openmetrics::Sample<'_>) -> anyhow::Result<()>,
) -> FileReport {
    let mut problems = Vec::new();
    let stats = check_shard(dir, compressed, e, &mut problems, on_sample);
    FileReport {
        file: e.file.clone(),
        stats,
        problems,
    }
}

/// Every check of one shard; returns the reader's stats when the content parses.
fn check_shard(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    problems: &mut Vec<String>,
    on_sample: &mut dyn FnMut(&openmetrics::Sample<'_>) -> anyhow::Result<()>,
) -> Option<ReadStats> {
    if !is_plain_file_name(&e.file) {
        problems.push("the manifest names a path, not a file of the directory".into());
        return None;
    }
    let ext = if compressed { ".om.gz" } else { ".om" };
    if !e.file.ends_with(ext) {
        problems.push(format!("name does not end in {ext}, as the manifest says"));
    }
    if e.window_end_ms <= e.window_start_ms {
        problems.push(format!(
            "empty window [{}, {}) in the manifest",
            e.window_start_ms, e.window_end_ms
        ));
    }
    let raw = match std::fs::read(dir.join(&e.file)) {
        Ok(raw) => raw,
        Err(err) => {
            problems.push(format!("cannot read: {err}"));
            return None;
        }
    };
    if raw.len() as u64 != e.bytes {
        problems.push(mismatch("size in bytes", raw.len(), e.bytes));
    }
    let sum = sha256_hex(&raw[..]).expect("reading a slice cannot fail");
    if sum != e.sha256 {
        problems.push(mismatch("sha256", sum, &e.sha256));
    }
    let text: Cow<[u8]> = if compressed {
        // Sized once from the manifest (growing by doubling costs copies and page faults),
        // within what deflate can expand to (1032:1), whatever the manifest claims.
        let size = e.uncompressed_bytes.min(raw.len() as u64 * 1032 + 64);
        let mut text = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        match flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut text) {
            Ok(_) => Cow::Owned(text),
            Err(err) => {
                problems.push(format!("not valid gzip: {err}"));
                return None;
            }
        }
    } else {
        Cow::Borrowed(&raw)
    };
    if text.len() as u64 != e.uncompressed_bytes {
        problems.push(mismatch(
            "uncompressed size",
            text.len(),
            e.uncompressed_bytes,
        ));
    }
    let window = e.window_start_ms..e.window_end_ms;
    let mut outside: u64 = 0;
    let mut first_outside = None;
    let mut refused = None;
    let result = openmetrics::read(&text, |s| {
        if !window.contains(&s.ts_ms) {
            outside += 1;
            first_outside.get_or_insert((s.line, s.ts_ms));
        }
        on_sample(&s).map_err(|err| {
            let msg = format!("{err:#}");
            refused = Some(msg.clone());
            anyhow::anyhow!(msg)
        })
    });
    if let Some((line, ts)) = first_outside {
        problems.push(format!(
            "{outside} sample(s) outside the window [{}, {}), the first at line {line} (ts {ts} ms)",
            window.start, window.end
        ));
    }
    let stats = match result {
        Ok(stats) => stats,
        Err(err) => {
            problems.push(refused.unwrap_or_else(|| format!("invalid OpenMetrics: {err:#}")));
            return None;
        }
    };
    compare_counts(e, &stats, problems);
    Some(stats)
}

fn compare_counts(e: &ShardEntry, st: &ReadStats, problems: &mut Vec<String>) {
    if st.series != e.series {
        problems.push(mismatch("series", st.series, e.series));
    }
    if st.samples != e.samples {
        problems.push(mismatch("samples", st.samples, e.samples));
    }
    if let (Some(min), Some(max)) = (st.min_ts_ms, st.max_ts_ms) {
        if min != e.min_ts_ms {
            problems.push(mismatch("min timestamp (ms)", min, e.min_ts_ms));
        }
        if max != e.max_ts_ms {
            problems.push(mismatch("max timestamp (ms)", max, e.max_ts_ms));
        }
    }
}

fn mismatch(what: &str, found: impl std::fmt::Display, manifest: impl std::fmt::Display) -> String {
    format!("{what} is {found}, the manifest says {manifest}")
}

/// A name that stays inside the directory: no separators, not `.` or `..`.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
}

/// The manifest's totals against the sum of its entries.
fn check_totals(dir: &Path, m: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let t = &m.totals;
    let path = dir.join(crate::pipeline::manifest::MANIFEST_FILE);
    let mut check = |what: &str, total: u64, sum: u64| {
        if total != sum {
            problems.push(format!(
                "{}: totals.{what} is {total}, the shards add up to {sum}",
                path.display()
            ));
        }
    };
    check("shards", t.shards, m.shards.len() as u64);
    check(
        "samples",
        t.samples,
        m.shards.iter().map(|e| e.samples).sum(),
    );
    check("bytes", t.bytes, m.shards.iter().map(|e| e.bytes).sum());
    check(
        "uncompressed_bytes",
        t.uncompressed_bytes,
        m.shards.iter().map(|e| e.uncompressed_bytes).sum(),
    );
    let nonempty = || m.shards.iter().filter(|e| e.samples > 0);
    let min = nonempty().map(|e| e.min_ts_ms).min();
    let max = nonempty().map(|e| e.max_ts_ms).max();
    for (what, total, from_shards) in [
        ("min_ts_ms", t.min_ts_ms, min),
        ("max_ts_ms", t.max_ts_ms, max),
    ] {
        if total != from_shards {
            problems.push(format!(
                "{}: totals.{what} is {total:?}, the shards say {from_shards:?}",
                path.display()
            ));
        }
    }
    // A series spans windows, so the distinct total lies between the largest shard and the sum.
    let (max, sum) = m
        .shards
        .iter()
        .fold((0, 0), |(mx, sm), e| (mx.max(e.series), sm + e.series));
    if t.series < max || t.series > sum {
        problems.push(format!(
            "{}: totals.series is {}, but the shards hold between {max} and {sum} distinct series",
            path.display(),
            t.series
        ));
    }
    problems
}

/// Files listed twice, and shard files in the directory that the manifest does not list.
fn check_listing(dir: &Path, m: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let mut listed = HashSet::new();
    for e in &m.shards {
        if !listed.insert(e.file.as_str()) {
            problems.push(format!(
                "{}: listed more than once in the manifest",
                dir.join(&e.file).display()
            ));
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(format!("{}: cannot list: {err}", dir.display()));
            return problems;
        }
    };
    let names: Vec<String> = entries
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    let mut unlisted: Vec<&String> = names
        .iter()
        .filter(|n| (n.ends_with(".om") || n.ends_with(".om.gz")) && !listed.contains(n.as_str()))
        .collect();
    unlisted.sort();
    for n in unlisted {
        problems.push(format!(
            "{}: shard file not listed in the manifest",
            dir.join(n).display()
        ));
    }
    problems.extend(check_unfinished(dir, &names));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_stay_inside_the_directory() {
        assert!(is_plain_file_name("w0-1.om.gz"));
        for bad in ["", ".", "..", "../x.om", "/etc/x.om", "a/b.om", "a\\b.om"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn totals_must_be_the_sum_of_the_shards() {
        let e = |samples, min, max| ShardEntry {
            series: 1,
            samples,
            min_ts_ms: min,
            max_ts_ms: max,
            bytes: 10,
            ..ShardEntry::default()
        };
        let mut m = Manifest {
            shards: vec![e(2, 5, 9), e(0, 0, 0), e(1, 1, 3)],
            totals: crate::pipeline::manifest::Totals {
                shards: 3,
                series: 3,
                samples: 3,
                bytes: 30,
                uncompressed_bytes: 0,
                min_ts_ms: Some(1),
                max_ts_ms: Some(9),
            },
            ..Manifest::default()
        };
        assert_eq!(check_totals(Path::new("d"), &m), Vec::<String>::new());
        m.totals.bytes = 31;
        m.totals.min_ts_ms = Some(0);
        assert_eq!(
            check_totals(Path::new("d"), &m),
            [
                "d/manifest.json: totals.bytes is 31, the shards add up to 30",
                "d/manifest.json: totals.min_ts_ms is Some(0), the shards say Some(1)",
            ]
        );
    }
}
