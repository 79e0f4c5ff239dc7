//! `prom2om dashboard` and `--dashboard` on the command line: the report and the selectors,
//! --strict, bad files, JSON, the selectors reused as --match, inspect and convert summaries,
//! what the manifest records of the dashboards.

mod common;

use common::*;

fn dash(name: &str) -> std::path::PathBuf {
    testdata(&format!("dashboards/{name}"))
}

const WINDOW: [&str; 4] = ["--start", "1700000000", "--end", "1700086400"];

/// A small dump of two clusters: what the Elasticsearch dashboard needs and what it does not.
fn es_dump(dir: &std::path::Path) -> std::path::PathBuf {
    let mut s = String::new();
    for cluster in ["prod-a", "prod-b"] {
        for t in 0..30 {
            let ts = 1_700_080_000_000i64 + t * 60_000;
            for (name, extra) in [
                ("elasticsearch_cluster_health_status", r#", color="green""#),
                ("elasticsearch_indices_docs", r#", name="es-1""#),
                (
                    "elasticsearch_jvm_memory_used_bytes",
                    r#", area="heap", name="es-1""#,
                ),
                (
                    "elasticsearch_jvm_memory_used_bytes",
                    r#", area="non-heap", name="es-1""#,
                ),
                ("elasticsearch_thread_pool_queue_count", r#", name="es-1""#),
            ] {
                s.push_str(&format!(
                    "{{__name__=\"{name}\", cluster=\"{cluster}\"{extra}}} {t} {ts}\n"
                ));
            }
        }
    }
    let p = dir.join("es.dump");
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn report_then_selectors_one_per_line() {
    let mut cmd = prom2om();
    cmd.arg("dashboard").arg(dash("features.json")).args(WINDOW);
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("# dashboard \"Features\" ("), "{out}");
    for want in [
        "#   variables: cluster=prod-a (saved), color=green|yellow|red (all),",
        "#   reach back: 1d10m (es_store_bytes offset 1d)",
        "#   warning: variables without a saved value match any value: index",
        "#   panel \"Overview / Health\"",
        "#     not used: B: hidden",
        "#     not used: A: loki datasource, not Prometheus",
        "#     not used: library panel \"JVM GC\"",
        "#        does not parse: unclosed left parenthesis",
        "#        -> es_health{cluster=\"prod-a\", color=~\"(green|yellow|red)\"}",
        "#   variable \"index\"",
        "#        note: label_values(index) lists the values of every series",
        "#   6 panels, 19 selectors, 1 expressions that do not parse",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    let selectors: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(selectors.len(), 14, "{selectors:#?}");
    assert!(selectors.contains(&r#"{index!=""}"#));
    assert!(err.is_empty(), "{err}");
}

#[test]
fn strict_fails_on_an_expression_that_does_not_parse() {
    let mut cmd = prom2om();
    cmd.args(["dashboard", "--strict"])
        .arg(dash("features.json"));
    let (code, _, err) = run(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--strict: 1 dashboard expressions do not parse")
            && err.contains("panel \"Queries / Logic\": D: unclosed left parenthesis"),
        "{err}"
    );
    let mut cmd = prom2om();
    cmd.args(["dashboard", "--strict"])
        .arg(dash("old-rows.json"));
    assert_eq!(run(cmd).0, 0);
}

#[test]
fn bad_files_are_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let not_dash = tmp.path().join("x.json");
    std::fs::write(&not_dash, "{\"a\": 1}").unwrap();
    for (file, msg) in [
        (tmp.path().join("missing.json"), "reading dashboard"),
        (not_dash, "not a Grafana dashboard"),
    ] {
        let mut cmd = prom2om();
        cmd.arg("dashboard").arg(&file);
        let (code, _, err) = run(cmd);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(msg), "{err}");
    }
    let mut cmd = prom2om();
    cmd.args(["convert", "--var", "cluster=a", "-o", "-"]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 2);
    assert!(err.contains("--dashboard"), "{err}");
}

#[test]
fn json_report() {
    let out = run_ok(
        prom2om()
            .arg("dashboard")
            .arg(dash("old-rows.json"))
            .arg(dash("v2.json"))
            .args(["--json", "--var", "cluster=x", "--var", "nope=1"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let reports = v.as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["title"], "Old rows");
    assert_eq!(reports[1]["selectors"][0], r#"es_heap_bytes{cluster="x"}"#);
}

#[test]
fn unused_var_is_warned() {
    let mut cmd = prom2om();
    cmd.arg("dashboard")
        .arg(dash("v2.json"))
        .args(["--var", "nope=1"]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0);
    assert!(
        err.contains("--var nope: no query of the dashboards uses $nope"),
        "{err}"
    );
}

#[test]
fn convert_with_dashboard_equals_convert_with_its_selectors() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = es_dump(tmp.path());
    let d = dash("elasticsearch.json");
    let selectors = String::from_utf8(run_ok(
        prom2om()
            .arg("dashboard")
            .arg(&d)
            .args(["--var", "cluster=prod-a"]),
    ))
    .unwrap();
    let mut by_match = prom2om();
    by_match.arg("convert").arg(&dump).args(["-o", "-", "-q"]);
    for s in selectors.lines().filter(|l| !l.starts_with('#')) {
        by_match.args(["-m", s]);
    }
    let by_match = run_ok(&mut by_match);
    let mut cmd = prom2om();
    cmd.arg("convert")
        .arg(&dump)
        .arg("--dashboard")
        .arg(&d)
        .args(["--var", "cluster=prod-a", "-o", "-"]);
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.as_bytes(), &by_match[..]);
    // Both clusters' health (the cluster dropdown), prod-a's docs and heap; not non-heap, not
    // the thread pools.
    let series: std::collections::BTreeSet<&str> = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplitn(3, ' ').nth(2).unwrap())
        .collect();
    assert_eq!(series.len(), 4, "{series:#?}");
    assert!(
        err.contains("prom2om: dashboard \"Elasticsearch\"")
            && err.contains("9 panels, 13 selectors, variables cluster=prod-a (--var)")
            && !err.contains("exported"),
        "{err}"
    );
    // Into a directory, the summary counts what the shards hold of each dashboard.
    let mut cmd = prom2om();
    cmd.arg("convert")
        .arg(&dump)
        .arg("--dashboard")
        .arg(&d)
        .arg("--dashboard")
        .arg(dash("v2.json"))
        .args(["--var", "cluster=prod-a", "-o"])
        .arg(tmp.path().join("shards"));
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exported 4 series, 120 samples"), "{err}");
    assert!(
        err.contains("dashboard \"Schema v2\"") && err.contains("exported 0 series, 0 samples"),
        "{err}"
    );
}

/// The manifest records the dashboard files and the --var values that chose its selectors, and
/// how far the start moved back; paths given relative are recorded absolute.
#[test]
fn the_manifest_records_the_dashboards_and_vars_and_absolute_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    es_dump(tmp.path());
    std::fs::copy(dash("elasticsearch.json"), tmp.path().join("es.json")).unwrap();
    let mut cmd = prom2om();
    cmd.current_dir(tmp.path())
        .args(["convert", "es.dump", "--dashboard", "es.json"])
        .args(["--var", "cluster=prod-a", "--var", "node=es-1"])
        .args(WINDOW)
        .args(["-q", "-o", "shards"]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(tmp.path().join("shards/manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let abs = |name: &str| serde_json::json!(root.join(name).display().to_string());
    assert_eq!(m["inputs"], serde_json::json!([abs("es.dump")]), "{text}");
    let d = &m["filters"]["dashboards"];
    assert_eq!(d["files"], serde_json::json!([abs("es.json")]), "{text}");
    assert_eq!(
        d["vars"],
        serde_json::json!(["cluster=prod-a", "node=es-1"]),
        "{text}"
    );
    // increase(...[1h]) at a 5m interval: 1h5m before --start.
    assert_eq!(d["reach_back_ms"], serde_json::json!(3_900_000), "{text}");
    assert_eq!(
        m["filters"]["start_ms"],
        serde_json::json!(1_700_000_000_000i64 - 3_900_000),
        "{text}"
    );
    // Without --dashboard the field is left out, as in the manifests of earlier versions.
    let mut cmd = prom2om();
    cmd.current_dir(tmp.path())
        .args(["convert", "es.dump", "-q", "-o", "plain"]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(tmp.path().join("plain/manifest.json")).unwrap();
    assert!(!text.contains("dashboards"), "{text}");
}

#[test]
fn inspect_with_dashboard() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = es_dump(tmp.path());
    let out = run_ok(
        prom2om()
            .arg("inspect")
            .arg(&dump)
            .arg("--json")
            .arg("--dashboard")
            .arg(dash("elasticsearch.json"))
            .args(["--var", "cluster=prod-b"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["series"], 10);
    assert_eq!(v["kept_series"], 4);
}

/// A query that uses a variable the dashboard does not define (`instance="$node"`) selects
/// nothing as written: `dashboard` and `convert --dashboard` say so, naming it and the panel.
#[test]
fn an_undefined_variable_is_named_with_its_panel() {
    let tmp = tempfile::tempdir().unwrap();
    let json = r#"{"title": "Nodes", "panels": [{"type": "timeseries", "title": "Docs",
        "targets": [{"refId": "A", "expr": "sum(elasticsearch_indices_docs{cluster=\"prod-a\", name=\"$node\"}) by (name)"},
                    {"refId": "B", "expr": "label_replace(up, \"x\", \"$1\", \"job\", \"(.*)\")"}]}]}"#;
    let file = tmp.path().join("nodes.json");
    std::fs::write(&file, json).unwrap();
    let want = "$node (first in panel \"Docs\" A) is neither a variable of the dashboard nor given with --var";
    let mut cmd = prom2om();
    cmd.arg("dashboard").arg(&file).args(WINDOW);
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(want), "{out}");
    assert!(
        !out.contains("$1 "),
        "a group reference is not a variable: {out}"
    );
    let dump = es_dump(tmp.path());
    let mut cmd = prom2om();
    cmd.args(["convert", "--allow-empty", "--dashboard"])
        .arg(&file)
        .args(WINDOW)
        .arg("-o")
        .arg(tmp.path().join("out"))
        .arg(&dump);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(want) && err.contains("--var node=VALUE"),
        "{err}"
    );
    // Given with --var, it is used and the warning is gone.
    let mut cmd = prom2om();
    cmd.arg("dashboard")
        .arg(&file)
        .args(WINDOW)
        .args(["--var", "node=es-1"]);
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("neither a variable"), "{out}");
    assert!(out.contains(r#"name="es-1""#), "{out}");
}
