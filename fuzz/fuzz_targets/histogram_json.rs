//! Native histograms as the query API's JSON (`--method raw`), rebuilt into the model: any bytes
//! must give an error, never a panic. Run with `cargo +nightly fuzz run histogram_json` from the
//! repository root; `cargo test` runs the same logic (src/fetch/histjson.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    prom2om::fetch::histjson::fuzz_histogram_json(data);
});
