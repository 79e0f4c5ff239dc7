//! A `convert` of a data dir that keeps nothing says what the dir held (blocks and head, series,
//! samples, time range) against what the filters asked, one case each, on the shipped data dir
//! a Prometheus 3.5.3 wrote (`testdata/datadir`).

mod common;

use std::path::Path;

use common::*;

/// `convert DIR ARGS -o OUT`: its exit code must be 2 and nothing written; returns stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let out = dir.parent().unwrap().join("out");
    let mut c = prom2om();
    c.arg("convert").arg(dir).args(args).arg("-o").arg(&out);
    let (code, _, err) = run(c);
    assert_eq!(code, 2, "{args:?}: {err}");
    assert!(
        !out.join("manifest.json").exists(),
        "{args:?} wrote a manifest"
    );
    assert!(
        err.contains("--allow-empty accepts an empty output"),
        "{err}"
    );
    err
}

const HELD: &str = "held 6 blocks and a head: 74 series, 12280 samples, 53 staleness markers and \
                    187 histogram samples from 2026-12-06T22:24:27.530Z to 2026-12-06T22:30:41.803Z";

#[test]
fn a_selector_matching_nothing_names_what_the_dir_held_at_any_time() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = shipped_datadir(tmp.path());
    let err = refused(&dir, &["-m", "nosuch"]);
    assert!(err.contains(HELD), "{err}");
    assert!(err.contains("; none matching --match 'nosuch'"), "{err}");
    assert!(!err.contains("within ;"), "{err}");
}

#[test]
fn a_head_only_dir_says_it_held_no_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = shipped_datadir(tmp.path());
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.path().join("meta.json").exists() {
            std::fs::remove_dir_all(e.path()).unwrap();
        }
    }
    let err = refused(&dir, &["-m", "nosuch"]);
    assert!(err.contains("held 0 blocks and a head: "), "{err}");
    assert!(err.contains("none matching --match 'nosuch'"), "{err}");
}

#[test]
fn a_window_outside_the_data_names_the_data_s_range() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = shipped_datadir(tmp.path());
    let window = [
        "--start",
        "2020-01-01T00:00:00Z",
        "--end",
        "2020-01-02T00:00:00Z",
    ];
    let err = refused(&dir, &window);
    assert!(err.contains(HELD), "{err}");
    assert!(
        err.contains("; none within --start 2020-01-01T00:00:00Z --end 2020-01-02T00:00:00Z"),
        "{err}"
    );
    let err = refused(&dir, &[&["-m", "up"][..], &window[..]].concat());
    assert!(
        err.contains(
            "; the 3 series matching --match 'up' hold 563 samples, none within --start \
             2020-01-01T00:00:00Z --end 2020-01-02T00:00:00Z"
        ),
        "{err}"
    );
}

#[test]
fn a_window_holding_only_staleness_markers_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = shipped_datadir(tmp.path());
    // es-prod-0's exporter vanished: its series' markers are at 22:26:52.389, their last
    // samples two seconds before.
    let err = refused(
        &dir,
        &[
            "-m",
            "{cluster=\"es-prod-0\"}",
            "--stale",
            "drop",
            "--start",
            "2026-12-06T22:26:52Z",
            "--end",
            "2026-12-06T22:26:53Z",
        ],
    );
    assert!(err.contains(HELD), "{err}");
    assert!(
        err.contains(
            "; within --start 2026-12-06T22:26:52Z --end 2026-12-06T22:26:53Z the series \
             matching --match '{cluster=\"es-prod-0\"}' hold only staleness markers (29, \
             dropped by --stale drop)"
        ),
        "{err}"
    );
}
