//! Names outside the classic `[a-zA-Z_:][a-zA-Z0-9_:]*` are written quoted, which promtool reads
//! only from 2.51 on: convert warns with examples, and `import` and `verify --promtool` refuse
//! them for the real Debian promtool 2.42 before any work, naming the version needed.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn quoted_shards(tmp: &Path) -> (PathBuf, String) {
    let dump = tmp.join("d.dump");
    std::fs::write(
        &dump,
        "{__name__=\"service.requests\", job=\"a\"} 1 1700000000000\n\
         {__name__=\"up\", \"k8s.pod\"=\"b\"} 1 1700000000000\n\
         {__name__=\"up\", job=\"x\"} 1 1700000000000\n",
    )
    .unwrap();
    let dir = tmp.join("shards");
    let mut cmd = prom2om();
    cmd.args(["convert", "-o"]).arg(&dir).arg(&dump);
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 0, "{stderr}");
    (dir, stderr)
}

#[test]
fn convert_warns_with_examples_and_counts_them_in_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, stderr) = quoted_shards(tmp.path());
    assert!(
        stderr.contains("warning: 2 series have metric or label names outside")
            && stderr.contains("e.g. service.requests, k8s.pod")
            && stderr.contains("promtool 2.51 or newer"),
        "{stderr}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["quoted_names"]["series"], 2);

    // Classic names only: no warning.
    let mut cmd = prom2om();
    cmd.args(["convert", "-o"])
        .arg(tmp.path().join("plain"))
        .arg(testdata("sample.dump"));
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("quoted form"), "{stderr}");
}

#[test]
fn import_with_promtool_2_42_refuses_quoted_names_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = quoted_shards(tmp.path());
    let data = tmp.path().join("data");
    let mut cmd = prom2om();
    cmd.arg("import")
        .arg(&dir)
        .arg("--tsdb")
        .arg(&data)
        .arg(format!("--promtool={}", promtool().display()));
    let (code, stdout, stderr) = run(cmd);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("only promtool 2.51 or newer imports")
            && stderr.contains("is version 2.42.0")
            && stderr.contains("service.requests"),
        "{stderr}"
    );
    assert!(!data.exists(), "nothing done before the refusal");
}

#[test]
fn verify_with_promtool_2_42_fails_quoted_names_and_passes_classic_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = quoted_shards(tmp.path());
    run_ok(prom2om().arg("verify").arg(&dir));
    let mut cmd = prom2om();
    cmd.arg("verify")
        .arg(&dir)
        .arg("--promtool")
        .arg(promtool());
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("only promtool 2.51 or newer imports") && stderr.contains("k8s.pod"),
        "{stderr}"
    );

    let plain = tmp.path().join("plain");
    run_ok(
        prom2om()
            .args(["convert", "-o"])
            .arg(&plain)
            .arg(testdata("sample.dump")),
    );
    run_ok(
        prom2om()
            .arg("verify")
            .arg(&plain)
            .arg("--promtool")
            .arg(promtool()),
    );
}
