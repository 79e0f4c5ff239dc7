//! Byte fixtures built the way `tsdb/record/record.go`'s encoders write them.
use super::*;
use proptest::prelude::*;

pub(crate) use super::{
    encode_markers as enc_markers, encode_samples as enc_samples, encode_series as enc_series,
    encode_tombstones as enc_tombstones,
};
use super::{put_uvarint as uvarint, put_varint as varint};

/// `samplesV2` with start times `st` (0 = none).
pub(crate) fn enc_samples_v2(s: &[(u64, i64, i64, u64)]) -> Vec<u8> {
    let mut b = vec![11];
    for (i, &(r, t, st, v)) in s.iter().enumerate() {
        if i == 0 {
            varint(&mut b, r as i64);
            varint(&mut b, t);
            varint(&mut b, st);
        } else {
            let (pr, _, pst, _) = s[i - 1];
            varint(&mut b, r as i64 - pr as i64);
            varint(&mut b, t - s[0].1);
            st_marker(&mut b, st, s[0].2, pst);
        }
        b.extend_from_slice(&v.to_be_bytes());
    }
    b
}

fn st_marker(b: &mut Vec<u8>, st: i64, first: i64, prev: i64) {
    if st == 0 {
        b.push(0);
    } else if st == prev {
        b.push(1);
    } else {
        b.push(2);
        varint(b, st - first);
    }
}

/// `EncodeHistogram` / `EncodeFloatHistogram` of a small histogram with `schema`.
fn enc_histogram(b: &mut Vec<u8>, float: bool, schema: i64) {
    b.push(0);
    varint(b, schema);
    b.extend_from_slice(&0.001f64.to_bits().to_be_bytes());
    if float {
        for x in [1.0f64, 5.0, 12.5] {
            b.extend_from_slice(&x.to_bits().to_be_bytes());
        }
    } else {
        uvarint(b, 1);
        uvarint(b, 5);
        b.extend_from_slice(&12.5f64.to_bits().to_be_bytes());
    }
    uvarint(b, 1); // positive spans
    varint(b, -2);
    uvarint(b, 3);
    uvarint(b, 0); // negative spans
    uvarint(b, 3); // positive buckets
    for x in [1i64, 2, -1] {
        if float {
            b.extend_from_slice(&(x as f64).to_bits().to_be_bytes());
        } else {
            varint(b, x);
        }
    }
    uvarint(b, 0); // negative buckets
    if schema == -53 {
        uvarint(b, 2);
        for x in [0.5f64, 1.0] {
            b.extend_from_slice(&x.to_bits().to_be_bytes());
        }
    }
}

/// A histogram record of `typ` holding `refs` (ref, t).
pub(crate) fn enc_histograms(typ: u8, refs: &[(u64, i64)]) -> Vec<u8> {
    let float = matches!(typ, 8 | 10 | 13);
    let schema = if matches!(typ, 9 | 10) { -53 } else { 3 };
    let mut b = vec![typ];
    let (r0, t0) = refs[0];
    if typ >= 12 {
        for (i, &(r, t)) in refs.iter().enumerate() {
            if i == 0 {
                varint(&mut b, r as i64);
                varint(&mut b, t);
                varint(&mut b, 0);
            } else {
                varint(&mut b, r as i64 - refs[i - 1].0 as i64);
                varint(&mut b, t - t0);
                st_marker(&mut b, 0, 0, 0);
            }
            enc_histogram(&mut b, float, schema);
        }
    } else {
        b.extend_from_slice(&r0.to_be_bytes());
        b.extend_from_slice(&t0.to_be_bytes());
        for &(r, t) in refs {
            varint(&mut b, r as i64 - r0 as i64);
            varint(&mut b, t - t0);
            enc_histogram(&mut b, float, schema);
        }
    }
    b
}

#[test]
fn series_record() {
    let rec = enc_series(&[
        (1, &[("__name__", "up"), ("job", "prometheus")]),
        (u64::MAX, &[("a", "é")]),
    ]);
    assert_eq!(record_type(&rec).unwrap(), Some(RecordType::Series));
    let got: Vec<_> = series(&rec).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].series_ref, 1);
    assert_eq!(
        got[0].labels,
        vec![(&b"__name__"[..], &b"up"[..]), (b"job", b"prometheus")]
    );
    assert_eq!(got[1].series_ref, u64::MAX);
    assert_eq!(got[1].labels, vec![(&b"a"[..], "é".as_bytes())]);
}

#[test]
fn samples_v1_record_deltas_to_the_base() {
    let s = [
        (7, 1_000, 1.5f64.to_bits()),
        (3, 999, 0x7ff0_0000_0000_0002),
        (9, 5_000, f64::NAN.to_bits()),
    ];
    let rec = enc_samples(&s);
    let got: Vec<_> = samples(&rec).unwrap().map(Result::unwrap).collect();
    let want: Vec<_> = s
        .iter()
        .map(|&(r, t, bits)| Sample {
            series_ref: r,
            t,
            bits,
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(samples(&[2]).unwrap().count(), 0, "empty samples record");
}

#[test]
fn samples_v2_record_with_start_times() {
    let s = [
        (5, 1_000, 0, 1u64),
        (6, 1_010, 900, 2),
        (2, 1_020, 900, 3),
        (2, 990, 0, 4),
    ];
    let rec = enc_samples_v2(&s);
    assert_eq!(record_type(&rec).unwrap(), Some(RecordType::SamplesV2));
    let got: Vec<_> = samples(&rec)
        .unwrap()
        .map(|x| {
            let x = x.unwrap();
            (x.series_ref, x.t, x.bits)
        })
        .collect();
    let want: Vec<_> = s.iter().map(|&(r, t, _, v)| (r, t, v)).collect();
    assert_eq!(got, want);
}

#[test]
fn tombstones_and_markers() {
    let rec = enc_tombstones(&[(4, -10, 20), (5, i64::MIN, i64::MAX)]);
    let got: Vec<_> = tombstones(&rec).unwrap().map(Result::unwrap).collect();
    assert_eq!(got[1].mint, i64::MIN);
    assert_eq!(got[1].maxt, i64::MAX);
    assert_eq!((got[0].series_ref, got[0].mint, got[0].maxt), (4, -10, 20));
    let rec = enc_markers(&[(4, 1 << 32 | 8)]);
    let got: Vec<_> = mmap_markers(&rec).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        got,
        vec![MmapMarker {
            series_ref: 4,
            chunk_ref: 1 << 32 | 8
        }]
    );
}

#[test]
fn every_histogram_record_type_is_walked() {
    let refs = [(10u64, 100i64), (12, 160), (11, 130)];
    for typ in [7u8, 8, 9, 10, 12, 13] {
        let rec = enc_histograms(typ, &refs);
        let got: Vec<_> = histogram_refs(&rec).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, refs, "type {typ}");
        // One byte short breaks the last histogram, not the walk before it.
        let got: Vec<_> = histogram_refs(&rec[..rec.len() - 1]).unwrap().collect();
        assert_eq!(got.len(), 3);
        assert!(got[2].is_err(), "type {typ}");
    }
}

#[test]
fn exemplar_and_metadata_types_are_known_unknown_types_are_errors() {
    assert_eq!(record_type(&[4]).unwrap(), Some(RecordType::Exemplars));
    assert_eq!(record_type(&[6]).unwrap(), Some(RecordType::Metadata));
    assert_eq!(record_type(&[]).unwrap(), None);
    assert_eq!(
        record_type(&[14, 0]).unwrap_err().to_string(),
        "unknown record type 14"
    );
}

#[test]
fn truncated_and_wrong_records_are_errors() {
    let rec = enc_series(&[(1, &[("__name__", "up")])]);
    let last = series(&rec[..rec.len() - 1]).unwrap().last().unwrap();
    assert!(last.unwrap_err().what.contains("ends inside"));
    let rec = enc_samples(&[(1, 2, 3), (1, 3, 4)]);
    let got: Vec<_> = samples(&rec[..rec.len() - 3]).unwrap().collect();
    assert!(got[0].is_ok() && got[1].is_err());
    assert!(samples(&rec[..1]).unwrap().next().is_none());
    assert!(
        series(&enc_samples(&[])).is_err(),
        "samples record as series"
    );
    // A label count bigger than the record cannot allocate.
    let mut bad = vec![1];
    bad.extend_from_slice(&1u64.to_be_bytes());
    bad.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(series(&bad).unwrap().next().unwrap().is_err());
    // Eleven-byte varint overflows.
    let mut d = Cursor::record(&[0xff; 11]);
    assert!(d.uvarint("x").unwrap_err().what.contains("overflows"));
}

proptest! {
    #[test]
    fn samples_round_trip(s in proptest::collection::vec((any::<u32>(), -1_000_000_000i64..1_000_000_000, any::<u64>()), 0..50)) {
        let s: Vec<_> = s.into_iter().map(|(r, t, v)| (r as u64, t, v)).collect();
        let got: Vec<_> = samples(&enc_samples(&s)).unwrap().map(|x| { let x = x.unwrap(); (x.series_ref, x.t, x.bits) }).collect();
        prop_assert_eq!(got, s);
    }

    /// The replay's tight loop agrees with the iterator, filtered the same way: on a record it
    /// accepts it yields exactly what the iterator yields; it refuses whatever the iterator
    /// reports an error for. Records are encoded, then maybe cut, grown or overwritten.
    #[test]
    fn kept_samples_v1_agrees_with_samples(
        s in proptest::collection::vec((0u64..64, -1_000_000_000_000_000i64..1_000_000_000_000_000, any::<u64>()), 0..40),
        cut in any::<proptest::sample::Index>(),
        edit in 0u8..4,
        junk in proptest::collection::vec(any::<u8>(), 0..12),
        min_t in any::<i64>(),
    ) {
        let mut rec = enc_samples(&s);
        match edit {
            1 => rec.truncate(cut.index(rec.len() + 1)),
            2 => rec.extend_from_slice(&junk),
            3 if rec.len() > 1 => {
                let at = 1 + cut.index(rec.len() - 1);
                for (i, b) in junk.iter().enumerate() {
                    if let Some(x) = rec.get_mut(at + i) {
                        *x = *b;
                    }
                }
            }
            _ => {}
        }
        let keep = |r: u64, t: i64| r % 3 != 0 && t >= min_t;
        let slow: Result<Vec<_>, _> = samples(&rec).and_then(|it| {
            it.filter_map(|x| match x {
                Ok(x) => keep(x.series_ref, x.t).then_some(Ok((x.series_ref, x.t, x.bits))),
                Err(e) => Some(Err(e)),
            })
            .collect()
        });
        let mut fast = Vec::new();
        match kept_samples_v1(&rec, min_t, |r| r % 3 != 0, &mut fast) {
            Some(()) => prop_assert_eq!(slow.ok(), Some(fast)),
            None => prop_assert!(slow.is_err(), "refused a record the iterator reads"),
        }
    }

    /// The varint skip ends where the plain decoder ends, and fails where it fails: on any
    /// bytes, from any position (canonical varints of every length, then junk around them).
    #[test]
    fn skip_uvarint_agrees_with_decoder(
        x in any::<u64>(),
        shift in 0u32..64,
        before in proptest::collection::vec(any::<u8>(), 0..4),
        after in proptest::collection::vec(any::<u8>(), 0..12),
        raw in any::<bool>(),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut b = before.clone();
        if raw {
            b.extend_from_slice(&after);
        } else {
            uvarint(&mut b, x >> shift);
            b.extend_from_slice(&after);
        }
        b.truncate(cut.index(b.len() + 1).max(before.len()));
        let mut d = Cursor::record(&b[before.len()..]);
        let want = d.uvarint("x").ok().map(|_| b.len() - d.remaining());
        prop_assert_eq!(skip_uvarint(&b, before.len()), want);
    }

    #[test]
    fn random_records_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        fuzz_record(&data);
    }
}

fn golden(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/head242")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A checkpoint segment written by Prometheus 2.42 (tests/common/scenarios.rs, "tombstones"):
/// one uncompressed series record of 104 series with awkward label values.
#[test]
fn golden_checkpoint_from_prometheus_2_42() {
    use crate::format::tsdb::wal;
    let seg = golden("checkpoint.00000007-00000000");
    assert_eq!(seg.len(), wal::PAGE_SIZE);
    assert_eq!(seg[0], 1, "a full, uncompressed fragment");
    let recs = wal::read_all(&[&seg], false).unwrap();
    assert_eq!(recs.len(), 1);
    let s: Vec<_> = series(&recs[0]).unwrap().map(Result::unwrap).collect();
    assert_eq!(s.len(), 104);
    assert_eq!(s[0].series_ref, 1);
    assert_eq!(
        s[0].labels,
        vec![
            (&b"__name__"[..], &b"hist_gauge"[..]),
            (b"idx", b"000"),
            (b"zone", b"eu\"west"),
        ]
    );
    let last = &s[103];
    assert_eq!(last.series_ref, 104);
    assert!(last.labels.contains(&(&b"nl"[..], &b"a\nb"[..])));
    assert!(last
        .labels
        .contains(&(&b"v"[..], "日本語 ünïcödé 🚀".as_bytes())));
}

/// An out-of-order WBL segment written by Prometheus 2.42 ("out_of_order"): m-map markers and
/// samples.
#[test]
fn golden_wbl_from_prometheus_2_42() {
    use crate::format::tsdb::wal;
    let recs = wal::read_all(&[&golden("wbl-00000010")], true).unwrap();
    let types: Vec<_> = recs
        .iter()
        .map(|r| record_type(r).unwrap().unwrap())
        .collect();
    use RecordType::{MmapMarkers as M, Samples as S};
    assert_eq!(types, vec![M, S, M, S, M, S]);
    let markers: Vec<_> = mmap_markers(&recs[0])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        markers,
        vec![MmapMarker {
            series_ref: 874,
            chunk_ref: 11 << 32 | 8
        }]
    );
    let s: Vec<_> = samples(&recs[1]).unwrap().map(Result::unwrap).collect();
    assert_eq!(s.len(), 60);
    assert!(s.iter().all(|x| x.series_ref == 874));
    assert_eq!((s[0].t, s[59].t), (1795998360507, 1795998419507));
    let s: Vec<_> = samples(&recs[5]).unwrap().map(Result::unwrap).collect();
    assert_eq!((s.len(), s[0].series_ref), (15, 125));
}

/// The skip at each length boundary, including the ten-byte varints whose last byte says
/// whether they overflow 64 bits.
#[test]
fn skip_uvarint_lengths() {
    for n in 1..=10usize {
        let mut b = vec![0x80u8; n - 1];
        b.push(1);
        b.extend_from_slice(&[0xff; 3]);
        assert_eq!(skip_uvarint(&b, 0), Some(n), "{n} bytes");
        b.truncate(n - 1);
        assert_eq!(skip_uvarint(&b, 0), None, "{n} bytes cut");
    }
    let mut over = vec![0x80u8; 9];
    over.push(2);
    assert_eq!(skip_uvarint(&over, 0), None);
    assert_eq!(skip_uvarint(&[0x80; 12], 0), None);
}
