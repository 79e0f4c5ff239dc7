//! The default `import` path: a shard read with the strict OpenMetrics reader (and verified in
//! that read when it can be), its sidecars' staleness markers merged in, built in memory and
//! written as one TSDB block.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use sha2::{Digest, Sha256};

use super::sidecar::{self, Markers};
use crate::format::openmetrics;
use crate::format::shard_dir::ShardEntry;
use crate::format::tsdb::block_writer::{self, BlockWriter, SegmentWriter};
use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::labels::Labels;
use crate::verify;

/// Builds the block of shard `e` of the shard directory `dir` and its sidecars, in memory,
/// then writes it into `out_dir/<ULID>/`. `verify`: the shard is verified here, as `prom2om
/// verify` does, in the read that builds the block (a directory without sidecars, whose checks
/// are all per shard); otherwise the caller verified it and it is read again, its size and
/// sha256 checked again. `Ok(Err(reason))`: the shard is refused; `Err`: the machine failed (a
/// full disk). Nothing is written for a shard without samples.
pub fn build_shard(
    dir: &Path,
    compressed: bool,
    e: &ShardEntry,
    verify: bool,
    out_dir: &Path,
    chunk_range: i64,
) -> Result<Result<(), String>> {
    let mut markers = Markers::new();
    for sc in &e.sidecars {
        match sidecar::read_into(dir, e, sc, &mut markers)? {
            Ok(()) => {}
            Err(why) => return Ok(Err(format!("sidecar {}: {why}", sc.file))),
        }
    }
    let mut feed = Feed {
        w: BlockWriter::new(chunk_range),
        markers,
        pending: Vec::new(),
        next: 0,
    };
    // The block stays in memory until the shard has passed: a refused shard writes nothing.
    if verify {
        let report = verify::verify_shard_with(dir, compressed, e, &mut |s| feed.sample(s));
        if !report.problems.is_empty() {
            return Ok(Err(format!("verify: {}", report.problems.join("; "))));
        }
    } else {
        let path = dir.join(&e.file);
        let data = match read_checked(&path, e.bytes, &e.sha256, e.uncompressed_bytes)? {
            Ok(d) => d,
            Err(why) => return Ok(Err(why)),
        };
        if let Err(err) = openmetrics::read(&data, |s| feed.sample(&s)) {
            return Ok(Err(format!("{err:#}")));
        }
    }
    write_block(feed.finish()?, out_dir)?;
    Ok(Ok(()))
}

/// The shard's samples into the block writer, each series' staleness markers merged in by time.
struct Feed {
    w: BlockWriter,
    /// Markers of the series not reached yet.
    markers: Markers,
    /// The current series' markers, `next` the first not written.
    pending: Vec<i64>,
    next: usize,
}

impl Feed {
    fn sample(&mut self, s: &openmetrics::Sample<'_>) -> Result<()> {
        if s.new_series {
            put_markers(&mut self.w, &self.pending[self.next..])?;
            self.w.start_series(s.labels.clone())?;
            self.pending = self.markers.remove(s.labels).unwrap_or_default();
            self.next = 0;
        }
        while let Some(&m) = self.pending.get(self.next).filter(|&&m| m < s.ts_ms) {
            self.w.append(m, STALE_NAN_BITS)?;
            self.next += 1;
        }
        if self.pending.get(self.next) == Some(&s.ts_ms) {
            return Err(anyhow!(
                "line {}: a staleness marker of the sidecar has the time of this sample ({} ms)",
                s.line,
                s.ts_ms
            ));
        }
        self.w.append(s.ts_ms, s.value.to_bits())
    }

    /// The last series' markers, then the series whose every sample in the window is a marker
    /// (a target gone just before it).
    fn finish(mut self) -> Result<BlockWriter> {
        put_markers(&mut self.w, &self.pending[self.next..])?;
        let mut only: Vec<(Labels, Vec<i64>)> = self.markers.into_iter().collect();
        only.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (labels, ts) in only {
            self.w.start_series(labels)?;
            put_markers(&mut self.w, &ts)?;
        }
        Ok(self.w)
    }
}

/// The file at `path` read whole, checked against its manifest size and sha256, and
/// decompressed when its name ends `.gz` (then checked against `uncompressed`).
pub(super) fn read_checked(
    path: &Path,
    bytes: u64,
    sha256: &str,
    uncompressed: u64,
) -> Result<Result<Vec<u8>, String>> {
    let raw = match fs::read(path) {
        Ok(r) => r,
        Err(err) => return Ok(Err(format!("cannot read {}: {err}", path.display()))),
    };
    if raw.len() as u64 != bytes {
        return Ok(Err(format!(
            "{} bytes, the manifest says {bytes} (truncated or changed?)",
            raw.len()
        )));
    }
    let sum = super::hex(Sha256::digest(&raw));
    if sum != sha256 {
        return Ok(Err(super::checksum_mismatch(&sum, sha256)));
    }
    if path.extension().is_none_or(|x| x != "gz") {
        return Ok(Ok(raw));
    }
    let mut text = Vec::with_capacity(usize::try_from(uncompressed).unwrap_or(0).min(1 << 32));
    if let Err(err) = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut text) {
        return Ok(Err(format!("not valid gzip: {err}")));
    }
    if text.len() as u64 != uncompressed {
        return Ok(Err(format!(
            "{} bytes of OpenMetrics inside, the manifest says {uncompressed}",
            text.len()
        )));
    }
    Ok(Ok(text))
}

/// Writes the block built in memory into `out_dir/<ULID>/`: chunk segments, index, an empty
/// tombstones file, and meta.json last (a dir without one is never taken for a block).
fn write_block(w: BlockWriter, out_dir: &Path) -> Result<()> {
    if w.samples() == 0 {
        return Ok(());
    }
    let ulid = ulid::Ulid::generate().to_string();
    let block = out_dir.join(&ulid);
    let chunks_dir = block.join("chunks");
    fs::create_dir_all(&chunks_dir)
        .with_context(|| format!("{}: cannot create", chunks_dir.display()))?;
    let open = |seq: u32| -> io::Result<BufWriter<File>> {
        Ok(BufWriter::with_capacity(
            1 << 20,
            File::create(chunks_dir.join(format!("{seq:06}")))?,
        ))
    };
    let index = BufWriter::with_capacity(1 << 20, create(&block.join("index"))?);
    let (stats, segments, index) = w.finish(SegmentWriter::new(open), index)?;
    for seg in segments {
        sync(seg)?;
    }
    sync(index)?;
    write_synced(&block.join("tombstones"), &block_writer::empty_tombstones())?;
    write_synced(
        &block.join("meta.json"),
        &block_writer::meta_json(&ulid, &stats),
    )?;
    for d in [&chunks_dir, &block] {
        super::state::sync_dir(d).with_context(|| format!("{}: fsync", d.display()))?;
    }
    Ok(())
}

fn put_markers(w: &mut BlockWriter, ts: &[i64]) -> Result<()> {
    for &t in ts {
        w.append(t, STALE_NAN_BITS)?;
    }
    Ok(())
}
fn create(p: &Path) -> Result<File> {
    File::create(p).with_context(|| format!("{}: cannot create", p.display()))
}

fn sync(w: BufWriter<File>) -> Result<()> {
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all().context("fsync of a block file")
}

fn write_synced(p: &Path, data: &[u8]) -> Result<()> {
    let mut f = create(p)?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("{}: cannot write", p.display()))
}
