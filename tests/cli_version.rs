//! `prom2om --version` names the commit it was built from and its gzip level-1 encoder, `--help`
//! names every input, and `completions` prints scripts for the shells the release tarball ships.

use assert_cmd::Command;

#[test]
fn version_names_the_commit_and_the_gzip_encoder() {
    let out = Command::cargo_bin("prom2om")
        .unwrap()
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let re = regex::Regex::new(
        r"^prom2om \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown), gzip level 1: (igzip|zlib-rs)\)\n$",
    )
    .unwrap();
    let caps = re
        .captures(&text)
        .unwrap_or_else(|| panic!("unexpected --version: {text:?}"));
    let encoder = if cfg!(feature = "igzip") {
        "igzip"
    } else {
        "zlib-rs"
    };
    assert_eq!(&caps[2], encoder);
}

#[test]
fn help_names_the_data_directory_first_among_the_inputs() {
    let out = Command::cargo_bin("prom2om")
        .unwrap()
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let about = text.split("\n\n").next().unwrap().replace('\n', " ");
    assert!(
        about.contains(
            "(its data directory read directly, promtool tsdb dump output or the HTTP API)"
        ),
        "{about}"
    );
}

#[test]
fn completions_for_each_shipped_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef prom2om"),
        ("fish", "complete -c prom2om"),
    ] {
        let out = Command::cargo_bin("prom2om")
            .unwrap()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell} script lacks {marker:?}");
    }
    Command::cargo_bin("prom2om")
        .unwrap()
        .args(["completions", "tcsh"])
        .assert()
        .code(2);
}
