//! Prometheus TSDB formats, one module per layer as in Prometheus's `tsdb/` packages: chunk
//! encodings (`xor`, `chunkenc`), block files (`index`, `chunks`, `tombstones`, `meta`), the
//! head's files (`wal` segments, their `record`s, `head_chunks`). Readers take byte slices and
//! return lazy views; one `Error` carries file and byte offset, one `Cursor` reads the bytes.
//! Writers (`index_writer`, `block_writer`) take `io::Write` and write blocks as Prometheus does.

pub mod block_writer;
mod bstream;
pub mod chunkenc;
pub mod chunks;
pub mod float_histogram;
mod float_histogram_append;
pub mod head_chunks;
pub mod head_cut;
pub mod histogram;
pub mod histogram_append;
pub mod histogram_meta;
pub mod index;
pub mod index_writer;
pub mod meta;
pub mod record;
mod st;
pub mod tombstones;
mod varbit;
pub mod wal;
pub mod xor;
pub mod xor2;

mod cursor;
mod error;

pub use cursor::{check_crc, put_uvarint, put_uvarint_bytes, put_varint, section, Cursor};
pub use error::{Error, ErrorKind, Result};

/// Prometheus's CRC32: Castagnoli.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Library entry point for the fuzz targets: every reader in this module over arbitrary bytes.
/// Must never panic, whatever the input.
pub fn fuzz_tsdb_index(data: &[u8]) {
    index::fuzz(data);
}

/// Fuzz entry point for a chunk segment file and every chunk encoding in it.
pub fn fuzz_tsdb_chunks(data: &[u8]) {
    chunks::fuzz(data);
    let _ = tombstones::parse(data);
    let _ = meta::parse(data);
}

#[cfg(test)]
#[path = "histogram_golden_tests.rs"]
mod histogram_golden;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    const INDEX: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/index");
    const SEGMENT: &[u8] = include_bytes!("../../../testdata/tsdb/golden-block/chunks/000001");

    /// Applies byte edits and a cut to a real file.
    fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
        let mut b = base.to_vec();
        for &(i, x) in edits {
            let n = b.len();
            b[i % n] ^= x;
        }
        b.truncate(cut % (base.len() + 1));
        b
    }

    #[test]
    fn the_real_files_pass_the_fuzz_logic() {
        super::fuzz_tsdb_index(INDEX);
        super::fuzz_tsdb_chunks(SEGMENT);
        super::fuzz_tsdb_index(&[]);
        super::fuzz_tsdb_chunks(&[]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            super::fuzz_tsdb_index(&data);
            super::fuzz_tsdb_chunks(&data);
        }

        #[test]
        fn mutated_real_files_never_panic(
            edits in proptest::collection::vec((any::<usize>(), 1u8..), 0..8),
            cut in any::<usize>(),
        ) {
            super::fuzz_tsdb_index(&mutate(INDEX, &edits, cut));
            super::fuzz_tsdb_chunks(&mutate(SEGMENT, &edits, cut));
        }

        #[test]
        fn chunk_bodies_with_fixed_checksums_never_panic(
            edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..6),
        ) {
            // Damage inside chunk data behind a valid CRC: the decoders themselves must cope.
            let mut seg = SEGMENT.to_vec();
            let chunks: Vec<(usize, usize)> = super::chunks::iter(SEGMENT)
                .map(|c| { let (o, c) = c.unwrap(); (o, c.data.len()) })
                .collect();
            for &(i, x) in &edits {
                let (off, len) = chunks[i % chunks.len()];
                let body = off + 2;
                seg[body + 1 + (i / 7) % len] ^= x;
                let crc = super::crc32c(&seg[body..body + 1 + len]);
                seg[body + 1 + len..body + 5 + len].copy_from_slice(&crc.to_be_bytes());
            }
            for c in super::chunks::iter(&seg) {
                let (_, c) = c.unwrap();
                let _ = super::chunkenc::decode(c.encoding, c.data, |_, _| {});
            }
        }
    }
}
