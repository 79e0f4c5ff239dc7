//! Block index writer (`tsdb/index` format v2, laid out as Prometheus 2.42's `index.Writer` does):
//! symbols, series padded to 16 bytes, label indices, postings, their offset tables and the TOC.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context, Result};

use super::index::{ChunkMeta, Toc, MAGIC, SERIES_ALIGN};
use super::{crc32c, put_uvarint, put_uvarint_bytes, put_varint};
use crate::labels::Labels;

/// The index format this writer produces (Prometheus 2.x and 3.x read it).
pub const FORMAT_V2: u8 = 2;

/// Writes one index. Series must come sorted by label set (Prometheus's `labels.Compare`, which
/// is the derived order of [`Labels`]), every label name and value among the symbols.
pub struct IndexWriter<W: Write> {
    w: W,
    pos: u64,
    /// Sorted and unique: a symbol's reference is its position.
    symbols: Vec<String>,
    toc: Toc,
    last: Option<Labels>,
    /// (name symbol, value symbol) → series ids (offset / 16), ascending.
    postings: BTreeMap<(u32, u32), Vec<u32>>,
    all: Vec<u32>,
    buf: Vec<u8>,
}

impl<W: Write> IndexWriter<W> {
    /// Writes the header and the symbol table of `symbols` (any order, repeats allowed).
    pub fn new<S: Into<String>>(w: W, symbols: impl IntoIterator<Item = S>) -> Result<Self> {
        let mut symbols: Vec<String> = symbols.into_iter().map(Into::into).collect();
        symbols.sort_unstable();
        symbols.dedup();
        let mut ix = IndexWriter {
            w,
            pos: 0,
            symbols,
            toc: Toc::default(),
            last: None,
            postings: BTreeMap::new(),
            all: Vec::new(),
            buf: Vec::new(),
        };
        let mut head = MAGIC.to_be_bytes().to_vec();
        head.push(FORMAT_V2);
        ix.write(&head)?;
        ix.toc.symbols = ix.pos;
        let mut content = (ix.symbols.len() as u32).to_be_bytes().to_vec();
        for s in &ix.symbols {
            put_uvarint_bytes(&mut content, s.as_bytes());
        }
        ix.section(&content)?;
        ix.toc.series = ix.pos;
        Ok(ix)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b).context("writing the index")?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<()> {
        let rem = self.pos % align;
        if rem != 0 {
            self.write(&vec![0; (align - rem) as usize])?;
        }
        Ok(())
    }

    /// BE32 length, the content, its CRC32C: Prometheus's framing of every table.
    fn section(&mut self, content: &[u8]) -> Result<()> {
        let Ok(len) = u32::try_from(content.len()) else {
            bail!("index section of {} bytes exceeds 4 GiB", content.len());
        };
        self.write(&len.to_be_bytes())?;
        self.write(content)?;
        self.write(&crc32c(content).to_be_bytes())
    }

    fn symbol(&self, s: &str) -> Result<u32> {
        match self.symbols.binary_search_by(|x| x.as_str().cmp(s)) {
            Ok(i) => Ok(i as u32),
            Err(_) => bail!("symbol {s:?} is not in the symbol table"),
        }
    }

    /// Adds the next series with its chunks (ascending, non-overlapping time ranges).
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<()> {
        if self.last.as_ref().is_some_and(|l| labels <= l) {
            bail!("series {labels} out of order in the index");
        }
        self.pad(SERIES_ALIGN)?;
        let Ok(id) = u32::try_from(self.pos / SERIES_ALIGN) else {
            bail!("index exceeds the 64 GiB that series references address");
        };
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        put_uvarint(&mut b, labels.len() as u64);
        for (n, v) in labels.iter() {
            let (n, v) = (self.symbol(n)?, self.symbol(v)?);
            put_uvarint(&mut b, n as u64);
            put_uvarint(&mut b, v as u64);
            self.postings.entry((n, v)).or_default().push(id);
        }
        put_uvarint(&mut b, chunks.len() as u64);
        if let Some((first, rest)) = chunks.split_first() {
            put_varint(&mut b, first.min_time);
            put_uvarint(&mut b, first.max_time.wrapping_sub(first.min_time) as u64);
            put_uvarint(&mut b, first.chunk_ref);
            let (mut t0, mut ref0) = (first.max_time, first.chunk_ref as i64);
            for c in rest {
                put_uvarint(&mut b, c.min_time.wrapping_sub(t0) as u64);
                put_uvarint(&mut b, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(&mut b, (c.chunk_ref as i64).wrapping_sub(ref0));
                (t0, ref0) = (c.max_time, c.chunk_ref as i64);
            }
        }
        let mut head = Vec::with_capacity(10);
        put_uvarint(&mut head, b.len() as u64);
        self.write(&head)?;
        self.write(&b)?;
        self.write(&crc32c(&b).to_be_bytes())?;
        self.buf = b;
        self.all.push(id);
        self.last = Some(labels.clone());
        Ok(())
    }

    /// Writes label indices, postings, both offset tables and the TOC; returns the writer.
    pub fn finish(mut self) -> Result<W> {
        self.toc.label_indices = self.pos;
        let postings = std::mem::take(&mut self.postings);
        // Label name → values, in symbol order (which is string order).
        let mut names: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &(n, v) in postings.keys() {
            names.entry(n).or_default().push(v);
        }
        let mut label_indices = Vec::with_capacity(names.len());
        for (n, values) in &names {
            self.pad(4)?;
            label_indices.push((*n, self.pos));
            let mut c = Vec::with_capacity(8 + 4 * values.len());
            c.extend_from_slice(&1u32.to_be_bytes());
            c.extend_from_slice(&(values.len() as u32).to_be_bytes());
            for v in values {
                c.extend_from_slice(&v.to_be_bytes());
            }
            self.section(&c)?;
        }

        self.toc.postings = self.pos;
        let all = std::mem::take(&mut self.all);
        let mut offsets = Vec::with_capacity(postings.len() + 1);
        self.pad(4)?;
        offsets.push((String::new(), String::new(), self.pos));
        self.postings_list(&all)?;
        for ((n, v), ids) in &postings {
            self.pad(4)?;
            let (name, value) = (
                self.symbols[*n as usize].clone(),
                self.symbols[*v as usize].clone(),
            );
            offsets.push((name, value, self.pos));
            self.postings_list(ids)?;
        }

        self.toc.label_indices_table = self.pos;
        let mut c = (label_indices.len() as u32).to_be_bytes().to_vec();
        for (n, off) in &label_indices {
            put_uvarint(&mut c, 1);
            put_uvarint_bytes(&mut c, self.symbols[*n as usize].as_bytes());
            put_uvarint(&mut c, *off);
        }
        self.section(&c)?;

        self.toc.postings_table = self.pos;
        let mut c = (offsets.len() as u32).to_be_bytes().to_vec();
        for (n, v, off) in &offsets {
            put_uvarint(&mut c, 2);
            put_uvarint_bytes(&mut c, n.as_bytes());
            put_uvarint_bytes(&mut c, v.as_bytes());
            put_uvarint(&mut c, *off);
        }
        self.section(&c)?;

        let t = self.toc;
        let mut toc = Vec::with_capacity(super::index::TOC_LEN);
        for off in [
            t.symbols,
            t.series,
            t.label_indices,
            t.label_indices_table,
            t.postings,
            t.postings_table,
        ] {
            toc.extend_from_slice(&off.to_be_bytes());
        }
        let sum = crc32c(&toc);
        toc.extend_from_slice(&sum.to_be_bytes());
        self.write(&toc)?;
        self.w.flush().context("writing the index")?;
        Ok(self.w)
    }

    fn postings_list(&mut self, ids: &[u32]) -> Result<()> {
        let mut c = Vec::with_capacity(4 + 4 * ids.len());
        c.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            c.extend_from_slice(&id.to_be_bytes());
        }
        self.section(&c)
    }
}
