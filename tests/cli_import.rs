//! `prom2om import` against the real promtool and prometheus: shard dirs built here (OpenMetrics,
//! one 2h window per shard, gzip, manifest), imported, and read back with `promtool tsdb dump`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command as Cmd;
use prom2om::manifest::{sha256_hex, Manifest, ShardEntry, Totals, MANIFEST_FILE};

const WINDOW_S: i64 = 7200;
/// A 2h-aligned start, in seconds.
const BASE_S: i64 = 1_700_000_000 / WINDOW_S * WINDOW_S;

fn tool(name: &str) -> PathBuf {
    let ok = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{name} not found: install Debian's `prometheus` package"
    );
    PathBuf::from(name)
}

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

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
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

fn dump(data: &Path) -> BTreeSet<String> {
    std::fs::create_dir_all(data.join("wal")).unwrap();
    let out = Command::new(tool("promtool"))
        .args(["tsdb", "dump"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
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

fn import(shards: &Path, data: &Path) -> Cmd {
    tool("promtool");
    let mut c = Cmd::cargo_bin("prom2om").unwrap();
    c.arg("import").arg(shards).arg("--tsdb").arg(data);
    c
}

fn run(mut c: Cmd) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn imports_every_window_and_dump_equals_the_samples_written() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = build_shards(3, 2);
    write_shard_dir(&tmp.path().join("shards"), &shards);
    let data = tmp.path().join("data");
    let mut c = import(&tmp.path().join("shards"), &data);
    c.args(["--jobs", "2"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("imported 6 shards, skipped 0 (imported before), failed 0"),
        "{out}"
    );
    assert!(out.contains("verified: the blocks of the 6 shards imported now hold exactly the manifest's sample counts (288 samples)"), "{out}");
    assert!(
        out.contains("ok      w1-0.om.gz: 48 samples in 1 block(s), as the manifest says"),
        "{out}"
    );
    assert!(err.contains("next block reload"), "{err}");
    assert_eq!(blocks_in(&data), (6, 288));
    assert_eq!(dump(&data), all_dump(&shards));
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
    assert_eq!(dump(&data), without);

    std::fs::write(&bad, &good).unwrap();
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("skipped w0-0.om.gz: imported by an earlier run"),
        "{out}"
    );
    assert!(
        out.contains("imported 1 shards, skipped 2 (imported before), failed 0"),
        "{out}"
    );
    assert_eq!(blocks_in(&data), (3, 288), "each shard exactly once");
    assert_eq!(dump(&data), all_dump(&shards));
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
    let (code, out, err) = run(import(&dir, &data));
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
        out.contains("imported 1 shards, skipped 0 (imported before), failed 2"),
        "{out}"
    );
    assert_eq!(dump(&data), shards[2].dump);
    assert_eq!(blocks_in(&data), (1, 96));
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
if [[ " $* " == *" --help "* ]]; then exec {real} "$@"; fi
args=("$@"); n=${{#args[@]}}; input=${{args[n-2]}}
sed 1d "$input" > "$input.lossy"
args[n-2]="$input.lossy"
exec {real} "${{args[@]}}"
"#,
            real = tool("promtool").display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tmp.path().join("data");
    let mut c = import(&dir, &data);
    c.arg("--promtool").arg(&wrapper);
    let (code, out, err) = run(c);
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
    assert_eq!(dump(&data), shards[0].dump);
}

#[test]
fn killed_runs_then_a_rerun_import_each_shard_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let shards = build_shards(8, 2);
    write_shard_dir(&dir, &shards);
    let data = tmp.path().join("data");
    for delay_ms in [60, 150, 300] {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("prom2om"))
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
    assert_eq!(dump(&data), all_dump(&shards));
    let left: Vec<_> = std::fs::read_dir(data.join(".prom2om-import"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["lock", "state.json"], "staging holds only the state");
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
echo "$*" >> {log}
args=(); for a in "$@"; do [[ $a == --max-block-duration=* ]] || args+=("$a"); done
exec {real} "${{args[@]}}"
"#,
            real = tool("promtool").display(),
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tmp.path().join("data");
    let mut c = import(&dir, &data);
    c.arg("--promtool").arg(&wrapper);
    let (code, out, err) = run(c);
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
    assert_eq!(dump(&data), all_dump(&shards));

    // The real 2.42 has no such flag and must not get it.
    let data = tmp.path().join("data-2.42");
    let mut c = import(&dir, &data);
    c.arg("--promtool").arg(tool("promtool"));
    assert_eq!(run(c).0, 0);
}

#[test]
fn missing_promtool_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    write_shard_dir(&dir, &build_shards(1, 1));
    let data = tmp.path().join("data");
    let mut c = import(&dir, &data);
    c.args(["--promtool", "/nonexistent/promtool"]);
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("promtool not found (/nonexistent/promtool)"),
        "{err}"
    );
    assert!(err.contains("--promtool PATH"), "{err}");

    let empty = tmp.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = import(&dir, &data);
    c.env("PATH", &empty);
    let (code, _, err) = run(c);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("promtool not found (promtool)"), "{err}");
}

#[test]
fn missing_manifest_is_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, _, err) = run(import(tmp.path(), &tmp.path().join("data")));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("manifest.json: no manifest"), "{err}");
}

/// A real prometheus on 127.0.0.1, killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(data: &Path, extra: &[&str]) -> Prometheus {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = data.with_extension("yml");
        std::fs::write(&conf, "global:\n  scrape_interval: 1m\n").unwrap();
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !p.get("/-/ready").starts_with("HTTP/1.0 200") {
            assert!(Instant::now() < deadline, "prometheus did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// A plain HTTP/1.0 GET; the whole response, or "" when the server is not up yet.
    fn get(&self, path: &str) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
        let mut resp = String::new();
        if s.write_all(req.as_bytes()).is_err() || s.read_to_string(&mut resp).is_err() {
            return String::new();
        }
        resp
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn data_dir_of_a_running_prometheus_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let shards = build_shards(1, 1);
    write_shard_dir(&dir, &shards);
    // Upstream's default: DATA/lock held with flock.
    let data = tmp.path().join("data");
    let server = Prometheus::start(&data, &["--storage.tsdb.use-lockfile"]);
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
    let _server = Prometheus::start(&data, &[]);
    assert!(!data.join("lock").exists());
    let (code, out, err) = run(import(&dir, &data));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("is in use: process"), "{err}");
    assert!(err.contains("(prometheus) has"), "{err}");
}

/// Source data for the end-to-end test: awkward labels (quotes, backslashes, newlines, UTF-8,
/// uppercase names), values of every kind, millisecond timestamps, four 2h windows.
fn source_openmetrics() -> Vec<u8> {
    let label_sets = [
        r#"job="api",instance="10.0.0.1:9100""#,
        r#"job="api",instance="10.0.0.2:9100""#,
        r#"path="C:\\temp\\x",quote="say \"hi\"""#,
        r#"msg="line1\nline2",Zone="é-ü-😀""#,
        "",
    ];
    let values = |i: i64, s: usize| -> String {
        match (i + s as i64) % 9 {
            0 => format!("{}", i * 1000 + s as i64),
            1 => format!("-{}.25", i),
            2 => "1.5e+300".to_string(),
            3 => "1e-9".to_string(),
            4 => format!("{}", 0.1 * i as f64),
            5 => "+Inf".to_string(),
            6 => "-Inf".to_string(),
            7 => "0".to_string(),
            _ => format!("{}.5", 123456789 + i),
        }
    };
    let mut text = Vec::new();
    for (m, metric) in ["e2e_gauge", "e2e_requests_total", "e2e_temp"]
        .iter()
        .enumerate()
    {
        for (s, labels) in label_sets.iter().enumerate() {
            let sel = if labels.is_empty() {
                metric.to_string()
            } else {
                format!("{metric}{{{labels}}}")
            };
            // Every 61 s over 8 h, starting at a window boundary, with a few ms of jitter.
            for i in 0..(8 * 3600 / 61) {
                let ms = (BASE_S + i * 61) * 1000 + ((i * 7 + m as i64 + s as i64) % 997);
                writeln!(
                    text,
                    "{sel} {} {}.{:03}",
                    values(i, s),
                    ms / 1000,
                    ms % 1000
                )
                .unwrap();
            }
        }
    }
    text.extend_from_slice(b"# EOF\n");
    text
}

/// One sample: labels (name, raw value) sorted, timestamp in ms, value bits (NaN folded).
type Sample = (Vec<(String, String)>, i64, u64);

fn value_bits(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

/// Undoes Go's strconv.Quote for what the source holds (`\\`, `\"`, `\n`; UTF-8 stays as is).
fn go_unquote(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('n') => out.push('\n'),
            other => panic!("unexpected escape \\{other:?} in {s:?}"),
        }
    }
    out
}

/// Parses `promtool tsdb dump` lines: `{a="x", b="y"} VALUE TS`.
fn dump_samples(dump: &BTreeSet<String>) -> BTreeSet<Sample> {
    dump.iter()
        .map(|line| {
            let (labels, rest) = line.rsplit_once("} ").expect("dump line");
            let (value, ts) = rest.split_once(' ').unwrap();
            let mut pairs = Vec::new();
            let mut body = &labels[1..];
            while !body.is_empty() {
                let (name, after) = body.split_once("=\"").unwrap();
                // The value ends at the first `"` not escaped by a backslash.
                let bytes = after.as_bytes();
                let mut end = 0;
                while bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                pairs.push((name.to_string(), go_unquote(&after[..end])));
                body = after[end + 1..].trim_start_matches(", ");
            }
            pairs.sort();
            (
                pairs,
                ts.parse().unwrap(),
                value_bits(value.parse().unwrap()),
            )
        })
        .collect()
}

/// Percent-encodes a query parameter.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Samples a range selector query returns at `time_s`, via /api/v1/query.
fn query_range_selector(server: &Prometheus, selector: &str, time_s: i64) -> BTreeSet<Sample> {
    let path = format!("/api/v1/query?query={}&time={time_s}", url_encode(selector));
    let resp = server.get(&path);
    assert!(resp.starts_with("HTTP/1.0 200"), "{path}: {resp}");
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix", "{body}");
    let mut out = BTreeSet::new();
    for series in v["data"]["result"].as_array().unwrap() {
        let mut labels: Vec<(String, String)> = series["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        labels.sort();
        for pair in series["values"].as_array().unwrap() {
            let ts_ms = (pair[0].as_f64().unwrap() * 1000.0).round() as i64;
            let value: f64 = pair[1].as_str().unwrap().parse().unwrap();
            out.insert((labels.clone(), ts_ms, value_bits(value)));
        }
    }
    out
}

#[test]
fn end_to_end_dump_convert_import_then_prometheus_serves_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let om = tmp.path().join("source.om");
    std::fs::write(&om, source_openmetrics()).unwrap();
    let source = tmp.path().join("source-tsdb");
    let out = Command::new(tool("promtool"))
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(&om)
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source_dump = dump(&source);
    let expected = dump_samples(&source_dump);
    assert_eq!(expected.len(), 15 * (8 * 3600 / 61) as usize);

    let dump_file = tmp.path().join("source.dump");
    std::fs::write(
        &dump_file,
        source_dump
            .iter()
            .fold(String::new(), |acc, l| acc + l + "\n"),
    )
    .unwrap();
    let shards = tmp.path().join("shards");
    let mut c = Cmd::cargo_bin("prom2om").unwrap();
    c.arg("convert").arg(&dump_file).arg("-o").arg(&shards);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "convert: {out}\n{err}");
    let m = Manifest::load(&shards).unwrap();
    let windows: BTreeSet<i64> = m.shards.iter().map(|s| s.window_start_ms).collect();
    assert_eq!(
        windows.len(),
        4,
        "8 h from a window start: four 2 h windows"
    );
    assert_eq!(m.totals.samples, expected.len() as u64);

    let data = tmp.path().join("data");
    let (code, out, err) = run(import(&shards, &data));
    assert_eq!(code, 0, "import: {out}\n{err}");
    assert!(
        out.contains(&format!(
            "imported {} shards, skipped 0 (imported before), failed 0",
            m.shards.len()
        )),
        "{out}"
    );

    let server = Prometheus::start(&data, &["--storage.tsdb.retention.time=100y"]);
    let max_ms = expected.iter().map(|s| s.1).max().unwrap();
    let at = max_ms / 1000 + 1;
    let mut got = BTreeSet::new();
    for metric in ["e2e_gauge", "e2e_requests_total", "e2e_temp"] {
        got.extend(query_range_selector(&server, &format!("{metric}[1d]"), at));
    }
    assert_eq!(
        got.len(),
        expected.len(),
        "sample count served by prometheus"
    );
    assert_eq!(got, expected);
    // A narrower selector over the same server: only its series, every sample of them.
    let one = query_range_selector(&server, r#"e2e_temp{quote="say \"hi\""}[1d]"#, at);
    let want: BTreeSet<Sample> = expected
        .iter()
        .filter(|s| {
            s.0.contains(&("__name__".into(), "e2e_temp".into()))
                && s.0.contains(&("quote".into(), "say \"hi\"".into()))
        })
        .cloned()
        .collect();
    assert_eq!(one, want);
    assert!(!one.is_empty());
}
