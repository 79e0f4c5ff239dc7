//! Is a Prometheus using this data dir? Prometheus holds `DATA/lock` with `flock(LOCK_EX)` while
//! it runs (tsdb/fileutil); Debian's build only does so with `--storage.tsdb.use-lockfile`, so
//! on Linux the open files of other processes under the dir are checked too.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::pipeline::run_lock::try_flock;

/// Who holds the data dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Another process holds an flock on `DATA/lock`.
    LockFile(PathBuf),
    /// A process has a file under the dir open (e.g. a Prometheus's WAL segment).
    Process {
        pid: u32,
        name: String,
        file: PathBuf,
    },
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::LockFile(p) => write!(f, "another process holds the lock {}", p.display()),
            Holder::Process { pid, name, file } => {
                write!(f, "process {pid} ({name}) has {} open", file.display())
            }
        }
    }
}

/// The first sign that another process uses `dir`, if any.
pub fn holder(dir: &Path) -> io::Result<Option<Holder>> {
    let lock = dir.join("lock");
    if lock_file_held(&lock)? {
        return Ok(Some(Holder::LockFile(lock)));
    }
    Ok(process_with_open_file(dir))
}

/// The process (pid, name) with a file under `dir` open, if any (a running Prometheus has its
/// WAL open), whether or not it also holds the lock file.
pub fn process_in(dir: &Path) -> Option<(u32, String)> {
    match process_with_open_file(dir)? {
        Holder::Process { pid, name, .. } => Some((pid, name)),
        Holder::LockFile(_) => None,
    }
}

/// Tries the lock Prometheus takes, without waiting, and lets it go at once. The file is never
/// created: a missing lock file means no server with a lock file runs here.
fn lock_file_held(lock: &Path) -> io::Result<bool> {
    let f = match File::open(lock) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match try_flock(&f) {
        Ok(()) => Ok(false), // released when `f` closes
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}

/// Scans `/proc/*/fd` for a file under `dir` held open by another process. Processes we may not
/// inspect are passed over: this is a safety net, not a proof.
#[cfg(target_os = "linux")]
fn process_with_open_file(dir: &Path) -> Option<Holder> {
    let dir = dir.canonicalize().ok()?;
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target.starts_with(&dir) {
                let name = std::fs::read_to_string(entry.path().join("comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some(Holder::Process {
                    pid,
                    name,
                    file: target,
                });
            }
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
fn process_with_open_file(_dir: &Path) -> Option<Holder> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_dir_and_missing_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()).unwrap(), None);
        assert!(
            !dir.path().join("lock").exists(),
            "the check must not create the lock"
        );
    }

    #[test]
    fn held_flock_is_seen_and_released_lock_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let lock_path = dir.path().join("lock");
        let held = File::create(&lock_path).unwrap();
        try_flock(&held).unwrap();
        // flock conflicts between open file descriptions, even within one process.
        assert!(lock_file_held(&lock_path).unwrap());
        drop(held);
        assert!(!lock_file_held(&lock_path).unwrap());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn open_file_of_another_process_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wal");
        std::fs::write(&file, b"x").unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(File::open(&file).unwrap())
            .spawn()
            .expect("sleep");
        let found = holder(dir.path()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        match found {
            Some(Holder::Process { pid, file: f, .. }) => {
                assert_eq!(pid, child.id());
                assert_eq!(f, file.canonicalize().unwrap());
            }
            other => panic!("expected the sleeping child, got {other:?}"),
        }
    }
}
