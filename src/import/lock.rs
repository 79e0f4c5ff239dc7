//! Is a Prometheus using this data dir? Prometheus holds `DATA/lock` with `flock(LOCK_EX)` while
//! it runs (tsdb/fileutil); Debian's build only does so with `--storage.tsdb.use-lockfile`, so
//! on Linux the open files of other processes under the dir are checked too, and what could not
//! be checked (another user's processes, without root) is said.

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
    /// A Prometheus whose open files cannot be read runs with `--storage.tsdb.path` on the dir.
    Serving { pid: u32, command: String },
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::LockFile(p) => write!(f, "another process holds the lock {}", p.display()),
            Holder::Process { pid, name, file } => {
                write!(f, "process {pid} ({name}) has {} open", file.display())
            }
            Holder::Serving { pid, command } => write!(f, "process {pid} runs `{command}`"),
        }
    }
}

/// A process whose open files could not be read (another user's, without root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unseen {
    pub pid: u32,
    /// Its command line (or name), as `/proc/PID/cmdline` shows it to anyone.
    pub command: String,
    /// It runs a Prometheus TSDB (named `prometheus`, or given `--storage.tsdb.path`) whose
    /// data dir could not be told: a relative path, or the default `data/`, under a working
    /// directory only its user may read.
    pub prometheus: bool,
}

/// What the check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct InUse {
    /// The first sign that another process uses the dir.
    pub holder: Option<Holder>,
    /// The processes it could not look into.
    pub unseen: Vec<Unseen>,
    /// `/proc` could not be listed: only the lock file was checked.
    pub no_proc: bool,
}

/// Whether another process uses `dir`, and what could not be checked.
pub fn check(dir: &Path) -> io::Result<InUse> {
    let lock = dir.join("lock");
    if lock_file_held(&lock)? {
        return Ok(InUse {
            holder: Some(Holder::LockFile(lock)),
            ..InUse::default()
        });
    }
    Ok(open_files(dir))
}

/// The process (pid, name) with a file under `dir` open, if any (a running Prometheus has its
/// WAL open), whether or not it also holds the lock file.
pub fn process_in(dir: &Path) -> Option<(u32, String)> {
    match open_files(dir).holder? {
        Holder::Process { pid, name, .. } => Some((pid, name)),
        Holder::Serving { pid, command } => Some((pid, command)),
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

/// Scans `/proc/*/fd` for a file under `dir` held open by another process. A process whose
/// `fd` cannot be read is judged by its command line, which anyone may read.
#[cfg(target_os = "linux")]
fn open_files(dir: &Path) -> InUse {
    let mut found = InUse::default();
    let Ok(dir) = dir.canonicalize() else {
        return found;
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        found.no_proc = true;
        return found;
    };
    let me = std::process::id();
    for entry in procs.flatten() {
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
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                match by_command_line(&entry.path(), pid, &dir) {
                    Ok(holder) => {
                        found.holder = Some(holder);
                        return found;
                    }
                    Err(Some(u)) => found.unseen.push(u),
                    Err(None) => {}
                }
                continue;
            }
            // Gone meanwhile, or a kernel thread.
            Err(_) => continue,
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target.starts_with(&dir) {
                found.holder = Some(Holder::Process {
                    pid,
                    name: comm(&entry.path()),
                    file: target,
                });
                return found;
            }
        }
    }
    found
}

#[cfg(target_os = "linux")]
fn comm(proc_dir: &Path) -> String {
    std::fs::read_to_string(proc_dir.join("comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A process whose open files cannot be read: a Prometheus serving `dir` (`Ok`), one whose data
/// dir cannot be told (`Err(Some)`, `prometheus` set), another process (`Err(Some)`), or one
/// gone meanwhile (`Err(None)`).
#[cfg(target_os = "linux")]
fn by_command_line(proc_dir: &Path, pid: u32, dir: &Path) -> Result<Holder, Option<Unseen>> {
    let raw = std::fs::read(proc_dir.join("cmdline")).map_err(|_| None)?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let command = if args.is_empty() {
        comm(proc_dir)
    } else {
        args.join(" ")
    };
    let path = storage_path(&args);
    let named = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n == "prometheus");
    if !named && path.is_none() {
        return Err(Some(Unseen {
            pid,
            command,
            prometheus: false,
        }));
    }
    match path.map(Path::new).filter(|p| p.is_absolute()) {
        Some(p) if p.canonicalize().is_ok_and(|p| p == dir) => Ok(Holder::Serving { pid, command }),
        // An absolute path elsewhere: not this dir.
        Some(_) => Err(None),
        None => Err(Some(Unseen {
            pid,
            command,
            prometheus: true,
        })),
    }
}

/// The value of `--storage.tsdb.path` (`=value` or the next argument).
fn storage_path(args: &[String]) -> Option<&str> {
    const FLAG: &str = "--storage.tsdb.path";
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix(FLAG).and_then(|r| r.strip_prefix('=')) {
            return Some(v);
        }
        if a == FLAG {
            return it.next().map(String::as_str);
        }
    }
    None
}

#[cfg(not(target_os = "linux"))]
fn open_files(_dir: &Path) -> InUse {
    InUse {
        no_proc: true,
        ..InUse::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_dir_and_missing_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check(dir.path()).unwrap().holder, None);
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
        let found = check(dir.path()).unwrap().holder;
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

    #[test]
    fn the_storage_path_of_a_command_line() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            storage_path(&args(&["prometheus", "--storage.tsdb.path=/var/lib/p"])),
            Some("/var/lib/p")
        );
        assert_eq!(
            storage_path(&args(&["prometheus", "--storage.tsdb.path", "data2"])),
            Some("data2")
        );
        assert_eq!(storage_path(&args(&["prometheus", "--web.x=1"])), None);
    }
}
