//! The blocks promtool writes: found by their ULID-named directories, counted from their
//! `meta.json`, and moved whole into the data dir.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::state;

/// The parts of a block's `meta.json` that `import` checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
    pub stats: BlockStats,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    #[serde(default)]
    pub num_samples: u64,
}

/// The blocks promtool left in `dir`: the directories named like a ULID, with their meta.json.
pub fn read_blocks(dir: &Path) -> Result<Vec<BlockMeta>> {
    let mut blocks = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| is_ulid(n)) else {
            continue;
        };
        let meta_path = entry.path().join("meta.json");
        let text = fs::read(&meta_path)
            .with_context(|| format!("{}: cannot read", meta_path.display()))?;
        let meta: BlockMeta = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a block meta.json", meta_path.display()))?;
        if meta.ulid != name {
            bail!("{}: names block {}", meta_path.display(), meta.ulid);
        }
        blocks.push(meta);
    }
    blocks.sort_by(|a, b| a.ulid.cmp(&b.ulid));
    Ok(blocks)
}

/// A canonical ULID as Prometheus names block dirs: 26 Crockford base32 digits.
fn is_ulid(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b)))
}

/// Renames each block dir from `from` into `tsdb`. A block already gone from `from` was moved
/// before (rename is atomic), so it is passed over.
pub fn move_blocks(from: &Path, tsdb: &Path, blocks: &[String]) -> Result<()> {
    for b in blocks {
        let src = from.join(b);
        let dst = tsdb.join(b);
        if !src.exists() {
            continue;
        }
        if dst.exists() {
            bail!("{}: a block of that name is already there", dst.display());
        }
        fs::rename(&src, &dst)
            .with_context(|| format!("moving {} to {}", src.display(), dst.display()))?;
    }
    state::sync_dir(tsdb).with_context(|| format!("{}: fsync", tsdb.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulids() {
        assert!(is_ulid("01M7ZRVRBPE1GEGKRJM42FRQCD"));
        assert!(!is_ulid("01M7ZRVRBPE1GEGKRJM42FRQC"));
        assert!(!is_ulid("01M7ZRVRBPE1GEGKRJM42FRQCL"));
        assert!(!is_ulid(".prom2om-import"));
    }

    #[test]
    fn reads_block_metas_and_moves_whole_dirs() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        let ulid = "01M7ZRVRBPE1GEGKRJM42FRQCD";
        fs::create_dir_all(from.path().join(ulid).join("chunks")).unwrap();
        fs::create_dir_all(from.path().join("head123")).unwrap();
        fs::write(
            from.path().join(ulid).join("meta.json"),
            format!(
                r#"{{"ulid":"{ulid}","minTime":1,"maxTime":2,"stats":{{"numSamples":7,"numSeries":1}},"version":1}}"#
            ),
        )
        .unwrap();
        let metas = read_blocks(from.path()).unwrap();
        assert_eq!(metas.len(), 1);
        assert_eq!((metas[0].min_time, metas[0].max_time), (1, 2));
        assert_eq!(metas[0].stats.num_samples, 7);
        move_blocks(from.path(), to.path(), &[ulid.to_string()]).unwrap();
        assert!(to.path().join(ulid).join("meta.json").is_file());
        assert!(to.path().join(ulid).join("chunks").is_dir());
        // Moved before: passed over, not an error.
        move_blocks(from.path(), to.path(), &[ulid.to_string()]).unwrap();
    }
}
