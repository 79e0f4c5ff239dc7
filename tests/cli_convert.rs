//! `prom2om convert` as a user meets it: exit codes, error messages, determinism, and what is left
//! on disk when writing fails.

mod common;

use common::*;
use predicates::prelude::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `prom2om convert ARGS FILE` where FILE, named `name`, holds `text`.
fn convert(name: &str, text: &str, args: &[&str]) -> assert_cmd::assert::Assert {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), name, text);
    assert_cmd::Command::cargo_bin("prom2om")
        .unwrap()
        .arg("convert")
        .args(args)
        .arg(&f)
        .assert()
}

#[test]
fn bad_line_names_file_and_line_and_exits_2() {
    convert(
        "bad.dump",
        "{__name__=\"up\"} 1 1000\n{__name__=\"up\" 2 2000\n",
        &["-o", "-"],
    )
    .code(2)
    .stderr(predicate::str::contains("bad.dump:2:"))
    .stderr(predicate::str::contains("{__name__=\\\"up\\\" 2 2000"));
}

#[test]
fn skip_invalid_counts_and_reports() {
    convert(
        "bad.dump",
        "{__name__=\"up\"} 1 1000\njunk\n{__name__=\"up\"} 2 2000\n",
        &["--skip-invalid", "-o", "-"],
    )
    .success()
    .stdout("up 1 1\nup 2 2\n# EOF\n")
    .stderr(predicate::str::contains("bad lines 1"))
    .stderr(predicate::str::contains("bad.dump:2:"));
}

/// Lines skipped under --skip-invalid are a loss: said even with -q, and listed in the manifest
/// (the count, and the first lines).
#[test]
fn skipped_lines_are_said_with_q_and_listed_in_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "bad.dump",
        "{__name__=\"up\"} 1 1000\njunk\n{__name__=\"up\"} 2 2000\nmore junk\n",
    );
    let out = tmp.path().join("out");
    assert_cmd::Command::cargo_bin("prom2om")
        .unwrap()
        .args(["convert", "-q", "--skip-invalid", "-o"])
        .arg(&out)
        .arg(&f)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: skipped 2 damaged items of",
        ))
        .stderr(predicate::str::contains("bad.dump:2:"))
        .stderr(predicate::str::contains("listed in the manifest's losses"));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let losses = m["losses"].as_array().unwrap();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0]["kind"], "skipped_invalid");
    assert_eq!(losses[0]["count"], 2);
    let details = losses[0]["details"].as_array().unwrap();
    assert!(
        details[0].as_str().unwrap().contains("bad.dump:2:"),
        "{details:?}"
    );
    assert!(
        details[1].as_str().unwrap().contains("bad.dump:4:"),
        "{details:?}"
    );
}

#[test]
fn invalid_utf8_label_value_is_an_error() {
    convert(
        "u.dump",
        "{__name__=\"up\", a=\"\\xff\"} 1 1000\n",
        &["-o", "-"],
    )
    .code(2)
    .stderr(predicate::str::contains("UTF-8"));
}

#[test]
fn empty_input_with_allow_empty_gives_valid_empty_file_and_warning() {
    convert("empty.dump", "", &["--allow-empty", "-o", "-"])
        .success()
        .stdout("# EOF\n")
        .stderr(predicate::str::contains("empty"));
}

#[test]
fn crlf_comma_separators_and_missing_final_newline() {
    convert(
        "c.dump",
        "{__name__=\"m\",a=\"1\"} 1 1000\r\n{__name__=\"m\",a=\"1\"} 2 2500",
        &["-q", "-o", "-"],
    )
    .success()
    .stdout("m{a=\"1\"} 1 1\nm{a=\"1\"} 2 2.5\n# EOF\n");
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["convert", "-o", "-", "--since", "banana"],
        vec!["convert", "-o", "-", "--match", "{a=~\"(\"}"],
        vec!["convert", "-o", "-", "--memory-limit", "lots"],
        vec!["convert", "-o", "-", "no-such-file.dump"],
        vec!["convert"],
    ] {
        assert_cmd::Command::cargo_bin("prom2om")
            .unwrap()
            .args(&args)
            .assert()
            .code(2);
    }
}

#[test]
fn time_filters_and_label_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(
        tmp.path(),
        "t.dump",
        "{__name__=\"m\", instance=\"a\"} 1 1700000000000\n{__name__=\"m\", instance=\"a\"} 2 1700000060000\n{__name__=\"m\", instance=\"a\"} 3 1700000120000\n",
    );
    assert_cmd::Command::cargo_bin("prom2om")
        .unwrap()
        .args([
            "convert",
            "-q",
            "-o",
            "-",
            "--end",
            "2023-11-14T22:15:20Z",
            "--since",
            "1m",
        ])
        .args(["--drop-label", "instance", "--add-label", "source=customer"])
        .arg(&f)
        .assert()
        .success()
        .stdout(
            "m{source=\"customer\"} 2 1700000060\nm{source=\"customer\"} 3 1700000120\n# EOF\n",
        );
}

#[test]
fn non_empty_output_dir_refused_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "d.dump", "{__name__=\"m\"} 1 1700000000000\n");
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("something"), "x").unwrap();
    let run = |force: bool| {
        let mut c = assert_cmd::Command::cargo_bin("prom2om").unwrap();
        c.args(["convert", "-q", "-o"]).arg(&out).arg(&f);
        if force {
            c.arg("--force");
        }
        c.assert()
    };
    run(false)
        .code(2)
        .stderr(predicate::str::contains("not empty"));
    run(true).success();
    assert!(out.join("manifest.json").exists());
}

/// Dump text of 200 series over 4 h in series order: enough that `convert` streams shards.
fn corpus_200_series_4h() -> Vec<u8> {
    let spec = prom2om::corpus::CorpusSpec {
        series: 200,
        hours: 4.0,
        ..Default::default()
    };
    let mut text = Vec::new();
    prom2om::corpus::generate(&spec, &mut text).unwrap();
    text
}

/// A --force run that fails (a bad line late in input it was streaming into shards of the same
/// names, a selector that keeps nothing, a full disk) leaves the earlier export byte for byte,
/// `verify` passes on it, and nothing of the failed run is left.
#[test]
fn a_failed_force_run_leaves_the_earlier_export_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = corpus_200_series_4h();
    let good = tmp.path().join("good.dump");
    std::fs::write(&good, &text).unwrap();
    text.extend_from_slice(b"{__name__=\"zz\"} not-a-number 1000\n");
    let bad = tmp.path().join("bad.dump");
    std::fs::write(&bad, &text).unwrap();
    let out = tmp.path().join("out");
    run_ok(
        prom2om()
            .arg("convert")
            .arg(&good)
            .args(["-q", "-o"])
            .arg(&out),
    );
    let before = dir_files(&out);
    assert!(before.len() >= 3, "{:?}", before.keys());

    let force = |input: &std::path::Path, args: &[&str]| {
        let mut cmd = prom2om();
        cmd.arg("convert")
            .arg(input)
            .args(["-q", "--force"])
            .args(args)
            .arg("-o")
            .arg(&out);
        cmd
    };
    let mut full_disk = force(&good, &["--no-compress", "--shards", "1"]);
    set_rlimit(&mut full_disk, libc::RLIMIT_FSIZE, 64 << 10);
    let failures = [
        (force(&bad, &[]), 2, "bad.dump:"),
        (force(&good, &["-m", "no_such_metric"]), 2, "nothing kept"),
        (full_disk, 1, "writing"),
    ];
    for (cmd, want, says) in failures {
        let what = format!("{cmd:?}");
        let (code, _, stderr) = run(cmd);
        assert_eq!(code, want, "{what}: {stderr}");
        assert!(stderr.contains(says), "{what}: {stderr}");
        assert!(
            dir_files(&out) == before,
            "{what}: the earlier export changed"
        );
        run_ok(prom2om().arg("verify").arg(&out));
    }
}

/// A --force run that succeeds leaves exactly what the same run writes into an empty directory:
/// a shard of the same name replaced, every other file of the earlier run gone.
#[test]
fn a_force_run_replaces_the_earlier_export_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    export_sample(&out);
    let before = dir_files(&out);
    let shared = "20231114T220000Z-000.om.gz";
    assert!(
        before.len() > 3 && before.contains_key(shared),
        "{:?}",
        before.keys()
    );
    let f = write(
        tmp.path(),
        "new.dump",
        "{__name__=\"m\"} 1 1700000000000\n{__name__=\"m\"} 2 1700000060000\n",
    );
    for (i, args) in [&[][..], &["--no-compress"][..]].into_iter().enumerate() {
        let fresh = tmp.path().join(format!("fresh-{i}"));
        let convert = |dir: &std::path::Path, force: &[&str]| {
            run_ok(
                prom2om()
                    .args(["convert", "-q"])
                    .args(args)
                    .args(force)
                    .arg("-o")
                    .arg(dir)
                    .arg(&f),
            );
        };
        convert(&fresh, &[]);
        convert(&out, &["--force"]);
        let after = dir_files(&out);
        assert!(after == dir_files(&fresh), "{args:?}: {:?}", after.keys());
        if i == 0 {
            assert!(after.contains_key(shared) && after[shared] != before[shared]);
        }
        run_ok(prom2om().arg("verify").arg(&out));
    }
}

/// Same input and options give byte-identical shards, whatever the memory limit or thread count.
#[test]
fn deterministic_across_memory_limits_and_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source) = awkward_tsdb(tmp.path());
    let mut big = Vec::new();
    for i in 0..40 {
        // Forty copies with distinct labels: enough to spill at 16MiB without being slow.
        big.extend(
            String::from_utf8_lossy(&source)
                .replace("{__name__=", &format!("{{copy=\"{i}\", __name__="))
                .as_bytes(),
        );
    }
    let f = tmp.path().join("big.dump");
    std::fs::write(&f, &big).unwrap();
    let run = |name: &str, mem: &str, threads: &str| {
        let out = tmp.path().join(name);
        run_ok(
            prom2om()
                .env("RAYON_NUM_THREADS", threads)
                .arg("convert")
                .arg(&f)
                .args(["-q", "--shards", "3", "--memory-limit", mem, "-o"])
                .arg(&out),
        );
        shard_files(&out)
            .iter()
            .map(|p| (p.file_name().unwrap().to_owned(), std::fs::read(p).unwrap()))
            .collect::<Vec<_>>()
    };
    let a = run("a", "1GiB", "2");
    let b = run("b", "16MiB", "1");
    let c = run("c", "16MiB", "2");
    assert!(a.len() >= 6);
    assert!(
        a == b && b == c,
        "shards differ between memory limits / thread counts"
    );
}

#[test]
fn unwritable_output_is_a_clear_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "d.dump", "{__name__=\"m\"} 1 1700000000000\n");
    let file = write(tmp.path(), "a-file", "");
    assert_cmd::Command::cargo_bin("prom2om")
        .unwrap()
        .args(["convert", "-q", "-o"])
        .arg(file.join("sub"))
        .arg(&f)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("output directory"));
}

/// The disk fills up mid-run, on the sorted path (input in head order) and on the streamed one
/// (input in series order, written by worker threads while reading): exit 1, and nothing that
/// looks finished (no manifest, no shard under its final name, no temp files).
#[test]
fn disk_full_mid_run_leaves_nothing_finished() {
    let tmp = tempfile::tempdir().unwrap();
    for head_order in [true, false] {
        let f = tmp.path().join(format!("{head_order}.dump"));
        let spec = prom2om::corpus::CorpusSpec {
            series: 200,
            hours: 4.0,
            head_order,
            ..Default::default()
        };
        write_corpus(&f, &spec);
        let out = tmp.path().join(format!("out-{head_order}"));
        let mut cmd = prom2om();
        cmd.arg("convert")
            .arg(&f)
            .args(["-q", "--no-compress", "--shards", "1", "-o"])
            .arg(&out);
        set_rlimit(&mut cmd, libc::RLIMIT_FSIZE, 64 << 10);
        let o = cmd.output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("writing"), "{stderr}");
        assert_eq!(
            left_in(&out),
            Vec::<String>::new(),
            "head order {head_order}"
        );
    }
}

/// A bad line late in input that was being streamed: exit 2, and the shards written so far are gone.
#[test]
fn bad_line_while_streaming_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("sorted.dump");
    let mut text = corpus_200_series_4h();
    text.extend_from_slice(b"{__name__=\"zz\"} not-a-number 1000\n");
    std::fs::write(&f, &text).unwrap();
    let out = tmp.path().join("out");
    assert_cmd::Command::cargo_bin("prom2om")
        .unwrap()
        .arg("convert")
        .arg(&f)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sorted.dump:"));
    assert_eq!(left_in(&out), Vec::<String>::new());
}

fn left_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Native histograms in dump text (Prometheus 2.48+ prints them lossily) cannot be carried
/// exactly: skipped, counted, and warned about once with a pointer to reading the data
/// directory, while the float samples around them convert.
#[test]
fn native_histograms_are_skipped_counted_and_warned_once() {
    let out = convert(
        "h.dump",
        "{__name__=\"h\"} {count:5, sum:12.5, [-4,-2):1, [-2,-1):2, (0.5,1]:2} 1000\n\
         {__name__=\"h\"} {count:6, sum:13.5, [-4,-2):1, [-2,-1):2, (0.5,1]:3} 2000\n\
         {__name__=\"up\"} 1 1000\n",
        &["-o", "-"],
    )
    .success()
    .stdout("up 1 1\n# EOF\n")
    .stderr(predicate::str::contains("histograms skipped 2"))
    .get_output()
    .stderr
    .clone();
    let stderr = String::from_utf8(out).unwrap();
    assert_eq!(
        stderr
            .matches("warning: skipped 2 native histogram samples of the dump text")
            .count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("prom2om convert DATA_DIR"), "{stderr}");
}
