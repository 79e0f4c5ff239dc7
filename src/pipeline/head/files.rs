//! The head's files in a data directory, listed and opened read-only (memory maps) the way
//! Prometheus 2.42 picks them: chunks_head files, the newest checkpoint and the WAL after it, wbl.
//!
//! A live server may delete a checkpoint or segment between listing and opening: then the
//! listing is retried. Once mapped, a file stays readable even if deleted.

use anyhow::{Context, Result};
use memmap2::{Advice, Mmap};
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

    /// Maps all its pages now, in one call (fewer page faults later).
    fn populate(&self) {
        if let Some(m) = &self.map {
            // Only a hint: on a kernel without it the pages are faulted in as read.
            let _ = m.advise(Advice::PopulateRead);
        }
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

impl HeadFiles {
    /// Maps the pages of the chunks_head files: run beside the replay's first pass, so that
    /// the chunk walk after it meets no page faults.
    pub fn populate_chunks(&self) {
        for (_, m) in &self.chunks {
            m.populate();
        }
    }
}

/// Lists and maps the head's files, retrying when a live server removed one meanwhile.
pub fn open(dir: &Path) -> Result<HeadFiles> {
    const ATTEMPTS: u32 = 8;
    let mut attempt = 1;
    loop {
        match try_open(dir, attempt == ATTEMPTS) {
            Err(e) if changed(&e) && attempt < ATTEMPTS => {
                // Give the server time to finish its rename or delete.
                std::thread::sleep(std::time::Duration::from_millis(5 << attempt));
                attempt += 1;
            }
            r => return r,
        }
    }
}

/// The listing did not match the files: a checkpoint or segment went away meanwhile, or a
/// directory listing raced a rename (neither checkpoint seen, segments missing).
#[derive(Debug)]
struct Changed(String);

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Changed {}

fn changed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<Changed>()
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == ErrorKind::NotFound)
    })
}

/// Lists and maps once; on the final attempt an inconsistency is reported, not retried.
fn try_open(dir: &Path, final_attempt: bool) -> Result<HeadFiles> {
    let map =
        |rel: String| Mapped::open(dir, rel.clone()).with_context(|| format!("opening {rel}"));
    let mut chunks = Vec::new();
    let chunk_files = numbered(&dir.join("chunks_head"), "chunks_head", true)?;
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
    let segs = numbered(&wal_dir, "wal", true)?;
    let mut checkpoint = Vec::new();
    let mut first = 0;
    if let Some((idx, name)) = last_checkpoint(&wal_dir)? {
        for (_, seg) in numbered(&wal_dir.join(&name), &format!("wal/{name}"), false)? {
            checkpoint.push(map(format!("wal/{name}/{seg}"))?);
        }
        // Prometheus writes at least one segment before renaming a checkpoint into place: an
        // empty one is being deleted (read as empty if it stays so).
        if checkpoint.is_empty() && !final_attempt {
            return Err(Changed(format!("wal/{name} is empty")).into());
        }
        first = idx + 1;
    }
    let mut wal = Vec::new();
    if let Some(&(last, _)) = segs.last() {
        for i in first..=last {
            let Some((_, name)) = segs.iter().find(|(n, _)| *n == i) else {
                if !final_attempt {
                    return Err(Changed(format!("wal: segment {i:08} missing")).into());
                }
                return Err(crate::bad_input!(
                    "wal: segment {i:08} is missing (segments {:08}..{last:08}, replay starts at {first:08})",
                    segs[0].0
                ));
            };
            wal.push(map(format!("wal/{name}"))?);
        }
    }
    let mut wbl = Vec::new();
    for (_, name) in numbered(&dir.join("wbl"), "wbl", true)? {
        wbl.push(map(format!("wbl/{name}"))?);
    }
    Ok(HeadFiles {
        chunks,
        checkpoint,
        wal,
        wbl,
    })
}

/// Files named by a number, ascending; the numbers must have no gap. A missing dir is empty
/// when `may_miss` (else an error, retried: a checkpoint replaced meanwhile).
fn numbered(dir: &Path, rel: &str, may_miss: bool) -> Result<Vec<(u64, String)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Err(e) if may_miss && e.kind() == ErrorKind::NotFound => return Ok(out),
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
        let ft = e
            .file_type()
            .with_context(|| format!("listing wal/{name}"))?;
        if !ft.is_dir() {
            return Err(crate::bad_input!("wal/{name} is not a directory"));
        }
        if best.as_ref().is_none_or(|b| idx > b.0) {
            best = Some((idx, name));
        }
    }
    Ok(best)
}
