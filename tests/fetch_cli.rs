//! `prom2om fetch` end to end against a real Prometheus: the shards it writes backfill (with the
//! real promtool) into exactly the samples of the source blocks; a killed fetch resumes to the
//! same shards; credentials are checked, never printed, and wrong ones exit 1.

mod common;
mod fetch_support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{prom2om, restore_shards, Prom};
use fetch_support::*;

const SEL: &str = r#"{__name__=~"fx_.*"}"#;

fn base_args(url: &str, out: &Path) -> Vec<String> {
    vec![
        "fetch".into(),
        "--url".into(),
        url.into(),
        "-m".into(),
        SEL.into(),
        "--start".into(),
        (T0 / 1000).to_string(),
        "--end".into(),
        ((T0 + 4 * 3_600_000) / 1000 - 1).to_string(),
        "-o".into(),
        out.display().to_string(),
    ]
}

/// Backfills the shards of `out` with promtool and dumps the result.
fn restore(out: &Path, work: &Path) -> Data {
    dump(&restore_shards(out, work), SEL)
}

fn shard_checksums(out: &Path) -> Vec<(String, String)> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    m["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["file"].as_str().unwrap().into(),
                s["sha256"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn fetch_cli_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = make_blocks(tmp.path(), 120, 4, 15_000);
    let end = (T0 + 4 * 3_600_000) / 1000 * 1000 - 1000;
    let want = window(&dump(&data, SEL), T0, end);
    let prom = Prom::start(&data);

    // A plain fetch: its shards backfill into exactly the source samples.
    let out1 = tmp.path().join("out1");
    let o = prom2om()
        .args(base_args(&prom.url(), &out1))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("remote-read") && stderr.contains("samples/s"),
        "{stderr}"
    );
    assert!(!out1.join(".prom2om-fetch").exists());
    let work = tmp.path().join("w1");
    std::fs::create_dir_all(&work).unwrap();
    assert_same(&restore(&out1, &work), &want, "fetch -> backfill");

    // A selector that another one covers (as dashboards give) fetches nothing twice.
    let units = |stderr: &str| -> u64 {
        let i = stderr.find(" work units").expect("a work units line");
        let head = &stderr[..i];
        head[head.rfind(' ').unwrap() + 1..].parse().unwrap()
    };
    let out1b = tmp.path().join("out1b");
    let mut a = base_args(&prom.url(), &out1b);
    a.extend(["-m", "fx_gauge{Zeta=\"z1\"}", "-m", SEL].map(String::from));
    let o = prom2om().args(&a).output().unwrap();
    let stderr_b = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr_b}");
    assert_eq!(units(&stderr_b), units(&stderr), "{stderr_b}");
    assert!(stderr_b.contains("duplicates dropped 0"), "{stderr_b}");
    assert_eq!(shard_checksums(&out1b), shard_checksums(&out1));

    // --list-metrics needs no output directory.
    let o = prom2om()
        .args([
            "fetch",
            "--url",
            &prom.url(),
            "-m",
            SEL,
            "--since",
            "100000d",
            "--list-metrics",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("30  fx_gauge") && stdout.contains("120  series in 4 metrics"),
        "{stdout}"
    );
    // Without a time range, as the README shows it: everything the server holds, and it says so.
    let o = prom2om()
        .args(["fetch", "--url", &prom.url(), "-m", SEL, "--list-metrics"])
        .output()
        .unwrap();
    let stderr_l = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr_l}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), stdout);
    assert!(
        stderr_l.contains("listing series with samples from 1970-01-01T00:00:00Z to "),
        "{stderr_l}"
    );

    // Killed mid-way, then resumed: the same shards as the uninterrupted run.
    let slow = Proxy::start(prom.port, |_| Fault::Delay(Duration::from_millis(150)));
    let out2 = tmp.path().join("out2");
    let mut args = base_args(&slow.url(), &out2);
    args.extend(["--concurrency", "1", "--samples-per-request", "3000", "-q"].map(String::from));
    let mut child = prom2om().args(&args).stderr(Stdio::null()).spawn().unwrap();
    let cp = out2.join(".prom2om-fetch/checkpoint.jsonl");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = std::fs::read_to_string(&cp).map_or(0, |t| t.matches("done ").count());
        if done >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "the fetch made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the fetch ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = prom2om().args(&args).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
    let mut resume = args.clone();
    resume.push("--resume".into());
    let o = prom2om().args(&resume).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(shard_checksums(&out2), shard_checksums(&out1));
    assert!(!out2.join(".prom2om-fetch").exists());

    // Basic auth and bearer token: right ones work, wrong ones exit 1 with a clear message.
    let basic = Proxy::start(prom.port, |_| Fault::RequireAuth("Basic dXNlcjpzM2NyZXQ="));
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let out3 = tmp.path().join("out3");
    let mut a = base_args(&basic.url(), &out3);
    a.extend(["--user", "user", "--password-file", pw.to_str().unwrap()].map(String::from));
    let o = prom2om().args(&a).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(shard_checksums(&out3), shard_checksums(&out1));
    let out4 = tmp.path().join("out4");
    let mut a = base_args(&basic.url(), &out4);
    a.extend(["--user", "user", "--password", "hunter2"].map(String::from));
    let o = prom2om().args(&a).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401") && stderr.contains("Unauthorized"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let bearer = Proxy::start(prom.port, |_| Fault::RequireAuth("Bearer t0ken"));
    let tok = tmp.path().join("tok");
    std::fs::write(&tok, "t0ken\n").unwrap();
    let out5 = tmp.path().join("out5");
    let mut a = base_args(&bearer.url(), &out5);
    a.extend(["--bearer-token-file", tok.to_str().unwrap()].map(String::from));
    assert!(prom2om().args(&a).status().unwrap().success());
    let out6 = tmp.path().join("out6");
    let mut a = base_args(&bearer.url(), &out6);
    a.extend(["--bearer-token", "wrong-t0ken"].map(String::from));
    let o = prom2om().args(&a).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("401") && !stderr.contains("wrong-t0ken"),
        "{stderr}"
    );

    // Credentials in the URL work and stay out of the manifest and the messages.
    let out7 = tmp.path().join("out7");
    let url = format!("http://user:s3cret@127.0.0.1:{}", basic.port);
    let o = prom2om().args(base_args(&url, &out7)).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    let manifest = std::fs::read_to_string(out7.join("manifest.json")).unwrap();
    assert!(
        !manifest.contains("s3cret") && manifest.contains("***@127.0.0.1"),
        "{manifest}"
    );
    assert!(
        manifest.contains("\"source\": \"fetch\"") || manifest.contains("\"source\":\"fetch\"")
    );
}
