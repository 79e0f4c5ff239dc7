//! Native histograms rebuilt from the query API's JSON (`--method raw`): `{count, sum, buckets:
//! [[boundary_rule, lower, upper, count], ...]}`, as exactly as the JSON allows.
//!
//! The JSON gives the float counts of the non-empty buckets with their bounds. From the bounds
//! come the schema (an exponential bucket spans a factor of `2^(2^-schema)`), the bucket indices,
//! the zero threshold (the zero bucket `[-t, t]`) and the custom bounds of NHCB (every bound the
//! series' buckets show). It cannot say: the counter-reset hint (`unknown` here), whether the
//! counts were integers (rebuilt as float histograms), the empty buckets and their spans, the
//! custom bounds only empty buckets would show, and the schema or zero threshold of a sample
//! whose buckets do not show them (taken from the previous sample of its series that does, else
//! the next).
//! Remote read carries all of it exactly.

use serde::{Deserialize, Serialize};

use crate::format::histogram::{FloatHistogram, Span, CUSTOM_BUCKETS_SCHEMA};

/// One histogram as the API prints it: every number a string.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct JsonHistogram {
    pub count: String,
    pub sum: String,
    #[serde(default)]
    pub buckets: Vec<(u8, String, String, String)>,
}

/// What the JSON of the histograms rebuilt left unknown, counted for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guessed {
    /// Histograms whose schema was taken from another sample of their series (no bucket shows it).
    pub schema: u64,
    /// Histograms whose zero threshold was taken from another sample (the zero bucket is empty).
    pub zero_threshold: u64,
    /// Histograms whose schema and zero threshold no sample of the series shows (0 taken).
    pub unknown: u64,
}

impl Guessed {
    pub fn add(&mut self, o: &Guessed) {
        self.schema += o.schema;
        self.zero_threshold += o.zero_threshold;
        self.unknown += o.unknown;
    }
}

/// A bucket parsed: boundary rule, lower, upper, count.
type Bucket = (u8, f64, f64, f64);

fn number(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .map_err(|_| format!("histogram number {s:?} is not a number")),
    }
}

/// One histogram's numbers.
struct Parsed {
    count: f64,
    sum: f64,
    buckets: Vec<Bucket>,
}

fn parse(h: &JsonHistogram) -> Result<Parsed, String> {
    let mut buckets = Vec::with_capacity(h.buckets.len());
    for (rule, lo, hi, c) in &h.buckets {
        let (lo, hi) = (number(lo)?, number(hi)?);
        if *rule > 3 || lo.is_nan() || hi.is_nan() || lo > hi {
            return Err(format!(
                "histogram bucket [{rule}, {lo}, {hi}] is no bucket"
            ));
        }
        buckets.push((*rule, lo, hi, number(c)?));
    }
    Ok(Parsed {
        count: number(&h.count)?,
        sum: number(&h.sum)?,
        buckets,
    })
}

/// Whether a bucket is a zero bucket: `[-t, t]`, both inclusive.
fn is_zero_bucket(b: &Bucket) -> bool {
    b.0 == 3 && b.1 == -b.2
}

/// The exponential schema of a bucket spanning `lo` to `hi` (same sign, not clipped), if any.
fn schema_of(lo: f64, hi: f64) -> Option<i32> {
    let (a, b) = (lo.abs().min(hi.abs()), lo.abs().max(hi.abs()));
    if !(a > 0.0 && b.is_finite() && b < f64::MAX) {
        return None;
    }
    let s = -(b / a).log2().log2();
    let r = s.round();
    ((s - r).abs() < 1e-9 && (-4.0..=8.0).contains(&r)).then_some(r as i32)
}

/// Whether a histogram's buckets show it has custom bounds (NHCB): a bucket closed on both ends
/// that is no zero bucket (the first, from -Inf), a bucket open below whose lower bound is
/// negative, a +Inf bucket whose lower bound is not the largest float, or a span no
/// exponential schema has.
fn shows_custom(p: &Parsed) -> bool {
    p.buckets.iter().any(|b| match *b {
        (3, _, _, _) => !is_zero_bucket(b),
        (0, lo, hi, _) if hi == f64::INFINITY => lo != f64::MAX,
        (0, lo, _, _) if lo < 0.0 => true,
        (0, lo, hi, _) => lo > 0.0 && schema_of(lo, hi).is_none(),
        _ => false,
    })
}

/// The schema an exponential histogram's buckets show: that of its widest-bounded regular
/// bucket (the one least likely cut by the zero bucket).
fn shown_schema(p: &Parsed) -> Option<i32> {
    p.buckets
        .iter()
        .filter(|b| matches!(b.0, 0 | 1) && b.1.is_finite() && b.2.is_finite())
        .max_by(|x, y| {
            x.1.abs()
                .max(x.2.abs())
                .total_cmp(&y.1.abs().max(y.2.abs()))
        })
        .and_then(|b| schema_of(b.1, b.2))
}

/// Bucket indices Prometheus has: schema 8 reaches index `1024 << 8` and its overflow bucket.
const MAX_INDEX: f64 = (1 << 20) as f64;

/// The bucket index of an exponential bound magnitude `m` (`2^(idx * 2^-schema)`).
fn index_of(m: f64, schema: i32) -> Result<i32, String> {
    let i = (m.log2() * 2f64.powi(schema)).round();
    if i.abs() > MAX_INDEX || i.is_nan() {
        return Err(format!("histogram bucket bound {m} has no index"));
    }
    Ok(i as i32)
}

/// Spans and counts from (index, count) pairs in ascending index order.
fn layout(buckets: &[(i32, f64)]) -> (Vec<Span>, Vec<u64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut counts = Vec::with_capacity(buckets.len());
    let mut next = None::<i32>;
    for &(idx, c) in buckets {
        match (next, spans.last_mut()) {
            (Some(n), Some(s)) if idx == n => s.length += 1,
            (Some(n), _) => spans.push(Span {
                offset: idx - n,
                length: 1,
            }),
            (None, _) => spans.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        next = Some(idx + 1);
        counts.push(c.to_bits());
    }
    (spans, counts)
}

/// The histograms of one series (time order), rebuilt; what had to be taken from other samples
/// is counted in `guessed`.
pub fn rebuild_series(
    hs: &[(i64, JsonHistogram)],
    guessed: &mut Guessed,
) -> Result<Vec<(i64, FloatHistogram)>, String> {
    let parsed = hs
        .iter()
        .map(|(_, h)| parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    let out = if parsed.iter().any(shows_custom) {
        custom(&parsed)?
    } else {
        exponential(&parsed, guessed)?
    };
    Ok(hs.iter().map(|(t, _)| *t).zip(out).collect())
}

/// The value known at each sample: its own, else the previous sample's, else the next one's.
fn fill(own: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut out = own.to_vec();
    let mut last = None;
    for v in out.iter_mut() {
        match v {
            Some(x) => last = Some(*x),
            None => *v = last,
        }
    }
    let mut next = None;
    for (v, o) in out.iter_mut().zip(own).rev() {
        match o {
            Some(x) => next = Some(*x),
            None => *v = v.or(next),
        }
    }
    out
}

fn exponential(parsed: &[Parsed], guessed: &mut Guessed) -> Result<Vec<FloatHistogram>, String> {
    let schemas: Vec<Option<f64>> = parsed
        .iter()
        .map(|p| shown_schema(p).map(f64::from))
        .collect();
    let zts: Vec<Option<f64>> = parsed
        .iter()
        .map(|p| p.buckets.iter().find(|b| is_zero_bucket(b)).map(|b| b.2))
        .collect();
    let (schema, zt) = (fill(&schemas), fill(&zts));
    let mut out = Vec::with_capacity(parsed.len());
    for (i, p) in parsed.iter().enumerate() {
        guessed.schema += u64::from(schemas[i].is_none() && schema[i].is_some());
        guessed.zero_threshold += u64::from(zts[i].is_none() && zt[i].is_some());
        guessed.unknown += u64::from(schema[i].is_none() || zt[i].is_none());
        let s = schema[i].unwrap_or(0.0) as i32;
        let (mut pos, mut neg, mut zero) = (Vec::new(), Vec::new(), 0f64);
        for b in &p.buckets {
            match *b {
                _ if is_zero_bucket(b) => zero = b.3,
                // (lo, hi]: indexed by the upper bound; the +Inf bucket by its lower one.
                (0, lo, hi, c) if hi.is_infinite() => pos.push((index_of(lo, s)? + 1, c)),
                (0, _, hi, c) => pos.push((index_of(hi, s)?, c)),
                // [lo, hi) below zero: by the magnitude of the lower bound.
                (_, lo, hi, c) if lo.is_infinite() => neg.push((index_of(-hi, s)? + 1, c)),
                (_, lo, _, c) => neg.push((index_of(-lo, s)?, c)),
            }
        }
        // The JSON lists buckets in ascending order: indices go up (negative ones down).
        let up = |v: &[(i32, f64)]| v.windows(2).all(|w| w[0].0 < w[1].0);
        if !up(&pos) || !neg.windows(2).all(|w| w[0].0 > w[1].0) {
            return Err("histogram buckets out of order".into());
        }
        // Negative buckets come most negative (highest index) first.
        neg.reverse();
        let (positive_spans, positive_buckets) = layout(&pos);
        let (negative_spans, negative_buckets) = layout(&neg);
        out.push(FloatHistogram {
            schema: s,
            zero_threshold: zt[i].unwrap_or(0.0).to_bits(),
            zero_count: zero.to_bits(),
            count: p.count.to_bits(),
            sum: p.sum.to_bits(),
            positive_spans,
            negative_spans,
            positive_buckets,
            negative_buckets,
            ..Default::default()
        });
    }
    Ok(out)
}

/// NHCB: the custom bounds are every finite bound the series' buckets show, so that its
/// histograms share them (Prometheus adds and subtracts NHCB only of the same bounds).
fn custom(parsed: &[Parsed]) -> Result<Vec<FloatHistogram>, String> {
    let mut bounds: Vec<f64> = parsed
        .iter()
        .flat_map(|p| p.buckets.iter().flat_map(|b| [b.1, b.2]))
        .filter(|b| b.is_finite())
        .collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    let mut out = Vec::with_capacity(parsed.len());
    for p in parsed {
        let mut buckets = Vec::with_capacity(p.buckets.len());
        for &(_, lo, hi, c) in &p.buckets {
            let idx = match hi {
                f64::INFINITY => bounds.len(),
                _ => bounds
                    .binary_search_by(|b| b.total_cmp(&hi))
                    .map_err(|_| format!("custom bucket bound {hi} unknown"))?,
            };
            let below = if idx == 0 {
                f64::NEG_INFINITY
            } else {
                bounds[idx - 1]
            };
            if below != lo {
                return Err(format!(
                    "custom bucket ({lo}, {hi}] spans several buckets of its series"
                ));
            }
            if buckets.last().is_some_and(|&(last, _)| last >= idx as i32) {
                return Err("custom buckets out of order".into());
            }
            buckets.push((idx as i32, c));
        }
        let (positive_spans, positive_buckets) = layout(&buckets);
        out.push(FloatHistogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: p.count.to_bits(),
            sum: p.sum.to_bits(),
            positive_spans,
            positive_buckets,
            custom_values: bounds.iter().map(|b| b.to_bits()).collect(),
            ..Default::default()
        });
    }
    Ok(out)
}

/// Fuzz logic: arbitrary bytes as the API's JSON histograms of one series, rebuilt; never
/// panics.
pub fn fuzz_histogram_json(data: &[u8]) {
    if let Ok(hs) = serde_json::from_slice::<Vec<(i64, JsonHistogram)>>(data) {
        let _ = rebuild_series(&hs, &mut Guessed::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(count: &str, sum: &str, buckets: &[(u8, &str, &str, &str)]) -> JsonHistogram {
        JsonHistogram {
            count: count.into(),
            sum: sum.into(),
            buckets: buckets
                .iter()
                .map(|&(r, a, b, c)| (r, a.into(), b.into(), c.into()))
                .collect(),
        }
    }

    fn f(bits: u64) -> f64 {
        f64::from_bits(bits)
    }

    #[test]
    fn an_exponential_histogram_from_its_buckets() {
        // Schema 1 (base sqrt 2), zero threshold 0.001, a negative bucket, an empty bucket.
        let h = json(
            "10",
            "3.5",
            &[
                (1, "-2", "-1.414213562373095", "1"),
                (3, "-0.001", "0.001", "2"),
                (0, "1", "1.414213562373095", "3"),
                (0, "2", "2.82842712474619", "4"),
            ],
        );
        let mut g = Guessed::default();
        let out = rebuild_series(&[(5, h)], &mut g).unwrap();
        let (t, h) = &out[0];
        assert_eq!(*t, 5);
        assert_eq!(
            (h.schema, f(h.zero_threshold), f(h.zero_count)),
            (1, 0.001, 2.0)
        );
        assert_eq!((f(h.count), f(h.sum)), (10.0, 3.5));
        // Indices 1 and 3 (upper bounds 2^(1/2), 2^(3/2)): one empty bucket between.
        assert_eq!(
            h.positive_spans,
            [
                Span {
                    offset: 1,
                    length: 1
                },
                Span {
                    offset: 1,
                    length: 1
                }
            ]
        );
        assert_eq!(h.positive_buckets, [3f64.to_bits(), 4f64.to_bits()]);
        assert_eq!(
            h.negative_spans,
            [Span {
                offset: 2,
                length: 1
            }]
        );
        assert_eq!(g, Guessed::default());
    }

    #[test]
    fn what_a_sample_does_not_show_comes_from_its_neighbours() {
        let empty = json("0", "0", &[]);
        let full = json("1", "2", &[(0, "4", "16", "1"), (3, "-0.5", "0.5", "0")]);
        let mut g = Guessed::default();
        let out = rebuild_series(&[(1, empty.clone()), (2, full), (3, empty)], &mut g).unwrap();
        let schemas: Vec<i32> = out.iter().map(|h| h.1.schema).collect();
        assert_eq!(schemas, [-1, -1, -1]);
        assert_eq!(f(out[0].1.zero_threshold), 0.5);
        assert_eq!(
            g,
            Guessed {
                schema: 2,
                zero_threshold: 2,
                unknown: 0
            }
        );
        let mut g = Guessed::default();
        rebuild_series(&[(1, json("0", "0", &[]))], &mut g).unwrap();
        assert_eq!(g.unknown, 1);
    }

    #[test]
    fn custom_bounds_are_the_series_bounds() {
        let a = json("3", "1", &[(3, "-Inf", "0.005", "1"), (0, "0.1", "1", "2")]);
        let b = json(
            "4",
            "9",
            &[(0, "0.005", "0.1", "1"), (0, "10", "+Inf", "3")],
        );
        let mut g = Guessed::default();
        let out = rebuild_series(&[(1, a), (2, b)], &mut g).unwrap();
        let bounds: Vec<f64> = out[0].1.custom_values.iter().map(|b| f(*b)).collect();
        assert_eq!(bounds, [0.005, 0.1, 1.0, 10.0]);
        assert_eq!(out[1].1.custom_values, out[0].1.custom_values);
        assert_eq!(out[0].1.schema, CUSTOM_BUCKETS_SCHEMA);
        // a: buckets 0 and 2; b: 1 and 4 (the +Inf bucket).
        let idx = |h: &FloatHistogram| -> Vec<i32> {
            crate::format::histogram::bucket_indices(&h.positive_spans).collect()
        };
        assert_eq!(idx(&out[0].1), [0, 2]);
        assert_eq!(idx(&out[1].1), [1, 4]);
        // A bucket crossing a bound another sample shows: refused.
        let c = json("1", "1", &[(0, "0.005", "1", "1")]);
        let d = json("1", "1", &[(0, "0.1", "1", "1"), (3, "-Inf", "0.005", "0")]);
        assert!(rebuild_series(&[(1, c), (2, d)], &mut g).is_err());
    }

    #[test]
    fn overflow_buckets_and_rules() {
        assert_eq!(schema_of(1.0, 2.0), Some(0));
        assert_eq!(schema_of(1.0, 65536.0), Some(-4));
        assert_eq!(schema_of(0.1, 1.0), None);
        // The +Inf bucket of an exponential histogram: (MaxFloat64, +Inf].
        let max = format!("{:e}", f64::MAX);
        let h = json("2", "1", &[(0, "1", "2", "1"), (0, &max, "+Inf", "1")]);
        let out = rebuild_series(&[(1, h)], &mut Guessed::default()).unwrap();
        let idx: Vec<i32> =
            crate::format::histogram::bucket_indices(&out[0].1.positive_spans).collect();
        assert_eq!(idx, [1, 1025]);
        assert!(parse(&json("1", "x", &[])).is_err());
        let backwards = json("2", "1", &[(0, "2", "4", "1"), (0, "1", "2", "1")]);
        assert!(rebuild_series(&[(1, backwards)], &mut Guessed::default()).is_err());
    }

    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("NaN".to_string()),
            Just("+Inf".to_string()),
            Just("-Inf".to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            (-8i32..9, -300i32..300)
                .prop_map(|(s, i)| (i as f64 / 2f64.powi(s)).exp2().to_string()),
        ]
    }

    proptest! {
        #[test]
        fn any_json_histograms_rebuild_or_fail_cleanly(
            hs in prop::collection::vec(
                (any::<i64>(), number_text(), number_text(), prop::collection::vec(
                    (0u8..5, number_text(), number_text(), number_text()), 0..6)),
                0..4)
        ) {
            let hs: Vec<(i64, JsonHistogram)> = hs
                .into_iter()
                .map(|(t, count, sum, buckets)| (t, JsonHistogram { count, sum, buckets }))
                .collect();
            fuzz_histogram_json(&serde_json::to_vec(&hs).unwrap());
            let _ = rebuild_series(&hs, &mut Guessed::default());
        }

        #[test]
        fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..200)) {
            fuzz_histogram_json(&data);
        }
    }
}
