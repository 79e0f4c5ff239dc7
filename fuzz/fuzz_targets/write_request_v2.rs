//! Fuzzes the remote-write 2.0 body decoder (snappy block + `io.prometheus.write.v2.Request`):
//! never a panic, label references resolved or refused, and what decodes re-encodes to the same
//! request. The checks live in `prom2om::format::prompb::v2::fuzz_write_request_v2`, which
//! `cargo test` runs over random bytes too.
//! Run with `cargo +nightly fuzz run write_request_v2` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::prompb::v2::fuzz_write_request_v2(data);
});
