//! The native-histogram side file's text: any bytes must give an error, never a panic, and what
//! reads back must write back to the same text. Run with `cargo +nightly fuzz run histtext` from
//! the repository root; `cargo test` runs the same logic over random and damaged files
//! (src/format/histtext_tests.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::format::histtext::fuzz_histtext(data);
});
