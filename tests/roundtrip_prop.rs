//! The whole chain as a property: random label sets and values, printed as promtool's dump prints
//! them (Go quoting, `%g`), parsed by the dump parser, written as OpenMetrics, and read back by the
//! OpenMetrics reader with Prometheus' semantics: the same labels, value bits and milliseconds.

use prom2om::format::{dump, openmetrics};
use prom2om::labels::Labels;
use proptest::prelude::*;

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
        // Prometheus 3 names: dots, dashes, any UTF-8.
        "[a-z][a-z0-9_.\\-]{0,8}",
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\"\\\\\n\t\r\u{7}\u{1b}\u{7f}a\u{200b}\u{feff}é😀 ]{1,12}",
    ]
    .prop_filter("empty values are absent labels", |v| !v.is_empty())
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("not NaN", |v| !v.is_nan()),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        any::<i32>().prop_map(|i| i as f64 / 100.0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dump_to_openmetrics_and_back(
        name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}|[a-z][a-z0-9.]{0,10}",
        pairs in proptest::collection::vec((label_name(), label_value()), 0..6),
        v in value(),
        ts in -1_000_000_000_000i64..9_000_000_000_000i64,
    ) {
        let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(n, _)| n != "__name__").collect();
        let labels = Labels::from_pairs(std::iter::once(("__name__".to_string(), name)).chain(pairs));
        let mut line = Vec::new();
        dump::write_line(&labels, v, ts, &mut line);
        let parsed = dump::parse_line(line.strip_suffix(b"\n").unwrap()).unwrap();
        let decoded = dump::decode_labels(parsed.labels).unwrap();
        prop_assert_eq!(&decoded, &labels);
        let dump::Value::Float(pv) = parsed.value else { panic!("not a float") };
        let mut om = Vec::new();
        let mut prefix = Vec::new();
        openmetrics::write_series_prefix(&decoded, &mut prefix);
        openmetrics::write_sample(&prefix, pv, parsed.ts, &mut om);
        om.extend_from_slice(openmetrics::EOF_LINE);
        let mut seen = Vec::new();
        openmetrics::read(&om, |s| {
            seen.push((s.labels.clone(), s.value, s.ts_ms));
            Ok(())
        }).unwrap();
        prop_assert_eq!(seen.len(), 1);
        let (l, rv, rts) = &seen[0];
        prop_assert_eq!(l, &labels);
        prop_assert_eq!(*rts, ts);
        if v.is_nan() {
            prop_assert!(rv.is_nan());
        } else {
            prop_assert_eq!(rv.to_bits(), v.to_bits());
        }
    }
}
