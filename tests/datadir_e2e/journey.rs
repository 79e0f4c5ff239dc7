//! The whole journey with staleness: the data dir of a real Prometheus 2.42 whose target vanished
//! and came back and which was restarted, `convert DIR -o shards`, then `import shards --tsdb
//! home` with no promtool anywhere. A Prometheus on `home` must answer instant queries exactly as
//! one serving the source does, at every instant 2 s apart across the data and 5 minutes after it
//! (Prometheus's lookback), where staleness markers decide whether a series is still there.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::{prom2om, run_ok, url_encode, Prom};
use crate::promdir::copy_dir;
use crate::scenarios::fixtures;

/// Every series: the markers of the awkward target, and all the others that must not change.
const QUERY: &str = r#"{__name__=~".+"}"#;
/// Instants this far apart; scrapes were 1 s apart, outages 5–6 s long.
const STEP_MS: i64 = 2_000;
/// Prometheus's default lookback: after its last sample a series answers for this long, unless
/// a staleness marker ends it earlier.
const LOOKBACK_MS: i64 = 300_000;

/// An instant query's answer, order-free: each series' labels (sorted) with its value.
type Answer = BTreeMap<BTreeMap<String, String>, String>;

fn answer(p: &Prom, t_ms: i64) -> Answer {
    let time = format!("{}.{:03}", t_ms.div_euclid(1000), t_ms.rem_euclid(1000));
    let path = format!("/api/v1/query?query={}&time={time}", url_encode(QUERY));
    let (status, body) = p.get(&path);
    assert_eq!(status, 200, "{path}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: no result: {body}"))
        .iter()
        .map(|r| {
            let metric = serde_json::from_value(r["metric"].clone()).unwrap();
            (metric, r["value"][1].as_str().unwrap().to_string())
        })
        .collect()
}

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

/// Instants (of `from..=to`, `STEP_MS` apart) where the two servers answer differently, with
/// the first difference described.
fn mismatches(source: &Prom, home: &Prom, (from, to): (i64, i64)) -> (usize, usize, String) {
    let (mut total, mut bad, mut first) = (0, 0, String::new());
    let mut t = from;
    while t <= to {
        let (a, b) = (answer(source, t), answer(home, t));
        total += 1;
        if a != b {
            bad += 1;
            if first.is_empty() {
                let only_src: Vec<_> = a.iter().filter(|(k, v)| b.get(*k) != Some(v)).collect();
                let only_home: Vec<_> = b.iter().filter(|(k, v)| a.get(*k) != Some(v)).collect();
                first = format!(
                    "at {t} ms: source alone has {:?}; home alone has {:?}",
                    only_src.iter().take(3).collect::<Vec<_>>(),
                    only_home.iter().take(3).collect::<Vec<_>>()
                );
            }
        }
        t += STEP_MS;
    }
    (total, bad, first)
}

#[test]
fn home_answers_instant_queries_as_the_source_with_staleness() {
    let fixture = fixtures()
        .iter()
        .find(|f| f.name == "stale_restart")
        .expect("the stale_restart scenario");
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let copy = tmp.path().join("source-copy");
    copy_dir(&fixture.data, &copy);
    let source = Prom::start_config(&copy, &fixture.serve_config, &[]);

    let (home, (min, max)) = journey(&fixture.data, tmp.path(), None);
    let home = Prom::start(&home);
    let window = (min - STEP_MS, max + LOOKBACK_MS + STEP_MS);
    let (total, bad, first) = mismatches(&source, &home, window);
    assert!(total > 300, "only {total} instants in {window:?}");
    assert_eq!(bad, 0, "{bad} of {total} instants differ; first {first}");
    eprintln!("default export: all {total} instants answer as the source");

    // The same journey without the markers must differ: the check has teeth.
    let (home_drop, _) = journey(&fixture.data, tmp.path(), Some("drop"));
    let home_drop = Prom::start(&home_drop);
    let (total, bad, first) = mismatches(&source, &home_drop, window);
    assert!(bad > 0, "--stale drop matched at all {total} instants");
    eprintln!("--stale drop: {bad} of {total} instants differ; first {first}");
}
