//! Native histograms as remote write 1.0 carries them (`prompb.Histogram`, prost by hand as
//! prom2om's own messages), and the deterministic ones the Prometheus 3.5.3 scenario pushes.

use prom2om::fetch::remote_read::{Label, Sample};
use prost::Message;

use crate::promdir::{Server, STALE_NAN};

/// Remote write 1.0's request with histograms: `prompb.WriteRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct HistWriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<HistSeries>,
}

/// `prompb.TimeSeries` with its `histograms` (field 4); exemplars are never sent.
#[derive(Clone, PartialEq, Message)]
pub struct HistSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prompb.Histogram`: integer histograms send deltas, float ones absolute counts.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(oneof = "Count", tags = "1, 2")]
    pub count: Option<Count>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
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
    /// UNKNOWN 0, YES 1, NO 2, GAUGE 3.
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

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

/// The reset hint of a gauge histogram.
pub const GAUGE: i32 = 3;
/// The schema of native histograms with custom buckets (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// A series of floats and histograms; `labels` in any order (sorted here, as remote write
/// requires).
pub fn hist_series(
    labels: &[(&str, &str)],
    floats: &[(i64, u64)],
    hs: Vec<Histogram>,
) -> HistSeries {
    let mut labels: Vec<Label> = labels
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    HistSeries {
        labels,
        samples: floats
            .iter()
            .map(|&(t, bits)| Sample {
                value: f64::from_bits(bits),
                timestamp: t,
            })
            .collect(),
        histograms: hs,
    }
}

fn spans(v: &[(i32, u32)]) -> Vec<BucketSpan> {
    v.iter()
        .map(|&(offset, length)| BucketSpan { offset, length })
        .collect()
}

/// Absolute bucket counts as the deltas an integer histogram carries.
fn deltas(counts: &[u64]) -> Vec<i64> {
    let mut prev = 0i64;
    counts
        .iter()
        .map(|&c| {
            let d = c as i64 - prev;
            prev = c as i64;
            d
        })
        .collect()
}

/// The observations counter of the integer histograms at `t`: one step per 10 s since `start`,
/// back to 1 at minute 5 (a counter reset).
fn steps(start: i64, t: i64) -> u64 {
    let since = t - start;
    let from = if since >= 300_000 { 300_000 } else { 0 };
    ((since - from) / 10_000 + 1) as u64
}

/// The exponential integer counter histogram at `t`: schema 3, then 0 from minute 7 (a schema
/// change), a zero bucket, negative buckets, an empty bucket inside a span, a reset at minute 5.
pub fn exponential(start: i64, t: i64) -> Histogram {
    let b = steps(start, t);
    let pos = [b, 0, 2 * b, b / 2, 3 * b];
    let neg = [b / 3, b];
    let zero = b / 4;
    Histogram {
        count: Some(Count::Int(
            pos.iter().sum::<u64>() + neg.iter().sum::<u64>() + zero,
        )),
        sum: b as f64 * 0.75 - 3.5,
        schema: if t - start >= 420_000 { 0 } else { 3 },
        zero_threshold: 0.001,
        zero_count: Some(ZeroCount::Int(zero)),
        negative_spans: spans(&[(1, 2)]),
        negative_deltas: deltas(&neg),
        positive_spans: spans(&[(-2, 3), (2, 2)]),
        positive_deltas: deltas(&pos),
        timestamp: t,
        ..Default::default()
    }
}

/// The float gauge histogram at `t` (schema 1, counts going up and down, all exact in binary).
pub fn float_gauge(start: i64, t: i64) -> Histogram {
    let x = ((t - start) / 1_000 % 13) as f64 * 0.75 + 0.25;
    let pos = [x, x * 0.5, 0.0, 2.25];
    let zero = 0.5;
    Histogram {
        count: Some(Count::Float(pos.iter().sum::<f64>() + zero)),
        sum: x * -1.5,
        schema: 1,
        zero_threshold: 0.0001,
        zero_count: Some(ZeroCount::Float(zero)),
        positive_spans: spans(&[(0, 4)]),
        positive_counts: pos.to_vec(),
        reset_hint: GAUGE,
        timestamp: t,
        ..Default::default()
    }
}

/// Custom bounds of the pushed NHCB series.
pub const CUSTOM_BOUNDS: [f64; 4] = [0.005, 0.1, 1.0, 10.0];

/// The counter histogram with custom buckets (NHCB) at `t`: the four bounds and +Inf, an empty
/// bucket, the same reset at minute 5 as [`exponential`].
pub fn custom(start: i64, t: i64) -> Histogram {
    let b = steps(start, t);
    let pos = [b, 2 * b, 0, b, b / 2];
    Histogram {
        count: Some(Count::Int(pos.iter().sum())),
        sum: b as f64 * 0.125,
        schema: CUSTOM_BUCKETS_SCHEMA,
        positive_spans: spans(&[(0, 5)]),
        positive_deltas: deltas(&pos),
        custom_values: CUSTOM_BOUNDS.to_vec(),
        timestamp: t,
        ..Default::default()
    }
}

/// A histogram staleness marker at `t`, as a scrape writes one: no buckets, the sum StaleNaN.
pub fn stale(t: i64) -> Histogram {
    Histogram {
        count: Some(Count::Int(0)),
        sum: f64::from_bits(STALE_NAN),
        timestamp: t,
        ..Default::default()
    }
}

impl Server {
    /// Pushes float and histogram `series` with remote write 1.0.
    pub fn remote_write_histograms(&self, series: Vec<HistSeries>) {
        self.remote_write_body(
            snap::raw::Encoder::new()
                .compress_vec(&HistWriteRequest { timeseries: series }.encode_to_vec())
                .unwrap(),
        );
    }
}
