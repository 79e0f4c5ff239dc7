//! The shard directory, prom2om's own exchange format: `manifest.json`, the OpenMetrics shards
//! (`.om[.gz]`) and their side files, with its one reader: open once, then each shard in one read.
//!
//! [`ShardDir::open`] reads the manifest (once per command); [`ShardDir::shard`] reads one shard
//! and its side files, each file opened once, hashed, and gunzipped no further than the size the
//! manifest states; [`ShardFiles::points`] parses it once, making every check `verify` makes
//! while it hands the samples on, each series' staleness markers and native histograms merged
//! in. What cannot be
//! checked one shard at a time is [`ShardDir::problems`] (totals, listing) and
//! [`window_problems`] (shard assignment across a window).

mod census;
mod checks;
mod manifest;
mod merge;
mod naming;
mod point;
mod read;
mod shard;
mod side;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::bad_input;

pub use census::{samples_per_series, SeriesCounts};
pub use checks::window_problems;
pub use checks::SeriesHashes;
pub use manifest::{
    sha256_hex, Dashboards, Filters, Loss, Manifest, QuotedNames, ShardEntry, Sidecar, Totals,
    LOSS_SKIPPED_INVALID, LOSS_TORN_LOG, MANIFEST_FILE, SIDECAR_NATIVE_HISTOGRAMS,
    SIDECAR_STALE_MARKERS,
};
pub use naming::{file_name, hist_sidecar_name, series_hash, stale_sidecar_name, utc_stamp};
pub use point::{Point, Value};
pub use shard::{ShardFiles, ShardReport};
pub use side::KNOWN_KINDS;

/// An open shard directory: its path and its manifest, read once.
#[derive(Debug)]
pub struct ShardDir {
    path: PathBuf,
    manifest: Manifest,
}

impl ShardDir {
    /// Opens `dir` and reads its manifest. Not a directory, no manifest (an unfinished run) or
    /// a manifest that does not parse: bad input; an unreadable one: an error naming it.
    pub fn open(dir: &Path) -> Result<ShardDir> {
        if !dir.is_dir() {
            return Err(bad_input!("{}: not a directory", dir.display()));
        }
        let path = dir.join(MANIFEST_FILE);
        if !path.is_file() {
            return Err(bad_input!(
                "{}: no manifest: DIR must be a shard directory written by `prom2om convert -o` \
                 or `prom2om fetch -o` (a directory without it is an unfinished run)",
                path.display()
            ));
        }
        Ok(ShardDir {
            path: dir.to_path_buf(),
            manifest: Manifest::load(dir)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether any shard has side files (then the check across a window's shards applies).
    pub fn has_side_files(&self) -> bool {
        self.manifest.shards.iter().any(|e| !e.sidecars.is_empty())
    }

    /// Problems of the directory as a whole, without reading a shard: the manifest's totals
    /// against its entries, files listed twice, shard files it does not list. Each names the
    /// file concerned.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = checks::check_totals(&self.path, &self.manifest);
        problems.extend(checks::check_listing(&self.path, &self.manifest));
        problems
    }

    /// Refuses, as bad input, a directory a command cannot take whole before it starts: a side
    /// file of a kind this version does not know (skipping it would lose its data), a file name
    /// that leaves the directory, a shard listed twice.
    pub fn refuse_unreadable(&self) -> Result<()> {
        let path = self.path.join(MANIFEST_FILE);
        for e in &self.manifest.shards {
            for sc in &e.sidecars {
                if !KNOWN_KINDS.contains(&sc.kind.as_str()) {
                    return Err(bad_input!(
                        "{}: shard {} has a sidecar {} of kind {:?}, which this prom2om does not \
                         know (it knows {KNOWN_KINDS:?}); import it with the prom2om that wrote \
                         the directory, or a newer one",
                        path.display(),
                        e.file,
                        sc.file,
                        sc.kind
                    ));
                }
                if !checks::is_plain_relative(&sc.file) {
                    return Err(bad_input!(
                        "{}: sidecar file name {:?} is not a plain relative path",
                        path.display(),
                        sc.file
                    ));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for e in &self.manifest.shards {
            if !checks::is_plain_relative(&e.file) {
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
        Ok(())
    }

    /// Reads the samples of shard `index` ([`ShardFiles::samples`]: its float samples) for a
    /// command that reports on them: any problem of the read (or error of `f`) is an error
    /// naming the file, as bad input.
    pub fn read_samples(
        &self,
        index: usize,
        f: impl FnMut(&Point<'_>) -> Result<()>,
    ) -> Result<()> {
        self.read_report(self.shard(index).samples(f))
    }

    /// [`ShardDir::read_samples`] of every point ([`ShardFiles::points`]): the float samples,
    /// and the side files' staleness markers and native histogram samples.
    pub fn read_points(&self, index: usize, f: impl FnMut(&Point<'_>) -> Result<()>) -> Result<()> {
        self.read_report(self.shard(index).points(f))
    }

    /// Each native histogram sample (markers included) of shard `index`'s side files, read on
    /// their own, without the shard: for a check of what they hold before any shard is read
    /// (an import's home version). Returns whether they were read whole (a damaged file is
    /// reported by the shard's own read).
    pub fn each_histogram(
        &self,
        index: usize,
        f: impl FnMut(&crate::format::histogram::HistogramValue),
    ) -> bool {
        let e = &self.manifest.shards[index];
        side::each_histogram(&self.path, self.manifest.compressed, e, f)
    }

    fn read_report(&self, r: ShardReport) -> Result<()> {
        if r.is_ok() {
            return Ok(());
        }
        Err(bad_input!(
            "{}: {}",
            self.path.join(&r.file).display(),
            r.problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests;
