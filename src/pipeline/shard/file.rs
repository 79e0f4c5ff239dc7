//! One shard file and its side files as they are written: under temporary names, hashed (and
//! gzipped) on the way, each side file created when its first line comes, renamed when complete.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::{ShardOut, WriteStats};
use crate::format::gzip::GzWriter;
use crate::format::openmetrics;
use crate::format::shard_dir::{
    hist_sidecar_name, stale_sidecar_name, ShardEntry, Sidecar, SIDECAR_NATIVE_HISTOGRAMS,
    SIDECAR_STALE_MARKERS,
};
use crate::pipeline::atomic_file::TempPath;

/// Counts and hashes the bytes that reach the file.
struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where one shard file is being written, compressed or not.
enum Body {
    Plain(HashingWriter<BufWriter<File>>),
    Gzip(Box<GzWriter<HashingWriter<BufWriter<File>>>>),
}

/// Where and how to write one shard.
pub struct ShardTarget<'a> {
    pub dir: &'a Path,
    pub file: String,
    pub compress: Option<u32>,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub shard: u32,
}

/// One file under its temporary name, hashed and optionally gzipped as it is written.
struct OpenFile {
    body: Body,
    tmp: TempPath,
    dest: PathBuf,
}

impl OpenFile {
    fn create(dir: &Path, name: &str, compress: Option<u32>, buffer: usize) -> Result<OpenFile> {
        let dest = dir.join(name);
        let tmp = TempPath::in_dir(dir, name);
        let file =
            File::create(tmp.path()).with_context(|| format!("writing {}", dest.display()))?;
        let hw = HashingWriter {
            inner: BufWriter::with_capacity(buffer, file),
            hash: Sha256::new(),
            bytes: 0,
        };
        let body = match compress {
            Some(level) => Body::Gzip(Box::new(GzWriter::new(hw, level))),
            None => Body::Plain(hw),
        };
        Ok(OpenFile { body, tmp, dest })
    }

    /// Ends the file with `# EOF` and syncs it; returns the written size and the SHA-256.
    fn finish(mut self) -> Result<(ClosedFile, u64, String)> {
        let dest = self.dest;
        let ctx = || format!("writing {}", dest.display());
        self.body
            .write_all(openmetrics::EOF_LINE)
            .with_context(ctx)?;
        let mut hw = match self.body {
            Body::Plain(w) => w,
            Body::Gzip(w) => w.finish().with_context(ctx)?,
        };
        hw.flush().with_context(ctx)?;
        let file = hw
            .inner
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(ctx)?;
        file.sync_all().with_context(ctx)?;
        let sha = hw
            .hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let closed = ClosedFile {
            tmp: self.tmp,
            dest,
        };
        Ok((closed, hw.bytes, sha))
    }
}

/// A complete file under its temporary name, deleted when dropped unpersisted.
struct ClosedFile {
    tmp: TempPath,
    dest: PathBuf,
}

impl ClosedFile {
    fn persist(self) -> Result<()> {
        let dest = self.dest;
        self.tmp
            .persist(&dest)
            .with_context(|| format!("renaming into {}", dest.display()))
    }
}

/// One shard file being written under its temporary name; `Write` takes the OpenMetrics text,
/// [`ShardOut::markers`] the stale-markers sidecar's, which is created only when a marker comes,
/// [`ShardOut::histograms`] the native histograms' side file's, likewise.
pub struct ShardFile {
    file: OpenFile,
    side: Option<OpenFile>,
    hist: Option<OpenFile>,
    dir: PathBuf,
    compress: Option<u32>,
    entry: ShardEntry,
}

impl Write for Body {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Body::Plain(w) => w.write(buf),
            Body::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Body::Plain(w) => w.flush(),
            Body::Gzip(w) => w.flush(),
        }
    }
}

impl Write for ShardFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.body.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.body.flush()
    }
}

impl ShardOut for ShardFile {
    fn carries_markers(&self) -> bool {
        true
    }

    fn markers(&mut self) -> io::Result<&mut dyn Write> {
        if self.side.is_none() {
            let name = stale_sidecar_name(&self.entry.file);
            let f = OpenFile::create(&self.dir, &name, self.compress, 1 << 16)
                .map_err(|e| io::Error::other(format!("{e:#}")))?;
            self.side = Some(f);
        }
        Ok(&mut self.side.as_mut().expect("created above").body)
    }

    fn histograms(&mut self) -> io::Result<&mut dyn Write> {
        if self.hist.is_none() {
            let name = hist_sidecar_name(&self.entry.file);
            let f = OpenFile::create(&self.dir, &name, self.compress, 1 << 16)
                .map_err(|e| io::Error::other(format!("{e:#}")))?;
            self.hist = Some(f);
        }
        Ok(&mut self.hist.as_mut().expect("created above").body)
    }
}

impl ShardFile {
    /// Creates the temporary file; `buffer` is the size of the file's write buffer.
    pub fn create(target: &ShardTarget<'_>, buffer: usize) -> Result<ShardFile> {
        let file = OpenFile::create(target.dir, &target.file, target.compress, buffer)?;
        let entry = ShardEntry {
            file: target.file.clone(),
            window_start_ms: target.window_start_ms,
            window_end_ms: target.window_end_ms,
            shard: target.shard,
            ..ShardEntry::default()
        };
        Ok(ShardFile {
            file,
            side: None,
            hist: None,
            dir: target.dir.to_path_buf(),
            compress: target.compress,
            entry,
        })
    }

    /// Ends the file (and its side files) with `# EOF`, syncs them, and returns them with the
    /// manifest entry; `None` (and the file removed) when nothing was written: every sample a
    /// dropped staleness marker. A shard holding only what its side files carry (markers,
    /// histograms) is kept, `# EOF` alone, so that its side files have a shard to stand beside.
    pub fn finish(self, mut stats: WriteStats) -> Result<Option<FinishedShard>> {
        let (file, bytes, sha256) = self.file.finish()?;
        stats.uncompressed_bytes += openmetrics::EOF_LINE.len() as u64;
        let mut sidecars = Vec::new();
        let mut closed = Vec::new();
        let eof = openmetrics::EOF_LINE.len() as u64;
        if let Some(side) = self.side {
            let (c, bytes, sha256) = side.finish()?;
            let m = &mut stats.markers;
            m.uncompressed_bytes += eof;
            sidecars.push(Sidecar {
                kind: SIDECAR_STALE_MARKERS.to_string(),
                file: stale_sidecar_name(&self.entry.file),
                series: m.series,
                samples: m.markers,
                min_ts_ms: m.min_ts.unwrap_or_default(),
                max_ts_ms: m.max_ts.unwrap_or_default(),
                bytes,
                uncompressed_bytes: m.uncompressed_bytes,
                sha256,
            });
            closed.push(c);
        }
        if let Some(hist) = self.hist {
            let (c, bytes, sha256) = hist.finish()?;
            let h = &mut stats.histograms;
            h.uncompressed_bytes += eof;
            sidecars.push(Sidecar {
                kind: SIDECAR_NATIVE_HISTOGRAMS.to_string(),
                file: hist_sidecar_name(&self.entry.file),
                series: h.series,
                samples: h.lines(),
                min_ts_ms: h.min_ts.unwrap_or_default(),
                max_ts_ms: h.max_ts.unwrap_or_default(),
                bytes,
                uncompressed_bytes: h.uncompressed_bytes,
                sha256,
            });
            closed.push(c);
        }
        if stats.samples == 0 && closed.is_empty() {
            return Ok(None);
        }
        let entry = ShardEntry {
            series: stats.series,
            samples: stats.samples,
            min_ts_ms: stats.min_ts.unwrap_or_default(),
            max_ts_ms: stats.max_ts.unwrap_or_default(),
            bytes,
            uncompressed_bytes: stats.uncompressed_bytes,
            sha256,
            sidecars,
            ..self.entry
        };
        Ok(Some(FinishedShard {
            entry,
            stats,
            file,
            sides: closed,
        }))
    }
}

/// A shard (and its side files) written in full under temporary names;
/// [`FinishedShard::persist`] gives them their final names. Dropped unpersisted (another shard
/// failed), they are deleted.
pub struct FinishedShard {
    pub entry: ShardEntry,
    pub stats: WriteStats,
    file: ClosedFile,
    sides: Vec<ClosedFile>,
}

impl FinishedShard {
    pub fn persist(self) -> Result<()> {
        for side in self.sides {
            side.persist()?;
        }
        self.file.persist()
    }
}
