//! `--dashboard` end to end with the real tools: a TSDB with two Elasticsearch clusters and
//! metrics no panel uses; one cluster's dashboard window exported (from the dump, and with fetch
//! from a server), imported, and every panel query answered identically by a Prometheus on the
//! import and one on the source; the export holds only series a panel or variable needs.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{dump, dump_lines, prom2om, run, run_ok, url_encode, Prom};

/// 2023-11-14T20:00:00Z, on a 2 h boundary; six hours of 30 s scrapes.
const T0: i64 = 1_699_992_000;
const HOURS: i64 = 6;
const SCRAPE: i64 = 30;
/// The window looked at: hours 3 to 5. Its `$__interval` is 2h/300 rounded, 20 s.
const START: i64 = T0 + 3 * 3600;
const END: i64 = T0 + 5 * 3600;
const STEP: i64 = 20;

const CLUSTERS: [&str; 2] = ["prod-a", "prod-b"];
/// Dots in node names: the multi-valued `--var node=...` must be regex-escaped as Grafana does.
const NODES: [&str; 3] = ["es.1", "es.2", "es.3"];
/// The variables the window is exported and looked at with.
const VARS: [&str; 6] = [
    "--var",
    "cluster=prod-a",
    "--var",
    "node=es.1",
    "--var",
    "node=es.3",
];

/// Metrics the dashboard's panels use (the heap ones only with area="heap").
const PANEL_METRICS: [&str; 11] = [
    "elasticsearch_cluster_health_status",
    "elasticsearch_cluster_health_number_of_nodes",
    "elasticsearch_cluster_health_active_shards",
    "elasticsearch_indices_docs",
    "elasticsearch_indices_indexing_index_total",
    "elasticsearch_indices_search_query_total",
    "elasticsearch_jvm_memory_used_bytes",
    "elasticsearch_jvm_memory_max_bytes",
    "elasticsearch_jvm_gc_collection_seconds_count",
    "elasticsearch_os_cpu_percent",
    "elasticsearch_filesystem_data_available_bytes",
];

/// One family of the synthetic exporter data: name, extra label sets, value at step i.
type Family = (&'static str, Vec<String>, fn(usize, usize) -> f64);

fn families() -> Vec<Family> {
    let none = vec![String::new()];
    let area = vec![
        r#",area="heap""#.to_string(),
        r#",area="non-heap""#.to_string(),
    ];
    let gc = vec![r#",gc="young""#.to_string(), r#",gc="old""#.to_string()];
    let colors = ["green", "yellow", "red"]
        .iter()
        .map(|c| format!(r#",color="{c}""#))
        .collect();
    let pools = vec![
        r#",type="search""#.to_string(),
        r#",type="write""#.to_string(),
    ];
    vec![
        ("elasticsearch_cluster_health_status", colors, |i, k| {
            f64::from(u8::from((i / 40 + k) % 3 == 0))
        }),
        (
            "elasticsearch_cluster_health_number_of_nodes",
            none.clone(),
            |i, _| {
                if (i / 50) % 7 == 3 {
                    2.0
                } else {
                    3.0
                }
            },
        ),
        (
            "elasticsearch_cluster_health_active_shards",
            none.clone(),
            |i, _| (40 + (i * 7) % 13) as f64,
        ),
        ("elasticsearch_indices_docs", none.clone(), |i, k| {
            (1000 * k + 17 * i) as f64
        }),
        (
            "elasticsearch_indices_indexing_index_total",
            none.clone(),
            |i, k| {
                // A counter with a reset half way.
                ((i % 400) * (3 + k) + (i * i) % 11) as f64
            },
        ),
        (
            "elasticsearch_indices_search_query_total",
            none.clone(),
            |i, k| (i * (5 + k) + i % 7) as f64,
        ),
        (
            "elasticsearch_jvm_memory_used_bytes",
            area.clone(),
            |i, k| (1 << 28) as f64 + ((i * 7919 + k * 104_729) % 100_000) as f64 * 1024.5,
        ),
        ("elasticsearch_jvm_memory_max_bytes", area, |_, k| {
            (1u64 << (30 + k)) as f64
        }),
        (
            "elasticsearch_jvm_gc_collection_seconds_count",
            gc,
            |i, k| (i / (2 + k)) as f64,
        ),
        ("elasticsearch_os_cpu_percent", none.clone(), |i, k| {
            ((i * 13 + k * 29) % 97) as f64
        }),
        (
            "elasticsearch_filesystem_data_available_bytes",
            none.clone(),
            |i, k| (5e11 - (i * 1_000_003) as f64 - k as f64 * 1e9).max(0.0),
        ),
        // No panel or variable uses these.
        ("elasticsearch_thread_pool_queue_count", pools, |i, k| {
            ((i + k) % 5) as f64
        }),
        (
            "elasticsearch_indices_store_size_bytes",
            none.clone(),
            |i, _| 1e9 + i as f64,
        ),
        ("node_load1", none, |i, k| ((i + k) % 9) as f64 / 4.0),
    ]
}

/// The OpenMetrics text of the source TSDB: both clusters, per node unless cluster-wide.
fn source_om() -> String {
    let mut om = String::new();
    let steps = (HOURS * 3600 / SCRAPE) as usize;
    for (name, extras, value) in families() {
        om.push_str(&format!("# TYPE {name} gauge\n"));
        let cluster_wide = name.starts_with("elasticsearch_cluster_");
        for (c, cluster) in CLUSTERS.iter().enumerate() {
            let nodes: Vec<&str> = if cluster_wide {
                vec![""]
            } else {
                NODES.to_vec()
            };
            for (n, node) in nodes.iter().enumerate() {
                for (e, extra) in extras.iter().enumerate() {
                    let node_label = if node.is_empty() {
                        String::new()
                    } else {
                        format!(r#",name="{node}""#)
                    };
                    let labels = format!(r#"{{cluster="{cluster}"{node_label}{extra}}}"#);
                    let k = c * 10 + n * 3 + e;
                    for i in 0..=steps {
                        let t = T0 + i as i64 * SCRAPE;
                        om.push_str(&format!("{name}{labels} {} {t}\n", value(i, k)));
                    }
                }
            }
        }
    }
    om.push_str("# EOF\n");
    om
}

/// Panels that show only the chosen nodes.
const BY_NODE: [&str; 5] = [
    "elasticsearch_indices_indexing_index_total",
    "elasticsearch_indices_search_query_total",
    "elasticsearch_jvm_memory_used_bytes",
    "elasticsearch_jvm_memory_max_bytes",
    "elasticsearch_jvm_gc_collection_seconds_count",
];

/// Whether the export must hold this series (a dump line): a panel needs it for prod-a (and
/// nodes es.1 and es.3 where it filters by node), or a variable's label_values lists it (the
/// health of every cluster, the documents of every prod-a node). Written out by hand,
/// independent of the tool.
fn needed(line: &str) -> bool {
    let name = line
        .split_once(r#"__name__=""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(n, _)| n);
    if name == "elasticsearch_cluster_health_status" {
        return true;
    }
    PANEL_METRICS.contains(&name)
        && line.contains(r#"cluster="prod-a""#)
        && !line.contains(r#"area="non-heap""#)
        && !(BY_NODE.contains(&name) && line.contains(r#"name="es.2""#))
}

/// The label part of each line of a dump.
fn series_of(lines: &BTreeSet<String>) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| {
            let mut p = l.rsplitn(3, ' ');
            let (_t, _v) = (p.next(), p.next());
            p.next().unwrap().to_string()
        })
        .collect()
}

/// The queries of the dashboard's panels and annotations, as `prom2om dashboard --json`
/// interpolated them, and the label_values variables as (label, match[]).
fn dashboard_queries(dash: &Path) -> (Vec<String>, Vec<(String, String)>) {
    let mut cmd = prom2om();
    cmd.arg("dashboard")
        .arg(dash)
        .args(VARS)
        .arg("--json")
        .args(["--start", &START.to_string(), "--end", &END.to_string()]);
    let out = run_ok(&mut cmd);
    let reports: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let mut panels = Vec::new();
    let mut variables = Vec::new();
    for p in reports[0]["panels"].as_array().unwrap() {
        let title = p["title"].as_str().unwrap();
        for q in p["queries"].as_array().unwrap() {
            assert!(q["error"].is_null(), "{q}");
            let expr = q["expr"].as_str().unwrap().to_string();
            if title.starts_with("variable ") {
                let inner = expr.strip_prefix("label_values(").unwrap();
                let (sel, label) = inner.trim_end_matches(')').rsplit_once(',').unwrap();
                variables.push((label.trim().to_string(), sel.trim().to_string()));
            } else {
                panels.push(expr);
            }
        }
    }
    (panels, variables)
}

fn api(p: &Prom, path: &str) -> serde_json::Value {
    let (status, body) = p.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"].clone()
}

/// Every panel query over the whole window, and every variable's values, answered the same.
fn assert_same_answers(source: &Prom, home: &Prom, panels: &[String], vars: &[(String, String)]) {
    for q in panels {
        let path = format!(
            "/api/v1/query_range?query={}&start={START}&end={END}&step={STEP}",
            url_encode(q)
        );
        let (want, got) = (api(source, &path), api(home, &path));
        let series = want["result"].as_array().unwrap();
        assert!(!series.is_empty(), "{q}: no data on the source");
        let points: usize = series
            .iter()
            .map(|s| s["values"].as_array().unwrap().len())
            .sum();
        assert!(points > series.len(), "{q}: too few points");
        assert_eq!(got, want, "{q}: answers differ");
    }
    for (label, sel) in vars {
        let path = format!(
            "/api/v1/label/{label}/values?match[]={}&start={START}&end={END}",
            url_encode(sel)
        );
        let want = api(source, &path);
        assert!(!want.as_array().unwrap().is_empty(), "{label}: no values");
        assert_eq!(api(home, &path), want, "values of {label} differ");
    }
}

fn import(shards: &Path, data: &Path) {
    let mut cmd = prom2om();
    cmd.arg("import").arg(shards).arg("--tsdb").arg(data);
    let (code, out, err) = run(cmd);
    assert_eq!(code, 0, "import failed: {out}\n{err}");
    std::fs::create_dir_all(data.join("wal")).unwrap();
}

fn export_args<'a>(
    cmd: &'a mut std::process::Command,
    dash: &Path,
) -> &'a mut std::process::Command {
    cmd.arg("--dashboard").arg(dash).args(VARS).args([
        "--start",
        &START.to_string(),
        "--end",
        &END.to_string(),
    ])
}

#[test]
fn dashboard_export_answers_every_panel_query_like_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let dash = common::testdata("dashboards/elasticsearch.json");
    let om = tmp.path().join("source.om");
    std::fs::write(&om, source_om()).unwrap();
    let source = tmp.path().join("source");
    common::backfill(&om, &source);
    let dump_file = tmp.path().join("source.dump");
    std::fs::write(&dump_file, dump(&source, None)).unwrap();
    let source_lines = dump_lines(&source);

    // convert from the dump.
    let shards = tmp.path().join("shards");
    let mut cmd = prom2om();
    cmd.arg("convert").arg(&dump_file).arg("-o").arg(&shards);
    export_args(&mut cmd, &dash);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    // The start moved back by the longest reach: increase(...[1h]) plus one 20 s step.
    assert!(
        err.contains("start moved back 1h20s") && err.contains("increase("),
        "{err}"
    );
    assert!(
        err.contains("dashboard \"Elasticsearch\"") && err.contains("9 panels, 13 selectors"),
        "{err}"
    );
    let home = tmp.path().join("home");
    import(&shards, &home);
    let home_lines = dump_lines(&home);

    // Exactly the needed series, with every sample of the window and its reach back.
    let first = (START - 3600 - STEP) * 1000;
    let want: BTreeSet<String> = source_lines
        .iter()
        .filter(|l| {
            let ts: i64 = l.rsplit(' ').next().unwrap().parse().unwrap();
            needed(l) && ts >= first && ts <= END * 1000
        })
        .cloned()
        .collect();
    let home_series = series_of(&home_lines);
    assert_eq!(home_series, series_of(&want));
    // Health of both clusters (the cluster dropdown), two cluster-wide series, nine for each
    // chosen node and three for the other.
    assert_eq!(home_series.len(), 6 + 2 + 2 * 9 + 3, "series");
    assert!(
        home_lines == want,
        "the export's samples are not the source's"
    );
    let exported = format!(
        "exported {} series, {} samples",
        home_series.len(),
        want.len()
    );
    assert!(err.contains(&exported), "{err}");

    // The same through fetch from a server on the source.
    let source_prom = Prom::start(&source);
    let fetched = tmp.path().join("fetched");
    let mut cmd = prom2om();
    cmd.args(["fetch", "--url", &source_prom.url(), "-o"])
        .arg(&fetched);
    export_args(&mut cmd, &dash);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 0, "{err}");
    // Exact although overlapping selectors fetched some series twice.
    assert!(err.contains(&exported), "{err}");
    let home_fetched = tmp.path().join("home-fetched");
    import(&fetched, &home_fetched);
    assert!(
        dump_lines(&home_fetched) == want,
        "fetch exported other samples"
    );

    // Every panel and annotation query, and the variables' dropdowns, answer the same at home.
    let (panels, vars) = dashboard_queries(&dash);
    assert_eq!(panels.len(), 11, "{panels:#?}");
    assert_eq!(vars.len(), 2, "{vars:?}");
    let home_prom = Prom::start(&home);
    assert_same_answers(&source_prom, &home_prom, &panels, &vars);

    // --no-reach-back keeps --start.
    let mut cmd = prom2om();
    cmd.arg("convert")
        .arg(&dump_file)
        .args(["-o", "-", "--no-reach-back"]);
    export_args(&mut cmd, &dash);
    let out = String::from_utf8(run_ok(&mut cmd)).unwrap();
    let first_ts = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(first_ts, START as f64);
}
