//! Fuzzes the WAL record decoders: series, samples v1/v2, tombstones, m-map markers, histograms: never a panic or an endless loop on any bytes. The body is
//! `prom2om::format::tsdb::record::fuzz_record`, which `cargo test` also runs on random and mutated input (src/format/tsdb/record_tests.rs).
//! Run with `cargo +nightly fuzz run wal_record` from the repository root.

#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::tsdb::record::fuzz_record(data);
});
