//! Writing one shard: the sorted samples of the series that hash to it, deduplicated, with
//! staleness markers decided (dropped, kept as NaN, or carried in a sidecar file beside the shard),
//! encoded as OpenMetrics, optionally gzipped, checksummed, and renamed into place only when complete.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::format::gzip::GzWriter;
use crate::format::openmetrics;
use crate::format::shard_dir::{stale_sidecar_name, ShardEntry, Sidecar, SIDECAR_STALE_MARKERS};
use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::pipeline::atomic_file::TempPath;
use crate::pipeline::spill::Rec;

// The names and the hash are the format's; the writers' call sites in `sink` and `stream` name
// them through here.

/// What to do with staleness markers. An exact source (a data directory, remote read) tells a
/// marker by its bits (`0x7ff0000000000002`); dump text prints it `NaN` like a real NaN, so for
/// dump series `Carry` and `Drop` guess: a lone NaN (neighbours not NaN) is taken for a marker
/// and dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleMode {
    /// Exact markers go to a sidecar file beside their shard (dropped where there is none: stdout).
    Carry,
    /// Exact markers are dropped.
    Drop,
    /// Every marker and NaN is written as NaN in the shard.
    Keep,
}

impl StaleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StaleMode::Carry => "carry",
            StaleMode::Drop => "drop",
            StaleMode::Keep => "keep",
        }
    }
}

/// The NaN guess for a dump series: whether the samples just before and after this window (in
/// other windows) are NaN. `None` for a series from an exact source, which needs no guess.
pub type Guess = Option<(Option<bool>, Option<bool>)>;

/// What a series looks like to the writer: its rendered `name{labels} ` prefix, and the staleness
/// guess to apply to it.
pub trait SeriesInfo: Sync {
    fn prefix(&self, series: u32) -> &[u8];
    fn guess(&self, series: u32) -> Guess;
    /// Told once per shard for each series that had samples written.
    fn mark_written(&self, series: u32);
}

/// Counts gathered while writing.
#[derive(Clone, Debug, Default)]
pub struct WriteStats {
    pub series: u64,
    pub samples: u64,
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    /// Repeated timestamps with the same value, dropped silently.
    pub duplicates: u64,
    /// Repeated timestamps with another value; the later input's value was kept.
    pub conflicts: u64,
    /// Exact markers dropped, and NaNs dropped by the guess.
    pub stale_dropped: u64,
    pub uncompressed_bytes: u64,
    /// Exact markers written to sidecars, and what the sidecars hold.
    pub markers: MarkerStats,
}

/// Counts of the staleness markers carried in sidecars.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkerStats {
    pub series: u64,
    pub markers: u64,
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    pub uncompressed_bytes: u64,
}

impl MarkerStats {
    fn add(&mut self, o: &MarkerStats) {
        self.series += o.series;
        self.markers += o.markers;
        self.min_ts = min_opt(self.min_ts, o.min_ts);
        self.max_ts = self.max_ts.max(o.max_ts);
        self.uncompressed_bytes += o.uncompressed_bytes;
    }
}

impl WriteStats {
    pub fn add(&mut self, o: &WriteStats) {
        self.series += o.series;
        self.samples += o.samples;
        self.min_ts = min_opt(self.min_ts, o.min_ts);
        self.max_ts = self.max_ts.max(o.max_ts);
        self.duplicates += o.duplicates;
        self.conflicts += o.conflicts;
        self.stale_dropped += o.stale_dropped;
        self.uncompressed_bytes += o.uncompressed_bytes;
        self.markers.add(&o.markers);
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Adds a sample to a series' time-sorted samples: a repeated timestamp keeps the later value,
/// counted as a duplicate (same value) or a conflict (another value).
pub fn push_dedup(samples: &mut Vec<(i64, u64)>, ts: i64, val: u64, stats: &mut WriteStats) {
    match samples.last_mut() {
        Some(last) if last.0 == ts => {
            if last.1 == val {
                stats.duplicates += 1;
            } else {
                stats.conflicts += 1;
                last.1 = val;
            }
        }
        _ => samples.push((ts, val)),
    }
}

/// Where a shard's OpenMetrics text goes, and whether its staleness markers can go beside it.
pub trait ShardOut: Write {
    /// Whether [`ShardOut::markers`] gives a place for markers (a shard file: yes; stdout: no).
    fn carries_markers(&self) -> bool;
    /// The sidecar taking the markers' OpenMetrics text, created on first use.
    fn markers(&mut self) -> io::Result<&mut dyn Write>;
}

/// An output with no room for markers (stdout, a buffer): carried markers are dropped, counted.
pub struct NoSidecar<W: Write>(pub W);

impl<W: Write> Write for NoSidecar<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> ShardOut for NoSidecar<W> {
    fn carries_markers(&self) -> bool {
        false
    }

    fn markers(&mut self) -> io::Result<&mut dyn Write> {
        Err(io::Error::other("this output carries no staleness markers"))
    }
}

/// Buffered text is handed on in blocks of about this size.
const TEXT_BLOCK: usize = 1 << 18;

/// Renders whole series (time-sorted, deduplicated) as OpenMetrics text, applying the staleness
/// rule, and hands the text to `out` in blocks of about 256 KiB; carried markers go to the
/// sidecar the same way, in the same series order. The sorted and the streamed write paths both
/// end here, so they make the same bytes, down to the gzip stream.
pub struct TextWriter<W: ShardOut> {
    out: W,
    stale: StaleMode,
    buf: Vec<u8>,
    side: Vec<u8>,
    pub stats: WriteStats,
}

impl<W: ShardOut> TextWriter<W> {
    pub fn new(out: W, stale: StaleMode) -> Self {
        let stale = match stale {
            StaleMode::Carry if !out.carries_markers() => StaleMode::Drop,
            s => s,
        };
        TextWriter {
            out,
            stale,
            buf: Vec::with_capacity(TEXT_BLOCK),
            side: Vec::new(),
            stats: WriteStats::default(),
        }
    }

    /// Writes one series; `guess` is `Some` for a dump series whose lone NaNs are taken for
    /// staleness markers (see [`Guess`]). Returns whether any sample went to the shard.
    pub fn series(&mut self, prefix: &[u8], s: &[(i64, u64)], guess: Guess) -> io::Result<bool> {
        let is_nan = |i: usize| f64::from_bits(s[i].1).is_nan();
        let mut written = 0u64;
        let mut carried = 0u64;
        for i in 0..s.len() {
            let (ts, bits) = s[i];
            if bits == STALE_NAN_BITS && self.stale != StaleMode::Keep {
                if self.stale == StaleMode::Carry {
                    openmetrics::write_sample(prefix, f64::NAN, ts, &mut self.side);
                    let m = &mut self.stats.markers;
                    m.min_ts = min_opt(m.min_ts, Some(ts));
                    m.max_ts = m.max_ts.max(Some(ts));
                    carried += 1;
                } else {
                    self.stats.stale_dropped += 1;
                }
                continue;
            }
            if let (Some((before, after)), true) = (guess, is_nan(i)) {
                let prev = if i > 0 {
                    is_nan(i - 1)
                } else {
                    before.unwrap_or(false)
                };
                let next = if i + 1 < s.len() {
                    is_nan(i + 1)
                } else {
                    after.unwrap_or(false)
                };
                if !prev && !next {
                    self.stats.stale_dropped += 1;
                    continue;
                }
            }
            openmetrics::write_sample(prefix, f64::from_bits(bits), ts, &mut self.buf);
            self.stats.min_ts = min_opt(self.stats.min_ts, Some(ts));
            self.stats.max_ts = self.stats.max_ts.max(Some(ts));
            written += 1;
        }
        if written > 0 {
            self.stats.series += 1;
            self.stats.samples += written;
        }
        if carried > 0 {
            self.stats.markers.series += 1;
            self.stats.markers.markers += carried;
        }
        if self.buf.len() >= TEXT_BLOCK {
            self.flush_buf()?;
        }
        if self.side.len() >= TEXT_BLOCK {
            self.flush_side()?;
        }
        Ok(written > 0)
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        self.stats.uncompressed_bytes += self.buf.len() as u64;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    fn flush_side(&mut self) -> io::Result<()> {
        if self.side.is_empty() {
            return Ok(());
        }
        self.stats.markers.uncompressed_bytes += self.side.len() as u64;
        self.out.markers()?.write_all(&self.side)?;
        self.side.clear();
        Ok(())
    }

    /// Writes out what is buffered (not the `# EOF` lines) and returns the writer and the counts.
    pub fn finish(mut self) -> io::Result<(W, WriteStats)> {
        self.flush_buf()?;
        self.flush_side()?;
        Ok((self.out, self.stats))
    }
}

/// Encodes records sorted by (series rank, timestamp), input order kept among equal timestamps,
/// into OpenMetrics on `out` (without the `# EOF` line).
pub struct Encoder<'a, I: SeriesInfo, W: ShardOut> {
    info: &'a I,
    cur: Option<u32>,
    samples: Vec<(i64, u64)>,
    text: TextWriter<W>,
}

impl<'a, I: SeriesInfo, W: ShardOut> Encoder<'a, I, W> {
    pub fn new(info: &'a I, stale: StaleMode, out: W) -> Self {
        Encoder {
            info,
            cur: None,
            samples: Vec::new(),
            text: TextWriter::new(out, stale),
        }
    }

    pub fn push(&mut self, r: &Rec) -> io::Result<()> {
        if self.cur != Some(r.series) {
            self.flush_series()?;
            self.cur = Some(r.series);
        }
        push_dedup(&mut self.samples, r.ts, r.val, &mut self.text.stats);
        Ok(())
    }

    /// Writes the pending series and the buffer out.
    pub fn finish(mut self) -> io::Result<(W, WriteStats)> {
        self.flush_series()?;
        self.text.finish()
    }

    fn flush_series(&mut self) -> io::Result<()> {
        let Some(series) = self.cur.take() else {
            return Ok(());
        };
        let guess = self.info.guess(series);
        if self
            .text
            .series(self.info.prefix(series), &self.samples, guess)?
        {
            self.info.mark_written(series);
        }
        self.samples.clear();
        Ok(())
    }
}

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
/// [`ShardOut::markers`] the stale-markers sidecar's, which is created only when a marker comes.
pub struct ShardFile {
    file: OpenFile,
    side: Option<OpenFile>,
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
            dir: target.dir.to_path_buf(),
            compress: target.compress,
            entry,
        })
    }

    /// Ends the file (and its sidecar) with `# EOF`, syncs them, and returns them with the
    /// manifest entry; `None` (and the file removed) when nothing was written: every sample a
    /// dropped staleness marker. A shard holding only carried markers is kept, `# EOF` alone,
    /// so that its sidecar has a shard to stand beside.
    pub fn finish(self, mut stats: WriteStats) -> Result<Option<FinishedShard>> {
        let (file, bytes, sha256) = self.file.finish()?;
        stats.uncompressed_bytes += openmetrics::EOF_LINE.len() as u64;
        let mut sidecars = Vec::new();
        let side = match self.side {
            Some(side) => {
                let (closed, bytes, sha256) = side.finish()?;
                let m = &mut stats.markers;
                m.uncompressed_bytes += openmetrics::EOF_LINE.len() as u64;
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
                Some(closed)
            }
            None => None,
        };
        if stats.samples == 0 && side.is_none() {
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
            side,
        }))
    }
}

/// A shard (and its sidecar) written in full under temporary names; [`FinishedShard::persist`]
/// gives them their final names. Dropped unpersisted (another shard failed), they are deleted.
pub struct FinishedShard {
    pub entry: ShardEntry,
    pub stats: WriteStats,
    file: ClosedFile,
    side: Option<ClosedFile>,
}

impl FinishedShard {
    pub fn persist(self) -> Result<()> {
        if let Some(side) = self.side {
            side.persist()?;
        }
        self.file.persist()
    }
}

/// Writes one shard file from sorted records under a temporary name; returns it with its manifest
/// entry, or `None` when nothing was left to write (every sample a dropped staleness marker).
pub fn write_shard<I: SeriesInfo>(
    target: &ShardTarget<'_>,
    info: &I,
    stale: StaleMode,
    recs: impl Iterator<Item = io::Result<Rec>>,
) -> Result<Option<FinishedShard>> {
    let file = ShardFile::create(target, 1 << 20)?;
    let ctx = || format!("writing {}", target.dir.join(&target.file).display());
    let mut enc = Encoder::new(info, stale, file);
    for r in recs {
        let r = r.context("reading spilled samples back")?;
        enc.push(&r).with_context(ctx)?;
    }
    let (file, stats) = enc.finish().with_context(ctx)?;
    file.finish(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Info(Vec<Vec<u8>>, Guess);
    impl SeriesInfo for Info {
        fn prefix(&self, s: u32) -> &[u8] {
            &self.0[s as usize]
        }
        fn guess(&self, _: u32) -> Guess {
            self.1
        }
        fn mark_written(&self, _: u32) {}
    }

    fn rec(series: u32, ts: i64, v: f64) -> Rec {
        Rec {
            ts,
            val: v.to_bits(),
            series,
        }
    }

    fn encode(recs: &[Rec], stale: StaleMode, guess: Guess) -> (String, WriteStats) {
        let info = Info(vec![b"a ".to_vec(), b"b{x=\"1\"} ".to_vec()], guess);
        let mut enc = Encoder::new(&info, stale, NoSidecar(Vec::new()));
        for r in recs {
            enc.push(r).unwrap();
        }
        let (out, stats) = enc.finish().unwrap();
        (String::from_utf8(out.0).unwrap(), stats)
    }

    #[test]
    fn dedup_keeps_later_value_and_counts() {
        let recs = [
            rec(0, 1000, 1.0),
            rec(0, 1000, 1.0),
            rec(0, 2000, 2.0),
            rec(0, 2000, 3.0),
            rec(1, 1000, 5.0),
        ];
        let (text, st) = encode(&recs, StaleMode::Keep, None);
        assert_eq!(text, "a 1 1\na 3 2\nb{x=\"1\"} 5 1\n");
        assert_eq!(
            (st.duplicates, st.conflicts, st.series, st.samples),
            (1, 1, 2, 3)
        );
    }

    #[test]
    fn lone_nan_dropped_runs_kept() {
        let n = f64::NAN;
        let recs = [
            rec(0, 1000, 1.0),
            rec(0, 2000, n),
            rec(0, 3000, 2.0),
            rec(0, 4000, n),
            rec(0, 5000, n),
            rec(0, 6000, 3.0),
        ];
        let (text, st) = encode(&recs, StaleMode::Drop, Some((None, None)));
        assert_eq!(text, "a 1 1\na 2 3\na NaN 4\na NaN 5\na 3 6\n");
        assert_eq!(st.stale_dropped, 1);
        let (text, st) = encode(&recs, StaleMode::Keep, None);
        assert_eq!(text.lines().count(), 6);
        assert_eq!(st.stale_dropped, 0);
    }

    #[test]
    fn staleness_looks_across_windows() {
        let recs = [rec(0, 1000, f64::NAN), rec(0, 2000, 1.0)];
        let (text, _) = encode(&recs, StaleMode::Drop, Some((Some(true), None)));
        assert_eq!(text, "a NaN 1\na 1 2\n");
        let (text, st) = encode(&recs, StaleMode::Carry, Some((Some(false), None)));
        assert_eq!((text.as_str(), st.stale_dropped), ("a 1 2\n", 1));
    }

    #[test]
    fn exact_markers_by_mode_and_output() {
        let m = f64::from_bits(STALE_NAN_BITS);
        let recs = [rec(0, 1000, 1.0), rec(0, 2000, m), rec(0, 3000, f64::NAN)];
        // An exact series: no guess; the real NaN stays whatever the mode.
        let (text, st) = encode(&recs, StaleMode::Keep, None);
        assert_eq!(
            (text.as_str(), st.samples),
            ("a 1 1\na NaN 2\na NaN 3\n", 3)
        );
        for mode in [StaleMode::Drop, StaleMode::Carry] {
            // Carry with no room for a sidecar (stdout) drops, counted.
            let (text, st) = encode(&recs, mode, None);
            assert_eq!(text, "a 1 1\na NaN 3\n");
            assert_eq!((st.stale_dropped, st.markers.markers), (1, 0));
        }
        // Into a shard file, carried: the sidecar takes the marker, the shard the rest.
        let dir = tempfile::tempdir().unwrap();
        let target = ShardTarget {
            dir: dir.path(),
            file: "w-000.om".into(),
            compress: None,
            window_start_ms: 0,
            window_end_ms: 10_000,
            shard: 0,
        };
        let info = Info(vec![b"a ".to_vec()], None);
        let recs = recs.iter().map(|r| Ok(*r));
        let f = write_shard(&target, &info, StaleMode::Carry, recs)
            .unwrap()
            .unwrap();
        let sc = f.entry.sidecars[0].clone();
        assert_eq!((f.entry.samples, sc.samples, sc.series), (2, 1, 1));
        assert_eq!(
            (sc.min_ts_ms, sc.max_ts_ms, sc.file.as_str()),
            (2000, 2000, "w-000.stale.om")
        );
        f.persist().unwrap();
        let side = std::fs::read(dir.path().join("w-000.stale.om")).unwrap();
        assert_eq!(side, b"a NaN 2\n# EOF\n");
        assert_eq!(sc.uncompressed_bytes, side.len() as u64);
        assert_eq!(
            sc.sha256,
            crate::format::shard_dir::sha256_hex(&side[..]).unwrap()
        );
        assert_eq!(stale_sidecar_name("x-1.om.gz"), "x-1.stale.om.gz");
    }
}
