//! Builds the real Prometheus 2.42 data dirs of `tests/common/scenarios.rs` and checks each
//! holds what its scenario is for. `PROM2OM_FIXTURES_OUT=DIR cargo test --test datadir_fixtures`
//! also writes them, with promtool dumps and a README, to DIR.

mod common;

#[path = "common/promdir.rs"]
#[allow(dead_code)]
mod promdir;
#[path = "common/scenarios.rs"]
#[allow(dead_code)]
mod scenarios;

#[test]
fn scenarios_build_real_data_dirs() {
    for f in scenarios::fixtures() {
        eprintln!("{}:\n{}", f.name, f.layout.describe());
        let tmp = tempfile::tempdir().unwrap();
        promdir::copy_dir(&f.data, tmp.path());
        let dump = common::dump_lines(tmp.path());
        assert!(dump.len() > 10_000, "{}: the dump is small", f.name);
    }
}
