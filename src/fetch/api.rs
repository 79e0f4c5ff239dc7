//! The JSON side of the Prometheus HTTP API that `fetch` uses: `/api/v1/series` for discovery,
//! `/api/v1/query` (raw samples of a range selector, or a vector), `/api/v1/query_range`, and
//! `/api/v1/status/config` for the scrape interval and external labels.

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

use super::histjson::JsonHistogram;
use super::http::{Client, Failure};
use crate::labels::Labels;

/// One series of a matrix result: its float samples, and its native histograms as the JSON
/// gives them (a series that changed type has both).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatrixSeries {
    pub labels: Labels,
    pub floats: Vec<(i64, f64)>,
    pub histograms: Vec<(i64, JsonHistogram)>,
}

impl MatrixSeries {
    /// Keeps the samples in `[a, b]`.
    pub fn retain_range(&mut self, a: i64, b: i64) {
        self.floats.retain(|&(t, _)| t >= a && t <= b);
        self.histograms.retain(|(t, _)| *t >= a && *t <= b);
    }
}

/// Series and their samples, as a matrix result holds them.
pub type Matrix = Vec<MatrixSeries>;

#[derive(Deserialize)]
struct Envelope<'a, T> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    data: Option<T>,
    error: Option<String>,
}

/// The `data` of an API answer. Errors do not name the request: the caller's context does.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Failure> {
    let env: Envelope<'a, T> = serde_json::from_slice(body).map_err(|e| {
        if looks_like_html(body) {
            return Failure::Fatal(anyhow!(
                "the server answered with an HTML page, not the Prometheus API (a login page or \
                 a proxy?): check that --url is the base URL of Prometheus (e.g. \
                 https://host/prometheus) and the credentials"
            ));
        }
        // A cut-off body is a network problem; anything else will not get better.
        let err = anyhow!("the server's answer is not Prometheus API JSON: {e}");
        if e.is_eof() {
            Failure::transient(err)
        } else {
            Failure::Fatal(err)
        }
    })?;
    if env.status != "success" {
        return Err(Failure::Fatal(anyhow!(
            "{}",
            env.error
                .unwrap_or_else(|| format!("status {}", env.status))
        )));
    }
    env.data
        .ok_or_else(|| Failure::Fatal(anyhow!("answer without data")))
}

pub(crate) fn looks_like_html(body: &[u8]) -> bool {
    let start = body.trim_ascii_start();
    start.first() == Some(&b'<')
}

/// Seconds with millisecond precision, as the API takes times.
pub fn api_time(ms: i64) -> String {
    let s = ms.div_euclid(1000);
    let f = ms.rem_euclid(1000);
    format!("{s}.{f:03}")
}

/// A float-seconds API timestamp back to milliseconds. The API prints at most three decimals,
/// so rounding the product recovers the integer exactly.
fn ms_of(ts: f64) -> i64 {
    (ts * 1000.0).round() as i64
}

/// Parses a sample value as the API prints it (`strconv.FormatFloat`, `NaN`, `+Inf`, `-Inf`).
fn value_of(s: &str) -> Result<f64> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse::<f64>()
            .map_err(|_| anyhow!("sample value {s:?} is not a number")),
    }
}

fn labels_of(m: BTreeMap<Cow<'_, str>, Cow<'_, str>>) -> Labels {
    Labels::from_pairs(m)
}

/// The series matching `selector` with data in `[start, end]`.
pub fn series(c: &Client, selector: &str, start: i64, end: i64) -> Result<Vec<Labels>> {
    let params = [
        ("match[]", selector.to_string()),
        ("start", api_time(start)),
        ("end", api_time(end)),
    ];
    let what = format!("listing series {selector}");
    c.retry(|| {
        let body = c.get("/api/v1/series", &params)?;
        let data: Vec<BTreeMap<Cow<str>, Cow<str>>> = parse(&body)?;
        Ok(data.into_iter().map(labels_of).collect())
    })
    .with_context(|| what.clone())
}

/// The values of label `name` on the series matching `selector` with data in `[start, end]`.
pub fn label_values(
    c: &Client,
    name: &str,
    selector: &str,
    start: i64,
    end: i64,
) -> Result<Vec<String>> {
    let params = [
        ("match[]", selector.to_string()),
        ("start", api_time(start)),
        ("end", api_time(end)),
    ];
    let what = format!("listing the values of {name} on {selector}");
    c.retry(|| {
        let body = c.get(&format!("/api/v1/label/{name}/values"), &params)?;
        parse::<Vec<String>>(&body)
    })
    .with_context(|| what.clone())
}

#[derive(Deserialize)]
struct JsonSeries<'a> {
    #[serde(borrow)]
    metric: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(default, borrow)]
    values: Vec<(f64, &'a str)>,
    #[serde(default)]
    histograms: Vec<(f64, JsonHistogram)>,
}

#[derive(Deserialize)]
struct MatrixData<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Cow<'a, str>,
    #[serde(borrow)]
    result: Vec<JsonSeries<'a>>,
}

fn matrix_of(body: &[u8]) -> Result<Matrix, Failure> {
    let data: MatrixData = parse(body)?;
    if data.result_type != "matrix" {
        return Err(Failure::Fatal(anyhow!(
            "expected a matrix, got a {}",
            data.result_type
        )));
    }
    let mut out = Vec::with_capacity(data.result.len());
    for s in data.result {
        let mut floats = Vec::with_capacity(s.values.len());
        for (ts, v) in s.values {
            floats.push((ms_of(ts), value_of(v).map_err(Failure::Fatal)?));
        }
        let histograms = s
            .histograms
            .into_iter()
            .map(|(ts, h)| (ms_of(ts), h))
            .collect();
        out.push(MatrixSeries {
            labels: labels_of(s.metric),
            floats,
            histograms,
        });
    }
    Ok(out)
}

/// An instant query returning a matrix (a range selector): its raw samples.
pub fn query_matrix(c: &Client, query: &str, time_ms: i64) -> Result<Matrix> {
    query_matrix_with(c, query, time_ms, &[])
}

/// [`query_matrix`] with extra request parameters.
pub fn query_matrix_with(
    c: &Client,
    query: &str,
    time_ms: i64,
    extra: &[(&str, String)],
) -> Result<Matrix> {
    let mut params = vec![("query", query.to_string()), ("time", api_time(time_ms))];
    params.extend(extra.iter().cloned());
    let what = format!("query {query} at {}", api_time(time_ms));
    c.retry(|| matrix_of(&c.get("/api/v1/query", &params)?))
        .with_context(|| what.clone())
}

/// `query_range` from `start` to `end` (evaluation times) at `step`.
pub fn query_range(c: &Client, query: &str, start: i64, end: i64, step_ms: i64) -> Result<Matrix> {
    let params = [
        ("query", query.to_string()),
        ("start", api_time(start)),
        ("end", api_time(end)),
        ("step", format!("{}", step_ms as f64 / 1000.0)),
    ];
    let what = format!("query_range {query}");
    c.retry(|| matrix_of(&c.get("/api/v1/query_range", &params)?))
        .with_context(|| what.clone())
}

#[derive(Deserialize)]
struct VectorData<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Cow<'a, str>,
    #[serde(borrow)]
    result: Vec<VectorSample<'a>>,
}

#[derive(Deserialize)]
struct VectorSample<'a> {
    #[serde(borrow)]
    metric: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow)]
    value: (f64, &'a str),
}

/// An instant query returning a vector: one value per series.
pub fn query_vector(c: &Client, query: &str, time_ms: i64) -> Result<Vec<(Labels, f64)>> {
    query_vector_with(c, query, time_ms, &[])
}

/// [`query_vector`] with extra request parameters.
pub fn query_vector_with(
    c: &Client,
    query: &str,
    time_ms: i64,
    extra: &[(&str, String)],
) -> Result<Vec<(Labels, f64)>> {
    let mut params = vec![("query", query.to_string()), ("time", api_time(time_ms))];
    params.extend(extra.iter().cloned());
    let what = format!("query {query}");
    c.retry(|| {
        let body = c.get("/api/v1/query", &params)?;
        let data: VectorData = parse(&body)?;
        if data.result_type != "vector" {
            return Err(Failure::Fatal(anyhow!(
                "expected a vector, got a {}",
                data.result_type
            )));
        }
        data.result
            .into_iter()
            .map(|s| {
                Ok((
                    labels_of(s.metric),
                    value_of(s.value.1).map_err(Failure::Fatal)?,
                ))
            })
            .collect()
    })
    .with_context(|| what.clone())
}

/// What `/api/v1/status/buildinfo` says of the server.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct BuildInfo {
    #[serde(default)]
    pub version: String,
    /// Set by stores that are not Prometheus itself (Grafana Mimir names itself here).
    #[serde(default)]
    pub application: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
}

/// `/api/v1/status/buildinfo` (a server without it answers 404, an error).
pub fn build_info(c: &Client) -> Result<BuildInfo> {
    c.retry(|| parse(&c.get("/api/v1/status/buildinfo", &[])?))
        .context("reading /api/v1/status/buildinfo")
}

/// What `fetch` needs from the server's configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerConfig {
    /// `global.scrape_interval`.
    pub global_interval_ms: Option<i64>,
    /// The smallest `scrape_interval` anywhere in the configuration.
    pub min_interval_ms: Option<i64>,
    /// `global.external_labels`: remote read adds them to every series, PromQL does not.
    pub external_labels: Vec<(String, String)>,
}

/// `/api/v1/status/config`, read minimally.
pub fn server_config(c: &Client) -> Result<ServerConfig> {
    #[derive(Deserialize)]
    struct Cfg {
        yaml: String,
    }
    let what = "reading the server configuration";
    c.retry(|| {
        let body = c.get("/api/v1/status/config", &[])?;
        let cfg: Cfg = parse(&body)?;
        Ok(parse_config_yaml(&cfg.yaml))
    })
    .context(what)
}

/// Picks the scrape intervals and external labels out of the YAML Prometheus prints (its own
/// `yaml.Marshal` output: two-space indentation, one key per line).
pub fn parse_config_yaml(yaml: &str) -> ServerConfig {
    let mut out = ServerConfig::default();
    let mut section = "";
    let mut in_ext = false;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if indent == 0 {
            section = t.trim_end_matches(':');
            in_ext = false;
            continue;
        }
        let t = t.trim_start_matches("- ");
        if let Some(v) = t.strip_prefix("scrape_interval:") {
            if let Some(ms) = parse_duration(unquote(v.trim())) {
                if section == "global" && indent == 2 {
                    out.global_interval_ms = Some(ms);
                }
                out.min_interval_ms = Some(out.min_interval_ms.map_or(ms, |m: i64| m.min(ms)));
            }
        }
        if section == "global" {
            if indent == 2 {
                in_ext = t == "external_labels:";
            } else if in_ext && indent == 4 {
                if let Some((k, v)) = t.split_once(':') {
                    out.external_labels
                        .push((unquote(k.trim()).to_string(), unquote(v.trim()).to_string()));
                }
            }
        }
    }
    out
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// A Prometheus duration (`15s`, `1m30s`, `500ms`, `1h`, `2d`, `1w`, `1y`) in milliseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (mut i, mut total) = (0, 0i64);
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: i64 = s.get(st..i)?.parse().ok()?;
        let us = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &s[us..i] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(total)
}

/// Renders milliseconds as a PromQL duration.
pub fn promql_duration(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_values() {
        assert_eq!(api_time(1_700_000_000_123), "1700000000.123");
        assert_eq!(api_time(-1), "-1.999");
        assert_eq!(ms_of(1700000000.123), 1_700_000_000_123);
        assert_eq!(ms_of(-1.999), -1999);
        assert!(value_of("NaN").unwrap().is_nan());
        assert_eq!(value_of("+Inf").unwrap(), f64::INFINITY);
        assert_eq!(value_of("-Inf").unwrap(), f64::NEG_INFINITY);
        assert_eq!(value_of("1e-07").unwrap(), 1e-7);
        assert_eq!(value_of("-0").unwrap().to_bits(), (-0.0f64).to_bits());
        assert!(value_of("x").is_err());
    }

    #[test]
    fn matrix_json() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"m","path":"a\"b\\c\n"},"values":[[1.5,"1"],[2,"NaN"]]}]}}"#;
        let m = matrix_of(body).unwrap();
        assert_eq!(m[0].labels.get("path"), Some("a\"b\\c\n"));
        assert_eq!(m[0].floats[0], (1500, 1.0));
        assert!(m[0].floats[1].1.is_nan());
        // A series that turned histogram: both.
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"h"},"values":[[1,"2"]],"histograms":[[2.5,{"count":"3",
            "sum":"1.5","buckets":[[0,"1","2","3"]]}],[3,{"count":"0","sum":"0"}]]}]}}"#;
        let m = matrix_of(body).unwrap();
        assert_eq!(m[0].floats, [(1000, 2.0)]);
        assert_eq!(m[0].histograms.len(), 2);
        assert_eq!(m[0].histograms[0].0, 2500);
        assert_eq!(m[0].histograms[0].1.buckets[0].3, "3");
        assert!(m[0].histograms[1].1.buckets.is_empty());
        let err = matrix_of(br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#);
        assert!(matches!(err, Err(Failure::Fatal(_))));
        assert!(matches!(
            matrix_of(br#"{"status":"succ"#),
            Err(Failure::Transient(..))
        ));
        let login = matrix_of(b"\n  <!DOCTYPE html><html><form action=/login>");
        match login {
            Err(Failure::Fatal(e)) => assert!(e.to_string().contains("HTML page"), "{e}"),
            _ => panic!("an HTML page is a fatal answer"),
        }
    }

    #[test]
    fn config_yaml() {
        let y = "global:\n  scrape_interval: 30s\n  scrape_timeout: 10s\n  external_labels:\n    cluster: \"eu-1\"\n    replica: a\nscrape_configs:\n- job_name: fast\n  scrape_interval: 5s\n- job_name: slow\n  scrape_interval: 1m30s\n";
        let c = parse_config_yaml(y);
        assert_eq!(c.global_interval_ms, Some(30_000));
        assert_eq!(c.min_interval_ms, Some(5_000));
        assert_eq!(
            c.external_labels,
            vec![
                ("cluster".into(), "eu-1".into()),
                ("replica".into(), "a".into())
            ]
        );
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("500ms"), Some(500));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(promql_duration(7_200_000), "7200s");
        assert_eq!(promql_duration(1500), "1500ms");
    }
}
