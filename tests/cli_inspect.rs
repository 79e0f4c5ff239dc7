//! `prom2om inspect` on a dump and on a shard directory: the same families and counts either way,
//! filters reflected in the "kept" figures, and JSON for scripts.

mod common;

use common::*;

fn inspect_json(args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let out = run_ok(prom2om().arg("inspect").arg("--json").args(args));
    serde_json::from_slice(&out).expect("inspect --json prints JSON")
}

#[test]
fn dump_and_shard_dir_agree_and_filters_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dump = testdata("sample.dump");
    let all = inspect_json(&[dump.as_os_str()]);
    let lines = std::fs::read(&dump)
        .unwrap()
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64;
    assert_eq!(all["samples"], lines);
    assert_eq!(all["kept_samples"], lines, "no filter keeps everything");
    let es = inspect_json(&[
        dump.as_os_str(),
        "-m".as_ref(),
        "{__name__=~\"elasticsearch_.*\"}".as_ref(),
    ]);
    assert_eq!(es["samples"], lines);
    let fams = es["families"].as_array().unwrap();
    let kept: u64 = fams
        .iter()
        .map(|f| f["kept_samples"].as_u64().unwrap())
        .sum();
    assert_eq!(es["kept_samples"].as_u64().unwrap(), kept);
    for f in fams {
        let name = f["name"].as_str().unwrap();
        assert_eq!(
            f["kept_samples"].as_u64().unwrap() > 0,
            name.starts_with("elasticsearch_"),
            "{name}"
        );
    }
    // Families sorted by samples, largest first.
    let counts: Vec<u64> = fams
        .iter()
        .map(|f| f["samples"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]));

    let out = tmp.path().join("shards");
    run_ok(
        prom2om()
            .arg("convert")
            .arg(&dump)
            .args(["-q", "--stale", "keep", "-o"])
            .arg(&out),
    );
    let dir = inspect_json(&[out.as_os_str()]);
    for key in ["series", "samples", "min_ts_ms", "max_ts_ms"] {
        assert_eq!(dir[key], all[key], "{key}: shard dir vs dump");
    }
    let top = inspect_json(&[dump.as_os_str(), "--top".as_ref(), "3".as_ref()]);
    assert_eq!(top["families"].as_array().unwrap().len(), 3);
}

#[test]
fn text_report_names_families_and_labels() {
    let out = run_ok(
        prom2om()
            .arg("inspect")
            .arg(testdata("sample.dump"))
            .args(["--top", "50"]),
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("elasticsearch_jvm_memory_used_bytes"),
        "{text}"
    );
    assert!(text.contains("time range 19700101T000000Z"), "{text}");
    assert!(
        text.lines().any(|l| l.trim_end().ends_with("cluster")),
        "{text}"
    );
}
