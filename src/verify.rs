//! Checks a shard directory without importing it: the manifest, every shard's size, checksum and
//! OpenMetrics validity, and that the counts and windows the manifest claims are what the shards
//! hold. `import` can then trust the directory; a user can check a copy before shipping it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::bad_input;
use crate::format::openmetrics::{self, ReadStats};
use crate::format::shard_dir;
use crate::format::shard_dir::{sha256_hex, Manifest, ShardEntry, Sidecar, SIDECAR_STALE_MARKERS};
use crate::labels::Labels;
use crate::pipeline::atomic_file;

/// The outcome for one shard the manifest lists.
#[derive(Clone, Debug)]
pub struct FileReport {
    /// The file name, as the manifest gives it.
    pub file: String,
    /// What the reader saw, when the file could be read and is valid OpenMetrics.
    pub stats: Option<ReadStats>,
    /// Everything wrong with the file or its sidecars; empty when it is fine.
    pub problems: Vec<String>,
    /// Staleness markers its sidecars hold (when they parse).
    pub stale_markers: u64,
    /// Shard hashes of the series in the shard and in its sidecars, for the window's check that
    /// each series is in the shard its hash names.
    hashes: SeriesHashes,
}

/// Shard hashes ([`shard_dir::series_hash`]) of the series of one shard: in the file, in sidecars.
#[derive(Clone, Debug, Default)]
struct SeriesHashes {
    shard: Vec<u64>,
    sidecar: Vec<(String, u64)>,
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
    pub totals: crate::format::shard_dir::Totals,
    /// The manifest's count of series with quoted names (`None` from older versions).
    pub quoted_names: Option<crate::format::shard_dir::QuotedNames>,
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
    let sidecars = manifest.shards.iter().any(|e| !e.sidecars.is_empty());
    let mut files: Vec<FileReport> = manifest
        .shards
        .par_iter()
        .map(|e| verify_shard(dir, manifest.compressed, e, sidecars, &mut |_| Ok(())))
        .collect();
    if sidecars {
        check_shard_hashes(&manifest, &mut files);
    }
    report.files = files;
    Ok(report)
}

/// [`verify_dir`] without reading the shards (`files` is empty): the manifest, its totals and
/// the listing. For a directory without sidecars (no check across shards) `import` then
/// verifies each shard with [`verify_shard_with`] in the read that builds its block.
pub fn verify_listing(dir: &Path) -> anyhow::Result<Report> {
    if !dir.is_dir() {
        return Err(bad_input!("{}: not a directory", dir.display()));
    }
    let path = dir.join(crate::format::shard_dir::MANIFEST_FILE);
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

/// Every check `verify` makes of one shard and its sidecars, each sample handed to `on_sample`
/// as the shard is read (an error of it is a problem of the shard, its message as it is). The
/// checks across shards of a directory with sidecars are [`verify_dir`]'s alone.
pub fn verify_shard_with(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    on_sample: &mut dyn FnMut(&openmetrics::Sample<'_>) -> anyhow::Result<()>,
) -> FileReport {
    verify_shard(dir, compressed, e, false, on_sample)
}

/// Checks one shard and its sidecars; `want_hashes`: gather the series hashes of the shard too.
fn verify_shard(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    want_hashes: bool,
    on_sample: &mut dyn FnMut(&openmetrics::Sample<'_>) -> anyhow::Result<()>,
) -> FileReport {
    let mut problems = Vec::new();
    let mut hashes = SeriesHashes::default();
    let mut markers = Markers::new();
    let mut stale_markers = 0;
    for sc in &e.sidecars {
        let mut p = Vec::new();
        if let Some(n) = check_sidecar(dir, compressed, e, sc, &mut markers, &mut hashes, &mut p) {
            stale_markers += n;
        }
        problems.extend(p.into_iter().map(|p| format!("sidecar {}: {p}", sc.file)));
    }
    let hashes_out = want_hashes.then_some(&mut hashes.shard);
    let stats = check_shard(
        dir,
        compressed,
        e,
        &markers,
        hashes_out,
        &mut problems,
        on_sample,
    );
    FileReport {
        file: e.file.clone(),
        stats,
        problems,
        stale_markers,
        hashes,
    }
}

/// Staleness markers of a shard's sidecars: series -> marker timestamps, sorted.
type Markers = HashMap<Labels, Vec<i64>>;

/// Reads a listed file: its size and SHA-256 against the manifest, gunzipped when the directory
/// is compressed, and the uncompressed size. `None` when it cannot be read or unzipped, or
/// unzips to more than the manifest says.
fn read_listed<'a>(
    dir: &Path,
    file: &str,
    compressed: bool,
    (bytes, sha256, uncompressed): (u64, &str, u64),
    raw: &'a mut Vec<u8>,
    problems: &mut Vec<String>,
) -> Option<Cow<'a, [u8]>> {
    if !is_plain_file_name(file) {
        problems.push("the manifest names a path, not a file of the directory".into());
        return None;
    }
    let ext = if compressed { ".om.gz" } else { ".om" };
    if !file.ends_with(ext) {
        problems.push(format!("name does not end in {ext}, as the manifest says"));
    }
    *raw = match std::fs::read(dir.join(file)) {
        Ok(raw) => raw,
        Err(err) => {
            problems.push(format!("cannot read: {err}"));
            return None;
        }
    };
    if raw.len() as u64 != bytes {
        problems.push(mismatch("size in bytes", raw.len(), bytes));
    }
    let sum = sha256_hex(&raw[..]).expect("reading a slice cannot fail");
    if sum != sha256 {
        problems.push(mismatch("sha256", sum, sha256));
    }
    let text: Cow<[u8]> = if compressed {
        // Sized from the manifest, but never past what deflate can expand the file to (1032:1),
        // and read no further than one byte past the size it states: a damaged manifest or a
        // gzip bomb costs no more memory than the shard should.
        let cap = uncompressed.min(raw.len() as u64 * 1032 + 64);
        let mut text = Vec::with_capacity(cap as usize);
        let gz = flate2::read::MultiGzDecoder::new(&raw[..]);
        match gz.take(uncompressed + 1).read_to_end(&mut text) {
            Ok(_) => Cow::Owned(text),
            Err(err) => {
                problems.push(format!("not valid gzip: {err}"));
                return None;
            }
        }
    } else {
        Cow::Borrowed(&raw[..])
    };
    if text.len() as u64 > uncompressed {
        // Only the start was read: checking its text would report a cut, not the shard.
        problems.push(format!(
            "uncompressed size is larger than the manifest's {uncompressed}"
        ));
        return None;
    }
    if (text.len() as u64) < uncompressed {
        problems.push(mismatch("uncompressed size", text.len(), uncompressed));
    }
    Some(text)
}

/// Every check of one sidecar; returns its marker count when it parses.
fn check_sidecar(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    sc: &Sidecar,
    markers: &mut Markers,
    hashes: &mut SeriesHashes,
    problems: &mut Vec<String>,
) -> Option<u64> {
    if sc.kind != SIDECAR_STALE_MARKERS {
        problems.push(format!(
            "unknown kind {:?}: this prom2om cannot tell what it carries (a newer version wrote it?)",
            sc.kind
        ));
        return None;
    }
    let want = shard_dir::stale_sidecar_name(&e.file);
    if sc.file != want {
        problems.push(format!("the sidecar of {} must be named {want}", e.file));
    }
    let mut raw = Vec::new();
    let sizes = (sc.bytes, sc.sha256.as_str(), sc.uncompressed_bytes);
    let text = read_listed(dir, &sc.file, compressed, sizes, &mut raw, problems)?;
    let window = e.window_start_ms..e.window_end_ms;
    let mut outside = None;
    let mut not_marker = None;
    let mut prefix = Vec::new();
    let result = openmetrics::read(&text, |s| {
        if s.new_series {
            prefix.clear();
            openmetrics::write_series_prefix(s.labels, &mut prefix);
            let h = shard_dir::series_hash(&prefix);
            hashes.sidecar.push((sc.file.clone(), h));
        }
        if !window.contains(&s.ts_ms) && outside.is_none() {
            outside = Some((s.line, s.ts_ms));
        }
        if !s.value.is_nan() && not_marker.is_none() {
            not_marker = Some((s.line, s.value));
        }
        markers.entry(s.labels.clone()).or_default().push(s.ts_ms);
        Ok(())
    });
    if let Some((line, ts)) = outside {
        problems.push(format!(
            "a marker outside the window [{}, {}), at line {line} (ts {ts} ms)",
            window.start, window.end
        ));
    }
    if let Some((line, v)) = not_marker {
        problems.push(format!(
            "line {line}: value {v}, but every sample of a stale-markers sidecar is NaN"
        ));
    }
    let stats = match result {
        Ok(stats) => stats,
        Err(err) => {
            problems.push(format!("invalid OpenMetrics: {err:#}"));
            return None;
        }
    };
    let claimed = ShardEntry {
        series: sc.series,
        samples: sc.samples,
        min_ts_ms: sc.min_ts_ms,
        max_ts_ms: sc.max_ts_ms,
        ..ShardEntry::default()
    };
    compare_counts(&claimed, &stats, problems);
    if stats.samples == 0 {
        problems.push("holds no marker: an empty sidecar is never written".into());
    }
    Some(stats.samples)
}

/// Every check of one shard; returns the reader's stats when the content parses.
fn check_shard(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    markers: &Markers,
    mut hashes: Option<&mut Vec<u64>>,
    problems: &mut Vec<String>,
    on_sample: &mut dyn FnMut(&openmetrics::Sample<'_>) -> anyhow::Result<()>,
) -> Option<ReadStats> {
    if e.window_end_ms <= e.window_start_ms {
        problems.push(format!(
            "empty window [{}, {}) in the manifest",
            e.window_start_ms, e.window_end_ms
        ));
    }
    let mut raw = Vec::new();
    let sizes = (e.bytes, e.sha256.as_str(), e.uncompressed_bytes);
    let text = read_listed(dir, &e.file, compressed, sizes, &mut raw, problems)?;
    let window = e.window_start_ms..e.window_end_ms;
    let mut outside: u64 = 0;
    let mut first_outside = None;
    let mut clash = None;
    let mut refused = None;
    let mut cur: Option<&Vec<i64>> = None;
    let mut prefix = Vec::new();
    let result = openmetrics::read(&text, |s| {
        if !window.contains(&s.ts_ms) {
            outside += 1;
            first_outside.get_or_insert((s.line, s.ts_ms));
        }
        if s.new_series && !markers.is_empty() {
            cur = markers.get(s.labels);
        }
        if let (true, Some(h)) = (s.new_series, hashes.as_mut()) {
            prefix.clear();
            openmetrics::write_series_prefix(s.labels, &mut prefix);
            h.push(shard_dir::series_hash(&prefix));
        }
        if cur.is_some_and(|m| m.binary_search(&s.ts_ms).is_ok()) && clash.is_none() {
            clash = Some((s.line, s.ts_ms));
        }
        on_sample(&s).map_err(|err| {
            let msg = format!("{err:#}");
            refused = Some(msg.clone());
            anyhow::anyhow!(msg)
        })
    });
    if let Some((line, ts)) = clash {
        problems.push(format!(
            "line {line}: a sample at ts {ts} ms where the stale-markers sidecar has a marker of the same series"
        ));
    }
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

/// Shards per window at most (as the sink plans them).
const MAX_SHARDS: u64 = 1 << 16;

/// A series belongs to shard `hash % n` of its window, `n` the window's shard count, which the
/// manifest does not record (a shard left empty is not written): some `n` must put every series
/// of the shards and of their sidecars where it is. A sidecar series that breaks this would be
/// imported beside another shard's series.
fn check_shard_hashes(m: &Manifest, files: &mut [FileReport]) {
    let mut windows: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, e) in m.shards.iter().enumerate() {
        windows.entry(e.window_start_ms).or_default().push(i);
    }
    for idx in windows.values() {
        let lo = idx
            .iter()
            .map(|&i| m.shards[i].shard as u64)
            .max()
            .unwrap_or(0)
            + 1;
        let fits = |n: u64, side: bool| {
            idx.iter().all(|&i| {
                let (s, h) = (m.shards[i].shard as u64, &files[i].hashes);
                h.shard.iter().all(|x| x % n == s)
                    && (!side || h.sidecar.iter().all(|(_, x)| x % n == s))
            })
        };
        if (lo..=MAX_SHARDS).any(|n| fits(n, true)) {
            continue;
        }
        let Some(n) = (lo..=MAX_SHARDS).find(|&n| fits(n, false)) else {
            let first = &mut files[idx[0]];
            first.problems.push(format!(
                "no shard count puts every series of window {} in the shard its hash names",
                m.shards[idx[0]].window_start_ms
            ));
            continue;
        };
        for &i in idx {
            let s = m.shards[i].shard as u64;
            let f = &mut files[i];
            let bad: Vec<(String, u64)> = f
                .hashes
                .sidecar
                .iter()
                .filter(|(_, x)| x % n != s)
                .cloned()
                .collect();
            if let Some((file, x)) = bad.first() {
                f.problems.push(format!(
                    "sidecar {file}: {} series belong to another shard of the window (one to shard {} of {n}), not to shard {s}",
                    bad.len(),
                    x % n
                ));
            }
        }
    }
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
    let path = dir.join(crate::format::shard_dir::MANIFEST_FILE);
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
    let markers = m.shards.iter().flat_map(|e| &e.sidecars);
    let markers = markers.filter(|s| s.kind == SIDECAR_STALE_MARKERS);
    check(
        "stale_markers",
        t.stale_markers,
        markers.map(|s| s.samples).sum(),
    );
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
    let files = m
        .shards
        .iter()
        .flat_map(|e| std::iter::once(&e.file).chain(e.sidecars.iter().map(|s| &s.file)));
    for f in files {
        if !listed.insert(f.as_str()) {
            problems.push(format!(
                "{}: listed more than once in the manifest",
                dir.join(f).display()
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
            totals: crate::format::shard_dir::Totals {
                shards: 3,
                series: 3,
                samples: 3,
                bytes: 30,
                uncompressed_bytes: 0,
                min_ts_ms: Some(1),
                max_ts_ms: Some(9),
                stale_markers: 0,
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
