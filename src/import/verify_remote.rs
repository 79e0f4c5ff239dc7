//! `import --remote-write --verify-url`: asks the receiver's Prometheus query API how many samples
//! each manifest window holds (`count_over_time`, which counts float and histogram samples) and
//! compares exactly with what that receiver keeps of the manifest's count (`receiver`: all of it,
//! or all but the NaN samples) and of its native histogram samples (those the push sent).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::receiver::Receiver;
use super::rw_negotiate::{left_out, Plan};
use crate::fetch::api::{label_values, promql_duration, query_vector_with};
use crate::fetch::http::Client;
use crate::format::histogram::{is_custom_buckets, HistogramValue};
use crate::format::shard_dir::{Manifest, ShardDir, Value, SIDECAR_NATIVE_HISTOGRAMS};

/// What the manifest says of one window, and what the receiver holds.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowCheck {
    pub window_start_ms: i64,
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    /// Samples in the window's shards (staleness markers, which PromQL never counts, are in
    /// sidecars, not here).
    pub expected: u64,
    /// Of those, NaN values.
    pub nan: u64,
    /// Native histogram samples of the window's side files that the push sent (staleness
    /// markers, which PromQL never counts, not included).
    pub histograms: u64,
    /// What the receiver must hold: `expected`, less `nan` for a receiver that keeps no NaN,
    /// and `histograms`.
    pub want: u64,
    /// Samples the receiver holds in `[min_ts_ms, max_ts_ms]` (of the pushed series).
    pub held: u64,
}

impl WindowCheck {
    /// The receiver holds exactly what it keeps of the window.
    pub fn holds_all(&self) -> bool {
        self.held == self.want
    }
}

/// The per-window totals of the manifest: (window start) -> (min ts, max ts, samples), the span
/// over the shards' samples and their native histograms' side files.
fn windows(m: &Manifest) -> BTreeMap<i64, (i64, i64, u64)> {
    let mut w: BTreeMap<i64, (i64, i64, u64)> = BTreeMap::new();
    for e in &m.shards {
        let hist = e
            .sidecars
            .iter()
            .filter(|s| s.kind == SIDECAR_NATIVE_HISTOGRAMS && s.samples > 0);
        let mut spans: Vec<(i64, i64)> = hist.map(|s| (s.min_ts_ms, s.max_ts_ms)).collect();
        if e.samples > 0 {
            spans.push((e.min_ts_ms, e.max_ts_ms));
        }
        for (lo, hi) in spans {
            let x = w.entry(e.window_start_ms).or_insert((lo, hi, 0));
            x.0 = x.0.min(lo);
            x.1 = x.1.max(hi);
        }
        if let Some(x) = w.get_mut(&e.window_start_ms) {
            x.2 += e.samples;
        }
    }
    w
}

/// What the push counted of the shards it read (by manifest index), for the check: NaN
/// samples, and native histogram samples sent (markers not included).
pub struct Read<'a> {
    pub nan: &'a HashMap<usize, u64>,
    pub histograms: &'a HashMap<usize, u64>,
    /// What the push sends, for the shards an earlier run pushed (read now).
    pub plan: &'a Plan,
}

/// (NaN samples, histogram samples sent) per window: of the shards `push` read, as it counted
/// them; of the others (pushed by an earlier run), read now.
fn shown_counts(dir: &ShardDir, read: &Read) -> Result<BTreeMap<i64, (u64, u64)>> {
    let mut out: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for (i, e) in dir.manifest().shards.iter().enumerate() {
        let counted = read.nan.get(&i).zip(read.histograms.get(&i));
        let (nan, hist) = match counted {
            Some((&n, &h)) => (n, h),
            None => {
                let (mut n, mut h) = (0, 0);
                dir.read_points(i, |p| {
                    match p.value {
                        Value::Float(v) => n += u64::from(v.is_nan()),
                        Value::Histogram(x) if !x.is_stale() => {
                            let schema = match x {
                                HistogramValue::Int(x) => x.schema,
                                HistogramValue::Float(x) => x.schema,
                            };
                            let custom = is_custom_buckets(schema);
                            h += u64::from(left_out(read.plan, custom).is_none());
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
                (n, h)
            }
        };
        let x = out.entry(e.window_start_ms).or_default();
        x.0 += nan;
        x.1 += hist;
    }
    Ok(out)
}

/// A PromQL double-quoted string.
pub(super) fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '\\' => q.push_str("\\\\"),
            '"' => q.push_str("\\\""),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// The selector of the pushed series: every metric name (or `name`), with the `--add-label`
/// matchers.
fn selector(matchers: &[(String, String)], name: Option<&str>) -> String {
    let mut sel = match name {
        Some(n) => format!("__name__={}", quote(n)),
        None => String::from("__name__=~\".+\""),
    };
    for (n, v) in matchers {
        sel.push_str(&format!(",{n}={}", quote(v)));
    }
    format!("{{{sel}}}")
}

/// The count of samples in `[min_ts, max_ts]` (of metric `name`, or all), evaluated at
/// `max_ts`. The range is one millisecond longer than the span: range selectors are left-open in
/// Prometheus 3 and VictoriaMetrics and left-closed in 2.x, and either way the first sample must
/// count.
pub fn count_query(
    matchers: &[(String, String)],
    name: Option<&str>,
    min_ts: i64,
    max_ts: i64,
) -> String {
    let range = promql_duration(max_ts - min_ts + 1);
    format!(
        "sum(count_over_time({}[{range}]))",
        selector(matchers, name)
    )
}

/// Samples the receiver holds in `[min_ts, max_ts]`. Prometheus 2.x refuses the one query when
/// two series differ only by metric name (`count_over_time` drops the name, and 2.x will not
/// return the same label set twice), so then each name is counted on its own.
fn held(
    client: &Client,
    receiver: &Receiver,
    matchers: &[(String, String)],
    min_ts: i64,
    max_ts: i64,
) -> Result<u64> {
    let params = receiver.query_params();
    let count = |name: Option<&str>| -> Result<u64> {
        let query = count_query(matchers, name, min_ts, max_ts);
        let v = query_vector_with(client, &query, max_ts, &params)?;
        // An empty vector: no sample at all in the window.
        Ok(v.first().map_or(0, |(_, x)| *x as u64))
    };
    match count(None) {
        Err(e) if format!("{e:#}").contains("same labelset") => {
            let sel = selector(matchers, None);
            let names = label_values(client, "__name__", &sel, min_ts, max_ts)?;
            names.iter().map(|n| count(Some(n))).sum()
        }
        r => r,
    }
}

/// Checks every window of the manifest in `dir` against `receiver` behind `client` (its query
/// API base URL). `matchers` restrict the count to the pushed series (`--add-label`);
/// `read`: what the push counted of the shards it read.
/// New data takes a moment to become searchable: a window found short is asked again every
/// half second until `settle` has passed since the first query.
pub fn verify(
    dir: &ShardDir,
    client: &Client,
    receiver: &Receiver,
    matchers: &[(String, String)],
    settle: Duration,
    read: &Read,
) -> Result<Vec<WindowCheck>> {
    let m = dir.manifest();
    let shown = shown_counts(dir, read)?;
    let deadline = Instant::now() + settle;
    receiver.flush(client);
    let mut out = Vec::new();
    for (start, (min_ts, max_ts, expected)) in windows(m) {
        let (nan, histograms) = shown.get(&start).copied().unwrap_or((0, 0));
        let floats = if receiver.keeps_nan() {
            expected
        } else {
            expected - nan.min(expected)
        };
        let mut check = WindowCheck {
            window_start_ms: start,
            min_ts_ms: min_ts,
            max_ts_ms: max_ts,
            expected,
            nan,
            histograms,
            want: floats + histograms,
            held: 0,
        };
        loop {
            check.held = held(client, receiver, matchers, min_ts, max_ts)?;
            if check.held >= check.want || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            receiver.flush(client);
        }
        out.push(check);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_counts_the_first_sample_either_way() {
        assert_eq!(
            count_query(&[], None, 1000, 8_200_010),
            "sum(count_over_time({__name__=~\".+\"}[8199011ms]))"
        );
        assert_eq!(
            count_query(
                &[("customer".into(), "a\"c\\me\n".into())],
                None,
                0,
                7_199_999
            ),
            "sum(count_over_time({__name__=~\".+\",customer=\"a\\\"c\\\\me\\n\"}[7200s]))"
        );
    }

    #[test]
    fn exactly_what_the_receiver_keeps() {
        let c = |want, held| WindowCheck {
            window_start_ms: 0,
            min_ts_ms: 0,
            max_ts_ms: 1,
            expected: 10,
            nan: 2,
            histograms: 0,
            want,
            held,
        };
        // A receiver that keeps NaN must hold all ten, one that keeps none exactly eight.
        assert!(c(10, 10).holds_all());
        assert!(!c(10, 8).holds_all());
        assert!(c(8, 8).holds_all());
        assert!(!c(8, 10).holds_all());
        assert!(!c(8, 7).holds_all());
    }
}
