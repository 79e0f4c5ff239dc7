//! Fuzzes the chunks_head file reader and the XOR decoder behind it: never a panic or an endless loop on any bytes. The body is
//! `prom2om::format::tsdb::head_chunks::fuzz_head_chunks`, which `cargo test` also runs on random and mutated input (src/format/tsdb/head_chunks.rs).
//! Run with `cargo +nightly fuzz run head_chunks` from the repository root.

#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::tsdb::head_chunks::fuzz_head_chunks(data);
});
