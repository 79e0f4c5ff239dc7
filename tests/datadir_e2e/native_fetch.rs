//! `fetch` from a Prometheus 3.5.3 serving the native-histogram data dir: remote read delivers
//! exactly the samples, floats and histograms, that the query API returns; `--method raw`
//! rebuilds each histogram so that it shows as the API shows the source's, with the schema and
//! custom bounds of the exact ones; `--method range` says it skips them.

use std::collections::BTreeMap;
use std::time::Duration;

use prom2om::fetch::http::ClientConfig;
use prom2om::fetch::plan::{Match, Method, Op};
use prom2om::fetch::{self, FetchOptions, FetchStats, MethodChoice};
use prom2om::format::histogram::{is_custom_buckets, HistogramValue};

use crate::common::PromVersion;
use crate::histtruth::{first_difference, float_histogram, Collector, Delivered, Got};
use crate::native::{serve_copy, window, ALL};
use crate::scenarios::{fixture, NATIVE};
use crate::truth::{histogram_series, raw_samples_sliced};

fn options(url: &str, start: i64, end: i64, method: Method) -> FetchOptions {
    FetchOptions {
        client: ClientConfig {
            url: url.to_string(),
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            ..Default::default()
        },
        selectors: vec![vec![Match::new("__name__", Op::Re, ".+")]],
        start_ms: start,
        end_ms: end,
        method: MethodChoice::Use(method),
        step_ms: None,
        concurrency: 2,
        samples_per_request: 20_000,
        top_by: None,
        state_dir: None,
        resume: false,
        fingerprint: "test".into(),
        progress: false,
    }
}

fn run(o: &FetchOptions) -> (Got, FetchStats) {
    let mut c = Collector::default();
    let st = fetch::fetch(o, &mut c).unwrap();
    (c.into_series(), st)
}

/// `got` less staleness markers (the query API leaves them out).
fn without_markers(got: Got) -> Got {
    let stale = |d: &Delivered| match d {
        Delivered::Float(b) => *b == prom2om::format::value::STALE_NAN_BITS,
        Delivered::Histogram(h) => h.is_stale(),
    };
    got.into_iter()
        .map(|(k, v)| {
            (
                k,
                v.into_iter().filter(|s| !stale(&s.1)).collect::<Vec<_>>(),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn histograms(got: &Got) -> BTreeMap<(String, i64), HistogramValue> {
    let mut out = BTreeMap::new();
    for (k, v) in got {
        for (t, d) in v {
            if let Delivered::Histogram(h) = d {
                out.insert((format!("{k:?}"), *t), h.clone());
            }
        }
    }
    out
}

#[test]
fn fetch_delivers_the_histograms_of_a_3_5_server() {
    let f = fixture(NATIVE, PromVersion::V3_5);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = serve_copy(f, &tmp.path().join("copy"));
    let (from, to) = window(f);
    let api = raw_samples_sliced(&source, ALL, (from, to), 300_000);
    let url = source.url();
    // Remote read: exact.
    let (exact, st) = run(&options(&url, from + 1, to, Method::RemoteRead));
    assert!(
        st.histogram_stale_markers > 0,
        "no histogram staleness marker"
    );
    let exact = without_markers(exact);
    if let Some(d) = first_difference(&exact, &api) {
        panic!("remote read: {d}");
    }
    let n: u64 = crate::truth::counts(&api)
        .values()
        .map(|c| c.histograms)
        .sum();
    assert_eq!(st.histogram_samples, n);
    // Raw: each histogram shows as the source's does; schema and custom bounds as the exact.
    let (raw, st) = run(&options(&url, from + 1, to, Method::Raw));
    if let Some(d) = first_difference(&raw, &api) {
        panic!("raw: {d}");
    }
    assert_eq!(st.histogram_samples, n);
    let (exact_h, raw_h) = (histograms(&exact), histograms(&raw));
    let mut shown = 0;
    for (k, e) in &exact_h {
        let (e, r) = (float_histogram(e), float_histogram(&raw_h[k]));
        // A histogram without a filled bucket shows no schema: its series' other samples may.
        let filled = |b: &[u64]| b.iter().any(|c| f64::from_bits(*c) != 0.0);
        if filled(&e.positive_buckets) || filled(&e.negative_buckets) {
            assert_eq!(e.schema, r.schema, "{k:?}: schema");
            shown += 1;
        }
        if is_custom_buckets(e.schema) {
            let known = |b: &u64| e.custom_values.contains(b);
            assert!(r.custom_values.iter().all(known), "{k:?}: custom bounds");
        }
    }
    assert!(shown > n / 2, "{shown} of {n} histograms show their schema");
    eprintln!(
        "{} histogram series, {n} histograms; raw took {} schemas and {} zero thresholds from \
         other samples, {} from none",
        histogram_series(&api).len(),
        st.guessed.schema,
        st.guessed.zero_threshold,
        st.guessed.unknown
    );
    // Range, over the last minute with histograms: they are counted as skipped, floats fetched.
    let last = api
        .values()
        .flatten()
        .filter(|s| s.1.is_histogram())
        .map(|s| s.0)
        .max()
        .unwrap();
    let mut o = options(&url, last - 60_000, last, Method::Range);
    o.step_ms = Some(5_000);
    let (got, st) = run(&o);
    assert!(st.histograms_skipped > 0, "range skipped no histogram");
    assert_eq!(st.histogram_samples, 0);
    assert!(got
        .values()
        .flatten()
        .all(|s| matches!(s.1, Delivered::Float(_))));
}
