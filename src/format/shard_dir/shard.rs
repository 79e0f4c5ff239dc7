//! One shard read: its side files and its file, each opened once and checked against the
//! manifest, then its text parsed once, every check of `verify` made in that parse while each
//! sample (with the side files' markers and histograms merged in by time) goes to the consumer.

use anyhow::Result;

use super::checks::{compare_counts, SeriesHashes};
use super::merge::Parse;
use super::point::{Point, Value};
use super::read::{read_listed, Listed};
use super::side::{read_side, SideData};
use super::{series_hash, ShardDir, ShardEntry};
use crate::format::openmetrics::{self, ReadStats};

/// What one shard's read found.
#[derive(Clone, Debug)]
pub struct ShardReport {
    /// Position of the shard in the manifest.
    pub index: usize,
    /// The file name, as the manifest gives it.
    pub file: String,
    /// What the reader saw of the shard, when its text could be read and is valid OpenMetrics.
    pub stats: Option<ReadStats>,
    /// Everything wrong with the shard or its side files (those prefixed `sidecar FILE: `);
    /// empty when it is fine.
    pub problems: Vec<String>,
    /// Staleness markers its side files hold (when they parse).
    pub stale_markers: u64,
    /// Native histogram samples (markers not included) and histogram staleness markers its side
    /// files hold (when they parse).
    pub histogram_samples: u64,
    pub histogram_stale_markers: u64,
    /// For the check across the shards of its window (gathered when the directory has side
    /// files, the only case that check is made).
    pub hashes: SeriesHashes,
}

impl ShardReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A shard whose files have been read and whose bytes have been checked; [`ShardFiles::points`]
/// parses it.
pub struct ShardFiles<'d> {
    dir: &'d ShardDir,
    index: usize,
    side: SideData,
    text: Option<Vec<u8>>,
    problems: Vec<String>,
    hashes: SeriesHashes,
}

impl ShardDir {
    /// Reads shard `index` of the manifest and its side files: each file opened once, its size
    /// and SHA-256 checked, gunzipped no further than its stated size, the side files parsed and
    /// checked. Nothing of it is handed on yet.
    pub fn shard(&self, index: usize) -> ShardFiles<'_> {
        let e = &self.manifest().shards[index];
        let compressed = self.manifest().compressed;
        let mut problems = Vec::new();
        let mut side = SideData::default();
        let mut hashes = SeriesHashes::default();
        for sc in &e.sidecars {
            let mut p = Vec::new();
            read_side(
                self.path(),
                compressed,
                e,
                sc,
                &mut side,
                &mut hashes,
                &mut p,
            );
            problems.extend(p.into_iter().map(|p| format!("sidecar {}: {p}", sc.file)));
        }
        if e.window_end_ms <= e.window_start_ms {
            problems.push(format!(
                "empty window [{}, {}) in the manifest",
                e.window_start_ms, e.window_end_ms
            ));
        }
        let listed = Listed {
            file: &e.file,
            bytes: e.bytes,
            sha256: &e.sha256,
            uncompressed: e.uncompressed_bytes,
        };
        let text = read_listed(self.path(), compressed, &listed, &mut problems);
        ShardFiles {
            dir: self,
            index,
            side,
            text,
            problems,
            hashes,
        }
    }
}

impl ShardFiles<'_> {
    pub fn entry(&self) -> &ShardEntry {
        &self.dir.manifest().shards[self.index]
    }

    /// The shard's OpenMetrics text, gunzipped, when its file could be read whole.
    pub fn text(&self) -> Option<&[u8]> {
        self.text.as_deref()
    }

    /// Whether every file matched its manifest entry so far (size, checksum, stated text size,
    /// side files): only then does [`ShardFiles::points`] hand points on.
    pub fn sound(&self) -> bool {
        self.problems.is_empty() && self.text.is_some()
    }

    /// Every check without a consumer, as `verify` makes them.
    pub fn check(self) -> ShardReport {
        self.read(false, |_| Ok(()))
    }

    /// [`ShardFiles::points`] without the side files' points (markers, histograms): the
    /// shard's float samples alone, `new_series` on each series' first sample.
    pub fn samples(self, f: impl FnMut(&Point<'_>) -> Result<()>) -> ShardReport {
        self.read(false, f)
    }

    /// Parses the shard once, making every check of it (validity, window, counts, no marker or
    /// histogram on a sample), and hands each point to `f`: the shard's samples in file order,
    /// each series' markers and histograms merged in by time, then the series that only have
    /// side-file points, in the shards' series order. Points go to `f` only
    /// when the files matched the manifest ([`ShardFiles::sound`]): a changed or damaged file
    /// gives none. A check that fails in the parse (which a file matching its checksum only
    /// fails when the manifest itself is wrong) is a problem of the report, as is an error of
    /// `f`, which also stops the read.
    pub fn points(self, f: impl FnMut(&Point<'_>) -> Result<()>) -> ShardReport {
        self.read(true, f)
    }

    fn read(self, side: bool, mut f: impl FnMut(&Point<'_>) -> Result<()>) -> ShardReport {
        let dir = self.dir;
        let e = &dir.manifest().shards[self.index];
        let mut report = ShardReport {
            index: self.index,
            file: e.file.clone(),
            stats: None,
            problems: self.problems,
            stale_markers: self.side.markers,
            histogram_samples: self.side.hist_samples,
            histogram_stale_markers: self.side.hist_markers,
            hashes: self.hashes,
        };
        let Some(text) = self.text else {
            return report;
        };
        let mut p = Parse::new(&self.side, report.problems.is_empty(), side);
        let window = e.window_start_ms..e.window_end_ms;
        let want_hashes = dir.has_side_files();
        let mut prefix = Vec::new();
        let result = openmetrics::read(&text, |s| {
            if !window.contains(&s.ts_ms) {
                p.outside += 1;
                p.first_outside.get_or_insert((s.line, s.ts_ms));
            }
            if s.new_series {
                p.end_series(&mut f)?;
                p.start_series(s.labels);
                if want_hashes {
                    prefix.clear();
                    openmetrics::write_series_prefix(s.labels, &mut prefix);
                    report.hashes.shard.push(series_hash(&prefix));
                }
            }
            if let Some(what) = p.side_before(s.labels, s.ts_ms, &mut f)? {
                p.clash.get_or_insert((s.line, s.ts_ms, what));
            }
            p.give(&mut f, s.labels, s.ts_ms, Value::Float(s.value))
        });
        let result = result.and_then(|stats| p.finish(&mut f).map(|()| stats));
        p.problems(&window, &mut report.problems);
        match result {
            Ok(stats) => {
                compare_counts(e, &stats, &mut report.problems);
                report.stats = Some(stats);
            }
            Err(err) => report.problems.push(
                p.refused
                    .take()
                    .unwrap_or_else(|| format!("invalid OpenMetrics: {err:#}")),
            ),
        }
        report
    }
}
