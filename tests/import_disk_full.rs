//! A data dir on a full filesystem: the import reports no space in its staging dir (not a bad
//! gzip), and advises freeing space before a rerun. The filesystem is a real, small tmpfs in a
//! private mount namespace (`unshare`), gone with the test.

mod common;

use std::process::Command;

use common::*;

#[test]
fn a_full_staging_dir_is_reported_as_no_space_not_as_bad_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for s in 0..300 {
        for t in 0..100 {
            text.push_str(&format!(
                "{{__name__=\"m\", i=\"{s:04}\"}} {t} {}\n",
                1_700_000_000_000i64 + t * 15_000
            ));
        }
    }
    let dump = tmp.path().join("d.dump");
    std::fs::write(&dump, &text).unwrap();
    let shards = tmp.path().join("shards");
    run_ok(prom2om().args(["convert", "-o"]).arg(&shards).arg(&dump));
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();

    // The shard is about 1.3 MB of OpenMetrics: it cannot be decompressed into 256 KiB for
    // promtool; the block prom2om writes (about 60 KB of chunks) does not fit in 16 KiB.
    for (size, with_promtool) in [("256k", true), ("16k", false)] {
        let promtool_arg = if with_promtool {
            format!("--promtool={}", promtool().display())
        } else {
            "--jobs=1".to_string()
        };
        let mut cmd = Command::new("unshare");
        cmd.args([
            "-rm",
            "sh",
            "-c",
            "mount -t tmpfs -o size=$5 tmpfs \"$1\" && exec \"$2\" import \"$3\" --tsdb \"$1\" \"$4\"",
            "sh",
        ])
        .arg(&data)
        .arg(assert_cmd::cargo::cargo_bin("prom2om"))
        .arg(&shards)
        .arg(&promtool_arg)
        .arg(size);
        let (code, stdout, stderr) = run(cmd);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(!stdout.contains("not valid gzip"), "{stdout}");
        assert!(stdout.contains("No space left on device"), "{stdout}");
        if with_promtool {
            assert!(
                stdout.contains("cannot write the decompressed shard into the staging dir"),
                "{stdout}"
            );
        }
        assert!(
            stderr.contains("no space left in the staging dir")
                && stderr.contains(".prom2om-import")
                && stderr.contains("Free space there"),
            "{stderr}"
        );
    }
}
