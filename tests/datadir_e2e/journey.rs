//! The whole journey with staleness: the data dir of a real Prometheus (2.42, and 3.5.3 with native
//! histograms) whose target vanished and came back and which was restarted, `convert DIR -o
//! shards`, then `import shards --tsdb home` with no promtool anywhere. The same Prometheus on
//! `home` must answer instant queries exactly as one serving the source does, at every instant 2 s
//! apart across the data and 5 minutes after it (Prometheus's lookback), where staleness markers
//! decide whether a series is still there.

use std::path::Path;

use crate::common::{prom2om, run_ok, Prom};
use crate::promdir::copy_dir;
use crate::scenarios::{fixture, Fixture};
use crate::truth::{compare, histogram_series, instants, raw_samples_sliced, Scope};

/// Every series: the markers of the awkward target, and all the others that must not change.
const QUERY: &str = r#"{__name__=~".+"}"#;
/// Instants this far apart; scrapes were 1 s apart, outages 5–6 s long.
const STEP_MS: i64 = 2_000;
/// Prometheus's default lookback: after its last sample a series answers for this long, unless
/// a staleness marker ends it earlier.
const LOOKBACK_MS: i64 = 300_000;

/// The first and last sample of the export, from the manifest (markers may lie after the last).
fn span(shards: &Path) -> (i64, i64) {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shards.join("manifest.json")).unwrap()).unwrap();
    let t = &m["totals"];
    (
        t["min_ts_ms"].as_i64().unwrap(),
        t["max_ts_ms"].as_i64().unwrap(),
    )
}

/// Exports `data` with `stale` (None: the default) and imports it with no promtool on PATH.
fn journey(data: &Path, work: &Path, stale: Option<&str>) -> (std::path::PathBuf, (i64, i64)) {
    let name = stale.unwrap_or("default");
    let shards = work.join(format!("shards-{name}"));
    let home = work.join(format!("home-{name}"));
    let mut convert = prom2om();
    convert.arg("convert").arg(data).arg("-o").arg(&shards);
    if let Some(s) = stale {
        convert.args(["--stale", s]);
    }
    run_ok(&mut convert);
    let empty_path = work.join("no-tools");
    std::fs::create_dir_all(&empty_path).unwrap();
    run_ok(
        prom2om()
            .arg("import")
            .arg(&shards)
            .arg("--tsdb")
            .arg(&home)
            .env("PATH", &empty_path),
    );
    (home, span(&shards))
}

/// The journey of `fixture` to a home Prometheus of its own version, compared with one serving
/// a copy of the source at every instant; then without markers, which must differ.
fn home_answers_as_the_source(fixture: &Fixture) {
    let id = fixture.id();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let copy = tmp.path().join("source-copy");
    copy_dir(&fixture.data, &copy);
    let v = fixture.version;
    let source = Prom::start_version_config(v, &copy, &fixture.serve_config, &[]);

    let (home, (min, max)) = journey(&fixture.data, tmp.path(), None);
    let home = Prom::start_version(v, &home, &[]);
    let window = (min - STEP_MS, max + LOOKBACK_MS + STEP_MS);
    // Issue 22: prom2om skips native histograms, so their series are missing (or stale floats)
    // at home; until it carries them, floats are held exact and histogram series to nothing.
    // Once it does, compare every series with `Scope::All` (and the queries of
    // `truth::histogram_queries` per histogram metric).
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
    let scope = if hist.is_empty() {
        Scope::All
    } else {
        Scope::FloatsOnly(&hist)
    };
    let at = instants(window, STEP_MS);
    let m = compare(&source, &home, &[QUERY.into()], &at, scope);
    assert!(
        m.total > 300,
        "{id}: only {} instants in {window:?}",
        m.total
    );
    assert_eq!(
        m.bad, 0,
        "{id}: {} of {} instants differ; first {}",
        m.bad, m.total, m.first
    );
    eprintln!(
        "{id}: default export: all {} instants answer as the source ({} histogram series left \
         out: issue 22)",
        m.total,
        hist.len()
    );

    // The same journey without the markers must differ: the check has teeth.
    let (home_drop, _) = journey(&fixture.data, tmp.path(), Some("drop"));
    let home_drop = Prom::start_version(v, &home_drop, &[]);
    let m = compare(&source, &home_drop, &[QUERY.into()], &at, scope);
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
fn home_answers_floats_as_the_source_with_native_histograms_3_5() {
    home_answers_as_the_source(fixture(
        crate::scenarios::NATIVE,
        crate::common::PromVersion::V3_5,
    ));
}
