use super::*;
use crate::format::tsdb::{chunkenc, chunks, index::Index, meta, xor};
use proptest::prelude::*;

const INDEX: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/index");
const SEGMENT: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/chunks/000001");
const META: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/meta.json");
const TOMBSTONES: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/tombstones");

type Series = Vec<(Labels, Vec<(i64, u64)>)>;

/// Every series of a block, read back with the readers: labels in index order, and samples.
fn read_back(index: &[u8], segments: &[Vec<u8>]) -> Series {
    let ix = Index::parse(index).unwrap();
    assert_eq!(ix.version(), 2);
    let mut metas = Vec::new();
    let mut out = Vec::new();
    for id in ix.all_postings().unwrap() {
        let labels = ix.series(id, &mut metas).unwrap();
        let mut samples = Vec::new();
        for m in &metas {
            let (seg, off) = chunks::unpack_ref(m.chunk_ref);
            chunks::check_segment(&segments[seg]).unwrap();
            let c = chunks::chunk_at(&segments[seg], off).unwrap();
            let before = samples.len();
            chunkenc::decode(c.encoding, c.data, |t, v| samples.push((t, v))).unwrap();
            assert_eq!(samples[before].0, m.min_time);
            assert_eq!(samples.last().unwrap().0, m.max_time);
        }
        // Every label's postings name the series.
        for (n, v) in labels.iter() {
            assert!(ix.postings(n, v).unwrap().contains(&id), "{n}={v}");
        }
        out.push((labels, samples));
    }
    out
}

/// Writes `series` as a block into memory: (stats, segments, index).
fn write(series: &Series, chunk_range: i64, seg_size: u64) -> (BlockStats, Vec<Vec<u8>>, Vec<u8>) {
    let segs = SegmentWriter::with_segment_size(|_| Ok(Vec::new()), seg_size);
    let mut w = BlockWriter::new(chunk_range);
    for (labels, samples) in series {
        w.start_series(labels.clone()).unwrap();
        for &(t, v) in samples {
            w.append(t, v).unwrap();
        }
    }
    w.finish(segs, Vec::new()).unwrap()
}

#[test]
fn rebuilding_the_golden_block_gives_prometheus_bytes() {
    let series = read_back(INDEX, &[SEGMENT.to_vec()]);
    let (stats, segs, index) = write(&series, 2 * 7_200_000, SEGMENT_SIZE);
    assert_eq!(segs.len(), 1);
    assert!(segs[0] == SEGMENT, "chunk segment differs");
    if index != INDEX {
        let at = index.iter().zip(INDEX).position(|(a, b)| a != b);
        panic!(
            "index differs at {at:?}, lengths {} {}",
            index.len(),
            INDEX.len()
        );
    }
    let m = meta::parse(META).unwrap();
    assert_eq!(
        (stats.min_time, stats.max_time, stats.num_samples),
        (m.min_time, m.max_time, m.stats.num_samples)
    );
    assert_eq!(
        (stats.num_series, stats.num_chunks),
        (m.stats.num_series, m.stats.num_chunks)
    );
    assert_eq!(meta_json(&m.ulid, &stats), META);
    assert_eq!(empty_tombstones(), TOMBSTONES);
}

#[test]
fn chunks_are_cut_as_the_head_cuts_them() {
    // 15 s scrapes over 2 h: the head aims at 120 samples per chunk within its range.
    let labels = Labels::from_pairs([("__name__", "up")]);
    let samples: Vec<(i64, u64)> = (0..480).map(|i| (i * 15_000, 1f64.to_bits())).collect();
    let (stats, segs, index) = write(&vec![(labels, samples.clone())], 14_400_000, SEGMENT_SIZE);
    assert_eq!(stats.num_chunks, 4);
    assert_eq!((stats.min_time, stats.max_time), (0, 479 * 15_000 + 1));
    assert_eq!(read_back(&index, &segs)[0].1, samples);
    // Dense samples: never more than 240 in a chunk.
    let dense: Vec<(i64, u64)> = (0..1000).map(|i| (i, 0)).collect();
    let (stats, ..) = write(
        &vec![(Labels::from_pairs([("a", "b")]), dense)],
        14_400_000,
        SEGMENT_SIZE,
    );
    assert_eq!(stats.num_chunks, 9);
}

#[test]
fn out_of_order_samples_and_repeated_series_are_refused() {
    let segs = SegmentWriter::new(|_| Ok(Vec::new()));
    let mut w = BlockWriter::new(1000);
    assert!(w.append(1, 0).is_err());
    w.start_series(Labels::from_pairs([("a", "b")])).unwrap();
    w.append(5, 0).unwrap();
    let e = w.append(5, 0).unwrap_err().to_string();
    assert!(e.contains("not after"), "{e}");
    w.start_series(Labels::from_pairs([("a", "b")])).unwrap();
    w.append(9, 0).unwrap();
    let e = w.finish(segs, Vec::new()).unwrap_err().to_string();
    assert!(e.contains("given twice"), "{e}");
}

fn label_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,6}",
        "\\PC{1,8}",
        Just("with \"quotes\"\\ and \n newline".to_string()),
        Just("\u{200b}\u{feff}é😀".to_string()),
    ]
}

fn value_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        any::<f64>().prop_map(f64::to_bits),
        Just(xor::STALE_NAN_BITS),
        Just(0x7ff8_0000_0000_0001),
        Just(f64::INFINITY.to_bits()),
        Just(f64::NEG_INFINITY.to_bits()),
        Just((-0.0f64).to_bits()),
        Just(1f64.to_bits()),
    ]
}

fn series_strategy() -> impl Strategy<Value = Series> {
    let labels = proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_.]{0,5}", label_text()), 1..4)
        .prop_map(Labels::from_pairs);
    let samples = (
        -10_000_000_000i64..10_000_000_000,
        proptest::collection::vec((1i64..100_000, value_bits()), 1..600),
    )
        .prop_map(|(start, steps)| {
            let mut t = start;
            steps
                .into_iter()
                .map(|(d, v)| {
                    t += d;
                    (t, v)
                })
                .collect::<Vec<_>>()
        });
    proptest::collection::vec((labels, samples), 1..12).prop_map(|mut v| {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        v.retain(|(l, _)| !l.is_empty());
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn blocks_read_back_exactly(
        series in series_strategy(),
        range in prop_oneof![Just(14_400_000i64), 1i64..1_000_000],
        seg_size in prop_oneof![Just(SEGMENT_SIZE), 64u64..4096],
        reverse in any::<bool>(),
    ) {
        // Series may be given in any order; the index sorts them.
        let mut given = series.clone();
        if reverse {
            given.reverse();
        }
        let (stats, segs, index) = write(&given, range, seg_size);
        prop_assert_eq!(read_back(&index, &segs), series.clone());
        let n: usize = series.iter().map(|s| s.1.len()).sum();
        prop_assert_eq!(stats.num_samples, n as u64);
        prop_assert_eq!(stats.num_series, series.len() as u64);
        let min = series.iter().map(|s| s.1[0].0).min().unwrap();
        let max = series.iter().map(|s| s.1.last().unwrap().0).max().unwrap();
        prop_assert_eq!((stats.min_time, stats.max_time), (min, max + 1));
        for s in &segs {
            // Over the size only when one chunk alone is bigger.
            prop_assert!(s.len() as u64 <= seg_size || chunks::iter(s).count() == 1);
        }
        let meta = meta::parse(&meta_json("01ARZ3NDEKTSV4RRFFQ69G5FAV", &stats)).unwrap();
        prop_assert_eq!(meta.stats.num_chunks, stats.num_chunks);
        prop_assert_eq!(meta.compaction.sources, vec!["01ARZ3NDEKTSV4RRFFQ69G5FAV".to_string()]);
    }
}

/// A block of floats, integer and float histograms (NHCB among them) and a series that changed
/// type: each chunk of its encoding, every sample read back, the stats counting the kinds, and
/// `meta.json` as Prometheus 3.5 writes it (one `numSamples`; 3.6 added per-kind counts).
#[test]
fn histogram_series_read_back_with_their_encodings() {
    use crate::format::histogram::{FloatHistogram, Histogram, HistogramValue, Span};
    use crate::format::tsdb::chunkenc::{Value, ENC_FLOAT_HISTOGRAM, ENC_HISTOGRAM, ENC_XOR};
    let h = |k: u64, schema: i32| Histogram {
        schema,
        count: 2 * k,
        sum: (k as f64).to_bits(),
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![k as i64, 0],
        custom_values: if schema == -53 {
            vec![1f64.to_bits()]
        } else {
            Vec::new()
        },
        ..Histogram::default()
    };
    let mut w = BlockWriter::new(7_200_000);
    w.start_series(Labels::from_pairs([("__name__", "mixed")]))
        .unwrap();
    w.append(1_000, 1f64.to_bits()).unwrap();
    w.append_histogram(2_000, &HistogramValue::Int(h(1, 0)))
        .unwrap();
    w.append_histogram(3_000, &HistogramValue::Int(h(2, 0)))
        .unwrap();
    w.append(4_000, 2f64.to_bits()).unwrap();
    w.start_series(Labels::from_pairs([("__name__", "nhcb")]))
        .unwrap();
    w.append_histogram(1_000, &HistogramValue::Float(h(1, -53).to_float()))
        .unwrap();
    w.append_histogram(2_000, &HistogramValue::Float(FloatHistogram::stale()))
        .unwrap();
    let (stats, segs, index) = w
        .finish(SegmentWriter::new(|_| Ok(Vec::new())), Vec::new())
        .unwrap();
    assert_eq!(
        (stats.num_samples, stats.num_chunks, stats.num_series),
        (6, 4, 2)
    );
    assert_eq!(
        stats.histograms,
        HistogramStats {
            samples: 4,
            float: 2,
            custom_buckets: 1
        }
    );
    let ix = Index::parse(&index).unwrap();
    let mut metas = Vec::new();
    let mut got = Vec::new();
    for id in ix.all_postings().unwrap() {
        let labels = ix.series(id, &mut metas).unwrap();
        for m in &metas {
            let c = chunks::chunk_at(&segs[0], chunks::unpack_ref(m.chunk_ref).1).unwrap();
            let mut n = 0;
            c.decode_samples(|_, t, v| {
                let kind = match v {
                    Value::Float(_) => "float",
                    Value::Histogram(_) => "histogram",
                    Value::FloatHistogram(h) if h.is_stale() => "marker",
                    Value::FloatHistogram(_) => "float histogram",
                };
                got.push((labels.to_string(), c.encoding, t, kind));
                n += 1;
            })
            .unwrap();
            assert!(n > 0);
        }
    }
    let l = |s: &str| format!("{{__name__=\"{s}\"}}");
    assert_eq!(
        got,
        [
            (l("mixed"), ENC_XOR, 1_000, "float"),
            (l("mixed"), ENC_HISTOGRAM, 2_000, "histogram"),
            (l("mixed"), ENC_HISTOGRAM, 3_000, "histogram"),
            (l("mixed"), ENC_XOR, 4_000, "float"),
            (l("nhcb"), ENC_FLOAT_HISTOGRAM, 1_000, "float histogram"),
            (l("nhcb"), ENC_FLOAT_HISTOGRAM, 2_000, "marker"),
        ]
    );
    let meta = String::from_utf8(meta_json("01ARZ3NDEKTSV4RRFFQ69G5FAV", &stats)).unwrap();
    assert!(meta.contains("\"numSamples\": 6,"), "{meta}");
    assert!(!meta.contains("numHistogramSamples"), "{meta}");
}
