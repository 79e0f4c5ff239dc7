use proptest::prelude::*;

use super::*;
use crate::format::histogram::bucket_count;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn value_text(h: &HistogramValue) -> String {
    let mut out = Vec::new();
    write_value(h, &mut out);
    String::from_utf8(out).unwrap()
}

/// A sample read: labels, timestamp, value, first of its series.
type Got = (Labels, i64, HistogramValue, bool);

/// Every sample of `text`, and the counts.
fn read_all(text: &[u8]) -> Result<(Vec<Got>, HistStats)> {
    let mut v = Vec::new();
    let st = read(text, |s| {
        let mut again = HistogramValue::Int(Histogram::default());
        parse_value(&text[s.text.clone()], &mut again).unwrap();
        assert_eq!(&again, s.value, "the text range holds the value");
        v.push((s.labels.clone(), s.ts_ms, s.value.clone(), s.new_series));
        Ok(())
    })?;
    Ok((v, st))
}

fn exponential() -> Histogram {
    Histogram {
        hint: CounterResetHint::NotCounterReset,
        schema: 3,
        zero_threshold: 1e-128f64.to_bits(),
        zero_count: 2,
        count: 12,
        sum: 100.5f64.to_bits(),
        positive_spans: vec![
            Span {
                offset: -3,
                length: 1,
            },
            Span {
                offset: 2,
                length: 2,
            },
        ],
        positive_buckets: vec![3, -2, 5],
        negative_spans: vec![Span {
            offset: 1,
            length: 1,
        }],
        negative_buckets: vec![2],
        custom_values: Vec::new(),
    }
}

#[test]
fn integer_histogram_text_is_om2_with_absolute_buckets() {
    let h = HistogramValue::Int(exponential());
    assert_eq!(
        value_text(&h),
        "{count:12,sum:100.5,schema:3,zero_threshold:1e-128,zero_count:2,\
         negative_spans:[1:1],negative_buckets:[2],positive_spans:[-3:1,2:2],\
         positive_buckets:[3,1,6],custom_values:[],counter_reset_hint:not_reset,kind:int}"
    );
    let mut back = HistogramValue::Float(FloatHistogram::default());
    parse_value(value_text(&h).as_bytes(), &mut back).unwrap();
    assert_eq!(back, h);
}

#[test]
fn float_histograms_nhcb_and_markers() {
    let nhcb = HistogramValue::Float(FloatHistogram {
        hint: CounterResetHint::Gauge,
        schema: -53,
        count: 7.5f64.to_bits(),
        sum: (-0.0f64).to_bits(),
        positive_spans: vec![Span {
            offset: 0,
            length: 3,
        }],
        positive_buckets: vec![1.5f64.to_bits(), 0, f64::INFINITY.to_bits()],
        custom_values: vec![0.1f64.to_bits(), 1e6f64.to_bits()],
        ..FloatHistogram::default()
    });
    assert_eq!(
        value_text(&nhcb),
        "{count:7.5,sum:-0,schema:-53,zero_threshold:0,zero_count:0,negative_spans:[],\
         negative_buckets:[],positive_spans:[0:3],positive_buckets:[1.5,0,+Inf],\
         custom_values:[0.1,1e+06],counter_reset_hint:gauge,kind:float}"
    );
    let stale = HistogramValue::Int(Histogram::stale());
    let text = value_text(&stale);
    assert!(text.starts_with("{count:0,sum:StaleNaN,"), "{text}");
    assert!(is_stale_text(text.as_bytes()));
    assert!(!is_stale_text(value_text(&nhcb).as_bytes()));
    let odd = HistogramValue::Float(FloatHistogram {
        sum: 0x7ff8_0000_0000_0001,
        count: 0xfff0_0000_dead_beef,
        ..FloatHistogram::default()
    });
    assert!(value_text(&odd).starts_with("{count:NaN:0xfff00000deadbeef,sum:NaN,"));
}

#[test]
fn a_file_reads_back_in_order_with_counts() {
    let (a, b) = (
        labels(&[("__name__", "a"), ("x", "1")]),
        labels(&[("__name__", "b")]),
    );
    let h = HistogramValue::Int(exponential());
    let m = HistogramValue::Int(Histogram::stale());
    let mut text = Vec::new();
    let mut p = Vec::new();
    openmetrics::write_series_prefix(&a, &mut p);
    write_sample(&p, &h, 1_000, &mut text);
    write_sample(&p, &m, 1_001, &mut text);
    p.clear();
    openmetrics::write_series_prefix(&b, &mut p);
    let mut v = Vec::new();
    write_value(&h, &mut v);
    write_line(&p, &v, -5, &mut text);
    text.extend_from_slice(EOF_LINE);
    let (got, st) = read_all(&text).unwrap();
    assert_eq!(
        got,
        [
            (a.clone(), 1_000, h.clone(), true),
            (a, 1_001, m, false),
            (b, -5, h, true)
        ]
    );
    assert_eq!(
        st,
        HistStats {
            series: 2,
            samples: 3,
            stale_markers: 1,
            min_ts_ms: Some(-5),
            max_ts_ms: Some(1_001),
            lines: 4,
        }
    );
    assert_eq!(read_all(b"# EOF\n").unwrap().1.samples, 0);
}

/// The error reading `body` (a value or lines) gives, as text.
fn refused(file: &str) -> String {
    let e = read_all(file.as_bytes()).unwrap_err();
    assert_eq!(
        crate::exit_codes::ExitCode::of(&e),
        crate::exit_codes::ExitCode::BadInput
    );
    format!("{e:#}")
}

const V: &str = "{count:1,sum:1,schema:0,zero_threshold:0,zero_count:0,negative_spans:[],\
                 negative_buckets:[],positive_spans:[0:1],positive_buckets:[1],custom_values:[],\
                 counter_reset_hint:unknown,kind:int}";

#[test]
fn the_reader_is_strict() {
    let ok = format!("a {V} 1\n# EOF\n");
    assert_eq!(read_all(ok.as_bytes()).unwrap().1.samples, 1);
    let cases: &[(String, &str)] = &[
        (format!("a {V} 1\n"), "ends without the \"# EOF\""),
        (format!("a {V} 1\n# EOF"), "no newline"),
        (format!("a {V} 1\n# EOF\n\n"), "data after"),
        (
            format!("# TYPE a histogram\na {V} 1\n# EOF\n"),
            "a comment line",
        ),
        (format!("a {V} 2\na {V} 1\n# EOF\n"), "is not after"),
        (format!("b {V} 1\na {V} 1\n# EOF\n"), "shards' order"),
        (
            format!("a {V} 1\nb {V} 1\na {V} 2\n# EOF\n"),
            "shards' order",
        ),
        (format!("a{{}} {V} 1\n# EOF\n"), "not written as the shards"),
        (format!("a {V}\n# EOF\n"), "no timestamp"),
        (format!("a {V} 1 2\n# EOF\n"), "invalid timestamp"),
        (format!("a {V}  1\n# EOF\n"), "invalid timestamp"),
        (
            format!("a {} 1\n# EOF\n", V.replace("[0:1]", "[0:2]")),
            "lay out 2 buckets",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("sum:1", "sum:1.0")),
            "invalid number \"1.0\"",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("count:1", "count:01")),
            "invalid number",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("count:1", "count:-1")),
            "invalid number",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("sum:1", "sum:nan")),
            "invalid number",
        ),
        (
            format!(
                "a {} 1\n# EOF\n",
                V.replace("sum:1", "sum:NaN:0x7ff8000000000001")
            ),
            "invalid number",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("schema:0", "schema:-0")),
            "invalid number",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("unknown", "never")),
            "unknown counter_reset_hint",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace(",schema:0", "")),
            "expected \",schema:\"",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("count:1", "count:1.5")),
            "invalid number",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("kind:int", "kind:x")),
            "does not end with",
        ),
        (
            format!("a {} 1\n# EOF\n", V.replace("[0:1]", "[0:1,]")),
            "missing",
        ),
        (
            format!(
                "a {} 1\n# EOF\n",
                V.replace("schema:0", "schema:9999999999")
            ),
            "out of range",
        ),
    ];
    for (file, want) in cases {
        let got = refused(file);
        assert!(got.contains(want), "{file:?}: {got}");
        assert!(got.contains("line "), "{got}");
    }
}

/// Float bits that matter: specials, NaN payloads, signed zeros, subnormals, and any bits.
fn arb_float() -> BoxedStrategy<u64> {
    prop_oneof![
        Just(STALE_NAN_BITS),
        Just(NORMAL_NAN_BITS),
        Just(f64::NAN.to_bits()),
        Just(f64::INFINITY.to_bits()),
        Just(f64::NEG_INFINITY.to_bits()),
        Just((-0.0f64).to_bits()),
        Just(0u64),
        Just(1u64),
        Just(0x800f_ffff_ffff_ffff),
        (0x7ff0_0000_0000_0001u64..=0x7fff_ffff_ffff_ffff),
        (0u64..5).prop_map(|v| (v as f64).to_bits()),
        any::<u64>(),
    ]
    .boxed()
}

fn arb_spans() -> impl Strategy<Value = Vec<Span>> {
    prop::collection::vec(
        (any::<i32>(), prop_oneof![0u32..4, Just(u32::MAX)])
            .prop_map(|(offset, length)| Span { offset, length }),
        0..4,
    )
    .prop_map(|mut v| {
        // Real bucket vectors: keep the lengths small enough to hold.
        for s in v.iter_mut() {
            s.length %= 5;
        }
        v
    })
}

fn arb_hint() -> impl Strategy<Value = CounterResetHint> {
    (0u8..4).prop_map(|b| CounterResetHint::from_u8(b).unwrap())
}

/// Spans and bucket values that fit them.
fn arb_side<T: std::fmt::Debug + Clone>(
    item: impl Strategy<Value = T> + Clone,
) -> impl Strategy<Value = (Vec<Span>, Vec<T>)> {
    arb_spans().prop_flat_map(move |spans| {
        let n = bucket_count(&spans);
        (Just(spans), prop::collection::vec(item.clone(), n))
    })
}

fn arb_value() -> impl Strategy<Value = HistogramValue> {
    let schema = prop_oneof![Just(-53), -4i32..=8, any::<i32>()].boxed();
    let custom = prop::collection::vec(arb_float(), 0..4).boxed();
    let int = (
        (
            arb_hint(),
            schema.clone(),
            arb_float(),
            any::<u64>(),
            any::<u64>(),
        ),
        (arb_float(), custom.clone()),
        arb_side(any::<i64>()),
        arb_side(any::<i64>()),
    )
        .prop_map(|((hint, schema, zt, zc, count), (sum, custom), neg, pos)| {
            HistogramValue::Int(Histogram {
                hint,
                schema,
                zero_threshold: zt,
                zero_count: zc,
                count,
                sum,
                negative_spans: neg.0,
                negative_buckets: neg.1,
                positive_spans: pos.0,
                positive_buckets: pos.1,
                custom_values: custom,
            })
        });
    let float = (
        (arb_hint(), schema, arb_float(), arb_float(), arb_float()),
        (arb_float(), custom),
        arb_side(arb_float()),
        arb_side(arb_float()),
    )
        .prop_map(|((hint, schema, zt, zc, count), (sum, custom), neg, pos)| {
            HistogramValue::Float(FloatHistogram {
                hint,
                schema,
                zero_threshold: zt,
                zero_count: zc,
                count,
                sum,
                negative_spans: neg.0,
                negative_buckets: neg.1,
                positive_spans: pos.0,
                positive_buckets: pos.1,
                custom_values: custom,
            })
        });
    prop_oneof![int, float]
}

fn arb_file() -> impl Strategy<Value = Vec<(Labels, Vec<(i64, HistogramValue)>)>> {
    let series = (
        prop_oneof![Just("a"), Just("b.c"), Just("z_bucket")],
        prop_oneof![Just(""), Just("x"), Just("q\"\\\n é")],
    );
    let samples = prop::collection::vec((1i64..5_000, arb_value()), 0..5).prop_map(|v| {
        let mut ts = -3_000;
        v.into_iter()
            .map(|(step, h)| {
                ts += step;
                (ts, h)
            })
            .collect::<Vec<_>>()
    });
    prop::collection::vec((series, samples), 0..5).prop_map(|v| {
        let mut all: Vec<(Labels, Vec<(i64, HistogramValue)>)> = v
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|((name, val), s)| (labels(&[("__name__", name), ("l", val)]), s))
            .collect();
        all.sort_by(|a, b| rank_key(&a.0).cmp(&rank_key(&b.0)));
        all.dedup_by(|a, b| a.0 == b.0);
        all
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_field_round_trips(h in arb_value()) {
        let text = value_text(&h);
        prop_assert!(!text.contains(' '));
        let mut back = HistogramValue::Int(Histogram::default());
        parse_value(text.as_bytes(), &mut back).unwrap();
        prop_assert_eq!(&back, &h);
        prop_assert_eq!(is_stale_text(text.as_bytes()), h.is_stale());
        prop_assert_eq!(layout_problem(&h), None);
    }

    #[test]
    fn files_round_trip(file in arb_file()) {
        let mut text = Vec::new();
        let mut want = Vec::new();
        for (l, samples) in &file {
            let mut p = Vec::new();
            openmetrics::write_series_prefix(l, &mut p);
            for (i, (ts, h)) in samples.iter().enumerate() {
                write_sample(&p, h, *ts, &mut text);
                want.push((l.clone(), *ts, h.clone(), i == 0));
            }
        }
        text.extend_from_slice(EOF_LINE);
        let (got, st) = read_all(&text).unwrap();
        prop_assert_eq!(st.samples, want.len() as u64);
        prop_assert_eq!(st.series, file.len() as u64);
        prop_assert_eq!(got, want);
        fuzz_histtext(&text);
    }

    #[test]
    fn fuzz_never_panics(data in prop::collection::vec(any::<u8>(), 0..300)) {
        fuzz_histtext(&data);
    }

    #[test]
    fn fuzz_damaged_files(file in arb_file(), at in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut text = Vec::new();
        for (l, samples) in &file {
            let mut p = Vec::new();
            openmetrics::write_series_prefix(l, &mut p);
            for (ts, h) in samples {
                write_sample(&p, h, *ts, &mut text);
            }
        }
        text.extend_from_slice(EOF_LINE);
        let i = at.index(text.len());
        text[i] = b;
        fuzz_histtext(&text);
        text.truncate(i);
        fuzz_histtext(&text);
    }
}

#[test]
fn the_readme_s_example_line_is_what_the_writer_writes() {
    let readme = include_str!("../../README.md");
    let line = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("rpc_seconds{job=\"api\"} {count:"))
        .expect("the example line");
    let file = format!("{line}\n# EOF\n");
    let (got, _) = read_all(file.as_bytes()).unwrap();
    let (l, ts, h, _) = &got[0];
    assert_eq!(*ts, 1_700_000_015_000);
    let mut p = Vec::new();
    openmetrics::write_series_prefix(l, &mut p);
    let mut again = Vec::new();
    write_sample(&p, h, *ts, &mut again);
    assert_eq!(String::from_utf8(again).unwrap(), format!("{line}\n"));
    let HistogramValue::Int(h) = h else {
        panic!("an integer histogram")
    };
    assert_eq!(
        h.positive_buckets,
        [3, 2, -3],
        "absolute in the text, deltas in the model"
    );
}
