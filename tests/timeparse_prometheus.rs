//! `parse_time` against the real Prometheus 2.42 HTTP API: for each input, the millisecond the
//! server evaluates an instant query at (`time=INPUT`) must be ours, and what it refuses we refuse.
//! Needs prometheus on PATH; fails without. The server runs on 127.0.0.1 in a temp dir.

mod common;

use common::{url_encode, Prom};
use prom2om::timeparse::parse_time;

/// Accepted by both. The query engine truncates nanoseconds towards zero (the storage side
/// floors), so no input here is before 1970 with a sub-millisecond fraction.
const ACCEPTED: &[&str] = &[
    "1714564800",
    "1714564800.123",
    "1714564800.1235",
    "1714564800.1234999",
    "0.0015",
    "-0.0015",
    "-0.0005",
    "-1.0005",
    "1.9996",
    "1e3",
    "+5",
    ".5",
    "5.",
    "1.5e-3",
    "1_714_564_800.5",
    "-1714564800.25",
    "2024-05-01T12:00:00Z",
    "2024-05-01T14:00:00+02:00",
    "2024-05-01T12:00:00.123456789Z",
    "2024-05-01T12:00:00.9999Z",
    "2024-05-01T1:00:00Z",
    "2024-05-01T12:00:00,5Z",
    "1970-01-01T00:00:00+24:00",
    "2024-05-01T12:00:00+99:99",
    "2024-05-01T12:00:00-00:00",
    "2024-02-29T23:59:59.999Z",
    "1969-07-20T20:17:40Z",
];

/// Refused by both.
const REFUSED: &[&str] = &[
    "abc",
    "2024-05-01",
    "2024-05-01t12:00:00Z",
    "2024-05-01T12:00:00z",
    "2024-05-01 12:00:00Z",
    "2024-05-01T12:00:00",
    "2024-05-01T12:00:00+0200",
    "2024-05-01T24:00:00Z",
    "2024-05-01T12:60:00Z",
    "2024-05-01T12:00:60Z",
    "2024-02-30T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-05-01T12:00:00.1234567891Z",
    "2024-05-01T012:00:00Z",
    "0x10",
    "1__0",
    "_1",
    "1._5",
    "1e_5",
    " 1",
];

/// The millisecond an instant query at `time` is evaluated at, or None if refused.
fn eval_ms(server: &Prom, time: &str) -> Option<i64> {
    let path = format!(
        "/api/v1/query?query={}&time={}",
        url_encode("timestamp(vector(0))"),
        url_encode(time)
    );
    let (_, body) = server.get(&path);
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    if v["status"] == "error" {
        assert_eq!(v["errorType"], "bad_data", "{time}: {body}");
        return None;
    }
    let secs = v["data"]["result"][0]["value"][0]
        .as_f64()
        .expect("eval time");
    Some((secs * 1000.0).round() as i64)
}

#[test]
fn parse_time_agrees_with_the_prometheus_api() {
    let server = Prom::start_empty();
    let mut diffs = Vec::new();
    for t in ACCEPTED {
        let theirs = eval_ms(&server, t);
        let ours = parse_time(t).ok();
        if theirs.is_none() || theirs != ours {
            diffs.push(format!("{t:?}: prometheus {theirs:?}, prom2om {ours:?}"));
        }
    }
    for t in REFUSED {
        let theirs = eval_ms(&server, t);
        let ours = parse_time(t).ok();
        if theirs.is_some() || ours.is_some() {
            diffs.push(format!(
                "{t:?} should be refused: prometheus {theirs:?}, prom2om {ours:?}"
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
