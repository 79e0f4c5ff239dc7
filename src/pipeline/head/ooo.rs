//! The head's out-of-order data from the wbl: samples and histograms through the out-of-order
//! head chunk (Prometheus's `OOOChunk`: sorted, duplicates refused, cut when full), emptied by an
//! m-map marker of a chunk present in chunks_head (whose samples were read with it).

use anyhow::Result;

use super::{Loc, Replay, OOO_CAP};
use crate::format::histogram::HistogramValue;
use crate::format::tsdb::record::{self, RecordType};

/// A value of the out-of-order head chunk (one chunk holds floats and histograms alike, as
/// Prometheus 3's does).
#[derive(Debug)]
pub(super) enum OooVal {
    Float(u64),
    Hist(Box<HistogramValue>),
}

impl Replay<'_> {
    /// A wbl record: out-of-order samples and histograms through the OOO head chunk, and
    /// m-map markers.
    pub(super) fn wbl(&mut self, rec: &[u8], loc: Loc<'_>) -> Result<()> {
        match record::record_type(rec) {
            Err(e) => self.damage(format!("{}: byte {}: {e}", loc.file, loc.offset)),
            Ok(Some(RecordType::Samples | RecordType::SamplesV2)) => {
                let samples: Result<Vec<_>, _> = record::samples(rec).and_then(|it| it.collect());
                match samples {
                    Ok(samples) => {
                        for s in samples {
                            if let Some(idx) = self.ooo_target(s.series_ref) {
                                self.insert_ooo(idx, s.t, OooVal::Float(s.bits))?;
                            }
                        }
                        Ok(())
                    }
                    Err(e) => self.bad_record(loc, "samples", e),
                }
            }
            Ok(Some(
                RecordType::Histograms
                | RecordType::FloatHistograms
                | RecordType::HistogramsV2
                | RecordType::FloatHistogramsV2,
            )) => {
                let hists: Result<Vec<_>, _> = record::histograms(rec).and_then(|it| it.collect());
                match hists {
                    Ok(hists) => {
                        for s in hists {
                            if let Some(idx) = self.ooo_target(s.series_ref) {
                                self.insert_ooo(idx, s.t, OooVal::Hist(Box::new(s.h)))?;
                            }
                        }
                        Ok(())
                    }
                    Err(e) => self.bad_record(loc, "histogram", e),
                }
            }
            Ok(Some(RecordType::MmapMarkers)) => {
                let markers: Result<Vec<_>, _> =
                    record::mmap_markers(rec).and_then(|it| it.collect());
                match markers {
                    Ok(markers) => {
                        for m in markers {
                            if m.chunk_ref > self.last_chunk_ref {
                                continue;
                            }
                            if let Some(&(idx, _)) = self.refs.get(&m.series_ref) {
                                // Its samples went to that m-mapped chunk, already read.
                                self.series[idx as usize].ooo.clear();
                            }
                        }
                        Ok(())
                    }
                    Err(e) => self.bad_record(loc, "m-map markers", e),
                }
            }
            Ok(_) => Ok(()),
        }
    }

    /// The series an out-of-order sample of `series_ref` goes to, if known and wanted.
    fn ooo_target(&self, series_ref: u64) -> Option<usize> {
        let &(idx, _) = self.refs.get(&series_ref)?;
        (!self.series[idx as usize].skip).then_some(idx as usize)
    }

    /// `OOOChunk.Insert` into the series' OOO head chunk, cut when full.
    fn insert_ooo(&mut self, idx: usize, t: i64, v: OooVal) -> Result<()> {
        if self.series[idx].ooo.len() == OOO_CAP {
            self.flush_ooo(idx)?;
        }
        let ooo = &mut self.series[idx].ooo;
        match ooo.binary_search_by_key(&t, |(t, _)| *t) {
            Ok(_) => {} // a duplicate timestamp is refused, whatever its kind
            Err(i) => ooo.insert(i, (t, v)),
        }
        Ok(())
    }

    /// Emits the series' OOO head chunk and empties it. Float samples ignore tombstones (2.42
    /// queries out-of-order data without them); histograms, which only Prometheus 3 keeps out
    /// of order, take them, as its head querier does.
    pub(super) fn flush_ooo(&mut self, idx: usize) -> Result<()> {
        let mut ooo = std::mem::take(&mut self.series[idx].ooo);
        for (t, v) in ooo.drain(..) {
            match v {
                OooVal::Float(bits) => self.emit(idx, t, bits)?,
                OooVal::Hist(h) => {
                    if !self.series[idx].deleted(t) {
                        self.emit_hist(idx, t, &h)?;
                    }
                }
            }
        }
        self.series[idx].ooo = ooo;
        Ok(())
    }
}
