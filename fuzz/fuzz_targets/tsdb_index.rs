//! Block index files, and selectors over their postings: any bytes must give an error, never a
//! panic. Run with `cargo +nightly fuzz run tsdb_index` from the repository root; `cargo test`
//! runs the same logic over random and mutated bytes (src/format/tsdb/mod.rs,
//! src/select/postings.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::tsdb::fuzz_tsdb_index(data);
    prom2om::select::postings::fuzz_postings(data);
});
