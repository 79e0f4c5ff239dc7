//! On-disk and wire formats, one module each, reader and writer together: dump text,
//! OpenMetrics, Go's float and string text forms, and the TSDB's own encodings.

pub mod dump;
pub mod gofloat;
pub mod gzip;
pub mod openmetrics;
pub mod prompb;
pub mod shard_dir;
pub mod tsdb;
