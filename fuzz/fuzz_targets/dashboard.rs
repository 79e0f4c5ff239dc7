//! Fuzzes dashboard reading: Grafana JSON, PromQL expressions and variable queries must never
//! panic, and derived selectors must read back unchanged. The checks live in
//! `prom2om::select::dashboard::fuzz_dashboard` so that `cargo test` runs the same code.
//! Run with `cargo +nightly fuzz run dashboard` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::select::dashboard::fuzz_dashboard(data);
});
