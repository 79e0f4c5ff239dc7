//! Prometheus TSDB formats, one module per layer as in Prometheus's `tsdb/` packages:
//! chunk encodings first (`xor`, shared by remote read and the data-dir reader).

pub mod xor;
