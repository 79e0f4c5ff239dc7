use super::*;
use proptest::prelude::*;

fn sp(v: &[(i32, u32)]) -> Vec<Span> {
    v.iter()
        .map(|&(offset, length)| Span { offset, length })
        .collect()
}

fn ins(pos: usize, num: usize, bucket_idx: i32) -> Insert {
    Insert {
        pos,
        num,
        bucket_idx,
    }
}

#[test]
fn zero_thresholds_and_custom_bounds_as_prometheus_writes_them() {
    let bytes = |zt: f64| {
        let mut w = BitWriter::default();
        put_zero_threshold(&mut w, zt.to_bits());
        w.bytes
    };
    // The default threshold 2^-128 is one byte, 116 (the comment in histogram_meta.go).
    assert_eq!(bytes(2f64.powi(-128)), [116]);
    assert_eq!(bytes(0.0), [0]);
    assert_eq!(bytes(1024.0), [254]);
    assert_eq!(bytes(2f64.powi(-243)), [1]);
    assert_eq!(bytes(0.001).len(), 9);
    assert_eq!(bytes(2048.0).len(), 9);
    for zt in [
        2f64.powi(-128),
        0.0,
        1024.0,
        2f64.powi(-243),
        0.001,
        2048.0,
        f64::NAN,
        -1.0,
    ] {
        let b = bytes(zt);
        let mut r = BitReader::new(&b);
        assert_eq!(read_zero_threshold(&mut r).unwrap(), zt.to_bits(), "{zt}");
    }
    let bound = |b: f64| {
        let mut w = BitWriter::default();
        put_custom_bound(&mut w, b.to_bits());
        let mut r = BitReader::new(&w.bytes);
        assert_eq!(read_custom_bound(&mut r).unwrap(), b.to_bits(), "{b}");
        w.bytes.len()
    };
    // 0.005 * 1000 + 1 = 6: a five-bit varbit.
    assert_eq!(bound(0.005), 1);
    assert_eq!(bound(33554.43), 4);
    assert_eq!(bound(33554.431), 9);
    assert_eq!(bound(-1.0), 9);
    assert_eq!(bound(f64::INFINITY), 9);
    assert_eq!(bound(0.0001), 9);
}

#[test]
fn expand_spans_as_in_prometheus_example() {
    // expandIntSpansAndBuckets's doc comment: old and new layouts, absolute counts.
    let a = sp(&[(0, 2), (2, 1), (3, 2), (3, 1), (1, 1)]);
    let b = sp(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
    let ac = [6i64, 3, 3, 2, 4, 5, 1];
    let bc = [6i64, 3, 0, 3, 0, 0, 2, 4, 5, 0, 1];
    let (fwd, bwd) = expand_spans_and_buckets(&a, &b, &ac, &bc).unwrap();
    assert_eq!(fwd, [ins(2, 1, 2), ins(3, 2, 6), ins(6, 1, 14)]);
    assert!(bwd.is_empty());
    // The deltas with the inserts: as the comment's "deltas" row.
    let deltas: Vec<i64> = [6, -3, 0, -1, 2, 1, -4].to_vec();
    assert_eq!(
        insert_deltas(&deltas, 11, &fwd),
        [6, -3, -3, 3, -3, 0, 2, 2, 1, -5, 1]
    );
    // A fallen bucket, or a used one missing: a reset.
    assert!(expand_spans_and_buckets(&a, &b, &ac, &[6, 2, 0, 3, 0, 0, 2, 4, 5, 0, 1]).is_none());
    let c = sp(&[(0, 2)]);
    assert!(expand_spans_and_buckets(&a, &c, &ac, &[6, 3]).is_none());
    // An empty bucket the new sample lacks: a backward insert.
    let (fwd, bwd) = expand_spans_and_buckets(&sp(&[(0, 3)]), &c, &[1i64, 1, 0], &[1, 1]).unwrap();
    assert!(fwd.is_empty());
    assert_eq!(bwd, [ins(2, 1, 2)]);
    assert_eq!(insert_absolute(&[7, 8], 3, &bwd), [7, 8, 0]);
    assert_eq!(adjust_for_inserts(&c, &bwd), sp(&[(0, 3)]));
}

#[test]
fn both_ways_merges_layouts() {
    let (f, b, m) = expand_spans_both_ways(&sp(&[(0, 2)]), &sp(&[(1, 2), (2, 1)]));
    assert_eq!(m, sp(&[(0, 3), (2, 1)]));
    assert_eq!(f, [ins(2, 2, 0)]);
    assert_eq!(b, [ins(0, 1, 0)]);
}

fn layout_of(idx: &std::collections::BTreeSet<i32>) -> Vec<Span> {
    let mut b = SpanBuilder::new();
    idx.iter().for_each(|&i| b.add(i));
    b.spans
}

proptest! {
    /// Forward inserts turn `a`'s buckets into `b`'s layout: every bucket of `a` keeps its
    /// count at its index, the new ones are empty; the merged spans cover both.
    #[test]
    fn inserts_widen_layouts(
        a in proptest::collection::btree_set(-20i32..20, 0..10),
        extra in proptest::collection::btree_set(-20i32..20, 0..10),
        counts in proptest::collection::vec(1i64..50, 20),
    ) {
        let b_idx: std::collections::BTreeSet<i32> = a.union(&extra).copied().collect();
        let (sa, sb) = (layout_of(&a), layout_of(&b_idx));
        prop_assert_eq!(bucket_indices(&sa).collect::<Vec<_>>(), a.iter().copied().collect::<Vec<_>>());
        let ac: Vec<i64> = (0..a.len()).map(|i| counts[i]).collect();
        let bc: Vec<i64> = b_idx.iter().map(|i| a.iter().position(|x| x == i).map_or(0, |p| counts[p])).collect();
        let (fwd, bwd) = expand_spans_and_buckets(&sa, &sb, &ac, &bc).unwrap();
        prop_assert!(bwd.is_empty());
        let deltas: Vec<i64> = ac.iter().scan(0, |p, c| { let d = c - *p; *p = *c; Some(d) }).collect();
        let widened = crate::format::histogram::Histogram::absolute(&insert_deltas(&deltas, b_idx.len(), &fwd));
        prop_assert_eq!(widened, bc.clone());
        let abs: Vec<u64> = ac.iter().map(|c| *c as u64).collect();
        let widened = insert_absolute(&abs, b_idx.len(), &fwd);
        prop_assert_eq!(widened, bc.iter().map(|c| *c as u64).collect::<Vec<_>>());
        let (_, _, merged) = expand_spans_both_ways(&sa, &layout_of(&extra));
        prop_assert_eq!(merged, sb);
    }
}
