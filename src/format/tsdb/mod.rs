//! Prometheus TSDB formats, one module per layer as in Prometheus's `tsdb/` packages:
//! chunk encodings (`xor`, shared by remote read and the data-dir reader), then the head's files
//! (`wal` segments, their `record`s, `head_chunks`).

pub mod head_chunks;
pub mod record;
pub mod wal;
pub mod xor;
