//! The README's journey, run as written: the code blocks marked `<!-- journey -->` in README.md,
//! in order, as one bash script (`set -euxo pipefail`: every command must exit 0) from the
//! repository root, on the files shipped in `testdata/`. Three things differ from a newcomer's
//! run, and only these: the work directory `/tmp/prom2om-journey` is a temporary one, the
//! `cargo install` line is left out (this test's build of prom2om is first on `PATH` instead),
//! and the home Prometheus listens on a free port. It runs with each real Prometheus (and its
//! promtool) in turn; the home server must then answer with what the manifest says was exported,
//! and end the vanished target's series where the customer's ended.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const MARK: &str = "<!-- journey -->\n```sh\n";
const WORK_DIR: &str = "/tmp/prom2om-journey";

/// The marked code blocks of the README, in order.
fn journey_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks: Vec<String> = readme
        .split(MARK)
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .collect();
    assert!(
        blocks.len() >= 4,
        "the README marks {} blocks",
        blocks.len()
    );
    blocks
}

/// The journey as this test runs it: in `work`, the home server on `port`.
fn script(work: &Path, port: u16) -> String {
    let mut out = String::from("set -euxo pipefail\n");
    let (mut installs, mut servers) = (0, 0);
    for line in journey_blocks().concat().lines() {
        assert_eq!(
            servers, 0,
            "the home server must be the journey's last step: {line}"
        );
        let line = line.replace(WORK_DIR, &work.display().to_string());
        if line.starts_with("cargo install ") {
            installs += 1;
        } else if line.starts_with("prometheus ") {
            servers += 1;
            let line = line.split(" #").next().unwrap();
            out.push_str(&format!(
                "exec {line} --web.listen-address=127.0.0.1:{port}\n"
            ));
        } else {
            out.push_str(&line);
            out.push('\n');
        }
    }
    assert_eq!(
        (installs, servers),
        (1, 1),
        "one install step, one home server:\n{out}"
    );
    out
}

/// A directory with `prometheus` and `promtool` of that version, for the front of `PATH`.
fn tools_dir(root: &Path, version: PromVersion) -> PathBuf {
    let dir = root.join(format!("tools-{}", version.number()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["prometheus", "promtool"] {
        std::os::unix::fs::symlink(tool_of(version, name), dir.join(name)).unwrap();
    }
    dir
}

/// The journey's shell, which ends as the home Prometheus; killed on drop.
struct Journey(Child);

impl Drop for Journey {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One instant query's vector: (labels as JSON, value).
fn query(port: u16, q: &str, time_ms: i64) -> Vec<(serde_json::Value, f64)> {
    let path = format!(
        "/api/v1/query?query={}&time={}.{:03}",
        url_encode(q),
        time_ms.div_euclid(1000),
        time_ms.rem_euclid(1000)
    );
    let (status, body) = http_get(port, &path).expect("the home Prometheus answers");
    assert_eq!(status, 200, "{q}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let result = v["data"]["result"].as_array().unwrap().clone();
    result
        .into_iter()
        .map(|r| {
            let value = r["value"][1].as_str().unwrap().parse().unwrap();
            (r["metric"].clone(), value)
        })
        .collect()
}

fn run_journey(version: PromVersion) {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("journey");
    let port = free_port();
    let script = script(&work, port);
    let prom2om_dir = assert_cmd::cargo::cargo_bin("prom2om")
        .parent()
        .unwrap()
        .to_path_buf();
    let path = std::env::join_paths(
        [prom2om_dir, tools_dir(tmp.path(), version)]
            .into_iter()
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let log = tmp.path().join("journey.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut journey = Journey(
        Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("PATH", path)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let shown = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if http_get(port, "/-/ready").is_some_and(|(s, _)| s == 200) {
            break;
        }
        if let Some(status) = journey.0.try_wait().unwrap() {
            panic!("{version:?}: the journey stopped ({status}):\n{}", shown());
        }
        assert!(
            Instant::now() < deadline,
            "{version:?}: no home server:\n{}",
            shown()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    check_home(port, &work, version, &shown());
}

/// The home server holds the manifest's series and samples, and the series of the target that
/// vanished end where they ended on the customer's Prometheus.
fn check_home(port: u16, work: &Path, version: PromVersion, log: &str) {
    let text = std::fs::read_to_string(work.join("es-incident/manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let t = &m["totals"];
    let (min, max) = (
        t["min_ts_ms"].as_i64().unwrap(),
        t["max_ts_ms"].as_i64().unwrap(),
    );
    let range = format!("{}s", (max - min) / 1000 + 2);
    // Name by name: series that differ only by name would collide once a function drops it.
    let (status, body) = http_get(port, "/api/v1/label/__name__/values").unwrap();
    assert_eq!(status, 200, "{body}");
    let names: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (mut series, mut samples) = (0, 0);
    for name in names["data"].as_array().unwrap() {
        let each = format!(
            "count_over_time({}{{source=\"customer-a\"}}[{range}])",
            name.as_str().unwrap()
        );
        series += query(port, &format!("count({each})"), max)[0].1 as u64;
        samples += query(port, &format!("sum({each})"), max)[0].1 as u64;
    }
    assert_eq!(
        (series, samples),
        (
            t["series"].as_u64().unwrap(),
            t["samples"].as_u64().unwrap()
        ),
        "{version:?}: the home server against the manifest {t}\n{log}"
    );
    assert!(t["stale_markers"].as_u64().unwrap() > 0, "{t}");
    // es-prod-0's exporter went away at 22:26:52.389 (testdata/README.md): its series were
    // there two seconds before and are gone two seconds after, as on the customer's side,
    // instead of lingering for the 5-minute lookback.
    let vanished_ms = 1_796_596_012_389;
    let es0 = "count({source=\"customer-a\", cluster=\"es-prod-0\"})";
    let before = query(port, es0, vanished_ms - 2_000);
    assert!(before.first().is_some_and(|(_, n)| *n > 0.0), "{before:?}");
    let after = query(port, es0, vanished_ms + 2_000);
    assert!(after.is_empty(), "{version:?}: {after:?}");
}

#[test]
fn the_readme_journey_runs_as_written_home_on_prometheus_2_42() {
    run_journey(PromVersion::V2_42);
}

#[test]
fn the_readme_journey_runs_as_written_home_on_prometheus_3_5_3() {
    run_journey(PromVersion::V3_5);
}
