//! Block index reader (`tsdb/index`, versions 1–3): TOC, symbols, series with their chunk metas,
//! postings and their offset table, lazily; selectors are matched above it (`select::postings`).

use std::collections::HashMap;

use super::{section, Cursor, Error, ErrorKind, Result};
use crate::labels::Labels;

pub const MAGIC: u32 = 0xBAAA_D700;
/// Six BE64 section offsets and their CRC32C, at the very end of the file.
pub(super) const TOC_LEN: usize = 6 * 8 + 4;
/// Version 2 and later pad series to 16 bytes and refer to them by offset / 16.
pub(super) const SERIES_ALIGN: u64 = 16;

/// Section offsets from the table of contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

/// One chunk of a series as the index describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Segment file index << 32 | byte offset in that file.
    pub chunk_ref: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// A parsed index: symbol positions and the postings offset table are loaded, the rest is read
/// on demand from `data`.
pub struct Index<'a> {
    data: &'a [u8],
    version: u8,
    toc: Toc,
    /// Version 2+: absolute offset of each symbol (refs are positions). Version 1 refs are
    /// file offsets already.
    symbols: Vec<usize>,
    /// Label name → (value, postings list offset), values sorted.
    postings: HashMap<&'a [u8], Vec<(&'a [u8], u64)>>,
}

impl<'a> Index<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Index<'a>> {
        let mut h = Cursor::new(data, 0);
        let magic = h.be32("index header")?;
        if magic != MAGIC {
            return Err(Error::new(
                ErrorKind::Header,
                0,
                format!("not an index file (magic {magic:08x})"),
            ));
        }
        let version = h.byte("index header")?;
        if !(1..=3).contains(&version) {
            return Err(Error::new(
                ErrorKind::Header,
                4,
                format!("unknown index version {version}"),
            ));
        }
        let toc = read_toc(data)?;
        let mut ix = Index {
            data,
            version,
            toc,
            symbols: Vec::new(),
            postings: HashMap::new(),
        };
        ix.read_symbols()?;
        ix.read_postings_table()?;
        Ok(ix)
    }

    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn toc(&self) -> Toc {
        self.toc
    }

    fn read_symbols(&mut self) -> Result<()> {
        let mut d = section(self.data, to_usize(self.toc.symbols), true, "symbol table")?;
        let count = d.be32("symbol count")?;
        for _ in 0..count {
            let at = d.offset();
            let s = d.uvarint_bytes("symbol")?;
            if std::str::from_utf8(s).is_err() {
                return Err(Error::new(ErrorKind::Malformed, at, "symbol is not UTF-8"));
            }
            if self.version >= 2 {
                self.symbols.push(at);
            }
        }
        Ok(())
    }

    fn read_postings_table(&mut self) -> Result<()> {
        let off = to_usize(self.toc.postings_table);
        let mut d = section(self.data, off, true, "postings offset table")?;
        let count = d.be32("postings offset table count")?;
        for _ in 0..count {
            let at = d.offset();
            let keys = d.uvarint("postings offset entry")?;
            if keys != 2 {
                return Err(Error::new(
                    ErrorKind::Malformed,
                    at,
                    format!("postings offset entry with {keys} keys (expected 2)"),
                ));
            }
            let name = d.uvarint_bytes("label name")?;
            let value = d.uvarint_bytes("label value")?;
            let p = d.uvarint("postings offset")?;
            self.postings.entry(name).or_default().push((value, p));
        }
        // Version 1 tables are in no particular order; later ones are sorted already.
        for v in self.postings.values_mut() {
            if !v.windows(2).all(|w| w[0].0 < w[1].0) {
                v.sort_by(|a, b| a.0.cmp(b.0));
            }
        }
        Ok(())
    }

    /// The symbol a series refers to by `r`.
    pub fn symbol(&self, r: u32) -> Result<&'a str> {
        let off = if self.version >= 2 {
            *self.symbols.get(r as usize).ok_or_else(|| {
                Error::new(
                    ErrorKind::Malformed,
                    to_usize(self.toc.symbols),
                    format!("symbol {r} of {} does not exist", self.symbols.len()),
                )
            })?
        } else {
            r as usize
        };
        if off > self.data.len() {
            return Err(Error::new(
                ErrorKind::Malformed,
                off,
                "symbol reference past the end",
            ));
        }
        let mut b = Cursor::new(&self.data[off..], off);
        let s = b.uvarint_bytes("symbol")?;
        std::str::from_utf8(s)
            .map_err(|_| Error::new(ErrorKind::Malformed, off, "symbol is not UTF-8"))
    }

    /// Label names with postings, the all-postings key (`""`) left out.
    pub fn label_names(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.postings.keys().copied().filter(|n| !n.is_empty())
    }

    /// The values of `name` with the offset of their postings list, sorted.
    pub fn label_values(&self, name: &[u8]) -> &[(&'a [u8], u64)] {
        self.postings.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The series ids of the postings list at `off`, ascending.
    pub fn postings_at(&self, off: u64) -> Result<Vec<u32>> {
        let off = to_usize(off);
        let mut d = section(self.data, off, true, "postings list")?;
        let n = d.be32("postings count")? as usize;
        if d.remaining() < n.saturating_mul(4) {
            return Err(Error::new(
                ErrorKind::Truncated,
                d.offset(),
                format!("postings list of {n} entries runs past its section"),
            ));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let at = d.offset();
            let id = d.be32("posting")?;
            if out.last().is_some_and(|&l| l >= id) {
                return Err(Error::new(
                    ErrorKind::Malformed,
                    at,
                    "postings list not ascending",
                ));
            }
            out.push(id);
        }
        Ok(out)
    }

    /// Series ids with label `name` = `value`.
    pub fn postings(&self, name: &str, value: &str) -> Result<Vec<u32>> {
        let vals = self.label_values(name.as_bytes());
        match vals.binary_search_by(|(v, _)| (*v).cmp(value.as_bytes())) {
            Ok(i) => self.postings_at(vals[i].1),
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Every series id, in label order.
    pub fn all_postings(&self) -> Result<Vec<u32>> {
        self.postings("", "")
    }

    /// Reads series `id`: its labels, and its chunk metas into `chunks` (cleared first).
    pub fn series(&self, id: u32, chunks: &mut Vec<ChunkMeta>) -> Result<Labels> {
        chunks.clear();
        let off = if self.version >= 2 {
            id as u64 * SERIES_ALIGN
        } else {
            id as u64
        };
        let off = to_usize(off);
        if off >= self.data.len() {
            return Err(Error::new(
                ErrorKind::Truncated,
                off,
                format!("series {id} lies past the end of the index"),
            ));
        }
        let mut h = Cursor::new(&self.data[off..], off);
        let len = h.uvarint("series length")?;
        let content = h.bytes(to_usize(len), "series")?;
        let sum = h.bytes(4, "series checksum")?;
        super::check_crc(content, sum, off, &format!("series {id}"))?;
        let mut d = Cursor::new(content, h.offset() - 4 - content.len());
        let k = d.uvarint("label count")?;
        let mut pairs = Vec::with_capacity((k as usize).min(64));
        for _ in 0..k {
            let n = d.uvarint32("label name ref")?;
            let v = d.uvarint32("label value ref")?;
            pairs.push((self.symbol(n)?, self.symbol(v)?));
        }
        read_chunk_metas(&mut d, chunks)?;
        Ok(Labels::from_pairs(pairs))
    }
}

fn read_chunk_metas(d: &mut Cursor, chunks: &mut Vec<ChunkMeta>) -> Result<()> {
    let k = d.uvarint("chunk count")?;
    if k == 0 {
        return Ok(());
    }
    let mint = d.varint("chunk mint")?;
    let maxt = (d.uvarint("chunk maxt")? as i64).wrapping_add(mint);
    let mut r = d.uvarint("chunk ref")? as i64;
    chunks.push(ChunkMeta {
        chunk_ref: r as u64,
        min_time: mint,
        max_time: maxt,
    });
    let mut t0 = maxt;
    for _ in 1..k {
        let mint = (d.uvarint("chunk mint")? as i64).wrapping_add(t0);
        let maxt = (d.uvarint("chunk maxt")? as i64).wrapping_add(mint);
        r = r.wrapping_add(d.varint("chunk ref")?);
        t0 = maxt;
        chunks.push(ChunkMeta {
            chunk_ref: r as u64,
            min_time: mint,
            max_time: maxt,
        });
    }
    Ok(())
}

fn read_toc(data: &[u8]) -> Result<Toc> {
    if data.len() < 5 + TOC_LEN {
        return Err(Error::new(
            ErrorKind::Truncated,
            data.len(),
            format!("index of {} bytes has no table of contents", data.len()),
        ));
    }
    let at = data.len() - TOC_LEN;
    let (body, sum) = data[at..].split_at(TOC_LEN - 4);
    super::check_crc(body, sum, at, "table of contents")?;
    let mut b = Cursor::new(body, at);
    let mut next = || b.be64("table of contents");
    let toc = Toc {
        symbols: next()?,
        series: next()?,
        label_indices: next()?,
        label_indices_table: next()?,
        postings: next()?,
        postings_table: next()?,
    };
    Ok(toc)
}

/// Offsets beyond the address space become "past the end" errors later, never a panic.
fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Sorted union of two ascending lists.
pub fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    if a.is_empty() {
        return b.to_vec();
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Sorted intersection of two ascending lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Fuzz logic: parse, then read every series the postings name and some postings lists.
pub(crate) fn fuzz(data: &[u8]) {
    let Ok(ix) = Index::parse(data) else {
        return;
    };
    let mut chunks = Vec::new();
    if let Ok(all) = ix.all_postings() {
        for id in all.into_iter().take(10_000) {
            let _ = ix.series(id, &mut chunks);
        }
    }
    let names: Vec<&[u8]> = ix.label_names().take(8).collect();
    for n in names {
        for (_, off) in ix.label_values(n).iter().take(8) {
            let _ = ix.postings_at(*off);
        }
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
