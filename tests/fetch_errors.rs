//! fetch's errors say what helps: a refused connection fails at once naming the address, an
//! https:// URL on a plain-HTTP port says so, a bad path or a login page is not called an
//! interruption, and "rerun with --resume" comes only after a transfer that was cut short.

mod common;
mod fetch_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use fetch_support::{make_blocks, Fault, Proxy, T0};

const RESUME_HINT: &str = "--resume to continue";

/// `prom2om fetch --url URL ... -o OUT EXTRA`: (exit code, stderr, seconds taken).
fn fetch(url: &str, out: &Path, extra: &[&str]) -> (i32, String, f64) {
    let mut cmd = prom2om();
    cmd.args(["fetch", "--url", url, "--start"])
        .arg((T0 / 1000).to_string())
        .arg("--end")
        .arg(((T0 + 4 * 3_600_000) / 1000 - 1).to_string())
        .arg("-o")
        .arg(out)
        .args(extra);
    let started = Instant::now();
    let (code, _, stderr) = run(cmd);
    (code, stderr, started.elapsed().as_secs_f64())
}

fn once(stderr: &str, what: &str) {
    assert_eq!(stderr.matches(what).count(), 1, "{what:?} once: {stderr}");
}

#[test]
fn a_refused_connection_fails_at_once_naming_the_address() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, stderr, secs) = fetch(&url, &tmp.path().join("o"), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(secs < 5.0, "{secs:.1}s: {stderr}");
    assert!(
        stderr.contains(&format!("nothing answers at {url}")),
        "{stderr}"
    );
    assert!(!stderr.contains(RESUME_HINT), "{stderr}");
}

#[test]
fn https_against_a_plain_http_port_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let prom = Prom::start_empty();
    let url = prom.url().replace("http://", "https://");
    let (code, stderr, secs) = fetch(&url, &tmp.path().join("o"), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(secs < 5.0, "{secs:.1}s: {stderr}");
    once(
        &stderr,
        "the server answers in plain HTTP, not TLS: use http://",
    );
    assert!(!stderr.contains(RESUME_HINT), "{stderr}");
}

#[test]
fn a_wrong_path_is_a_404_with_advice_not_an_interruption() {
    let tmp = tempfile::tempdir().unwrap();
    let prom = Prom::start_empty();
    let url = format!("{}/nope", prom.url());
    let (code, stderr, _) = fetch(&url, &tmp.path().join("o"), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("HTTP 404"), "{stderr}");
    assert!(stderr.contains("check --url"), "{stderr}");
    assert!(!stderr.contains(RESUME_HINT), "{stderr}");
    once(&stderr, "listing series");
}

/// A server that answers every request with a login page, as an SSO proxy does.
fn login_page_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().take(50) {
            let Ok(mut c) = c else { continue };
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 8192];
            let _ = c.read(&mut buf);
            let body = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form action=\"/login\"></form></body></html>";
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn a_login_page_is_named_as_such_not_an_interruption() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", login_page_server());
    let (code, stderr, _) = fetch(&url, &tmp.path().join("o"), &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the server answered with an HTML page, not the Prometheus API"),
        "{stderr}"
    );
    assert!(!stderr.contains(RESUME_HINT), "{stderr}");
    once(&stderr, "listing series");
}

#[test]
fn resume_is_advised_after_a_cut_transfer_and_not_when_the_options_differ() {
    let tmp = tempfile::tempdir().unwrap();
    let data = make_blocks(tmp.path(), 40, 4, 60_000);
    let prom = Prom::start(&data);
    // The configuration and the series list pass; every sample request then gets 503.
    let proxy = Proxy::start(prom.port, |n| {
        if n < 2 {
            Fault::Pass
        } else {
            Fault::Unavailable
        }
    });
    let out = tmp.path().join("o");
    let args = [
        "--method",
        "remote-read",
        "--retries",
        "0",
        "--concurrency",
        "1",
    ];
    let (code, stderr, _) = fetch(&proxy.url(), &out, &args);
    assert_eq!(code, 1, "{stderr}");
    once(&stderr, RESUME_HINT);

    // Resumed with other options: the checkpoint refuses, and resuming again would not help.
    let mut other = args.to_vec();
    other.extend(["--resume", "-m", "fx_gauge"]);
    let (code, stderr, _) = fetch(&prom.url(), &out, &other);
    assert_ne!(code, 0, "{stderr}");
    assert!(!stderr.contains(RESUME_HINT), "{stderr}");
}

/// A --force fetch cut short leaves the earlier export as it was (`verify` passes on it); the
/// resumed fetch then replaces it whole, as a fetch into an empty directory writes it.
#[test]
fn a_force_fetch_cut_short_keeps_the_earlier_export_until_it_is_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = make_blocks(tmp.path(), 40, 4, 60_000);
    let prom = Prom::start(&data);
    // Until `cut` is cleared, the configuration and the series list pass and every sample
    // request gets 503. The URL is the same for the resumed run, as the checkpoint wants.
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let cutting = cut.clone();
    let proxy = Proxy::start(prom.port, move |n| {
        if n >= 2 && cutting.load(std::sync::atomic::Ordering::SeqCst) {
            Fault::Unavailable
        } else {
            Fault::Pass
        }
    });
    let out = tmp.path().join("o");
    export_sample(&out);
    let before = dir_files(&out);
    let args = [
        "-q",
        "--method",
        "remote-read",
        "--retries",
        "0",
        "--concurrency",
        "1",
    ];
    let (code, stderr, _) = fetch(&proxy.url(), &out, &[&args[..], &["--force"]].concat());
    assert_eq!(code, 1, "{stderr}");
    once(&stderr, RESUME_HINT);
    assert!(dir_files(&out) == before, "the earlier export changed");
    run_ok(prom2om().arg("verify").arg(&out));

    cut.store(false, std::sync::atomic::Ordering::SeqCst);
    let (code, stderr, _) = fetch(&proxy.url(), &out, &[&args[..], &["--resume"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let fresh = tmp.path().join("fresh");
    let (code, stderr, _) = fetch(&proxy.url(), &fresh, &args);
    assert_eq!(code, 0, "{stderr}");
    let (got, want) = (dir_files(&out), dir_files(&fresh));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(got == want, "the resumed export differs from a fresh one");
    assert!(!out.join(".prom2om-fetch").exists());
}

#[test]
fn an_unknown_host_fails_at_once_saying_it_does_not_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    // `.invalid` never resolves (RFC 2606).
    let (code, stderr, secs) = fetch(
        "http://prom2om-test.invalid:9090",
        &tmp.path().join("o"),
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(secs < 5.0, "{secs:.1}s: {stderr}");
    once(
        &stderr,
        "the host name of http://prom2om-test.invalid:9090 does not resolve",
    );
    assert!(!stderr.contains("giving up"), "{stderr}");
    assert!(!stderr.contains(RESUME_HINT), "{stderr}");
}

#[test]
fn a_dead_proxy_is_named_not_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let prom = Prom::start_empty();
    let proxy = format!("http://127.0.0.1:{}", free_port());
    let (code, stderr, secs) = fetch(&prom.url(), &tmp.path().join("o"), &["--proxy", &proxy]);
    assert_eq!(code, 1, "{stderr}");
    assert!(secs < 5.0, "{secs:.1}s: {stderr}");
    once(&stderr, &format!("nothing answers at the proxy {proxy}"));
    assert!(stderr.contains("--proxy right?"), "{stderr}");
    assert!(
        !stderr.contains(&format!("nothing answers at {}", prom.url())),
        "{stderr}"
    );
    // An unknown proxy host is the proxy's too.
    let (code, stderr, _) = fetch(
        &prom.url(),
        &tmp.path().join("o"),
        &["--proxy", "http://prom2om-test.invalid:3128"],
    );
    assert_eq!(code, 1, "{stderr}");
    once(&stderr, "the host name of the proxy http://prom2om-test.invalid:3128 does not resolve; check the host in --proxy");
}

/// A remote-write URL is the whole endpoint: a 404 there says so, not "without /api/v1".
#[test]
fn a_404_from_a_remote_write_url_asks_for_the_whole_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = tmp.path().join("shards");
    export_sample(&shards);
    let prom = Prom::start_with(
        tmp.path().join("data").as_path(),
        &["--web.enable-remote-write-receiver"],
    );
    let mut cmd = prom2om();
    cmd.arg("import")
        .arg(&shards)
        .args(["--remote-write", &format!("{}/api/v1/writ", prom.url())]);
    let (code, stdout, stderr) = run(cmd);
    let stderr = stdout + &stderr;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("HTTP 404"), "{stderr}");
    assert!(
        stderr.contains("the receiver's whole write endpoint, e.g. http://host:9090/api/v1/write"),
        "{stderr}"
    );
    assert!(!stderr.contains("without /api/v1"), "{stderr}");
}
