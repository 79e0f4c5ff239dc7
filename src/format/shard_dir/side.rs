//! The side files beside a shard, by kind: each kind's file name, what its samples mean and the
//! checks of its content. A kind this version does not know is refused, never skipped: its data
//! would be lost. A new kind is a new arm here (and in the writer).

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use super::checks::{compare_counts, SeriesHashes};
use super::read::{read_listed, Listed};
use super::{
    hist_sidecar_name, series_hash, stale_sidecar_name, ShardEntry, Sidecar,
    SIDECAR_NATIVE_HISTOGRAMS, SIDECAR_STALE_MARKERS,
};
use crate::format::histtext;
use crate::format::openmetrics::{self, ReadStats};
use crate::labels::Labels;

/// The side-file kinds this version reads.
pub const KNOWN_KINDS: &[&str] = &[SIDECAR_STALE_MARKERS, SIDECAR_NATIVE_HISTOGRAMS];

/// A histogram sample of a side file: its time, and where its value text lies in the file.
pub(super) type HistAt = (i64, Range<usize>);

/// What the side files of one shard carry, as read.
#[derive(Debug, Default)]
pub(super) struct SideData {
    /// Staleness markers: each series with its marker times (ascending), in the file's order
    /// (the shard's series order).
    pub stale: Vec<(Labels, Vec<i64>)>,
    /// Position of each series in `stale`.
    pub stale_index: HashMap<Labels, usize>,
    /// Staleness markers in all, counted when their file parses.
    pub markers: u64,
    /// Native histogram samples: each series with its samples' times and where their value
    /// texts lie in `hist_text`, in the file's order (the shard's series order).
    pub hist: Vec<(Labels, Vec<HistAt>)>,
    /// Position of each series in `hist`.
    pub hist_index: HashMap<Labels, usize>,
    /// The side file's text, for the values handed on in the merge.
    pub hist_text: Vec<u8>,
    /// Histogram samples (markers not included) and histogram staleness markers, counted when
    /// their file parses.
    pub hist_samples: u64,
    pub hist_markers: u64,
}

/// The name side file `kind` of shard `shard_file` must have; `None` for a kind not known.
fn expected_name(kind: &str, shard_file: &str) -> Option<String> {
    match kind {
        SIDECAR_STALE_MARKERS => Some(stale_sidecar_name(shard_file)),
        SIDECAR_NATIVE_HISTOGRAMS => Some(hist_sidecar_name(shard_file)),
        _ => None,
    }
}

/// Reads and checks side file `sc` of shard `e` into `into` (each series' hash into `hashes`);
/// every problem, without the file's name, into `problems`.
pub(super) fn read_side(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    sc: &Sidecar,
    into: &mut SideData,
    hashes: &mut SeriesHashes,
    problems: &mut Vec<String>,
) {
    let Some(want) = expected_name(&sc.kind, &e.file) else {
        problems.push(format!(
            "unknown kind {:?}: this prom2om cannot tell what it carries (a newer version wrote it?)",
            sc.kind
        ));
        return;
    };
    if sc.file != want {
        problems.push(format!("the sidecar of {} must be named {want}", e.file));
    }
    let listed = Listed {
        file: &sc.file,
        bytes: sc.bytes,
        sha256: &sc.sha256,
        uncompressed: sc.uncompressed_bytes,
    };
    let Some(text) = read_listed(dir, compressed, &listed, problems) else {
        return;
    };
    if sc.kind == SIDECAR_NATIVE_HISTOGRAMS {
        return read_histograms(text, e, sc, into, hashes, problems);
    }
    if let Some(n) = read_stale_markers(&text, e, sc, into, hashes, problems) {
        into.markers += n;
    }
}

/// Hands each native histogram of shard `e`'s histograms side file to `f`, read on its own
/// (opened, checked against its size and checksum, parsed). Returns whether it was read whole:
/// a file that does not match hands on what it parsed of it and leaves the problem to the
/// shard's read, which reports it.
pub(super) fn each_histogram(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    mut f: impl FnMut(&crate::format::histogram::HistogramValue),
) -> bool {
    let mut ok = true;
    for sc in e
        .sidecars
        .iter()
        .filter(|s| s.kind == SIDECAR_NATIVE_HISTOGRAMS)
    {
        let listed = Listed {
            file: &sc.file,
            bytes: sc.bytes,
            sha256: &sc.sha256,
            uncompressed: sc.uncompressed_bytes,
        };
        let mut problems = Vec::new();
        let Some(text) = read_listed(dir, compressed, &listed, &mut problems) else {
            ok = false;
            continue;
        };
        let read = histtext::read(&text, |s| {
            f(s.value);
            Ok(())
        });
        ok &= read.is_ok() && problems.is_empty();
    }
    ok
}

/// The staleness-markers kind: OpenMetrics text (same series text, same order as the shard)
/// whose every sample is a marker, written `NaN`, inside the shard's window. Returns the marker
/// count when the text parses.
fn read_stale_markers(
    text: &[u8],
    e: &ShardEntry,
    sc: &Sidecar,
    into: &mut SideData,
    hashes: &mut SeriesHashes,
    problems: &mut Vec<String>,
) -> Option<u64> {
    let window = e.window_start_ms..e.window_end_ms;
    let mut outside = None;
    let mut not_marker = None;
    let mut twice = false;
    let mut prefix = Vec::new();
    let result = openmetrics::read(text, |s| {
        if s.new_series {
            prefix.clear();
            openmetrics::write_series_prefix(s.labels, &mut prefix);
            hashes.side.push((sc.file.clone(), series_hash(&prefix)));
            // A series is contiguous in one file; in two side files of a shard it would be
            // merged twice.
            twice |= into.stale_index.contains_key(s.labels);
            into.stale_index.insert(s.labels.clone(), into.stale.len());
            into.stale.push((s.labels.clone(), Vec::new()));
        }
        if !window.contains(&s.ts_ms) && outside.is_none() {
            outside = Some((s.line, s.ts_ms));
        }
        if !s.value.is_nan() && not_marker.is_none() {
            not_marker = Some((s.line, s.value));
        }
        if let Some((_, ts)) = into.stale.last_mut() {
            ts.push(s.ts_ms);
        }
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
    if twice {
        problems.push("a series has markers in two sidecars of the shard".into());
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

/// The native-histograms kind ([`histtext`]): every sample inside the shard's window, read
/// strictly; each series with where its values lie in the text, kept with the text for the
/// merge.
fn read_histograms(
    text: Vec<u8>,
    e: &ShardEntry,
    sc: &Sidecar,
    into: &mut SideData,
    hashes: &mut SeriesHashes,
    problems: &mut Vec<String>,
) {
    let window = e.window_start_ms..e.window_end_ms;
    let mut outside = None;
    let mut twice = false;
    let mut prefix = Vec::new();
    let mut series = Vec::new();
    let result = histtext::read(&text, |s| {
        if s.new_series {
            prefix.clear();
            openmetrics::write_series_prefix(s.labels, &mut prefix);
            hashes.side.push((sc.file.clone(), series_hash(&prefix)));
            twice |= into.hist_index.contains_key(s.labels);
            series.push((s.labels.clone(), Vec::new()));
        }
        if !window.contains(&s.ts_ms) && outside.is_none() {
            outside = Some((s.line, s.ts_ms));
        }
        if let Some((_, v)) = series.last_mut() {
            v.push((s.ts_ms, s.text));
        }
        Ok(())
    });
    if let Some((line, ts)) = outside {
        problems.push(format!(
            "a histogram sample outside the window [{}, {}), at line {line} (ts {ts} ms)",
            window.start, window.end
        ));
    }
    if twice {
        problems.push("a series has histograms in two side files of the shard".into());
    }
    let stats = match result {
        Ok(stats) => stats,
        Err(err) => {
            problems.push(format!("invalid native histogram text: {err:#}"));
            return;
        }
    };
    let claimed = ShardEntry {
        series: sc.series,
        samples: sc.samples,
        min_ts_ms: sc.min_ts_ms,
        max_ts_ms: sc.max_ts_ms,
        ..ShardEntry::default()
    };
    let seen = ReadStats {
        series: stats.series,
        samples: stats.samples,
        min_ts_ms: stats.min_ts_ms,
        max_ts_ms: stats.max_ts_ms,
        ..ReadStats::default()
    };
    compare_counts(&claimed, &seen, problems);
    if stats.samples == 0 {
        problems.push("holds no histogram: an empty side file is never written".into());
    }
    into.hist_samples += stats.samples - stats.stale_markers;
    into.hist_markers += stats.stale_markers;
    if into.hist.is_empty() {
        // The one side file of its kind (a second is the problem above): offsets into its text.
        for (l, _) in &series {
            let n = into.hist_index.len();
            into.hist_index.insert(l.clone(), n);
        }
        into.hist = series;
        into.hist_text = text;
    }
}
