//! A lower bound of the head's sample timestamps, known before the head is replayed: the blocks'
//! data before it can then be written out while the head is replayed (see `datadir::read_dir`).

use std::path::Path;

use super::{map_file, Block, Bytes};
use crate::format::tsdb::head_chunks::{self, HeadChunks};

/// The earliest timestamp 2.42's head replay can give for data dir `dir`, or `None` when that is
/// not known cheaply. WAL and checkpoint samples before the newest block's maxTime (the replay's
/// `min_valid_time`) are dropped, but an m-mapped chunk reaching past it is kept whole, and an
/// out-of-order one whatever its time: their headers carry their mint. The wbl may hold any
/// time: a wbl with anything in it gives no bound. A bound that turns out wrong (files changed
/// meanwhile) costs speed only: the sink sorts a window that gets a sample late.
pub(super) fn head_lower_bound(dir: &Path, blocks: &[Block]) -> Option<i64> {
    let min_valid = blocks.last()?.meta.max_time;
    if !wbl_empty(&dir.join("wbl"))? {
        return None;
    }
    let mut bound = min_valid;
    for file in chunk_files(&dir.join("chunks_head"))? {
        if head_chunks::check_header(&file).is_err() {
            return None;
        }
        // Headers only, no CRC checks (the replay does them): a damaged chunk the replay will
        // skip can only lower the bound here, which costs speed, never bytes.
        for c in HeadChunks::unchecked(&file).flatten() {
            if c.is_ooo() || c.maxt >= min_valid {
                bound = bound.min(c.mint);
            }
        }
    }
    Some(bound)
}

/// Whether the wbl directory is missing or holds only empty files; `None` when unreadable.
fn wbl_empty(wbl: &Path) -> Option<bool> {
    let entries = match std::fs::read_dir(wbl) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(true),
        r => r.ok()?,
    };
    for e in entries {
        let m = e.ok()?.metadata().ok()?;
        if m.is_dir() || m.len() > 0 {
            return Some(false);
        }
    }
    Some(true)
}

/// The head chunk files (every name of digits: a superset of what the replay reads), mapped.
fn chunk_files(dir: &Path) -> Option<Vec<Bytes>> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
        r => r.ok()?,
    };
    let mut files = Vec::new();
    for e in entries {
        let e = e.ok()?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            match map_file(&e.path()) {
                Ok(Bytes::Empty) => {}
                Ok(b) => files.push(b),
                Err(_) => return None,
            }
        }
    }
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tsdb::head_chunks::{write_file, OOO_FLAG};

    /// A data dir with the golden block (maxTime 2274052) and chunks_head files of
    /// (mint, maxt, encoding) chunks.
    fn dir_with_chunks(files: &[&[(i64, i64, u8)]]) -> (tempfile::TempDir, Vec<Block>) {
        let tmp = tempfile::tempdir().unwrap();
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tsdb/golden-block");
        let block = tmp.path().join("01M8MX6V563YAV666ATQ07V9E4");
        std::fs::create_dir_all(block.join("chunks")).unwrap();
        for f in ["meta.json", "index", "tombstones", "chunks/000001"] {
            std::fs::copy(golden.join(f), block.join(f)).unwrap();
        }
        let ch = tmp.path().join("chunks_head");
        std::fs::create_dir(&ch).unwrap();
        let data = [0u8, 1, 2, 3];
        for (i, chunks) in files.iter().enumerate() {
            let c: Vec<(u64, i64, i64, u8, &[u8])> = chunks
                .iter()
                .map(|&(mint, maxt, enc)| (7, mint, maxt, enc, &data[..]))
                .collect();
            std::fs::write(ch.join(format!("{:06}", i + 1)), write_file(&c, 64)).unwrap();
        }
        let blocks = super::super::open(tmp.path()).unwrap().blocks;
        (tmp, blocks)
    }

    #[test]
    fn wal_samples_start_at_the_newest_blocks_end() {
        let (tmp, blocks) = dir_with_chunks(&[]);
        assert_eq!(head_lower_bound(tmp.path(), &blocks), Some(2_274_052));
        assert_eq!(
            head_lower_bound(tmp.path(), &[]),
            None,
            "no block, no bound"
        );
    }

    #[test]
    fn kept_mmapped_chunks_and_out_of_order_ones_lower_the_bound() {
        // Dropped whole (ends before the block's end); kept whole (reaches past it).
        let (tmp, blocks) =
            dir_with_chunks(&[&[(1_000_000, 2_000_000, 1)], &[(2_200_000, 2_300_000, 1)]]);
        assert_eq!(head_lower_bound(tmp.path(), &blocks), Some(2_200_000));
        // Out of order: kept whatever its time.
        let (tmp, blocks) =
            dir_with_chunks(&[&[(2_300_000, 2_400_000, 1), (500_000, 600_000, 1 | OOO_FLAG)]]);
        assert_eq!(head_lower_bound(tmp.path(), &blocks), Some(500_000));
    }

    #[test]
    fn damage_or_a_wbl_with_records_gives_no_bound() {
        let (tmp, blocks) = dir_with_chunks(&[&[(2_300_000, 2_400_000, 1)]]);
        let wbl = tmp.path().join("wbl");
        std::fs::create_dir(&wbl).unwrap();
        std::fs::write(wbl.join("00000000"), b"").unwrap();
        assert_eq!(head_lower_bound(tmp.path(), &blocks), Some(2_274_052));
        std::fs::write(wbl.join("00000001"), b"\x01").unwrap();
        assert_eq!(head_lower_bound(tmp.path(), &blocks), None);
        std::fs::remove_dir_all(&wbl).unwrap();
        std::fs::write(tmp.path().join("chunks_head/000002"), b"not a chunk file").unwrap();
        assert_eq!(head_lower_bound(tmp.path(), &blocks), None);
    }
}
