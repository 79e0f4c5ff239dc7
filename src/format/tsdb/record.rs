//! WAL record payloads (`tsdb/record/record.go`, 2.42 to 3.14): series, float samples (v1 and
//! the 3.11 SamplesV2), tombstones, m-map markers, histogram samples (`histograms`).
//!
//! Every decoder borrows the record bytes and yields entries lazily; a malformed record is an
//! error naming what broke, never a panic. Exemplar and metadata records are recognised only.

use super::{put_uvarint, put_uvarint_bytes, put_varint, Cursor, Error, ErrorKind};

mod histograms;

pub use histograms::{
    encode_histograms, fuzz_histogram_record, histogram_refs, histograms, HistogramSample,
};

/// Record types, the first byte of every record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    Series,
    Samples,
    Tombstones,
    Exemplars,
    MmapMarkers,
    Metadata,
    /// 7 and 9 (custom buckets).
    Histograms,
    /// 8 and 10 (custom buckets).
    FloatHistograms,
    /// 11, Prometheus 3.11+ with start timestamps.
    SamplesV2,
    /// 12.
    HistogramsV2,
    /// 13.
    FloatHistogramsV2,
}

/// The type of a record; `Ok(None)` for an empty record (Prometheus skips those), an error
/// naming an unknown type byte.
pub fn record_type(rec: &[u8]) -> Result<Option<RecordType>, Error> {
    use RecordType::*;
    let Some(&b) = rec.first() else {
        return Ok(None);
    };
    Ok(Some(match b {
        1 => Series,
        2 => Samples,
        3 => Tombstones,
        4 => Exemplars,
        5 => MmapMarkers,
        6 => Metadata,
        7 | 9 => Histograms,
        8 | 10 => FloatHistograms,
        11 => SamplesV2,
        12 => HistogramsV2,
        13 => FloatHistogramsV2,
        t => {
            let msg = format!("unknown record type {t}");
            return Err(Error::unplaced(ErrorKind::Malformed, msg));
        }
    }))
}

pub(super) type Res<T> = Result<T, Error>;

/// The payload after the type byte, which must be one of `want`.
pub(super) fn body<'a>(rec: &'a [u8], want: &[u8]) -> Res<Cursor<'a>> {
    let bad = |msg: String| Error::unplaced(ErrorKind::Malformed, msg);
    match rec.split_first() {
        Some((t, rest)) if want.contains(t) => Ok(Cursor::record(rest)),
        Some((t, _)) => Err(bad(format!("record type {t}, expected {want:?}"))),
        None => Err(bad("empty record".into())),
    }
}

/// One series of a series record: its head reference and label pairs (bytes as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesEntry<'a> {
    pub series_ref: u64,
    pub labels: Vec<(&'a [u8], &'a [u8])>,
}

/// Entries of a series record (type 1).
pub fn series(rec: &[u8]) -> Res<impl Iterator<Item = Res<SeriesEntry<'_>>>> {
    let mut d = body(rec, &[1])?;
    Ok(entries(move || {
        if d.is_empty() {
            return Ok(None);
        }
        let series_ref = d.be64("series ref")?;
        let n = d.count(2, "label count")?;
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            labels.push((
                d.uvarint_bytes("label name")?,
                d.uvarint_bytes("label value")?,
            ));
        }
        Ok(Some(SeriesEntry { series_ref, labels }))
    }))
}

/// Turns a fallible step function into an iterator that stops after the first error.
pub(super) fn entries<T>(mut f: impl FnMut() -> Res<Option<T>>) -> impl Iterator<Item = Res<T>> {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        match f() {
            Ok(x) => x.map(Ok),
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

/// One float sample of a samples record; the value as raw bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub series_ref: u64,
    pub t: i64,
    pub bits: u64,
}

/// Samples of a samples record: type 2 (BE64 base ref and time, varint deltas to the base) or
/// type 11 (varints: ref delta to the previous, time delta to the first, a start-time marker).
pub fn samples(rec: &[u8]) -> Res<impl Iterator<Item = Res<Sample>> + '_> {
    let v2 = rec.first() == Some(&11);
    let mut d = body(rec, &[2, 11])?;
    let mut refs = Deltas::new(v2);
    Ok(entries(move || {
        let Some((r, t, _)) = refs.next(&mut d)? else {
            return Ok(None);
        };
        let bits = d.be64("sample value")?;
        Ok(Some(Sample {
            series_ref: r as u64,
            t,
            bits,
        }))
    }))
}

/// The samples of a well-formed type-2 record whose ref `want` accepts and whose time is at
/// least `min_t`, appended to `out` as (ref, t, bits): what [`samples`] yields, filtered, in one
/// tight loop for the WAL replay, which tests every logged sample and keeps few (the time of an
/// unwanted sample is only checked, not decoded). `None` when the record is anything else or
/// malformed (entries may have been appended then): the caller decodes it with [`samples`],
/// which says why.
#[inline]
pub fn kept_samples_v1(
    rec: &[u8],
    min_t: i64,
    mut want: impl FnMut(u64) -> bool,
    out: &mut Vec<(u64, i64, u64)>,
) -> Option<()> {
    let b = match rec.split_first()? {
        (2, b) => b,
        _ => return None,
    };
    if b.is_empty() {
        return Some(());
    }
    let be = |i: usize| Some(u64::from_be_bytes(b.get(i..i + 8)?.try_into().ok()?));
    let (base_ref, base_t) = (be(0)? as i64, be(8)? as i64);
    let mut i = 16;
    while i < b.len() {
        let dr = uvarint_at(b, &mut i)?;
        let r = base_ref.wrapping_add(unzigzag(dr)) as u64;
        if !want(r) {
            i = skip_uvarint(b, i)?;
            if b.len() - i < 8 {
                return None;
            }
            i += 8;
            continue;
        }
        let dt = uvarint_at(b, &mut i)?;
        let bits = be(i)?;
        i += 8;
        let t = base_t.wrapping_add(unzigzag(dt));
        if t >= min_t {
            out.push((r, t, bits));
        }
    }
    Some(())
}

/// The index just past the varint at `b[i..]`, `None` where [`Cursor::uvarint`] would fail. One-
/// and two-byte varints by branches (predictable in a record), up to 8 bytes in one load (the
/// end is the first byte under 0x80, and so short a varint cannot overflow); longer ones, and
/// the last bytes of the record, go the plain way.
#[inline(always)]
pub(crate) fn skip_uvarint(b: &[u8], i: usize) -> Option<usize> {
    if let Some(&[c0, c1]) = b.get(i..i + 2) {
        if c0 < 0x80 {
            return Some(i + 1);
        }
        if c1 < 0x80 {
            return Some(i + 2);
        }
    }
    if let Some(w) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        let ends = !w & 0x8080_8080_8080_8080;
        if ends != 0 {
            return Some(i + ends.trailing_zeros() as usize / 8 + 1);
        }
    }
    let mut j = i;
    uvarint_at(b, &mut j)?;
    Some(j)
}

/// [`Cursor::uvarint`] at `b[*i..]`, advancing `i`; `None` where it would fail. One- and two-byte
/// varints (sample ref and time deltas, mostly) take the short way.
#[inline(always)]
fn uvarint_at(b: &[u8], i: &mut usize) -> Option<u64> {
    if let Some(&[c0, c1]) = b.get(*i..*i + 2) {
        if c0 < 0x80 {
            *i += 1;
            return Some(c0 as u64);
        }
        if c1 < 0x80 {
            *i += 2;
            return Some((c0 & 0x7f) as u64 | (c1 as u64) << 7);
        }
    }
    uvarint_slow(b, i)
}

fn uvarint_slow(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut x = 0u64;
    for k in 0..10 {
        let c = *b.get(*i + k)?;
        if c < 0x80 {
            if k == 9 && c > 1 {
                return None;
            }
            *i += k + 1;
            return Some(x | (c as u64) << (7 * k));
        }
        x |= ((c & 0x7f) as u64) << (7 * k);
    }
    None
}

#[inline]
fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// The (ref, time, start time) framing shared by sample and histogram records. V1: BE64 base
/// ref and time, then per entry varint deltas to the base (no start times). V2: the first
/// entry's ref, time and start time as varints, then per entry a ref delta to the previous
/// entry, a time delta to the first and a start-time marker.
pub(super) struct Deltas {
    v2: bool,
    /// The first entry's (ref, time, start time).
    first: Option<(i64, i64, i64)>,
    prev_ref: i64,
    prev_st: i64,
}

impl Deltas {
    pub(super) fn new(v2: bool) -> Deltas {
        Deltas {
            v2,
            first: None,
            prev_ref: 0,
            prev_st: 0,
        }
    }

    /// The next entry's (ref, time, start time), `None` at the record's end.
    pub(super) fn next(&mut self, d: &mut Cursor<'_>) -> Res<Option<(i64, i64, i64)>> {
        if d.is_empty() {
            return Ok(None);
        }
        let (r, t, st) = match (self.v2, self.first) {
            (false, first) => {
                let (br, bt, _) = match first {
                    Some(f) => f,
                    None => {
                        let f = (d.be64("base ref")? as i64, d.be64("base time")? as i64, 0);
                        self.first = Some(f);
                        if d.is_empty() {
                            return Ok(None);
                        }
                        f
                    }
                };
                let r = br.wrapping_add(d.varint("ref delta")?);
                (r, bt.wrapping_add(d.varint("time delta")?), 0)
            }
            (true, None) => {
                let r = d.varint("series ref")?;
                let (t, st) = (d.varint("time")?, d.varint("start time")?);
                self.first = Some((r, t, st));
                (r, t, st)
            }
            (true, Some((_, t0, st0))) => {
                let r = self.prev_ref.wrapping_add(d.varint("ref delta")?);
                let t = t0.wrapping_add(d.varint("time delta")?);
                // Start-time marker: 0 none, 1 the previous entry's, else a delta to the first.
                let st = match d.byte("start time marker")? {
                    0 => 0,
                    1 => self.prev_st,
                    _ => st0.wrapping_add(d.varint("start time")?),
                };
                (r, t, st)
            }
        };
        self.prev_ref = r;
        self.prev_st = st;
        Ok(Some((r, t, st)))
    }
}

/// One deletion request: samples of `series_ref` in `[mint, maxt]` are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub series_ref: u64,
    pub mint: i64,
    pub maxt: i64,
}

/// Entries of a tombstones record (type 3).
pub fn tombstones(rec: &[u8]) -> Res<impl Iterator<Item = Res<Tombstone>> + '_> {
    let mut d = body(rec, &[3])?;
    Ok(entries(move || {
        if d.is_empty() {
            return Ok(None);
        }
        Ok(Some(Tombstone {
            series_ref: d.be64("series ref")?,
            mint: d.varint("mint")?,
            maxt: d.varint("maxt")?,
        }))
    }))
}

/// An m-map marker of the out-of-order WBL: the series' OOO head chunk went to `chunk_ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmapMarker {
    pub series_ref: u64,
    pub chunk_ref: u64,
}

/// Entries of an m-map markers record (type 5).
pub fn mmap_markers(rec: &[u8]) -> Res<impl Iterator<Item = Res<MmapMarker>> + '_> {
    let mut d = body(rec, &[5])?;
    Ok(entries(move || {
        if d.is_empty() {
            return Ok(None);
        }
        Ok(Some(MmapMarker {
            series_ref: d.be64("series ref")?,
            chunk_ref: d.be64("chunk ref")?,
        }))
    }))
}

// Encoders, mirroring `record.Encoder`: for tests, benches and fixtures.

/// A series record (type 1), as `record.Encoder.Series` writes it.
pub fn encode_series(series: &[(u64, &[(&str, &str)])]) -> Vec<u8> {
    let mut b = vec![1];
    for (r, ls) in series {
        b.extend_from_slice(&r.to_be_bytes());
        put_uvarint(&mut b, ls.len() as u64);
        for (n, v) in *ls {
            put_uvarint_bytes(&mut b, n.as_bytes());
            put_uvarint_bytes(&mut b, v.as_bytes());
        }
    }
    b
}

/// A samples record (type 2), as `record.Encoder.Samples` writes it: (ref, t, value bits).
pub fn encode_samples(s: &[(u64, i64, u64)]) -> Vec<u8> {
    let mut b = vec![2];
    if let Some(&(r0, t0, _)) = s.first() {
        b.extend_from_slice(&r0.to_be_bytes());
        b.extend_from_slice(&t0.to_be_bytes());
        for &(r, t, v) in s {
            put_varint(&mut b, r as i64 - r0 as i64);
            put_varint(&mut b, t - t0);
            b.extend_from_slice(&v.to_be_bytes());
        }
    }
    b
}

/// A tombstones record (type 3): (ref, mint, maxt).
pub fn encode_tombstones(s: &[(u64, i64, i64)]) -> Vec<u8> {
    let mut b = vec![3];
    for &(r, a, z) in s {
        b.extend_from_slice(&r.to_be_bytes());
        put_varint(&mut b, a);
        put_varint(&mut b, z);
    }
    b
}

/// An m-map markers record (type 5): (ref, chunk ref).
pub fn encode_markers(s: &[(u64, u64)]) -> Vec<u8> {
    let mut b = vec![5];
    for &(r, c) in s {
        b.extend_from_slice(&r.to_be_bytes());
        b.extend_from_slice(&c.to_be_bytes());
    }
    b
}

/// Fuzz target body: decode arbitrary bytes as every record type; never panics.
pub fn fuzz_record(data: &[u8]) {
    let _ = record_type(data);
    for t in 1u8..=13 {
        let mut rec = vec![t];
        rec.extend_from_slice(data);
        if let Ok(it) = series(&rec) {
            it.for_each(drop);
        }
        if let Ok(it) = samples(&rec) {
            it.for_each(drop);
        }
        let _ = kept_samples_v1(&rec, 0, |r| r % 2 == 0, &mut Vec::new());
        if let Ok(it) = tombstones(&rec) {
            it.for_each(drop);
        }
        if let Ok(it) = mmap_markers(&rec) {
            it.for_each(drop);
        }
        if let Ok(it) = histogram_refs(&rec) {
            it.for_each(drop);
        };
    }
    fuzz_histogram_record(data);
}

#[cfg(test)]
#[path = "record_tests.rs"]
pub(crate) mod tests;
