//! `parse_time` against the real Prometheus 2.42 HTTP API: for each input, the millisecond the
//! server evaluates an instant query at (`time=INPUT`) must be ours, and what it refuses we refuse.
//! Needs /usr/bin/prometheus; fails without. The server runs on 127.0.0.1 in a temp dir.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prom2om::timeparse::parse_time;

/// Accepted by both. The query engine truncates nanoseconds towards zero (the storage side
/// floors), so no input here is before 1970 with a sub-millisecond fraction.
const ACCEPTED: &[&str] = &[
    "1714564800",
    "1714564800.123",
    "1714564800.1235",
    "1714564800.1234999",
    "0.0015",
    "-0.0015",
    "-0.0005",
    "-1.0005",
    "1.9996",
    "1e3",
    "+5",
    ".5",
    "5.",
    "1.5e-3",
    "1_714_564_800.5",
    "-1714564800.25",
    "2024-05-01T12:00:00Z",
    "2024-05-01T14:00:00+02:00",
    "2024-05-01T12:00:00.123456789Z",
    "2024-05-01T12:00:00.9999Z",
    "2024-05-01T1:00:00Z",
    "2024-05-01T12:00:00,5Z",
    "1970-01-01T00:00:00+24:00",
    "2024-05-01T12:00:00+99:99",
    "2024-05-01T12:00:00-00:00",
    "2024-02-29T23:59:59.999Z",
    "1969-07-20T20:17:40Z",
];

/// Refused by both.
const REFUSED: &[&str] = &[
    "abc",
    "2024-05-01",
    "2024-05-01t12:00:00Z",
    "2024-05-01T12:00:00z",
    "2024-05-01 12:00:00Z",
    "2024-05-01T12:00:00",
    "2024-05-01T12:00:00+0200",
    "2024-05-01T24:00:00Z",
    "2024-05-01T12:60:00Z",
    "2024-05-01T12:00:60Z",
    "2024-02-30T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2024-13-01T00:00:00Z",
    "2024-05-01T12:00:00.1234567891Z",
    "2024-05-01T012:00:00Z",
    "0x10",
    "1__0",
    "_1",
    "1._5",
    "1e_5",
    " 1",
];

/// A Prometheus server on a free loopback port, killed on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Prometheus 2.42, Debian package `prometheus`) must be installed");
        let server = Server {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(port, "/-/ready").map(|(status, _)| status) != Some(200) {
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The millisecond an instant query at `time` is evaluated at, or None if refused.
    fn eval_ms(&self, time: &str) -> Option<i64> {
        let path = format!(
            "/api/v1/query?query={}&time={}",
            encode("timestamp(vector(0))"),
            encode(time)
        );
        let (_, body) = get(self.port, &path).expect("query answered");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if v["status"] == "error" {
            assert_eq!(v["errorType"], "bad_data", "{time}: {body}");
            return None;
        }
        let secs = v["data"]["result"][0]["value"][0]
            .as_f64()
            .expect("eval time");
        Some((secs * 1000.0).round() as i64)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn parse_time_agrees_with_the_prometheus_api() {
    let server = Server::start();
    let mut diffs = Vec::new();
    for t in ACCEPTED {
        let theirs = server.eval_ms(t);
        let ours = parse_time(t).ok();
        if theirs.is_none() || theirs != ours {
            diffs.push(format!("{t:?}: prometheus {theirs:?}, prom2om {ours:?}"));
        }
    }
    for t in REFUSED {
        let theirs = server.eval_ms(t);
        let ours = parse_time(t).ok();
        if theirs.is_some() || ours.is_some() {
            diffs.push(format!(
                "{t:?} should be refused: prometheus {theirs:?}, prom2om {ours:?}"
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
