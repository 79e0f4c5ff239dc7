//! The histogram codecs against what a real Prometheus 3.5.3 wrote and answered
//! (`testdata/tsdb/histograms/`, made by its `make.py`): every sample of the block decodes to
//! what the query API returned, every chunk re-encodes to its exact bytes (also through the
//! appender's cut rules), and the WAL's histogram records hold the same histograms.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::chunkenc::{self, Value};
use super::histogram_append::Appended;
use super::histogram_meta::CounterResetHeader;
use super::{chunks, float_histogram, histogram, index::Index, record, wal};
use crate::format::histogram::{
    bucket_indices, is_custom_buckets, FloatHistogram, Histogram, HistogramValue,
};
use crate::labels::Labels;

const INDEX: &[u8] = include_bytes!("../../../testdata/tsdb/histograms/block/index");
const SEGMENT: &[u8] = include_bytes!("../../../testdata/tsdb/histograms/block/chunks/000001");
const EXPECTED: &str = include_str!("../../../testdata/tsdb/histograms/expected.json");
const WAL: [&[u8]; 2] = [
    include_bytes!("../../../testdata/tsdb/histograms/wal/00000001"),
    include_bytes!("../../../testdata/tsdb/histograms/wal/00000002"),
];

/// A decoded sample: float bits or a histogram (integer ones as floats, as the API shows them).
#[derive(Clone, Debug, PartialEq)]
enum Got {
    Float(u64),
    Hist(HistogramValue),
}

/// Every series of the block: its chunks (encoding, data) and decoded samples.
type Series = BTreeMap<Labels, (Vec<(u8, &'static [u8])>, Vec<(i64, Got)>)>;

fn block() -> Series {
    let ix = Index::parse(INDEX).unwrap();
    let mut metas = Vec::new();
    let mut out = Series::new();
    for id in ix.all_postings().unwrap() {
        let labels = ix.series(id, &mut metas).unwrap();
        let (cs, samples) = out.entry(labels).or_default();
        for m in &metas {
            let c = chunks::chunk_at(SEGMENT, chunks::unpack_ref(m.chunk_ref).1).unwrap();
            cs.push((c.encoding, c.data));
            c.decode_samples(|_, t, v| {
                let g = match v {
                    Value::Float(b) => Got::Float(b),
                    Value::Histogram(h) => Got::Hist(HistogramValue::Int(h.clone())),
                    Value::FloatHistogram(h) => Got::Hist(HistogramValue::Float(h.clone())),
                };
                samples.push((t, g));
            })
            .unwrap();
        }
    }
    out
}

fn labels_of(metric: &Json) -> Labels {
    let m = metric.as_object().unwrap();
    Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())))
}

fn ms(ts: &Json) -> i64 {
    (ts.as_f64().unwrap() * 1000.0).round() as i64
}

fn num(s: &Json) -> f64 {
    s.as_str().unwrap().parse().unwrap()
}

/// What the API prints for a histogram: count, sum, and the non-empty buckets as (boundary
/// rule, lower, upper, count), negative ones first, then the zero bucket, then positive ones.
/// A bucket as the API prints it: boundary rule, lower, upper, count.
type ApiBucket = (u8, f64, f64, f64);

fn api_form(h: &HistogramValue) -> (f64, f64, Vec<ApiBucket>) {
    let f = match h {
        HistogramValue::Int(h) => h.to_float(),
        HistogramValue::Float(h) => h.clone(),
    };
    let custom: Vec<f64> = f.custom_values.iter().map(|b| f64::from_bits(*b)).collect();
    let bound = |idx: i32| -> f64 {
        if is_custom_buckets(f.schema) {
            match idx {
                i if i < 0 => f64::NEG_INFINITY,
                i => custom.get(i as usize).copied().unwrap_or(f64::INFINITY),
            }
        } else {
            (idx as f64 * (-f.schema as f64).exp2()).exp2()
        }
    };
    let mut out = Vec::new();
    let neg: Vec<(i32, u64)> = bucket_indices(&f.negative_spans)
        .zip(f.negative_buckets.iter().copied())
        .collect();
    for &(idx, c) in neg.iter().rev() {
        out.push((1, -bound(idx), -bound(idx - 1), f64::from_bits(c)));
    }
    let zt = f64::from_bits(f.zero_threshold);
    if f64::from_bits(f.zero_count) != 0.0 {
        out.push((3, -zt, zt, f64::from_bits(f.zero_count)));
    }
    for (idx, c) in bucket_indices(&f.positive_spans).zip(f.positive_buckets.iter().copied()) {
        let rule = if is_custom_buckets(f.schema) && idx == 0 {
            3
        } else {
            0
        };
        out.push((rule, bound(idx - 1), bound(idx), f64::from_bits(c)));
    }
    out.retain(|b| b.3 != 0.0);
    (f64::from_bits(f.count), f64::from_bits(f.sum), out)
}

/// Bounds of exponential buckets are compared by the bucket they name (the API prints Go's
/// exact bound, computed from a table); custom bounds and counts exactly.
fn same_bound(got: f64, want: f64, schema: i32) -> bool {
    if is_custom_buckets(schema) || got == want || got.is_infinite() || got == 0.0 {
        return got == want;
    }
    let idx = |v: f64| (v.abs().log2() * (schema as f64).exp2()).round();
    idx(got) == idx(want) && got.signum() == want.signum()
}

#[test]
fn block_decodes_to_what_the_query_api_returned() {
    let expected: Json = serde_json::from_str(EXPECTED).unwrap();
    let block = block();
    let (mut histograms, mut stale) = (0, 0);
    let mut kinds = std::collections::BTreeSet::new();
    for s in expected["series"].as_array().unwrap() {
        let labels = labels_of(&s["metric"]);
        let (_, samples) = &block[&labels];
        let floats: Vec<(i64, u64)> = samples
            .iter()
            .filter_map(|(t, g)| match g {
                Got::Float(b) if *b != crate::format::value::STALE_NAN_BITS => Some((*t, *b)),
                _ => None,
            })
            .collect();
        let want: Vec<(i64, u64)> = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (ms(&v[0]), num(&v[1]).to_bits()))
            .collect();
        assert_eq!(floats, want, "{labels}");
        let hists: Vec<(i64, &HistogramValue)> = samples
            .iter()
            .filter_map(|(t, g)| match g {
                Got::Hist(h) if !h.is_stale() => Some((*t, h)),
                _ => None,
            })
            .collect();
        stale += samples
            .iter()
            .filter(|(_, g)| matches!(g, Got::Hist(h) if h.is_stale()))
            .count();
        let want = s["histograms"].as_array().unwrap();
        assert_eq!(hists.len(), want.len(), "{labels}");
        for ((t, h), w) in hists.iter().zip(want) {
            assert_eq!(*t, ms(&w[0]), "{labels}");
            let (count, sum, buckets) = api_form(h);
            let w = &w[1];
            assert_eq!(
                count.to_bits(),
                num(&w["count"]).to_bits(),
                "{labels} at {t}"
            );
            assert_eq!(sum.to_bits(), num(&w["sum"]).to_bits(), "{labels} at {t}");
            let wb = w["buckets"].as_array().unwrap();
            assert_eq!(
                buckets.len(),
                wb.len(),
                "{labels} at {t}: {buckets:?} {wb:?}"
            );
            let schema = match h {
                HistogramValue::Int(h) => h.schema,
                HistogramValue::Float(h) => h.schema,
            };
            for (g, w) in buckets.iter().zip(wb) {
                assert_eq!(g.0 as u64, w[0].as_u64().unwrap(), "{labels} at {t}");
                assert!(
                    same_bound(g.1, num(&w[1]), schema),
                    "{labels} at {t}: {g:?} {w:?}"
                );
                assert!(
                    same_bound(g.2, num(&w[2]), schema),
                    "{labels} at {t}: {g:?} {w:?}"
                );
                assert_eq!(g.3.to_bits(), num(&w[3]).to_bits(), "{labels} at {t}");
            }
            kinds.insert((matches!(h, HistogramValue::Float(_)), schema == -53));
            histograms += 1;
        }
    }
    // Integer and float, exponential and custom buckets; and the staleness markers the API
    // leaves out.
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(histograms > 200, "{histograms}");
    assert!(stale >= 2, "{stale}");
}

/// Each histogram chunk's samples, as decoded (the first one's hint is the chunk's header).
fn chunk_samples(enc: u8, data: &[u8]) -> Vec<(i64, HistogramValue)> {
    let mut out = Vec::new();
    chunkenc::decode_samples(enc, data, |_, t, v| match v {
        Value::Histogram(h) => out.push((t, HistogramValue::Int(h.clone()))),
        Value::FloatHistogram(h) => out.push((t, HistogramValue::Float(h.clone()))),
        Value::Float(_) => {}
    })
    .unwrap();
    out
}

#[test]
fn every_chunk_re_encodes_to_prometheus_bytes() {
    let (mut n, mut headers) = (0, std::collections::BTreeSet::new());
    for (labels, (cs, _)) in block() {
        for &(enc, data) in &cs {
            let s = chunk_samples(enc, data);
            let bytes = match enc {
                chunkenc::ENC_HISTOGRAM => {
                    let s: Vec<(i64, Histogram)> = s.into_iter().map(int).collect();
                    histogram::encode(&s).unwrap()
                }
                chunkenc::ENC_FLOAT_HISTOGRAM => {
                    let s: Vec<(i64, FloatHistogram)> = s.into_iter().map(float).collect();
                    float_histogram::encode(&s).unwrap()
                }
                _ => continue,
            };
            assert_eq!(bytes, data, "{labels}");
            headers.insert((enc, data[2] >> 6));
            n += 1;
        }
    }
    assert!(n >= 15, "{n}");
    // Integer chunks that began as unknown, not a reset, a reset; float ones as unknown and
    // gauge (the recording rules' rates).
    let want = [(2, 0), (2, 1), (2, 2), (3, 0), (3, 3)];
    assert_eq!(headers.into_iter().collect::<Vec<_>>(), want);
}

fn int((t, h): (i64, HistogramValue)) -> (i64, Histogram) {
    match h {
        HistogramValue::Int(h) => (t, h),
        HistogramValue::Float(_) => panic!("a float histogram in an integer chunk"),
    }
}

fn float((t, h): (i64, HistogramValue)) -> (i64, FloatHistogram) {
    match h {
        HistogramValue::Float(h) => (t, h),
        HistogramValue::Int(_) => panic!("an integer histogram in a float chunk"),
    }
}

/// Feeds a series' samples through the appender as Prometheus's head does: where the block
/// starts a chunk the appender would not have cut itself, the head cut it for its size or time
/// and the new chunk's header comes from the one before (`prev`). The chunks come out byte for
/// byte, headers included.
#[test]
fn appender_cuts_as_prometheus_did() {
    let mut checked = 0;
    for (labels, (cs, _)) in block() {
        let mut cur: Option<histogram::Encoder> = None;
        let mut fcur: Option<float_histogram::Encoder> = None;
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut want: Vec<&[u8]> = Vec::new();
        for &(enc, data) in &cs {
            let header = CounterResetHeader::from_bits(data[2]);
            for (i, (t, h)) in chunk_samples(enc, data).into_iter().enumerate() {
                match h {
                    HistogramValue::Int(h) => {
                        append_int(&mut cur, &mut got, i == 0, header, t, &h);
                    }
                    HistogramValue::Float(h) => {
                        append_float(&mut fcur, &mut got, i == 0, header, t, &h);
                    }
                }
            }
            if matches!(enc, chunkenc::ENC_HISTOGRAM | chunkenc::ENC_FLOAT_HISTOGRAM) {
                want.push(data);
            }
        }
        got.extend(cur.map(|c| c.finish()));
        got.extend(fcur.map(|c| c.finish()));
        assert_eq!(got.len(), want.len(), "{labels}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "{labels}");
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked}");
}

/// One sample into the series' integer chunks; `starts` when the block starts a chunk there.
fn append_int(
    cur: &mut Option<histogram::Encoder>,
    done: &mut Vec<Vec<u8>>,
    starts: bool,
    header: CounterResetHeader,
    t: i64,
    h: &Histogram,
) {
    // The hint a decoded first sample carries is the chunk's header: appended, the sample
    // is the scrape's, whose hint said nothing.
    let mut h = h.clone();
    h.hint = if h.hint == crate::format::histogram::CounterResetHint::Gauge {
        h.hint
    } else {
        Default::default()
    };
    let Some(c) = cur else {
        // The block's first chunk of the series: its chunk before is in another block.
        let mut e = histogram::Encoder::new();
        e.append(None, 0, t, &h).unwrap();
        e.set_header(header);
        *cur = Some(e);
        return;
    };
    let mut probe = c.clone();
    match probe.append(None, 0, t, &h).unwrap() {
        Appended::Cut(next) => {
            assert!(starts, "the appender cut where Prometheus did not, at {t}");
            done.push(std::mem::replace(c, next).finish());
        }
        Appended::Appended if starts => {
            let mut next = histogram::Encoder::new();
            next.append(Some(c), 0, t, &h).unwrap();
            done.push(std::mem::replace(c, next).finish());
        }
        Appended::Appended => *c = probe,
    }
}

fn append_float(
    cur: &mut Option<float_histogram::Encoder>,
    done: &mut Vec<Vec<u8>>,
    starts: bool,
    header: CounterResetHeader,
    t: i64,
    h: &FloatHistogram,
) {
    let mut h = h.clone();
    h.hint = if h.hint == crate::format::histogram::CounterResetHint::Gauge {
        h.hint
    } else {
        Default::default()
    };
    let Some(c) = cur else {
        let mut e = float_histogram::Encoder::new();
        e.append(None, 0, t, &h).unwrap();
        e.set_header(header);
        *cur = Some(e);
        return;
    };
    let mut probe = c.clone();
    match probe.append(None, 0, t, &h).unwrap() {
        Appended::Cut(next) => {
            assert!(starts, "the appender cut where Prometheus did not, at {t}");
            done.push(std::mem::replace(c, next).finish());
        }
        Appended::Appended if starts => {
            let mut next = float_histogram::Encoder::new();
            next.append(Some(c), 0, t, &h).unwrap();
            done.push(std::mem::replace(c, next).finish());
        }
        Appended::Appended => *c = probe,
    }
}

/// The WAL's histogram records hold, for the samples in the block's time range, the block's
/// histograms: at the sample's time, a series of the block has the same counts by bucket index
/// (a recoded chunk adds empty buckets). The series records are in an older segment, not kept:
/// the record's histogram finds its series by value.
#[test]
fn wal_records_hold_the_block_s_histograms() {
    let block = block();
    let (mint, maxt) = block_range();
    let mut at: BTreeMap<i64, Vec<&HistogramValue>> = BTreeMap::new();
    for (_, samples) in block.values() {
        for (t, g) in samples {
            if let Got::Hist(h) = g {
                at.entry(*t).or_default().push(h);
            }
        }
    }
    let (mut matched, mut kinds) = (0, std::collections::BTreeSet::new());
    let mut r = wal::Records::new(WAL.to_vec(), false);
    while let Some(rec) = r.next() {
        let rec = rec.unwrap();
        if !matches!(rec.data.first(), Some(7..=10)) {
            continue;
        }
        kinds.insert(rec.data[0]);
        for s in record::histograms(rec.data).unwrap() {
            let s = s.unwrap();
            if s.t < mint || s.t > maxt {
                continue;
            }
            let same = at
                .get(&s.t)
                .is_some_and(|hs| hs.iter().any(|h| normal(h) == normal(&s.h)));
            assert!(same, "no histogram of the block at {} is {:?}", s.t, s.h);
            matched += 1;
        }
    }
    assert!(matched > 100, "{matched}");
    // Integer and float histograms, exponential and custom buckets: records 7, 8, 9, 10.
    assert_eq!(kinds.len(), 4, "{kinds:?}");
}

fn block_range() -> (i64, i64) {
    let meta: Json = serde_json::from_str(include_str!(
        "../../../testdata/tsdb/histograms/block/meta.json"
    ))
    .unwrap();
    (
        meta["minTime"].as_i64().unwrap(),
        meta["maxTime"].as_i64().unwrap() - 1,
    )
}

/// A histogram's values without its layout: float counts by bucket index, the empty ones left
/// out, and the hint dropped (a record keeps the scrape's, a chunk its header).
type Normal = (i32, [u64; 4], [Vec<(i32, u64)>; 2], Vec<u64>);

fn normal(h: &HistogramValue) -> Normal {
    let f = match h {
        HistogramValue::Int(h) => h.to_float(),
        HistogramValue::Float(h) => h.clone(),
    };
    let side = |spans, buckets: &[u64]| {
        bucket_indices(spans)
            .zip(buckets.iter().copied())
            .filter(|b| f64::from_bits(b.1) != 0.0)
            .collect()
    };
    (
        f.schema,
        [f.zero_threshold, f.zero_count, f.count, f.sum],
        [
            side(&f.positive_spans, &f.positive_buckets),
            side(&f.negative_spans, &f.negative_buckets),
        ],
        f.custom_values.clone(),
    )
}

/// The scrapes behind a chunk of Prometheus's own latency histograms named only the buckets
/// seen so far; each new bucket made the appender recode the chunk. The samples with their
/// empty buckets left out, appended again, give the chunk back byte for byte: the recoding.
#[test]
fn recoding_gives_prometheus_bytes() {
    let mut recoded = 0;
    for (labels, (cs, _)) in block() {
        for &(enc, data) in &cs {
            if enc != chunkenc::ENC_HISTOGRAM {
                continue;
            }
            let s: Vec<(i64, Histogram)> = chunk_samples(enc, data).into_iter().map(int).collect();
            if s.iter().any(|(_, h)| h.schema < -4 || h.is_stale()) {
                continue;
            }
            let mut e = histogram::Encoder::new();
            for (i, (t, h)) in s.iter().enumerate() {
                let mut h = compact(h);
                h.hint = Default::default();
                assert!(matches!(
                    e.append(None, 0, *t, &h).unwrap(),
                    Appended::Appended
                ));
                if i == 0 {
                    e.set_header(CounterResetHeader::from_bits(data[2]));
                }
            }
            let widened = s
                .iter()
                .any(|(_, h)| compact(h).positive_spans != h.positive_spans);
            recoded += usize::from(widened);
            assert_eq!(e.finish(), data, "{labels}");
        }
    }
    assert!(recoded > 0);
}

/// The histogram with its empty buckets left out of its spans.
fn compact(h: &Histogram) -> Histogram {
    let mut out = h.clone();
    let abs = Histogram::absolute(&h.positive_buckets);
    let kept: Vec<(i32, i64)> = bucket_indices(&h.positive_spans)
        .zip(abs)
        .filter(|b| b.1 != 0)
        .collect();
    out.positive_spans.clear();
    out.positive_buckets.clear();
    let (mut last, mut prev) = (None::<i32>, 0i64);
    for (idx, c) in kept {
        match (last, out.positive_spans.last_mut()) {
            (Some(l), Some(sp)) if idx == l + 1 => sp.length += 1,
            (Some(l), _) => out.positive_spans.push(crate::format::histogram::Span {
                offset: idx - l - 1,
                length: 1,
            }),
            (None, _) => out.positive_spans.push(crate::format::histogram::Span {
                offset: idx,
                length: 1,
            }),
        }
        last = Some(idx);
        out.positive_buckets.push(c - prev);
        prev = c;
    }
    out
}
