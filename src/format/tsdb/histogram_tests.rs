use super::*;
use crate::format::histogram::{CounterResetHint, Span, CUSTOM_BUCKETS_SCHEMA};
use crate::format::tsdb::histogram_append::Appended;
use proptest::prelude::*;

/// Spans of random gaps and lengths, and how many buckets they lay out.
pub(crate) fn spans() -> impl Strategy<Value = Vec<Span>> {
    proptest::collection::vec((-3i32..4, 0u32..4), 0..4).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (o, l))| Span {
                offset: if i == 0 { o - 2 } else { o.abs() },
                length: l,
            })
            .collect()
    })
}

/// A float's bits that survive the layout's encodings exactly (no negative zero).
pub(crate) fn float_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        (0u32..40_000_000).prop_map(|n| (n as f64 / 1000.0).to_bits()),
        any::<u64>().prop_filter("not -0.0", |b| *b != (-0.0f64).to_bits()),
        Just(2f64.powi(-128).to_bits()),
        Just(f64::INFINITY.to_bits()),
    ]
}

/// A layout every sample of a chunk shares: schema, zero threshold, spans, custom bounds.
pub(crate) fn layout() -> impl Strategy<Value = (i32, u64, Vec<Span>, Vec<Span>, Vec<u64>)> {
    (
        prop_oneof![-4i32..=8, Just(CUSTOM_BUCKETS_SCHEMA), Just(12)],
        float_bits(),
        spans(),
        spans(),
        proptest::collection::vec(float_bits(), 0..6),
    )
        .prop_map(|(schema, zt, p, n, custom)| {
            if schema == CUSTOM_BUCKETS_SCHEMA {
                (schema, 0, p, Vec::new(), custom)
            } else {
                (schema, zt, p, n, Vec::new())
            }
        })
}

/// Samples that share a layout, with staleness markers only at the end (after one, Prometheus
/// appends nothing else to a chunk), hints as decoding gives them back.
fn samples() -> impl Strategy<Value = Vec<(i64, Histogram)>> {
    (
        layout(),
        0u8..4,
        1usize..40,
        0usize..3,
        any::<i64>(),
        proptest::collection::vec(any::<(i64, u64, u64, u64, [i64; 16])>(), 40),
    )
        .prop_map(|((schema, zt, p, n, custom), hint, len, stale, t0, vals)| {
            let first = CounterResetHint::from_u8(hint).unwrap();
            let later = if first == CounterResetHint::Gauge {
                first
            } else {
                CounterResetHint::NotCounterReset
            };
            let (np, nn) = (bucket_count(&p), bucket_count(&n));
            let mut t = t0 >> 2;
            let mut out = Vec::new();
            for (i, (dt, count, zc, sum, b)) in vals.into_iter().take(len).enumerate() {
                t = t.wrapping_add(dt >> (i % 50));
                let hint = if i == 0 { first } else { later };
                if i + stale >= len {
                    out.push((
                        t,
                        Histogram {
                            hint,
                            ..Histogram::stale()
                        },
                    ));
                    continue;
                }
                let shift = (i % 4) as u32 * 16;
                out.push((
                    t,
                    Histogram {
                        hint,
                        schema,
                        zero_threshold: zt,
                        zero_count: zc >> shift,
                        count: count >> shift,
                        sum: if sum == crate::format::value::STALE_NAN_BITS {
                            0
                        } else {
                            sum
                        },
                        positive_spans: p.clone(),
                        negative_spans: n.clone(),
                        positive_buckets: b.iter().take(np).map(|x| x >> (shift + 8)).collect(),
                        negative_buckets: b.iter().rev().take(nn).map(|x| x >> shift).collect(),
                        custom_values: custom.clone(),
                    },
                ));
            }
            out
        })
}

fn decoded(chunk: &[u8], st: bool) -> Vec<(i64, i64, Histogram)> {
    let mut got = Vec::new();
    super::decode(chunk, st, |s| got.push((s.st, s.t, s.h.clone()))).unwrap();
    got
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn encoder_and_decoder_round_trip(s in samples()) {
        let chunk = encode(&s).unwrap();
        let got: Vec<(i64, Histogram)> =
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
        fuzz_histogram_chunk(&data);
    }

    #[test]
    fn damaged_chunks_never_panic(s in samples(), edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..4), cut in any::<usize>()) {
        let mut chunk = encode(&s).unwrap();
        for (i, x) in edits {
            let n = chunk.len();
            chunk[i % n] ^= x;
        }
        chunk.truncate(cut % (chunk.len() + 1));
        fuzz_histogram_chunk(&chunk);
    }
}

#[test]
fn header_and_count_in_both_encodings() {
    let h = Histogram {
        hint: CounterResetHint::CounterReset,
        count: 3,
        positive_spans: vec![Span {
            offset: 0,
            length: 1,
        }],
        positive_buckets: vec![3],
        ..Histogram::default()
    };
    let chunk = encode(&[(1000, h.clone())]).unwrap();
    assert_eq!(&chunk[..3], &[0, 1, 0b1000_0000]);
    let d = Decoder::new(&chunk).unwrap();
    assert_eq!((d.len(), d.header()), (1, CounterResetHeader::CounterReset));
    let mut e = Encoder::with_start_times();
    e.set_header(CounterResetHeader::Gauge);
    e.push(900, 1000, &h).unwrap();
    let chunk = e.finish();
    assert_eq!(&chunk[..3], &[0b1100_0000, 1, 0x80]);
    let d = Decoder::with_start_times(&chunk).unwrap();
    assert_eq!((d.len(), d.header()), (1, CounterResetHeader::Gauge));
}

#[test]
fn samples_that_do_not_fit_the_layout_are_refused() {
    let h = Histogram {
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![1],
        ..Histogram::default()
    };
    assert!(encode(&[(1, h.clone())]).is_err());
    let ok = Histogram {
        positive_buckets: vec![1, 1],
        ..h.clone()
    };
    let other = Histogram {
        schema: 1,
        ..ok.clone()
    };
    assert!(encode(&[(1, ok.clone()), (2, other)]).is_err());
    assert!(encode(&[(1, ok.clone()), (2, Histogram::stale()), (3, ok)]).is_err());
    let e = Decoder::new(&[0, 1]).err().unwrap();
    assert!(e.what.contains("no header"), "{e}");
    // A chunk cut inside its second sample names it and where it starts.
    let mut chunk = encode(&[(1, h_at(1)), (2, h_at(2))]).unwrap();
    chunk.truncate(chunk.len() - 1);
    let mut d = Decoder::new(&chunk).unwrap();
    assert!(d.next().unwrap().is_ok());
    let e = d.next().unwrap().unwrap_err();
    assert!(e.what.contains("sample 2 of 2"), "{e}");
    assert!(e.offset.unwrap() > 3);
    assert!(d.next().is_none());
}

fn h_at(count: u64) -> Histogram {
    Histogram {
        count,
        sum: (count as f64).to_bits(),
        schema: 3,
        zero_threshold: 2f64.powi(-128).to_bits(),
        positive_spans: vec![
            Span {
                offset: 1,
                length: 2,
            },
            Span {
                offset: 2,
                length: 1,
            },
        ],
        positive_buckets: vec![count as i64, 0, 0],
        ..Histogram::default()
    }
}

/// A counter histogram over time: the absolute counts of its positive buckets by index.
pub(crate) fn counts(t: i64, buckets: &[(i32, i64)]) -> (i64, Histogram) {
    let mut spans: Vec<Span> = Vec::new();
    let mut deltas = Vec::new();
    let (mut last, mut prev) = (None::<i32>, 0i64);
    for &(idx, c) in buckets {
        match (last, spans.last_mut()) {
            (Some(l), Some(s)) if idx == l + 1 => s.length += 1,
            (Some(l), _) => spans.push(Span {
                offset: idx - l - 1,
                length: 1,
            }),
            (None, _) => spans.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        last = Some(idx);
        deltas.push(c - prev);
        prev = c;
    }
    let count = buckets.iter().map(|b| b.1 as u64).sum();
    let h = Histogram {
        count,
        sum: (count as f64 * 0.5).to_bits(),
        schema: 1,
        positive_spans: spans,
        positive_buckets: deltas,
        ..Histogram::default()
    };
    (t, h)
}

/// Appends as Prometheus's head does (no size cuts): the chunks' bytes.
fn append_all(samples: &[(i64, Histogram)]) -> Vec<Vec<u8>> {
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

/// Each sample's absolute bucket counts by index, without the empty ones.
fn by_index(h: &Histogram) -> Vec<(i32, i64)> {
    let abs = Histogram::absolute(&h.positive_buckets);
    crate::format::histogram::bucket_indices(&h.positive_spans)
        .zip(abs)
        .filter(|b| b.1 != 0)
        .collect()
}

#[test]
fn new_buckets_recode_the_chunk_and_resets_cut_it() {
    let s = vec![
        counts(1000, &[(0, 1)]),
        counts(2000, &[(0, 2), (3, 0)]),
        counts(3000, &[(-1, 1), (0, 2), (3, 0)]),
        // An empty bucket left out of the sample: put back into it (a backward insert).
        counts(4000, &[(-1, 2), (0, 2)]),
        // Bucket 0 falls: a counter reset.
        counts(5000, &[(-1, 2), (0, 1), (3, 1)]),
    ];
    let chunks = append_all(&s);
    assert_eq!(chunks.len(), 2);
    let first = decoded(&chunks[0], false);
    assert_eq!(first.len(), 4);
    // Recoded: every sample of the chunk has the widest layout, counts unchanged.
    for ((_, t, h), (wt, w)) in first.iter().zip(&s) {
        assert_eq!(t, wt);
        assert_eq!(h.positive_spans, first[3].2.positive_spans);
        assert_eq!(by_index(h), by_index(w), "at {t}");
    }
    assert_eq!(
        Decoder::new(&chunks[1]).unwrap().header(),
        CounterResetHeader::CounterReset
    );
}

#[test]
fn cuts_and_their_headers() {
    use CounterResetHeader as C;
    let base = counts(1000, &[(0, 5)]).1;
    let cut = |next: Histogram| -> Vec<C> {
        append_all(&[(1000, base.clone()), (2000, next)])
            .iter()
            .map(|c| Decoder::new(c).unwrap().header())
            .collect()
    };
    let schema = Histogram {
        schema: 2,
        ..base.clone()
    };
    assert_eq!(cut(schema), [C::Unknown, C::Unknown]);
    let zt = Histogram {
        zero_threshold: 1f64.to_bits(),
        ..base.clone()
    };
    assert_eq!(cut(zt), [C::Unknown, C::Unknown]);
    let fewer = Histogram {
        count: 4,
        ..base.clone()
    };
    assert_eq!(cut(fewer), [C::Unknown, C::CounterReset]);
    let hinted = Histogram {
        hint: CounterResetHint::CounterReset,
        ..base.clone()
    };
    assert_eq!(cut(hinted), [C::Unknown, C::CounterReset]);
    assert_eq!(cut(base.clone()), [C::Unknown]);
    // After a staleness marker, a sample begins a new chunk.
    let chunks = append_all(&[
        (1000, base.clone()),
        (2000, Histogram::stale()),
        (3000, base.clone()),
    ]);
    assert_eq!(chunks.len(), 2);
    // Custom bounds that change: a reset.
    let nhcb = |bounds: &[f64]| Histogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        custom_values: bounds.iter().map(|b| b.to_bits()).collect(),
        ..base.clone()
    };
    let chunks = append_all(&[(1000, nhcb(&[0.5])), (2000, nhcb(&[0.25]))]);
    let headers: Vec<C> = chunks
        .iter()
        .map(|c| Decoder::new(c).unwrap().header())
        .collect();
    assert_eq!(headers, [C::Unknown, C::CounterReset]);
    // A chunk cut for its size: the header from the chunk before.
    let mut prev = Encoder::new();
    prev.append(None, 0, 1000, &base).unwrap();
    let mut next = Encoder::new();
    next.append(Some(&prev), 0, 2000, &base).unwrap();
    assert_eq!(next.header(), C::NotCounterReset);
    let mut next = Encoder::new();
    next.append(Some(&prev), 0, 2000, &counts(0, &[(0, 1)]).1)
        .unwrap();
    assert_eq!(next.header(), C::CounterReset);
}

#[test]
fn gauge_histograms_merge_layouts_both_ways() {
    let g = |t: i64, b: &[(i32, i64)]| {
        let (t, mut h) = counts(t, b);
        h.hint = CounterResetHint::Gauge;
        (t, h)
    };
    let s = [
        g(1000, &[(0, 3), (2, 1)]),
        g(2000, &[(1, 1)]),
        g(3000, &[(0, 1)]),
    ];
    let chunks = append_all(&s);
    assert_eq!(chunks.len(), 1);
    let got = decoded(&chunks[0], false);
    assert!(got
        .iter()
        .all(|(_, _, h)| h.hint == CounterResetHint::Gauge));
    for ((_, _, h), (_, w)) in got.iter().zip(&s) {
        assert_eq!(by_index(h), by_index(w));
    }
    // A counter histogram after a gauge chunk: a new chunk.
    let chunks = append_all(&[g(1000, &[(0, 1)]), counts(2000, &[(0, 1)])]);
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        Decoder::new(&chunks[1]).unwrap().header(),
        CounterResetHeader::NotCounterReset
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the sequence, the appender's chunks decode to the samples appended (bucket
    /// counts by index; a recoded chunk adds empty buckets), in as many chunks as resets need.
    #[test]
    fn appender_keeps_every_sample(
        steps in proptest::collection::vec((0usize..4, proptest::collection::vec((-4i32..6, 0i64..4), 0..5)), 1..30),
    ) {
        let mut cur: Vec<(i32, i64)> = Vec::new();
        let mut s = Vec::new();
        for (i, (op, add)) in steps.into_iter().enumerate() {
            let mut m: std::collections::BTreeMap<i32, i64> = if op == 0 { Default::default() } else { cur.iter().copied().collect() };
            for (idx, c) in add {
                *m.entry(idx).or_default() += c;
            }
            cur = m.into_iter().collect();
            let (t, mut h) = counts(1000 * i as i64, &cur);
            if op == 3 {
                h.hint = CounterResetHint::Gauge;
            }
            s.push((t, h));
        }
        let chunks = append_all(&s);
        let got: Vec<(i64, Histogram)> = chunks.iter().flat_map(|c| decoded(c, false)).map(|(_, t, h)| (t, h)).collect();
        prop_assert_eq!(got.len(), s.len());
        for ((t, h), (wt, w)) in got.iter().zip(&s) {
            prop_assert_eq!(t, wt);
            prop_assert_eq!((h.count, h.sum), (w.count, w.sum));
            prop_assert_eq!(by_index(h), by_index(w));
        }
    }
}
