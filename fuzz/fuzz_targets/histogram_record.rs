//! WAL histogram records (types 7-10, 12, 13): any bytes must give an error, never a panic.
//! Run with `cargo +nightly fuzz run histogram_record` from the repository root; `cargo test`
//! runs the same logic over random bytes (src/format/tsdb/record/histograms.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::tsdb::record::fuzz_histogram_record(data);
});
