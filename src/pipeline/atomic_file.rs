//! Files and directories that must never look finished unless they are: written under a temporary
//! name that carries the PID, renamed when complete, and removed on error, on drop, on SIGINT,
//! SIGTERM or SIGHUP, or (after a SIGKILL) by the next run into the same directory.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();
/// Held by [`uninterrupted`], and taken by the signal handler before it sweeps.
static UNINTERRUPTED: Mutex<()> = Mutex::new(());

/// Every temporary name starts so; the PID follows, then `-`.
const TEMP_PREFIX: &str = ".prom2om-";
const TEMP_SUFFIX: &str = ".tmp";

/// On SIGINT, SIGTERM or SIGHUP: removes every pending temporary path, then exits 128 + the
/// signal number (130, 143, 129) as a shell reports a process the signal killed.
fn install_signal_handler() {
    HANDLER.call_once(|| {
        let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("prom2om: warning: cannot handle signals ({e}); a killed run leaves temporary files for the next run to remove");
                return;
            }
        };
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // Both held until exit: a run's final renames are not cut in half, and no
                    // temporary path registers after the sweep.
                    let _renames = UNINTERRUPTED.lock().unwrap_or_else(|p| p.into_inner());
                    let paths = PENDING.lock().unwrap_or_else(|p| p.into_inner());
                    for p in paths.iter() {
                        remove_path(p);
                    }
                    let what = match sig {
                        SIGINT => "interrupted",
                        SIGTERM => "terminated (SIGTERM)",
                        _ => "hung up (SIGHUP)",
                    };
                    eprintln!("prom2om: {what}; temporary files removed");
                    std::process::exit(128 + sig);
                }
            });
        if let Err(e) = spawned {
            eprintln!("prom2om: warning: cannot handle signals ({e})");
        }
    });
}

/// Runs `f` with SIGINT, SIGTERM and SIGHUP held off: one that comes meanwhile takes effect
/// (sweep, exit) once `f` returns, so a signal does not cut short renames that go together.
pub fn uninterrupted<R>(f: impl FnOnce() -> R) -> R {
    let _held = UNINTERRUPTED.lock().unwrap_or_else(|p| p.into_inner());
    f()
}

fn remove_path(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// The temporary name for `what` in this process: `.prom2om-PID-WHAT.tmp`.
pub fn temp_name(what: &str) -> String {
    format!("{TEMP_PREFIX}{}-{what}{TEMP_SUFFIX}", std::process::id())
}

/// The PID in a name made by [`temp_name`], or `None` for any other name.
pub fn temp_name_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?.strip_suffix(TEMP_SUFFIX)?;
    let (pid, what) = rest.split_once('-')?;
    if what.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process `pid` exists. A PID the kernel reused keeps a dead run's leftovers a while
/// longer, which is harmless; taking a live run for dead would delete its files.
pub fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the temporary files and directories that runs no longer alive left directly in `dir`
/// (a SIGKILL, a power cut); returns their names. Those of live runs stay.
pub fn remove_dead_leftovers(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = temp_name_pid(&name) else {
            continue;
        };
        if is_alive(pid) {
            continue;
        }
        let p = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
        removed.push(name);
    }
    Ok(removed)
}

/// A temporary path that is deleted when dropped, unless [`TempPath::persist`] renamed it.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    live: bool,
}

impl TempPath {
    /// Registers `path` (not yet created) as temporary.
    pub fn new(path: PathBuf) -> TempPath {
        install_signal_handler();
        PENDING
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path.clone());
        TempPath { path, live: true }
    }

    /// Registers `dir/.prom2om-PID-WHAT.tmp` as temporary.
    pub fn in_dir(dir: &Path, what: &str) -> TempPath {
        TempPath::new(dir.join(temp_name(what)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the finished file to `dest`; from then on it is no longer temporary.
    pub fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, dest)?;
        self.forget();
        Ok(())
    }

    fn forget(&mut self) {
        self.live = false;
        if let Ok(mut v) = PENDING.lock() {
            v.retain(|p| p != &self.path);
        }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.live {
            remove_path(&self.path);
            self.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_on_drop_kept_on_persist() {
        let dir = tempfile::tempdir().unwrap();
        let t = TempPath::new(dir.path().join(".a.tmp"));
        std::fs::write(t.path(), b"x").unwrap();
        drop(t);
        assert!(!dir.path().join(".a.tmp").exists());
        let t = TempPath::new(dir.path().join(".b.tmp"));
        std::fs::write(t.path(), b"y").unwrap();
        t.persist(&dir.path().join("b")).unwrap();
        assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"y");
    }

    #[test]
    fn temp_names_carry_the_pid() {
        let n = temp_name("0001-00.om.gz");
        assert_eq!(temp_name_pid(&n), Some(std::process::id()));
        assert_eq!(temp_name_pid(".prom2om-12-spill.tmp"), Some(12));
        for other in [
            "a.om.gz",
            ".prom2om-fetch",
            ".prom2om-12-.tmp",
            ".prom2om-x-spill.tmp",
            ".prom2om-12-spill",
            ".prom2om.lock",
        ] {
            assert_eq!(temp_name_pid(other), None, "{other}");
        }
    }

    #[test]
    fn leftovers_of_dead_runs_go_those_of_live_runs_stay() {
        let dir = tempfile::tempdir().unwrap();
        // A child that has exited and been reaped: its PID names no process (until reused).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let dead_file = format!(".prom2om-{dead}-0-0.om.gz.tmp");
        let dead_dir = format!(".prom2om-{dead}-spill.tmp");
        std::fs::write(dir.path().join(&dead_file), b"x").unwrap();
        std::fs::create_dir(dir.path().join(&dead_dir)).unwrap();
        std::fs::write(dir.path().join(&dead_dir).join("w.run"), b"x").unwrap();
        let mine = TempPath::in_dir(dir.path(), "0-1.om.gz");
        std::fs::write(mine.path(), b"x").unwrap();
        std::fs::write(dir.path().join("0-0.om.gz"), b"x").unwrap();
        let mut removed = remove_dead_leftovers(dir.path()).unwrap();
        removed.sort();
        assert_eq!(removed, vec![dead_file, dead_dir]);
        assert!(mine.path().exists());
        assert!(dir.path().join("0-0.om.gz").exists());
    }
}
