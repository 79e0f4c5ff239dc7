//! prom2om: turns `promtool tsdb dump` output, or samples pulled from a Prometheus HTTP API, into
//! sorted, deduplicated, window-aligned OpenMetrics shards that `promtool tsdb create-blocks-from
//! openmetrics` imports bit-exact.

pub mod atomic_file;
pub mod cli;
pub mod commands;
pub mod convert;
pub mod corpus;
pub mod dump;
pub mod exit_codes;
pub mod fetch;
pub mod filter;
pub mod gofloat;
pub mod goquote;
pub mod import;
pub mod input;
pub mod inspect;
pub mod labels;
pub mod manifest;
pub mod openmetrics;
pub mod progress;
pub mod selector;
pub mod shard;
pub mod sink;
pub mod sorter;
pub mod spill;
pub mod stream;
pub mod timeparse;
pub mod verify;
