//! `prom2om import` end to end against the real promtool and prometheus: a TSDB of awkward
//! series is dumped, converted to shards and imported (no promtool on PATH), and the server then
//! serves every sample of the source, bit for bit.

mod common;

use std::collections::BTreeSet;
use std::io::Write;

use common::{backfill, dump_lines, prom2om, run, Prom};
use prom2om::format::shard_dir::Manifest;

/// A 2h-aligned start, in seconds.
const BASE_S: i64 = 1_700_000_000 / 7200 * 7200;

/// Source data for the end-to-end test: awkward labels (quotes, backslashes, newlines, UTF-8,
/// uppercase names), values of every kind, millisecond timestamps, four 2h windows.
fn source_openmetrics() -> Vec<u8> {
    let label_sets = [
        r#"job="api",instance="10.0.0.1:9100""#,
        r#"job="api",instance="10.0.0.2:9100""#,
        r#"path="C:\\temp\\x",quote="say \"hi\"""#,
        r#"msg="line1\nline2",Zone="é-ü-😀""#,
        "",
    ];
    let values = |i: i64, s: usize| -> String {
        match (i + s as i64) % 9 {
            0 => format!("{}", i * 1000 + s as i64),
            1 => format!("-{}.25", i),
            2 => "1.5e+300".to_string(),
            3 => "1e-9".to_string(),
            4 => format!("{}", 0.1 * i as f64),
            5 => "+Inf".to_string(),
            6 => "-Inf".to_string(),
            7 => "0".to_string(),
            _ => format!("{}.5", 123456789 + i),
        }
    };
    let mut text = Vec::new();
    for (m, metric) in ["e2e_gauge", "e2e_requests_total", "e2e_temp"]
        .iter()
        .enumerate()
    {
        for (s, labels) in label_sets.iter().enumerate() {
            let sel = if labels.is_empty() {
                metric.to_string()
            } else {
                format!("{metric}{{{labels}}}")
            };
            // Every 61 s over 8 h, starting at a window boundary, with a few ms of jitter.
            for i in 0..(8 * 3600 / 61) {
                let ms = (BASE_S + i * 61) * 1000 + ((i * 7 + m as i64 + s as i64) % 997);
                writeln!(
                    text,
                    "{sel} {} {}.{:03}",
                    values(i, s),
                    ms / 1000,
                    ms % 1000
                )
                .unwrap();
            }
        }
    }
    text.extend_from_slice(b"# EOF\n");
    text
}

/// One sample: labels (name, raw value) sorted, timestamp in ms, value bits (NaN folded).
type Sample = (Vec<(String, String)>, i64, u64);

fn value_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// Undoes Go's strconv.Quote for what the source holds (`\\`, `\"`, `\n`; UTF-8 stays as is).
fn go_unquote(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            other => panic!("unexpected escape \\{other:?} in {s:?}"),
        }
    }
    out
}

/// Parses `promtool tsdb dump` lines: `{a="x", b="y"} VALUE TS`.
fn dump_samples(dump: &BTreeSet<String>) -> BTreeSet<Sample> {
    dump.iter()
        .map(|line| {
            let (labels, rest) = line.rsplit_once("} ").expect("dump line");
            let (value, ts) = rest.split_once(' ').unwrap();
            let mut pairs = Vec::new();
            let mut body = &labels[1..];
            while !body.is_empty() {
                let (name, after) = body.split_once("=\"").unwrap();
                // The value ends at the first `"` not escaped by a backslash.
                let bytes = after.as_bytes();
                let mut end = 0;
                while bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                pairs.push((name.to_string(), go_unquote(&after[..end])));
                body = after[end + 1..].trim_start_matches(", ");
            }
            pairs.sort();
            (
                pairs,
                ts.parse().unwrap(),
                value_bits(value.parse().unwrap()),
            )
        })
        .collect()
}

/// Samples a range selector query returns at `time_s`, via /api/v1/query.
fn query_range_selector(server: &Prom, selector: &str, time_s: i64) -> BTreeSet<Sample> {
    server
        .matrix(selector, time_s)
        .into_iter()
        .map(|(labels, ms, v)| (labels, ms, value_bits(v)))
        .collect()
}

#[test]
fn end_to_end_dump_convert_import_then_prometheus_serves_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let om = tmp.path().join("source.om");
    std::fs::write(&om, source_openmetrics()).unwrap();
    let source = tmp.path().join("source-tsdb");
    backfill(&om, &source);
    let source_dump = dump_lines(&source);
    let expected = dump_samples(&source_dump);
    assert_eq!(expected.len(), 15 * (8 * 3600 / 61) as usize);

    let dump_file = tmp.path().join("source.dump");
    std::fs::write(
        &dump_file,
        source_dump
            .iter()
            .fold(String::new(), |acc, l| acc + l + "\n"),
    )
    .unwrap();
    let shards = tmp.path().join("shards");
    let mut c = prom2om();
    c.arg("convert").arg(&dump_file).arg("-o").arg(&shards);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "convert: {out}\n{err}");
    let m = Manifest::load(&shards).unwrap();
    let windows: BTreeSet<i64> = m.shards.iter().map(|s| s.window_start_ms).collect();
    assert_eq!(
        windows.len(),
        4,
        "8 h from a window start: four 2 h windows"
    );
    assert_eq!(m.totals.samples, expected.len() as u64);

    let data = tmp.path().join("data");
    let mut c = prom2om();
    c.arg("import").arg(&shards).arg("--tsdb").arg(&data);
    // prom2om writes the blocks itself: no promtool needed at home.
    c.env("PATH", "/nonexistent-prom2om-test-path");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "import: {out}\n{err}");
    assert!(
        out.contains(&format!(
            "imported {} shards, skipped 0 (imported before), failed 0",
            m.shards.len()
        )),
        "{out}"
    );

    let server = Prom::start(&data); // keeps every sample: 100y retention
    let max_ms = expected.iter().map(|s| s.1).max().unwrap();
    let at = max_ms / 1000 + 1;
    let mut got = BTreeSet::new();
    for metric in ["e2e_gauge", "e2e_requests_total", "e2e_temp"] {
        got.extend(query_range_selector(&server, &format!("{metric}[1d]"), at));
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "sample count served by prometheus"
    );
    assert_eq!(got, expected);
    // A narrower selector over the same server: only its series, every sample of them.
    let one = query_range_selector(&server, r#"e2e_temp{quote="say \"hi\""}[1d]"#, at);
    let want: BTreeSet<Sample> = expected
        .iter()
        .filter(|s| {
            s.0.contains(&("__name__".into(), "e2e_temp".into()))
                && s.0.contains(&("quote".into(), "say \"hi\"".into()))
        })
        .cloned()
        .collect();
    assert_eq!(one, want);
    assert!(!one.is_empty());
}
