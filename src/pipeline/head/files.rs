//! The head's files in a data directory, listed and opened read-only (memory maps) the way
//! Prometheus 2.42 picks them: chunks_head files, the newest checkpoint and the WAL after it, wbl.
//!
//! A live server may delete a checkpoint or segment between listing and opening: then the
//! listing is retried. Once mapped, a file stays readable even if deleted.

use anyhow::{Context, Result};
use memmap2::Mmap;
use std::io::ErrorKind;
use std::path::Path;

/// One file, mapped read-only.
pub struct Mapped {
    /// Path relative to the data directory, for messages.
    pub rel: String,
    map: Option<Mmap>,
}

impl Mapped {
    fn open(dir: &Path, rel: String) -> std::io::Result<Mapped> {
        let file = std::fs::File::open(dir.join(&rel))?;
        let len = file.metadata()?.len();
        // SAFETY: mapped read-only. Prometheus only appends to these files while it runs
        // (truncation happens at its startup repair), so the mapped bytes stay valid.
        let map = if len == 0 {
            None
        } else {
            Some(unsafe { Mmap::map(&file)? })
        };
        Ok(Mapped { rel, map })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// What the head is replayed from.
pub struct HeadFiles {
    /// (file sequence, file) in ascending order.
    pub chunks: Vec<(u32, Mapped)>,
    /// Segments of the newest checkpoint, in order.
    pub checkpoint: Vec<Mapped>,
    /// WAL segments after the checkpoint, in order.
    pub wal: Vec<Mapped>,
    /// Out-of-order WBL segments, in order.
    pub wbl: Vec<Mapped>,
}

/// Lists and maps the head's files, retrying when a live server removed one meanwhile.
pub fn open(dir: &Path) -> Result<HeadFiles> {
    let mut attempt = 0;
    loop {
        match try_open(dir) {
            Err(e) if vanished(&e) && attempt < 5 => attempt += 1,
            r => return r,
        }
    }
}

fn vanished(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == ErrorKind::NotFound)
    })
}

fn try_open(dir: &Path) -> Result<HeadFiles> {
    let map =
        |rel: String| Mapped::open(dir, rel.clone()).with_context(|| format!("opening {rel}"));
    let mut chunks = Vec::new();
    let chunk_files = numbered(&dir.join("chunks_head"), "chunks_head")?;
    let last = chunk_files.last().map(|(n, _)| *n);
    for (seq, name) in chunk_files {
        let m = map(format!("chunks_head/{name}"))?;
        // Prometheus drops a last file that has no magic yet (cut, never written).
        let b = m.bytes();
        if Some(seq) == last && (b.len() < 4 || b[..4] == [0; 4]) {
            continue;
        }
        chunks.push((u32::try_from(seq).context("chunks_head file number")?, m));
    }
    let wal_dir = dir.join("wal");
    let segs = numbered(&wal_dir, "wal")?;
    let mut checkpoint = Vec::new();
    let mut first = 0;
    if let Some((idx, name)) = last_checkpoint(&wal_dir)? {
        for (_, seg) in numbered(&wal_dir.join(&name), &format!("wal/{name}"))? {
            checkpoint.push(map(format!("wal/{name}/{seg}"))?);
        }
        first = idx + 1;
    }
    let mut wal = Vec::new();
    if let Some(&(last, _)) = segs.last() {
        for i in first..=last {
            let Some((_, name)) = segs.iter().find(|(n, _)| *n == i) else {
                return Err(crate::bad_input!(
                    "wal: segment {i:08} is missing (segments {:08}..{last:08}, replay starts at {first:08})",
                    segs[0].0
                ));
            };
            wal.push(map(format!("wal/{name}"))?);
        }
    }
    let mut wbl = Vec::new();
    for (_, name) in numbered(&dir.join("wbl"), "wbl")? {
        wbl.push(map(format!("wbl/{name}"))?);
    }
    Ok(HeadFiles {
        chunks,
        checkpoint,
        wal,
        wbl,
    })
}

/// Files named by a number, ascending; the numbers must have no gap. A missing dir is empty.
fn numbered(dir: &Path, rel: &str) -> Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        r => r.with_context(|| format!("listing {rel}"))?,
    };
    for e in rd {
        let name = e.with_context(|| format!("listing {rel}"))?.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = name.parse::<u64>() {
                out.push((n, name.to_string()));
            }
        }
    }
    out.sort();
    for w in out.windows(2) {
        if w[1].0 != w[0].0 + 1 {
            return Err(crate::bad_input!(
                "{rel}: files {} and {} are not consecutive (a file is missing)",
                w[0].1,
                w[1].1
            ));
        }
    }
    Ok(out)
}

/// The newest `checkpoint.N` directory (a `.tmp` one is being written and does not count).
fn last_checkpoint(wal: &Path) -> Result<Option<(u64, String)>> {
    let rd = match std::fs::read_dir(wal) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        r => r.context("listing wal")?,
    };
    let mut best: Option<(u64, String)> = None;
    for e in rd {
        let e = e.context("listing wal")?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(num) = name.strip_prefix("checkpoint.") else {
            continue;
        };
        let Ok(idx) = num.parse::<u64>() else {
            continue;
        };
        if !e.path().is_dir() {
            return Err(crate::bad_input!("wal/{name} is not a directory"));
        }
        if best.as_ref().is_none_or(|b| idx > b.0) {
            best = Some((idx, name));
        }
    }
    Ok(best)
}
