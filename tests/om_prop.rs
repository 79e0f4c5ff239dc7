//! Property tests of the OpenMetrics writer and reader: whatever the labels, values and
//! timestamps, write -> read gives them back exactly, and every timestamp reads back as the
//! millisecond it was written for under Go's `int64(ParseFloat(s) * 1000)`.

use proptest::prelude::*;

use prom2om::format::openmetrics::{
    read, timestamp_reads_back, write_sample, write_series_prefix, write_timestamp, EOF_LINE,
    MAX_ABS_TIMESTAMP_MS,
};
use prom2om::labels::{Labels, METRIC_NAME};

/// Names and values: classic names, awkward ASCII (quotes, backslashes, newlines, control
/// characters, OpenMetrics punctuation) and arbitrary Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        "[a-z\"\\\\\n\t\r\u{0}-\u{1f}\u{7f}.:{}=, #é\u{10ffff}]{0,8}",
        any::<String>(),
    ]
}

fn labels() -> impl Strategy<Value = Labels> {
    let name = text().prop_filter("a metric name", |s| !s.is_empty());
    let pairs = proptest::collection::vec(
        (
            text().prop_filter("a label name", |s| !s.is_empty() && s != METRIC_NAME),
            text(),
        ),
        0..4,
    );
    (name, pairs).prop_map(|(name, pairs)| {
        let mut l = Labels::from_pairs(pairs);
        l.set(METRIC_NAME, &name);
        l
    })
}

fn ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        -MAX_ABS_TIMESTAMP_MS..=MAX_ABS_TIMESTAMP_MS,
        -100_000i64..100_000,
        1_690_000_000_000i64..1_710_000_000_000,
    ]
}

/// Any bits, with the special values often: NaNs (the staleness marker among them), infinities,
/// zeros, subnormals.
fn value_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        prop::sample::select(vec![
            0x7ff0_0000_0000_0002, // staleness marker
            0x7ff8_0000_0000_0001, // Go's NaN
            f64::NAN.to_bits(),
            f64::INFINITY.to_bits(),
            f64::NEG_INFINITY.to_bits(),
            (-0.0f64).to_bits(),
            0,
            1,
            f64::MAX.to_bits(),
        ]),
    ]
}

type Series = (Labels, Vec<(u64, i64)>);

/// Distinct series, each with strictly increasing timestamps, grouped by metric name as a
/// writer must group them.
fn shard() -> impl Strategy<Value = Vec<Series>> {
    let series = (
        labels(),
        proptest::collection::vec((value_bits(), ms()), 1..6),
    );
    proptest::collection::vec(series, 1..8).prop_map(|mut v| {
        v.sort_by(|a, b| (a.0.metric_name(), &a.0).cmp(&(b.0.metric_name(), &b.0)));
        v.dedup_by(|a, b| a.0 == b.0);
        for (_, samples) in &mut v {
            samples.sort_by_key(|s| s.1);
            samples.dedup_by_key(|s| s.1);
        }
        v
    })
}

fn ts_text(ms: i64) -> Vec<u8> {
    let mut out = Vec::new();
    write_timestamp(ms, &mut out);
    out
}

/// The exact decimal of `ms / 1000`, without trailing zeros.
fn exact_decimal(ms: i64) -> String {
    let abs = ms.unsigned_abs();
    let sign = if ms < 0 { "-" } else { "" };
    let frac = format!("{:03}", abs % 1000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{sign}{}", abs / 1000)
    } else {
        format!("{sign}{}.{frac}", abs / 1000)
    }
}

/// The writer's choice: the exact decimal when Go reads it back right, else the float64 next
/// to `ms/1000` away from zero, which must then read back right.
fn check_timestamp(ms: i64) {
    let text = ts_text(ms);
    let s = std::str::from_utf8(&text).unwrap();
    assert_eq!(timestamp_reads_back(&text), Some(ms), "{ms} written as {s}");
    assert!(!s.contains(['e', 'E']), "{s}");
    let exact = exact_decimal(ms);
    if s != exact {
        assert_ne!(
            timestamp_reads_back(exact.as_bytes()),
            Some(ms),
            "{ms}: {s}"
        );
        let nearest = exact.parse::<f64>().unwrap();
        let next = f64::from_bits(nearest.to_bits() + 1);
        assert_eq!(
            s.parse::<f64>().unwrap().to_bits(),
            next.to_bits(),
            "{ms}: {s}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn write_then_read_gives_everything_back(shard in shard()) {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        for (labels, samples) in &shard {
            prefix.clear();
            write_series_prefix(labels, &mut prefix);
            for &(bits, ms) in samples {
                write_sample(&prefix, f64::from_bits(bits), ms, &mut out);
            }
        }
        out.extend_from_slice(EOF_LINE);
        let mut got: Vec<Series> = Vec::new();
        let stats = read(&out, |s| {
            if s.new_series {
                got.push((s.labels.clone(), Vec::new()));
            }
            got.last_mut().unwrap().1.push((s.value.to_bits(), s.ts_ms));
            Ok(())
        });
        let stats = match stats {
            Ok(st) => st,
            Err(e) => panic!("{e:#}\n{}", String::from_utf8_lossy(&out)),
        };
        prop_assert_eq!(stats.series as usize, shard.len());
        prop_assert_eq!(got.len(), shard.len());
        for ((want_l, want_s), (got_l, got_s)) in shard.iter().zip(&got) {
            prop_assert_eq!(want_l, got_l);
            prop_assert_eq!(want_s.len(), got_s.len());
            for (&(wb, wt), &(gb, gt)) in want_s.iter().zip(got_s) {
                prop_assert_eq!(wt, gt);
                let (w, g) = (f64::from_bits(wb), f64::from_bits(gb));
                prop_assert!(wb == gb || (w.is_nan() && g.is_nan()), "{w:?} read as {g:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn timestamps_read_back_exactly(ms in ms()) {
        check_timestamp(ms);
    }
}

#[test]
fn timestamps_read_back_exactly_in_dense_ranges() {
    let now = 1_700_000_000_000i64;
    let edges = [0, now, 1 << 41, 1 << 52, MAX_ABS_TIMESTAMP_MS - 100_000];
    for edge in edges {
        for ms in edge - 100_000..edge + 100_000 {
            if ms.abs() <= MAX_ABS_TIMESTAMP_MS {
                check_timestamp(ms);
                check_timestamp(-ms);
            }
        }
    }
}
