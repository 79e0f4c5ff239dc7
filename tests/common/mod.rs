//! Test support shared by the integration tests: the real promtool (never a mock), TSDBs built
//! from OpenMetrics in temp dirs, and sample sets compared as dump text.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The real promtool; fails the test (never skips) when it is missing: `.ci/run` installs it.
pub fn promtool() -> PathBuf {
    let out = Command::new("promtool").arg("--version").output();
    match out {
        Ok(o) if o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty() => {
            PathBuf::from("promtool")
        }
        _ => panic!("promtool not found: install Debian's `prometheus` package (.ci/run does)"),
    }
}

pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Backfills one OpenMetrics file into `data` with the real promtool.
pub fn backfill(om: &Path, data: &Path) {
    run_ok(
        Command::new(promtool())
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(om)
            .arg(data),
    );
}

/// `promtool tsdb dump` of a data dir (2.42 needs a wal dir to exist), optionally `--match`.
pub fn dump(data: &Path, matcher: Option<&str>) -> Vec<u8> {
    std::fs::create_dir_all(data.join("wal")).unwrap();
    let mut cmd = Command::new(promtool());
    cmd.args(["tsdb", "dump"]);
    if let Some(m) = matcher {
        cmd.arg(format!("--match={m}"));
    }
    run_ok(cmd.arg(data))
}

/// A dump's lines as a set: the sample set, independent of order.
pub fn sample_set(dump: &[u8]) -> BTreeSet<Vec<u8>> {
    dump.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect()
}

/// The label part of each dump line: the series set.
pub fn series_set(dump: &[u8]) -> BTreeSet<Vec<u8>> {
    sample_set(dump)
        .into_iter()
        .map(|l| {
            let mut parts = l.rsplitn(3, |&b| b == b' ');
            let (_ts, _v) = (parts.next(), parts.next());
            parts.next().unwrap().to_vec()
        })
        .collect()
}

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// A TSDB built by promtool from `testdata/awkward.om`, and its full dump.
pub fn awkward_tsdb(dir: &Path) -> (PathBuf, Vec<u8>) {
    let data = dir.join("source-tsdb");
    backfill(&testdata("awkward.om"), &data);
    let d = dump(&data, None);
    assert!(d.len() > 1000, "the awkward TSDB dumped almost nothing");
    (data, d)
}

/// The prom2om binary under test.
pub fn prom2om() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("prom2om"))
}

/// Shard files of an output directory, sorted by name.
pub fn shard_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.ends_with(".om.gz") || n.ends_with(".om")
        })
        .collect();
    v.sort();
    v
}

/// Decompresses a shard to a plain `.om` file next to `tmp` (promtool cannot read gzip).
pub fn gunzip_to(shard: &Path, tmp: &Path) -> PathBuf {
    use std::io::Read;
    let bytes = std::fs::read(shard).unwrap();
    let mut text = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .unwrap();
    } else {
        text = bytes;
    }
    let out = tmp.join(format!(
        "{}.plain.om",
        shard.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&out, text).unwrap();
    out
}

/// Backfills every shard of `dir` into one new TSDB and dumps it.
pub fn backfill_shards(dir: &Path, work: &Path) -> Vec<u8> {
    let data = work.join("restored");
    let shards = shard_files(dir);
    assert!(!shards.is_empty(), "no shards in {}", dir.display());
    for s in shards {
        backfill(&gunzip_to(&s, work), &data);
    }
    dump(&data, None)
}
