//! The shard sink: takes samples of any number of series in any order, sorts and deduplicates
//! each series, and writes window-aligned OpenMetrics shards (or one stream) in bounded memory.
//! `convert` and `fetch` both end here, so their output is the same.

use std::path::PathBuf;

/// Where the OpenMetrics goes.
#[derive(Clone, Debug)]
pub enum Output {
    /// One OpenMetrics stream on stdout (`-o -`).
    Stdout,
    /// Shards and `manifest.json` in a directory.
    Dir { path: PathBuf, compress: bool },
}

/// What to do with a NaN that the dump cannot tell from a staleness marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleMode {
    /// A lone NaN (neighbours not NaN) is a staleness marker: drop it.
    Drop,
    /// Keep every NaN.
    Keep,
}

/// Index of an interned series in the sink.
pub type SeriesId = u32;
