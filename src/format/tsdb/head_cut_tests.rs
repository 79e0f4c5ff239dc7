use super::*;
use crate::format::histogram::{bucket_indices, CounterResetHint, Span};
use crate::format::tsdb::chunkenc::{self, Value};
use crate::format::tsdb::{chunks, index::Index};
use crate::format::value::STALE_NAN_BITS;
use proptest::prelude::*;

const INDEX: &[u8] = include_bytes!("../../../testdata/tsdb/histograms/block/index");
const SEGMENT: &[u8] = include_bytes!("../../../testdata/tsdb/histograms/block/chunks/000001");
/// The fixture's Prometheus ran with 1-minute blocks: its head's chunk range.
const GOLDEN_CHUNK_RANGE: i64 = 60_000;

/// A sample as a source hands it on: float bits or a histogram.
#[derive(Clone, Debug, PartialEq)]
enum S {
    F(u64),
    H(HistogramValue),
}

fn feed(head: &mut SeriesHead, t: i64, s: &S) -> Option<Cut> {
    match s {
        S::F(v) => head.append_float(t, *v).unwrap(),
        S::H(h) => head.append_histogram(t, h).unwrap(),
    }
}

/// All of a series' samples through one head: its chunks.
fn cut_all(samples: &[(i64, S)], chunk_range: i64) -> Vec<Cut> {
    let mut head = SeriesHead::new(chunk_range);
    let mut out: Vec<Cut> = samples
        .iter()
        .filter_map(|(t, s)| feed(&mut head, *t, s))
        .collect();
    out.extend(head.finish());
    out
}

fn decode(c: &Cut) -> Vec<(i64, S)> {
    let mut out = Vec::new();
    chunkenc::decode_samples(c.encoding, &c.data, |_, t, v| {
        out.push((
            t,
            match v {
                Value::Float(b) => S::F(b),
                Value::Histogram(h) => S::H(HistogramValue::Int(h.clone())),
                Value::FloatHistogram(h) => S::H(HistogramValue::Float(h.clone())),
            },
        ))
    })
    .unwrap();
    out
}

/// The samples of Prometheus 3.5.3's block, series by series, cut again by the head: every
/// chunk comes out as Prometheus wrote it, where it cut it and byte for byte (floats and both
/// histogram kinds, size cuts, counter resets, a series that changed type). A series' first
/// chunk in the block continues one of the block before, whose last sample set its counter
/// reset header: that header is taken from the block.
#[test]
fn the_head_cuts_prometheus_3_5_block_as_prometheus_did() {
    let ix = Index::parse(INDEX).unwrap();
    let mut metas = Vec::new();
    let (mut chunks_seen, mut hist_chunks, mut series) = (0, 0, 0);
    for id in ix.all_postings().unwrap() {
        let labels = ix.series(id, &mut metas).unwrap();
        let want: Vec<Cut> = metas
            .iter()
            .map(|m| {
                let c = chunks::chunk_at(SEGMENT, chunks::unpack_ref(m.chunk_ref).1).unwrap();
                Cut {
                    encoding: c.encoding,
                    data: c.data.to_vec(),
                    min_time: m.min_time,
                    max_time: m.max_time,
                }
            })
            .collect();
        // The scrapes named only the buckets they had; the appender widened the chunk to each
        // new bucket: appended as scraped, the samples give the chunks back.
        let samples: Vec<(i64, S)> = want.iter().flat_map(decode).map(compact).collect();
        let mut got = cut_all(&samples, GOLDEN_CHUNK_RANGE);
        if let (Some(g), Some(w)) = (got.first_mut(), want.first()) {
            if g.encoding != chunkenc::ENC_XOR {
                g.data[2] = (g.data[2] & 0x3f) | (w.data[2] & 0xc0);
            }
        }
        let times = |v: &[Cut]| -> Vec<(u8, i64, i64, usize)> {
            v.iter()
                .map(|c| (c.encoding, c.min_time, c.max_time, c.data.len()))
                .collect()
        };
        assert_eq!(times(&got), times(&want), "{labels}: chunks");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.encoding, g.min_time, g.max_time),
                (w.encoding, w.min_time, w.max_time),
                "{labels}"
            );
            assert!(
                g.data == w.data,
                "{labels}: chunk at {} differs",
                w.min_time
            );
            hist_chunks += usize::from(g.encoding != chunkenc::ENC_XOR);
        }
        chunks_seen += got.len();
        series += 1;
    }
    assert!(series >= 36 && hist_chunks >= 20, "{series} {hist_chunks}");
    eprintln!(
        "{series} series, {chunks_seen} chunks ({hist_chunks} histogram) as Prometheus cut them"
    );
}

/// One side's buckets with the empty ones left out of the spans.
fn compact_side<T: Copy>(
    spans: &[Span],
    counts: &[T],
    empty: impl Fn(T) -> bool,
) -> (Vec<Span>, Vec<T>) {
    let (mut out, mut kept, mut last) = (Vec::<Span>::new(), Vec::new(), None::<i32>);
    for (idx, c) in bucket_indices(spans).zip(counts.iter().copied()) {
        if empty(c) {
            continue;
        }
        match (last, out.last_mut()) {
            (Some(l), Some(sp)) if idx == l + 1 => sp.length += 1,
            (Some(l), _) => out.push(Span {
                offset: idx - l - 1,
                length: 1,
            }),
            (None, _) => out.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        last = Some(idx);
        kept.push(c);
    }
    (out, kept)
}

/// A sample as scraped: its empty buckets (which only a chunk's wider layout added) left out;
/// NHCB as they are (a classic histogram names every bucket).
fn compact((t, s): (i64, S)) -> (i64, S) {
    let deltas = |abs: Vec<i64>| -> Vec<i64> {
        let mut prev = 0;
        abs.into_iter()
            .map(|c| {
                let d = c - prev;
                prev = c;
                d
            })
            .collect()
    };
    let s = match s {
        S::H(HistogramValue::Int(mut h)) if !h.is_stale() && h.schema != -53 => {
            let (ps, pb) = compact_side(
                &h.positive_spans,
                &Histogram::absolute(&h.positive_buckets),
                |c| c == 0,
            );
            let (ns, nb) = compact_side(
                &h.negative_spans,
                &Histogram::absolute(&h.negative_buckets),
                |c| c == 0,
            );
            (h.positive_spans, h.positive_buckets) = (ps, deltas(pb));
            (h.negative_spans, h.negative_buckets) = (ns, deltas(nb));
            S::H(HistogramValue::Int(h))
        }
        S::H(HistogramValue::Float(mut h)) if !h.is_stale() && h.schema != -53 => {
            let zero = |c: u64| f64::from_bits(c) == 0.0;
            (h.positive_spans, h.positive_buckets) =
                compact_side(&h.positive_spans, &h.positive_buckets, zero);
            (h.negative_spans, h.negative_buckets) =
                compact_side(&h.negative_spans, &h.negative_buckets, zero);
            S::H(HistogramValue::Float(h))
        }
        s => s,
    };
    (t, s)
}

fn spans(v: &[(i32, u32)]) -> Vec<Span> {
    v.iter()
        .map(|&(offset, length)| Span { offset, length })
        .collect()
}

/// An exponential counter histogram with `n` buckets, every count `k`.
fn wide(n: u32, k: u64) -> Histogram {
    let mut deltas = vec![0; n as usize];
    if n > 0 {
        deltas[0] = k as i64;
    }
    Histogram {
        count: k * u64::from(n),
        sum: (k as f64 * 1.5).to_bits(),
        positive_spans: spans(&[(0, n)]),
        positive_buckets: deltas,
        ..Histogram::default()
    }
}

#[test]
fn a_series_that_changes_type_gets_a_chunk_per_run() {
    let h = |k| S::H(HistogramValue::Int(wide(3, k)));
    let fh = |k: u64| S::H(HistogramValue::Float(wide(3, k).to_float()));
    let samples = vec![
        (1_000, S::F(1f64.to_bits())),
        (2_000, S::F(2f64.to_bits())),
        (3_000, h(1)),
        (4_000, h(2)),
        (5_000, fh(3)),
        (6_000, S::F(3f64.to_bits())),
        (7_000, h(4)),
    ];
    let got = cut_all(&samples, 7_200_000);
    let encs: Vec<(u8, i64, i64)> = got
        .iter()
        .map(|c| (c.encoding, c.min_time, c.max_time))
        .collect();
    use chunkenc::{ENC_FLOAT_HISTOGRAM as FH, ENC_HISTOGRAM as H, ENC_XOR as X};
    assert_eq!(
        encs,
        [
            (X, 1_000, 2_000),
            (H, 3_000, 4_000),
            (FH, 5_000, 5_000),
            (X, 6_000, 6_000),
            (H, 7_000, 7_000)
        ]
    );
    let back: Vec<(i64, S)> = got.iter().flat_map(decode).collect();
    assert_eq!(back.len(), samples.len());
}

/// Prometheus's `headAppender.Append` turns a float staleness marker of a series whose last
/// sample was a histogram into a histogram marker of that kind: no chunk is cut for it.
#[test]
fn a_float_marker_after_a_histogram_is_a_histogram_marker() {
    let samples = vec![
        (1_000, S::H(HistogramValue::Float(wide(2, 1).to_float()))),
        (2_000, S::F(STALE_NAN_BITS)),
        (3_000, S::H(HistogramValue::Int(wide(2, 1)))),
        (4_000, S::F(STALE_NAN_BITS)),
    ];
    let got = cut_all(&samples, 7_200_000);
    assert_eq!(got.len(), 2);
    let back: Vec<(i64, S)> = got.iter().flat_map(decode).collect();
    assert!(matches!(&back[1].1, S::H(HistogramValue::Float(h)) if h.is_stale()));
    assert!(matches!(&back[3].1, S::H(HistogramValue::Int(h)) if h.is_stale()));
}

/// Histogram chunks aim at 1 KiB: small histograms fill chunks of about that size over a long
/// range; a histogram bigger than 2 KiB still gets 10 samples a chunk; the range's end cuts
/// whatever the count.
#[test]
fn histogram_chunks_follow_the_size_rule() {
    let range = 7_200_000;
    let small: Vec<(i64, S)> = (0..2_000)
        .map(|i| (i * 1_000, S::H(HistogramValue::Int(wide(4, i as u64 + 1)))))
        .collect();
    let got = cut_all(&small, range);
    assert!(got.len() > 2, "{}", got.len());
    for c in &got[..got.len() - 1] {
        assert!(
            c.data.len() <= 2 * TARGET_BYTES_PER_HISTOGRAM_CHUNK,
            "{}",
            c.data.len()
        );
        assert!(decode(c).len() >= MIN_SAMPLES_PER_HISTOGRAM_CHUNK);
    }
    // Float counts change every bucket's bits each sample: over 2 KiB each.
    let big = |i: i64| {
        let mut h = wide(300, 1).to_float();
        for (j, b) in h.positive_buckets.iter_mut().enumerate() {
            *b = ((i * 7 + j as i64) as f64 * 1.37).to_bits();
        }
        S::H(HistogramValue::Float(h))
    };
    let samples: Vec<(i64, S)> = (0..25).map(|i| (i * 1_000, big(i))).collect();
    let got = cut_all(&samples, range);
    let n: Vec<usize> = got.iter().map(|c| decode(c).len()).collect();
    assert_eq!(n, [10, 10, 5], "{n:?}");
    // Across a range end: cut there, even with fewer than 10 samples.
    let samples: Vec<(i64, S)> = (0..25)
        .map(|i| (range - 3_000 + i * 1_000, big(i)))
        .collect();
    let got = cut_all(&samples, range);
    assert_eq!(got[0].max_time, range - 1_000);
    assert_eq!(got[1].min_time, range);
}

/// A histogram's values without its layout: float counts by bucket index, empty ones left out
/// (the appender widens a chunk's layout, adding empty buckets, as the API leaves them out).
type Normal = (
    Option<u64>,
    Option<(i32, [u64; 4], [Vec<(i32, u64)>; 2], Vec<u64>, bool)>,
);

fn normal(s: &S) -> Normal {
    let h = match s {
        S::F(v) => return (Some(*v), None),
        S::H(h) => h,
    };
    let (f, int) = match h {
        HistogramValue::Int(h) => (h.to_float(), true),
        HistogramValue::Float(h) => (h.clone(), false),
    };
    let side = |spans, buckets: &[u64]| {
        bucket_indices(spans)
            .zip(buckets.iter().copied())
            .filter(|b| f64::from_bits(b.1) != 0.0)
            .collect()
    };
    let n = (
        f.schema,
        [f.zero_threshold, f.zero_count, f.count, f.sum],
        [
            side(&f.positive_spans, &f.positive_buckets),
            side(&f.negative_spans, &f.negative_buckets),
        ],
        f.custom_values.clone(),
        int,
    );
    (None, Some(n))
}

fn sample() -> impl Strategy<Value = S> {
    let int = (
        0u32..6,
        0u64..50,
        any::<bool>(),
        prop_oneof![Just(-53), -2i32..4],
    )
        .prop_map(|(n, k, gauge, schema)| {
            let mut h = wide(n, k);
            h.schema = schema;
            if schema == -53 {
                h.custom_values = (0..n).map(|i| (i as f64 + 0.5).to_bits()).collect();
            }
            if gauge {
                h.hint = CounterResetHint::Gauge;
            }
            h
        });
    prop_oneof![
        any::<u64>().prop_map(S::F),
        Just(S::F(STALE_NAN_BITS)),
        int.clone().prop_map(|h| S::H(HistogramValue::Int(h))),
        int.prop_map(|h| S::H(HistogramValue::Float(h.to_float()))),
        Just(S::H(HistogramValue::Int(Histogram::stale()))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Any mix of floats, histograms of both kinds and markers, cut by the head, decodes to the
    /// same values at the same times, each chunk within its times.
    #[test]
    fn whatever_is_appended_decodes_back(
        s in proptest::collection::vec((1i64..5_000, sample()), 1..200),
        range in prop_oneof![Just(7_200_000i64), 1_000i64..100_000],
    ) {
        let mut t = 0;
        let samples: Vec<(i64, S)> = s.into_iter().map(|(d, v)| { t += d; (t, v) }).collect();
        let got = cut_all(&samples, range);
        let mut back = Vec::new();
        for c in &got {
            let d = decode(c);
            prop_assert_eq!(d.first().map(|s| s.0), Some(c.min_time));
            prop_assert_eq!(d.last().map(|s| s.0), Some(c.max_time));
            back.extend(d);
        }
        prop_assert_eq!(back.len(), samples.len());
        for ((t0, a), (t1, b)) in samples.iter().zip(&back) {
            prop_assert_eq!(t0, t1);
            // A float marker may have become a histogram one (see above).
            let marker = matches!(a, S::F(v) if *v == STALE_NAN_BITS);
            if marker {
                let stale = match b { S::F(v) => *v == STALE_NAN_BITS, S::H(h) => h.is_stale() };
                prop_assert!(stale);
            } else {
                prop_assert_eq!(normal(a), normal(b), "at {}", t0);
            }
        }
    }
}

#[test]
fn out_of_order_samples_are_refused() {
    let mut head = SeriesHead::new(1_000);
    head.append_float(5, 1).unwrap();
    assert!(head.append_float(5, 2).is_err());
    let h = HistogramValue::Int(wide(1, 1));
    assert!(head.append_histogram(4, &h).is_err());
    head.append_histogram(6, &h).unwrap();
    assert!(head.append_float(6, 0).is_err());
}

#[test]
fn chunk_end_estimates_match_go() {
    // 3.5's float form with a ratio of 4 is 2.42's integer form.
    for (s, c, m) in [(0, 29_000, 7_200_000), (1_000, 5_000, 60_000), (7, 7, 100)] {
        assert_eq!(chunk_end_time(s, c, m), chunk_end_time_ratio(s, c, m, 4.0));
    }
    assert_eq!(
        chunk_end_time_ratio(0, 4_000, 60_000, 1024.0 / 300.0),
        15_000
    );
    assert_eq!(
        chunk_end_time_ratio(0, 9_000, 60_000, 1024.0 / 300.0),
        60_000
    );
    assert_eq!(range_end(59_999, 60_000), 60_000);
    assert_eq!(range_end(60_000, 60_000), 120_000);
}
