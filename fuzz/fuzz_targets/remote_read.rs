//! Remote read responses (streamed frames with XOR and native histogram chunks, and `SAMPLES`
//! with histograms): any bytes must give an error, never a panic. Run with `cargo +nightly fuzz
//! run remote_read` from the repository root; `cargo test` runs the same logic over random
//! bytes (src/fetch/remote_read.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::fetch::remote_read::fuzz_remote_read(data);
});
