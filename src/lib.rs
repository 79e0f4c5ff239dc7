//! prom2om: turns `promtool tsdb dump` output, or samples pulled from a Prometheus HTTP API, into
//! sorted, deduplicated, window-aligned OpenMetrics shards that `promtool tsdb create-blocks-from
//! openmetrics` imports bit-exact.
//!
//! Wings, dependencies pointing down: `commands` → `import`/`fetch` → `pipeline` → `format` →
//! `select` → the ground floor (`labels`, `timeparse`, `exit_codes`, `progress`).

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
