//! `prom2om import` against the real promtool and prometheus: shard dirs built here (OpenMetrics,
//! one 2h window per shard, gzip, manifest), imported (by prom2om's block writer with no promtool
//! on PATH, or with `--promtool`), and read back with `promtool tsdb dump`.
//! The end-to-end run (dump -> convert -> import -> a server serves it) is in `import_e2e.rs`.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{dump_lines, gzip, prom2om, promtool, run, Prom};
use prom2om::format::shard_dir::{sha256_hex, Manifest, ShardEntry, Totals, MANIFEST_FILE};

const WINDOW_S: i64 = 7200;
/// A 2h-aligned start, in seconds.
const BASE_S: i64 = 1_700_000_000 / WINDOW_S * WINDOW_S;

/// One shard: its file name, OpenMetrics text, and the dump lines promtool gives back for it.
struct Shard {
    file: String,
    window: i64,
    index: u32,
    text: Vec<u8>,
    series: u64,
    samples: u64,
    min_ms: i64,
    max_ms: i64,
    dump: BTreeSet<String>,
}

/// `windows` 2h windows with `per_window` shards each; shard j of a window holds series
/// `m{l="s<k>"}` with k % per_window == j, a sample every 5 minutes.
fn build_shards(windows: i64, per_window: u32) -> Vec<Shard> {
    let mut shards = Vec::new();
    for w in 0..windows {
        let start = BASE_S + w * WINDOW_S;
        for j in 0..per_window {
            let mut s = Shard {
                file: format!("w{w}-{j}.om.gz"),
                window: start,
                index: j,
                text: Vec::new(),
                series: 0,
                samples: 0,
                min_ms: i64::MAX,
                max_ms: i64::MIN,
                dump: BTreeSet::new(),
            };
            for k in (0..4u32).filter(|k| k % per_window == j) {
                s.series += 1;
                for t in (start..start + WINDOW_S).step_by(300) {
                    let v = (t - start) as f64 / 300.0 + k as f64 * 0.25 + w as f64;
                    writeln!(s.text, "m{{l=\"s{k}\"}} {v} {t}").unwrap();
                    s.dump
                        .insert(format!("{{__name__=\"m\", l=\"s{k}\"}} {v} {}", t * 1000));
                    s.samples += 1;
                    s.min_ms = s.min_ms.min(t * 1000);
                    s.max_ms = s.max_ms.max(t * 1000);
                }
            }
            s.text.extend_from_slice(b"# EOF\n");
            shards.push(s);
        }
    }
    shards
}

/// Writes the shards (gzip) and their manifest into `dir`.
fn write_shard_dir(dir: &Path, shards: &[Shard]) -> Manifest {
    std::fs::create_dir_all(dir).unwrap();
    let mut m = Manifest {
        prom2om_version: "test".into(),
        source: "convert".into(),
        block_duration_ms: WINDOW_S * 1000,
        compressed: true,
        ..Default::default()
    };
    let mut totals = Totals::default();
    for s in shards {
        let gz = gzip(&s.text);
        std::fs::write(dir.join(&s.file), &gz).unwrap();
        m.shards.push(ShardEntry {
            file: s.file.clone(),
            window_start_ms: s.window * 1000,
            window_end_ms: (s.window + WINDOW_S) * 1000,
            shard: s.index,
            series: s.series,
            samples: s.samples,
            min_ts_ms: s.min_ms,
            max_ts_ms: s.max_ms,
            bytes: gz.len() as u64,
            uncompressed_bytes: s.text.len() as u64,
            sha256: sha256_hex(&gz[..]).unwrap(),
            sidecars: Vec::new(),
        });
        totals.shards += 1;
        totals.series += s.series;
        totals.samples += s.samples;
        totals.bytes += gz.len() as u64;
        totals.uncompressed_bytes += s.text.len() as u64;
    }
    m.totals = totals;
    save_manifest(dir, &m);
    m
}

fn save_manifest(dir: &Path, m: &Manifest) {
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(m).unwrap(),
    )
    .unwrap();
}

fn all_dump(shards: &[Shard]) -> BTreeSet<String> {
    shards.iter().flat_map(|s| s.dump.iter().cloned()).collect()
}

/// (block dirs, sum of their meta.json numSamples) in a data dir: duplicates would show here,
/// where a dump merges them away.
fn blocks_in(data: &Path) -> (usize, u64) {
    let mut acc = (0, 0);
    for e in std::fs::read_dir(data).unwrap().flatten() {
        let meta = e.path().join("meta.json");
        if let Ok(text) = std::fs::read(&meta) {
            let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
            acc.0 += 1;
            acc.1 += v["stats"]["numSamples"].as_u64().unwrap();
        }
    }
    acc
}

/// `prom2om import SHARDS --tsdb DATA`, with no promtool on PATH: the default needs none.
fn import(shards: &Path, data: &Path) -> Command {
    let mut c = prom2om();
    c.arg("import").arg(shards).arg("--tsdb").arg(data);
    c.env("PATH", "/nonexistent-prom2om-test-path");
    c
}

/// `prom2om import SHARDS --tsdb DATA --promtool=PATH` (the real one unless `tool` is given).
fn import_promtool(shards: &Path, data: &Path, tool: Option<&Path>) -> Command {
    let real = promtool();
    let mut c = prom2om();
    c.arg("import").arg(shards).arg("--tsdb").arg(data);
    c.arg(format!("--promtool={}", tool.unwrap_or(&real).display()));
    c
}

#[test]
fn imports_every_window_and_dump_equals_the_samples_written() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = build_shards(3, 2);
    write_shard_dir(&tmp.path().join("shards"), &shards);
    for with_promtool in [false, true] {
        let data = tmp.path().join(format!("data-{with_promtool}"));
        let mut c = if with_promtool {
            import_promtool(&tmp.path().join("shards"), &data, None)
        } else {
            import(&tmp.path().join("shards"), &data)
        };
        c.args(["--jobs", "2"]);
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
        assert!(
            out.contains("imported 6 shards, skipped 0 (imported before), failed 0"),
            "{out}"
        );
        assert!(out.contains("verified: the blocks of the 6 shards imported now hold exactly the manifest's counts (288 samples)"), "{out}");
        assert!(
            out.contains("ok      w1-0.om.gz: 48 samples in 1 block, as the manifest says"),
            "{out}"
        );
        assert!(err.contains("next block reload"), "{err}");
        assert_eq!(blocks_in(&data), (6, 288));
        assert_eq!(dump_lines(&data), all_dump(&shards));
    }
}

#[test]
fn corrupted_shard_is_refused_others_import_and_a_rerun_retries_only_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let shards = build_shards(3, 1);
    write_shard_dir(&dir, &shards);
    let bad = dir.join("w1-0.om.gz");
    let good = std::fs::read(&bad).unwrap();
    let mut changed = good.clone();
    let mid = changed.len() / 2;
    changed[mid] ^= 0x40;
    std::fs::write(&bad, &changed).unwrap();

    let data = tmp.path().join("data");
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("FAILED  w1-0.om.gz: verify: sha256 is "),
        "{out}"
    );
    assert!(
        out.contains("imported 2 shards, skipped 0 (imported before), failed 1"),
        "{out}"
    );
    assert!(err.contains("1 of 3 shards failed"), "{err}");
    let without: BTreeSet<String> = [&shards[0], &shards[2]]
        .iter()
        .flat_map(|s| s.dump.iter().cloned())
        .collect();
    assert_eq!(dump_lines(&data), without);

    std::fs::write(&bad, &good).unwrap();
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("skipped w0-0.om.gz: imported by an earlier run"),
        "{out}"
    );
    assert!(
        out.contains("imported 1 shard, skipped 2 (imported before), failed 0"),
        "{out}"
    );
    assert_eq!(blocks_in(&data), (3, 288), "each shard exactly once");
    assert_eq!(dump_lines(&data), all_dump(&shards));
}

#[test]
fn rerun_skips_imported_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let shards = build_shards(2, 2);
    write_shard_dir(&dir, &shards);
    let data = tmp.path().join("data");
    assert_eq!(run(import(&dir, &data)).0, 0);
    let before = blocks_in(&data);
    let (code, out, _) = run(import(&dir, &data));
    assert_eq!(code, 0);
    assert!(
        out.contains("imported 0 shards, skipped 4 (imported before), failed 0"),
        "{out}"
    );
    assert_eq!(blocks_in(&data), before);
    assert_eq!(before, (4, 192));
}

#[test]
fn promtool_errors_and_verify_problems_are_reported_per_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let mut shards = build_shards(3, 1);
    // Valid OpenMetrics for verify (Prometheus 3 quoted names), but not for promtool 2.42: its
    // own error must reach the summary.
    let ts = shards[0].window;
    shards[0].text = format!("m{{\"service.name\"=\"x\"}} 1 {ts}\n# EOF\n").into_bytes();
    (shards[0].series, shards[0].samples) = (1, 1);
    (shards[0].min_ms, shards[0].max_ms) = (ts * 1000, ts * 1000);
    let mut m = write_shard_dir(&dir, &shards);
    // The manifest promises one more sample than the shard holds.
    m.shards[1].samples += 1;
    m.totals.samples += 1;
    save_manifest(&dir, &m);
    let data = tmp.path().join("data");
    let (code, out, err) = run(import_promtool(&dir, &data, None));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("FAILED  w0-0.om.gz: promtool failed (exit status: 1): getting min and max timestamp: next: expected label name or left brace, got \"INVALID\""),
        "{out}"
    );
    assert!(
        out.contains("FAILED  w1-0.om.gz: verify: samples is 96, the manifest says 97"),
        "{out}"
    );
    assert!(
        out.contains("imported 1 shard, skipped 0 (imported before), failed 2"),
        "{out}"
    );
    assert_eq!(dump_lines(&data), shards[2].dump);
    assert_eq!(blocks_in(&data), (1, 96));

    // prom2om's own writer takes the quoted name; the short shard is still refused.
    let data = tmp.path().join("data-writer");
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("FAILED  w1-0.om.gz: verify: samples is 96, the manifest says 97"),
        "{out}"
    );
    assert!(
        out.contains("ok      w0-0.om.gz: 1 sample in 1 block"),
        "{out}"
    );
    let mut want = shards[2].dump.clone();
    want.insert(format!(
        "{{__name__=\"m\", service.name=\"x\"}} 1 {}",
        ts * 1000
    ));
    assert_eq!(dump_lines(&data), want);
}

/// Backfill silently drops samples it does not like (out of order in 2.42): the blocks are
/// counted after promtool, and a shortfall keeps them out of the data dir. Simulated with the
/// real promtool behind a wrapper that loses the shard's first sample.
#[test]
fn blocks_short_of_the_manifest_count_are_not_moved() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    write_shard_dir(&dir, &build_shards(1, 1));
    let wrapper = tmp.path().join("promtool-lossy");
    std::fs::write(
        &wrapper,
        format!(
            r#"#!/bin/bash
if [[ " $* " == *" --help "* || $1 == --version ]]; then exec {real} "$@"; fi
args=("$@"); n=${{#args[@]}}; input=${{args[n-2]}}
sed 1d "$input" > "$input.lossy"
args[n-2]="$input.lossy"
exec {real} "${{args[@]}}"
"#,
            real = promtool().display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tmp.path().join("data");
    let (code, out, err) = run(import_promtool(&dir, &data, Some(&wrapper)));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("FAILED  w0-0.om.gz: promtool made 1 block(s) holding 95 samples, the manifest says 96; blocks not moved"),
        "{out}"
    );
    assert_eq!(blocks_in(&data), (0, 0));
}

#[test]
fn interrupted_block_move_is_finished_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let shards = build_shards(1, 1);
    write_shard_dir(&dir, &shards);
    let data = tmp.path().join("data");
    assert_eq!(run(import(&dir, &data)).0, 0);
    // Put the data dir back the way a crash between "moving" and the rename leaves it.
    let staging = data.join(".prom2om-import");
    let state_path = staging.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let rec = state["shards"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    rec["status"] = "moving".into();
    let ulid = rec["blocks"][0].as_str().unwrap().to_string();
    let work = staging
        .join(rec["work_dir"].as_str().unwrap())
        .join("blocks");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::rename(data.join(&ulid), work.join(&ulid)).unwrap();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    assert_eq!(blocks_in(&data), (0, 0));

    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("w0-0.om.gz: an earlier run was interrupted moving its blocks"),
        "{out}"
    );
    assert_eq!(blocks_in(&data), (1, 96));
    assert_eq!(dump_lines(&data), shards[0].dump);
}

#[test]
fn killed_runs_then_a_rerun_import_each_shard_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let shards = build_shards(8, 2);
    write_shard_dir(&dir, &shards);
    let data = tmp.path().join("data");
    for delay_ms in [60, 150, 300] {
        let mut child = prom2om()
            .arg("import")
            .arg(&dir)
            .arg("--tsdb")
            .arg(&data)
            .args(["--jobs", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no cleanup of any kind
        child.wait().unwrap();
    }
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(blocks_in(&data), (16, 16 * 48), "every shard once: {out}");
    assert_eq!(dump_lines(&data), all_dump(&shards));
    let left: Vec<_> = std::fs::read_dir(data.join(".prom2om-import"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut left = left;
    left.sort();
    // The lock goes when the run that holds it ends.
    assert_eq!(left, ["state.json"], "staging holds only the state");
}

/// A promtool that has `--max-block-duration` (newer than 2.42): the real one behind a wrapper
/// that adds the flag to its help, logs its arguments and drops the flag before running it.
#[test]
fn max_block_duration_is_passed_when_promtool_has_it() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let shards = build_shards(2, 1);
    write_shard_dir(&dir, &shards);
    let log = tmp.path().join("args.log");
    let wrapper = tmp.path().join("promtool-new");
    std::fs::write(
        &wrapper,
        format!(
            r#"#!/bin/bash
if [[ " $* " == *" --help "* ]]; then
  {real} "$@"; echo "      --max-block-duration=2h  Maximum duration created blocks may span."; exit 0
fi
[[ $1 == --version ]] && exec {real} "$@"
echo "$*" >> {log}
args=(); for a in "$@"; do [[ $a == --max-block-duration=* ]] || args+=("$a"); done
exec {real} "${{args[@]}}"
"#,
            real = promtool().display(),
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tmp.path().join("data");
    let (code, out, err) = run(import_promtool(&dir, &data, Some(&wrapper)));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(calls.lines().count(), 2, "{calls}");
    for line in calls.lines() {
        assert!(
            line.starts_with(
                "tsdb create-blocks-from openmetrics --quiet --max-block-duration=2h "
            ),
            "{line}"
        );
    }
    assert_eq!(dump_lines(&data), all_dump(&shards));

    // The real 2.42 has no such flag and must not get it.
    let data = tmp.path().join("data-2.42");
    assert_eq!(run(import_promtool(&dir, &data, None)).0, 0);
}

#[test]
fn missing_promtool_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    write_shard_dir(&dir, &build_shards(1, 1));
    let data = tmp.path().join("data");
    let nowhere = Path::new("/nonexistent/promtool");
    let (code, _, err) = run(import_promtool(&dir, &data, Some(nowhere)));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("promtool not found (/nonexistent/promtool)"),
        "{err}"
    );
    assert!(err.contains("--promtool=PATH"), "{err}");

    // --promtool alone looks it up on PATH.
    let mut c = import(&dir, &data);
    c.arg("--promtool");
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("promtool not found (promtool)"), "{err}");
    assert!(!data.exists(), "nothing done before the refusal");

    // The default needs none.
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(blocks_in(&data), (1, 96));
}

#[test]
fn missing_manifest_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = run(import(tmp.path(), &tmp.path().join("data")));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("manifest.json: no manifest"), "{err}");
}

#[test]
fn data_dir_of_a_running_prometheus_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let shards = build_shards(1, 1);
    write_shard_dir(&dir, &shards);
    // Upstream's default: DATA/lock held with flock.
    let data = tmp.path().join("data");
    let server = Prom::start_with(&data, &["--storage.tsdb.use-lockfile"]);
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("is in use: another process holds the lock"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(blocks_in(&data), (0, 0));
    let mut c = import(&dir, &data);
    c.arg("--force");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(blocks_in(&data), (1, 96));
    drop(server);
}

#[test]
fn data_dir_of_a_prometheus_without_lock_file_is_refused_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    write_shard_dir(&dir, &build_shards(1, 1));
    // Debian's default: no lock file, but the server keeps its WAL open.
    let data = tmp.path().join("data");
    let _server = Prom::start(&data);
    assert!(!data.join("lock").exists());
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("is in use: process"), "{err}");
    assert!(err.contains("(prometheus) has"), "{err}");
}

/// `prom2om import` run as another user (nobody) than the Prometheus (root): it cannot read the
/// server's open files, and says what it could not see instead of passing in silence. A
/// Prometheus whose `--storage.tsdb.path` is the dir is refused by its command line; one whose
/// data dir cannot be told (a relative path) is refused as unknown; other users' processes are
/// only warned about.
#[test]
fn in_use_check_without_permission_says_what_it_could_not_see() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let open = |p: &Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777));
    open(tmp.path()).unwrap();
    let dir = tmp.path().join("shards");
    write_shard_dir(&dir, &build_shards(1, 1));
    let as_nobody = |data: &Path| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_prom2om"))
            .arg("import")
            .arg(&dir)
            .arg("--tsdb")
            .arg(data);
        run(c)
    };
    let chmod_all = |p: &Path| {
        let st = Command::new("chmod").arg("-R").arg("a+rwX").arg(p).status();
        assert!(st.unwrap().success());
    };
    chmod_all(&dir);

    // Root's Prometheus on the dir (Debian's: no lock file), found by its command line.
    let data = tmp.path().join("data");
    let server = Prom::start(&data);
    chmod_all(&data);
    let (code, out, err) = as_nobody(&data);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("is in use: process"), "{err}");
    assert!(
        err.contains(&format!("--storage.tsdb.path={}", data.display())),
        "{err}"
    );
    assert_eq!(blocks_in(&data), (0, 0));
    drop(server);

    // A Prometheus whose data dir is relative to a working directory nobody may read.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("p.yml"), "scrape_configs: []\n").unwrap();
    let mut relative = Command::new(common::prometheus())
        .current_dir(&other)
        .args(["--config.file=p.yml", "--storage.tsdb.path=rel-data"])
        .arg(format!(
            "--web.listen-address=127.0.0.1:{}",
            common::free_port()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    chmod_all(&fresh);
    // Wait until it runs as prometheus (it has opened its data dir).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !other.join("rel-data").join("wal").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out, err) = as_nobody(&fresh);
    let _ = relative.kill();
    let _ = relative.wait();
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("cannot tell whether"), "{err}");
    assert!(err.contains("--storage.tsdb.path=rel-data"), "{err}");
    assert!(err.contains("Run the import as root"), "{err}");
    assert_eq!(blocks_in(&fresh), (0, 0));

    // Root's other processes (one holding a file in the dir) cannot be looked into: said, and
    // the import goes on.
    let held = fresh.join("held");
    std::fs::write(&held, b"x").unwrap();
    let mut sleeper = Command::new("sleep")
        .arg("60")
        .stdin(std::fs::File::open(&held).unwrap())
        .spawn()
        .unwrap();
    let (code, out, err) = as_nobody(&fresh);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("warning: could not check"), "{err}");
    assert!(err.contains("run the import as root"), "{err}");
    assert_eq!(blocks_in(&fresh), (1, 96));
}
