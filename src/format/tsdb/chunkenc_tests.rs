use super::*;
use crate::format::tsdb::{chunks, index::Index, xor};

const INDEX: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/index");
const SEGMENT: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/chunks/000001");
const DUMP: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block.dump");

/// Every chunk Prometheus 2.42 wrote in the golden block, with its series labels.
fn golden_chunks() -> Vec<(crate::labels::Labels, chunks::Chunk<'static>)> {
    let ix = Index::parse(INDEX).unwrap();
    let mut metas = Vec::new();
    let mut out = Vec::new();
    for id in ix.all_postings().unwrap() {
        let labels = ix.series(id, &mut metas).unwrap();
        for m in &metas {
            let (seg, off) = chunks::unpack_ref(m.chunk_ref);
            assert_eq!(seg, 0);
            out.push((labels.clone(), chunks::chunk_at(SEGMENT, off).unwrap()));
        }
    }
    out
}

#[test]
fn golden_chunks_decode_to_promtool_dump() {
    let mut text = Vec::new();
    for (labels, c) in golden_chunks() {
        assert_eq!(c.encoding, ENC_XOR);
        let mut samples = Vec::new();
        decode(c.encoding, c.data, |t, v| samples.push((t, v))).unwrap();
        for (t, v) in samples {
            crate::format::dump::write_line(&labels, f64::from_bits(v), t, &mut text);
        }
    }
    assert_eq!(
        String::from_utf8(text).unwrap(),
        String::from_utf8_lossy(DUMP)
    );
}

#[test]
fn encoder_writes_prometheus_bytes() {
    // Re-encoding the decoded samples gives back the exact bytes Prometheus wrote.
    for (_, c) in golden_chunks() {
        let mut samples = Vec::new();
        xor::decode(c.data, |t, v| samples.push((t, v))).unwrap();
        assert_eq!(xor::encode(&samples).unwrap(), c.data);
    }
}

#[test]
fn histograms_counted_unknown_named() {
    assert_eq!(
        decode(ENC_HISTOGRAM, &[0, 7, 1, 2], |_, _| {}).unwrap(),
        Decoded::Histograms(7)
    );
    assert_eq!(
        decode(ENC_FLOAT_HISTOGRAM_ST, &[1, 0], |_, _| {}).unwrap(),
        Decoded::Histograms(256)
    );
    assert_eq!(
        decode(ENC_FLOAT_HISTOGRAM, &[1], |_, _| {})
            .unwrap_err()
            .kind,
        ErrorKind::Truncated
    );
    let e = decode(9, &[0, 1], |_, _| {}).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnknownEncoding(9));
    assert!(e.to_string().contains("chunk encoding 9"), "{e}");
    assert_eq!(
        decode(0, &[], |_, _| {}).unwrap_err().kind,
        ErrorKind::UnknownEncoding(0)
    );
}

#[test]
fn corrupt_float_chunk_is_an_error() {
    let e = decode(ENC_XOR, &[0, 5, 1], |_, _| {}).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Malformed);
    assert!(e.to_string().contains("sample 1 of 5"), "{e}");
    assert_eq!(e.offset, Some(2), "{e}");
    // The real offset of the sample that broke, in the chunk and in its segment.
    let mut chunk = xor::encode(&[(0, 0), (10, 1), (20, 2), (30, 3)]).unwrap();
    chunk.truncate(chunk.len() - 1);
    let e = decode(ENC_XOR, &chunk, |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("sample 4 of 4"), "{e}");
    assert!(e.offset.unwrap() > 12, "{e}");
    let c = chunks::Chunk {
        encoding: ENC_XOR,
        data: &chunk,
        data_offset: 1000,
    };
    assert_eq!(
        c.decode(|_, _| {}).unwrap_err().offset,
        Some(e.offset.unwrap() + 1000)
    );
    let e = decode(ENC_XOR2, &[0, 2, 0, 0], |_, _| {}).unwrap_err();
    assert_eq!(e.offset, Some(3), "{e}");
}
