//! What a receiver already holds of one remote-write request, read back through its query API
//! (the raw samples of a range selector): how a push settles a request whose answer was lost,
//! or one the receiver refuses because it holds those samples already.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::receiver::Receiver;
use super::rw_request::Request;
use super::verify_remote::quote;
use crate::fetch::api::{promql_duration, query_matrix_with};
use crate::fetch::http::Client;
use crate::format::prompb::{Count, Histogram, TimeSeries, WriteRequest};
use crate::format::value::STALE_NAN_BITS;
use crate::labels::{is_classic_label_name, Labels};

/// How long a receiver that cannot be asked to flush (a VictoriaMetrics cluster) is asked
/// again before a sample it does not show is taken as missing: a single VictoriaMetrics was
/// measured taking up to 10 s to show new series.
const UNFLUSHED_SETTLE: Duration = Duration::from_secs(20);

/// What the receiver holds of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Held {
    /// Every sample of it that the query API can show, at its timestamp (and, on a receiver
    /// that keeps values exactly, with its bits).
    All,
    /// Not all: the request less the samples it holds (those it cannot show stay in).
    Missing(Request),
    /// Nothing of it can be shown by the query API: staleness markers only (PromQL never
    /// returns one), or NaN on a receiver that keeps none.
    Unknown,
}

/// Asks a receiver's query API what it holds.
pub struct Checker {
    client: Client,
    receiver: Receiver,
}

impl Checker {
    /// Finds out which receiver answers at `client` (see [`Receiver::identify`]).
    pub fn new(client: Client) -> Result<Checker> {
        let receiver = Receiver::identify(&client)?;
        Ok(Checker { client, receiver })
    }

    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// The query API's URL, for messages.
    pub fn url(&self) -> &str {
        self.client.display_url()
    }

    /// What the receiver holds of `req`. A receiver that cannot be made to show what it took
    /// at once is asked again until it shows all, or `UNFLUSHED_SETTLE` has passed.
    pub fn held(&self, req: &Request) -> Result<Held> {
        let deadline = Instant::now() + UNFLUSHED_SETTLE;
        loop {
            let flushed = self.receiver.flush(&self.client);
            let held = self.held_now(req).with_context(|| {
                format!(
                    "asking {} ({}) what it holds of a request",
                    self.url(),
                    self.receiver.describe()
                )
            })?;
            if held == Held::All || flushed || Instant::now() >= deadline {
                return Ok(held);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn held_now(&self, req: &Request) -> Result<Held> {
        let have = self.read_back(req.entries())?;
        let mut rest = WriteRequest::default();
        let (mut checked, mut found) = (0u64, 0u64);
        for ts in &req.entries().timeseries {
            let held = have.get(&labels_of(ts));
            let mut keep = TimeSeries {
                labels: ts.labels.clone(),
                samples: Vec::new(),
                histograms: Vec::new(),
            };
            for s in &ts.samples {
                if !self.shows(s.value) {
                    keep.samples.push(s.clone());
                    continue;
                }
                checked += 1;
                let there = held
                    .and_then(|h| h.floats.get(&s.timestamp))
                    .is_some_and(|v| self.same(*v, s.value));
                if there {
                    found += 1;
                } else {
                    keep.samples.push(s.clone());
                }
            }
            for h in &ts.histograms {
                if is_stale(h) {
                    keep.histograms.push(h.clone());
                    continue;
                }
                checked += 1;
                let there = held
                    .and_then(|held| held.histograms.get(&h.timestamp))
                    .is_some_and(|(count, sum)| {
                        self.same(*count, count_of(h)) && self.same(*sum, h.sum.unwrap_or(0.0))
                    });
                if there {
                    found += 1;
                } else {
                    keep.histograms.push(h.clone());
                }
            }
            if !keep.samples.is_empty() || !keep.histograms.is_empty() {
                rest.timeseries.push(keep);
            }
        }
        Ok(match (checked, found) {
            (0, _) => Held::Unknown,
            (c, f) if c == f => Held::All,
            _ => Held::Missing(Request::from_entries(req.protocol(), rest)),
        })
    }

    /// Whether the query API can show a sample of this value once the receiver holds it.
    fn shows(&self, v: f64) -> bool {
        v.to_bits() != STALE_NAN_BITS && (self.receiver.keeps_nan() || !v.is_nan())
    }

    /// Whether a value read back is the one sent: bit for bit from a Prometheus TSDB (the API
    /// prints the shortest decimal that parses back to the same bits); VictoriaMetrics keeps
    /// about 12 significant digits of some values, -0 as 0, so there the timestamp tells.
    fn same(&self, held: f64, sent: f64) -> bool {
        match self.receiver {
            Receiver::VictoriaMetrics => true,
            Receiver::Prometheus(_) => {
                held.to_bits() == sent.to_bits() || (held.is_nan() && sent.is_nan())
            }
        }
    }

    /// The raw samples the receiver holds of the request's series over their time span: one
    /// query per metric name, narrowed by the labels its series share, then matched exactly.
    /// A histogram is known by its count and sum, which the API prints exactly.
    fn read_back(&self, req: &WriteRequest) -> Result<HashMap<Labels, Have>> {
        let mut by_name: BTreeMap<&str, Vec<&TimeSeries>> = BTreeMap::new();
        let filled = |t: &&TimeSeries| !t.samples.is_empty() || !t.histograms.is_empty();
        for ts in req.timeseries.iter().filter(filled) {
            let name = ts.labels.iter().find(|l| l.name == "__name__");
            by_name
                .entry(name.map_or("", |l| l.value.as_str()))
                .or_default()
                .push(ts);
        }
        let params = self.receiver.query_params();
        let mut have: HashMap<Labels, Have> = HashMap::new();
        for (name, series) in by_name {
            let wanted: Vec<Labels> = series.iter().map(|t| labels_of(t)).collect();
            let (query, at) = range_query(name, &series);
            for s in query_matrix_with(&self.client, &query, at, &params)? {
                if wanted.contains(&s.labels) {
                    let e = have.entry(s.labels).or_default();
                    e.floats.extend(s.floats);
                    for (t, h) in s.histograms {
                        e.histograms
                            .insert(t, (api_number(&h.count)?, api_number(&h.sum)?));
                    }
                }
            }
        }
        Ok(have)
    }
}

/// What the receiver holds of one series: floats, and each histogram's count and sum.
#[derive(Default)]
struct Have {
    floats: BTreeMap<i64, f64>,
    histograms: BTreeMap<i64, (f64, f64)>,
}

/// A number of the query API's JSON (`NaN`, `+Inf`, `-Inf` or a decimal).
fn api_number(s: &str) -> Result<f64> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .with_context(|| format!("the query API's histogram number {s:?}")),
    }
}

/// A histogram's observation count, as the API prints it (a float).
fn count_of(h: &Histogram) -> f64 {
    match h.count {
        Some(Count::Int(n)) => n as f64,
        Some(Count::Float(f)) => f,
        None => 0.0,
    }
}

/// A histogram staleness marker (its sum has the marker's bits), which PromQL never shows.
fn is_stale(h: &Histogram) -> bool {
    h.sum.is_some_and(|s| s.to_bits() == STALE_NAN_BITS)
}

fn labels_of(ts: &TimeSeries) -> Labels {
    Labels::from_pairs(
        ts.labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str())),
    )
}

/// `{__name__="name", shared...}[span]` and the time to evaluate it at, so that it returns
/// every sample from the first to the last of `series` (the range is one millisecond longer
/// than the span: left-open in Prometheus 3 and VictoriaMetrics, left-closed in 2.x).
fn range_query(name: &str, series: &[&TimeSeries]) -> (String, i64) {
    let mut shared: Vec<(&str, &str)> = series[0]
        .labels
        .iter()
        .filter(|l| l.name != "__name__" && is_classic_label_name(&l.name))
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    for ts in &series[1..] {
        shared.retain(|(n, v)| ts.labels.iter().any(|l| l.name == *n && l.value == *v));
    }
    let ts = series.iter().flat_map(|t| {
        let h = t.histograms.iter().map(|h| h.timestamp);
        t.samples.iter().map(|s| s.timestamp).chain(h)
    });
    let (lo, hi) = ts.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    let mut sel = format!("__name__={}", quote(name));
    for (n, v) in shared {
        sel.push_str(&format!(",{n}={}", quote(v)));
    }
    let range = promql_duration(hi - lo + 1);
    (format!("{{{sel}}}[{range}]"), hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::prompb::{Label, Sample};

    fn series(pairs: &[(&str, &str)], ts: &[i64]) -> TimeSeries {
        TimeSeries {
            labels: pairs
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: ts
                .iter()
                .map(|&timestamp| Sample {
                    value: 1.0,
                    timestamp,
                })
                .collect(),
            histograms: Vec::new(),
        }
    }

    #[test]
    fn one_query_per_name_narrowed_by_the_shared_labels() {
        let a = series(
            &[("__name__", "up"), ("job", "a"), ("x", "1")],
            &[1000, 2000],
        );
        let b = series(
            &[("__name__", "up"), ("job", "a"), ("x", "2")],
            &[500, 1500],
        );
        let (q, at) = range_query("up", &[&a, &b]);
        assert_eq!(q, "{__name__=\"up\",job=\"a\"}[1501ms]");
        assert_eq!(at, 2000);
        // A histogram entry's times count too.
        let mut h = series(&[("__name__", "up"), ("job", "a"), ("x", "3")], &[]);
        h.histograms.push(Histogram {
            timestamp: 2500,
            ..Histogram::default()
        });
        let (q, at) = range_query("up", &[&a, &h]);
        assert_eq!(q, "{__name__=\"up\",job=\"a\"}[1501ms]");
        assert_eq!(at, 2500);
    }

    #[test]
    fn histograms_are_known_by_count_and_sum() {
        assert_eq!(api_number("12").unwrap(), 12.0);
        assert!(api_number("NaN").unwrap().is_nan());
        assert_eq!(api_number("-Inf").unwrap(), f64::NEG_INFINITY);
        assert!(api_number("x").is_err());
        let h = Histogram {
            count: Some(Count::Float(2.5)),
            sum: Some(f64::from_bits(STALE_NAN_BITS)),
            ..Histogram::default()
        };
        assert_eq!(count_of(&h), 2.5);
        assert!(is_stale(&h));
        assert!(!is_stale(&Histogram::default()));
    }
}
