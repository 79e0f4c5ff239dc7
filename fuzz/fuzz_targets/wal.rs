//! Fuzzes the WAL segment reader: fragments, pages, snappy and zstd records: never a panic or an endless loop on any bytes. The body is
//! `prom2om::format::tsdb::wal::fuzz_wal`, which `cargo test` also runs on random and mutated input (src/format/tsdb/wal_tests.rs).
//! Run with `cargo +nightly fuzz run wal` from the repository root.

#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::tsdb::wal::fuzz_wal(data);
});
