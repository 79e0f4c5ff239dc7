//! WAL sample records of the second pass decoded in parallel batches (decompression and varint
//! decoding on the rayon pool), keeping only samples the replay could accept, replayed in order.
//!
//! The filter drops exactly what the in-order replay skips first (older than `min_valid_time`,
//! unknown ref, series not wanted), so the replay sees the rest in log order as before.

use rayon::prelude::*;

use super::{DenseRefs, Series};
use crate::format::tsdb::record::{self, RecordType};
use crate::format::tsdb::wal::{self, Compression, RawRecord};
use rustc_hash::FxHashMap;

/// A batch is decoded once it holds this many logged bytes or records (bounds its memory).
const BATCH_BYTES: usize = 1 << 20;
const BATCH_RECORDS: usize = 1024;

/// One record waiting in the batch.
pub(super) struct Pending {
    pub seq: u64,
    pub segment: usize,
    pub offset: usize,
    pub hint: Option<u8>,
    comp: Compression,
    range: std::ops::Range<usize>,
}

/// What a record of the batch decoded to.
pub(super) enum Decoded {
    /// Not a samples or histograms record (or no type at all): nothing to replay.
    Other,
    /// Decompression failed: the message.
    Logged(String),
    /// Decoding failed: whether it is a histogram record, and why.
    Bad(bool, record::DecodeError),
    /// (ref, t, value bits) the replay may accept, or (ref, t, 0) of histograms.
    Samples(bool, Vec<(u64, i64, u64)>),
}

/// Records gathered for one parallel decode, their logged bytes back to back.
#[derive(Default)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    pub recs: Vec<Pending>,
}

/// What the filter needs of the replay state (read-only during the second pass).
pub(super) struct Accept<'a> {
    pub min_valid_time: i64,
    pub refs: &'a FxHashMap<u64, (u32, u64)>,
    pub dense: &'a DenseRefs,
    pub series: &'a [Series],
}

impl Accept<'_> {
    fn keeps(&self, r: u64, t: i64) -> bool {
        t >= self.min_valid_time && self.dense.wanted(self.refs, self.series, r)
    }
}

impl Batch {
    /// Adds a record; true when the batch is full and should be decoded.
    pub fn push(&mut self, seq: u64, hint: Option<u8>, raw: &RawRecord<'_>) -> bool {
        let (comp, bytes) = raw.logged();
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        self.recs.push(Pending {
            seq,
            segment: raw.segment,
            offset: raw.offset,
            hint,
            comp,
            range: start..self.bytes.len(),
        });
        self.bytes.len() >= BATCH_BYTES || self.recs.len() >= BATCH_RECORDS
    }

    /// Decodes every record in parallel; the batch is left empty.
    pub fn decode(&mut self, accept: &Accept<'_>) -> Vec<(Pending, Decoded)> {
        let bytes = &self.bytes;
        let decoded: Vec<Decoded> = self
            .recs
            .par_iter()
            .map(|p| decode_one(p.comp, &bytes[p.range.clone()], accept))
            .collect();
        self.bytes.clear();
        self.recs.drain(..).zip(decoded).collect()
    }
}

fn decode_one(comp: Compression, logged: &[u8], accept: &Accept<'_>) -> Decoded {
    let mut out = Vec::new();
    let data = if comp == Compression::None {
        logged
    } else {
        if let Err(msg) = wal::decompress_record(comp, logged, &mut out) {
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
    if !hist && record::kept_samples_v1(data, |r, t| accept.keeps(r, t), &mut v).is_some() {
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
