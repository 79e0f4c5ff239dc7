//! Native-histogram chunks (encodings 2 and 5): any bytes must give an error, never a panic.
//! Run with `cargo +nightly fuzz run histogram_chunk` from the repository root; `cargo test` runs
//! the same logic over random and damaged chunks (src/format/tsdb/histogram_tests.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::tsdb::histogram::fuzz_histogram_chunk(data);
});
