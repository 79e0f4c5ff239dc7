//! One run per directory: an exclusive flock on a lock file inside it, held for the whole run,
//! with the holder's PID written in it so that a refused run can name the one it waits for.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::atomic_file::TempPath;

/// The lock file of an output directory. Not output: `verify` and `import` pass over it, and a
/// run removes it when it ends (a killed run's stays, unlocked, and the next run takes it).
pub const LOCK_FILE: &str = ".prom2om.lock";

/// Held while the value lives: dropping it removes the lock file, then releases the flock, then
/// removes the directory if the run created it and left it empty (a failed or empty run).
#[derive(Debug)]
pub struct RunLock {
    held: Option<Held>,
    created_dir: Option<PathBuf>,
}

#[derive(Debug)]
struct Held {
    // Field order is drop order: the file goes while the lock is still held.
    _path: TempPath,
    _file: File,
}

impl RunLock {
    /// The run made `dir` for its output: remove it at the end if nothing was written into it,
    /// so a failed run leaves nothing behind.
    pub fn remove_if_empty(mut self, dir: PathBuf) -> RunLock {
        self.created_dir = Some(dir);
        self
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        drop(self.held.take());
        if let Some(dir) = self.created_dir.take() {
            // Fails, as it should, when the run wrote anything there.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Takes the lock `lock_path` for a run that uses `what` (e.g. "output directory shards/"), or
/// fails naming the PID of the run that holds it.
pub fn acquire(lock_path: &Path, what: &str) -> Result<RunLock> {
    // A holder may remove the file between our open and our flock: the lock we got is then on a
    // file nobody else will open, so try again on the file the path names now.
    for _ in 0..100 {
        let mut f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock_path)
            .with_context(|| format!("{}: cannot create the lock file", lock_path.display()))?;
        match try_flock(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let who = match holder_pid(&mut f) {
                    Some(pid) => format!("another prom2om run (PID {pid})"),
                    None => "another prom2om run".to_string(),
                };
                bail!(
                    "{what} is in use by {who}: one run at a time per directory, with or \
                     without --force; wait for it to end or stop it (lock {})",
                    lock_path.display()
                );
            }
            Err(e) => {
                return Err(e).with_context(|| format!("{}: cannot lock", lock_path.display()))
            }
        }
        let same = match std::fs::metadata(lock_path) {
            Ok(m) => {
                let mine = f.metadata()?;
                m.dev() == mine.dev() && m.ino() == mine.ino()
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).with_context(|| format!("{}", lock_path.display())),
        };
        if !same {
            continue;
        }
        let path = TempPath::new(lock_path.to_path_buf());
        f.set_len(0)?;
        writeln!(f, "{}", std::process::id())
            .with_context(|| format!("{}: cannot write", lock_path.display()))?;
        return Ok(RunLock {
            held: Some(Held {
                _path: path,
                _file: f,
            }),
            created_dir: None,
        });
    }
    bail!("{}: cannot take the lock", lock_path.display())
}

fn holder_pid(f: &mut File) -> Option<u32> {
    let mut s = String::new();
    f.rewind().ok()?;
    f.take(32).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// An exclusive flock, without waiting: `WouldBlock` when another open file holds it.
pub fn try_flock(f: &File) -> io::Result<()> {
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_naming_the_pid_and_the_file_goes_with_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let held = acquire(&path, "output directory d").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        // flock conflicts between open file descriptions, even within one process.
        let err = format!("{:#}", acquire(&path, "output directory d").unwrap_err());
        assert!(
            err.contains("output directory d is in use")
                && err.contains(&format!("PID {}", std::process::id())),
            "{err}"
        );
        drop(held);
        assert!(!path.exists());
        let again = acquire(&path, "output directory d").unwrap();
        drop(again);
    }

    #[test]
    fn a_stale_unlocked_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, b"999999999\n").unwrap();
        let l = acquire(&path, "x").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            std::process::id().to_string()
        );
        drop(l);
    }
}
