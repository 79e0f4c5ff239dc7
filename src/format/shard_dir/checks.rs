//! The checks of a shard directory that are not one file's: the manifest's totals against its
//! entries, the directory's listing against the manifest, and each window's shard assignment.

use std::collections::HashSet;
use std::path::Path;

use super::{Manifest, ShardEntry, MANIFEST_FILE, SIDECAR_STALE_MARKERS};
use crate::format::openmetrics::ReadStats;

/// Shard hashes ([`series_hash`](super::series_hash)) of the series of one shard: in its file, in its side files
/// (with the side file's name), for the check across a window's shards
/// ([`window_problems`]).
#[derive(Clone, Debug, Default)]
pub struct SeriesHashes {
    pub(super) shard: Vec<u64>,
    pub(super) side: Vec<(String, u64)>,
}

/// Shards per window at most (as the sink plans them).
const MAX_SHARDS: u64 = 1 << 16;

/// A name that stays inside the directory: no separators, not `.` or `..`.
pub(super) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\'])
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
}

/// A relative path that goes down only (`import` refuses any other as bad input before it starts;
/// the read then takes only plain names, see [`is_plain_file_name`]).
pub(super) fn is_plain_relative(file: &str) -> bool {
    let p = Path::new(file);
    !file.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

pub(super) fn mismatch(
    what: &str,
    found: impl std::fmt::Display,
    manifest: impl std::fmt::Display,
) -> String {
    format!("{what} is {found}, the manifest says {manifest}")
}

/// What a file held against what its entry claims.
pub(super) fn compare_counts(e: &ShardEntry, st: &ReadStats, problems: &mut Vec<String>) {
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

/// The manifest's totals against the sum of its entries.
pub(super) fn check_totals(dir: &Path, m: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let t = &m.totals;
    let path = dir.join(MANIFEST_FILE);
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
pub(super) fn check_listing(dir: &Path, m: &Manifest) -> Vec<String> {
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
    let mut unlisted: Vec<String> = entries
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| (n.ends_with(".om") || n.ends_with(".om.gz")) && !listed.contains(n.as_str()))
        .collect();
    unlisted.sort();
    for n in unlisted {
        problems.push(format!(
            "{}: shard file not listed in the manifest",
            dir.join(n).display()
        ));
    }
    problems
}

/// The check across the shards of the window that starts at `window_start_ms`, once each of them
/// has been read (`hashes(i)`: what the read of manifest shard `i` gathered). A series belongs to
/// shard `hash % n` of its window, `n` the window's shard count, which the manifest does not
/// record (a shard left empty is not written): some `n` must put every series of the shards and
/// of their side files where it is. A side-file series that breaks this would be imported beside
/// another shard's series. Returns each problem with the manifest index of its shard.
pub fn window_problems<'h>(
    m: &Manifest,
    window_start_ms: i64,
    hashes: impl Fn(usize) -> &'h SeriesHashes,
) -> Vec<(usize, String)> {
    let idx: Vec<usize> = (0..m.shards.len())
        .filter(|&i| m.shards[i].window_start_ms == window_start_ms)
        .collect();
    let Some(&first) = idx.first() else {
        return Vec::new();
    };
    let lo = idx
        .iter()
        .map(|&i| m.shards[i].shard as u64)
        .max()
        .unwrap_or(0)
        + 1;
    let fits = |n: u64, side: bool| {
        idx.iter().all(|&i| {
            let (s, h) = (m.shards[i].shard as u64, hashes(i));
            h.shard.iter().all(|x| x % n == s) && (!side || h.side.iter().all(|(_, x)| x % n == s))
        })
    };
    if (lo..=MAX_SHARDS).any(|n| fits(n, true)) {
        return Vec::new();
    }
    let Some(n) = (lo..=MAX_SHARDS).find(|&n| fits(n, false)) else {
        return vec![(
            first,
            format!("no shard count puts every series of window {window_start_ms} in the shard its hash names"),
        )];
    };
    let mut out = Vec::new();
    for &i in &idx {
        let s = m.shards[i].shard as u64;
        let bad: Vec<&(String, u64)> = hashes(i).side.iter().filter(|(_, x)| x % n != s).collect();
        if let Some((file, x)) = bad.first() {
            out.push((
                i,
                format!(
                    "sidecar {file}: {} series belong to another shard of the window (one to shard {} of {n}), not to shard {s}",
                    bad.len(),
                    x % n
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::shard_dir::Totals;

    #[test]
    fn only_plain_names_stay_inside_the_directory() {
        assert!(is_plain_file_name("w0-1.om.gz"));
        for bad in ["", ".", "..", "../x.om", "/etc/x.om", "a/b.om", "a\\b.om"] {
            assert!(!is_plain_file_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn plain_relative_paths() {
        assert!(is_plain_relative("a.om.gz"));
        assert!(is_plain_relative("sub/a.om"));
        assert!(!is_plain_relative("../a.om"));
        assert!(!is_plain_relative("/etc/passwd"));
        assert!(!is_plain_relative("./a.om"));
        assert!(!is_plain_relative(""));
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
            totals: Totals {
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

    #[test]
    fn a_side_file_series_of_another_shard_is_named() {
        let e = |shard| ShardEntry {
            shard,
            window_start_ms: 7,
            ..ShardEntry::default()
        };
        let m = Manifest {
            shards: vec![e(0), e(1)],
            ..Manifest::default()
        };
        // Two shards: even hashes in shard 0, odd in shard 1.
        let mut h = [SeriesHashes::default(), SeriesHashes::default()];
        h[0].shard = vec![2, 4];
        h[1].shard = vec![3, 5];
        h[1].side = vec![("s1".into(), 9)];
        assert!(window_problems(&m, 7, |i| &h[i]).is_empty());
        h[1].side.push(("s1".into(), 8));
        let p = window_problems(&m, 7, |i| &h[i]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 1);
        assert!(
            p[0].1
                .starts_with("sidecar s1: 1 series belong to another shard"),
            "{p:?}"
        );
        assert!(window_problems(&m, 8, |i| &h[i]).is_empty());
    }
}
