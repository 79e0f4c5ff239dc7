//! prom2om: turns `promtool tsdb dump` output, or samples pulled from a Prometheus HTTP API, into
//! sorted, deduplicated, window-aligned OpenMetrics shards that `promtool tsdb create-blocks-from
//! openmetrics` imports bit-exact.

pub mod exit_codes;
pub mod gofloat;
pub mod labels;
pub mod manifest;
pub mod selector;
pub mod sink;
pub mod cli;
pub mod commands;
pub mod import;
