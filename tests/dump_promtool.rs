//! Checks the dump format against the real promtool: backfill awkward label values and floats
//! from OpenMetrics, dump the block, and require `write_line` to print every line byte for byte
//! as promtool did (and `parse_line` + `decode_labels` to read back what went in).

mod common;

use prom2om::format::dump::{decode_labels, parse_line, write_line, Value};
use prom2om::labels::Labels;

/// Series to backfill: a label value (raw, as Prometheus stores it) and a float written as the
/// OpenMetrics text gives it.
const SERIES: &[(&str, &str)] = &[
    ("tab\there", "1"),
    ("ctrl\x01\x1fdel\x7f", "1000000"),
    ("accent é", "-0"),
    ("emoji 😀", "2.5e-10"),
    ("zero\u{200b}width", "1.7976931348623157e+308"),
    (
        "nbsp\u{a0} shy\u{ad} nel\u{85} bom\u{feff} ls\u{2028}",
        "+Inf",
    ),
    ("quote \" backslash \\ newline \n", "-Inf"),
    ("private \u{e000} tag \u{e0001}", "NaN"),
    ("plain", "5e-324"),
    ("cjk 中文 rtl ש", "1234567"),
];

/// OpenMetrics escapes only `\\`, `\"` and `\n` in label values; every other byte goes raw.
fn om_escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[test]
fn write_line_matches_promtool_dump_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("in.om");
    let db = dir.path().join("db");
    let mut text = String::from("# TYPE awkward gauge\n");
    for (i, (value, float)) in SERIES.iter().enumerate() {
        let v = om_escape(value);
        let ts = 1_700_000_000 + i;
        text.push_str(&format!(
            "awkward{{Zeta=\"{i}\",odd=\"{v}\"}} {float} {ts}\n"
        ));
    }
    text.push_str("# EOF\n");
    std::fs::write(&om, text).unwrap();
    common::backfill(&om, &db);
    let dump = common::dump(&db, None);

    let lines: Vec<&[u8]> = dump
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        SERIES.len(),
        "{}",
        String::from_utf8_lossy(&dump)
    );
    let mut seen = vec![false; SERIES.len()];
    for raw in lines {
        let shown = String::from_utf8_lossy(raw);
        let line = parse_line(raw).unwrap_or_else(|e| panic!("{shown}: {e}"));
        let labels = decode_labels(line.labels).unwrap_or_else(|e| panic!("{shown}: {e}"));
        let Value::Float(v) = line.value else {
            panic!("histogram in {shown}")
        };
        // Reprinting must give promtool's bytes exactly.
        let mut out = Vec::new();
        write_line(&labels, v, line.ts, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("{shown}\n"),
            "reprinted line differs"
        );
        // And what was read back is what went in.
        let i: usize = labels.get("Zeta").unwrap().parse().unwrap();
        let (value, float) = SERIES[i];
        let want = Labels::from_pairs([
            ("__name__", "awkward"),
            ("Zeta", &*i.to_string()),
            ("odd", value),
        ]);
        assert_eq!(labels, want);
        let want_v: f64 = float.parse().unwrap();
        assert!(
            v.to_bits() == want_v.to_bits() || (v.is_nan() && want_v.is_nan()),
            "{shown}"
        );
        assert_eq!(line.ts, (1_700_000_000 + i as i64) * 1000);
        seen[i] = true;
    }
    assert!(seen.iter().all(|&s| s));
}
