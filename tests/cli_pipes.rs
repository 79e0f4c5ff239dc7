//! Output into a pipe whose reader went away (`prom2om inspect d | head`): no panic, a quiet
//! exit 0 as ripgrep does, except where something is wrong (a failed verify still fails), and an
//! import still does all its work.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// Runs `cmd` with stdout (and stderr too when `close_stderr`) a pipe closed before the command
/// writes anything; returns (exit code, stderr).
fn closed_stdout(mut cmd: Command, close_stderr: bool) -> (Option<i32>, String) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    cmd.stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    if close_stderr {
        drop(child.stderr.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A dump with many families, so every report is longer than a pipe's buffer.
fn big_dump(dir: &Path) -> std::path::PathBuf {
    let mut text = String::new();
    for f in 0..3000 {
        text.push_str(&format!(
            "{{__name__=\"family_{f:05}\", job=\"j\"}} 1 1700000000000\n"
        ));
    }
    let p = dir.join("big.dump");
    std::fs::write(&p, text).unwrap();
    p
}

fn shard_dir(tmp: &Path) -> std::path::PathBuf {
    let dir = tmp.join("shards");
    run_ok(
        prom2om()
            .args(["convert", "--shards", "64", "-o"])
            .arg(&dir)
            .arg(big_dump(tmp)),
    );
    dir
}

fn no_panic(code: Option<i32>, stderr: &str, want: i32) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(code, Some(want), "{stderr}");
}

#[test]
fn inspect_into_a_closed_pipe_exits_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = big_dump(tmp.path());
    for json in [false, true] {
        let mut cmd = prom2om();
        cmd.arg("inspect").arg(&dump);
        if json {
            cmd.arg("--json");
        }
        let (code, stderr) = closed_stdout(cmd, false);
        no_panic(code, &stderr, 0);
        assert_eq!(stderr, "", "json {json}");
    }
}

#[test]
fn verify_into_a_closed_pipe_exits_quietly_but_still_fails_a_bad_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = shard_dir(tmp.path());
    let mut cmd = prom2om();
    cmd.arg("verify").arg(&dir);
    let (code, stderr) = closed_stdout(cmd, false);
    no_panic(code, &stderr, 0);
    assert_eq!(stderr, "");

    let shard = shard_files(&dir).pop().unwrap();
    std::fs::write(&shard, b"garbage").unwrap();
    let mut cmd = prom2om();
    cmd.arg("verify").arg(&dir);
    let (code, stderr) = closed_stdout(cmd, false);
    no_panic(code, &stderr, 1);
    assert!(
        stderr.contains(&shard.file_name().unwrap().to_string_lossy().into_owned()),
        "{stderr}"
    );
    // With stderr closed as well (`2>&1 | head`): the exit code still says it.
    let mut cmd = prom2om();
    cmd.arg("verify").arg(&dir);
    let (code, stderr) = closed_stdout(cmd, true);
    no_panic(code, &stderr, 1);
}

#[test]
fn convert_to_a_closed_stdout_exits_quietly_and_leaves_no_spill() {
    let tmp = tempfile::tempdir().unwrap();
    let sys_tmp = tmp.path().join("systmp");
    std::fs::create_dir(&sys_tmp).unwrap();
    let mut cmd = prom2om();
    cmd.args(["convert", "-o", "-"])
        .arg(big_dump(tmp.path()))
        .env("TMPDIR", &sys_tmp);
    let (code, stderr) = closed_stdout(cmd, false);
    no_panic(code, &stderr, 0);
    assert_eq!(stderr, "");
    assert_eq!(std::fs::read_dir(&sys_tmp).unwrap().count(), 0);
}

#[test]
fn import_with_a_closed_stdout_still_imports_every_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = shard_dir(tmp.path());
    let data = tmp.path().join("data");
    let mut cmd = prom2om();
    cmd.arg("import").arg(&dir).arg("--tsdb").arg(&data);
    let (code, stderr) = closed_stdout(cmd, false);
    no_panic(code, &stderr, 0);
    // Every family arrived.
    let dumped = dump(&data, None);
    let families = String::from_utf8_lossy(&dumped)
        .lines()
        .filter(|l| l.contains("family_"))
        .count();
    assert_eq!(families, 3000);
}

#[test]
fn fetch_list_metrics_into_a_closed_pipe_exits_quietly() {
    let prom = Prom::start_empty();
    let mut cmd = prom2om();
    cmd.args([
        "fetch",
        "--url",
        &prom.url(),
        "--since",
        "1h",
        "--list-metrics",
    ]);
    let (code, stderr) = closed_stdout(cmd, false);
    no_panic(code, &stderr, 0);
    assert_eq!(stderr, "");
}
