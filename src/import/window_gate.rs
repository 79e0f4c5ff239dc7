//! The one check of a shard directory that spans shards (each series in the shard its hash names,
//! side files included) for imports that read each shard once: what a shard did waits until every
//! shard of its window has been read, then the window's problems decide.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::format::shard_dir::{window_problems, Manifest, SeriesHashes, ShardDir};

/// The windows of the shards being imported, and the hashes read of them so far.
pub struct WindowGate {
    windows: HashMap<i64, Window>,
}

struct Window {
    /// Manifest indices of its shards not read yet.
    left: usize,
    hashes: BTreeMap<usize, SeriesHashes>,
}

impl WindowGate {
    /// The gate for importing the shards `to_import` (manifest indices) of `dir`: `None` when the
    /// directory has no side files (every check is then one of a single shard). Also returns the
    /// other shards of those windows (imported by an earlier run): read for their hashes only.
    pub fn new(dir: &ShardDir, to_import: &[usize]) -> Option<(WindowGate, Vec<usize>)> {
        if !dir.has_side_files() {
            return None;
        }
        let m = dir.manifest();
        let mut windows: HashMap<i64, Window> = HashMap::new();
        for &i in to_import {
            windows
                .entry(m.shards[i].window_start_ms)
                .or_insert(Window {
                    left: 0,
                    hashes: BTreeMap::new(),
                });
        }
        let importing: HashSet<usize> = to_import.iter().copied().collect();
        let mut extra = Vec::new();
        for (i, e) in m.shards.iter().enumerate() {
            if let Some(w) = windows.get_mut(&e.window_start_ms) {
                w.left += 1;
                if !importing.contains(&i) {
                    extra.push(i);
                }
            }
        }
        Some((WindowGate { windows }, extra))
    }

    /// Records that shard `i` has been read. When it was the last of its window: the window's
    /// problems, each with the manifest index of its shard (none when the window is sound).
    pub fn read(
        &mut self,
        m: &Manifest,
        i: usize,
        hashes: SeriesHashes,
    ) -> Option<Vec<(usize, String)>> {
        let start = m.shards[i].window_start_ms;
        let w = self.windows.get_mut(&start)?;
        w.hashes.insert(i, hashes);
        w.left -= 1;
        if w.left > 0 {
            return None;
        }
        let w = self.windows.remove(&start).expect("found above");
        let none = SeriesHashes::default();
        Some(window_problems(m, start, |j| {
            w.hashes.get(&j).unwrap_or(&none)
        }))
    }
}
