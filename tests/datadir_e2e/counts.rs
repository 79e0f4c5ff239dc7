//! One vocabulary for counts: on a real data dir whose target vanished (staleness markers in
//! blocks and head), `inspect`, `convert`, the manifest, `verify`, `import` and `inspect` of the
//! shards and of the home data dir all give the same series, samples and staleness markers,
//! markers counted apart from samples; and the home blocks hold exactly their sum, by the real
//! promtool's dump.

use std::path::Path;

use crate::common::{dump_with, prom2om, run, PromVersion};
use crate::scenarios::{fixture, Fixture};

/// The numbers `re`'s groups capture in the first line of `text` it matches (0 for a group
/// that took no part).
fn numbers(text: &str, re: &str) -> Vec<u64> {
    let re = regex::Regex::new(re).unwrap();
    let caps = text
        .lines()
        .find_map(|l| re.captures(l))
        .unwrap_or_else(|| panic!("{re} matches no line of:\n{text}"));
    caps.iter()
        .skip(1)
        .map(|g| g.map_or(0, |m| m.as_str().parse().unwrap()))
        .collect()
}

/// (series, samples, staleness markers) of an `inspect --json` report.
fn inspected(path: &Path) -> (u64, u64, u64) {
    let mut c = prom2om();
    c.arg("inspect").arg(path).arg("--json");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    (
        r["series"].as_u64().unwrap(),
        r["samples"].as_u64().unwrap(),
        r["stale_markers"].as_u64().unwrap_or(0),
    )
}

fn counts_agree(f: &Fixture) {
    let id = f.id();
    let work = tempfile::tempdir().unwrap();
    let (shards, home) = (work.path().join("shards"), work.path().join("home"));

    let (series, samples, markers) = inspected(&f.data);
    assert!(
        markers > 0,
        "{id}: the fixture's target vanished, yet no markers"
    );

    let mut c = prom2om();
    c.arg("convert").arg(&f.data).arg("-o").arg(&shards);
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "{id}: {err}");
    let mut said = numbers(&err, r"^prom2om: kept (\d+) series, (\d+) samples");
    said.extend(numbers(&err, r"carried in sidecars (\d+);"));
    assert_eq!(
        said,
        [series, samples, markers],
        "{id}: convert said\n{err}"
    );

    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shards.join("manifest.json")).unwrap()).unwrap();
    let t = &m["totals"];
    let stored = (
        t["series"].as_u64().unwrap(),
        t["samples"].as_u64().unwrap(),
        t["stale_markers"].as_u64().unwrap(),
    );
    assert_eq!(stored, (series, samples, markers), "{id}: the manifest {t}");

    let mut c = prom2om();
    c.arg("verify").arg(&shards);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{id}: {out}{err}");
    let whole = out.lines().last().unwrap();
    let verified = numbers(
        whole,
        r": \d+ shards?, (\d+) series, (\d+) samples, (\d+) staleness markers in sidecars$",
    );
    assert_eq!(
        verified,
        [series, samples, markers],
        "{id}: verify said {whole}"
    );

    let (shard_series, shard_samples, shard_markers) = inspected(&shards);
    assert_eq!(
        (shard_series, shard_samples, shard_markers),
        (series, samples, markers),
        "{id}: inspect of the shards"
    );

    let mut c = prom2om();
    c.arg("import").arg(&shards).arg("--tsdb").arg(&home);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{id}: {out}{err}");
    let moved = numbers(
        &out,
        r"^imported .*; \d+ blocks?, (\d+) samples? and (\d+) staleness markers? moved",
    );
    assert_eq!(moved, [samples, markers], "{id}: import said\n{out}");
    let mut per_shard = [0, 0];
    for l in out.lines().filter(|l| l.starts_with("ok ")) {
        let n = numbers(l, r": (\d+) samples?(?: and (\d+) staleness markers?)? in ");
        per_shard = [per_shard[0] + n[0], per_shard[1] + n[1]];
    }
    assert_eq!(per_shard, [samples, markers], "{id}:\n{out}");
    let verified = out.lines().find(|l| l.starts_with("verified: ")).unwrap();
    assert!(
        verified.ends_with(&format!(
            "({samples} samples and {markers} staleness markers)"
        )),
        "{id}: {verified}"
    );

    // At home, by prom2om and by the real promtool, whose dump prints each marker as NaN.
    let (home_series, home_samples, home_markers) = inspected(&home);
    assert_eq!(
        (home_series, home_samples, home_markers),
        (series, samples, markers),
        "{id}: inspect of the home data dir"
    );
    std::fs::create_dir_all(home.join("wal")).unwrap();
    let dump = dump_with(PromVersion::V2_42, &home, None);
    let lines = dump
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(
        lines as u64,
        samples + markers,
        "{id}: promtool's dump of home"
    );
}

#[test]
fn counts_agree_from_inspect_to_import_on_2_42() {
    counts_agree(fixture("stale_restart", PromVersion::V2_42));
}

#[test]
fn counts_agree_from_inspect_to_import_on_3_5_3() {
    counts_agree(fixture("stale_restart", PromVersion::V3_5));
}
