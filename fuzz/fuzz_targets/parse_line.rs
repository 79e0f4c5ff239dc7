//! Fuzzes the dump line parser: `parse_line`, `labels_len` and `decode_labels` must never panic,
//! and a line that parses must survive write -> parse unchanged. The checks live in
//! `prom2om::format::dump::fuzz_check` so that `cargo test` runs the very same code (tests/dump_prop.rs).
//! Run with `cargo +nightly fuzz run parse_line` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::dump::fuzz_check(data);
});
