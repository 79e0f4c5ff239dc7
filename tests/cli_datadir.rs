//! `prom2om convert DATA_DIR` and `inspect DATA_DIR` against TSDBs built by the real promtool:
//! reading the blocks directly gives the bytes that `promtool tsdb dump | prom2om convert -`
//! gives, with and without selectors and time ranges that cut through blocks.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::assert::OutputAssertExt;
use common::*;
use predicates::prelude::*;

/// OpenMetrics with special floats, 1970 timestamps and many 2h windows.
fn generated_om(series: usize, start_s: i64, hours: i64, step_s: i64, extra: &str) -> String {
    let vals = [
        "1",
        "-2.5",
        "+Inf",
        "-Inf",
        "-0",
        "5e-324",
        "1.7976931348623157e+308",
        "0.1",
        "NaN",
    ];
    let mut s = String::from("# TYPE gen gauge\n");
    for k in 0..series {
        let mut t = start_s;
        let mut i = 0usize;
        while t < start_s + hours * 3600 {
            let v = if i % 7 == 3 {
                vals[(i / 7 + k) % vals.len()].to_string()
            } else {
                format!("{}", (i * (k + 1)) as f64 * 0.25)
            };
            s.push_str(&format!("gen{{k=\"{k}\",extra=\"{extra}\"}} {v} {t}\n"));
            t += step_s + (i % 3) as i64;
            i += 1;
        }
    }
    s.push_str("# EOF\n");
    s
}

/// A multi-block TSDB: the awkward corpus, a generated one near 1970, and two overlapping
/// backfills of part of it (other values at the same timestamps, and a new series).
fn build(tmp: &Path) -> PathBuf {
    let data = tmp.join("data");
    backfill(&testdata("awkward.om"), &data);
    let a = tmp.join("gen.om");
    std::fs::write(&a, generated_om(3, 0, 30, 60, "x")).unwrap();
    backfill(&a, &data);
    let b = tmp.join("overlap.om");
    std::fs::write(
        &b,
        generated_om(2, 3600, 5, 60, "x").replace("# EOF\n", "")
            + &generated_om(1, 3600, 5, 90, "y").replace("# TYPE gen gauge\n", ""),
    )
    .unwrap();
    backfill(&b, &data);
    let c = tmp.join("overlap2.om");
    std::fs::write(&c, generated_om(1, 5000, 3, 61, "x")).unwrap();
    backfill(&c, &data);
    data
}

/// A copy of a data dir: promtool 2.42's dump may write into the one it reads.
fn copy_dir(from: &Path, to: &Path) {
    run_ok(std::process::Command::new("cp").arg("-r").arg(from).arg(to));
}

fn direct(data: &Path, args: &[&str]) -> Vec<u8> {
    let mut cmd = prom2om();
    cmd.arg("convert")
        .arg(data)
        .args(args)
        .args(["--stale", "keep", "-o", "-", "-q"]);
    run_ok(&mut cmd)
}

/// `promtool tsdb dump` with its own selector and time range (Prometheus's querier semantics).
fn promtool_dump(data: &Path, tmp: &Path, extra: &[&str]) -> Vec<u8> {
    let copy = tmp.join("copy-for-dump");
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(data, &copy);
    run_ok(
        std::process::Command::new(promtool())
            .args(["tsdb", "dump"])
            .args(extra)
            .arg(&copy),
    )
}

fn convert_dump(dumped: &[u8], tmp: &Path, args: &[&str]) -> Vec<u8> {
    let f = tmp.join("dump.txt");
    std::fs::write(&f, dumped).unwrap();
    run_ok(
        prom2om()
            .arg("convert")
            .arg(&f)
            .args(args)
            .args(["--stale", "keep", "-o", "-", "-q"]),
    )
}

#[test]
fn blocks_read_directly_equal_the_promtool_dump() {
    // No overlapping blocks: any filter gives what the full dump, filtered, gives.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    backfill(&testdata("awkward.om"), &data);
    let a = tmp.path().join("gen.om");
    std::fs::write(&a, generated_om(3, 0, 30, 60, "x")).unwrap();
    backfill(&a, &data);
    let blocks = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("meta.json").exists())
        .count();
    assert!(blocks >= 10, "only {blocks} blocks");
    let full = promtool_dump(&data, tmp.path(), &[]);
    let cases: [&[&str]; 4] = [
        &[],
        &[
            "-m",
            r#"gen{k=~"1|2"}"#,
            "-m",
            r#"{__name__=~"value_.*|up"}"#,
        ],
        // Cuts through blocks on both sides, in 1970 and in 2023.
        &["--start", "4000", "--end", "30000.5"],
        &[
            "-m",
            r#"{case!="quote"}"#,
            "--start",
            "1700003000",
            "--end",
            "1700020000",
            "--drop-label",
            "extra",
        ],
    ];
    for args in cases {
        let want = convert_dump(&full, tmp.path(), args);
        let got = direct(&data, args);
        assert!(want.len() > 20, "{args:?}: empty reference");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{args:?}"
        );
    }
}

#[test]
fn overlapping_blocks_keep_the_value_prometheus_returns() {
    // Three backfills overlap with other values at the same timestamps: where values conflict,
    // the one kept is the one Prometheus's querier returns for the same selector and range.
    let tmp = tempfile::tempdir().unwrap();
    let data = build(tmp.path());
    let cases: [(&[&str], &[&str]); 4] = [
        (&[], &[]),
        (&["-m", r#"gen{k=~"0|1"}"#], &["--match=gen{k=~\"0|1\"}"]),
        (
            &["--start", "4000", "--end", "14000.5"],
            &["--min-time=4000000", "--max-time=14000500"],
        ),
        (
            &["-m", r#"{extra="x"}"#, "--start", "5000", "--end", "9000"],
            &[
                "--match={extra=\"x\"}",
                "--min-time=5000000",
                "--max-time=9000000",
            ],
        ),
    ];
    for (ours, theirs) in cases {
        let want = convert_dump(&promtool_dump(&data, tmp.path(), theirs), tmp.path(), &[]);
        let got = direct(&data, ours);
        assert!(want.len() > 20, "{ours:?}: empty reference");
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{ours:?}"
        );
    }
}

#[test]
fn shard_dir_output_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let data = build(tmp.path());
    let out_a = tmp.path().join("a");
    let out_b = tmp.path().join("b");
    let copy = tmp.path().join("copy");
    copy_dir(&data, &copy);
    let dumped = tmp.path().join("dump.txt");
    std::fs::write(&dumped, dump(&copy, None)).unwrap();
    prom2om()
        .arg("convert")
        .arg(&data)
        .args(["--stale", "keep", "-o"])
        .arg(&out_a)
        .output()
        .map(|o| {
            assert!(o.status.success());
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("staleness markers dropped 0, kept 0"), "{err}");
            assert!(
                err.contains(" blocks (") && err.contains("and the head (0 series)"),
                "{err}"
            );
        })
        .unwrap();
    run_ok(
        prom2om()
            .arg("convert")
            .arg(&dumped)
            .args(["--stale", "keep", "-q", "-o"])
            .arg(&out_b),
    );
    let (a, b) = (shard_files(&out_a), shard_files(&out_b));
    assert!(a.len() > 10);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.file_name(), y.file_name());
        assert!(
            std::fs::read(x).unwrap() == std::fs::read(y).unwrap(),
            "{}",
            x.display()
        );
    }
}

#[test]
fn mixed_inputs_and_single_block() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    backfill(&testdata("awkward.om"), &data);
    let extra = tmp.path().join("extra.dump");
    std::fs::write(&extra, "{__name__=\"zz_extra\", a=\"b\"} 7 1700000000000\n").unwrap();
    let out = run_ok(
        prom2om()
            .arg("convert")
            .arg(&data)
            .arg(&extra)
            .args(["-o", "-", "-q"]),
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("zz_extra{a=\"b\"} 7 1700000000\n"), "{text}");
    assert!(text.contains("value_forms"));
    // One block directory on its own.
    let block = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("meta.json").exists())
        .unwrap();
    let one = run_ok(prom2om().arg("convert").arg(&block).args(["-o", "-", "-q"]));
    assert!(one.ends_with(b"# EOF\n") && one.len() > 20);
}

#[test]
fn not_a_tsdb_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("something")).unwrap();
    prom2om()
        .arg("convert")
        .arg(tmp.path())
        .args(["-o", "-"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "neither a Prometheus data directory",
        ));
    prom2om()
        .arg("inspect")
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "neither a Prometheus data directory",
        ));
}

#[test]
fn a_data_dir_without_samples_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("wal")).unwrap();
    prom2om()
        .arg("convert")
        .arg(&data)
        .args(["-o", "-"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing kept"));
    let out = run_ok(
        prom2om()
            .arg("convert")
            .arg(&data)
            .args(["--allow-empty", "-q", "-o", "-"]),
    );
    assert_eq!(out, b"# EOF\n");
}

#[test]
fn ignores_blocks_being_written() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    backfill(&testdata("awkward.om"), &data);
    let want = direct(&data, &[]);
    // A block being written (or deleted) by Prometheus: ignored, as Prometheus ignores it.
    let block = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("meta.json").exists())
        .unwrap();
    let name = block.file_name().unwrap().to_string_lossy().into_owned();
    copy_dir(&block, &data.join(format!("{name}.tmp-for-creation")));
    std::fs::write(
        data.join(format!("{name}.tmp-for-creation")).join("index"),
        b"junk",
    )
    .unwrap();
    assert_eq!(direct(&data, &[]), want);
}

#[test]
fn inspect_counts_series_and_range_from_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let data = build(tmp.path());
    let out = run_ok(prom2om().args(["inspect", "--json"]).arg(&data));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let copy = tmp.path().join("copy");
    copy_dir(&data, &copy);
    let d = dump(&copy, None);
    let series = series_set(&d);
    let lines = sample_set(&d);
    assert_eq!(v["series"], series.len() as u64);
    let gen = v["families"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "gen")
        .unwrap();
    assert_eq!(gen["series"], 4);
    let ts: Vec<i64> = lines
        .iter()
        .map(|l| {
            let s = String::from_utf8_lossy(l);
            s.rsplit(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(v["min_ts_ms"], *ts.iter().min().unwrap());
    assert_eq!(v["max_ts_ms"], *ts.iter().max().unwrap());
    // Overlapping blocks repeat samples: the chunk headers count them in each block.
    assert!(v["samples"].as_u64().unwrap() >= lines.len() as u64);
    let text = run_ok(prom2om().arg("inspect").arg(&data));
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains(&format!("series {}", series.len())), "{text}");
}

/// Every file under `dir` with its size, mtime and bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let bytes = if m.is_dir() {
                stack.push(e.path());
                Vec::new()
            } else {
                std::fs::read(e.path()).unwrap()
            };
            v.push((e.path(), m.len(), m.modified().unwrap(), bytes));
        }
    }
    v.sort();
    v
}

/// prom2om never writes into a data directory it reads: an output inside it, the data dir itself
/// with --force, or a path that reaches it through `..` or a symbolic link, is refused with exit 2
/// before anything is created there (not even the output lock file).
#[test]
fn output_inside_the_data_dir_is_refused_and_the_dir_stays_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, _) = awkward_tsdb(tmp.path());
    std::os::unix::fs::symlink(&data, tmp.path().join("link")).unwrap();
    let before = tree(&data);
    let d = data.display().to_string();
    let cases = [
        (
            vec![d.clone(), "-o".into(), format!("{d}/export")],
            "inside",
        ),
        (
            vec![d.clone(), "-o".into(), d.clone(), "--force".into()],
            "inside",
        ),
        (
            vec![
                d.clone(),
                "-o".into(),
                format!("{d}/x/../y/z"),
                "--force".into(),
            ],
            "inside",
        ),
        (
            vec![
                d.clone(),
                "-o".into(),
                tmp.path().join("link/out").display().to_string(),
            ],
            "inside",
        ),
    ];
    for (args, want) in cases {
        let out = prom2om().arg("convert").args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(want) && stderr.contains("never"),
            "{args:?}: {stderr}"
        );
        assert!(tree(&data) == before, "{args:?} changed the data dir");
    }
    // Beside it is fine.
    let out = tmp.path().join("beside");
    prom2om()
        .args(["convert", &d, "-o"])
        .arg(&out)
        .assert()
        .success();
    assert!(tree(&data) == before);
}
