//! `prom2om verify DIR` on shard directories built here (OpenMetrics from the writer, gzip from
//! flate2, the manifest from the `Manifest` struct): exit 0 on a sound directory, exit 1 naming
//! the file on each kind of damage, exit 2 on bad usage or a directory without a manifest.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::gzip;
use predicates::prelude::*;

use prom2om::format::openmetrics::{write_sample, write_series_prefix, EOF_LINE};
use prom2om::format::shard_dir::{sha256_hex, Manifest, ShardEntry, Totals, MANIFEST_FILE};
use prom2om::labels::Labels;

const H2: i64 = 7_200_000;
const T0: i64 = 1_699_999_200_000; // a 2h boundary

/// One shard to write: its window, and its series (metric name, label `i`, timestamps).
struct Shard {
    window: i64,
    series: Vec<(&'static str, u32, Vec<i64>)>,
}

fn om_text(shard: &Shard) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, i, ts) in &shard.series {
        let mut prefix = Vec::new();
        let i = i.to_string();
        write_series_prefix(
            &Labels::from_pairs([("__name__", *name), ("i", &i)]),
            &mut prefix,
        );
        for &t in ts {
            write_sample(&prefix, t as f64 / 7.0, t, &mut out);
        }
    }
    out.extend_from_slice(EOF_LINE);
    out
}

/// The manifest entry for `text` stored as `stored` under `file`.
fn entry(file: &str, shard: &Shard, text: &[u8], stored: &[u8]) -> ShardEntry {
    let all: Vec<i64> = shard
        .series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .collect();
    ShardEntry {
        file: file.to_string(),
        window_start_ms: shard.window,
        window_end_ms: shard.window + H2,
        shard: 0,
        series: shard.series.len() as u64,
        samples: all.len() as u64,
        min_ts_ms: *all.iter().min().unwrap(),
        max_ts_ms: *all.iter().max().unwrap(),
        bytes: stored.len() as u64,
        uncompressed_bytes: text.len() as u64,
        sha256: sha256_hex(stored).unwrap(),
        sidecars: Vec::new(),
    }
}

fn write_manifest(dir: &Path, compressed: bool, shards: Vec<ShardEntry>) {
    let sum = |f: fn(&ShardEntry) -> u64| shards.iter().map(f).sum();
    let totals = Totals {
        shards: shards.len() as u64,
        series: sum(|e| e.series),
        samples: sum(|e| e.samples),
        bytes: sum(|e| e.bytes),
        uncompressed_bytes: sum(|e| e.uncompressed_bytes),
        min_ts_ms: shards.iter().map(|e| e.min_ts_ms).min(),
        max_ts_ms: shards.iter().map(|e| e.max_ts_ms).max(),
        ..Totals::default()
    };
    let m = Manifest {
        prom2om_version: "test".into(),
        source: "convert".into(),
        inputs: vec!["dump.txt".into()],
        block_duration_ms: H2,
        compressed,
        totals,
        shards,
        ..Manifest::default()
    };
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

fn shards() -> Vec<Shard> {
    vec![
        Shard {
            window: T0,
            series: vec![
                ("a", 1, vec![T0, T0 + 1001, T0 + 15_000]),
                ("a", 2, vec![T0 + 5]),
                ("b", 1, vec![T0 + H2 - 1]),
            ],
        },
        Shard {
            window: T0 + H2,
            series: vec![("a", 1, vec![T0 + H2, T0 + H2 + 30_001])],
        },
    ]
}

/// A sound shard directory; returns it with the shard file names.
fn make_dir(compressed: bool) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = Vec::new();
    for (n, shard) in shards().iter().enumerate() {
        let text = om_text(shard);
        let (file, stored) = if compressed {
            (format!("w{n}-0.om.gz"), gzip(&text))
        } else {
            (format!("w{n}-0.om"), text.clone())
        };
        std::fs::write(dir.path().join(&file), &stored).unwrap();
        entries.push(entry(&file, shard, &text, &stored));
    }
    let names = entries.iter().map(|e| e.file.clone()).collect();
    write_manifest(dir.path(), compressed, entries);
    (dir, names)
}

fn verify(dir: &Path) -> assert_cmd::assert::Assert {
    Command::cargo_bin("prom2om")
        .unwrap()
        .arg("verify")
        .arg(dir)
        .assert()
}

#[test]
fn sound_directories_pass() {
    for compressed in [false, true] {
        let (dir, names) = make_dir(compressed);
        verify(dir.path())
            .success()
            .stdout(predicate::str::contains(format!(
                "{}: 3 series, 5 samples",
                names[0]
            )))
            .stdout(predicate::str::contains("2 shards, 4 series, 7 samples"));
    }
}

#[test]
fn a_truncated_shard_fails_naming_it() {
    for compressed in [false, true] {
        let (dir, names) = make_dir(compressed);
        let path = dir.path().join(&names[1]);
        let data = std::fs::read(&path).unwrap();
        std::fs::write(&path, &data[..data.len() - 10]).unwrap();
        verify(dir.path())
            .code(1)
            .stderr(predicate::str::contains(format!(
                "{}: size in bytes",
                names[1]
            )))
            .stderr(predicate::str::contains(format!("{}: sha256", names[1])))
            .stderr(predicate::str::contains("verification failed"));
    }
}

#[test]
fn a_shard_without_eof_fails_even_when_the_manifest_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let shard = &shards()[0];
    let mut text = om_text(shard);
    text.truncate(text.len() - EOF_LINE.len());
    std::fs::write(dir.path().join("w0.om"), &text).unwrap();
    write_manifest(dir.path(), false, vec![entry("w0.om", shard, &text, &text)]);
    verify(dir.path()).code(1).stderr(predicate::str::contains(
        "w0.om: invalid OpenMetrics: line 6: the data ends without the \"# EOF\" line",
    ));
}

#[test]
fn a_changed_byte_fails() {
    let (dir, names) = make_dir(false);
    let path = dir.path().join(&names[0]);
    let mut data = std::fs::read(&path).unwrap();
    // A digit of a value: still valid OpenMetrics, only the checksum can tell.
    let i = data.iter().position(|&c| c == b' ').unwrap() + 1;
    data[i] = if data[i] == b'9' { b'8' } else { b'9' };
    std::fs::write(&path, &data).unwrap();
    verify(dir.path())
        .code(1)
        .stderr(predicate::str::contains(format!("{}: sha256", names[0])))
        .stderr(predicate::str::contains("1 problem"));
}

#[test]
fn a_missing_manifest_is_bad_input_naming_it() {
    let (dir, _) = make_dir(true);
    std::fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
    verify(dir.path())
        .code(2)
        .stderr(predicate::str::contains(MANIFEST_FILE));
}

#[test]
fn missing_and_unlisted_shards_fail() {
    let (dir, names) = make_dir(false);
    std::fs::remove_file(dir.path().join(&names[0])).unwrap();
    std::fs::write(dir.path().join("stray.om.gz"), b"x").unwrap();
    verify(dir.path())
        .code(1)
        .stderr(predicate::str::contains(format!(
            "{}: cannot read",
            names[0]
        )))
        .stderr(predicate::str::contains(
            "stray.om.gz: shard file not listed in the manifest",
        ));
}

#[test]
fn counts_windows_and_totals_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let shard = &shards()[0];
    let text = om_text(shard);
    std::fs::write(dir.path().join("w0.om"), &text).unwrap();
    let mut e = entry("w0.om", shard, &text, &text);
    e.series += 1;
    e.max_ts_ms -= 1;
    e.window_end_ms -= 1; // the last sample falls out of the window
    write_manifest(dir.path(), false, vec![e]);
    let path = dir.path().join(MANIFEST_FILE);
    let mut m = Manifest::load(dir.path()).unwrap();
    m.totals.samples += 1;
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
    verify(dir.path())
        .code(1)
        .stderr(predicate::str::contains(
            "w0.om: series is 3, the manifest says 4",
        ))
        .stderr(predicate::str::contains("w0.om: max timestamp (ms) is"))
        .stderr(predicate::str::contains(
            "w0.om: 1 sample(s) outside the window",
        ))
        .stderr(predicate::str::contains(
            "manifest.json: totals.samples is 6",
        ));
}

#[test]
fn a_shard_longer_than_the_manifest_says_fails_both_ways() {
    let shard = &shards()[0];
    let text = om_text(shard);
    for (delta, what) in [
        (-7i64, "uncompressed size is larger than the manifest's"),
        (7, "uncompressed size is"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let stored = gzip(&text);
        std::fs::write(dir.path().join("w0.om.gz"), &stored).unwrap();
        let mut e = entry("w0.om.gz", shard, &text, &stored);
        e.uncompressed_bytes = (e.uncompressed_bytes as i64 + delta) as u64;
        write_manifest(dir.path(), true, vec![e]);
        verify(dir.path())
            .code(1)
            .stderr(predicate::str::contains(format!("w0.om.gz: {what}")));
    }
}

#[test]
fn bad_usage_exits_2() {
    Command::cargo_bin("prom2om")
        .unwrap()
        .arg("verify")
        .assert()
        .code(2);
    let dir = tempfile::tempdir().unwrap();
    verify(&dir.path().join("nope"))
        .code(2)
        .stderr(predicate::str::contains("nope: not a directory"));
}
