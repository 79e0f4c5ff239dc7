//! Chunk segment files, tombstones, meta.json and every chunk encoding over any bytes.
//! Run with `cargo +nightly fuzz run tsdb_chunks` from the repository root; `cargo test` runs the
//! same logic over random and mutated bytes (src/format/tsdb/mod.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::tsdb::fuzz_tsdb_chunks(data);
});
