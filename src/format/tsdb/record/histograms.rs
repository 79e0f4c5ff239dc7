//! Histogram sample records (`record.go`'s `HistogramSamples`, `FloatHistogramSamples` and
//! `DecodeHistogram`): types 7 and 8, 9 and 10 for custom buckets (3.2), 12 and 13 with start
//! times (3.12), decoded into the histogram model, and written the same way.

use super::{body, entries, Deltas, Res};
use crate::format::histogram::{
    is_custom_buckets, is_known_schema, CounterResetHint, FloatHistogram, Histogram,
    HistogramValue, Span,
};
use crate::format::tsdb::{put_uvarint, put_varint, Cursor, Error, ErrorKind};

/// Float histogram records: plain, custom buckets, with start times (the others are integer).
const FLOAT_TYPES: [u8; 3] = [8, 10, 13];

/// One histogram sample of a histogram record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramSample {
    pub series_ref: u64,
    /// Start time (records 12 and 13; 0 when none).
    pub st: i64,
    pub t: i64,
    pub h: HistogramValue,
}

/// The histograms of a histogram record (types 7, 8, 9, 10, 12, 13), in order. Those of a
/// schema Prometheus does not know are left out, as its WAL replay skips them.
pub fn histograms(rec: &[u8]) -> Res<impl Iterator<Item = Res<HistogramSample>> + '_> {
    let typ = rec.first().copied().unwrap_or(0);
    let mut d = body(rec, &[7, 8, 9, 10, 12, 13])?;
    let float = FLOAT_TYPES.contains(&typ);
    let mut refs = Deltas::new(typ >= 12);
    Ok(entries(move || loop {
        let Some((r, t, st)) = refs.next(&mut d)? else {
            return Ok(None);
        };
        let h = if float {
            let mut h = FloatHistogram::default();
            read_float(&mut d, &mut h)?;
            HistogramValue::Float(h)
        } else {
            let mut h = Histogram::default();
            read_int(&mut d, &mut h)?;
            HistogramValue::Int(h)
        };
        let schema = match &h {
            HistogramValue::Int(h) => h.schema,
            HistogramValue::Float(h) => h.schema,
        };
        if is_known_schema(schema) {
            return Ok(Some(HistogramSample {
                series_ref: r as u64,
                st,
                t,
                h,
            }));
        }
    }))
}

/// Series reference and time of each histogram in a histogram record, read into one reused
/// histogram: for counting without keeping them.
pub fn histogram_refs(rec: &[u8]) -> Res<impl Iterator<Item = Res<(u64, i64)>> + '_> {
    let typ = rec.first().copied().unwrap_or(0);
    let mut d = body(rec, &[7, 8, 9, 10, 12, 13])?;
    let float = FLOAT_TYPES.contains(&typ);
    let mut refs = Deltas::new(typ >= 12);
    let (mut ih, mut fh) = (Histogram::default(), FloatHistogram::default());
    Ok(entries(move || {
        let Some((r, t, _)) = refs.next(&mut d)? else {
            return Ok(None);
        };
        if float {
            read_float(&mut d, &mut fh)?;
        } else {
            read_int(&mut d, &mut ih)?;
        }
        Ok(Some((r as u64, t)))
    }))
}

fn hint(d: &mut Cursor<'_>) -> Res<CounterResetHint> {
    let b = d.byte("counter reset hint")?;
    CounterResetHint::from_u8(b)
        .ok_or_else(|| Error::unplaced(ErrorKind::Malformed, format!("counter reset hint {b}")))
}

fn spans(d: &mut Cursor<'_>, out: &mut Vec<Span>) -> Res<()> {
    out.clear();
    for _ in 0..d.count(2, "span count")? {
        let offset = d.varint("span offset")? as i32;
        let length = d.uvarint32("span length")?;
        out.push(Span { offset, length });
    }
    Ok(())
}

fn custom(d: &mut Cursor<'_>, schema: i32, out: &mut Vec<u64>) -> Res<()> {
    out.clear();
    if is_custom_buckets(schema) {
        for _ in 0..d.count(8, "custom bound count")? {
            out.push(d.be64("custom bound")?);
        }
    }
    Ok(())
}

/// `DecodeHistogram`, into `h` (its vectors reused).
fn read_int(d: &mut Cursor<'_>, h: &mut Histogram) -> Res<()> {
    h.hint = hint(d)?;
    h.schema = d.varint("schema")? as i32;
    h.zero_threshold = d.be64("zero threshold")?;
    h.zero_count = d.uvarint("zero count")?;
    h.count = d.uvarint("count")?;
    h.sum = d.be64("sum")?;
    spans(d, &mut h.positive_spans)?;
    spans(d, &mut h.negative_spans)?;
    for b in [&mut h.positive_buckets, &mut h.negative_buckets] {
        b.clear();
        for _ in 0..d.count(1, "bucket count")? {
            b.push(d.varint("bucket")?);
        }
    }
    custom(d, h.schema, &mut h.custom_values)
}

/// `DecodeFloatHistogram`, into `h`.
fn read_float(d: &mut Cursor<'_>, h: &mut FloatHistogram) -> Res<()> {
    h.hint = hint(d)?;
    h.schema = d.varint("schema")? as i32;
    h.zero_threshold = d.be64("zero threshold")?;
    h.zero_count = d.be64("zero count")?;
    h.count = d.be64("count")?;
    h.sum = d.be64("sum")?;
    spans(d, &mut h.positive_spans)?;
    spans(d, &mut h.negative_spans)?;
    for b in [&mut h.positive_buckets, &mut h.negative_buckets] {
        b.clear();
        for _ in 0..d.count(8, "bucket count")? {
            b.push(d.be64("bucket")?);
        }
    }
    custom(d, h.schema, &mut h.custom_values)
}

/// `EncodeHistogram` / `EncodeFloatHistogram`.
fn put_histogram(b: &mut Vec<u8>, h: &HistogramValue) {
    let (hint, schema, zt) = match h {
        HistogramValue::Int(h) => (h.hint, h.schema, h.zero_threshold),
        HistogramValue::Float(h) => (h.hint, h.schema, h.zero_threshold),
    };
    b.push(hint as u8);
    put_varint(b, schema as i64);
    b.extend_from_slice(&zt.to_be_bytes());
    let put_spans = |b: &mut Vec<u8>, spans: &[Span]| {
        put_uvarint(b, spans.len() as u64);
        for s in spans {
            put_varint(b, s.offset as i64);
            put_uvarint(b, s.length as u64);
        }
    };
    let custom = match h {
        HistogramValue::Int(h) => {
            put_uvarint(b, h.zero_count);
            put_uvarint(b, h.count);
            b.extend_from_slice(&h.sum.to_be_bytes());
            put_spans(b, &h.positive_spans);
            put_spans(b, &h.negative_spans);
            for v in [&h.positive_buckets, &h.negative_buckets] {
                put_uvarint(b, v.len() as u64);
                v.iter().for_each(|x| put_varint(b, *x));
            }
            &h.custom_values
        }
        HistogramValue::Float(h) => {
            for x in [h.zero_count, h.count, h.sum] {
                b.extend_from_slice(&x.to_be_bytes());
            }
            put_spans(b, &h.positive_spans);
            put_spans(b, &h.negative_spans);
            for v in [&h.positive_buckets, &h.negative_buckets] {
                put_uvarint(b, v.len() as u64);
                v.iter().for_each(|x| b.extend_from_slice(&x.to_be_bytes()));
            }
            &h.custom_values
        }
    };
    if is_custom_buckets(schema) {
        put_uvarint(b, custom.len() as u64);
        custom
            .iter()
            .for_each(|x| b.extend_from_slice(&x.to_be_bytes()));
    }
}

/// A histogram record of type `typ` (7-10: V1 framing; 12, 13: V2 with start times) holding
/// `samples`, as `record.Encoder` writes it: for tests and fixtures.
pub fn encode_histograms(typ: u8, samples: &[HistogramSample]) -> Vec<u8> {
    let mut b = vec![typ];
    let Some(first) = samples.first() else {
        return b;
    };
    if typ < 12 {
        b.extend_from_slice(&first.series_ref.to_be_bytes());
        b.extend_from_slice(&first.t.to_be_bytes());
    }
    let mut prev = first;
    for (i, s) in samples.iter().enumerate() {
        if typ < 12 {
            put_varint(
                &mut b,
                (s.series_ref as i64).wrapping_sub(first.series_ref as i64),
            );
            put_varint(&mut b, s.t.wrapping_sub(first.t));
        } else if i == 0 {
            put_varint(&mut b, s.series_ref as i64);
            put_varint(&mut b, s.t);
            put_varint(&mut b, s.st);
        } else {
            put_varint(
                &mut b,
                (s.series_ref as i64).wrapping_sub(prev.series_ref as i64),
            );
            put_varint(&mut b, s.t.wrapping_sub(first.t));
            match s.st {
                0 => b.push(0),
                st if st == prev.st => b.push(1),
                st => {
                    b.push(2);
                    put_varint(&mut b, st.wrapping_sub(first.st));
                }
            }
        }
        put_histogram(&mut b, &s.h);
        prev = s;
    }
    b
}

/// Fuzz logic: arbitrary bytes as each histogram record type; never panics.
pub fn fuzz_histogram_record(data: &[u8]) {
    for t in [7u8, 8, 9, 10, 12, 13] {
        let mut rec = vec![t];
        rec.extend_from_slice(data);
        if let Ok(it) = histograms(&rec) {
            it.take(100_000).for_each(drop);
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tsdb::histogram::tests::spans as span_list;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = HistogramValue> {
        (
            any::<bool>(),
            0u8..4,
            prop_oneof![-4i32..=8, Just(-53)],
            any::<[u64; 4]>(),
            span_list(),
            span_list(),
            proptest::collection::vec(any::<i64>(), 0..6),
            proptest::collection::vec(any::<u64>(), 0..6),
            proptest::collection::vec(any::<u64>(), 0..4),
        )
            .prop_map(|(float, hint, schema, v, ps, ns, ib, fb, custom)| {
                let hint = CounterResetHint::from_u8(hint).unwrap();
                let custom = if schema == -53 { custom } else { Vec::new() };
                if float {
                    HistogramValue::Float(FloatHistogram {
                        hint,
                        schema,
                        zero_threshold: v[0],
                        zero_count: v[1],
                        count: v[2],
                        sum: v[3],
                        positive_spans: ps,
                        negative_spans: ns,
                        positive_buckets: fb.clone(),
                        negative_buckets: fb.into_iter().rev().collect(),
                        custom_values: custom,
                    })
                } else {
                    HistogramValue::Int(Histogram {
                        hint,
                        schema,
                        zero_threshold: v[0],
                        zero_count: v[1],
                        count: v[2],
                        sum: v[3],
                        positive_spans: ps,
                        negative_spans: ns,
                        positive_buckets: ib.clone(),
                        negative_buckets: ib.into_iter().rev().collect(),
                        custom_values: custom,
                    })
                }
            })
    }

    proptest! {
        #[test]
        fn records_round_trip(
            float in any::<bool>(),
            custom in any::<bool>(),
            v2 in any::<bool>(),
            entries in proptest::collection::vec((any::<u64>(), any::<i64>(), prop_oneof![Just(0i64), any::<i64>()], value()), 0..8),
        ) {
            let typ = match (float, custom, v2) {
                (false, _, true) => 12,
                (true, _, true) => 13,
                (false, false, false) => 7,
                (true, false, false) => 8,
                (false, true, false) => 9,
                (true, true, false) => 10,
            };
            let samples: Vec<HistogramSample> = entries
                .into_iter()
                .filter(|e| matches!(e.3, HistogramValue::Float(_)) == float)
                .enumerate()
                .map(|(i, (r, t, st, h))| HistogramSample {
                    series_ref: r >> 8,
                    // V1 records have no start times; a V2 entry's repeats the one before.
                    st: if v2 { if i % 3 == 2 { 0 } else { st } } else { 0 },
                    t: t >> 2,
                    h,
                })
                .collect();
            let rec = encode_histograms(typ, &samples);
            let got: Vec<HistogramSample> = histograms(&rec).unwrap().collect::<Res<_>>().unwrap();
            prop_assert_eq!(&got, &samples);
            let refs: Vec<(u64, i64)> = histogram_refs(&rec).unwrap().collect::<Res<_>>().unwrap();
            prop_assert_eq!(refs, samples.iter().map(|s| (s.series_ref, s.t)).collect::<Vec<_>>());
        }

        #[test]
        fn random_records_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            fuzz_histogram_record(&data);
        }
    }

    #[test]
    fn unknown_schemas_are_skipped_as_prometheus_does() {
        let h = |schema| HistogramSample {
            series_ref: 1,
            st: 0,
            t: 5,
            h: HistogramValue::Int(Histogram {
                schema,
                ..Histogram::default()
            }),
        };
        let rec = encode_histograms(7, &[h(3), h(60), h(-53)]);
        let got: Vec<_> = histograms(&rec).unwrap().map(|s| s.unwrap()).collect();
        assert_eq!(got, [h(3), h(-53)]);
        // Walked, they are all there.
        assert_eq!(histogram_refs(&rec).unwrap().count(), 3);
        let mut bad = rec.clone();
        bad[19] = 9; // the first hint, after the base ref and time and two deltas
        let e = histograms(&bad).unwrap().next().unwrap().unwrap_err();
        assert!(e.what.contains("counter reset hint 9"), "{e}");
    }
}
