//! What the Prometheus 3.5.3 native-histogram data dir holds, by the source's own query API:
//! every kind of histogram, out-of-order ones, a series that changed type; and the ground-truth
//! helpers (`truth.rs`) comparing histograms exactly, with teeth.

use std::collections::BTreeMap;

use crate::common::{url_encode, Prom, PromVersion};
use crate::promdir::{copy_dir, now_ms};
use crate::scenarios::{fixture, Fixture, NATIVE};
use crate::truth::{
    compare, count_over_time, counts, histogram_queries, histogram_series, instants, metric_names,
    raw_samples_sliced, Counts, Labels, Samples, Scope, Value,
};

const ALL: &str = r#"{__name__=~".+"}"#;

/// Which series a kind of histogram is.
type Pick = Box<dyn Fn(&Labels) -> bool>;

/// A server on a fresh copy of the fixture (with the admin API, to delete in the copy).
fn serve_copy(f: &Fixture, dir: &std::path::Path) -> Prom {
    copy_dir(&f.data, dir);
    Prom::start_version_config(f.version, dir, &f.serve_config, &["--web.enable-admin-api"])
}

/// From before the first block to now (a few minutes after the last sample).
fn window(f: &Fixture) -> (i64, i64) {
    let min = f.layout.blocks.iter().map(|b| b.min_time).min().unwrap();
    (min - 1_000, now_ms())
}

fn sum_where(c: &BTreeMap<Labels, Counts>, pred: impl Fn(&Labels) -> bool) -> Counts {
    c.iter()
        .filter(|(k, _)| pred(k))
        .fold(Counts::default(), |a, (_, n)| Counts {
            floats: a.floats + n.floats,
            histograms: a.histograms + n.histograms,
        })
}

fn is(k: &Labels, name: &str, label: Option<(&str, &str)>) -> bool {
    k["__name__"] == name && label.is_none_or(|(l, v)| k.get(l).map(String::as_str) == Some(v))
}

/// The histograms of the series matching `pred`, as JSON objects.
fn histograms_of(s: &Samples, pred: impl Fn(&Labels) -> bool) -> Vec<(i64, serde_json::Value)> {
    s.iter()
        .filter(|(k, _)| pred(k))
        .flat_map(|(_, v)| v.iter().filter_map(|(t, v)| Some((*t, v.histogram()?))))
        .collect()
}

#[test]
fn native_scenario_holds_every_kind_of_histogram() {
    let f = fixture(NATIVE, PromVersion::V3_5);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = serve_copy(f, &tmp.path().join("copy"));
    let (from, to) = window(f);
    let samples = raw_samples_sliced(&source, ALL, (from, to), 300_000);
    let c = counts(&samples);
    let pushed = |kind: &'static str| move |k: &Labels| is(k, "hist_native", Some(("kind", kind)));
    let mixed = |at: &'static str| move |k: &Labels| is(k, "hist_mixed", Some(("where", at)));
    // (what, its series, whether it has floats too)
    let kinds: Vec<(&str, Pick, bool)> = vec![
        (
            "exponential, scraped over protobuf",
            Box::new(|k: &Labels| is(k, "prometheus_http_request_duration_seconds", None)),
            false,
        ),
        (
            "NHCB, scraped (awk_latency_seconds, awk_size_bytes)",
            Box::new(|k: &Labels| {
                is(k, "awk_latency_seconds", None) || is(k, "awk_size_bytes", None)
            }),
            false,
        ),
        (
            "awk_size_bytes{route=\"/b\"} (vanished and came back)",
            Box::new(|k: &Labels| is(k, "awk_size_bytes", Some(("route", "/b")))),
            false,
        ),
        (
            "exponential, pushed",
            Box::new(pushed("exponential")),
            false,
        ),
        ("float (gauge), pushed", Box::new(pushed("float")), false),
        ("NHCB, pushed", Box::new(pushed("custom")), false),
        (
            "exponential, pushed into the head",
            Box::new(pushed("head")),
            false,
        ),
        ("changed type in a block", Box::new(mixed("block")), true),
        ("changed type in the head", Box::new(mixed("head")), true),
    ];
    for (what, pred, floats) in &kinds {
        let n = sum_where(&c, pred);
        eprintln!(
            "{what}: {} histogram samples, {} float samples",
            n.histograms, n.floats
        );
        assert!(n.histograms > 0, "{what}: no histogram sample");
        assert_eq!(n.floats > 0, *floats, "{what}: float samples");
    }
    let all = sum_where(&c, |_| true);
    eprintln!(
        "all series: {} histogram samples, {} float samples",
        all.histograms, all.floats
    );
    assert!(
        !c.keys()
            .any(|k| k["__name__"].ends_with("_bucket") && k["job"] == "awkward"),
        "the awkward target's classic histograms were stored classic"
    );

    // A series that changed type holds its floats, then its histograms.
    for (k, v) in samples.iter().filter(|(k, _)| is(k, "hist_mixed", None)) {
        let first_h = v.iter().position(|s| s.1.is_histogram()).unwrap();
        assert!(
            v[first_h..].iter().all(|s| s.1.is_histogram()),
            "{k:?} went back to floats"
        );
    }

    // NHCB: the bucket bounds are the classic `le`s (the first bucket starts at -Inf).
    let nhcb = histograms_of(&samples, |k| is(k, "awk_size_bytes", None));
    for (t, h) in &nhcb {
        for b in h["buckets"].as_array().unwrap() {
            let upper = b[2].as_str().unwrap();
            assert!(
                ["100", "1000", "10000", "+Inf"].contains(&upper),
                "awk_size_bytes at {t}: bucket {b} is not a classic bound"
            );
        }
    }
    // Float histograms: counts that are no integers.
    let floats = histograms_of(&samples, |k| is(k, "hist_native", Some(("kind", "float"))));
    assert!(
        floats
            .iter()
            .any(|(_, h)| h["count"].as_str().unwrap().contains('.')),
        "no fractional count in the float histograms"
    );
    // Out of order: histograms between the in-order ones (at 10 s steps from the start of a
    // minute), from blocks (+5.007 s) and from the wbl (+0.507 s into a second).
    let at = |kind: &str, off: i64, step: i64| {
        histograms_of(&samples, |k| is(k, "hist_native", Some(("kind", kind))))
            .iter()
            .filter(|(t, _)| t % step == off)
            .count()
    };
    for kind in ["exponential", "float"] {
        assert!(
            at(kind, 5_007, 10_000) > 0,
            "{kind}: no out-of-order histogram from a block"
        );
    }
    for kind in ["exponential", "float", "custom"] {
        assert!(
            at(kind, 507, 1_000) > 0,
            "{kind}: no out-of-order histogram from the wbl"
        );
    }

    // count_over_time per series agrees with the raw samples, for every histogram metric.
    let hist = histogram_series(&samples);
    let names: std::collections::BTreeSet<String> =
        hist.iter().map(|k| k["__name__"].clone()).collect();
    for name in &names {
        let got = count_over_time(&source, name, "", from, to);
        let want: BTreeMap<Labels, u64> = c
            .iter()
            .filter(|(k, _)| &k["__name__"] == name)
            .map(|(k, n)| (k.clone(), n.floats + n.histograms))
            .collect();
        assert_eq!(got, want, "count_over_time of {name}");
    }
    eprintln!(
        "{} histogram series in {} metrics: {names:?}",
        hist.len(),
        names.len()
    );
    promtool_dump_against_the_api(f, &samples, tmp.path());
}

/// What 3.5.3's `promtool tsdb dump` prints for the histograms, against the query API (printed
/// for the record: its text is lossy and it leaves out the first sample of each series).
fn promtool_dump_against_the_api(f: &Fixture, samples: &Samples, work: &std::path::Path) {
    let copy = work.join("dump-copy");
    copy_dir(&f.data, &copy);
    let dump = crate::common::dump_with(f.version, &copy, None);
    let lines: Vec<&[u8]> = dump
        .split(|&b| b == b'\n')
        .filter(|l| l.windows(7).any(|w| w == b"{count:"))
        .collect();
    let api: u64 = counts(samples).values().map(|n| n.histograms).sum();
    eprintln!(
        "promtool tsdb dump (3.5.3): {} histogram lines; the query API: {api} histogram samples \
         in {} series; e.g.\n  {}",
        lines.len(),
        histogram_series(samples).len(),
        lines
            .iter()
            .take(2)
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// Deletes the series `selector` matches over `range` (ms) through a server's admin API.
fn delete(prom: &Prom, selector: &str, (start, end): (i64, i64)) {
    let url = format!(
        "{}/api/v1/admin/tsdb/delete_series?match[]={}&start={}&end={}",
        prom.url(),
        url_encode(selector),
        crate::truth::secs(start),
        crate::truth::secs(end)
    );
    ureq::post(&url).send_empty().unwrap();
}

#[test]
fn histograms_compare_exactly_between_two_servers() {
    let f = fixture(NATIVE, PromVersion::V3_5);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = serve_copy(f, &tmp.path().join("a"));
    let twin = serve_copy(f, &tmp.path().join("b"));
    let (from, to) = window(f);
    let samples = raw_samples_sliced(&source, ALL, (from, to), 300_000);
    let hist = histogram_series(&samples);
    let names = metric_names(
        &samples
            .into_iter()
            .filter(|(k, _)| hist.contains(k))
            .collect(),
    );
    let queries: Vec<String> = names.iter().flat_map(|m| histogram_queries(m)).collect();
    let at = instants((from, to), 15_000);
    let same = compare(&source, &twin, &queries, &at, Scope::All);
    assert_eq!(same.bad, 0, "two copies differ: {}", same.first);
    // The source answers every one (see `scenario_native::delete` for the queries 3.5.3 fails).
    assert_eq!(same.source_errors, 0, "the source answered errors");
    // The answers hold histograms and quantiles, not only empty vectors.
    let answered = |q: &str, want: fn(&Value) -> bool| {
        at.iter()
            .any(|&t| crate::truth::instant(&source, q, t).values().any(want))
    };
    assert!(answered("hist_native", Value::is_histogram));
    assert!(answered(
        "histogram_quantile(0.9, rate(awk_size_bytes[1m]))",
        |v| matches!(v, Value::Float(x) if x != "NaN")
    ));
    // Teeth: a few seconds of one histogram series gone from the twin.
    let mid = at[at.len() / 2];
    delete(&twin, r#"hist_native{kind="float"}"#, (from, to));
    delete(
        &twin,
        "prometheus_http_request_duration_seconds",
        (mid - 5_000, mid),
    );
    let differ = compare(&source, &twin, &queries, &at, Scope::All);
    assert!(differ.bad > 0, "a deletion went unseen");
    eprintln!(
        "{} queries × instants: two copies alike; after deletions {} differ, first {}",
        same.total, differ.bad, differ.first
    );
}
