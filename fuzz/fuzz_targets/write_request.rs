//! Fuzzes the remote-write body decoder (snappy block + `WriteRequest`): never a panic, and what
//! decodes re-encodes to the same request. The checks live in
//! `prom2om::format::prompb::fuzz_write_request`, which `cargo test` runs over random bytes too.
//! Run with `cargo +nightly fuzz run write_request` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::prompb::fuzz_write_request(data);
});
