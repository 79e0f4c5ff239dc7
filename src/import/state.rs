//! What an import has done, kept so a rerun skips the shards already done: one JSON state file
//! format with one load and one atomic save, for the blocks of a data dir (in its staging area,
//! also so a rerun finishes a block move an interrupted run left half done) and for the pushes
//! into receivers (in the shard directory).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The name of both state files, each in its own directory.
pub const STATE_FILE: &str = "state.json";

/// A state file: JSON, read whole, replaced atomically.
pub trait StateFile: Serialize + DeserializeOwned {
    /// Whose state, for messages: `import`, `push`.
    const WHAT: &'static str;

    /// The state before any run.
    fn empty() -> Self;

    /// Reads the state file, or the empty state when there is none yet.
    fn load(path: &Path) -> Result<Self> {
        match fs::read(path) {
            Ok(text) => serde_json::from_slice(&text).with_context(|| {
                format!(
                    "{}: unreadable {what} state (delete it to {what} every shard again)",
                    path.display(),
                    what = Self::WHAT
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::empty()),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read", path.display())),
        }
    }

    /// Replaces the state file atomically (temp file, fsync, rename, fsync dir): a crash leaves
    /// either the old or the new state, never a torn one.
    fn save(&self, path: &Path) -> Result<()> {
        self.write(path, true)
    }

    /// [`StateFile::save`] without the fsyncs: atomic against a killed process (the rename),
    /// not durable against a power cut, after which the older state is read. For progress saved
    /// often, where an older state costs only work done again.
    fn save_unsynced(&self, path: &Path) -> Result<()> {
        self.write(path, false)
    }

    fn write(&self, path: &Path, sync: bool) -> Result<()> {
        let tmp: PathBuf = path.with_extension("json.tmp");
        let ctx = || format!("{}: cannot write the {} state", path.display(), Self::WHAT);
        let mut f = fs::File::create(&tmp).with_context(ctx)?;
        f.write_all(&serde_json::to_vec_pretty(self)?)
            .and_then(|_| if sync { f.sync_all() } else { Ok(()) })
            .with_context(ctx)?;
        drop(f);
        fs::rename(&tmp, path).with_context(ctx)?;
        if let (true, Some(dir)) = (sync, path.parent()) {
            sync_dir(dir).with_context(ctx)?;
        }
        Ok(())
    }
}

/// Where a shard's import stands. `Moving` is written before the first block is renamed into the
/// data dir, so a crash between renames is seen and finished by the next run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Moving,
    Done,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub file: String,
    pub sha256: String,
    pub status: Status,
    /// Staging dir of the promtool run, relative to the staging area: where `Moving` blocks wait.
    pub work_dir: String,
    /// ULIDs of the blocks made from the shard.
    pub blocks: Vec<String>,
    pub samples: u64,
    pub min_time_ms: Option<i64>,
    pub max_time_ms: Option<i64>,
}

impl Record {
    pub fn key(&self) -> String {
        key(&self.file, &self.sha256)
    }
}

/// A shard is the same shard only with the same name and the same content.
pub fn key(file: &str, sha256: &str) -> String {
    format!("{file}@{sha256}")
}

/// The shards imported into one data dir, by [`key`].
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportState {
    pub version: u32,
    pub shards: BTreeMap<String, Record>,
}

impl StateFile for ImportState {
    const WHAT: &'static str = "import";

    fn empty() -> Self {
        ImportState {
            version: 1,
            shards: BTreeMap::new(),
        }
    }
}

impl ImportState {
    pub fn is_done(&self, key: &str) -> bool {
        self.shards
            .get(key)
            .is_some_and(|r| r.status == Status::Done)
    }

    pub fn put(&mut self, r: Record) {
        self.shards.insert(r.key(), r);
    }
}

/// The shards of one directory pushed, per receiver.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PushState {
    pub version: u32,
    /// Target key -> the shards pushed to it.
    pub targets: BTreeMap<String, PushTarget>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PushTarget {
    /// The URL without credentials, for a human reading the file.
    pub url: String,
    /// Shard key ([`key`]) -> samples pushed.
    pub pushed: BTreeMap<String, u64>,
    /// Shards the receiver took part of (a refusal, a kill): where each of their lanes stands,
    /// so a rerun sends only the rest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partial: BTreeMap<String, Partial>,
    /// Shards of windows that `--verify-url` found short: a rerun asks the receiver what it
    /// holds of each of their requests and sends only what it lacks.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub recheck: BTreeSet<String>,
}

/// How far the receiver took a shard. A shard's points (samples and staleness markers, in the
/// order its read gives them) go to `lanes` ordered lanes by a stable hash of each series' labels
/// as sent; each lane's requests are answered in order, so what the receiver took of a lane is
/// its first `acked` points.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    pub lanes: usize,
    pub acked: Vec<u64>,
}

impl StateFile for PushState {
    const WHAT: &'static str = "push";

    fn empty() -> Self {
        PushState {
            version: 1,
            ..PushState::default()
        }
    }
}

/// Makes renames inside `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let mut s = ImportState::load(&path).unwrap();
        assert!(s.shards.is_empty());
        s.put(Record {
            file: "a.om.gz".into(),
            sha256: "ab".into(),
            status: Status::Moving,
            work_dir: "shard-0".into(),
            blocks: vec!["01H0000000000000000000000A".into()],
            samples: 3,
            min_time_ms: Some(0),
            max_time_ms: Some(10),
        });
        s.save(&path).unwrap();
        let back = ImportState::load(&path).unwrap();
        assert_eq!(back, s);
        assert!(!back.is_done(&key("a.om.gz", "ab")));
        let mut r = back.shards[&key("a.om.gz", "ab")].clone();
        r.status = Status::Done;
        s.put(r);
        assert!(s.is_done(&key("a.om.gz", "ab")));
        assert!(!s.is_done(&key("a.om.gz", "cd")));
    }

    #[test]
    fn garbage_state_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        fs::write(&path, b"{not json").unwrap();
        assert!(ImportState::load(&path).is_err());
    }

    #[test]
    fn push_state_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(STATE_FILE);
        let mut s = PushState::load(&p).unwrap();
        s.targets
            .entry("t".into())
            .or_default()
            .pushed
            .insert("a@b".into(), 3);
        s.save(&p).unwrap();
        assert_eq!(PushState::load(&p).unwrap().targets["t"].pushed["a@b"], 3);
        std::fs::write(&p, b"{").unwrap();
        let err = PushState::load(&p).unwrap_err();
        assert!(format!("{err}").contains("unreadable push state"), "{err}");
    }
}
