//! Selector semantics against the real thing: builds a TSDB of awkward series with promtool, then
//! for each selector compares the series `promtool tsdb dump --match SEL` prints with the series
//! `Selector` picks from the full dump. Needs promtool (2.42) on PATH; fails without.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{backfill, dump};

use prom2om::labels::Labels;
use prom2om::select::selector::{any_matches, Selector};

/// One sample per series. Values of `v` exercise newlines, escapes, dots, non-ASCII digits and
/// letters; label names in capitals sort before `__name__` in the dump.
const SERIES: &str = r#"# TYPE elasticsearch_indices_docs gauge
elasticsearch_indices_docs{cluster="prod",index="logs-2024.05.01"} 1 1700000000
elasticsearch_indices_docs{cluster="prod",index="metrics"} 2 1700000000
elasticsearch_indices_docs{cluster="dev",index="logs-2024.05.02"} 3 1700000000
# TYPE elasticsearch_jvm_memory_used_bytes gauge
elasticsearch_jvm_memory_used_bytes{area="heap",cluster="prod"} 4 1700000000
elasticsearch_jvm_memory_used_bytes{area="non-heap",cluster="prod"} 5 1700000000
# TYPE elasticsearch_cluster_health_status gauge
elasticsearch_cluster_health_status{cluster="prod",color="green"} 1 1700000000
elasticsearch_cluster_health_status{cluster="prod",color="red"} 0 1700000000
# TYPE es gauge
es 6 1700000000
es{Zone="EU",cluster="prod"} 7 1700000000
# TYPE es_x gauge
es_x{x="1"} 8 1700000000
# TYPE job:requests:rate5m gauge
job:requests:rate5m{job="api"} 9 1700000000
job:requests:rate5m{job="web",instance="10.0.0.1:9090"} 10 1700000000
# TYPE up gauge
up{job="api",instance="a:1"} 1 1700000000
up{job="web",instance="b:2",env=""} 0 1700000000
up{job="API",instance="c:3"} 1 1700000000
up{job="web",instance="d:4",Upper="X",ABC="1"} 1 1700000000
# TYPE weird gauge
weird{v="line1\nline2"} 1 1700000000
weird{v="quote\"inside"} 2 1700000000
weird{v="back\\slash"} 3 1700000000
weird{v="café ✓"} 4 1700000000
weird{v="with.dots and spaces"} 5 1700000000
weird{v="ελληνικά"} 6 1700000000
weird{v="١٢٣"} 7 1700000000
weird{v="123"} 8 1700000000
weird{v="trailing\n"} 9 1700000000
weird{v="{braces}"} 10 1700000000
weird{v="a|b"} 11 1700000000
weird{v="ES_X"} 12 1700000000
weird{v="éx"} 13 1700000000
weird{v="tab\there"} 14 1700000000
# EOF
"#;

/// Selectors whose results are compared; each one is also run through promtool.
const SELECTORS: &[&str] = &[
    "up",
    "up{}",
    r#"{job="api"}"#,
    r#"{job=~"api|web"}"#,
    r#"{job=~"(?i)api"}"#,
    r#"{job!="api"}"#,
    r#"{job!~"a.*"}"#,
    r#"{instance=""}"#,
    r#"{instance!=""}"#,
    r#"{instance=~".+"}"#,
    r#"{instance=~".*"}"#,
    r#"{__name__=~"elasticsearch_.*"}"#,
    r#"{__name__=~"es"}"#,
    r#"{__name__=~"es.*"}"#,
    r#"{__name__=~"es|up"}"#,
    r#"{__name__=~"elasticsearch_(indices|jvm)_.*",cluster="prod"}"#,
    "job:requests:rate5m",
    r#"{__name__=~".*:.*"}"#,
    r#"{__name__=~".+"}"#,
    r#"weird{v=~".*"}"#,
    r#"weird{v!~".*"}"#,
    r#"weird{v=~"(?s).*line.*"}"#,
    r#"weird{v=~"line1.line2"}"#,
    r#"weird{v=~"line1\\nline2"}"#,
    r#"weird{v=~"\\w+"}"#,
    r#"weird{v=~"\\d+"}"#,
    r#"weird{v=~"\\pN+"}"#,
    r#"weird{v=~"[[:digit:]]+"}"#,
    r#"weird{v=~".*\\bx"}"#,
    r#"weird{v=~"caf\\x{e9} ✓"}"#,
    r#"weird{v=~"[^a-z]+"}"#,
    r#"weird{v=~".*\\..*"}"#,
    r#"weird{v=~"{braces}"}"#,
    r#"weird{v=~"\\{braces\\}"}"#,
    r#"weird{v="a|b"}"#,
    r#"weird{v=~"a\\|b"}"#,
    r#"weird{v=~"a|b"}"#,
    r#"weird{v="quote\"inside"}"#,
    r#"weird{v=~'back\\\\slash'}"#,
    r#"weird{v=~"\\Qback\\slash\\E"}"#,
    r#"weird{v=~"(?i)es_x"}"#,
    r#"weird{v=~"tab\\there"}"#,
    r#"weird{v=~"tab\\shere"}"#,
    r#"weird{v=~"(?i)ΕΛΛΗΝΙΚΆ"}"#,
    r#"{Upper="X"}"#,
    r#"{ABC=~"1"}"#,
    r#"{Zone=~"E."}"#,
    r#"es{Zone=~"eu"}"#,
    r#"{cluster=~"prod",__name__!~"elasticsearch_.*"}"#,
    r#"{env=""}"#,
    r#"{env!=""}"#,
    r#"{x=~".*",__name__="es_x"}"#,
    "  up  {  job = `web` , }  ",
    // Go-only regex syntax: a `{` starting no repeat, octal escapes, `[` in a class, `\Q..\E`.
    r#"weird{v=~"a{,3}|123"}"#,
    r#"weird{v=~"\\061\\62\\063"}"#,
    r#"weird{v=~"[[]|123|[\\d]{2}"}"#,
    r#"weird{v=~"\\Q{braces}\\E"}"#,
    r#"{__name__=~"up|es",job=~"(?i:api)|w.b"}"#,
    // Classes, flags and anchors inside the value regex.
    r#"weird{v=~"[^\\pL]+"}"#,
    r#"weird{v=~"\\P{Greek}+"}"#,
    r#"weird{v=~"(?i)[[:upper:]]+"}"#,
    r#"weird{v=~"[^\\W\\d]+"}"#,
    r#"weird{v=~"[^\\S]+"}"#,
    r#"weird{v=~"(?m)^trailing$\\n?"}"#,
    r#"weird{v=~"(?s)trailing."}"#,
    r#"weird{v=~"[{]braces[}]"}"#,
    r#"weird{v=~"back[\\\\]slash"}"#,
    r#"weird{v=~"(?i)CAFÉ ✓"}"#,
    r#"weird{v=~"[^[:ascii:]]+"}"#,
    r#"weird{v=~"(|1)23"}"#,
    r#"weird{v=~"(?i:A)\\|b|a|B"}"#,
    r#"weird{v=~"e+s_x|ES_X"}"#,
    r#"weird{v=~"[e-fE-F][^\\x00-\\x40]_X"}"#,
    r#"weird{v=~"12(?i)*3"}"#,
];

/// Selectors both promtool 2.42 and prom2om refuse.
const INVALID: &[&str] = &[
    "",
    "a{",
    r#"{a="1""#,
    r#"a{x="\q"}"#,
    r#"a{x="1" y="2"}"#,
    "a[5m]",
    "nan",
    "on",
    "1a",
    r#"a{x=~"("}"#,
    r#"a{x=~"\\C"}"#,
    r#"a{x=~"\\Z"}"#,
    r#"a{x=~"\\8"}"#,
    r#"a{x=~"\\u0041"}"#,
    r#"a{x=~"x{1001}"}"#,
    r#"a{x=~"(x{100}){11}"}"#,
    r#"a{x=~"a**"}"#,
    r#"a{x=~"(?x)a"}"#,
    r#"a{x=~"(?<n>a)"}"#,
    r#"a{x=~"[z-a]"}"#,
    r#"a{x=~"[[:foo:]]"}"#,
];

/// `promtool tsdb dump --match SEL DB`, successful or not.
fn promtool_dump_any(sel: &str, db: &Path) -> std::process::Output {
    Command::new(common::promtool())
        .args(["tsdb", "dump", "--match", sel])
        .arg(db)
        .output()
        .expect("running promtool")
}

/// The label part of each dump line (`{a="v", b="w"} VALUE TS`).
fn dump_label_strings(stdout: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(stdout).expect("dump is UTF-8");
    text.lines()
        .map(|line| {
            let mut parts = line.rsplitn(3, ' ');
            let (_ts, _val) = (parts.next(), parts.next());
            parts.next().expect("dump line has labels").to_string()
        })
        .collect()
}

/// Parses `{name="value", ...}` with the few Go escapes the test data produces.
fn parse_dump_labels(s: &str) -> Labels {
    let mut rest = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .expect("braces");
    let mut pairs = Vec::new();
    while !rest.is_empty() {
        let eq = rest.find("=\"").expect("name=\"value\"");
        let name = rest[..eq].to_string();
        rest = &rest[eq + 2..];
        let mut value = String::new();
        let mut chars = rest.char_indices();
        loop {
            match chars.next().expect("closing quote") {
                (_, '\\') => value.push(match chars.next().expect("escape").1 {
                    'n' => '\n',
                    't' => '\t',
                    '"' => '"',
                    '\\' => '\\',
                    e => panic!("unexpected escape \\{e} in {s}"),
                }),
                (i, '"') => {
                    rest = &rest[i + 1..];
                    break;
                }
                (_, c) => value.push(c),
            }
        }
        rest = rest.strip_prefix(", ").unwrap_or(rest);
        pairs.push((name, value));
    }
    Labels::from_pairs(pairs)
}

fn build_tsdb(dir: &Path) -> PathBuf {
    let om = dir.join("series.om");
    std::fs::write(&om, SERIES).unwrap();
    let db = dir.join("db");
    backfill(&om, &db);
    db
}

#[test]
fn selectors_select_what_promtool_selects() {
    let tmp = tempfile::tempdir().unwrap();
    let db = build_tsdb(tmp.path());
    let all: Vec<(String, Labels)> = dump_label_strings(&dump(&db, None))
        .into_iter()
        .map(|s| {
            let l = parse_dump_labels(&s);
            (s, l)
        })
        .collect();
    assert_eq!(
        all.len(),
        SERIES.lines().filter(|l| !l.starts_with('#')).count()
    );

    let mut failures = Vec::new();
    let mut proper_subsets = 0;
    for sel in SELECTORS {
        let want: BTreeSet<String> = dump_label_strings(&dump(&db, Some(sel)))
            .into_iter()
            .collect();
        let s = Selector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e:#}"));
        let got: BTreeSet<String> = all
            .iter()
            .filter(|(_, l)| s.matches(l))
            .map(|(r, _)| r.clone())
            .collect();
        if !want.is_empty() && want.len() < all.len() {
            proper_subsets += 1;
        }
        if got != want {
            failures.push(format!(
                "{sel}\n  only promtool: {:?}\n  only prom2om: {:?}",
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "selections differ:\n{}",
        failures.join("\n")
    );
    // Guard against a vacuous comparison (promtool printing nothing, say).
    assert!(
        proper_subsets >= 40,
        "only {proper_subsets} selectors select a proper subset"
    );
}

#[test]
fn rejects_what_promtool_rejects() {
    let tmp = tempfile::tempdir().unwrap();
    let db = build_tsdb(tmp.path());
    for sel in INVALID {
        let out = promtool_dump_any(sel, &db);
        assert!(!out.status.success(), "promtool accepted {sel:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("parse error"), "{sel:?}: {err}");
        assert!(Selector::parse(sel).is_err(), "prom2om accepted {sel:?}");
    }
}

#[test]
fn several_selectors_are_a_union() {
    let tmp = tempfile::tempdir().unwrap();
    let db = build_tsdb(tmp.path());
    let sels = [r#"{job="api"}"#, r#"weird{v=~"\\d+"}"#].map(|s| Selector::parse(s).unwrap());
    let mut want = BTreeSet::new();
    for s in &sels {
        want.extend(dump_label_strings(&dump(&db, Some(&s.text))));
    }
    let got: BTreeSet<String> = dump_label_strings(&dump(&db, None))
        .into_iter()
        .filter(|r| any_matches(&sels, &parse_dump_labels(r)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 3);
}
