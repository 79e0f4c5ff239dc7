//! `manifest.json`, the table of contents of a shard directory. It is written last, so its
//! presence marks a finished run; `verify` and `import` trust nothing that it does not list.

use serde::{Deserialize, Serialize};
use std::path::Path;

pub const MANIFEST_FILE: &str = "manifest.json";

/// What one shard file holds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name, relative to the shard directory.
    pub file: String,
    /// The block window the shard covers: `[window_start_ms, window_end_ms)`.
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    /// Index of the shard within its window, `0..shards_in_window`.
    pub shard: u32,
    pub series: u64,
    pub samples: u64,
    /// The samples' time range; both 0 in a shard of 0 samples (its window holds only what
    /// its sidecars carry), which the totals leave out.
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    /// Size of the file as written (compressed when `compressed`).
    pub bytes: u64,
    /// Size of the OpenMetrics text inside.
    pub uncompressed_bytes: u64,
    /// SHA-256 of the file as written, hex.
    pub sha256: String,
    /// Files beside the shard carrying what OpenMetrics cannot (see [`Sidecar`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<Sidecar>,
}

/// The sidecar kind that carries staleness markers: an OpenMetrics file (same series text, same
/// order as the shard, ending `# EOF`) in which every sample is a marker, written `NaN`.
pub const SIDECAR_STALE_MARKERS: &str = "stale_markers";

/// The side-file kind that carries native histogram samples (their staleness markers among
/// them): one line per sample (same series text, same order as the shard, ending `# EOF`), the
/// value OpenMetrics 2.0's composite value with prom2om's fields ([`crate::format::histtext`]).
/// Its [`Sidecar::samples`] counts the markers too.
pub const SIDECAR_NATIVE_HISTOGRAMS: &str = "native_histograms";

/// A file beside a shard for what plain OpenMetrics cannot carry, so the shard itself stays what
/// promtool's backfill accepts. A shard whose window holds only such data (a series' marker just
/// after its last sample's window, a series of histograms only) is listed with 0 samples: its
/// file is `# EOF` alone. Each kind is text whose samples mean what the kind says
/// ([`SIDECAR_STALE_MARKERS`], [`SIDECAR_NATIVE_HISTOGRAMS`]). A reader that meets a kind it does
/// not know must refuse the directory, never skip it: that is loss.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub kind: String,
    /// File name, relative to the shard directory.
    pub file: String,
    pub series: u64,
    /// Samples in the file (for stale markers: markers; for native histograms: histogram
    /// samples, their staleness markers included).
    pub samples: u64,
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    /// SHA-256 of the file as written, hex.
    pub sha256: String,
}

/// The filters that selected the data, recorded so a shard directory explains itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    pub matchers: Vec<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub drop_labels: Vec<String>,
    pub add_labels: Vec<String>,
    pub stale: String,
    /// The Grafana dashboards whose queries chose `matchers` (`--dashboard`), and the variable
    /// values given; absent without `--dashboard` (and in manifests of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboards: Option<Dashboards>,
}

/// What `--dashboard` was given: enough to say, or redo, how the selectors were chosen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dashboards {
    /// The dashboard files, absolute paths as they were when the run read them.
    pub files: Vec<String>,
    /// `--var` values as given, `NAME=VALUE`, in order (unset variables took the saved value).
    pub vars: Vec<String>,
    /// How far `start_ms` was moved back before the `--start` given, for the queries' reach
    /// (0 with `--no-reach-back` or without `--start`).
    pub reach_back_ms: i64,
}

/// Counts over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub shards: u64,
    /// Distinct series: one that spans several windows counts once.
    pub series: u64,
    pub samples: u64,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub min_ts_ms: Option<i64>,
    pub max_ts_ms: Option<i64>,
    /// Staleness markers carried in the shards' sidecars (not in `samples`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stale_markers: u64,
    /// Native histogram samples in the shards' side files, their staleness markers not included
    /// (not in `samples` either).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub histogram_samples: u64,
    /// Native histogram staleness markers in the shards' side files.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub histogram_stale_markers: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub prom2om_version: String,
    /// `convert` or `fetch`.
    pub source: String,
    /// Input files, or the (credential-free) URL for `fetch`.
    pub inputs: Vec<String>,
    pub filters: Filters,
    pub block_duration_ms: i64,
    pub compressed: bool,
    pub totals: Totals,
    pub shards: Vec<ShardEntry>,
    /// Series written with a quoted metric or label name, which promtool before 2.51 cannot
    /// import; `None` in manifests of versions that did not count them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_names: Option<QuotedNames>,
    /// What the source held that the shards do not, because it could not be read: each kind
    /// of loss of each input (none: absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub losses: Vec<Loss>,
}

/// A loss of the source, said where the shards are: a record a log ends inside (as a crash
/// leaves a WAL: Prometheus's own repair drops it too), or damage skipped under
/// `--skip-invalid`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Loss {
    /// [`LOSS_TORN_LOG`] or [`LOSS_SKIPPED_INVALID`].
    pub kind: String,
    /// The input (a data directory, a dump file) it was lost from.
    pub input: String,
    /// How many records, lines, chunks or series.
    pub count: u64,
    /// Where and what, one line each (all torn logs; the first few skipped items).
    pub details: Vec<String>,
}

impl Loss {
    /// One line for messages at home: what the export lacks, and why.
    pub fn describe(&self) -> String {
        let what = match self.kind.as_str() {
            LOSS_TORN_LOG => format!(
                "{} log record(s) being written when its Prometheus stopped (a WAL cut inside a \
                 record, which Prometheus's own repair drops too)",
                self.count
            ),
            LOSS_SKIPPED_INVALID => {
                format!("{} damaged item(s) skipped (--skip-invalid)", self.count)
            }
            other => format!("{} item(s) lost ({other})", self.count),
        };
        let first = self
            .details
            .first()
            .map_or(String::new(), |d| format!("; first: {d}"));
        format!("the export lacks {what} of {}{first}", self.input)
    }
}

/// A log (WAL, wbl) whose newest segment ends inside a record: that record is lost.
pub const LOSS_TORN_LOG: &str = "torn_log_tail";
/// Dump lines, chunks, series or records skipped as damaged under `--skip-invalid`.
pub const LOSS_SKIPPED_INVALID: &str = "skipped_invalid";

/// Series whose names are not classic (`[a-zA-Z_:][a-zA-Z0-9_:]*`), written in the quoted form.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QuotedNames {
    pub series: u64,
    /// A few of those names, for messages.
    pub examples: Vec<String>,
}

impl Manifest {
    /// Reads `DIR/manifest.json`; one that does not parse is bad input.
    pub fn load(dir: &Path) -> anyhow::Result<Manifest> {
        use anyhow::Context;
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read(&path)
            .with_context(|| format!("{}: cannot read the manifest", path.display()))?;
        serde_json::from_slice(&text)
            .map_err(|e| crate::bad_input!("{}: not a prom2om manifest: {e}", path.display()))
    }
}

/// SHA-256 of everything `r` yields, lowercase hex: the checksum the manifest records.
pub fn sha256_hex(mut r: impl std::io::Read) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_without_dashboards_read_and_write_as_before() {
        let old = r#"{"matchers":["up"],"start_ms":null,"end_ms":null,"drop_labels":[],
            "add_labels":[],"stale":"carry"}"#;
        let f: Filters = serde_json::from_str(old).unwrap();
        assert_eq!(f.dashboards, None);
        let back = serde_json::to_string(&f).unwrap();
        assert!(!back.contains("dashboards"), "{back}");
        let with = Filters {
            dashboards: Some(Dashboards {
                files: vec!["/d/es.json".into()],
                vars: vec!["cluster=a".into()],
                reach_back_ms: 60_000,
            }),
            ..f
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(
            text.contains(r#""dashboards":{"files":["/d/es.json"],"vars":["cluster=a"],"reach_back_ms":60000}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Filters>(&text).unwrap(), with);
    }
}
