use super::*;
use crate::labels::Labels;

/// 2023-11-14T22:13:20Z, a 24 h window: `$__interval` is 24h/300 rounded, 5m.
const START: i64 = 1_700_000_000_000;
const END: i64 = START + 86_400_000;

fn report(file: &str, vars: &[&str]) -> Report {
    let path = format!("{}/testdata/dashboards/{file}", env!("CARGO_MANIFEST_DIR"));
    let d = load(&std::fs::read(&path).unwrap()).unwrap();
    let args: Vec<String> = vars.iter().map(|s| s.to_string()).collect();
    let opts = Options {
        start_ms: START,
        end_ms: END,
        vars: parse_vars(&args).unwrap(),
    };
    analyze(file, &d, &opts)
}

fn panel<'a>(r: &'a Report, title: &str) -> &'a PanelReport {
    r.panels
        .iter()
        .find(|p| p.title == title)
        .unwrap_or_else(|| panic!("no {title} in {:#?}", r.panels))
}

fn q<'a>(r: &'a Report, title: &str, ref_id: &str) -> &'a QueryReport {
    panel(r, title)
        .queries
        .iter()
        .find(|q| q.ref_id == ref_id)
        .unwrap_or_else(|| panic!("no {ref_id} in {title}: {:#?}", panel(r, title)))
}

fn sels(r: &Report, title: &str, ref_id: &str) -> Vec<String> {
    q(r, title, ref_id).selectors.clone()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

#[test]
fn rows_collapsed_rows_hidden_loki_and_library_panels() {
    let r = report("features.json", &[]);
    assert_eq!(r.title, "Features");
    assert_eq!(
        sels(&r, "panel \"Overview / Health\"", "A"),
        [r#"es_health{cluster="prod-a", color=~"(green|yellow|red)"}"#]
    );
    let health = panel(&r, "panel \"Overview / Health\"");
    assert_eq!(health.skipped, ["B: hidden"]);
    // A collapsed row keeps its panels inside it; they are titled with the row.
    let mixed = panel(&r, "panel \"Indexing / Mixed\"");
    assert_eq!(mixed.skipped, ["A: loki datasource, not Prometheus"]);
    assert_eq!(
        sels(&r, "panel \"Indexing / Mixed\"", "B"),
        [r#"es_threadpool_rejected{pool=~".+", job=~"(es|es\\.backup)"}"#]
    );
    let shared = panel(&r, "panel \"Indexing / Shared\"");
    assert!(shared.queries.is_empty());
    assert!(shared.skipped[0].starts_with("library panel \"JVM GC\""));
    // A text panel has no queries and is not listed.
    assert!(!r.panels.iter().any(|p| p.title.contains("Notes")));
    assert_eq!(
        sels(&r, "annotation \"Node changes\"", "Anno"),
        [r#"es_nodes{cluster="prod-a"}"#]
    );
    assert_eq!(r.panels_used(), 6);
}

#[test]
fn variable_syntaxes_and_formats() {
    let r = report("features.json", &[]);
    let idx = q(&r, "panel \"Indexing / Index rate\"", "A");
    // ${node} is All without options: any value, so no matcher on name.
    assert_eq!(
        idx.expr,
        r#"sum by (name) (rate(es_index_total{cluster="prod-a", name=~".*"}[5m15s]))"#
    );
    assert_eq!(idx.selectors, [r#"es_index_total{cluster="prod-a"}"#]);
    let b = q(&r, "panel \"Indexing / Index rate\"", "B");
    assert_eq!(
        b.expr,
        r#"rate(es_index_total{cluster="prod-a", name=~".*"}[10m])"#
    );
    let f = q(&r, "panel \"Queries / Formats\"", "A");
    assert_eq!(
        f.expr,
        r#"es_docs{job=~"es|es.backup", a="es,es.backup", b="es,es.backup", c="{es,es.backup}", d=~`(es|es\.backup)`}"#
    );
    assert_eq!(
        f.selectors,
        [
            r#"es_docs{job=~"es|es.backup", a="es,es.backup", b="es,es.backup", c="{es,es.backup}", d=~"(es|es\\.backup)"}"#
        ]
    );
    assert_eq!(
        q(&r, "panel \"Queries / Formats\"", "B").expr,
        r#"es_jvm_heap_bytes{cluster="prod-a"} > 0.9"#
    );
    assert_eq!(sels(&r, "panel \"Queries / Formats\"", "C"), ["es_docs"]);
    let used: Vec<&str> = r.variables_used().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        used,
        [
            "cluster",
            "color",
            "index",
            "interval",
            "job",
            "metric",
            "node",
            "pool",
            "threshold"
        ]
    );
    assert_eq!(
        r.warnings,
        ["variables without a saved value match any value: index (set them with --var NAME=VALUE)"]
    );
}

#[test]
fn var_overrides_multi_value_and_all() {
    let r = report(
        "features.json",
        &[
            "cluster=prod-b",
            "node=n1",
            "node=n.2",
            "index=*",
            "color=red",
        ],
    );
    assert_eq!(
        sels(&r, "panel \"Indexing / Index rate\"", "A"),
        [r#"es_index_total{cluster="prod-b", name=~"(n1|n\\.2)"}"#]
    );
    // The multi-valued custom variable keeps its regex form for one value too.
    assert_eq!(
        sels(&r, "panel \"Overview / Health\"", "A"),
        [r#"es_health{cluster="prod-b", color=~"red"}"#]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let sel = Selector::parse(&sels(&r, "panel \"Indexing / Index rate\"", "A")[0]).unwrap();
    let s = |name| {
        labels(&[
            ("__name__", "es_index_total"),
            ("cluster", "prod-b"),
            ("name", name),
        ])
    };
    assert!(sel.matches(&s("n.2")) && sel.matches(&s("n1")));
    assert!(!sel.matches(&s("nx2")) && !sel.matches(&s("n1x")));
    let cluster = r.variables.iter().find(|v| v.name == "cluster").unwrap();
    assert_eq!(
        (cluster.value.as_str(), cluster.source),
        ("prod-b", "--var")
    );
}

#[test]
fn label_values_and_other_variable_queries() {
    let r = report("features.json", &[]);
    assert_eq!(
        sels(&r, "variable \"cluster\"", "query"),
        [r#"es_health{cluster!=""}"#]
    );
    assert_eq!(
        sels(&r, "variable \"node\"", "query"),
        [r#"es_docs{cluster="prod-a", name!=""}"#]
    );
    let index = q(&r, "variable \"index\"", "query");
    assert_eq!(index.selectors, [r#"{index!=""}"#]);
    assert!(index.notes[0].contains("every series with a index label"));
    assert_eq!(sels(&r, "variable \"job\"", "query"), ["es_up"]);
    assert_eq!(
        sels(&r, "variable \"metric\"", "query"),
        [r#"{__name__=~".*(?:es_jvm_.*_bytes).*"}"#]
    );
    assert!(panel(&r, "variable \"labels\"").skipped[0].contains("label_names()"));
    assert_eq!(
        panel(&r, "variable \"logs\"").skipped,
        ["loki datasource, not Prometheus"]
    );
}

#[test]
fn offset_at_subquery_range_and_reach_back() {
    let r = report("features.json", &[]);
    let t = "panel \"Queries / Time\"";
    // Each reach adds the panel's step (5m): Grafana aligns the start down to it.
    let reach = |id| q(&r, t, id).reach_ms / 60_000;
    assert_eq!(reach("A"), 60 + 5 + 5, "subquery 1h over rate 5m");
    assert_eq!(reach("B"), 24 * 60 + 5 + 5, "offset 1d plus the lookback");
    assert_eq!(reach("C"), 5 + 5, "@ start()");
    assert_eq!(q(&r, t, "D").expr, "es_segments @ 1700000000");
    assert_eq!(reach("D"), 5 + 5);
    assert_eq!(q(&r, t, "E").expr, "increase(es_gc_total[86400s])");
    assert_eq!(reach("E"), 24 * 60 + 5);
    assert_eq!(sels(&r, t, "A"), ["es_search_total"]);
    assert_eq!(r.reach_ms, (24 * 60 + 10) * 60_000);
    assert_eq!(r.reach_expr, "es_store_bytes offset 1d");
}

#[test]
fn or_unless_absent_and_a_syntax_error() {
    let r = report("features.json", &[]);
    let t = "panel \"Queries / Logic\"";
    assert_eq!(sels(&r, t, "A"), [r#"es_up{cluster="prod-a"}"#]);
    assert_eq!(sels(&r, t, "B"), ["es_breakers", "es_breakers_ignored"]);
    assert_eq!(sels(&r, t, "C"), [r#"es_up{cluster="prod-a"}"#]);
    let d = q(&r, t, "D");
    assert!(d.error.is_some() && d.selectors.is_empty());
    assert_eq!(r.errors.len(), 1);
    assert!(
        r.errors[0].starts_with("panel \"Queries / Logic\": D: "),
        "{}",
        r.errors[0]
    );
    // The rest still works; the union has every selector once, and none that another covers
    // (the job variable's es_up covers the panels' es_up{cluster="prod-a"}).
    let all = union(std::slice::from_ref(&r));
    let texts: Vec<&str> = all.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts.iter().filter(|t| **t == "es_up").count(), 1);
    assert!(!texts.contains(&r#"es_up{cluster="prod-a"}"#));
    assert!(texts.contains(&r#"{index!=""}"#));
}

#[test]
fn old_rows_export_wrapper_inputs_repeats_and_library_elements() {
    let r = report("old-rows.json", &[]);
    assert_eq!(r.title, "Old rows");
    assert_eq!(
        sels(&r, "panel \"CPU / CPU [[cluster]]\"", "A"),
        [r#"es_os_cpu{cluster="prod-b", host=~"(h1|h2)"}"#]
    );
    let per_host: Vec<&str> = panel(&r, "panel \"CPU / Per host\"")
        .queries
        .iter()
        .map(|q| q.expr.as_str())
        .collect();
    assert_eq!(
        per_host,
        [r#"es_os_load{host="h1"}"#, r#"es_os_load{host="h2"}"#]
    );
    assert_eq!(
        panel(&r, "panel \"CPU / Logs\"").skipped,
        [
            "time shift \"now/d\" is not a duration: the reach back ignores it",
            "A: loki datasource, not Prometheus"
        ]
    );
    // Time shift 1h: an hour more, on the 5m lookback and step.
    assert_eq!(
        q(&r, "panel \"CPU / CPU [[cluster]]\"", "A").reach_ms,
        70 * 60_000
    );
    // Relative time 2d on a 1d window: a day more, and a 10m step.
    let per_host = &panel(&r, "panel \"CPU / Per host\"").queries[0];
    assert_eq!(per_host.reach_ms, (24 * 60 + 15) * 60_000);
    assert_eq!(r.reach_ms, per_host.reach_ms);
    assert_eq!(
        sels(&r, "panel \"JVM / JVM GC\"", "A"),
        [r#"es_gc_total{cluster="prod-b"}"#]
    );
    assert!(panel(&r, "panel \"JVM / Gone\"").skipped[0].contains("\"Deleted panel\""));
    assert_eq!(
        sels(&r, "variable \"host\"", "query"),
        [r#"es_os_cpu{cluster="prod-b"}"#]
    );
}

#[test]
fn schema_v2_elements() {
    let r = report("v2.json", &[]);
    assert_eq!(r.title, "Schema v2");
    let heap = panel(&r, "panel \"Heap\"");
    assert_eq!(heap.queries.len(), 1);
    assert_eq!(
        heap.queries[0].selectors,
        [r#"es_heap_bytes{cluster="prod-c"}"#]
    );
    assert_eq!(
        heap.skipped,
        ["B: hidden", "C: loki datasource, not Prometheus"]
    );
    assert!(panel(&r, "panel \"Shared\"").skipped[0].contains("\"Shared panel\""));
    assert_eq!(sels(&r, "annotation \"Restarts\"", "Anno"), ["es_uptime"]);
    assert_eq!(
        sels(&r, "variable \"cluster\"", "query"),
        [r#"es_heap_bytes{cluster!=""}"#]
    );
    // The panel's 2m minimum interval is below the window's 5m; its time shift adds 30m.
    assert_eq!(q(&r, "panel \"Heap\"", "A").reach_ms, 40 * 60_000);
}

#[test]
fn not_a_dashboard() {
    assert!(load(b"[1, 2]").unwrap_err().contains("not an object"));
    assert!(load(b"{\"a\": 1}").unwrap_err().contains("no panels"));
    assert!(load(b"{").unwrap_err().contains("not JSON"));
}

#[test]
fn var_arguments() {
    let v = parse_vars(&["a=1".into(), "$a=2".into(), "b=".into()]).unwrap();
    assert_eq!(v["a"], ["1", "2"]);
    assert_eq!(v["b"], [""]);
    assert!(parse_vars(&["novalue".into()]).is_err());
    assert!(parse_vars(&["a b=1".into()]).is_err());
}

#[test]
fn builtins_and_unknown_variables() {
    use super::vars::{interpolate, Builtins};
    let b = Builtins {
        from_ms: START,
        to_ms: START + 3_600_000,
        interval_ms: 15_000,
        rate_interval_ms: 60_000,
    };
    let mut used = BTreeSet::new();
    let mut undefined = BTreeSet::new();
    let s = interpolate(
        "$__interval $__interval_ms $__rate_interval $__range $__range_s $__range_ms $__from ${__to:date:seconds} ${__from:date:iso} $1 $nope",
        &HashMap::new(),
        &b,
        &mut used,
        &mut undefined,
    );
    assert_eq!(
        s,
        "15s 15000 1m 3600s 3600 3600000 1700000000000 1700003600 2023-11-14T22:13:20.000Z $1 $nope"
    );
    assert!(used.is_empty());
    assert_eq!(undefined, BTreeSet::from(["nope".to_string()]));
    assert_eq!(vars::format_duration(5_415_250), "1h30m15s250ms");
    assert_eq!(vars::round_interval(288_000), 300_000);
    assert_eq!(vars::round_interval(24_000), 20_000);
}

#[test]
fn widened_values_never_select_everything() {
    use promql_parser::parser::{parse, Expr};
    let conv = |e: &str| match parse(e).unwrap() {
        Expr::VectorSelector(vs) => promql::convert(&vs),
        other => panic!("{other:?}"),
    };
    let any = vars::ANY;
    assert!(conv(&format!("{any}{{cluster=\"a\"}}")).is_err());
    assert!(conv(&format!("{{cluster=~\"{any}\", x!=\"{any}\"}}")).is_err());
    let s = conv(&format!("up{{instance=\"{any}:9100\", job!=\"{any}\"}}")).unwrap();
    assert_eq!(s[0].text, r#"up{instance=~".*:9100"}"#);
    let s = conv(&format!("{any}_total{{a=\"b\"}}")).unwrap();
    assert_eq!(s[0].text, r#"{__name__=~".*_total", a="b"}"#);
}

#[test]
fn raw_strings_keep_backslashes() {
    let ex = promql::extract(r#"up{a=~`x\.y`, b="`"} # `c`"#, START, END).unwrap();
    assert_eq!(ex.selectors[0].text, r#"up{a=~"x\\.y", b="`"}"#);
    assert!(promql::extract("up{a=~`x", START, END).is_err());
}

/// PromQL-ish text from tokens the parser and the conversion care about.
fn promqlish() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let tokens = prop::sample::select(vec![
        "up",
        "es_x",
        "{",
        "}",
        "(",
        ")",
        "[5m]",
        "[1h:1m]",
        " offset 1d",
        " offset -5m",
        " @ start()",
        " @ 100",
        " @ 1e300",
        "a=\"b\"",
        "a=~\"$cluster\"",
        "a!~\"x|y\"",
        ",",
        " or ",
        " unless ",
        " and ",
        "rate(",
        "sum by (a) (",
        "absent(",
        "vector(1)",
        "1",
        " + ",
        "`x\\.y`",
        "\"",
        "'q'",
        "#c\n",
        "$cluster",
        "${cluster:regex}",
        "[[cluster]]",
        "__prom2om_any__",
        "label_values(",
        "metrics(",
        "query_result(",
        "label_names(",
        "\"service.name\"",
        "{\"m.n\"}",
        "a=\"\\u00e9\"",
        "[$__range]",
    ]);
    prop::collection::vec(tokens, 0..12).prop_map(|t| t.concat())
}

proptest::proptest! {
    #[test]
    fn fuzz_random_bytes(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        fuzz_dashboard(&data);
    }

    #[test]
    fn fuzz_promql_like_text(expr in promqlish()) {
        fuzz_dashboard(expr.as_bytes());
        let dash = serde_json::json!({
            "templating": {"list": [{"name": "cluster", "type": "custom", "query": "x,y"}]},
            "panels": [{"title": "p", "targets": [{"refId": "A", "expr": expr}]}],
        });
        fuzz_dashboard(dash.to_string().as_bytes());
    }
}

#[test]
fn data_after_the_window_is_noted() {
    let ex = promql::extract("up offset -10m", START, END).unwrap();
    assert_eq!(ex.reach_ms, 0);
    assert!(
        ex.notes[0].contains("needs data up to 10m after the end"),
        "{:?}",
        ex.notes
    );
    let ex = promql::extract(&format!("up @ {}", END / 1000 + 60), START, END).unwrap();
    assert!(ex.notes[0].contains("up to 1m after"), "{:?}", ex.notes);
    // `@` long before the window reaches back to it.
    let ex = promql::extract(&format!("up @ {}", START / 1000 - 3600), START, END).unwrap();
    assert_eq!(ex.reach_ms, 3_600_000 + promql::LOOKBACK_MS);
}

#[test]
fn expressions_too_large_to_analyse_are_refused_before_parsing() {
    let terms = |n: usize| {
        (0..n)
            .map(|i| format!("m{i}{{a=\"x+y-z\"}}"))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    // 2,000 operators (a string's `+` and `-` are not operators) parse, every selector kept.
    let ex = promql::extract(&terms(2_001), 0, 3_600_000).unwrap();
    assert_eq!(ex.selectors.len(), 2_001);
    let e = promql::extract(&terms(2_002), 0, 3_600_000).err().unwrap();
    assert!(
        e.starts_with("too large to analyse: 2001 binary operators (at most 2000)"),
        "{e}"
    );
    let e = promql::extract("up and up or up unless up", 0, 1).map(|x| x.selectors.len());
    assert_eq!(e, Ok(4));
    let deep = format!("{}up{}", "(".repeat(257), ")".repeat(257));
    let e = promql::extract(&deep, 0, 1).err().unwrap();
    assert!(
        e.starts_with("too deeply nested to analyse: 257 levels"),
        "{e}"
    );
    assert!(promql::extract(&format!("{}up{}", "(".repeat(256), ")".repeat(256)), 0, 1).is_ok());
}

/// The union's indexed comparison keeps what comparing every pair keeps.
#[test]
fn union_of_many_metrics_is_what_pairwise_comparison_gives() {
    let texts = [
        "a",
        "a{x=\"1\"}",
        "b{x=\"1\"}",
        "{__name__=~\"a|b\"}",
        "{x=\"1\"}",
        "c{x=~\".*\"}",
        "c",
        "{__name__=~\"c.*\"}",
        "d{y=\"2\"}",
        "{__name__=~\"d|e\", y=\"2\"}",
        "e",
    ];
    let selectors: Vec<Selector> = texts.iter().map(|t| Selector::parse(t).unwrap()).collect();
    let r = Report {
        selectors: selectors.clone(),
        ..Report::default()
    };
    let brute: Vec<String> = (0..selectors.len())
        .filter(|&i| {
            let s = &selectors[i];
            !selectors
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && s.covered_by(o) && (j < i || !o.covered_by(s)))
        })
        .map(|i| selectors[i].text.clone())
        .collect();
    let got: Vec<String> = union(&[r]).into_iter().map(|s| s.text).collect();
    assert_eq!(got, brute);
    assert!(got.len() < texts.len(), "{got:?}");
}
