//! Float native-histogram chunks (encodings 3 and 6): any bytes must give an error, never a
//! panic. Run with `cargo +nightly fuzz run float_histogram_chunk` from the repository root;
//! `cargo test` runs the same logic over random and damaged chunks
//! (src/format/tsdb/float_histogram_tests.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::tsdb::float_histogram::fuzz_float_histogram_chunk(data);
});
