//! On-disk and wire formats, one module each, reader and writer together: dump text,
//! OpenMetrics, Go's float and string text forms, the TSDB's own encodings and the values
//! they carry (native histograms, staleness markers), the shard directory and its side files.

pub mod dump;
pub mod gofloat;
pub mod gzip;
pub mod histogram;
pub mod histtext;
pub mod openmetrics;
pub mod prompb;
pub mod shard_dir;
pub mod tsdb;
pub mod value;
