//! Selectors over a block's postings: the candidate series of a block index for a set of
//! selectors, above the index as Prometheus keeps `PostingsForMatchers` in `tsdb/querier.go`.

use crate::format::tsdb::index::{intersect, union, Index};
use crate::format::tsdb::Result;
use crate::select::selector::Selector;

/// The candidate series for `selectors` (any may match; none: all), from postings only, as
/// Prometheus's `PostingsForMatchers` picks them: each matcher that rejects the empty value
/// narrows by its postings. Callers check the full selector on the series labels.
pub fn for_selectors(ix: &Index<'_>, selectors: &[Selector]) -> Result<Vec<u32>> {
    if selectors.is_empty() {
        return ix.all_postings();
    }
    let mut out: Vec<u32> = Vec::new();
    for s in selectors {
        let ids = for_selector(ix, s)?;
        out = union(&out, &ids);
    }
    Ok(out)
}

fn for_selector(ix: &Index<'_>, s: &Selector) -> Result<Vec<u32>> {
    let mut acc: Option<Vec<u32>> = None;
    for m in s.matchers.iter().filter(|m| !m.matches("")) {
        let mut ids = Vec::new();
        match m.pinned_values() {
            Some(pinned) => {
                for v in pinned {
                    ids = union(&ids, &ix.postings(&m.name, &v)?);
                }
            }
            None => {
                for (v, off) in ix.label_values(m.name.as_bytes()) {
                    if std::str::from_utf8(v).is_ok_and(|v| m.matches(v)) {
                        ids = union(&ids, &ix.postings_at(*off)?);
                    }
                }
            }
        }
        acc = Some(match acc {
            None => ids,
            Some(a) => intersect(&a, &ids),
        });
        if acc.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
    }
    match acc {
        Some(a) => Ok(a),
        None => ix.all_postings(),
    }
}

/// Fuzz logic: an index from arbitrary bytes, then a selection over its postings; never
/// panics. The `tsdb_index` target runs it after the index reader's own.
pub fn fuzz_postings(data: &[u8]) {
    let Ok(ix) = Index::parse(data) else {
        return;
    };
    if let Ok(sel) = Selector::parse(r#"{__name__=~"a.*|b", job!=""}"#) {
        let _ = for_selectors(&ix, &[sel]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INDEX: &[u8] = include_bytes!("../../testdata/tsdb/golden-block/index");

    fn sel(s: &str) -> Selector {
        Selector::parse(s).unwrap()
    }

    fn names(ix: &Index, ids: &[u32]) -> Vec<String> {
        let mut c = Vec::new();
        ids.iter()
            .map(|&id| ix.series(id, &mut c).unwrap().to_string())
            .collect()
    }

    #[test]
    fn selection_by_postings() {
        let ix = Index::parse(INDEX).unwrap();
        let pick = |s: &[&str]| {
            let sels: Vec<_> = s.iter().map(|s| sel(s)).collect();
            for_selectors(&ix, &sels).unwrap().len()
        };
        assert_eq!(pick(&[r#"golden{s="1"}"#]), 1);
        assert_eq!(pick(&[r#"golden{s=~"1|2"}"#]), 2);
        assert_eq!(pick(&[r#"{s=~"[02]"}"#]), 2);
        assert_eq!(pick(&[r#"{s="0"}"#, r#"{s="2"}"#, r#"{s="0"}"#]), 2);
        assert_eq!(pick(&[r#"other"#]), 0);
        // Matchers that accept the empty value do not narrow: candidates are every series.
        assert_eq!(pick(&[r#"{__name__=~".*", s!="1"}"#]), 3);
        assert_eq!(pick(&[]), 3);
    }

    #[test]
    fn v1_index_selection() {
        // Prometheus's own v1 test block (testdata/tsdb/index_format_v1/README.md).
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/tsdb/index_format_v1/index"
        );
        let data = std::fs::read(p).unwrap();
        let ix = Index::parse(&data).unwrap();
        let ids = for_selectors(&ix, &[sel(r#"{foo!~"^.?$"}"#)]).unwrap();
        assert_eq!(names(&ix, &ids), [r#"{foo="bar"}"#, r#"{foo="baz"}"#]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_and_mutated_indexes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            edits in proptest::collection::vec((any::<usize>(), 1u8..), 0..8),
        ) {
            fuzz_postings(&data);
            let mut b = INDEX.to_vec();
            for &(i, x) in &edits {
                let n = b.len();
                b[i % n] ^= x;
            }
            fuzz_postings(&b);
        }
    }
}
