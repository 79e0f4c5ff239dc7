//! Native histograms in the head: m-mapped histogram chunks (in order and out of order), WAL and
//! wbl histogram records, staleness markers, tombstones.
use super::*;
use crate::format::histogram::{FloatHistogram, Histogram, Span};
use crate::format::tsdb::record::{encode_histograms, HistogramSample};
use crate::format::tsdb::{float_histogram, histogram};

/// An integer histogram of `n` observations in one bucket, schema 0.
fn int(n: u64) -> Histogram {
    Histogram {
        count: n,
        sum: (n as f64 * 0.5).to_bits(),
        positive_spans: vec![Span {
            offset: 1,
            length: 1,
        }],
        positive_buckets: vec![n as i64],
        ..Default::default()
    }
}

fn float(n: f64) -> FloatHistogram {
    FloatHistogram {
        count: n.to_bits(),
        sum: (n * 0.5).to_bits(),
        positive_spans: vec![Span {
            offset: 1,
            length: 1,
        }],
        positive_buckets: vec![n.to_bits()],
        ..Default::default()
    }
}

/// A histogram record of series ref `r`: integer histograms at `(t, n)`.
fn rec(r: u64, hs: &[(i64, HistogramValue)]) -> Vec<u8> {
    let float = matches!(hs[0].1, HistogramValue::Float(_));
    let samples: Vec<HistogramSample> = hs
        .iter()
        .map(|(t, h)| HistogramSample {
            series_ref: r,
            st: 0,
            t: *t,
            h: h.clone(),
        })
        .collect();
    encode_histograms(if float { 8 } else { 7 }, &samples)
}

/// (series, t, count) of the histograms a replay gave, in order.
fn counts(c: &Collect) -> Vec<(String, i64, f64)> {
    c.hists
        .iter()
        .map(|(s, t, h)| {
            let n = match h {
                HistogramValue::Int(h) if h.is_stale() => f64::NAN,
                HistogramValue::Int(h) => h.count as f64,
                HistogramValue::Float(h) => f64::from_bits(h.count),
            };
            (s.clone(), *t, n)
        })
        .collect()
}

#[test]
fn histogram_chunks_in_chunks_head_in_order_and_out_of_order() {
    let d = Dir::new();
    let a: Vec<(i64, Histogram)> = (0..3).map(|i| (1000 + i, int(i as u64 + 1))).collect();
    let b = vec![(500, float(2.5)), (600, float(3.5))];
    d.chunks(
        1,
        &[
            (1, 1000, 1002, 2, histogram::encode(&a).unwrap()),
            (2, 500, 600, 0x83, float_histogram::encode(&b).unwrap()),
        ],
    );
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a")), (2, &sx("b"))]),
            // Replay resumes after the m-mapped chunk: 1001 is dropped, 1003 kept.
            rec(
                1,
                &[
                    (1001, HistogramValue::Int(int(9))),
                    (1003, HistogramValue::Int(int(4))),
                ],
            ),
            // Tombstones apply to histograms in order and out of order.
            enc_tombstones(&[(1, 1000, 1000), (2, 600, 600)]),
        ],
    );
    let c = collect(&d, &opts(i64::MIN));
    assert_eq!(
        counts(&c),
        [
            s("a", 1001, 2.0),
            s("a", 1002, 3.0),
            s("b", 500, 2.5),
            s("a", 1003, 4.0)
        ]
    );
    // A chunk in order before min_valid_time is left out, one out of order kept; so are the
    // tombstones that end before it (as Prometheus's replay drops them).
    let c = collect(&d, &opts(1003));
    assert_eq!(
        counts(&c),
        [s("b", 500, 2.5), s("b", 600, 3.5), s("a", 1003, 4.0)]
    );
}

#[test]
fn wbl_histograms_go_through_the_out_of_order_head_chunk() {
    let d = Dir::new();
    d.chunks(1, &[(9, 1000, 1000, 1, xor_chunk(1000, 1.0))]);
    d.log(
        "wal",
        0,
        &[enc_series(&[(1, &sx("a")), (2, &sx("b")), (9, &sx("z"))])],
    );
    let stale = HistogramValue::Int(Histogram::stale());
    let wbl = vec![
        rec(1, &[(5, HistogramValue::Int(int(5)))]),
        // A float at the same timestamp is refused: the chunk holds one sample per timestamp.
        enc_samples(&[(1, 5, f(5.0)), (1, 4, f(4.0))]),
        // This marker names the chunk in chunks_head: what the OOO chunk of b held is in it.
        rec(2, &[(1, HistogramValue::Float(float(1.0)))]),
        enc_markers(&[(2, 1 << 32 | 8)]),
        rec(1, &[(3, stale.clone())]),
        // 33 of b: cut at 32, all kept.
        rec(
            2,
            &(0..33)
                .map(|i| (100 - i, HistogramValue::Float(float(i as f64))))
                .collect::<Vec<_>>(),
        ),
    ];
    d.log("wbl", 0, &wbl);
    let c = collect(&d, &opts(i64::MIN));
    let a: Vec<_> = counts(&c).into_iter().filter(|x| x.0 == "a").collect();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].1, 3);
    assert!(a[0].2.is_nan(), "the staleness marker");
    assert_eq!(a[1], s("a", 5, 5.0));
    assert!(matches!(&c.hists.iter().find(|h| h.1 == 3).unwrap().2, h if h.is_stale()));
    let floats: Vec<_> = c.got.iter().filter(|x| x.0 == "a").map(|x| x.1).collect();
    assert_eq!(floats, [4]);
    let b = counts(&c).into_iter().filter(|x| x.0 == "b").count();
    assert_eq!(
        b, 33,
        "the histogram before the marker is in the m-mapped chunk"
    );
}

#[test]
fn a_series_that_changed_type_keeps_both_kinds() {
    let d = Dir::new();
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a"))]),
            enc_samples(&[(1, 10, f(1.0)), (1, 20, f(2.0))]),
            rec(1, &[(30, HistogramValue::Int(int(3)))]),
            enc_samples(&[(1, 40, f(4.0))]),
        ],
    );
    let c = collect(&d, &opts(i64::MIN));
    let floats: Vec<_> = c.got.iter().map(|x| x.1).collect();
    assert_eq!(floats, [10, 20, 40]);
    assert_eq!(counts(&c), [s("a", 30, 3.0)]);
    // Unwanted series: nothing decoded, nothing asked twice.
    let mut c = Collect::default();
    let mut o = opts(i64::MIN);
    o.mint = 25;
    o.maxt = 35;
    read_head(&d.path(), &o, &mut c).unwrap();
    assert_eq!((c.got.len(), c.hists.len()), (0, 1));
}
