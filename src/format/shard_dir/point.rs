//! A point of a shard directory as its read hands it on: a float sample of a shard, or a
//! staleness marker or a native histogram sample of its side files, with its series.

use crate::format::histogram::HistogramValue;
use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::labels::Labels;

/// One point of a shard as its read hands it on: a float sample of the shard, or a staleness
/// marker or a native histogram sample of its side files, merged in by time into its series.
#[derive(Debug)]
pub struct Point<'a> {
    pub labels: &'a Labels,
    pub ts_ms: i64,
    pub value: Value<'a>,
    /// The first point of its series in this read.
    pub new_series: bool,
    /// A series with no sample in the shard's file, only points of its side files (markers:
    /// its target went away just before the window; histograms: a histogram series): these
    /// come after every series of the shard, in the shards' series order.
    pub side_only: bool,
}

/// What a [`Point`] is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// A float sample of the shard, as written (a real NaN among them).
    Float(f64),
    /// A float staleness marker of the stale-markers side file: its bits are exactly
    /// `STALE_NAN_BITS`.
    StaleMarker,
    /// A native histogram sample of the histograms' side file, exact; a histogram staleness
    /// marker is one whose sum has the marker's bits ([`HistogramValue::is_stale`]).
    Histogram(&'a HistogramValue),
}

impl Value<'_> {
    /// The bits of a float sample or a float marker; `None` for a histogram.
    pub fn float_bits(&self) -> Option<u64> {
        match self {
            Value::Float(v) => Some(v.to_bits()),
            Value::StaleMarker => Some(STALE_NAN_BITS),
            Value::Histogram(_) => None,
        }
    }

    /// The value of a float sample of the shard; `None` for a marker or a histogram.
    pub fn float(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// A staleness marker, float or histogram.
    pub fn is_marker(&self) -> bool {
        match self {
            Value::Float(_) => false,
            Value::StaleMarker => true,
            Value::Histogram(h) => h.is_stale(),
        }
    }
}
