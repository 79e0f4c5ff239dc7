//! `prom2om convert DIR --dry-run` against a TSDB backfilled by the real promtool: the estimate
//! from the indexes says what the real convert then writes, and the dry run writes nothing.

mod common;

use std::path::Path;

use common::*;

/// 30 series over 7 hours at 15 s, two families, backfilled into 2 h blocks.
fn backfilled(tmp: &Path) -> std::path::PathBuf {
    let mut om = String::new();
    for name in ["dry_a", "dry_b_total"] {
        om.push_str(&format!("# TYPE {name} gauge\n"));
        for k in 0..15 {
            for i in 0..(7 * 240) {
                let t = 1_700_000_000 + i * 15;
                om.push_str(&format!("{name}{{k=\"{k}\"}} {} {t}\n", i * (k + 1)));
            }
        }
    }
    om.push_str("# EOF\n");
    let f = tmp.join("in.om");
    std::fs::write(&f, om).unwrap();
    let data = tmp.join("data");
    backfill(&f, &data);
    data
}

/// The dry run's `total:` line: samples and shards.
fn totals(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("total: "))
        .unwrap_or_else(|| panic!("no total line in {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[4].parse().unwrap())
}

#[test]
fn the_estimate_is_what_convert_writes_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = backfilled(tmp.path());
    let out = tmp.path().join("out");
    for sel in [None, Some("dry_b_total")] {
        let mut cmd = prom2om();
        cmd.arg("convert")
            .arg(&data)
            .arg("--dry-run")
            .arg("-o")
            .arg(&out);
        if let Some(m) = sel {
            cmd.args(["-m", m]);
        }
        let (code, stdout, stderr) = run(cmd);
        assert_eq!(code, 0, "{stderr}");
        assert!(!out.exists(), "a dry run wrote {}", out.display());
        // Four 2 h windows (1700000000 s is 22:13 UTC, 7 h on is 05:13), one line each.
        assert_eq!(stdout.lines().filter(|l| l.starts_with("2023-")).count(), 4);
        assert!(stdout.contains("not counted: the head"), "{stdout}");
        let (samples, shards) = totals(&stdout);
        let mut cmd = prom2om();
        cmd.arg("convert").arg(&data).args(["-q", "-o"]).arg(&out);
        if let Some(m) = sel {
            cmd.args(["-m", m]);
        }
        run_ok(&mut cmd);
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m["totals"]["samples"].as_u64(), Some(samples), "{sel:?}");
        assert_eq!(m["totals"]["shards"].as_u64(), Some(shards), "{sel:?}");
        // Each series once, though each of the four blocks holds it.
        let n = m["totals"]["series"].as_u64().unwrap();
        assert_eq!(n, if sel.is_some() { 15 } else { 30 });
        let want = format!("{n} selected series ({} summed over the blocks)", 4 * n);
        assert!(stdout.contains(&want), "no {want:?} in {stdout}");
        let per_family = 15 * 7 * 240;
        assert_eq!(
            samples,
            if sel.is_some() {
                per_family
            } else {
                2 * per_family
            }
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn a_dry_run_of_dump_text_is_bad_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("dump.txt");
    std::fs::write(&f, "{__name__=\"a\"} 1 1000\n").unwrap();
    let mut cmd = prom2om();
    cmd.arg("convert").arg(&f).args(["--dry-run", "-o", "-"]);
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--dry-run"), "{stderr}");
}
