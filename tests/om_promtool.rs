//! The writer against the real `promtool` (2.42): backfill what it writes, dump the block, and
//! find every label, value and millisecond timestamp exactly as intended. The expected dump
//! lines are written by hand in Go's format (`%s %g %d`, values `strconv.Quote`d).
//!
//! Only classic names: 2.42 cannot parse the quoted-name syntax (`{"my.metric"}`) of
//! Prometheus 3, which the writer uses for other names.

mod common;

use prom2om::format::openmetrics::{
    timestamp_reads_back, write_sample, write_series_prefix, EOF_LINE,
};
use prom2om::labels::Labels;

/// Backfills `om` into a fresh TSDB and returns `promtool tsdb dump`'s lines, sorted.
fn backfill_and_dump(om: &[u8]) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("in.om");
    std::fs::write(&file, om).unwrap();
    let db = tmp.path().join("db");
    common::backfill(&file, &db);
    let dump = String::from_utf8(common::dump(&db, None)).expect("promtool prints UTF-8");
    let mut lines: Vec<String> = dump.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

struct Om(Vec<u8>);

impl Om {
    fn new() -> Om {
        Om(Vec::new())
    }

    fn series(&mut self, pairs: &[(&str, &str)], samples: &[(f64, i64)]) {
        let mut prefix = Vec::new();
        write_series_prefix(&Labels::from_pairs(pairs.iter().copied()), &mut prefix);
        for &(v, ts) in samples {
            write_sample(&prefix, v, ts, &mut self.0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(EOF_LINE);
        self.0
    }
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn awkward_labels_values_and_small_timestamps_come_back_exact() {
    let mut om = Om::new();
    // 1001, 1002, 2003, 4097 and 7199999 are among those whose exact decimal Go reads 1 ms short.
    om.series(
        &[("__name__", "m"), ("a", "v")],
        &[
            (1.0, 1),
            (1e6, 999),
            (0.1, 1000),
            (-0.0, 1001),
            (f64::NAN, 1003),
            (f64::INFINITY, 2002),
            (f64::NEG_INFINITY, 2046),
            (5e-324, 4007),
            (f64::MAX, 4_194_302),
            (123456789.123, 7_199_999),
        ],
    );
    let values = [
        "a\"b",
        "c:\\path\\",
        "line1\nline2",
        "tab\there",
        "\u{1}ctl\u{7f}",
        "é✓😀",
        "{x=y, z} # EOF",
        "\\t is not a tab",
        "zero\u{200b}width",
        " lead and trail ",
    ];
    for (i, v) in values.iter().enumerate() {
        om.series(
            &[
                ("__name__", "w"),
                ("Zeta", "Z"),
                ("_i", &i.to_string()),
                ("val", v),
            ],
            &[(i as f64, 1001 + i as i64)],
        );
    }
    let got = backfill_and_dump(&om.finish());
    let want = sorted(&[
        r#"{__name__="m", a="v"} 1 1"#,
        r#"{__name__="m", a="v"} 1e+06 999"#,
        r#"{__name__="m", a="v"} 0.1 1000"#,
        r#"{__name__="m", a="v"} -0 1001"#,
        r#"{__name__="m", a="v"} NaN 1003"#,
        r#"{__name__="m", a="v"} +Inf 2002"#,
        r#"{__name__="m", a="v"} -Inf 2046"#,
        r#"{__name__="m", a="v"} 5e-324 4007"#,
        r#"{__name__="m", a="v"} 1.7976931348623157e+308 4194302"#,
        r#"{__name__="m", a="v"} 1.23456789123e+08 7199999"#,
        r#"{Zeta="Z", __name__="w", _i="0", val="a\"b"} 0 1001"#,
        r#"{Zeta="Z", __name__="w", _i="1", val="c:\\path\\"} 1 1002"#,
        r#"{Zeta="Z", __name__="w", _i="2", val="line1\nline2"} 2 1003"#,
        r#"{Zeta="Z", __name__="w", _i="3", val="tab\there"} 3 1004"#,
        r#"{Zeta="Z", __name__="w", _i="4", val="\x01ctl\x7f"} 4 1005"#,
        r#"{Zeta="Z", __name__="w", _i="5", val="é✓😀"} 5 1006"#,
        r#"{Zeta="Z", __name__="w", _i="6", val="{x=y, z} # EOF"} 6 1007"#,
        r#"{Zeta="Z", __name__="w", _i="7", val="\\t is not a tab"} 7 1008"#,
        r#"{Zeta="Z", __name__="w", _i="8", val="zero\u200bwidth"} 8 1009"#,
        r#"{Zeta="Z", __name__="w", _i="9", val=" lead and trail "} 9 1010"#,
    ]);
    assert_eq!(got, want);
}

#[test]
fn timestamps_near_now_come_back_exact() {
    let ts = [
        1_700_000_000_000i64,
        1_700_000_000_001,
        1_700_000_000_999,
        1_700_000_012_345,
        1_700_000_015_500,
        1_700_000_030_001,
    ];
    let mut om = Om::new();
    let samples: Vec<(f64, i64)> = ts.iter().map(|&t| (0.5, t)).collect();
    om.series(&[("__name__", "now")], &samples);
    let got = backfill_and_dump(&om.finish());
    let want: Vec<String> = ts
        .iter()
        .map(|t| format!("{{__name__=\"now\"}} 0.5 {t}"))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn timestamps_that_need_a_longer_spelling_come_back_exact() {
    // In the top ~5% of each power-of-two range of ms, Go reads some exact decimals 1 ms
    // short (early 2038 here), so the writer spells them as the next float64.
    let mut ts = Vec::new();
    let mut line = Vec::new();
    for ms in 2_150_000_000_000i64.. {
        line.clear();
        prom2om::format::openmetrics::write_timestamp(ms, &mut line);
        let exact = format!("{}.{:03}", ms / 1000, ms % 1000);
        let exact = exact.trim_end_matches('0').trim_end_matches('.');
        if line != exact.as_bytes() {
            assert_ne!(timestamp_reads_back(exact.as_bytes()), Some(ms));
            ts.push(ms);
            if ts.len() == 8 {
                break;
            }
        }
    }
    let mut om = Om::new();
    let samples: Vec<(f64, i64)> = ts.iter().map(|&t| (2.0, t)).collect();
    om.series(&[("__name__", "later")], &samples);
    let got = backfill_and_dump(&om.finish());
    let want: Vec<String> = ts
        .iter()
        .map(|t| format!("{{__name__=\"later\"}} 2 {t}"))
        .collect();
    assert_eq!(got, want);
}
