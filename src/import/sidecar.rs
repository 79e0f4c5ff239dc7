//! Reading the sidecars beside a shard for import: the stale-markers kind (checksum checked
//! again, gunzipped, parsed strictly); a kind this version does not know is refused, never skipped.

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::format::openmetrics;
use crate::labels::Labels;
use crate::pipeline::manifest::{sha256_hex, ShardEntry, Sidecar, SIDECAR_STALE_MARKERS};

/// The staleness markers beside one shard: each series with its marker timestamps (increasing),
/// in the file's order (the shard's series order).
pub type StaleMarkers = Vec<(Labels, Vec<i64>)>;

/// Reads the stale-markers sidecars of shard `e` (none: empty).
pub fn stale_markers(dir: &Path, compressed: bool, e: &ShardEntry) -> Result<StaleMarkers> {
    let mut out: StaleMarkers = Vec::new();
    for sc in &e.sidecars {
        if sc.kind != SIDECAR_STALE_MARKERS {
            return Err(anyhow!(
                "sidecar {} is of a kind this prom2om does not know ({:?}): refusing to import the shard without it",
                sc.file,
                sc.kind
            ));
        }
        let text = read_checked(dir, compressed, sc)?;
        let path = dir.join(&sc.file);
        openmetrics::read(&text, |s| {
            if s.new_series {
                out.push((s.labels.clone(), Vec::new()));
            }
            out.last_mut().expect("pushed above").1.push(s.ts_ms);
            Ok(())
        })
        .with_context(|| path.display().to_string())?;
    }
    Ok(out)
}

/// The text of a sidecar, its checksum checked against the manifest.
fn read_checked(dir: &Path, compressed: bool, sc: &Sidecar) -> Result<Vec<u8>> {
    let path = dir.join(&sc.file);
    let raw = std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    let sum = sha256_hex(&raw[..]).expect("reading a slice cannot fail");
    if sum != sc.sha256 {
        return Err(anyhow!(
            "{}: changed since it was verified: sha256 {sum}, the manifest says {}",
            path.display(),
            sc.sha256
        ));
    }
    if !compressed {
        return Ok(raw);
    }
    let mut t = Vec::with_capacity(sc.uncompressed_bytes as usize);
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut t)
        .with_context(|| format!("{}: gunzip", path.display()))?;
    Ok(t)
}
