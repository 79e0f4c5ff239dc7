//! Native histograms as Prometheus keeps them (`model/histogram`), losslessly: integer histograms
//! with delta-encoded buckets, float histograms with absolute ones, every float as its raw bits.
//!
//! A histogram has a schema (exponential buckets of base `2^(2^-schema)` for -4..=8, reserved up
//! to -9..=52; custom bounds for -53, NHCB), a zero bucket (threshold and count), a count, a sum,
//! positive and negative buckets laid out by spans (an offset to the previous span's end, then a
//! number of consecutive buckets), custom bounds for NHCB, and a counter-reset hint. A staleness
//! marker is a histogram whose sum has the staleness NaN's bits, all else empty.

use super::value::STALE_NAN_BITS;

/// The custom-buckets schema (NHCB): bucket bounds are `custom_values`.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;
/// Exponential schemas Prometheus writes.
pub const EXPONENTIAL_SCHEMA_MIN: i32 = -4;
pub const EXPONENTIAL_SCHEMA_MAX: i32 = 8;
/// Exponential schemas Prometheus reads (reducing the resolution of those above 8).
pub const EXPONENTIAL_SCHEMA_MIN_RESERVED: i32 = -9;
pub const EXPONENTIAL_SCHEMA_MAX_RESERVED: i32 = 52;

/// Whether `schema` is the custom-buckets schema.
pub fn is_custom_buckets(schema: i32) -> bool {
    schema == CUSTOM_BUCKETS_SCHEMA
}

/// Whether Prometheus reads a chunk of this schema (`histogram.IsKnownSchema`).
pub fn is_known_schema(schema: i32) -> bool {
    is_custom_buckets(schema)
        || (EXPONENTIAL_SCHEMA_MIN_RESERVED..=EXPONENTIAL_SCHEMA_MAX_RESERVED).contains(&schema)
}

/// What is known about a counter reset at a histogram (`histogram.CounterResetHint`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CounterResetHint {
    /// Nothing known: a reader detects resets itself.
    #[default]
    Unknown = 0,
    /// A counter reset happened here.
    CounterReset = 1,
    /// Definitely no counter reset here.
    NotCounterReset = 2,
    /// A gauge histogram, where counter resets do not apply.
    Gauge = 3,
}

impl CounterResetHint {
    /// The hint of its number (Prometheus's `iota` order), `None` beyond 3.
    pub fn from_u8(b: u8) -> Option<CounterResetHint> {
        Some(match b {
            0 => CounterResetHint::Unknown,
            1 => CounterResetHint::CounterReset,
            2 => CounterResetHint::NotCounterReset,
            3 => CounterResetHint::Gauge,
            _ => return None,
        })
    }
}

/// A run of consecutive buckets: `offset` buckets after the previous span's end (after bucket
/// index 0's place for the first span), `length` buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// The bucket indices the spans lay out, in order (Prometheus's `bucketIterator`).
pub fn bucket_indices(spans: &[Span]) -> impl Iterator<Item = i32> + '_ {
    let mut idx = 0i32;
    spans.iter().enumerate().flat_map(move |(i, s)| {
        // The first span's offset is the first index; later ones count from the last bucket.
        let start = if i == 0 { s.offset } else { idx + s.offset };
        idx = start.wrapping_add(s.length as i32);
        (0..s.length as i32).map(move |k| start.wrapping_add(k))
    })
}

/// The number of buckets the spans lay out.
pub fn bucket_count(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.length as usize).sum()
}

/// An integer histogram (`histogram.Histogram`): counts are integers, and each bucket holds the
/// difference to the bucket before it on its side (the first one its count), as Prometheus
/// stores and sends them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Histogram {
    pub hint: CounterResetHint,
    pub schema: i32,
    /// Bits of the zero bucket's upper bound (its lower is the negative of it).
    pub zero_threshold: u64,
    pub zero_count: u64,
    pub count: u64,
    /// Bits of the sum of observations.
    pub sum: u64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    /// Deltas: bucket `i` holds count(i) - count(i - 1).
    pub positive_buckets: Vec<i64>,
    pub negative_buckets: Vec<i64>,
    /// Bits of the custom bucket bounds (upper, inclusive) of schema -53; empty otherwise.
    pub custom_values: Vec<u64>,
}

/// A float histogram (`histogram.FloatHistogram`): counts and buckets are floats, buckets
/// absolute, every float as its bits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FloatHistogram {
    pub hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: u64,
    pub zero_count: u64,
    pub count: u64,
    pub sum: u64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    /// Absolute bucket counts.
    pub positive_buckets: Vec<u64>,
    pub negative_buckets: Vec<u64>,
    pub custom_values: Vec<u64>,
}

/// A histogram sample's value: integer or float.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HistogramValue {
    Int(Histogram),
    Float(FloatHistogram),
}

impl Histogram {
    /// The staleness marker Prometheus writes for a histogram series.
    pub fn stale() -> Histogram {
        Histogram {
            sum: STALE_NAN_BITS,
            ..Histogram::default()
        }
    }

    /// Whether this is a staleness marker.
    pub fn is_stale(&self) -> bool {
        self.sum == STALE_NAN_BITS
    }

    /// Absolute bucket counts from the deltas, wrapping as Go's int64 arithmetic does.
    pub fn absolute(deltas: &[i64]) -> Vec<i64> {
        let mut acc = 0i64;
        deltas
            .iter()
            .map(|d| {
                acc = acc.wrapping_add(*d);
                acc
            })
            .collect()
    }

    /// The same histogram with float counts, as Prometheus's `ToFloat`.
    pub fn to_float(&self) -> FloatHistogram {
        let f = |v: &[i64]| -> Vec<u64> {
            Histogram::absolute(v)
                .iter()
                .map(|c| (*c as f64).to_bits())
                .collect()
        };
        FloatHistogram {
            hint: self.hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: (self.zero_count as f64).to_bits(),
            count: (self.count as f64).to_bits(),
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: f(&self.positive_buckets),
            negative_buckets: f(&self.negative_buckets),
            custom_values: self.custom_values.clone(),
        }
    }
}

impl FloatHistogram {
    /// The staleness marker Prometheus writes for a float histogram series.
    pub fn stale() -> FloatHistogram {
        FloatHistogram {
            sum: STALE_NAN_BITS,
            ..FloatHistogram::default()
        }
    }

    /// Whether this is a staleness marker.
    pub fn is_stale(&self) -> bool {
        self.sum == STALE_NAN_BITS
    }
}

impl HistogramValue {
    pub fn is_stale(&self) -> bool {
        match self {
            HistogramValue::Int(h) => h.is_stale(),
            HistogramValue::Float(h) => h.is_stale(),
        }
    }

    pub fn hint(&self) -> CounterResetHint {
        match self {
            HistogramValue::Int(h) => h.hint,
            HistogramValue::Float(h) => h.hint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_lay_out_bucket_indices() {
        let spans = [
            Span {
                offset: -2,
                length: 2,
            },
            Span {
                offset: 3,
                length: 1,
            },
            Span {
                offset: 0,
                length: 0,
            },
            Span {
                offset: 1,
                length: 2,
            },
        ];
        let idx: Vec<i32> = bucket_indices(&spans).collect();
        assert_eq!(idx, [-2, -1, 3, 5, 6]);
        assert_eq!(bucket_count(&spans), 5);
        assert_eq!(bucket_indices(&[]).count(), 0);
    }

    #[test]
    fn stale_markers_and_float_conversion() {
        assert!(Histogram::stale().is_stale());
        assert!(FloatHistogram::stale().is_stale());
        let h = Histogram {
            count: 5,
            zero_count: 1,
            sum: 2.5f64.to_bits(),
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1, 2, -3],
            ..Histogram::default()
        };
        assert!(!h.is_stale());
        let f = h.to_float();
        assert_eq!(
            f.positive_buckets,
            [1.0f64.to_bits(), 3.0f64.to_bits(), 0.0f64.to_bits()]
        );
        assert_eq!(f64::from_bits(f.count), 5.0);
        assert_eq!(CounterResetHint::from_u8(3), Some(CounterResetHint::Gauge));
        assert_eq!(CounterResetHint::from_u8(4), None);
        assert!(is_known_schema(-53) && is_known_schema(52) && !is_known_schema(-10));
    }
}
