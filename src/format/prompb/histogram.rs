//! The native histogram message remote write 1.0 and 2.0 share, field for field
//! (`prompb.Histogram`, `io.prometheus.write.v2.Histogram`): integer histograms as count deltas,
//! float ones as absolute counts, spans, custom bounds (NHCB), reset hint, timestamp.

use prost::Message;

use crate::format::histogram::{
    CounterResetHint, FloatHistogram, Histogram as IntHistogram, HistogramValue, Span,
};

/// A native histogram sample. `sum` and `zero_threshold` are sent whenever their bits are not
/// those of +0.0 (proto3 would leave out -0.0 too, and the receiver would store +0.0).
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(oneof = "Count", tags = "1, 2")]
    pub count: Option<Count>,
    #[prost(double, optional, tag = "3")]
    pub sum: Option<f64>,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, optional, tag = "5")]
    pub zero_threshold: Option<f64>,
    #[prost(oneof = "ZeroCount", tags = "6, 7")]
    pub zero_count: Option<ZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// 0 unknown, 1 a reset, 2 no reset, 3 a gauge histogram (the model's order).
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

/// The observations count: an integer histogram's, or a float one's.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Count {
    #[prost(uint64, tag = "1")]
    Int(u64),
    #[prost(double, tag = "2")]
    Float(f64),
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ZeroCount {
    #[prost(uint64, tag = "6")]
    Int(u64),
    #[prost(double, tag = "7")]
    Float(f64),
}

#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

fn spans_out(s: &[Span]) -> Vec<BucketSpan> {
    s.iter()
        .map(|s| BucketSpan {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn spans_in(s: &[BucketSpan]) -> Vec<Span> {
    s.iter()
        .map(|s| Span {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn bits_out(v: &[u64]) -> Vec<f64> {
    v.iter().map(|b| f64::from_bits(*b)).collect()
}

fn bits_in(v: &[f64]) -> Vec<u64> {
    v.iter().map(|f| f.to_bits()).collect()
}

/// A float field sent unless it is +0.0.
fn nonzero(bits: u64) -> Option<f64> {
    (bits != 0).then(|| f64::from_bits(bits))
}

impl Histogram {
    /// The message of a histogram sample at `timestamp`, every bit kept.
    pub fn from_model(h: &HistogramValue, timestamp: i64) -> Histogram {
        match h {
            HistogramValue::Int(h) => Histogram {
                count: Some(Count::Int(h.count)),
                sum: nonzero(h.sum),
                schema: h.schema,
                zero_threshold: nonzero(h.zero_threshold),
                zero_count: Some(ZeroCount::Int(h.zero_count)),
                negative_spans: spans_out(&h.negative_spans),
                negative_deltas: h.negative_buckets.clone(),
                negative_counts: Vec::new(),
                positive_spans: spans_out(&h.positive_spans),
                positive_deltas: h.positive_buckets.clone(),
                positive_counts: Vec::new(),
                reset_hint: h.hint as i32,
                timestamp,
                custom_values: bits_out(&h.custom_values),
            },
            HistogramValue::Float(h) => Histogram {
                count: Some(Count::Float(f64::from_bits(h.count))),
                sum: nonzero(h.sum),
                schema: h.schema,
                zero_threshold: nonzero(h.zero_threshold),
                zero_count: Some(ZeroCount::Float(f64::from_bits(h.zero_count))),
                negative_spans: spans_out(&h.negative_spans),
                negative_deltas: Vec::new(),
                negative_counts: bits_out(&h.negative_buckets),
                positive_spans: spans_out(&h.positive_spans),
                positive_deltas: Vec::new(),
                positive_counts: bits_out(&h.positive_buckets),
                reset_hint: h.hint as i32,
                timestamp,
                custom_values: bits_out(&h.custom_values),
            },
        }
    }

    /// Whether Prometheus's receiver takes it as a float histogram (`IsFloatHistogram`: the
    /// count is the float one).
    pub fn is_float(&self) -> bool {
        matches!(self.count, Some(Count::Float(_)))
    }

    /// The histogram as Prometheus's receiver reads it (`ToIntHistogram`/`ToFloatHistogram`);
    /// an unknown reset hint is read as "unknown".
    pub fn to_model(&self) -> HistogramValue {
        let hint = u8::try_from(self.reset_hint)
            .ok()
            .and_then(CounterResetHint::from_u8)
            .unwrap_or_default();
        let sum = self.sum.unwrap_or(0.0).to_bits();
        let zero_threshold = self.zero_threshold.unwrap_or(0.0).to_bits();
        if self.is_float() {
            let zero_count = match self.zero_count {
                Some(ZeroCount::Float(f)) => f.to_bits(),
                Some(ZeroCount::Int(i)) => (i as f64).to_bits(),
                None => 0,
            };
            let count = match self.count {
                Some(Count::Float(f)) => f.to_bits(),
                _ => 0,
            };
            return HistogramValue::Float(FloatHistogram {
                hint,
                schema: self.schema,
                zero_threshold,
                zero_count,
                count,
                sum,
                positive_spans: spans_in(&self.positive_spans),
                negative_spans: spans_in(&self.negative_spans),
                positive_buckets: bits_in(&self.positive_counts),
                negative_buckets: bits_in(&self.negative_counts),
                custom_values: bits_in(&self.custom_values),
            });
        }
        let zero_count = match self.zero_count {
            Some(ZeroCount::Int(i)) => i,
            _ => 0,
        };
        let count = match self.count {
            Some(Count::Int(i)) => i,
            _ => 0,
        };
        HistogramValue::Int(IntHistogram {
            hint,
            schema: self.schema,
            zero_threshold,
            zero_count,
            count,
            sum,
            positive_spans: spans_in(&self.positive_spans),
            negative_spans: spans_in(&self.negative_spans),
            positive_buckets: self.positive_deltas.clone(),
            negative_buckets: self.negative_deltas.clone(),
            custom_values: bits_in(&self.custom_values),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::format::value::STALE_NAN_BITS;
    use proptest::prelude::*;

    fn spans() -> impl Strategy<Value = Vec<Span>> {
        prop::collection::vec((-5i32..5, 0u32..4), 0..4).prop_map(|v| {
            v.into_iter()
                .map(|(offset, length)| Span { offset, length })
                .collect()
        })
    }

    fn bits() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            Just(0),
            Just((-0.0f64).to_bits()),
            Just(STALE_NAN_BITS),
            Just(0x7ff8_0000_0000_0001),
        ]
    }

    /// Any histogram of the model, integer or float.
    pub(crate) fn histogram() -> impl Strategy<Value = HistogramValue> {
        let common = (
            0u8..4,
            prop_oneof![Just(-53), -4i32..9],
            bits(),
            bits(),
            spans(),
            spans(),
            prop::collection::vec(bits(), 0..4),
        );
        let counts = (
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(any::<i64>(), 0..6),
            prop::collection::vec(bits(), 0..6),
            any::<bool>(),
        );
        (common, counts).prop_map(|((hint, schema, zt, sum, ps, ns, cv), (c, z, d, f, int))| {
            let hint = CounterResetHint::from_u8(hint).unwrap();
            if int {
                HistogramValue::Int(IntHistogram {
                    hint,
                    schema,
                    zero_threshold: zt,
                    zero_count: z,
                    count: c,
                    sum,
                    positive_spans: ps,
                    negative_spans: ns,
                    positive_buckets: d.clone(),
                    negative_buckets: d.into_iter().rev().collect(),
                    custom_values: cv,
                })
            } else {
                HistogramValue::Float(FloatHistogram {
                    hint,
                    schema,
                    zero_threshold: zt,
                    zero_count: z,
                    count: c,
                    sum,
                    positive_spans: ps,
                    negative_spans: ns,
                    positive_buckets: f.clone(),
                    negative_buckets: f.into_iter().rev().collect(),
                    custom_values: cv,
                })
            }
        })
    }

    /// The bytes of a known histogram, field by field from `prompb/types.proto`.
    #[test]
    fn wire_bytes_follow_the_proto() {
        let h = HistogramValue::Int(IntHistogram {
            count: 3,
            sum: (-0.0f64).to_bits(),
            schema: -53,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![1, 1],
            custom_values: vec![0.5f64.to_bits()],
            hint: CounterResetHint::Gauge,
            ..IntHistogram::default()
        });
        let m = Histogram::from_model(&h, 1000);
        let mut want = vec![0x08, 3, 0x19];
        want.extend_from_slice(&(-0.0f64).to_le_bytes());
        // schema -53 zigzag: 105; zero count 0 (a oneof is always sent).
        want.extend_from_slice(&[0x20, 105, 0x30, 0]);
        // positive span {0, 2}, deltas [1, 1] packed zigzag, hint 3, timestamp 1000.
        want.extend_from_slice(&[0x5a, 2, 0x10, 2, 0x62, 2, 2, 2, 0x70, 3, 0x78, 0xe8, 0x07]);
        want.extend_from_slice(&[0x82, 0x01, 8]);
        want.extend_from_slice(&0.5f64.to_le_bytes());
        assert_eq!(m.encode_to_vec(), want);
        assert_eq!(Histogram::decode(&want[..]).unwrap().to_model(), h);
    }

    proptest! {
        /// Every bit of the model survives the message, through its bytes.
        #[test]
        fn model_round_trips(h in histogram(), t in any::<i64>()) {
            let m = Histogram::from_model(&h, t);
            let back = Histogram::decode(&m.encode_to_vec()[..]).unwrap();
            prop_assert_eq!(back.timestamp, t);
            prop_assert_eq!(back.is_float(), matches!(h, HistogramValue::Float(_)));
            prop_assert_eq!(back.to_model(), h);
        }
    }
}
