//! The output directory of a run: made ready (a killed run's leftovers removed, an earlier run's
//! shards replaced with --force, writability checked), and its manifest written last.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::pipeline::atomic_file::{self, TempPath};
use crate::pipeline::manifest::{Manifest, MANIFEST_FILE};
use crate::pipeline::run_lock;

/// Makes `path` ready for a run's shards (created when missing).
pub fn prepare(path: &Path, force: bool) -> Result<()> {
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
        if !entries.is_empty() {
            if !force {
                return Err(crate::bad_input!(
                    "output directory {} is not empty (use --force to replace an earlier run's shards)",
                    path.display()
                ));
            }
            // The manifest goes first: from here on the directory does not look finished.
            let manifest = path.join(MANIFEST_FILE);
            if manifest.exists() {
                std::fs::remove_file(&manifest)
                    .with_context(|| format!("removing {}", manifest.display()))?;
            }
            for e in entries {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.ends_with(".om") || name.ends_with(".om.gz") {
                    std::fs::remove_file(e.path())
                        .with_context(|| format!("removing {}", e.path().display()))?;
                }
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
    Ok(())
}

/// Writes `manifest.json` under a temporary name and renames it into place.
pub fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let dest = dir.join(MANIFEST_FILE);
    let tmp = TempPath::in_dir(dir, MANIFEST_FILE);
    let mut f =
        std::fs::File::create(tmp.path()).with_context(|| format!("writing {}", dest.display()))?;
    serde_json::to_writer_pretty(&mut f, m)?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    tmp.persist(&dest)
        .with_context(|| format!("writing {}", dest.display()))
}
