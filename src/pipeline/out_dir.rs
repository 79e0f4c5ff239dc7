//! The output directory of a run: made ready (a killed run's leftovers removed, writability
//! checked), then given the run's shards and manifest only once all of them are complete.
//!
//! With --force an earlier run's files (manifest, shards, sidecars) stay untouched while the new
//! run works, its own files under temporary names beside them: a run that fails or is stopped
//! (Ctrl-C, SIGTERM, SIGHUP) leaves the earlier export as it was, and `verify` passes on it.
//! Only at the end, with those signals held off, is the earlier manifest removed, the earlier
//! files the new run does not rewrite removed, the new files renamed into place and the new
//! manifest renamed in last. A SIGKILL or power cut during those few renames leaves a directory
//! without a manifest, which `verify` and `import` refuse, never a mix that looks finished.
//! Until then the directory holds both runs, so the disk needs room for both.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::format::shard_dir::{Manifest, MANIFEST_FILE};
use crate::pipeline::atomic_file::{self, TempPath};
use crate::pipeline::run_lock;
use crate::pipeline::shard::FinishedShard;

/// An output directory made ready for a run, and the files an earlier run left in it.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    /// What --force replaces when the run is complete: the manifest, shards and sidecars
    /// (`*.om`, `*.om.gz`) found when the run began.
    earlier: Vec<String>,
}

/// Makes `path` ready for a run's shards (created when missing). A non-empty directory is
/// refused unless `force`; then its earlier run's files stay until [`OutDir::commit`].
pub fn prepare(path: &Path, force: bool) -> Result<OutDir> {
    let mut earlier = Vec::new();
    if path.exists() {
        let removed = atomic_file::remove_dead_leftovers(path).with_context(|| {
            format!(
                "removing a killed run's temporary files from {}",
                path.display()
            )
        })?;
        if !removed.is_empty() {
            eprintln!(
                "prom2om: removed {} temporary file(s) that a killed earlier run left in {} (e.g. {})",
                removed.len(),
                path.display(),
                removed[0]
            );
        }
        let entries: Vec<_> = std::fs::read_dir(path)
            .with_context(|| format!("reading output directory {}", path.display()))?
            .filter(|e| !matches!(e, Ok(e) if e.file_name() == run_lock::LOCK_FILE))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading output directory {}", path.display()))?;
        if !entries.is_empty() && !force {
            return Err(crate::bad_input!(
                "output directory {} is not empty (use --force to replace an earlier run's shards)",
                path.display()
            ));
        }
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let output = name == MANIFEST_FILE || name.ends_with(".om") || name.ends_with(".om.gz");
            if output && !e.file_type()?.is_dir() {
                earlier.push(name);
            }
        }
    } else {
        std::fs::create_dir_all(path)
            .with_context(|| format!("creating output directory {}", path.display()))?;
    }
    // Find an unwritable directory now, not after an hour of parsing.
    let probe = TempPath::in_dir(path, "probe");
    std::fs::write(probe.path(), b"")
        .with_context(|| format!("output directory {} is not writable", path.display()))?;
    Ok(OutDir {
        path: path.to_path_buf(),
        earlier,
    })
}

impl OutDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the complete run the directory's content: `shards` (written in full under
    /// temporary names) and manifest `m`, which lists them, replacing the earlier run's files.
    pub fn commit(self, shards: Vec<FinishedShard>, m: &Manifest) -> Result<()> {
        let manifest = write_manifest_temp(&self.path, m)?;
        let new: std::collections::HashSet<&str> = m
            .shards
            .iter()
            .flat_map(|e| std::iter::once(&e.file).chain(e.sidecars.iter().map(|s| &s.file)))
            .map(String::as_str)
            .collect();
        atomic_file::uninterrupted(|| {
            // The earlier manifest goes first: from here on the directory does not look finished
            // until the new manifest is in place.
            let stale = self.earlier.iter().filter(|n| !new.contains(n.as_str()));
            let (first, rest): (Vec<_>, Vec<_>) = stale.partition(|n| *n == MANIFEST_FILE);
            for name in first.into_iter().chain(rest) {
                let p = self.path.join(name);
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("removing {}", p.display()));
                    }
                    _ => {}
                }
            }
            for f in shards {
                f.persist()?;
            }
            let dest = self.path.join(MANIFEST_FILE);
            manifest
                .persist(&dest)
                .with_context(|| format!("writing {}", dest.display()))
        })
    }
}

/// Writes `manifest.json` in full under a temporary name in `dir`.
fn write_manifest_temp(dir: &Path, m: &Manifest) -> Result<TempPath> {
    let dest = dir.join(MANIFEST_FILE);
    let tmp = TempPath::in_dir(dir, MANIFEST_FILE);
    let mut f =
        std::fs::File::create(tmp.path()).with_context(|| format!("writing {}", dest.display()))?;
    serde_json::to_writer_pretty(&mut f, m)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::shard::{self, Guess, SeriesInfo, ShardTarget, StaleMode};
    use crate::pipeline::spill::Rec;

    struct OneSeries;
    impl SeriesInfo for OneSeries {
        fn prefix(&self, _: u32) -> &[u8] {
            b"m "
        }
        fn guess(&self, _: u32) -> Guess {
            None
        }
        fn mark_written(&self, _: u32) {}
    }

    /// A shard `file` of one sample, complete under its temporary name.
    fn new_shard(dir: &Path, file: &str) -> FinishedShard {
        let target = ShardTarget {
            dir,
            file: file.into(),
            compress: None,
            window_start_ms: 0,
            window_end_ms: 10_000,
            shard: 0,
        };
        let rec = Rec::float(0, 1000, 2f64.to_bits());
        shard::write_shard(
            &target,
            &OneSeries,
            StaleMode::Keep,
            &[],
            [Ok(rec)].into_iter(),
        )
        .unwrap()
        .unwrap()
    }

    /// What an earlier run and the user left: the run's manifest, shards and sidecar, a note,
    /// and a directory whose name looks like a shard's.
    fn earlier_run(dir: &Path) -> Vec<(String, Vec<u8>)> {
        for (name, text) in [
            ("manifest.json", "{}"),
            ("a.om.gz", "old a"),
            ("a.stale.om.gz", "old markers"),
            ("b.om", "old b"),
            ("notes.txt", "mine"),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        std::fs::create_dir(dir.join("d.om")).unwrap();
        contents(dir)
    }

    fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), bytes)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_earlier_run_stays_until_commit_then_only_the_new_run_is_left() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let before = earlier_run(dir);
        let out = prepare(dir, true).unwrap();
        // b.om: the same name as an earlier shard.
        let new = new_shard(dir, "b.om");
        let mut now = contents(dir);
        now.retain(|(n, _)| atomic_file::temp_name_pid(n).is_none());
        assert_eq!(now, before);
        let m = Manifest {
            shards: vec![new.entry.clone()],
            ..Default::default()
        };
        out.commit(vec![new], &m).unwrap();
        let names: Vec<String> = contents(dir).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b.om", "d.om", "manifest.json", "notes.txt"]);
        assert_eq!(std::fs::read(dir.join("b.om")).unwrap(), b"m 2 1\n# EOF\n");
        assert_eq!(Manifest::load(dir).unwrap(), m);
    }

    #[test]
    fn a_run_that_never_commits_leaves_the_earlier_run_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let before = earlier_run(dir);
        let out = prepare(dir, true).unwrap();
        drop(new_shard(dir, "b.om"));
        drop(out);
        assert_eq!(contents(dir), before);
    }

    #[test]
    fn without_force_a_non_empty_directory_is_refused_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let before = earlier_run(tmp.path());
        let err = prepare(tmp.path(), false).unwrap_err();
        assert!(format!("{err:#}").contains("--force"), "{err:#}");
        assert_eq!(contents(tmp.path()), before);
    }
}
