//! Ground truth from a real Prometheus's query API, floats and native histograms alike: raw
//! samples of a window, counts per series, instant answers, and two servers compared instant by instant.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::{url_encode, Prom};

/// A series' labels, `__name__` included.
pub type Labels = BTreeMap<String, String>;

/// One value as the JSON API gives it: a float as Prometheus spells it (`NaN`, `+Inf`, ...), or
/// a histogram as its whole JSON object (count, sum, and each bucket's boundary rule, bounds
/// and count, all as Prometheus prints them; keys sorted), so two compare exactly.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Float(String),
    Histogram(String),
}

impl Value {
    pub fn is_histogram(&self) -> bool {
        matches!(self, Value::Histogram(_))
    }

    /// The histogram's JSON object (None for a float).
    pub fn histogram(&self) -> Option<serde_json::Value> {
        match self {
            Value::Histogram(h) => Some(serde_json::from_str(h).unwrap()),
            Value::Float(_) => None,
        }
    }
}

/// An instant answer: each series with its value.
pub type Vector = BTreeMap<Labels, Value>;
/// Raw samples of a window: each series with its (ms, value) in time order.
pub type Samples = BTreeMap<Labels, Vec<(i64, Value)>>;

/// Unix seconds with milliseconds, as the API takes them.
pub fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// The `data` of `/api/v1/query` for `query` at `t_ms`, or the error the API answered (e.g.
/// Prometheus 3.5.3's panic on some queries over deleted ranges, see `scenario_native.rs`).
pub fn try_api_query(prom: &Prom, query: &str, t_ms: i64) -> Result<serde_json::Value, String> {
    let path = format!(
        "/api/v1/query?query={}&time={}",
        url_encode(query),
        secs(t_ms)
    );
    let (status, body) = prom.get(&path);
    let mut v: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{query} at {t_ms}: {status} {e}: {body}"));
    if status == 200 && v["status"] == "success" {
        Ok(v["data"].take())
    } else {
        Err(format!("{status} {}: {}", v["errorType"], v["error"]))
    }
}

/// [`try_api_query`] that fails the test on an error.
pub fn api_query(prom: &Prom, query: &str, t_ms: i64) -> serde_json::Value {
    try_api_query(prom, query, t_ms).unwrap_or_else(|e| panic!("{query} at {t_ms}: {e}"))
}

fn labels(metric: &serde_json::Value) -> Labels {
    serde_json::from_value(metric.clone()).unwrap()
}

fn ms(t: &serde_json::Value) -> i64 {
    (t.as_f64().unwrap() * 1000.0).round() as i64
}

fn float(v: &serde_json::Value) -> Value {
    Value::Float(v.as_str().unwrap().to_string())
}

fn histogram(v: &serde_json::Value) -> Value {
    Value::Histogram(v.to_string())
}

/// The instant answer to `query` at `t_ms` (a vector; a scalar answer or an error fails the
/// test).
pub fn instant(prom: &Prom, query: &str, t_ms: i64) -> Vector {
    try_instant(prom, query, t_ms).unwrap_or_else(|e| panic!("{query} at {t_ms}: {e}"))
}

/// [`instant`], or the error the API answered.
pub fn try_instant(prom: &Prom, query: &str, t_ms: i64) -> Result<Vector, String> {
    let data = try_api_query(prom, query, t_ms)?;
    assert_eq!(data["resultType"], "vector", "{query}: {data}");
    Ok(data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let v = match r.get("histogram") {
                Some(h) => histogram(&h[1]),
                None => float(&r["value"][1]),
            };
            (labels(&r["metric"]), v)
        })
        .collect())
}

/// Every raw sample of the series `selector` matches in (`from_ms`, `to_ms`], floats and
/// histograms merged in time order (a series that changed type has both): an instant query of
/// the range selector at `to_ms`, as Prometheus stores them less staleness markers.
pub fn raw_samples(prom: &Prom, selector: &str, from_ms: i64, to_ms: i64) -> Samples {
    let q = format!("{selector}[{}ms]", to_ms - from_ms);
    let data = api_query(prom, &q, to_ms);
    assert_eq!(data["resultType"], "matrix", "{q}: {data}");
    let mut out = Samples::new();
    for r in data["result"].as_array().unwrap() {
        let mut v: Vec<(i64, Value)> = Vec::new();
        for p in r["values"].as_array().into_iter().flatten() {
            v.push((ms(&p[0]), float(&p[1])));
        }
        for p in r["histograms"].as_array().into_iter().flatten() {
            v.push((ms(&p[0]), histogram(&p[1])));
        }
        v.sort_by_key(|s| s.0);
        out.insert(labels(&r["metric"]), v);
    }
    out
}

/// [`raw_samples`] over a long window, read in slices of at most `slice_ms` (bounded answers).
pub fn raw_samples_sliced(
    prom: &Prom,
    selector: &str,
    (from_ms, to_ms): (i64, i64),
    slice_ms: i64,
) -> Samples {
    let mut out = Samples::new();
    let mut a = from_ms;
    while a < to_ms {
        let b = (a + slice_ms).min(to_ms);
        for (k, v) in raw_samples(prom, selector, a, b) {
            out.entry(k).or_default().extend(v);
        }
        a = b;
    }
    out
}

/// Only the histogram samples of [`raw_samples`], for the series that have any.
pub fn raw_histograms(prom: &Prom, selector: &str, from_ms: i64, to_ms: i64) -> Samples {
    raw_samples(prom, selector, from_ms, to_ms)
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().filter(|s| s.1.is_histogram()).collect()))
        .filter(|(_, v): &(Labels, Vec<_>)| !v.is_empty())
        .collect()
}

/// Float and histogram samples per series in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub floats: u64,
    pub histograms: u64,
}

/// How many float and histogram samples each series holds in (`from_ms`, `to_ms`].
pub fn counts(samples: &Samples) -> BTreeMap<Labels, Counts> {
    samples
        .iter()
        .map(|(k, v)| {
            let h = v.iter().filter(|s| s.1.is_histogram()).count() as u64;
            let c = Counts {
                floats: v.len() as u64 - h,
                histograms: h,
            };
            (k.clone(), c)
        })
        .collect()
}

/// `count_over_time(metric{matchers}[to-from])` at `to_ms`, per series, with the `__name__`
/// PromQL drops put back (one metric at a time: without names the answers of two would
/// collide). `matchers` is the inside of `{}` or empty.
pub fn count_over_time(
    prom: &Prom,
    metric: &str,
    matchers: &str,
    from_ms: i64,
    to_ms: i64,
) -> BTreeMap<Labels, u64> {
    let q = format!(
        "count_over_time({{__name__=\"{metric}\"{}{matchers}}}[{}ms])",
        if matchers.is_empty() { "" } else { "," },
        to_ms - from_ms
    );
    instant(prom, &q, to_ms)
        .into_iter()
        .map(|(mut k, v)| {
            k.insert("__name__".into(), metric.into());
            let Value::Float(n) = v else {
                panic!("{q}: a histogram answer")
            };
            (k, n.parse().unwrap())
        })
        .collect()
}

/// The metric names that have a series in the window.
pub fn metric_names(samples: &Samples) -> BTreeSet<String> {
    samples.keys().map(|k| k["__name__"].clone()).collect()
}

/// The series of `samples` that hold a histogram sample.
pub fn histogram_series(samples: &Samples) -> BTreeSet<Labels> {
    samples
        .iter()
        .filter(|(_, v)| v.iter().any(|s| s.1.is_histogram()))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The instant queries a latency dashboard asks of a histogram metric: the raw series,
/// `histogram_quantile(0.9, rate(m[1m]))`, `histogram_count(m)` and `histogram_sum(m)`.
pub fn histogram_queries(metric: &str) -> Vec<String> {
    vec![
        metric.to_string(),
        format!("histogram_quantile(0.9, rate({metric}[1m]))"),
        format!("histogram_count({metric})"),
        format!("histogram_sum({metric})"),
    ]
}

/// `from..=to` in steps of `step_ms`.
pub fn instants((from, to): (i64, i64), step_ms: i64) -> Vec<i64> {
    (0..)
        .map(|i| from + i * step_ms)
        .take_while(|&t| t <= to)
        .collect()
}

/// What two servers answered differently.
#[derive(Debug, Default)]
pub struct Mismatches {
    /// Instants × queries asked.
    pub total: usize,
    /// How many of those answered differently.
    pub bad: usize,
    /// The first difference, described.
    pub first: String,
    /// How many the source answered with an error (compared like any answer).
    pub source_errors: usize,
}

/// What a comparison holds the home server to.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    /// Every series and value, histograms exactly (every field of their JSON).
    All,
    /// Float values only: histogram values on either side are ignored, and so is whatever
    /// home answers for these series (the source's histogram series: until prom2om carries
    /// histograms, home may still show a float where the source has turned histogram).
    FloatsOnly(&'a BTreeSet<Labels>),
}

/// An instant answer or the API's error: an error is an answer too (both servers must give it).
type Answer = Result<Vector, String>;

/// The two answers reduced to what `scope` compares.
fn scoped(source: Answer, home: Answer, scope: Scope) -> (Answer, Answer) {
    let (Scope::FloatsOnly(hist), Ok(source), Ok(home)) = (scope, &source, &home) else {
        return (source, home);
    };
    let a: Vector = source
        .iter()
        .filter(|(_, v)| !v.is_histogram())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let b = home
        .iter()
        .filter(|(k, v)| !v.is_histogram() && (!hist.contains(*k) || a.contains_key(*k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (Ok(a), Ok(b))
}

/// Asks both servers each of `queries` at each of `instants` and compares the answers (errors
/// included) within `scope`. Under `FloatsOnly`, a float the source answers for a histogram
/// series must still be answered alike by home.
pub fn compare(
    source: &Prom,
    home: &Prom,
    queries: &[String],
    instants: &[i64],
    scope: Scope,
) -> Mismatches {
    let mut m = Mismatches::default();
    for q in queries {
        for &t in instants {
            let (a, b) = scoped(try_instant(source, q, t), try_instant(home, q, t), scope);
            m.total += 1;
            m.source_errors += usize::from(a.is_err());
            if a != b {
                m.bad += 1;
                if m.first.is_empty() {
                    m.first = describe(q, t, &a, &b);
                }
            }
        }
    }
    m
}

fn describe(q: &str, t: i64, a: &Answer, b: &Answer) -> String {
    let only = |x: &Vector, y: &Vector| -> Vec<String> {
        x.iter()
            .filter(|(k, v)| y.get(*k) != Some(v))
            .take(3)
            .map(|(k, v)| format!("{k:?} = {v:?}"))
            .collect()
    };
    match (a, b) {
        (Ok(a), Ok(b)) => format!(
            "{q} at {t} ms: the source alone has {:?}; home alone has {:?}",
            only(a, b),
            only(b, a)
        ),
        _ => {
            let brief = |x: &Answer| match x {
                Ok(v) => format!("{} series", v.len()),
                Err(e) => format!("the error {e}"),
            };
            format!(
                "{q} at {t} ms: the source answered {}; home answered {}",
                brief(a),
                brief(b)
            )
        }
    }
}
