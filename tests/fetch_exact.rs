//! `fetch` against a real Prometheus on blocks made by promtool: remote read and raw PromQL give
//! exactly what `promtool tsdb dump --match` prints of the same blocks; `range` gives the
//! server's own `query_range` values.

mod common;
mod fetch_support;

use common::Prom;
use fetch_support::*;
use prom2om::fetch::api;
use prom2om::fetch::http::{Client, ClientConfig};
use prom2om::fetch::plan::{Match, Method, Op};

#[test]
fn fetch_methods_match_dump_and_query_range() {
    let tmp = tempfile::tempdir().unwrap();
    let data = make_blocks(tmp.path(), 300, HOURS, 15_000);
    let all = dump(&data, r#"{__name__=~"fx_.*"}"#);
    let special = dump(&data, r#"{__name__="fx_special",Zeta=~"z0|z2"}"#);
    assert!(
        samples(&all) > 300_000,
        "test data too small: {}",
        samples(&all)
    );
    let prom = Prom::start(&data);
    let url = prom.url();
    let (start, end) = (T0, T0 + HOURS * 3_600_000 - 1);

    // Remote read, one unit per metric and many small units: both exact.
    let o = options(&url, vec![], start, end, Some(Method::RemoteRead));
    let (got, st) = run(&o).unwrap();
    assert_same(&got, &all, "remote-read");
    assert_eq!(st.samples as usize, samples(&all));
    assert_eq!(st.stale_markers, 0);
    let mut small = o.clone();
    small.samples_per_request = 20_000;
    let (got, st) = run(&small).unwrap();
    assert!(st.units > 8, "{} units", st.units);
    assert_same(&got, &all, "remote-read, small units");

    // Raw PromQL range selectors, windows tiled without loss or overlap.
    let mut raw = options(&url, vec![], start, end, Some(Method::Raw));
    raw.samples_per_request = 30_000;
    let (got, st) = run(&raw).unwrap();
    assert!(st.units > 8, "{} units", st.units);
    assert_same(&got, &all, "raw");

    // A sub-range with unaligned ends, and a narrower selector.
    let (a, b) = (T0 + 1_234_567, T0 + 3 * 3_600_000 + 777);
    let sel = vec![vec![
        Match::new("__name__", Op::Eq, "fx_special"),
        Match::new("Zeta", Op::Re, "z0|z2"),
    ]];
    for m in [Method::RemoteRead, Method::Raw] {
        let mut o = options(&url, sel.clone(), a, b, Some(m));
        o.samples_per_request = 5_000;
        let (got, _) = run(&o).unwrap();
        assert_same(&got, &window(&special, a, b), m.as_str());
    }

    // Auto picks remote read on Prometheus.
    let (got, st) = run(&options(&url, sel.clone(), start, end, None)).unwrap();
    assert_eq!(st.method, Some(Method::RemoteRead));
    assert_same(&got, &special, "auto");

    // Range: split into several query_range calls, equal to one call over the whole range.
    let mut r = options(&url, vec![], start, end, Some(Method::Range));
    r.step_ms = Some(60_000);
    r.samples_per_request = 10_000;
    let (got, st) = run(&r).unwrap();
    assert!(st.units > 4, "{} units", st.units);
    let client = Client::new(&ClientConfig {
        url: url.clone(),
        timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    })
    .unwrap();
    let want = api::query_range(&client, r#"{__name__=~"fx_.*"}"#, start, end, 60_000).unwrap();
    let mut want_d = Data::new();
    for s in want {
        let floats = s.floats.into_iter().map(|(t, v)| (t, v.to_bits()));
        want_d.insert(s.labels, floats.collect());
    }
    assert_same(&got, &want_d, "range");

    // --top-by path=3 on fx_gauge: the three path values whose series reach the highest value.
    let gauge = dump(&data, r#"{__name__="fx_gauge"}"#);
    let mut best: std::collections::BTreeMap<String, f64> = Default::default();
    for (l, s) in &gauge {
        let max = s
            .values()
            .map(|b| f64::from_bits(*b))
            .filter(|v| !v.is_nan())
            .fold(f64::NEG_INFINITY, f64::max);
        let e = best
            .entry(l.get("path").unwrap().to_string())
            .or_insert(f64::NEG_INFINITY);
        *e = e.max(max);
    }
    let mut ranked: Vec<_> = best.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let top: Vec<String> = ranked.iter().take(3).map(|r| r.0.clone()).collect();
    let want: Data = gauge
        .iter()
        .filter(|(l, _)| top.iter().any(|t| Some(t.as_str()) == l.get("path")))
        .map(|(l, s)| (l.clone(), s.clone()))
        .collect();
    let mut o = options(
        &url,
        vec![vec![Match::new("__name__", Op::Eq, "fx_gauge")]],
        start,
        end,
        Some(Method::RemoteRead),
    );
    o.top_by = Some(("path".into(), 3));
    o.samples_per_request = 50_000;
    let (got, _) = run(&o).unwrap();
    assert!(!want.is_empty() && want.len() < gauge.len());
    assert_same(&got, &want, "top-by");
}
