//! What a source hands the shard writer: a series by its labels, then that series' samples by id.
//! Dump text, the data-dir reader (blocks and head) and fetch all deliver through [`SampleSink`].

use anyhow::Result;

use crate::format::histogram::HistogramValue;
use crate::labels::Labels;
use crate::select::filter::LabelEdits;

/// The id a sink gives a series; its samples are delivered under it.
pub type SeriesId = u32;

/// What a source knows of a series it delivers, beyond its labels.
#[derive(Clone, Copy, Debug, Default)]
pub struct Provenance<'a> {
    /// What `--drop-label`/`--add-label` erased from the source series
    /// ([`crate::select::filter::LabelEdits::apply_traced`]), from a source that tells its
    /// series apart this way: the sink may then refuse two source series the edits make one.
    /// `None`: not traced.
    pub origin: Option<&'a [u8]>,
    /// The source prints a staleness marker as `NaN` (dump text): the series' lone NaNs may be
    /// markers, and the sink guesses which. Exact sources (data directory, remote read) give
    /// the markers' bits.
    pub nan_markers: bool,
}

impl Provenance<'_> {
    /// A series of an exact source, untraced.
    pub const EXACT: Provenance<'static> = Provenance {
        origin: None,
        nan_markers: false,
    };
}

/// Where sources deliver series and samples, as ripgrep's searcher feeds its `Sink`: the sources
/// read, filter and edit; the sink decides how to write. The shard writer
/// ([`crate::pipeline::sink::Sink`]) keeps its windows, spilling and streaming to itself; a source
/// only states what it knows (a series' provenance, a pass boundary, memory it holds).
///
/// Only [`series`](Self::series) and [`float`](Self::float) are required; the rest are for a
/// source that reads in passes or holds samples before delivering them (the data-dir reader),
/// and do nothing by default. Native histogram samples come through
/// [`histogram`](Self::histogram), beside [`float`](Self::float).
pub trait SampleSink {
    /// A series begins (or comes again): its labels as they are to be written (edits applied).
    /// Returns the id its samples go under; the same labels give the same id.
    fn series(&mut self, labels: Labels, from: Provenance<'_>) -> Result<SeriesId>;

    /// One float sample of series `id`: the value's raw bits (staleness markers as exact as the
    /// source has them). Samples come in any order, across series and within one; a repeated
    /// timestamp is a repeated sample, of which the later one wins.
    fn float(&mut self, id: SeriesId, ts: i64, bits: u64) -> Result<()>;

    /// One native histogram sample of series `id`, integer or float, exact (a staleness marker
    /// is one whose sum has the marker's bits). Any order, as for [`float`](Self::float); at a
    /// repeated timestamp of a series the later sample wins, float or histogram. By default a
    /// sink refuses them: one that cannot carry them must say so, never drop them.
    fn histogram(&mut self, _id: SeriesId, _ts: i64, _h: &HistogramValue) -> Result<()> {
        Err(anyhow::anyhow!(
            "this output cannot carry native histograms"
        ))
    }

    /// For a source about to read in passes, the next holding no sample before `t`: where the
    /// one before should stop, so that what it delivers is complete in the sink's terms (for the
    /// shard writer, the start of the output window holding `t`). `i64::MIN`: no gain.
    fn pass_start(&self, _t: i64) -> i64 {
        i64::MIN
    }

    /// For a source that can read its data in passes by time, each from where the last ended
    /// (a pass starting at `from`, none reaching `until`): where the pass should end so that the
    /// sink holds a bounded share of the output open at once (for the shard writer, the start of
    /// a later output window). `until`: no gain in more passes.
    fn pass_end(&self, _from: i64, until: i64) -> i64 {
        until
    }

    /// Before the first sample: the text the input will give, as (first, last timestamp, bytes
    /// spread evenly between them), for a sink to lay its output out by.
    fn plan_ranges(&mut self, _ranges: &[(i64, i64, u64)]) {}

    /// A pass over the input ends: the next samples are at or after `from` (as
    /// [`pass_start`](Self::pass_start) gave it), and series may come again from the start of
    /// their order. A broken promise costs the sink speed, never a sample.
    fn begin_pass(&mut self, _from: i64) -> Result<()> {
        Ok(())
    }

    /// Memory a source may hold for the sink (samples read but not yet delivered), bytes.
    fn memory_share(&self) -> u64 {
        0
    }

    /// A source holds `bytes` for the sink from now on (0: nothing any more); the sink counts
    /// them against its own memory budget.
    fn hold_memory(&mut self, _bytes: u64) {}
}

impl<S: SampleSink + ?Sized> SampleSink for &mut S {
    #[inline]
    fn series(&mut self, labels: Labels, from: Provenance<'_>) -> Result<SeriesId> {
        (**self).series(labels, from)
    }

    #[inline]
    fn float(&mut self, id: SeriesId, ts: i64, bits: u64) -> Result<()> {
        (**self).float(id, ts, bits)
    }

    #[inline]
    fn histogram(&mut self, id: SeriesId, ts: i64, h: &HistogramValue) -> Result<()> {
        (**self).histogram(id, ts, h)
    }

    #[inline]
    fn pass_start(&self, t: i64) -> i64 {
        (**self).pass_start(t)
    }

    #[inline]
    fn pass_end(&self, from: i64, until: i64) -> i64 {
        (**self).pass_end(from, until)
    }

    fn plan_ranges(&mut self, ranges: &[(i64, i64, u64)]) {
        (**self).plan_ranges(ranges)
    }

    fn begin_pass(&mut self, from: i64) -> Result<()> {
        (**self).begin_pass(from)
    }

    #[inline]
    fn memory_share(&self) -> u64 {
        (**self).memory_share()
    }

    #[inline]
    fn hold_memory(&mut self, bytes: u64) {
        (**self).hold_memory(bytes)
    }
}

/// A sink that applies label edits to each series before handing it on, traced: the sink below
/// can then refuse two source series the edits make one (the series' [`Provenance::origin`] is
/// what the edits erased). For a source that delivers series as it finds them (fetch).
pub struct Edited<'e, S> {
    sink: S,
    edits: &'e LabelEdits,
    /// The source labels of the first series whose value an `--add-label` replaced.
    pub overrode: Option<Labels>,
}

impl<'e, S: SampleSink> Edited<'e, S> {
    pub fn new(sink: S, edits: &'e LabelEdits) -> Self {
        Edited {
            sink,
            edits,
            overrode: None,
        }
    }
}

impl<S: SampleSink> SampleSink for Edited<'_, S> {
    fn series(&mut self, mut labels: Labels, from: Provenance<'_>) -> Result<SeriesId> {
        let traced = self.edits.apply_traced(&mut labels);
        if traced.overrides && self.overrode.is_none() {
            self.overrode = Some(self.edits.restore(&labels, &traced.origin));
        }
        let from = Provenance {
            origin: Some(&traced.origin),
            ..from
        };
        self.sink.series(labels, from)
    }

    #[inline]
    fn float(&mut self, id: SeriesId, ts: i64, bits: u64) -> Result<()> {
        self.sink.float(id, ts, bits)
    }

    fn histogram(&mut self, id: SeriesId, ts: i64, h: &HistogramValue) -> Result<()> {
        self.sink.histogram(id, ts, h)
    }

    fn pass_start(&self, t: i64) -> i64 {
        self.sink.pass_start(t)
    }

    fn pass_end(&self, from: i64, until: i64) -> i64 {
        self.sink.pass_end(from, until)
    }

    fn plan_ranges(&mut self, ranges: &[(i64, i64, u64)]) {
        self.sink.plan_ranges(ranges)
    }

    fn begin_pass(&mut self, from: i64) -> Result<()> {
        self.sink.begin_pass(from)
    }

    fn memory_share(&self) -> u64 {
        self.sink.memory_share()
    }

    fn hold_memory(&mut self, bytes: u64) {
        self.sink.hold_memory(bytes)
    }
}
