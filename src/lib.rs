//! prom2om: turns a Prometheus data directory (read directly, read-only), `promtool tsdb dump`
//! output, or samples pulled from a Prometheus HTTP API, into sorted, deduplicated, window-aligned
//! OpenMetrics shards (with their staleness markers beside them) that `promtool tsdb
//! create-blocks-from openmetrics` imports bit-exact, and imports them at home: TSDB blocks it
//! writes itself, or remote write.
//!
//! Wings, dependencies pointing down: `commands` → `import`/`fetch` (and `verify`, `inspect`) →
//! `pipeline` → `select` → `format` → the ground floor (`labels`, `timeparse`, `exit_codes`,
//! `progress`).

/// Every `eprintln!` in this crate is this one. Std's panics when stderr is a closed pipe
/// (`prom2om verify d 2>&1 | head -1`); a diagnostic nobody can read any more is dropped instead.
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

pub mod cli;
pub mod commands;
pub mod corpus;
pub mod exit_codes;
pub mod fetch;
pub mod format;
pub mod import;
pub mod inspect;
pub mod labels;
pub mod pipeline;
pub mod progress;
pub mod select;
pub mod timeparse;
pub mod verify;
