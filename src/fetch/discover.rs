//! Before fetching: which series the selectors match (`/api/v1/series`), grouped per metric name
//! into the selectors the work units use; `--top-by` narrowing; and `--method auto`'s probe.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufReader;

use anyhow::Result;

use super::api;
use super::http::{Client, Failure, HttpStatus};
use super::plan::{promql_selector, regex_escape, Group, Match, Method, Op};
use super::remote_read;
use crate::labels::{Labels, METRIC_NAME};

/// The series found for the selectors, and the groups (selector x metric name) to fetch.
pub struct Discovery {
    pub groups: Vec<Group>,
    /// Distinct series over all selectors.
    pub series: u64,
    /// Series per metric name (distinct), for `--list-metrics`.
    pub per_metric: BTreeMap<String, u64>,
    /// Bytes of the series' OpenMetrics text prefixes per metric name (distinct series), to
    /// size the shards before the first sample.
    pub prefix_bytes: BTreeMap<String, u64>,
}

/// With no selector, Prometheus needs one non-empty matcher to list everything.
pub fn effective_selectors(selectors: &[Vec<Match>]) -> Vec<Vec<Match>> {
    if selectors.is_empty() {
        vec![vec![Match::new(METRIC_NAME, Op::Re, ".+")]]
    } else {
        selectors.to_vec()
    }
}

/// Lists the series of every selector over `[start, end]` and groups them by metric name.
pub fn discover(c: &Client, selectors: &[Vec<Match>], start: i64, end: i64) -> Result<Discovery> {
    let mut groups = Vec::new();
    let mut seen: HashSet<Labels> = HashSet::new();
    let mut per_metric: BTreeMap<String, u64> = BTreeMap::new();
    let mut prefix_bytes: BTreeMap<String, u64> = BTreeMap::new();
    let mut prefix = Vec::new();
    for sel in selectors {
        let found = api::series(c, &promql_selector(sel), start, end)?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for l in found {
            *counts.entry(l.metric_name().to_string()).or_default() += 1;
            if !seen.contains(&l) {
                *per_metric.entry(l.metric_name().to_string()).or_default() += 1;
                prefix.clear();
                crate::format::openmetrics::write_series_prefix(&l, &mut prefix);
                *prefix_bytes.entry(l.metric_name().to_string()).or_default() +=
                    prefix.len() as u64;
                seen.insert(l);
            }
        }
        for (name, n) in counts {
            // Pinning the name makes one group per metric: requests of a known size. The name
            // matchers the name satisfies say nothing more, and would hide a group that another
            // covers (see `without_subsumed`).
            let mut m: Vec<Match> = sel
                .iter()
                .filter(|x| !(x.name == METRIC_NAME && satisfied_by(x, &name)))
                .cloned()
                .collect();
            m.insert(0, Match::new(METRIC_NAME, Op::Eq, &name));
            groups.push(Group {
                matchers: m,
                series: n,
            });
        }
    }
    Ok(Discovery {
        groups: without_subsumed(groups),
        series: seen.len() as u64,
        per_metric,
        prefix_bytes,
    })
}

/// Whether `value` satisfies matcher `m` (Prometheus semantics: anchored Go regex).
fn satisfied_by(m: &Match, value: &str) -> bool {
    use crate::select::selector::{MatchOp, Matcher};
    let op = match m.op {
        Op::Eq => MatchOp::Equal,
        Op::Ne => MatchOp::NotEqual,
        Op::Re => MatchOp::RegexMatch,
        Op::Nre => MatchOp::RegexNoMatch,
    };
    // The selector was parsed before discovery, so its regexes compile.
    Matcher::new(&m.name, op, &m.value).is_ok_and(|x| x.matches(value))
}

/// Drops each group whose matchers include all of another group's: every series it selects, the
/// other selects too (also for series that appear after discovery), so fetching it would only
/// fetch those series twice. Dashboards give such selectors often (`x` in one panel,
/// `x{job="a"}` in the next). Of two equal groups the first stays.
fn without_subsumed(groups: Vec<Group>) -> Vec<Group> {
    let covers = |b: &Group, a: &Group| b.matchers.iter().all(|m| a.matchers.contains(m));
    let keep: Vec<bool> = (0..groups.len())
        .map(|i| {
            !groups
                .iter()
                .enumerate()
                .any(|(j, g)| j != i && covers(g, &groups[i]) && (j < i || !covers(&groups[i], g)))
        })
        .collect();
    groups
        .into_iter()
        .zip(keep)
        .filter_map(|(g, k)| k.then_some(g))
        .collect()
}

/// Splits a selector's time range into windows small enough for one query.
pub type Windows<'a> = dyn Fn(&[Match]) -> Vec<(i64, i64)> + 'a;

/// `--top-by LABEL=N`: for each selector, the N values of LABEL whose series reach the highest
/// sample value in `[start, end]` (max over time, then max over the series sharing the value);
/// the selector is narrowed to those values, series without LABEL being kept.
pub fn top_by(
    c: &Client,
    selectors: &[Vec<Match>],
    label: &str,
    n: usize,
    windows: &Windows,
) -> Result<Vec<Vec<Match>>> {
    let mut out = Vec::new();
    for sel in selectors {
        let mut best: HashMap<String, f64> = HashMap::new();
        for (a, b) in windows(sel) {
            let q = format!(
                "max by ({label}) (max_over_time({}[{}]))",
                promql_selector(sel),
                api::promql_duration(b - a + 1)
            );
            for (l, v) in api::query_vector(c, &q, b)? {
                let Some(val) = l.get(label) else { continue };
                if v.is_nan() {
                    continue;
                }
                let e = best.entry(val.to_string()).or_insert(f64::NEG_INFINITY);
                *e = e.max(v);
            }
        }
        let mut ranked: Vec<(String, f64)> = best.into_iter().collect();
        ranked.sort_by(|x, y| y.1.total_cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        ranked.truncate(n);
        let mut alts: Vec<String> = ranked.iter().map(|(v, _)| regex_escape(v)).collect();
        alts.sort();
        let mut m = sel.clone();
        // The empty alternative keeps the selector's series that have no such label.
        m.push(Match::new(label, Op::Re, &format!("|{}", alts.join("|"))));
        out.push(m);
    }
    Ok(out)
}

/// Is this failure a sign that the server does not offer the method (rather than trouble)?
fn unsupported(e: &anyhow::Error) -> bool {
    match e.chain().find_map(|x| x.downcast_ref::<HttpStatus>()) {
        Some(s) => matches!(s.status, 400 | 404 | 405 | 406 | 415 | 422 | 500..=599),
        None => true,
    }
}

/// `--method auto`: remote read, else raw PromQL, else query_range, probed with a small request
/// for `probe` over the last minute of the range. Returns the method and why others were passed.
pub fn choose_method(c: &Client, probe: &[Match], end: i64) -> Result<(Method, Vec<String>)> {
    let mut notes = Vec::new();
    let start = end - 60_000;
    let rr = c.retry(|| {
        let body = remote_read::encode_request(probe, start, end, true);
        let resp = c.post("/api/v1/read", &body, &remote_read_headers())?;
        let ct = content_type(&resp);
        let r = BufReader::new(c.reader(resp));
        let res = if ct.starts_with(remote_read::STREAMED_CONTENT_TYPE) {
            remote_read::read_streamed(r, start, end, |_| Ok(()))
        } else {
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut { r }, &mut body)
                .map_err(anyhow::Error::from)
                .and_then(|_| remote_read::read_samples(&body, start, end, |_| Ok(())))
        };
        res.map_err(Failure::Fatal)
    });
    match rr {
        Ok(()) => return Ok((Method::RemoteRead, notes)),
        Err(e) if unsupported(&e) => notes.push(format!("remote read unavailable ({e:#})")),
        Err(e) => return Err(e),
    }
    let q = format!("{}[1m]", promql_selector(probe));
    match api::query_matrix(c, &q, end) {
        Ok(_) => Ok((Method::Raw, notes)),
        Err(e) if unsupported(&e) => {
            notes.push(format!("raw range-selector queries unavailable ({e:#})"));
            Ok((Method::Range, notes))
        }
        Err(e) => Err(e),
    }
}

pub fn remote_read_headers() -> [(&'static str, &'static str); 3] {
    [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "snappy"),
        ("X-Prometheus-Remote-Read-Version", "0.1.0"),
    ]
}

pub fn content_type(resp: &super::http::Response) -> String {
    resp.headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_selector_means_every_series() {
        let s = effective_selectors(&[]);
        assert_eq!(promql_selector(&s[0]), r#"{__name__=~".+"}"#);
    }

    #[test]
    fn groups_another_group_covers_are_not_fetched_twice() {
        let g = |ms: &[(&str, Op, &str)]| Group {
            matchers: ms.iter().map(|&(n, o, v)| Match::new(n, o, v)).collect(),
            series: 1,
        };
        let up = g(&[("__name__", Op::Eq, "up")]);
        let up_a = g(&[("__name__", Op::Eq, "up"), ("job", Op::Eq, "a")]);
        let up_b = g(&[("__name__", Op::Eq, "up"), ("job", Op::Re, "b.*")]);
        let other = g(&[("__name__", Op::Eq, "x"), ("job", Op::Eq, "a")]);
        let names =
            |gs: Vec<Group>| -> Vec<Vec<Match>> { gs.into_iter().map(|g| g.matchers).collect() };
        assert_eq!(
            names(without_subsumed(vec![
                up_a.clone(),
                up.clone(),
                other.clone()
            ])),
            names(vec![up.clone(), other.clone()])
        );
        // Overlapping but neither covering the other: both are fetched (the sink deduplicates).
        assert_eq!(
            names(without_subsumed(vec![up_a.clone(), up_b.clone()])),
            names(vec![up_a.clone(), up_b])
        );
        assert!(satisfied_by(
            &Match::new("__name__", Op::Re, "fx_.*"),
            "fx_gauge"
        ));
        assert!(!satisfied_by(
            &Match::new("__name__", Op::Re, "fx"),
            "fx_gauge"
        ));
        assert!(satisfied_by(
            &Match::new("__name__", Op::Nre, "up"),
            "fx_gauge"
        ));
        // Equal groups (the same selector twice): the first stays.
        assert_eq!(
            names(without_subsumed(vec![
                up_a.clone(),
                up.clone(),
                up_a.clone(),
                up
            ])),
            vec![vec![Match::new("__name__", Op::Eq, "up")]]
        );
    }

    #[test]
    fn unsupported_statuses() {
        let e = |status| {
            anyhow::Error::new(HttpStatus {
                status,
                message: String::new(),
            })
        };
        assert!(unsupported(&e(404)));
        assert!(unsupported(&e(503)));
        assert!(!unsupported(&e(401)));
        assert!(!unsupported(&e(403)));
        assert!(unsupported(&anyhow::anyhow!("not protobuf")));
    }
}
