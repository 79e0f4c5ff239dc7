//! What a data-dir read is asked to do (`ReadOptions`) and what it did (`DirStats`): shared by
//! the block merge and the head feed, whose counts add up to one read's.

use crate::format::histogram::HistogramValue;
use crate::format::value::STALE_NAN_BITS;
use crate::select::filter::Filter;

/// Damaged chunks or series reported in detail under --skip-invalid; the rest only counted.
const MAX_REPORTED: usize = 5;

#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub filter: Filter,
    /// Pass staleness markers on to the sink with their exact bits (which carries them or keeps
    /// them as NaN) instead of dropping them.
    pub keep_stale: bool,
    pub skip_invalid: bool,
}

/// What reading the data dir did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    pub blocks: u64,
    /// Series offered by the head (WAL, chunks_head) that the selectors keep.
    pub head_series: u64,
    /// Distinct series read (after --match), across blocks.
    pub series: u64,
    pub chunks_read: u64,
    /// Chunks not read: entirely outside --start/--end or deleted by tombstones.
    pub chunks_skipped: u64,
    /// Float samples kept (staleness markers passed on included).
    pub samples_kept: u64,
    /// Samples of decoded chunks outside --start/--end.
    pub dropped_by_time: u64,
    /// Samples deleted by tombstones.
    pub deleted: u64,
    pub stale_dropped: u64,
    /// Staleness markers passed on to the sink with their exact bits (carried or kept as NaN).
    pub stale_kept: u64,
    /// Native histogram samples kept (their staleness markers passed on included).
    pub histograms_kept: u64,
    /// Histogram staleness markers passed on to the sink (exact: the sink carries them).
    pub histogram_stale_kept: u64,
    /// Histogram staleness markers dropped (`--stale drop`).
    pub histogram_stale_dropped: u64,
    /// Damaged chunks or series skipped under --skip-invalid.
    pub invalid_skipped: u64,
    pub reported: Vec<String>,
    /// The head's logs that end inside a record, whose record is lost ([`HeadStats::torn`]).
    ///
    /// [`HeadStats::torn`]: crate::pipeline::head::HeadStats::torn
    pub torn: Vec<String>,
}

impl DirStats {
    pub fn add(&mut self, o: &DirStats) {
        self.blocks += o.blocks;
        self.head_series += o.head_series;
        self.series += o.series;
        self.chunks_read += o.chunks_read;
        self.chunks_skipped += o.chunks_skipped;
        self.samples_kept += o.samples_kept;
        self.dropped_by_time += o.dropped_by_time;
        self.deleted += o.deleted;
        self.stale_dropped += o.stale_dropped;
        self.stale_kept += o.stale_kept;
        self.histograms_kept += o.histograms_kept;
        self.histogram_stale_kept += o.histogram_stale_kept;
        self.histogram_stale_dropped += o.histogram_stale_dropped;
        self.invalid_skipped += o.invalid_skipped;
        for r in &o.reported {
            self.report(r.clone());
        }
        self.torn.extend(o.torn.iter().cloned());
    }

    /// Counts a float sample of the time range: whether it is kept (a staleness marker is
    /// dropped unless `keep_stale`).
    #[inline]
    pub(crate) fn float(&mut self, bits: u64, keep_stale: bool) -> bool {
        let stale = bits == STALE_NAN_BITS;
        if stale && !keep_stale {
            self.stale_dropped += 1;
            return false;
        }
        self.stale_kept += u64::from(stale);
        self.samples_kept += 1;
        true
    }

    /// [`float`](Self::float) for a native histogram sample.
    pub(crate) fn histogram(&mut self, h: &HistogramValue, keep_stale: bool) -> bool {
        let stale = h.is_stale();
        if stale && !keep_stale {
            self.histogram_stale_dropped += 1;
            return false;
        }
        self.histogram_stale_kept += u64::from(stale);
        self.histograms_kept += 1;
        true
    }

    /// Native histogram samples kept, staleness markers excluded.
    pub fn histogram_samples(&self) -> u64 {
        self.histograms_kept - self.histogram_stale_kept
    }

    pub(crate) fn report(&mut self, r: String) {
        if self.reported.len() < MAX_REPORTED {
            self.reported.push(r);
        }
    }
}
