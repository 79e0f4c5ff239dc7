//! Writing one shard: the sorted samples of the series that hash to it, deduplicated, with
//! staleness markers decided (dropped, kept as NaN, or carried in a sidecar file beside the shard)
//! and native histograms in their side file, encoded as OpenMetrics, optionally gzipped,
//! checksummed, and renamed into place only when complete.

mod file;

use std::io::{self, Write};

use anyhow::{Context, Result};

use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::format::{histtext, openmetrics};
use crate::pipeline::spill::{text_at, Rec};
pub use file::{FinishedShard, ShardFile, ShardTarget};

// The names and the hash are the format's; the writers' call sites in `sink` and `stream` name
// them through here.

/// What to do with staleness markers. An exact source (a data directory, remote read) tells a
/// marker by its bits (`0x7ff0000000000002`); dump text prints it `NaN` like a real NaN, so for
/// dump series `Carry` and `Drop` guess: a lone NaN (neighbours not NaN) is taken for a marker
/// and dropped. A native histogram's marker (sum `StaleNaN`) is written to the histograms' side
/// file exactly, except with `Drop`.
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
    /// Repeated timestamps with the same value (float or histogram), dropped silently.
    pub duplicates: u64,
    /// Repeated timestamps with another value (a float and a histogram included); the later
    /// input's value was kept.
    pub conflicts: u64,
    /// Exact markers dropped, and NaNs dropped by the guess.
    pub stale_dropped: u64,
    pub uncompressed_bytes: u64,
    /// Exact markers written to sidecars, and what the sidecars hold.
    pub markers: MarkerStats,
    /// Native histogram samples written to their side files.
    pub histograms: HistogramStats,
}

/// Counts of the native histogram samples (markers among them) in the side files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramStats {
    /// Series with a line in a side file.
    pub series: u64,
    /// Histogram samples written, staleness markers not included.
    pub samples: u64,
    /// Histogram staleness markers written.
    pub stale_markers: u64,
    /// Histogram staleness markers dropped (`--stale drop`).
    pub stale_dropped: u64,
    pub min_ts: Option<i64>,
    pub max_ts: Option<i64>,
    pub uncompressed_bytes: u64,
}

impl HistogramStats {
    fn add(&mut self, o: &HistogramStats) {
        self.series += o.series;
        self.samples += o.samples;
        self.stale_markers += o.stale_markers;
        self.stale_dropped += o.stale_dropped;
        self.min_ts = min_opt(self.min_ts, o.min_ts);
        self.max_ts = self.max_ts.max(o.max_ts);
        self.uncompressed_bytes += o.uncompressed_bytes;
    }

    /// Lines written: samples and markers.
    pub fn lines(&self) -> u64 {
        self.samples + self.stale_markers
    }
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
        self.histograms.add(&o.histograms);
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

/// [`push_dedup`] for a series' histogram samples: `at` is where the value text lies in
/// `texts`; the same text is the same histogram (each has one spelling).
pub fn push_dedup_hist(
    hists: &mut Vec<(i64, u64)>,
    texts: &[u8],
    ts: i64,
    at: u64,
    stats: &mut WriteStats,
) {
    match hists.last_mut() {
        Some(last) if last.0 == ts => {
            if text_at(texts, last.1) == text_at(texts, at) {
                stats.duplicates += 1;
            } else {
                stats.conflicts += 1;
                last.1 = at;
            }
        }
        _ => hists.push((ts, at)),
    }
}

/// A series' native histogram samples, time-sorted and deduplicated: each timestamp with where
/// its value text lies in `texts` (see [`crate::pipeline::spill::Texts`]).
#[derive(Clone, Copy, Debug)]
pub struct Hists<'a> {
    pub texts: &'a [u8],
    pub samples: &'a [(i64, u64)],
}

impl Hists<'_> {
    /// A series with no histogram sample.
    pub const NONE: Hists<'static> = Hists {
        texts: &[],
        samples: &[],
    };
}

/// Where a shard's OpenMetrics text goes, and whether its staleness markers can go beside it.
pub trait ShardOut: Write {
    /// Whether [`ShardOut::markers`] gives a place for markers (a shard file: yes; stdout: no).
    fn carries_markers(&self) -> bool;
    /// The sidecar taking the markers' OpenMetrics text, created on first use.
    fn markers(&mut self) -> io::Result<&mut dyn Write>;
    /// The side file taking the native histograms' text ([`histtext`]), created on first use.
    fn histograms(&mut self) -> io::Result<&mut dyn Write>;
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

    fn histograms(&mut self) -> io::Result<&mut dyn Write> {
        Err(io::Error::other(
            "this output cannot carry native histograms",
        ))
    }
}

/// Buffered text is handed on in blocks of about this size.
const TEXT_BLOCK: usize = 1 << 18;

/// Renders whole series (time-sorted, deduplicated) as OpenMetrics text, applying the staleness
/// rule, and hands the text to `out` in blocks of about 256 KiB; carried markers go to the
/// sidecar the same way, in the same series order, and native histograms to theirs. The sorted
/// and the streamed write paths both end here, so they make the same bytes, down to the gzip
/// stream.
pub struct TextWriter<W: ShardOut> {
    out: W,
    stale: StaleMode,
    buf: Vec<u8>,
    side: Vec<u8>,
    hist: Vec<u8>,
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
            hist: Vec::new(),
            stats: WriteStats::default(),
        }
    }

    /// Writes one series: its float samples `s` and its histogram samples `h`; `guess` is `Some`
    /// for a dump series whose lone NaNs are taken for staleness markers (see [`Guess`]).
    /// Returns whether any sample (float or histogram, not a marker) was written.
    pub fn series(
        &mut self,
        prefix: &[u8],
        s: &[(i64, u64)],
        h: Hists<'_>,
        guess: Guess,
    ) -> io::Result<bool> {
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
        let hists = self.histograms(prefix, h);
        if self.buf.len() >= TEXT_BLOCK {
            self.flush_buf()?;
        }
        if self.side.len() >= TEXT_BLOCK {
            self.flush_side()?;
        }
        if self.hist.len() >= TEXT_BLOCK {
            self.flush_hist()?;
        }
        Ok(written > 0 || hists > 0)
    }

    /// Renders a series' histogram samples into the side file's buffer, markers but with
    /// `--stale drop`; returns the samples (not markers) written.
    fn histograms(&mut self, prefix: &[u8], h: Hists<'_>) -> u64 {
        let st = &mut self.stats.histograms;
        let (mut samples, mut lines) = (0u64, 0u64);
        for &(ts, at) in h.samples {
            let text = text_at(h.texts, at);
            if histtext::is_stale_text(text) {
                if self.stale == StaleMode::Drop {
                    st.stale_dropped += 1;
                    continue;
                }
                st.stale_markers += 1;
            } else {
                samples += 1;
            }
            histtext::write_line(prefix, text, ts, &mut self.hist);
            st.min_ts = min_opt(st.min_ts, Some(ts));
            st.max_ts = st.max_ts.max(Some(ts));
            lines += 1;
        }
        st.samples += samples;
        st.series += u64::from(lines > 0);
        samples
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

    fn flush_hist(&mut self) -> io::Result<()> {
        if self.hist.is_empty() {
            return Ok(());
        }
        self.stats.histograms.uncompressed_bytes += self.hist.len() as u64;
        self.out.histograms()?.write_all(&self.hist)?;
        self.hist.clear();
        Ok(())
    }

    /// Writes out what is buffered (not the `# EOF` lines) and returns the writer and the counts.
    pub fn finish(mut self) -> io::Result<(W, WriteStats)> {
        self.flush_buf()?;
        self.flush_side()?;
        self.flush_hist()?;
        Ok((self.out, self.stats))
    }
}

/// Encodes records sorted by (series rank, timestamp), input order kept among equal timestamps,
/// into OpenMetrics on `out` (without the `# EOF` line); histogram records' texts lie in `texts`.
pub struct Encoder<'a, I: SeriesInfo, W: ShardOut> {
    info: &'a I,
    texts: &'a [u8],
    cur: Option<u32>,
    samples: Vec<(i64, u64)>,
    hists: Vec<(i64, u64)>,
    text: TextWriter<W>,
}

impl<'a, I: SeriesInfo, W: ShardOut> Encoder<'a, I, W> {
    pub fn new(info: &'a I, stale: StaleMode, texts: &'a [u8], out: W) -> Self {
        Encoder {
            info,
            texts,
            cur: None,
            samples: Vec::new(),
            hists: Vec::new(),
            text: TextWriter::new(out, stale),
        }
    }

    /// Takes the next record. At a repeated timestamp the later record wins, whatever its
    /// kind: a float and a histogram at one timestamp are a conflict, as Prometheus keeps one
    /// sample per timestamp (at most one of the two lists holds the current timestamp).
    pub fn push(&mut self, r: &Rec) -> io::Result<()> {
        if self.cur != Some(r.series) {
            self.flush_series()?;
            self.cur = Some(r.series);
        }
        let stats = &mut self.text.stats;
        let (mine, other) = if r.hist {
            (&mut self.hists, &mut self.samples)
        } else {
            (&mut self.samples, &mut self.hists)
        };
        if other.last().is_some_and(|l| l.0 == r.ts) {
            other.pop();
            stats.conflicts += 1;
            mine.push((r.ts, r.val));
        } else if r.hist {
            push_dedup_hist(mine, self.texts, r.ts, r.val, stats);
        } else {
            push_dedup(mine, r.ts, r.val, stats);
        }
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
        let h = Hists {
            texts: self.texts,
            samples: &self.hists,
        };
        if self
            .text
            .series(self.info.prefix(series), &self.samples, h, guess)?
        {
            self.info.mark_written(series);
        }
        self.samples.clear();
        self.hists.clear();
        Ok(())
    }
}

/// Writes one shard file from sorted records under a temporary name (histogram records' texts
/// lie in `texts`); returns it with its manifest entry, or `None` when nothing was left to write
/// (every sample a dropped staleness marker).
pub fn write_shard<I: SeriesInfo>(
    target: &ShardTarget<'_>,
    info: &I,
    stale: StaleMode,
    texts: &[u8],
    recs: impl Iterator<Item = io::Result<Rec>>,
) -> Result<Option<FinishedShard>> {
    let file = ShardFile::create(target, 1 << 20)?;
    let ctx = || format!("writing {}", target.dir.join(&target.file).display());
    let mut enc = Encoder::new(info, stale, texts, file);
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
        Rec::float(series, ts, v.to_bits())
    }

    fn encode(recs: &[Rec], stale: StaleMode, guess: Guess) -> (String, WriteStats) {
        let info = Info(vec![b"a ".to_vec(), b"b{x=\"1\"} ".to_vec()], guess);
        let mut enc = Encoder::new(&info, stale, &[], NoSidecar(Vec::new()));
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
        let f = write_shard(&target, &info, StaleMode::Carry, &[], recs)
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
    }

    /// A histogram sample of `series` whose value text (stored in `texts`) has sum `sum`.
    fn hrec(texts: &mut Vec<u8>, series: u32, ts: i64, sum: u64) -> Rec {
        use crate::format::histogram::{Histogram, HistogramValue};
        let mut v = Vec::new();
        let h = Histogram {
            count: 1,
            sum,
            ..Histogram::default()
        };
        histtext::write_value(&HistogramValue::Int(h), &mut v);
        Rec {
            ts,
            val: crate::pipeline::spill::push_text(texts, &v),
            series,
            hist: true,
        }
    }

    fn value(sum: &str) -> String {
        format!(
            "{{count:1,sum:{sum},schema:0,zero_threshold:0,zero_count:0,negative_spans:[],\
             negative_buckets:[],positive_spans:[],positive_buckets:[],custom_values:[],\
             counter_reset_hint:unknown,kind:int}}"
        )
    }

    #[test]
    fn histograms_go_to_their_side_file_the_later_sample_winning_at_a_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let mut texts = Vec::new();
        let one = 1f64.to_bits();
        let recs = [
            rec(0, 1000, 1.0),
            hrec(&mut texts, 0, 1000, one),
            hrec(&mut texts, 0, 2000, one),
            rec(0, 2000, 5.0),
            hrec(&mut texts, 0, 3000, one),
            hrec(&mut texts, 0, 3000, one),
            hrec(&mut texts, 0, 4000, one),
            hrec(&mut texts, 0, 4000, 2f64.to_bits()),
            hrec(&mut texts, 0, 5000, STALE_NAN_BITS),
            hrec(&mut texts, 1, 1000, one),
        ];
        let info = Info(vec![b"a ".to_vec(), b"b{x=\"1\"} ".to_vec()], None);
        for (stale, markers) in [
            (StaleMode::Carry, 1),
            (StaleMode::Keep, 1),
            (StaleMode::Drop, 0),
        ] {
            let target = ShardTarget {
                dir: dir.path(),
                file: "w-000.om".into(),
                compress: None,
                window_start_ms: 0,
                window_end_ms: 10_000,
                shard: 0,
            };
            let it = recs.iter().map(|r| Ok(*r));
            let f = write_shard(&target, &info, stale, &texts, it)
                .unwrap()
                .unwrap();
            let st = &f.stats;
            assert_eq!(
                (st.samples, st.series, st.duplicates, st.conflicts),
                (1, 1, 1, 3)
            );
            let h = &st.histograms;
            assert_eq!((h.samples, h.stale_markers, h.series), (4, markers, 2));
            assert_eq!(h.stale_dropped, 1 - markers);
            let sc = f.entry.sidecars[0].clone();
            assert_eq!(f.entry.sidecars.len(), 1);
            assert_eq!(
                (sc.kind.as_str(), sc.file.as_str()),
                ("native_histograms", "w-000.hist.om")
            );
            assert_eq!(
                (sc.series, sc.samples, sc.min_ts_ms),
                (2, 4 + markers, 1000)
            );
            assert_eq!(sc.max_ts_ms, if markers == 1 { 5000 } else { 4000 });
            f.persist().unwrap();
            let shard = std::fs::read_to_string(dir.path().join("w-000.om")).unwrap();
            assert_eq!(shard, "a 5 2\n# EOF\n");
            let side = std::fs::read_to_string(dir.path().join("w-000.hist.om")).unwrap();
            let mut want = format!(
                "a {} 1\na {} 3\na {} 4\n",
                value("1"),
                value("1"),
                value("2")
            );
            if markers == 1 {
                want += &format!("a {} 5\n", value("StaleNaN"));
            }
            want += &format!("b{{x=\"1\"}} {} 1\n# EOF\n", value("1"));
            assert_eq!(side, want);
            assert_eq!(sc.uncompressed_bytes, side.len() as u64);
        }
        // A shard of histograms only is kept, `# EOF` alone beside its side file.
        let target = ShardTarget {
            dir: dir.path(),
            file: "v-000.om".into(),
            compress: None,
            window_start_ms: 0,
            window_end_ms: 10_000,
            shard: 0,
        };
        let it = recs[9..].iter().map(|r| Ok(*r));
        let f = write_shard(&target, &info, StaleMode::Drop, &texts, it)
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.entry.samples, f.entry.series, f.entry.sidecars.len()),
            (0, 0, 1)
        );
        // Stdout has no side file.
        let mut enc = Encoder::new(&info, StaleMode::Keep, &texts, NoSidecar(Vec::new()));
        enc.push(&recs[9]).unwrap();
        let err = enc.finish().err().unwrap();
        assert!(
            err.to_string().contains("cannot carry native histograms"),
            "{err}"
        );
    }
}
