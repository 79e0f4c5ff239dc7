//! The numbers prom2om prints agree with each other and with what it wrote: fetch's series count
//! is the manifest's, `--list-metrics` counts what the fetch with the same `--top-by` exports,
//! `inspect` says where the invalid lines are, and import's pickup hint follows real imports.

mod common;
mod fetch_support;

use std::path::Path;

use common::*;
use fetch_support::{make_blocks, T0};

fn manifest_series(dir: &Path) -> (u64, usize) {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    (
        m["totals"]["series"].as_u64().unwrap(),
        m["shards"].as_array().unwrap().len(),
    )
}

fn fetch_args(url: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "fetch".into(),
        "--url".into(),
        url.into(),
        "-m".into(),
        r#"{__name__="fx_gauge"}"#.into(),
        "--start".into(),
        (T0 / 1000).to_string(),
        "--end".into(),
        ((T0 + 4 * 3_600_000) / 1000 - 1).to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

#[test]
fn fetch_and_list_metrics_count_series_as_the_manifest_does() {
    let tmp = tempfile::tempdir().unwrap();
    let data = make_blocks(tmp.path(), 40, 4, 60_000);
    let prom = Prom::start(&data);

    // Two block windows: every series is in two shards, and still one series.
    let out = tmp.path().join("all");
    let mut cmd = prom2om();
    cmd.args(fetch_args(&prom.url(), &["-o", out.to_str().unwrap()]));
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 0, "{stderr}");
    let (series, shards) = manifest_series(&out);
    assert!(shards >= 2, "{shards} shards");
    assert!(
        stderr.contains(&format!("fetched {series} series,")),
        "manifest says {series}: {stderr}"
    );

    // --list-metrics with --top-by lists what the fetch with --top-by writes.
    let top = tmp.path().join("top");
    let mut cmd = prom2om();
    cmd.args(fetch_args(
        &prom.url(),
        &["--top-by", "path=3", "-o", top.to_str().unwrap()],
    ));
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 0, "{stderr}");
    let (top_series, _) = manifest_series(&top);
    assert!(top_series < series, "{top_series} of {series}");
    let mut cmd = prom2om();
    cmd.args(fetch_args(
        &prom.url(),
        &["--top-by", "path=3", "--list-metrics"],
    ));
    let (code, stdout, stderr) = run(cmd);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!("{top_series:>10}  series in 1 metrics")),
        "fetch wrote {top_series}: {stdout}"
    );
}

#[test]
fn inspect_shows_where_the_first_invalid_lines_are() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("bad.dump");
    std::fs::write(
        &dump,
        "{__name__=\"a\"} 1 1000\n{__name__=\"a\" 2 2000\n{__name__=\"a\"} 3 3000\nnot a line\n",
    )
    .unwrap();
    let mut cmd = prom2om();
    cmd.arg("inspect").arg(&dump);
    let (code, stdout, stderr) = run(cmd);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("invalid lines: 2"), "{stdout}");
    assert!(
        stdout.contains("bad.dump:2: ") && stdout.contains("bad.dump:4: "),
        "{stdout}"
    );
    let mut cmd = prom2om();
    cmd.arg("inspect").arg(&dump).arg("--json");
    let (_, stdout, _) = run(cmd);
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let first = r["first_invalid"].as_array().unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        first[0].as_str().unwrap().contains("bad.dump:2: "),
        "{first:?}"
    );
}

#[test]
fn import_prints_its_pickup_hint_only_when_it_imported_something() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = tmp.path().join("shards");
    run_ok(
        prom2om()
            .args(["convert", "-o"])
            .arg(&shards)
            .arg(testdata("sample.dump")),
    );
    let data = tmp.path().join("data");
    let import = || {
        let mut cmd = prom2om();
        cmd.arg("import")
            .arg(&shards)
            .arg("--tsdb")
            .arg(&data)
            .arg(format!("--promtool={}", promtool().display()));
        run(cmd)
    };
    let (code, stdout, stderr) = import();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("loads the new blocks"), "{stderr}");
    let (code, stdout, stderr) = import();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("imported 0 shards, skipped "), "{stdout}");
    assert!(!stderr.contains("loads the new blocks"), "{stderr}");
}
