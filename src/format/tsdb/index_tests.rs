use super::*;
use crate::format::tsdb::ErrorKind;

const INDEX: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/index");

fn names(ix: &Index, ids: &[u32]) -> Vec<String> {
    let mut c = Vec::new();
    ids.iter()
        .map(|&id| ix.series(id, &mut c).unwrap().to_string())
        .collect()
}

#[test]
fn v2_series_in_label_order_with_chunk_metas() {
    let ix = Index::parse(INDEX).unwrap();
    assert_eq!(ix.version(), 2);
    let all = ix.all_postings().unwrap();
    assert_eq!(
        names(&ix, &all),
        [
            r#"{__name__="golden", s="0", x="a\"b"}"#,
            r#"{__name__="golden", s="1", x="a\"b"}"#,
            r#"{__name__="golden", s="2", x="a\"b"}"#
        ]
    );
    let mut metas = Vec::new();
    ix.series(all[0], &mut metas).unwrap();
    assert_eq!(metas.len(), 2);
    assert_eq!(metas[0].min_time, 16000);
    assert!(metas[0].max_time < metas[1].min_time);
    assert!(metas[0].chunk_ref < metas[1].chunk_ref);
    let mut n: Vec<_> = ix.label_names().collect();
    n.sort();
    assert_eq!(n, [&b"__name__"[..], b"s", b"x"]);
}

fn v1_file(path: &str) -> Vec<u8> {
    // Prometheus's own v1 test block (testdata/tsdb/index_format_v1/README.md).
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/tsdb/index_format_v1/"
    );
    std::fs::read(format!("{p}{path}")).unwrap()
}

#[test]
fn v1_index_from_prometheus_testdata() {
    let data = v1_file("index");
    let seg = v1_file("chunks/000001");
    let ix = Index::parse(&data).unwrap();
    assert_eq!(ix.version(), 1);
    let all = ix.all_postings().unwrap();
    assert_eq!(all.len(), 102);
    // The series with a non-empty foo (`{foo!~"^.?$"}`: select::postings selects them).
    let ids = union(
        &ix.postings("foo", "bar").unwrap(),
        &ix.postings("foo", "baz").unwrap(),
    );
    assert_eq!(names(&ix, &ids), [r#"{foo="bar"}"#, r#"{foo="baz"}"#]);
    let mut metas = Vec::new();
    let mut got = Vec::new();
    for id in ids {
        ix.series(id, &mut metas).unwrap();
        for m in &metas {
            let c = crate::format::tsdb::chunks::chunk_at(&seg, m.chunk_ref as usize).unwrap();
            crate::format::tsdb::chunkenc::decode(c.encoding, c.data, |t, v| {
                got.push((t, f64::from_bits(v)))
            })
            .unwrap();
        }
    }
    assert_eq!(got, [(1, 2.0), (3, 4.0)]);
    // Series are in label order in v1 too.
    let all_names = names(&ix, &all);
    let mut sorted = all_names.clone();
    sorted.sort_by_key(|s| {
        let mut c = Vec::new();
        ix.series(all[all_names.iter().position(|x| x == s).unwrap()], &mut c)
            .unwrap()
    });
    assert_eq!(all_names, sorted);
}

#[test]
fn version_three_reads_as_two() {
    let mut data = INDEX.to_vec();
    data[4] = 3;
    let ix = Index::parse(&data).unwrap();
    assert_eq!(ix.all_postings().unwrap().len(), 3);
    data[4] = 4;
    let e = Index::parse(&data).err().unwrap();
    assert_eq!((e.kind, e.offset), (ErrorKind::Header, Some(4)));
}

#[test]
fn truncated_index_names_the_offset() {
    for cut in [0, 3, 40, INDEX.len() / 2, INDEX.len() - 1] {
        let e = Index::parse(&INDEX[..cut]).err().unwrap();
        assert!(e.to_string().starts_with("at byte "), "{e}");
        assert!(matches!(
            e.kind,
            ErrorKind::Truncated | ErrorKind::Checksum | ErrorKind::Header
        ));
    }
    let e = Index::parse(&INDEX[..INDEX.len() / 2]).err().unwrap();
    // The TOC is read from the end of what is there: its CRC fails at that position.
    assert_eq!(e.offset, Some((INDEX.len() / 2 - TOC_LEN) as u64));
}

#[test]
fn bad_crc_in_a_series_names_series_and_offset() {
    let ix = Index::parse(INDEX).unwrap();
    let id = ix.all_postings().unwrap()[1];
    let off = id as usize * 16;
    let mut data = INDEX.to_vec();
    data[off + 3] ^= 0x01;
    let ix = Index::parse(&data).unwrap();
    let e = ix.series(id, &mut Vec::new()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Checksum);
    assert_eq!(e.offset, Some(off as u64));
    assert!(e.to_string().contains(&format!("series {id}")), "{e}");
}

#[test]
fn bad_crc_in_symbols_and_postings() {
    let toc = Index::parse(INDEX).unwrap().toc();
    let mut data = INDEX.to_vec();
    data[toc.symbols as usize + 9] ^= 0x20;
    let e = Index::parse(&data).err().unwrap();
    assert_eq!((e.kind, e.offset), (ErrorKind::Checksum, Some(toc.symbols)));
    let mut data = INDEX.to_vec();
    data[toc.postings_table as usize + 9] ^= 0x20;
    let e = Index::parse(&data).err().unwrap();
    assert_eq!(
        (e.kind, e.offset),
        (ErrorKind::Checksum, Some(toc.postings_table))
    );
}

#[test]
fn postings_set_operations() {
    assert_eq!(union(&[1, 3, 5], &[2, 3, 9]), [1, 2, 3, 5, 9]);
    assert_eq!(intersect(&[1, 3, 5, 9], &[2, 3, 9]), [3, 9]);
    assert_eq!(union(&[], &[4]), [4]);
}
