//! The shard directory, prom2om's own exchange format: `manifest.json`, the OpenMetrics shards
//! (`.om[.gz]`) and their side files. Its types, names and census live here, beside its reader.

mod census;
mod manifest;
mod naming;

pub use census::samples_per_series;
pub use manifest::{
    sha256_hex, Filters, Manifest, QuotedNames, ShardEntry, Sidecar, Totals, MANIFEST_FILE,
    SIDECAR_STALE_MARKERS,
};
pub use naming::{file_name, series_hash, stale_sidecar_name, utc_stamp};
