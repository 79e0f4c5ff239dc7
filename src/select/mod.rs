//! What to export: PromQL series selectors with Prometheus semantics, and the filter that
//! combines them with the time range and label edits.

pub mod dashboard;
pub mod filter;
pub mod postings;
pub mod selector;
pub mod tally;
