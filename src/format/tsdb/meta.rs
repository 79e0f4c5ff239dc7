//! A block's `meta.json` (`tsdb/block.go` BlockMeta): ULID, time range [minTime, maxTime),
//! stats, compaction level, sources and parents, format version (only 1 is read).

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    #[serde(default)]
    pub num_samples: u64,
    #[serde(default)]
    pub num_series: u64,
    #[serde(default)]
    pub num_chunks: u64,
    #[serde(default)]
    pub num_tombstones: u64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct BlockDesc {
    pub ulid: String,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Compaction {
    #[serde(default)]
    pub level: i64,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub deletable: bool,
    #[serde(default)]
    pub parents: Vec<BlockDesc>,
    #[serde(default)]
    pub failed: bool,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub ulid: String,
    pub min_time: i64,
    /// Exclusive end.
    pub max_time: i64,
    #[serde(default)]
    pub stats: Stats,
    #[serde(default)]
    pub compaction: Compaction,
    pub version: i64,
}

/// Parses meta.json; like Prometheus's `readMetaFile`, only version 1 is accepted.
pub fn parse(data: &[u8]) -> anyhow::Result<Meta> {
    let m: Meta = serde_json::from_slice(data)?;
    if m.version != 1 {
        anyhow::bail!("unexpected meta file version {}", m.version);
    }
    Ok(m)
}

/// Whether `name` is a ULID as Prometheus's `ulid.ParseStrict` takes it: 26 Crockford base32
/// characters, the first at most '7' (the time part fits 48 bits).
pub fn is_ulid(name: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let b = name.as_bytes();
    b.len() == 26 && b[0] <= b'7' && b.iter().all(|c| ALPHABET.contains(&c.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_promtool_meta() {
        let m = parse(include_bytes!(
            "../../../testdata/tsdb/golden-block/meta.json"
        ))
        .unwrap();
        assert_eq!(m.ulid, "01M8MX6V563YAV666ATQ07V9E4");
        assert_eq!(m.stats.num_series, 3);
        assert_eq!(m.compaction.level, 1);
        assert!(m.min_time < m.max_time);
        assert!(parse(br#"{"ulid":"x","minTime":0,"maxTime":1,"version":2}"#).is_err());
        assert!(parse(b"{").is_err());
    }

    #[test]
    fn ulid_names() {
        assert!(is_ulid("01M8MX6V563YAV666ATQ07V9E4"));
        assert!(!is_ulid("01M8MX6V563YAV666ATQ07V9E4.tmp-for-creation"));
        assert!(!is_ulid("81M8MX6V563YAV666ATQ07V9E4"));
        assert!(!is_ulid("wal"));
        assert!(!is_ulid("01M8MX6V563YAV666ATQ07V9EU"));
    }
}
