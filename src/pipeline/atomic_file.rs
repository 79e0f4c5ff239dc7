//! Files and directories that must never look finished unless they are: written under a temporary
//! name, renamed when complete, and removed on error, on drop, or by the Ctrl-C handler.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

/// Removes every pending temporary path, then exits 130 like a shell does on SIGINT.
fn install_interrupt_handler() {
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if let Ok(paths) = PENDING.lock() {
                for p in paths.iter() {
                    remove_path(p);
                }
            }
            eprintln!("prom2om: interrupted; temporary files removed");
            std::process::exit(130);
        });
    });
}

fn remove_path(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
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
        install_interrupt_handler();
        PENDING.lock().expect("pending list").push(path.clone());
        TempPath { path, live: true }
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
}
