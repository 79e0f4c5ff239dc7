//! One series' samples as the data-dir reader carries them: float bits alone (the fast path), or,
//! once a native histogram appears, floats and histograms in one time order; pushed to the sink.

use anyhow::Result;

use crate::format::histogram::HistogramValue;
use crate::pipeline::feed::{SampleSink, SeriesId};

/// A sample's value in a series that holds native histograms: a float's bits, or the index of a
/// histogram in the series' list of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Val {
    Float(u64),
    Hist(u32),
}

/// Samples of one series. A series of floats only (nearly all) stays [`Samples::Floats`]; one
/// with a histogram holds all its samples in [`Samples::Mixed`], so that a series that changed
/// type keeps one time order (and one order among equal timestamps) across both kinds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Samples {
    /// (timestamp, value bits).
    Floats(Vec<(i64, u64)>),
    /// (timestamp, value), the histograms in `hists`.
    Mixed {
        samples: Vec<(i64, Val)>,
        hists: Vec<HistogramValue>,
    },
}

/// A sample's value lent for delivery.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ValRef<'a> {
    Float(u64),
    Hist(&'a HistogramValue),
}

impl Default for Samples {
    fn default() -> Self {
        Samples::Floats(Vec::new())
    }
}

impl Samples {
    pub fn is_empty(&self) -> bool {
        match self {
            Samples::Floats(v) => v.is_empty(),
            Samples::Mixed { samples, .. } => samples.is_empty(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Samples::Floats(v) => v.len(),
            Samples::Mixed { samples, .. } => samples.len(),
        }
    }

    /// Appends a float sample.
    #[inline]
    pub fn float(&mut self, t: i64, bits: u64) {
        match self {
            Samples::Floats(v) => v.push((t, bits)),
            Samples::Mixed { samples, .. } => samples.push((t, Val::Float(bits))),
        }
    }

    /// Appends a histogram sample, turning the series mixed.
    pub fn histogram(&mut self, t: i64, h: HistogramValue) {
        let (samples, hists) = self.mixed();
        samples.push((t, Val::Hist(hists.len() as u32)));
        hists.push(h);
    }

    /// The mixed form, converted from floats on first use.
    pub fn mixed(&mut self) -> (&mut Vec<(i64, Val)>, &mut Vec<HistogramValue>) {
        if let Samples::Floats(v) = self {
            let samples = v.iter().map(|&(t, b)| (t, Val::Float(b))).collect();
            *self = Samples::Mixed {
                samples,
                hists: Vec::new(),
            };
        }
        match self {
            Samples::Mixed { samples, hists } => (samples, hists),
            Samples::Floats(_) => unreachable!("made mixed above"),
        }
    }

    /// Keeps the first `n` samples (histograms past them stay listed, unreferenced).
    pub fn truncate(&mut self, n: usize) {
        match self {
            Samples::Floats(v) => v.truncate(n),
            Samples::Mixed { samples, .. } => samples.truncate(n),
        }
    }

    /// Orders the samples by time, stably: equal timestamps keep their order.
    pub fn sort_by_time(&mut self) {
        match self {
            Samples::Floats(v) => v.sort_by_key(|&(t, _)| t),
            Samples::Mixed { samples, .. } => samples.sort_by_key(|&(t, _)| t),
        }
    }

    /// The `i`-th sample.
    #[inline]
    pub fn get(&self, i: usize) -> (i64, ValRef<'_>) {
        match self {
            Samples::Floats(v) => (v[i].0, ValRef::Float(v[i].1)),
            Samples::Mixed { samples, hists } => match samples[i] {
                (t, Val::Float(b)) => (t, ValRef::Float(b)),
                (t, Val::Hist(k)) => (t, ValRef::Hist(&hists[k as usize])),
            },
        }
    }

    /// Delivers every sample to the sink under `id`, in order.
    pub fn push(&self, sink: &mut impl SampleSink, id: SeriesId) -> Result<()> {
        push_merged(sink, id, self, &Samples::default())
    }
}

/// Pushes one series: its block samples and its head samples (both time-ordered) merged by
/// time, block samples first among equal timestamps, as when the head came after the blocks.
pub(crate) fn push_merged(
    sink: &mut impl SampleSink,
    id: SeriesId,
    block: &Samples,
    head: &Samples,
) -> Result<()> {
    if let (Samples::Floats(b), Samples::Floats(h)) = (block, head) {
        return push_floats(sink, id, b, h);
    }
    let (mut i, mut j) = (0, 0);
    let (nb, nh) = (block.len(), head.len());
    while i < nb || j < nh {
        let take_block = j == nh || (i < nb && block.get(i).0 <= head.get(j).0);
        let (t, v) = if take_block {
            i += 1;
            block.get(i - 1)
        } else {
            j += 1;
            head.get(j - 1)
        };
        match v {
            ValRef::Float(b) => sink.float(id, t, b)?,
            ValRef::Hist(h) => sink.histogram(id, t, h)?,
        }
    }
    Ok(())
}

/// [`push_merged`] of two float series.
fn push_floats(
    sink: &mut impl SampleSink,
    id: SeriesId,
    block: &[(i64, u64)],
    head: &[(i64, u64)],
) -> Result<()> {
    let (mut i, mut j) = (0, 0);
    while i < block.len() || j < head.len() {
        let take_block = j == head.len() || (i < block.len() && block[i].0 <= head[j].0);
        let (t, v) = if take_block {
            i += 1;
            block[i - 1]
        } else {
            j += 1;
            head[j - 1]
        };
        sink.float(id, t, v)?;
    }
    Ok(())
}

/// Memory a held histogram takes, roughly: the value and its vectors.
pub(crate) fn histogram_mem(h: &HistogramValue) -> u64 {
    let (spans, buckets, custom) = match h {
        HistogramValue::Int(h) => (
            h.positive_spans.len() + h.negative_spans.len(),
            h.positive_buckets.len() + h.negative_buckets.len(),
            h.custom_values.len(),
        ),
        HistogramValue::Float(h) => (
            h.positive_spans.len() + h.negative_spans.len(),
            h.positive_buckets.len() + h.negative_buckets.len(),
            h.custom_values.len(),
        ),
    };
    (std::mem::size_of::<HistogramValue>() + 8 * (spans + buckets + custom)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::histogram::{FloatHistogram, Histogram};
    use crate::labels::Labels;
    use crate::pipeline::feed::Provenance;

    /// Records what it is given, in order.
    #[derive(Default)]
    struct Rec(Vec<(i64, String)>);

    impl SampleSink for Rec {
        fn series(&mut self, _: Labels, _: Provenance<'_>) -> Result<SeriesId> {
            Ok(0)
        }
        fn float(&mut self, _: SeriesId, t: i64, bits: u64) -> Result<()> {
            self.0.push((t, format!("f{bits}")));
            Ok(())
        }
        fn histogram(&mut self, _: SeriesId, t: i64, h: &HistogramValue) -> Result<()> {
            let c = match h {
                HistogramValue::Int(h) => h.count,
                HistogramValue::Float(h) => f64::from_bits(h.count) as u64,
            };
            self.0.push((t, format!("h{c}")));
            Ok(())
        }
    }

    fn int(count: u64) -> HistogramValue {
        HistogramValue::Int(Histogram {
            count,
            ..Default::default()
        })
    }

    #[test]
    fn a_histogram_turns_the_series_mixed_keeping_its_floats() {
        let mut s = Samples::default();
        s.float(1, 10);
        s.float(2, 20);
        assert!(matches!(s, Samples::Floats(_)));
        s.histogram(3, int(7));
        s.float(4, 40);
        assert_eq!(s.len(), 4);
        let Samples::Mixed { samples, hists } = &s else {
            panic!("not mixed")
        };
        assert_eq!(
            samples,
            &[
                (1, Val::Float(10)),
                (2, Val::Float(20)),
                (3, Val::Hist(0)),
                (4, Val::Float(40))
            ]
        );
        assert_eq!(hists, &[int(7)]);
    }

    #[test]
    fn merged_pushes_keep_block_first_among_equal_timestamps() {
        let mut block = Samples::default();
        block.float(1, 1);
        block.histogram(3, int(3));
        let mut head = Samples::default();
        head.float(3, 33);
        head.histogram(
            2,
            HistogramValue::Float(FloatHistogram {
                count: 2f64.to_bits(),
                ..Default::default()
            }),
        );
        head.sort_by_time();
        let mut r = Rec::default();
        push_merged(&mut r, 0, &block, &head).unwrap();
        let got: Vec<_> = r.0.iter().map(|(t, v)| format!("{t}:{v}")).collect();
        assert_eq!(got, ["1:f1", "2:h2", "3:h3", "3:f33"]);
        // Floats alone take the float path: the same order.
        let mut r = Rec::default();
        let (b, h) = (
            Samples::Floats(vec![(1, 1), (5, 5)]),
            Samples::Floats(vec![(1, 2), (3, 3)]),
        );
        push_merged(&mut r, 0, &b, &h).unwrap();
        let got: Vec<_> = r.0.iter().map(|(t, v)| format!("{t}:{v}")).collect();
        assert_eq!(got, ["1:f1", "1:f2", "3:f3", "5:f5"]);
    }
}
