//! `prompb.Histogram` of `types.proto` (remote read's `SAMPLES` response and remote write 1.0
//! carry native histograms in it) and its conversion to prom2om's model, every float as its bits.

use prost::Message;

use super::histogram::{CounterResetHint, FloatHistogram, Histogram, HistogramValue, Span};

/// `prompb.Histogram`: integer histograms carry delta buckets, float ones absolute counts; which
/// one it is says the `count` field's kind.
#[derive(Clone, PartialEq, Message)]
pub struct PbHistogram {
    #[prost(oneof = "PbCount", tags = "1, 2")]
    pub count: Option<PbCount>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "PbZeroCount", tags = "6, 7")]
    pub zero_count: Option<PbZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<PbSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<PbSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// UNKNOWN 0, YES 1, NO 2, GAUGE 3.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PbCount {
    #[prost(uint64, tag = "1")]
    Int(u64),
    #[prost(double, tag = "2")]
    Float(f64),
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum PbZeroCount {
    #[prost(uint64, tag = "6")]
    Int(u64),
    #[prost(double, tag = "7")]
    Float(f64),
}

#[derive(Clone, PartialEq, Message)]
pub struct PbSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

fn spans(v: &[PbSpan]) -> Vec<Span> {
    v.iter()
        .map(|s| Span {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

impl PbHistogram {
    /// The model's histogram, as Prometheus's `remote.HistogramProtoToHistogram` /
    /// `FloatHistogramProtoToFloatHistogram` read it: float when the count is a float, integer
    /// otherwise (a missing count or a zero count of the other kind reads as 0, as Go's getters
    /// give them).
    pub fn to_model(&self) -> Result<HistogramValue, String> {
        let hint = u8::try_from(self.reset_hint)
            .ok()
            .and_then(CounterResetHint::from_u8)
            .ok_or_else(|| format!("histogram reset hint {}", self.reset_hint))?;
        let (pos, neg) = (spans(&self.positive_spans), spans(&self.negative_spans));
        Ok(match self.count {
            Some(PbCount::Float(count)) => HistogramValue::Float(FloatHistogram {
                hint,
                schema: self.schema,
                zero_threshold: self.zero_threshold.to_bits(),
                zero_count: match self.zero_count {
                    Some(PbZeroCount::Float(n)) => n.to_bits(),
                    _ => 0,
                },
                count: count.to_bits(),
                sum: self.sum.to_bits(),
                positive_spans: pos,
                negative_spans: neg,
                positive_buckets: bits(&self.positive_counts),
                negative_buckets: bits(&self.negative_counts),
                custom_values: bits(&self.custom_values),
            }),
            _ => HistogramValue::Int(Histogram {
                hint,
                schema: self.schema,
                zero_threshold: self.zero_threshold.to_bits(),
                zero_count: match self.zero_count {
                    Some(PbZeroCount::Int(n)) => n,
                    _ => 0,
                },
                count: match self.count {
                    Some(PbCount::Int(n)) => n,
                    _ => 0,
                },
                sum: self.sum.to_bits(),
                positive_spans: pos,
                negative_spans: neg,
                positive_buckets: self.positive_deltas.clone(),
                negative_buckets: self.negative_deltas.clone(),
                custom_values: bits(&self.custom_values),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_and_float_histograms_read_as_the_model() {
        let pb = PbHistogram {
            count: Some(PbCount::Int(6)),
            sum: 1.25,
            schema: 3,
            zero_threshold: 0.001,
            zero_count: Some(PbZeroCount::Int(1)),
            positive_spans: vec![PbSpan {
                offset: -2,
                length: 2,
            }],
            positive_deltas: vec![2, 1],
            reset_hint: 1,
            timestamp: 5,
            ..Default::default()
        };
        let back = PbHistogram::decode(pb.encode_to_vec().as_slice()).unwrap();
        let HistogramValue::Int(h) = back.to_model().unwrap() else {
            panic!("integer")
        };
        assert_eq!(h.count, 6);
        assert_eq!(h.sum, 1.25f64.to_bits());
        assert_eq!(h.hint, CounterResetHint::CounterReset);
        assert_eq!(h.positive_buckets, [2, 1]);
        assert_eq!(h.zero_count, 1);
        let pb = PbHistogram {
            count: Some(PbCount::Float(2.5)),
            sum: f64::from_bits(crate::format::value::STALE_NAN_BITS),
            schema: -53,
            positive_spans: vec![PbSpan {
                offset: 0,
                length: 1,
            }],
            positive_counts: vec![2.5],
            custom_values: vec![0.5],
            reset_hint: 3,
            ..Default::default()
        };
        let back = PbHistogram::decode(pb.encode_to_vec().as_slice()).unwrap();
        let v = back.to_model().unwrap();
        assert!(v.is_stale(), "the marker's bits survive");
        let HistogramValue::Float(h) = v else {
            panic!("float")
        };
        assert_eq!(h.custom_values, [0.5f64.to_bits()]);
        assert_eq!(h.hint, CounterResetHint::Gauge);
        assert!(PbHistogram {
            reset_hint: 7,
            ..Default::default()
        }
        .to_model()
        .is_err());
    }
}
