use super::*;
use crate::format::histogram::CounterResetHint;
use crate::format::tsdb::histogram::tests::{float_bits, layout};
use crate::format::tsdb::histogram_append::Appended;
use proptest::prelude::*;

/// Samples that share a layout, staleness markers only at the end, hints as decoded.
fn samples() -> impl Strategy<Value = Vec<(i64, FloatHistogram)>> {
    (
        layout(),
        0u8..4,
        1usize..40,
        0usize..3,
        any::<i64>(),
        proptest::collection::vec((any::<i64>(), float_bits(), float_bits(), float_bits()), 40),
        proptest::collection::vec(float_bits(), 16),
    )
        .prop_map(
            |((schema, zt, p, n, custom), hint, len, stale, t0, vals, buckets)| {
                let first = CounterResetHint::from_u8(hint).unwrap();
                let later = if first == CounterResetHint::Gauge {
                    first
                } else {
                    CounterResetHint::NotCounterReset
                };
                let (np, nn) = (bucket_count(&p), bucket_count(&n));
                let mut t = t0 >> 2;
                let mut out = Vec::new();
                for (i, (dt, count, zc, sum)) in vals.into_iter().take(len).enumerate() {
                    t = t.wrapping_add(dt >> (i % 50));
                    let hint = if i == 0 { first } else { later };
                    if i + stale >= len {
                        out.push((
                            t,
                            FloatHistogram {
                                hint,
                                ..FloatHistogram::stale()
                            },
                        ));
                        continue;
                    }
                    let rot = |k: usize| buckets[(k + i) % buckets.len()];
                    out.push((
                        t,
                        FloatHistogram {
                            hint,
                            schema,
                            zero_threshold: zt,
                            zero_count: zc,
                            count,
                            sum: if is_stale(sum) { 0 } else { sum },
                            positive_spans: p.clone(),
                            negative_spans: n.clone(),
                            positive_buckets: (0..np).map(rot).collect(),
                            negative_buckets: (0..nn).map(|k| rot(k + 7)).collect(),
                            custom_values: custom.clone(),
                        },
                    ));
                }
                out
            },
        )
}

fn decoded(chunk: &[u8], st: bool) -> Vec<(i64, i64, FloatHistogram)> {
    let mut got = Vec::new();
    super::decode(chunk, st, |s| got.push((s.st, s.t, s.h.clone()))).unwrap();
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn encoder_and_decoder_round_trip(s in samples()) {
        let chunk = encode(&s).unwrap();
        let got: Vec<(i64, FloatHistogram)> =
            decoded(&chunk, false).into_iter().map(|(_, t, h)| (t, h)).collect();
        prop_assert_eq!(got, s);
    }

    #[test]
    fn start_time_encoding_round_trips(
        s in samples(),
        sts in proptest::collection::vec(prop_oneof![Just(0i64), 0i64..3, any::<i64>()], 40),
    ) {
        let mut e = Encoder::with_start_times();
        e.set_header(CounterResetHeader::of_hint(s[0].1.hint));
        for ((t, h), st) in s.iter().zip(&sts) {
            e.push(*st, *t, h).unwrap();
        }
        let got = decoded(&e.finish(), true);
        prop_assert_eq!(got.len(), s.len());
        for ((st, t, h), ((wt, wh), wst)) in got.into_iter().zip(s.iter().zip(&sts)) {
            prop_assert_eq!((st, t, &h), (*wst, *wt, wh));
        }
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzz_float_histogram_chunk(&data);
    }

    #[test]
    fn damaged_chunks_never_panic(s in samples(), edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..4), cut in any::<usize>()) {
        let mut chunk = encode(&s).unwrap();
        for (i, x) in edits {
            let n = chunk.len();
            chunk[i % n] ^= x;
        }
        chunk.truncate(cut % (chunk.len() + 1));
        fuzz_float_histogram_chunk(&chunk);
    }
}

/// A float counter histogram from absolute positive bucket counts by index.
fn counts(t: i64, buckets: &[(i32, f64)]) -> (i64, FloatHistogram) {
    let (t, h) = crate::format::tsdb::histogram::tests::counts(
        t,
        &buckets.iter().map(|&(i, _)| (i, 0)).collect::<Vec<_>>(),
    );
    let count: f64 = buckets.iter().map(|b| b.1).sum();
    let f = FloatHistogram {
        count: count.to_bits(),
        sum: (count * 0.25).to_bits(),
        positive_buckets: buckets.iter().map(|b| b.1.to_bits()).collect(),
        ..h.to_float()
    };
    (t, f)
}

fn append_all(samples: &[(i64, FloatHistogram)]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut cur = Encoder::new();
    for (t, h) in samples {
        if let Appended::Cut(next) = cur.append(None, 0, *t, h).unwrap() {
            chunks.push(std::mem::replace(&mut cur, next).finish());
        }
    }
    chunks.push(cur.finish());
    chunks
}

fn by_index(h: &FloatHistogram) -> Vec<(i32, u64)> {
    crate::format::histogram::bucket_indices(&h.positive_spans)
        .zip(h.positive_buckets.iter().copied())
        .filter(|b| f64::from_bits(b.1) != 0.0)
        .collect()
}

#[test]
fn float_appender_recodes_and_cuts_as_prometheus() {
    use CounterResetHeader as C;
    let s = vec![
        counts(1000, &[(0, 1.5)]),
        counts(2000, &[(0, 2.0), (3, 0.0)]),
        counts(3000, &[(-1, 0.5), (0, 2.0), (3, 0.0)]),
        counts(4000, &[(-1, 1.0), (0, 2.0)]),
        counts(5000, &[(-1, 1.0), (0, 1.0)]),
    ];
    let chunks = append_all(&s);
    assert_eq!(chunks.len(), 2);
    let first = decoded(&chunks[0], false);
    for ((_, t, h), (wt, w)) in first.iter().zip(&s) {
        assert_eq!(t, wt);
        assert_eq!(by_index(h), by_index(w));
    }
    let headers: Vec<C> = chunks
        .iter()
        .map(|c| Decoder::new(c).unwrap().header())
        .collect();
    assert_eq!(headers, [C::Unknown, C::CounterReset]);
    // A schema change cuts without saying "reset"; a size cut asks the chunk before.
    let base = counts(1000, &[(0, 1.0)]).1;
    let schema = FloatHistogram {
        schema: 2,
        ..base.clone()
    };
    let chunks = append_all(&[(1000, base.clone()), (2000, schema.clone())]);
    assert_eq!(Decoder::new(&chunks[1]).unwrap().header(), C::Unknown);
    let mut prev = Encoder::new();
    prev.append(None, 0, 1000, &base).unwrap();
    let mut next = Encoder::new();
    next.append(Some(&prev), 0, 2000, &schema).unwrap();
    assert_eq!(next.header(), C::NotCounterReset);
    // Gauge histograms: any layout, one chunk.
    let g = |t, b: &[(i32, f64)]| {
        let (t, mut h) = counts(t, b);
        h.hint = CounterResetHint::Gauge;
        (t, h)
    };
    let s = [g(1000, &[(0, 3.0), (2, 1.0)]), g(2000, &[(1, 1.0)])];
    let chunks = append_all(&s);
    assert_eq!(chunks.len(), 1);
    assert_eq!(Decoder::new(&chunks[0]).unwrap().header(), C::Gauge);
    for ((_, _, h), (_, w)) in decoded(&chunks[0], false).iter().zip(&s) {
        assert_eq!(by_index(h), by_index(w));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn appender_keeps_every_sample(
        steps in proptest::collection::vec((0usize..4, proptest::collection::vec((-4i32..6, 0u8..4), 0..5)), 1..30),
    ) {
        let mut cur: Vec<(i32, f64)> = Vec::new();
        let mut s = Vec::new();
        for (i, (op, add)) in steps.into_iter().enumerate() {
            let mut m: std::collections::BTreeMap<i32, f64> = if op == 0 { Default::default() } else { cur.iter().copied().collect() };
            for (idx, c) in add {
                *m.entry(idx).or_default() += c as f64 * 0.5;
            }
            cur = m.into_iter().collect();
            let (t, mut h) = counts(1000 * i as i64, &cur);
            if op == 3 {
                h.hint = CounterResetHint::Gauge;
            }
            s.push((t, h));
        }
        let chunks = append_all(&s);
        let got: Vec<(i64, FloatHistogram)> = chunks.iter().flat_map(|c| decoded(c, false)).map(|(_, t, h)| (t, h)).collect();
        prop_assert_eq!(got.len(), s.len());
        for ((t, h), (wt, w)) in got.iter().zip(&s) {
            prop_assert_eq!(t, wt);
            prop_assert_eq!((h.count, h.sum), (w.count, w.sum));
            prop_assert_eq!(by_index(h), by_index(w));
        }
    }
}
