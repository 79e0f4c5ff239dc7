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
        // The replay reads the same chunks with the same iterator: a damaged chunk gives it
        // nothing, and neither does it here.
        for c in HeadChunks::new(&file).flatten() {
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
