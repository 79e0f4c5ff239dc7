//! The merge of one shard's float samples with its side files' points as the shard is parsed:
//! each series' staleness markers and native histogram samples by time, then the series that
//! have side-file points only, in the shards' series order.

use anyhow::{anyhow, Result};

use super::point::{Point, Value};
use super::side::SideData;
use crate::format::histogram::{Histogram, HistogramValue};
use crate::format::histtext;
use crate::labels::Labels;

/// The merge, as the parse goes.
pub(super) struct Parse<'s> {
    side: &'s SideData,
    /// Whether points go to the consumer.
    give: bool,
    /// Whether side-file points do.
    side_points: bool,
    /// The consumer's error, as it said it.
    pub refused: Option<String>,
    /// The side series (markers, histograms) already merged into a series of the shard.
    merged_stale: Vec<bool>,
    merged_hist: Vec<bool>,
    /// The current series' markers and histograms (position in the side data) and the first not
    /// yet handed on.
    stale: Option<(usize, usize)>,
    hist: Option<(usize, usize)>,
    /// The next point given starts its series.
    new_series: bool,
    /// The series being handed on has no sample in the shard's file.
    side_only: bool,
    /// Samples outside the window, and the first of them (line, ts).
    pub outside: u64,
    pub first_outside: Option<(u64, i64)>,
    /// The first sample where its series has a side-file point: line, ts, what the point is.
    pub clash: Option<(u64, i64, &'static str)>,
    /// The first time a series has both a marker and a histogram.
    side_clash: Option<(String, i64)>,
    /// The histogram being handed on.
    value: HistogramValue,
}

/// What a side point clashing with a sample is, for the problem that names it.
const MARKER: &str = "the stale-markers sidecar has a marker";
const HISTOGRAM: &str = "the histograms' side file has a histogram sample";

impl<'s> Parse<'s> {
    pub fn new(side: &'s SideData, give: bool, side_points: bool) -> Parse<'s> {
        Parse {
            side,
            give,
            side_points,
            refused: None,
            merged_stale: vec![false; side.stale.len()],
            merged_hist: vec![false; side.hist.len()],
            stale: None,
            hist: None,
            new_series: false,
            side_only: false,
            outside: 0,
            first_outside: None,
            clash: None,
            side_clash: None,
            value: HistogramValue::Int(Histogram::default()),
        }
    }

    /// What the parse saw wrong besides the text itself.
    pub fn problems(&self, window: &std::ops::Range<i64>, problems: &mut Vec<String>) {
        if let Some((line, ts, what)) = self.clash {
            problems.push(format!(
                "line {line}: a sample at ts {ts} ms where {what} of the same series"
            ));
        }
        if let Some((series, ts)) = &self.side_clash {
            problems.push(format!(
                "{series} has a staleness marker and a histogram sample at ts {ts} ms"
            ));
        }
        if let Some((line, ts)) = self.first_outside {
            problems.push(format!(
                "{} sample(s) outside the window [{}, {}), the first at line {line} (ts {ts} ms)",
                self.outside, window.start, window.end
            ));
        }
    }

    pub fn start_series(&mut self, labels: &Labels) {
        self.stale = self.side.stale_index.get(labels).map(|&i| {
            self.merged_stale[i] = true;
            (i, 0)
        });
        self.hist = self.side.hist_index.get(labels).map(|&i| {
            self.merged_hist[i] = true;
            (i, 0)
        });
        self.new_series = true;
    }

    /// Hands on the current series' side points before `ts`, in time order; returns what a side
    /// point at `ts` itself is (on a sample: the shard is wrong, and that point is not handed
    /// on).
    pub fn side_before(
        &mut self,
        labels: &Labels,
        ts: i64,
        f: &mut impl FnMut(&Point<'_>) -> Result<()>,
    ) -> Result<Option<&'static str>> {
        let side = self.side;
        let mut at_ts = None;
        loop {
            let m = self
                .stale
                .and_then(|(i, k)| side.stale[i].1.get(k).copied());
            let h = self.hist.and_then(|(i, k)| side.hist[i].1.get(k));
            let next = match (m, h) {
                (Some(a), Some(b)) => a.min(b.0),
                (Some(a), None) => a,
                (None, Some(b)) => b.0,
                (None, None) => break,
            };
            if next > ts {
                break;
            }
            if m == Some(next) && h.is_some_and(|h| h.0 == next) && self.side_clash.is_none() {
                self.side_clash = Some((labels.to_string(), next));
            }
            if m == Some(next) {
                self.stale = self.stale.map(|(i, k)| (i, k + 1));
                if next == ts {
                    at_ts = Some(MARKER);
                } else {
                    self.give(f, labels, next, Value::StaleMarker)?;
                }
            }
            if let Some((_, text)) = h.filter(|h| h.0 == next) {
                self.hist = self.hist.map(|(i, k)| (i, k + 1));
                if next == ts {
                    at_ts = Some(HISTOGRAM);
                } else {
                    self.give_histogram(f, labels, next, text.clone())?;
                }
            }
        }
        Ok(at_ts)
    }

    /// The rest of the current series' side points.
    pub fn end_series(&mut self, f: &mut impl FnMut(&Point<'_>) -> Result<()>) -> Result<()> {
        let side = self.side;
        let labels = match (self.stale, self.hist) {
            (Some((i, _)), _) => &side.stale[i].0,
            (None, Some((i, _))) => &side.hist[i].0,
            (None, None) => return Ok(()),
        };
        self.side_before(labels, i64::MAX, f)?;
        self.stale = None;
        self.hist = None;
        Ok(())
    }

    /// After the last sample: its series' side points, then the series with side points only,
    /// by the shards' series order.
    pub fn finish(&mut self, f: &mut impl FnMut(&Point<'_>) -> Result<()>) -> Result<()> {
        self.end_series(f)?;
        let side = self.side;
        let rank = |l: &'s Labels| (l.metric_name(), l);
        let (mut a, mut b) = (0, 0);
        self.side_only = true;
        loop {
            while a < side.stale.len() && self.merged_stale[a] {
                a += 1;
            }
            while b < side.hist.len() && self.merged_hist[b] {
                b += 1;
            }
            let m = side.stale.get(a).map(|s| rank(&s.0));
            let h = side.hist.get(b).map(|s| rank(&s.0));
            let (take_m, take_h) = match (m, h) {
                (Some(m), Some(h)) => (m <= h, h <= m),
                (m, h) => (m.is_some(), h.is_some()),
            };
            if !take_m && !take_h {
                return Ok(());
            }
            self.stale = take_m.then(|| {
                self.merged_stale[a] = true;
                (a, 0)
            });
            self.hist = take_h.then(|| {
                self.merged_hist[b] = true;
                (b, 0)
            });
            self.new_series = true;
            self.end_series(f)?;
        }
    }

    fn give_histogram(
        &mut self,
        f: &mut impl FnMut(&Point<'_>) -> Result<()>,
        labels: &Labels,
        ts_ms: i64,
        text: std::ops::Range<usize>,
    ) -> Result<()> {
        if !self.give || !self.side_points {
            return Ok(());
        }
        let mut value =
            std::mem::replace(&mut self.value, HistogramValue::Int(Histogram::default()));
        // The side file parsed whole before: its values parse again.
        histtext::parse_value(&self.side.hist_text[text], &mut value)
            .map_err(|e| anyhow!("the histograms' side file no longer reads: {e}"))?;
        let r = self.give(f, labels, ts_ms, Value::Histogram(&value));
        self.value = value;
        r
    }

    pub fn give(
        &mut self,
        f: &mut impl FnMut(&Point<'_>) -> Result<()>,
        labels: &Labels,
        ts_ms: i64,
        value: Value<'_>,
    ) -> Result<()> {
        let from_side = !matches!(value, Value::Float(_));
        if !self.give || (from_side && !self.side_points) {
            return Ok(());
        }
        let p = Point {
            labels,
            ts_ms,
            value,
            new_series: std::mem::take(&mut self.new_series),
            side_only: self.side_only,
        };
        f(&p).map_err(|err| {
            let msg = format!("{err:#}");
            self.refused = Some(msg.clone());
            anyhow!(msg)
        })
    }
}
