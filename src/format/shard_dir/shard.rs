//! One shard read: its side files and its file, each opened once and checked against the
//! manifest, then its text parsed once, every check of `verify` made in that parse while each
//! sample (with the side files' markers merged in by time) goes to the consumer.

use anyhow::{anyhow, Result};

use super::checks::{compare_counts, SeriesHashes};
use super::read::{read_listed, Listed};
use super::side::{read_side, SideData};
use super::{series_hash, ShardDir, ShardEntry};
use crate::format::openmetrics::{self, ReadStats};
use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::labels::Labels;

/// One point of a shard as its read hands it on: a sample of the shard, or a staleness marker of
/// its side file, merged in by time into its series.
#[derive(Debug)]
pub struct Point<'a> {
    pub labels: &'a Labels,
    pub ts_ms: i64,
    /// As written; a staleness marker's bits are exactly `STALE_NAN_BITS`.
    pub value: f64,
    /// A staleness marker of the side file, not a sample of the shard.
    pub marker: bool,
    /// The first point of its series in this read.
    pub new_series: bool,
    /// A series with no sample in the shard, only markers (its target went away just before
    /// the window): these come after every series of the shard, in the side file's order.
    pub markers_only: bool,
}

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

    /// [`ShardFiles::points`] without the markers: the shard's samples alone, `new_series` on
    /// each series' first sample.
    pub fn samples(self, f: impl FnMut(&Point<'_>) -> Result<()>) -> ShardReport {
        self.read(false, f)
    }

    /// Parses the shard once, making every check of it (validity, window, counts, no marker on
    /// a sample), and hands each point to `f`: the shard's samples in file order, each series'
    /// markers merged in by time, then the series that only have markers. Points go to `f` only
    /// when the files matched the manifest ([`ShardFiles::sound`]): a changed or damaged file
    /// gives none. A check that fails in the parse (which a file matching its checksum only
    /// fails when the manifest itself is wrong) is a problem of the report, as is an error of
    /// `f`, which also stops the read.
    pub fn points(self, f: impl FnMut(&Point<'_>) -> Result<()>) -> ShardReport {
        self.read(true, f)
    }

    fn read(self, markers: bool, mut f: impl FnMut(&Point<'_>) -> Result<()>) -> ShardReport {
        let dir = self.dir;
        let e = &dir.manifest().shards[self.index];
        let mut report = ShardReport {
            index: self.index,
            file: e.file.clone(),
            stats: None,
            problems: self.problems,
            stale_markers: self.side.markers,
            hashes: self.hashes,
        };
        let Some(text) = self.text else {
            return report;
        };
        let mut p = Parse {
            side: &self.side,
            give: report.problems.is_empty(),
            markers,
            refused: None,
            merged: vec![false; self.side.stale.len()],
            cur: None,
            new_series: false,
            outside: 0,
            first_outside: None,
            clash: None,
        };
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
            if p.markers_before(s.labels, s.ts_ms, &mut f)? && p.clash.is_none() {
                p.clash = Some((s.line, s.ts_ms));
            }
            p.give(&mut f, s.labels, s.ts_ms, s.value, false, false)
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

/// The merge of one shard's samples with its side file's markers, as the parse goes.
struct Parse<'s> {
    side: &'s SideData,
    /// Whether points go to the consumer.
    give: bool,
    /// Whether markers do.
    markers: bool,
    /// The consumer's error, as it said it.
    refused: Option<String>,
    /// The marker series already merged into a series of the shard.
    merged: Vec<bool>,
    /// The current series' markers (position in `side.stale`) and the first not yet handed on.
    cur: Option<(usize, usize)>,
    /// The next point given starts its series.
    new_series: bool,
    /// Samples outside the window, and the first of them (line, ts); the first sample where
    /// its series has a marker.
    outside: u64,
    first_outside: Option<(u64, i64)>,
    clash: Option<(u64, i64)>,
}

impl Parse<'_> {
    /// What the parse saw wrong besides the text itself.
    fn problems(&self, window: &std::ops::Range<i64>, problems: &mut Vec<String>) {
        if let Some((line, ts)) = self.clash {
            problems.push(format!(
                "line {line}: a sample at ts {ts} ms where the stale-markers sidecar has a marker of the same series"
            ));
        }
        if let Some((line, ts)) = self.first_outside {
            problems.push(format!(
                "{} sample(s) outside the window [{}, {}), the first at line {line} (ts {ts} ms)",
                self.outside, window.start, window.end
            ));
        }
    }

    fn start_series(&mut self, labels: &Labels) {
        self.cur = self.side.stale_index.get(labels).map(|&i| {
            self.merged[i] = true;
            (i, 0)
        });
        self.new_series = true;
    }

    /// Hands on the current series' markers before `ts`; whether one falls at `ts` itself (a
    /// marker on a sample: the shard is wrong, and that marker is not handed on).
    fn markers_before(
        &mut self,
        labels: &Labels,
        ts: i64,
        f: &mut impl FnMut(&Point<'_>) -> Result<()>,
    ) -> Result<bool> {
        let Some((i, mut next)) = self.cur else {
            return Ok(false);
        };
        let times = &self.side.stale[i].1;
        while next < times.len() && times[next] < ts {
            self.cur = Some((i, next + 1));
            self.give(
                f,
                labels,
                times[next],
                f64::from_bits(STALE_NAN_BITS),
                true,
                false,
            )?;
            next += 1;
        }
        let clash = times.get(next) == Some(&ts);
        self.cur = Some((i, next + usize::from(clash)));
        Ok(clash)
    }

    /// The rest of the current series' markers.
    fn end_series(&mut self, f: &mut impl FnMut(&Point<'_>) -> Result<()>) -> Result<()> {
        if let Some((i, _)) = self.cur {
            let side = self.side;
            self.markers_before(&side.stale[i].0, i64::MAX, f)?;
        }
        self.cur = None;
        Ok(())
    }

    /// After the last sample: its series' markers, then the series with markers only.
    fn finish(&mut self, f: &mut impl FnMut(&Point<'_>) -> Result<()>) -> Result<()> {
        self.end_series(f)?;
        let side = self.side;
        for (i, (labels, times)) in side.stale.iter().enumerate() {
            if self.merged[i] {
                continue;
            }
            self.new_series = true;
            for &t in times {
                self.give(f, labels, t, f64::from_bits(STALE_NAN_BITS), true, true)?;
            }
        }
        Ok(())
    }

    fn give(
        &mut self,
        f: &mut impl FnMut(&Point<'_>) -> Result<()>,
        labels: &Labels,
        ts_ms: i64,
        value: f64,
        marker: bool,
        markers_only: bool,
    ) -> Result<()> {
        if !self.give || (marker && !self.markers) {
            return Ok(());
        }
        let p = Point {
            labels,
            ts_ms,
            value,
            marker,
            new_series: std::mem::take(&mut self.new_series),
            markers_only,
        };
        f(&p).map_err(|err| {
            let msg = format!("{err:#}");
            self.refused = Some(msg.clone());
            anyhow!(msg)
        })
    }
}
