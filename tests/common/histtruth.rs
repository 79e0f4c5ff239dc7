//! Native histograms against the query API: prom2om's model as the API's JSON shows it (count,
//! sum, and the non-empty buckets with their boundary rule, bounds and count, as Prometheus's
//! `AllBucketIterator` lays them out), and a sink that collects what a source delivers.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};

use prom2om::format::histogram::{is_custom_buckets, FloatHistogram, HistogramValue, Span};
use prom2om::labels::Labels;
use prom2om::pipeline::feed::{Provenance, SampleSink, SeriesId};

use crate::truth;

/// A histogram as the API's JSON shows it.
#[derive(Clone, Debug)]
pub struct ApiHistogram {
    pub count: f64,
    pub sum: f64,
    /// (boundary rule, lower, upper, count) of each non-empty bucket, in ascending order.
    pub buckets: Vec<(u8, f64, f64, f64)>,
}

fn api_float(v: &serde_json::Value) -> f64 {
    match v.as_str().unwrap() {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap(),
    }
}

impl ApiHistogram {
    /// From the API's JSON object.
    pub fn from_json(v: &serde_json::Value) -> ApiHistogram {
        let buckets = v["buckets"]
            .as_array()
            .map(|b| {
                b.iter()
                    .map(|b| {
                        let rule = b[0].as_u64().unwrap() as u8;
                        (rule, api_float(&b[1]), api_float(&b[2]), api_float(&b[3]))
                    })
                    .collect()
            })
            .unwrap_or_default();
        ApiHistogram {
            count: api_float(&v["count"]),
            sum: api_float(&v["sum"]),
            buckets,
        }
    }

    /// As the API shows the model's histogram (integer ones as floats, as the API does).
    pub fn from_model(h: &HistogramValue) -> ApiHistogram {
        let f = match h {
            HistogramValue::Int(h) => h.to_float(),
            HistogramValue::Float(h) => h.clone(),
        };
        let custom: Vec<f64> = f.custom_values.iter().map(|b| f64::from_bits(*b)).collect();
        let zt = f64::from_bits(f.zero_threshold);
        let mut buckets = Vec::new();
        let clip = |lo: f64, hi: f64| {
            let lo = if lo > 0.0 && lo < zt { zt } else { lo };
            let hi = if hi < 0.0 && hi > -zt { -zt } else { hi };
            (lo, hi)
        };
        // Negative buckets from the highest index (the lowest bounds) down.
        let neg = layout(&f.negative_spans, &f.negative_buckets);
        for &(idx, c) in neg.iter().rev() {
            let (lo, hi) = clip(
                -bound(idx, f.schema, &custom),
                -bound(idx - 1, f.schema, &custom),
            );
            push(&mut buckets, f.schema, idx, lo, hi, c);
        }
        let zc = f64::from_bits(f.zero_count);
        if zc > 0.0 {
            buckets.push((3, -zt, zt, zc));
        }
        for &(idx, c) in &layout(&f.positive_spans, &f.positive_buckets) {
            let (lo, hi) = clip(
                bound(idx - 1, f.schema, &custom),
                bound(idx, f.schema, &custom),
            );
            push(&mut buckets, f.schema, idx, lo, hi, c);
        }
        ApiHistogram {
            count: f64::from_bits(f.count),
            sum: f64::from_bits(f.sum),
            buckets,
        }
    }

    /// The same JSON: counts and sums exactly (NaN alike), bounds within rounding (Prometheus
    /// takes them from a table, the model's are computed here).
    pub fn same(&self, o: &ApiHistogram) -> bool {
        let eq = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let near = |a: f64, b: f64| a == b || ((a - b) / a.abs().max(b.abs())).abs() < 1e-12;
        eq(self.count, o.count)
            && eq(self.sum, o.sum)
            && self.buckets.len() == o.buckets.len()
            && self
                .buckets
                .iter()
                .zip(&o.buckets)
                .all(|(a, b)| a.0 == b.0 && near(a.1, b.1) && near(a.2, b.2) && eq(a.3, b.3))
    }
}

fn push(out: &mut Vec<(u8, f64, f64, f64)>, schema: i32, idx: i32, lo: f64, hi: f64, c: f64) {
    if c == 0.0 {
        return;
    }
    let (lower_incl, upper_incl) = if is_custom_buckets(schema) {
        (idx == 0, true)
    } else {
        (lo < 0.0, hi > 0.0)
    };
    let rule = match (lower_incl, upper_incl) {
        (false, true) => 0,
        (true, false) => 1,
        (false, false) => 2,
        (true, true) => 3,
    };
    out.push((rule, lo, hi, c));
}

/// (bucket index, absolute count) of each bucket the spans lay out.
fn layout(spans: &[Span], buckets: &[u64]) -> Vec<(i32, f64)> {
    prom2om::format::histogram::bucket_indices(spans)
        .zip(buckets)
        .map(|(i, b)| (i, f64::from_bits(*b)))
        .collect()
}

/// Prometheus's `getBound`, computed (its table holds the same values, rounded).
fn bound(idx: i32, schema: i32, custom: &[f64]) -> f64 {
    if is_custom_buckets(schema) {
        return match idx {
            -1 => f64::NEG_INFINITY,
            i if i as usize == custom.len() => f64::INFINITY,
            i => custom[i as usize],
        };
    }
    let exp = idx as f64 / 2f64.powi(schema);
    if exp == 1024.0 {
        return f64::MAX;
    }
    exp.exp2()
}

/// One value as a source delivered it.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivered {
    Float(u64),
    Histogram(HistogramValue),
}

/// A sink that keeps what it is given, per series, and gives it back as the shard sink would
/// write it: each series in time order, one sample per timestamp (the later one). `share` is
/// the memory a source may hold for it; with `window` set, it asks a source reading in passes
/// to stop at the start of the window of that many ms holding a time, as the shard sink does.
#[derive(Default)]
pub struct Collector {
    ids: HashMap<Labels, SeriesId>,
    series: Vec<(Labels, Vec<(i64, Delivered)>)>,
    pub share: u64,
    pub window: i64,
}

impl SampleSink for Collector {
    fn series(&mut self, labels: Labels, _: Provenance<'_>) -> anyhow::Result<SeriesId> {
        if let Some(&id) = self.ids.get(&labels) {
            return Ok(id);
        }
        let id = self.series.len() as SeriesId;
        self.ids.insert(labels.clone(), id);
        self.series.push((labels, Vec::new()));
        Ok(id)
    }

    fn float(&mut self, id: SeriesId, ts: i64, bits: u64) -> anyhow::Result<()> {
        self.series[id as usize]
            .1
            .push((ts, Delivered::Float(bits)));
        Ok(())
    }

    fn histogram(&mut self, id: SeriesId, ts: i64, h: &HistogramValue) -> anyhow::Result<()> {
        let v = Delivered::Histogram(h.clone());
        self.series[id as usize].1.push((ts, v));
        Ok(())
    }

    fn pass_start(&self, t: i64) -> i64 {
        match self.window {
            0 => i64::MIN,
            w => t - t.rem_euclid(w),
        }
    }

    fn memory_share(&self) -> u64 {
        self.share
    }
}

/// Series (as the API's labels) and their samples.
pub type Got = BTreeMap<truth::Labels, Vec<(i64, Delivered)>>;

impl Collector {
    pub fn new(share: u64, window: i64) -> Collector {
        Collector {
            share,
            window,
            ..Default::default()
        }
    }

    /// Each series in time order, the later of two samples at one timestamp kept.
    pub fn into_series(self) -> Got {
        let mut out = Got::new();
        for (labels, mut samples) in self.series {
            samples.sort_by_key(|s| s.0);
            let mut kept: Vec<(i64, Delivered)> = Vec::with_capacity(samples.len());
            for s in samples {
                match kept.last_mut() {
                    Some(last) if last.0 == s.0 => *last = s,
                    _ => kept.push(s),
                }
            }
            if kept.is_empty() {
                continue;
            }
            let l: truth::Labels = labels
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            out.entry(l).or_default().extend(kept);
        }
        out
    }
}

/// Whether a delivered value is what the API shows.
pub fn same_value(got: &Delivered, api: &truth::Value) -> bool {
    match (got, api) {
        (Delivered::Float(bits), truth::Value::Float(s)) => {
            let want = api_float(&serde_json::Value::String(s.clone()));
            let v = f64::from_bits(*bits);
            v.to_bits() == want.to_bits() || (v.is_nan() && want.is_nan())
        }
        (Delivered::Histogram(h), truth::Value::Histogram(_)) => {
            ApiHistogram::from_model(h).same(&ApiHistogram::from_json(&api.histogram().unwrap()))
        }
        _ => false,
    }
}

/// The first difference between what a source delivered and the API's raw samples, per series.
pub fn first_difference(got: &Got, api: &truth::Samples) -> Option<String> {
    for (k, want) in api {
        let Some(have) = got.get(k) else {
            return Some(format!(
                "{k:?}: missing ({} samples in the API)",
                want.len()
            ));
        };
        if have.len() != want.len() {
            let kinds = |n: usize, h: usize| format!("{} floats, {h} histograms", n - h);
            let hh = have
                .iter()
                .filter(|s| matches!(s.1, Delivered::Histogram(_)))
                .count();
            let wh = want.iter().filter(|s| s.1.is_histogram()).count();
            return Some(format!(
                "{k:?}: {} here, {} in the API",
                kinds(have.len(), hh),
                kinds(want.len(), wh)
            ));
        }
        for (a, b) in have.iter().zip(want) {
            if a.0 != b.0 || !same_value(&a.1, &b.1) {
                return Some(format!(
                    "{k:?} at {}: {:?} here, {:?} in the API",
                    b.0, a, b
                ));
            }
        }
    }
    got.keys()
        .find(|k| !api.contains_key(*k))
        .map(|k| format!("{k:?}: here, not in the API"))
}

/// A float histogram with its counts as plain floats (for building expectations).
pub fn float_histogram(h: &HistogramValue) -> FloatHistogram {
    match h {
        HistogramValue::Int(h) => h.to_float(),
        HistogramValue::Float(h) => h.clone(),
    }
}
