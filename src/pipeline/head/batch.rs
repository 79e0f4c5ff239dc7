//! WAL sample records of the second pass, noted by the first (where their fragments lie), decoded
//! in parallel batches (assembly, decompression, varint filter on the rayon pool), then replayed
//! in log order. The second pass neither walks the pages nor checks their CRCs again.
//!
//! The filter drops exactly what the in-order replay skips first (older than `min_valid_time`,
//! unknown ref, series not wanted), so the replay sees the rest in log order as before.

use rayon::prelude::*;

use super::dense_max;
use crate::format::tsdb::record::{self, RecordType};
use crate::format::tsdb::wal::{self, Compression, RawRecord, Span};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::{Mutex, PoisonError};

/// A batch is decoded once it holds this many logged bytes or records (bounds its memory: what
/// it decodes is held until replayed). Big enough for a few remote-write pushes, which log one
/// record of about 1 MB each, per thread.
const BATCH_BYTES: usize = 8 << 20;
const BATCH_RECORDS: usize = 1024;

/// Whether the second pass reads records of type `t`: float samples and histograms.
pub(super) fn wanted_type(t: u8) -> bool {
    matches!(t, 2 | 7..=13)
}

/// One record for the second pass, as the first found it.
pub(super) struct Noted {
    /// Its position in the log, as the replay numbers records.
    pub seq: u64,
    pub segment: usize,
    pub offset: usize,
    pub hint: Option<u8>,
    comp: Compression,
    /// Its fragments: a range of [`Notes::spans`].
    spans: std::ops::Range<u32>,
    /// Logged bytes, for sizing batches.
    len: usize,
}

/// The records of one stream (checkpoint or WAL) the second pass reads.
#[derive(Default)]
pub(super) struct Notes {
    recs: Vec<Noted>,
    spans: Vec<Span>,
    /// Assembly and decompression buffers, reused from record to record: records can be big,
    /// and fresh buffers would cost page faults and unmaps for each.
    pool: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// What a record of the batch decoded to.
pub(super) enum Decoded {
    /// Not a samples or histograms record (or no type at all): nothing to replay.
    Other,
    /// Decompression failed: the message.
    Logged(String),
    /// Decoding failed: whether it is a histogram record, and why.
    Bad(bool, crate::format::tsdb::Error),
    /// (ref, t, value bits) the replay may accept, or (ref, t, 0) of histograms.
    Samples(bool, Vec<(u64, i64, u64)>),
}

/// The refs whose series are wanted, fixed after the first pass: a byte per ref when refs are
/// dense (it stays in cache where the series table does not: the decode tests every logged
/// sample), else a set.
pub(super) enum Wanted {
    Dense(Vec<bool>),
    Sparse(FxHashSet<u64>),
}

impl Wanted {
    /// From the ref map (ref to series index and record position) and whether a series index
    /// is wanted.
    pub fn new(refs: &FxHashMap<u64, (u32, u64)>, wants: impl Fn(u32) -> bool) -> Wanted {
        let Some(max) = dense_max(refs) else {
            let set = refs.iter().filter(|(_, e)| wants(e.0)).map(|(&r, _)| r);
            return Wanted::Sparse(set.collect());
        };
        let mut v = vec![false; max as usize + 1];
        for (&r, &(idx, _)) in refs {
            v[r as usize] = wants(idx);
        }
        Wanted::Dense(v)
    }
}

/// What the filter needs of the replay state (read-only during the second pass).
pub(super) struct Accept<'a> {
    pub min_valid_time: i64,
    pub wanted: &'a Wanted,
}

impl Accept<'_> {
    #[inline]
    fn wants(&self, r: u64) -> bool {
        match self.wanted {
            Wanted::Dense(v) => v.get(r as usize).copied().unwrap_or(false),
            Wanted::Sparse(set) => set.contains(&r),
        }
    }

    fn keeps(&self, r: u64, t: i64) -> bool {
        t >= self.min_valid_time && self.wants(r)
    }
}

impl Notes {
    /// Notes the record at log position `seq` for the second pass.
    pub fn push(&mut self, seq: u64, hint: Option<u8>, raw: &RawRecord<'_>) {
        let (comp, spans) = raw.spans();
        let start = self.spans.len() as u32;
        self.spans.extend_from_slice(spans);
        self.recs.push(Noted {
            seq,
            segment: raw.segment,
            offset: raw.offset,
            hint,
            comp,
            spans: start..self.spans.len() as u32,
            len: spans.iter().map(|s| s.len as usize).sum(),
        });
    }

    /// The noted records in batches bounded in records and logged bytes.
    pub fn batches(&self) -> impl Iterator<Item = &[Noted]> {
        let mut rest = &self.recs[..];
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (mut n, mut bytes) = (0, 0);
            while n < rest.len() && n < BATCH_RECORDS && bytes < BATCH_BYTES {
                bytes += rest[n].len;
                n += 1;
            }
            let (b, r) = rest.split_at(n);
            rest = r;
            Some(b)
        })
    }

    /// Decodes the records of `batch` (read from `segs`) in parallel, in order.
    pub fn decode(&self, segs: &[&[u8]], batch: &[Noted], accept: &Accept<'_>) -> Vec<Decoded> {
        let pool = || self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        batch
            .par_iter()
            .map(|p| {
                let (mut buf, mut out) = pool().pop().unwrap_or_default();
                let spans = &self.spans[p.spans.start as usize..p.spans.end as usize];
                let logged = wal::assemble(segs, spans, &mut buf);
                let d = decode_one(p.comp, logged, &mut out, accept);
                pool().push((buf, out));
                d
            })
            .collect()
    }
}

fn decode_one(comp: Compression, logged: &[u8], out: &mut Vec<u8>, accept: &Accept<'_>) -> Decoded {
    let data = if comp == Compression::None {
        logged
    } else {
        if let Err(msg) = wal::decompress_record(comp, logged, out) {
            return Decoded::Logged(msg);
        }
        &out[..]
    };
    let hist = match record::record_type(data) {
        Ok(Some(RecordType::Samples | RecordType::SamplesV2)) => false,
        Ok(Some(
            RecordType::Histograms
            | RecordType::FloatHistograms
            | RecordType::HistogramsV2
            | RecordType::FloatHistogramsV2,
        )) => true,
        _ => return Decoded::Other,
    };
    let mut v = Vec::new();
    // Most records are well-formed float samples: filtered in one tight loop, or on any doubt
    // decoded again below, which says what is wrong.
    if !hist
        && record::kept_samples_v1(data, accept.min_valid_time, |r| accept.wants(r), &mut v)
            .is_some()
    {
        return Decoded::Samples(false, v);
    }
    v.clear();
    let res = if hist {
        record::histogram_refs(data).and_then(|it| {
            for x in it {
                let (r, t) = x?;
                if accept.keeps(r, t) {
                    v.push((r, t, 0));
                }
            }
            Ok(())
        })
    } else {
        record::samples(data).and_then(|it| {
            for x in it {
                let s = x?;
                if accept.keeps(s.series_ref, s.t) {
                    v.push((s.series_ref, s.t, s.bits));
                }
            }
            Ok(())
        })
    };
    match res {
        Ok(()) => Decoded::Samples(hist, v),
        Err(e) => Decoded::Bad(hist, e),
    }
}
