//! The default `import` path: a shard read once through the shard directory's reader (verified
//! in that read, its side files' staleness markers and native histograms merged in), built in
//! memory and written as one TSDB block.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::format::shard_dir::{ShardFiles, ShardReport, Value};
use crate::format::tsdb::block_writer::{self, BlockWriter, SegmentWriter};

/// Builds the block of one shard in memory from its one read: its float samples, the staleness
/// markers of its side files as real markers (their exact bits), and the native histograms of
/// its side files (markers too) as histogram chunks, a series that changes type cut into chunks
/// of each type as Prometheus's head cuts them. Returns the read's report, and the block when
/// the shard passed every check: a refused shard writes nothing.
pub fn build(files: ShardFiles<'_>, chunk_range: i64) -> (ShardReport, Option<BlockWriter>) {
    let mut w = BlockWriter::new(chunk_range);
    let report = files.points(|p| {
        if p.new_series {
            w.start_series(p.labels.clone())?;
        }
        match p.value {
            Value::Histogram(h) => w.append_histogram(p.ts_ms, h),
            Value::Float(_) | Value::StaleMarker => {
                let bits = p.value.float_bits().expect("a float or a float marker");
                w.append(p.ts_ms, bits)
            }
        }
    });
    let ok = report.is_ok();
    (report, ok.then_some(w))
}

/// Writes the block built in memory into `out_dir/<ULID>/`: chunk segments, index, an empty
/// tombstones file, and meta.json last (a dir without one is never taken for a block).
pub fn write_block(w: BlockWriter, out_dir: &Path) -> Result<()> {
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
