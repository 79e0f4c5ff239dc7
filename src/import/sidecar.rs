//! Reading the sidecars beside a shard for import: the stale-markers kind (checksum checked
//! again, gunzipped, parsed strictly); a kind this version does not know is refused, never
//! skipped. Remote write takes the markers in file order, the block writer per series.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Result};

use crate::bad_input;
use crate::format::openmetrics;
use crate::format::shard_dir::{Manifest, ShardEntry, Sidecar, SIDECAR_STALE_MARKERS};
use crate::labels::Labels;

/// The staleness markers beside one shard: each series with its marker timestamps (increasing),
/// in the file's order (the shard's series order).
pub type StaleMarkers = Vec<(Labels, Vec<i64>)>;

/// Reads the stale-markers sidecars of shard `e` in file order (none: empty), each checked as
/// [`read_into`] checks it; a refusal is an error naming the sidecar.
pub fn stale_markers(dir: &Path, e: &ShardEntry) -> Result<StaleMarkers> {
    let mut out: StaleMarkers = Vec::new();
    for sc in &e.sidecars {
        match read_one(dir, e, sc)? {
            Ok(series) => out.extend(series),
            Err(why) => return Err(anyhow!("sidecar {}: {why}", sc.file)),
        }
    }
    Ok(out)
}

/// Staleness marker times per series, ascending.
pub type Markers = HashMap<Labels, Vec<i64>>;

/// Refuses a manifest with a sidecar kind this version cannot write into blocks: skipping it
/// would lose data silently.
pub fn check_kinds(m: &Manifest, manifest_path: &Path) -> Result<()> {
    for e in &m.shards {
        for sc in &e.sidecars {
            if sc.kind != SIDECAR_STALE_MARKERS {
                return Err(bad_input!(
                    "{}: shard {} has a sidecar {} of kind {:?}, which this prom2om does not know \
                     (it knows {SIDECAR_STALE_MARKERS:?}); import it with the prom2om that wrote \
                     the directory, or a newer one",
                    manifest_path.display(),
                    e.file,
                    sc.file,
                    sc.kind
                ));
            }
            if !super::is_plain_relative(&sc.file) {
                return Err(bad_input!(
                    "{}: sidecar file name {:?} is not a plain relative path",
                    manifest_path.display(),
                    sc.file
                ));
            }
        }
    }
    Ok(())
}

/// Reads the staleness markers of sidecar `sc` of shard `e` into `into`, after checking the
/// file's size and sha256 and that it holds what its entry says: only markers (`NaN`), in the
/// shard's window. `Ok(Err(reason))` refuses the shard.
pub fn read_into(
    dir: &Path,
    e: &ShardEntry,
    sc: &Sidecar,
    into: &mut Markers,
) -> Result<Result<(), String>> {
    let series = match read_one(dir, e, sc)? {
        Ok(series) => series,
        Err(why) => return Ok(Err(why)),
    };
    for (labels, ts) in series {
        if into.insert(labels, ts).is_some() {
            return Ok(Err(
                "a series has markers in two sidecars of the shard".to_string()
            ));
        }
    }
    Ok(Ok(()))
}

/// One sidecar's markers in file order, checked (see [`read_into`]).
fn read_one(dir: &Path, e: &ShardEntry, sc: &Sidecar) -> Result<Result<StaleMarkers, String>> {
    if sc.kind != SIDECAR_STALE_MARKERS {
        return Ok(Err(format!("unknown sidecar kind {:?}", sc.kind)));
    }
    let path = dir.join(&sc.file);
    let data = match super::build::read_checked(&path, sc.bytes, &sc.sha256, sc.uncompressed_bytes)?
    {
        Ok(d) => d,
        Err(why) => return Ok(Err(why)),
    };
    let mut cur: Option<(Labels, Vec<i64>)> = None;
    let mut done: Vec<(Labels, Vec<i64>)> = Vec::new();
    let window = e.window_start_ms..e.window_end_ms;
    let read = openmetrics::read(&data, |s| {
        if !s.value.is_nan() {
            return Err(bad_input!(
                "line {}: value {} where only staleness markers (NaN) belong",
                s.line,
                s.value
            ));
        }
        if !window.contains(&s.ts_ms) {
            return Err(bad_input!(
                "line {}: marker at {} ms outside the shard's window [{}, {})",
                s.line,
                s.ts_ms,
                window.start,
                window.end
            ));
        }
        if s.new_series {
            done.extend(cur.take());
            cur = Some((s.labels.clone(), Vec::new()));
        }
        if let Some((_, ts)) = cur.as_mut() {
            ts.push(s.ts_ms);
        }
        Ok(())
    });
    let stats = match read {
        Ok(st) => st,
        Err(err) => return Ok(Err(format!("{err:#}"))),
    };
    done.extend(cur);
    if stats.samples != sc.samples || stats.series != sc.series {
        return Ok(Err(format!(
            "{} markers of {} series, the manifest says {} of {}",
            stats.samples, stats.series, sc.samples, sc.series
        )));
    }
    Ok(Ok(done))
}
