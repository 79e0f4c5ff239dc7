//! A block's chunks and metadata as Prometheus writes them: samples cut into chunks the way its
//! head cuts them (`head_cut`: floats as 2.42, native histograms as 3.5), chunk segment files,
//! the index (via `index_writer`), `meta.json`.

use std::io::{self, Write};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::chunks::{HEADER_LEN, MAGIC as SEGMENT_MAGIC};
use super::head_cut::{Cut, SeriesHead};
use super::index::ChunkMeta;
use super::index_writer::IndexWriter;
use super::{crc32c, put_uvarint, tombstones};
use crate::format::histogram::{is_custom_buckets, HistogramValue};
use crate::labels::Labels;

/// Prometheus's `DefaultChunkSegmentSize`: a new segment file is started past it.
pub const SEGMENT_SIZE: u64 = 512 << 20;
pub use super::head_cut::SAMPLES_PER_CHUNK;
/// Room a chunk may take in a segment beyond its data: longest length varint, encoding, CRC.
const CHUNK_OVERHEAD: u64 = 5 + 1 + 4;

/// The tombstones file of a block with no deletions: magic, format 1, CRC32C of no entries.
pub fn empty_tombstones() -> Vec<u8> {
    let mut b = tombstones::MAGIC.to_be_bytes().to_vec();
    b.push(1);
    b.extend_from_slice(&crc32c(&[]).to_be_bytes());
    b
}

/// Writes chunks into numbered segment files (`open(1)` gives `chunks/000001`'s writer).
pub struct SegmentWriter<W: Write, F: FnMut(u32) -> io::Result<W>> {
    open: F,
    done: Vec<W>,
    cur: Option<W>,
    /// Bytes in the current segment.
    n: u64,
    max: u64,
}

impl<W: Write, F: FnMut(u32) -> io::Result<W>> SegmentWriter<W, F> {
    pub fn new(open: F) -> Self {
        Self::with_segment_size(open, SEGMENT_SIZE)
    }

    pub fn with_segment_size(open: F, max: u64) -> Self {
        SegmentWriter {
            open,
            done: Vec::new(),
            cur: None,
            n: 0,
            max,
        }
    }

    fn cut(&mut self) -> Result<()> {
        if let Some(mut w) = self.cur.take() {
            w.flush().context("writing a chunk segment")?;
            self.done.push(w);
        }
        let seq = self.done.len() as u32 + 1;
        let mut w = (self.open)(seq).with_context(|| format!("creating chunk segment {seq}"))?;
        let mut head = SEGMENT_MAGIC.to_be_bytes().to_vec();
        head.extend_from_slice(&[1, 0, 0, 0]);
        w.write_all(&head).context("writing a chunk segment")?;
        self.cur = Some(w);
        self.n = HEADER_LEN as u64;
        Ok(())
    }

    /// Appends one chunk and returns its block chunk reference (segment index << 32 | offset).
    pub fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> Result<u64> {
        let size = CHUNK_OVERHEAD + data.len() as u64;
        if self.cur.is_none() || (self.n > HEADER_LEN as u64 && self.n + size > self.max) {
            self.cut()?;
        }
        let chunk_ref = (self.done.len() as u64) << 32 | self.n;
        let mut b = Vec::with_capacity(data.len() + 10);
        put_uvarint(&mut b, data.len() as u64);
        let body = b.len();
        b.push(encoding);
        b.extend_from_slice(data);
        let sum = crc32c(&b[body..]);
        b.extend_from_slice(&sum.to_be_bytes());
        let w = self.cur.as_mut().expect("cut above");
        w.write_all(&b).context("writing a chunk segment")?;
        self.n += b.len() as u64;
        Ok(chunk_ref)
    }

    /// Flushes and returns every segment's writer, in order (for the caller to sync them).
    pub fn finish(mut self) -> Result<Vec<W>> {
        if let Some(mut w) = self.cur.take() {
            w.flush().context("writing a chunk segment")?;
            self.done.push(w);
        }
        Ok(self.done)
    }
}

/// What a finished block holds, for its `meta.json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Every sample, floats and histograms (Prometheus 3.5's `numSamples`).
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
    /// First sample's time.
    pub min_time: i64,
    /// Last sample's time + 1 (blocks are half-open).
    pub max_time: i64,
    /// The samples appended as histograms (staleness markers of histogram series included),
    /// and what kinds of histogram they were: what a reader of the block must know.
    pub histograms: HistogramStats,
}

/// The native histogram samples a block holds, by what a Prometheus must read to load them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistogramStats {
    /// Histogram samples, markers included.
    pub samples: u64,
    /// In float histogram chunks (encoding 3).
    pub float: u64,
    /// With custom bucket bounds (schema -53, NHCB).
    pub custom_buckets: u64,
}

impl HistogramStats {
    /// Counts one histogram sample (a staleness marker too) by its kind.
    pub fn add(&mut self, h: &HistogramValue) {
        self.samples += 1;
        let schema = match h {
            HistogramValue::Int(h) => h.schema,
            HistogramValue::Float(h) => {
                self.float += 1;
                h.schema
            }
        };
        self.custom_buckets += u64::from(is_custom_buckets(schema));
    }
}

impl std::ops::AddAssign for HistogramStats {
    fn add_assign(&mut self, o: HistogramStats) {
        self.samples += o.samples;
        self.float += o.float;
        self.custom_buckets += o.custom_buckets;
    }
}

/// A cut chunk waiting for its place in the segments: its body is `arena[start..end]`.
struct Pending {
    encoding: u8,
    min_time: i64,
    max_time: i64,
    start: usize,
    end: usize,
}

/// The series being written: its chunks so far and its head, which cuts them.
struct Open {
    labels: Labels,
    chunks: Vec<Pending>,
    head: SeriesHead,
}

/// Builds one block: series arrive one at a time (any order) with strictly increasing sample
/// times, floats and native histograms in any mix. Chunks are cut as Prometheus's head cuts
/// them (`head_cut`), kept in memory (a block's compressed chunks are a fraction of its input)
/// and written by [`BlockWriter::finish`] in series order, as Prometheus's compactor lays them
/// out, then the index.
pub struct BlockWriter {
    chunk_range: i64,
    arena: Vec<u8>,
    series: Vec<(Labels, Vec<Pending>)>,
    open: Option<Open>,
    stats: BlockStats,
}

impl BlockWriter {
    /// `chunk_range` is the head's chunk range the cuts follow; promtool's backfill uses twice
    /// the block duration.
    pub fn new(chunk_range: i64) -> Self {
        BlockWriter {
            chunk_range: chunk_range.max(1),
            arena: Vec::new(),
            series: Vec::new(),
            open: None,
            stats: BlockStats {
                min_time: i64::MAX,
                max_time: i64::MIN,
                ..Default::default()
            },
        }
    }

    /// Ends the previous series and starts `labels`.
    pub fn start_series(&mut self, labels: Labels) -> Result<()> {
        self.close_series()?;
        self.open = Some(Open {
            labels,
            chunks: Vec::new(),
            head: SeriesHead::new(self.chunk_range),
        });
        Ok(())
    }

    /// Appends a float sample (value as raw bits) to the current series, cutting a chunk where
    /// Prometheus's head would (`appendPreprocessor` in 2.42).
    pub fn append(&mut self, t: i64, v: u64) -> Result<()> {
        let Some(s) = self.open.as_mut() else {
            bail!("a sample before any series");
        };
        let done = s
            .head
            .append_float(t, v)
            .map_err(|e| anyhow!("series {}: {e:#}", s.labels))?;
        self.appended(t, done);
        Ok(())
    }

    /// Appends a native histogram sample to the current series, cutting a chunk where
    /// Prometheus 3.5's head would (its size and time rule, the appender's own cuts, and a new
    /// chunk when the series changes sample type).
    pub fn append_histogram(&mut self, t: i64, h: &HistogramValue) -> Result<()> {
        let Some(s) = self.open.as_mut() else {
            bail!("a sample before any series");
        };
        let done = s
            .head
            .append_histogram(t, h)
            .map_err(|e| anyhow!("series {}: {e:#}", s.labels))?;
        self.stats.histograms.add(h);
        self.appended(t, done);
        Ok(())
    }

    fn appended(&mut self, t: i64, done: Option<Cut>) {
        if let Some(c) = done {
            let s = self.open.as_mut().expect("a series is open");
            keep(&mut self.arena, &mut s.chunks, c, &mut self.stats);
        }
        self.stats.num_samples += 1;
        self.stats.min_time = self.stats.min_time.min(t);
        self.stats.max_time = self.stats.max_time.max(t);
    }

    fn close_series(&mut self) -> Result<()> {
        if let Some(mut s) = self.open.take() {
            if let Some(c) = s.head.finish() {
                keep(&mut self.arena, &mut s.chunks, c, &mut self.stats);
            }
            if !s.chunks.is_empty() {
                self.series.push((s.labels, s.chunks));
            }
        }
        Ok(())
    }

    /// Samples so far.
    pub fn samples(&self) -> u64 {
        self.stats.num_samples
    }

    /// The histogram samples so far, by kind.
    pub fn histograms(&self) -> HistogramStats {
        self.stats.histograms
    }

    /// Ends the last series, writes the chunks into `segments` and then the index into `index`,
    /// and returns the block's stats with the segment writers (flushed) and the index writer. A
    /// series given twice is an error.
    pub fn finish<W: Write, F: FnMut(u32) -> io::Result<W>, I: Write>(
        mut self,
        mut segments: SegmentWriter<W, F>,
        index: I,
    ) -> Result<(BlockStats, Vec<W>, I)> {
        self.close_series()?;
        self.series.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = self.series.windows(2).find(|w| w[0].0 == w[1].0) {
            bail!("series {} given twice", w[0].0);
        }
        let mut metas = Vec::with_capacity(self.series.len());
        for (_, chunks) in &self.series {
            let mut m = Vec::with_capacity(chunks.len());
            for c in chunks {
                let chunk_ref = segments.write_chunk(c.encoding, &self.arena[c.start..c.end])?;
                m.push(ChunkMeta {
                    chunk_ref,
                    min_time: c.min_time,
                    max_time: c.max_time,
                });
            }
            metas.push(m);
        }
        self.arena = Vec::new();
        let segments = segments.finish()?;
        // The head's symbols include the all-postings key's empty name and value, so blocks
        // compacted from it list "" too.
        let symbols = self
            .series
            .iter()
            .flat_map(|(l, _)| l.iter().flat_map(|(n, v)| [n, v]))
            .chain([""]);
        let mut ix = IndexWriter::new(index, symbols)?;
        for ((labels, _), chunks) in self.series.iter().zip(&metas) {
            ix.add_series(labels, chunks)?;
        }
        let index = ix.finish()?;
        let mut stats = self.stats;
        stats.num_series = self.series.len() as u64;
        if stats.num_samples == 0 {
            (stats.min_time, stats.max_time) = (0, 0);
        } else {
            stats.max_time += 1;
        }
        Ok((stats, segments, index))
    }
}

/// A complete chunk into the arena, listed with its series.
fn keep(arena: &mut Vec<u8>, chunks: &mut Vec<Pending>, c: Cut, stats: &mut BlockStats) {
    let start = arena.len();
    arena.extend_from_slice(&c.data);
    chunks.push(Pending {
        encoding: c.encoding,
        min_time: c.min_time,
        max_time: c.max_time,
        start,
        end: arena.len(),
    });
    stats.num_chunks += 1;
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaJson<'a> {
    ulid: &'a str,
    min_time: i64,
    max_time: i64,
    stats: StatsJson,
    compaction: CompactionJson<'a>,
    version: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsJson {
    num_samples: u64,
    num_series: u64,
    num_chunks: u64,
}

#[derive(Serialize)]
struct CompactionJson<'a> {
    level: u32,
    sources: [&'a str; 1],
}

/// `meta.json` of a freshly written block (compaction level 1, its own source), indented with
/// tabs as Prometheus's `json.MarshalIndent` writes it. The stats are 2.42's to 3.5's: one
/// `numSamples` for floats and histograms (3.6 added `numFloatSamples` and
/// `numHistogramSamples`, which no reader needs).
pub fn meta_json(ulid: &str, stats: &BlockStats) -> Vec<u8> {
    let meta = MetaJson {
        ulid,
        min_time: stats.min_time,
        max_time: stats.max_time,
        stats: StatsJson {
            num_samples: stats.num_samples,
            num_series: stats.num_series,
            num_chunks: stats.num_chunks,
        },
        compaction: CompactionJson {
            level: 1,
            sources: [ulid],
        },
        version: 1,
    };
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    meta.serialize(&mut ser).expect("serializing to memory");
    out
}

#[cfg(test)]
#[path = "block_writer_tests.rs"]
mod tests;
