//! The whole journey with staleness: the data dir of a real Prometheus (2.42, and 3.5.3 with native
//! histograms) whose target vanished and came back and which was restarted, `convert DIR -o
//! shards`, then `import shards --tsdb home` with no promtool anywhere. The same Prometheus on
//! `home` must answer instant queries exactly as one serving the source does, at every instant 2 s
//! apart across the data and 5 minutes after it (Prometheus's lookback), where staleness markers
//! decide whether a series is still there: every series, floats and native histograms, and for
//! each histogram metric what a latency dashboard asks. With native histograms the same holds
//! through `fetch` (remote read from the source) then `import`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::{prom2om, run_ok, Prom};
use crate::promdir::{copy_dir, now_ms};
use crate::scenarios::{fixture, Fixture};
use crate::truth::{
    compare, histogram_queries, histogram_series, instants, raw_samples_sliced, Labels, Scope,
};

/// Every series: the markers of the awkward target, and all the others that must not change.
const QUERY: &str = r#"{__name__=~".+"}"#;
/// Instants this far apart; scrapes were 1 s apart, outages 5–6 s long.
const STEP_MS: i64 = 2_000;
/// Prometheus's default lookback: after its last sample a series answers for this long, unless
/// a staleness marker ends it earlier.
const LOOKBACK_MS: i64 = 300_000;

/// The first and last sample of the export, floats and histograms, from the manifest (markers
/// may lie after the last).
fn span(shards: &Path) -> (i64, i64) {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shards.join("manifest.json")).unwrap()).unwrap();
    let t = &m["totals"];
    let (mut min, mut max) = (
        t["min_ts_ms"].as_i64().unwrap(),
        t["max_ts_ms"].as_i64().unwrap(),
    );
    let sides = m["shards"].as_array().unwrap().iter();
    for sc in sides.flat_map(|s| s["sidecars"].as_array().into_iter().flatten()) {
        if sc["kind"] == "native_histograms" {
            min = min.min(sc["min_ts_ms"].as_i64().unwrap());
            max = max.max(sc["max_ts_ms"].as_i64().unwrap());
        }
    }
    (min, max)
}

/// What the manifest's totals say the blocks must hold, in the words of import's summary.
fn held(shards: &Path) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shards.join("manifest.json")).unwrap()).unwrap();
    let n = |k: &str| m["totals"][k].as_u64().unwrap_or(0);
    let mut parts = vec![format!("{} samples", n("samples"))];
    for (k, what) in [
        ("stale_markers", "staleness marker"),
        ("histogram_samples", "histogram sample"),
        ("histogram_stale_markers", "histogram staleness marker"),
    ] {
        match n(k) {
            0 => {}
            1 => parts.push(format!("1 {what}")),
            c => parts.push(format!("{c} {what}s")),
        }
    }
    let last = parts.pop().unwrap();
    match parts.is_empty() {
        true => last,
        false => format!("{} and {last}", parts.join(", ")),
    }
}

/// `import shards --tsdb home` with a PATH of an empty directory: no promtool, no prometheus;
/// its summary must count what the manifest says, each kind apart.
fn import(shards: &Path, home: &Path, work: &Path) -> String {
    let empty_path = work.join("no-tools");
    std::fs::create_dir_all(&empty_path).unwrap();
    let out = run_ok(
        prom2om()
            .arg("import")
            .arg(shards)
            .arg("--tsdb")
            .arg(home)
            .env("PATH", &empty_path),
    );
    let out = String::from_utf8(out).unwrap();
    let want = format!("{} moved into ", held(shards));
    assert!(out.contains(&want), "no {want:?} in\n{out}");
    out
}

/// Exports `data` with `stale` (None: the default) and imports it with no promtool on PATH.
fn journey(data: &Path, work: &Path, stale: Option<&str>) -> (PathBuf, (i64, i64)) {
    let name = stale.unwrap_or("default");
    let shards = work.join(format!("shards-{name}"));
    let home = work.join(format!("home-{name}"));
    let mut convert = prom2om();
    convert.arg("convert").arg(data).arg("-o").arg(&shards);
    if let Some(s) = stale {
        convert.args(["--stale", s]);
    }
    run_ok(&mut convert);
    import(&shards, &home, work);
    (home, span(&shards))
}

/// `fetch` of every series from `source` over remote read, `from` to now, then the import.
fn fetch_journey(source: &Prom, from: i64, work: &Path) -> PathBuf {
    let shards = work.join("shards-fetched");
    let home = work.join("home-fetched");
    run_ok(
        prom2om()
            .args([
                "fetch",
                "-q",
                "--url",
                &source.url(),
                "--method",
                "remote-read",
            ])
            .args(["-m", QUERY, "-o"])
            .arg(&shards)
            .args(["--start", &crate::truth::secs(from)])
            .args(["--end", &crate::truth::secs(now_ms())]),
    );
    let said = import(&shards, &home, work);
    assert!(said.contains(" histogram samples"), "{said}");
    home
}

/// The queries asked at every instant: every series, and per histogram metric what a latency
/// dashboard asks.
fn queries(hist: &BTreeSet<Labels>) -> Vec<String> {
    let names: BTreeSet<&str> = hist.iter().map(|k| k["__name__"].as_str()).collect();
    let mut q = vec![QUERY.to_string()];
    q.extend(names.iter().flat_map(|m| histogram_queries(m)));
    q
}

/// `home` against `source`: every raw sample of the window alike, then every query at every
/// instant.
fn assert_answers_alike(
    id: &str,
    what: &str,
    (source, home): (&Prom, &Prom),
    window: (i64, i64),
    queries: &[String],
) {
    let raw = |p: &Prom| raw_samples_sliced(p, QUERY, (window.0 - LOOKBACK_MS, window.1), 300_000);
    let (want, got) = (raw(source), raw(home));
    if let Some(k) = want
        .keys()
        .chain(got.keys())
        .find(|k| want.get(*k) != got.get(*k))
    {
        panic!(
            "{id} {what}: the raw samples of {k:?} differ: {} at the source, {} at home",
            want.get(k).map_or(0, Vec::len),
            got.get(k).map_or(0, Vec::len)
        );
    }
    let at = instants(window, STEP_MS);
    let m = compare(source, home, queries, &at, Scope::All);
    assert!(
        m.total > 300,
        "{id}: only {} instants in {window:?}",
        m.total
    );
    assert_eq!(
        m.bad, 0,
        "{id} {what}: {} of {} answers differ; first {}",
        m.bad, m.total, m.first
    );
    let n: usize = want.values().map(Vec::len).sum();
    eprintln!(
        "{id} {what}: {n} raw samples of {} series alike; all {} answers ({} queries × {} \
         instants) as the source's",
        want.len(),
        m.total,
        queries.len(),
        at.len()
    );
}

/// The journey of `fixture` to a home Prometheus of its own version, compared with one serving
/// a copy of the source at every instant; with native histograms, through fetch too; then
/// without markers, which must differ.
fn home_answers_as_the_source(fixture: &Fixture) {
    let id = fixture.id();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let copy = tmp.path().join("source-copy");
    copy_dir(&fixture.data, &copy);
    let v = fixture.version;
    let source = Prom::start_version_config(v, &copy, &fixture.serve_config, &[]);

    let (home_dir, (min, max)) = journey(&fixture.data, tmp.path(), None);
    let home = Prom::start_version(v, &home_dir, &[]);
    let window = (min - STEP_MS, max + LOOKBACK_MS + STEP_MS);
    let hist = histogram_series(&raw_samples_sliced(
        &source,
        QUERY,
        (window.0 - LOOKBACK_MS, window.1),
        300_000,
    ));
    assert_eq!(
        fixture.has_histograms(),
        !hist.is_empty(),
        "{id}: histogram series {hist:?}"
    );
    if fixture.has_histograms() {
        // Series that changed type, float to histogram, in a block and in the head.
        let mixed = hist
            .iter()
            .filter(|k| k["__name__"] == "hist_mixed")
            .count();
        assert_eq!(mixed, 2, "{id}: {hist:?}");
    }
    let queries = queries(&hist);
    assert_answers_alike(&id, "convert", (&source, &home), window, &queries);
    drop(home);

    if fixture.has_histograms() {
        let from = fixture
            .layout
            .blocks
            .iter()
            .map(|b| b.min_time)
            .min()
            .unwrap()
            - 1_000;
        let fetched = Prom::start_version(v, &fetch_journey(&source, from, tmp.path()), &[]);
        assert_answers_alike(&id, "fetch", (&source, &fetched), window, &queries);
    }

    // The same journey without the markers must differ: the check has teeth.
    let (home_drop, _) = journey(&fixture.data, tmp.path(), Some("drop"));
    let home_drop = Prom::start_version(v, &home_drop, &[]);
    let at = instants(window, STEP_MS);
    let m = compare(&source, &home_drop, &[QUERY.into()], &at, Scope::All);
    assert!(m.bad > 0, "{id}: --stale drop matched at all {}", m.total);
    eprintln!(
        "{id}: --stale drop: {} of {} instants differ; first {}",
        m.bad, m.total, m.first
    );
}

#[test]
fn home_answers_instant_queries_as_the_source_with_staleness() {
    home_answers_as_the_source(fixture("stale_restart", crate::common::PromVersion::V2_42));
}

#[test]
fn home_answers_instant_queries_as_the_source_with_staleness_3_5() {
    home_answers_as_the_source(fixture("stale_restart", crate::common::PromVersion::V3_5));
}

#[test]
fn home_answers_as_the_source_with_native_histograms_3_5() {
    home_answers_as_the_source(fixture(
        crate::scenarios::NATIVE,
        crate::common::PromVersion::V3_5,
    ));
}
