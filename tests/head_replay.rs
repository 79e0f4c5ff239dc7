//! The head reader against real Prometheus 2.42 data directories: a server scrapes itself, is
//! stopped, and `read_head` must yield exactly the samples `promtool tsdb dump` prints for a copy.
mod common;

use prom2om::format::dump::write_line;
use prom2om::labels::Labels;
use prom2om::pipeline::head::{read_head, HeadOptions, HeadStats, HeadVisitor};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Collects samples as dump lines.
#[derive(Default)]
struct Lines {
    labels: Vec<Labels>,
    lines: BTreeSet<Vec<u8>>,
}

impl HeadVisitor for Lines {
    fn series(&mut self, labels: &Labels) -> anyhow::Result<Option<u32>> {
        self.labels.push(labels.clone());
        Ok(Some(self.labels.len() as u32 - 1))
    }
    fn sample(&mut self, id: u32, ts: i64, bits: u64) -> anyhow::Result<()> {
        let mut line = Vec::new();
        write_line(
            &self.labels[id as usize],
            f64::from_bits(bits),
            ts,
            &mut line,
        );
        line.pop();
        self.lines.insert(line);
        Ok(())
    }
}

fn opts() -> HeadOptions {
    HeadOptions {
        min_valid_time: i64::MIN,
        mint: i64::MIN,
        maxt: i64::MAX,
        skip_invalid: false,
    }
}

/// A Prometheus 2.42 scraping itself every second (job "self") and every 100 ms (job "fast", so
/// that head chunks fill and are m-mapped within seconds).
struct Server {
    child: Child,
    port: u16,
    _conf: tempfile::TempDir,
}

impl Server {
    fn start(data: &Path, flags: &[&str]) -> Server {
        let conf = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let yml = format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n\
             - job_name: self\n  static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n\
             - job_name: fast\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\n  \
             static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        );
        std::fs::write(conf.path().join("p.yml"), yml).unwrap();
        let child = Command::new(common::prometheus())
            .arg(format!(
                "--config.file={}",
                conf.path().join("p.yml").display()
            ))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-admin-api")
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus");
        let s = Server {
            child,
            port,
            _conf: conf,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while common::http_get(port, "/-/ready").is_none_or(|(st, _)| st != 200) {
            assert!(Instant::now() < deadline, "prometheus not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// A POST with an empty body: the status code.
    fn post(&self, path: &str) -> u16 {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        r.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// SIGTERM, as a service manager stops it.
    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `read_head` of `data` against `promtool tsdb dump` of a copy: the same sample set.
fn compare(data: &Path) -> HeadStats {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy");
    common::run_ok(Command::new("cp").arg("-a").arg(data).arg(&copy));
    let want = common::sample_set(&common::dump(&copy, None));
    let mut got = Lines::default();
    let stats = read_head(data, &opts(), &mut got).expect("read_head");
    let missing: Vec<_> = want.difference(&got.lines).take(5).collect();
    let extra: Vec<_> = got.lines.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "dump has {} lines, read_head {}; missing {:?}; extra {:?}",
        want.len(),
        got.lines.len(),
        missing
            .iter()
            .map(|l| String::from_utf8_lossy(l))
            .collect::<Vec<_>>(),
        extra
            .iter()
            .map(|l| String::from_utf8_lossy(l))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        stats.samples as usize,
        got.lines.len(),
        "no sample visited twice"
    );
    eprintln!("{}: {} dump lines, {stats:?}", data.display(), want.len());
    stats
}

fn has_mmapped_chunks(data: &Path) -> bool {
    std::fs::read_dir(data.join("chunks_head"))
        .map(|rd| {
            rd.flatten()
                .any(|e| e.metadata().is_ok_and(|m| m.len() > 8))
        })
        .unwrap_or(false)
}

#[test]
fn live_head_with_compressed_wal_matches_promtool_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start(&data, &[]);
    std::thread::sleep(Duration::from_secs(25));
    s.stop();
    assert!(has_mmapped_chunks(&data), "no head chunk was m-mapped");
    let stats = compare(&data);
    assert!(stats.samples > 10_000, "{stats:?}");
    assert_eq!(stats.skipped_invalid, 0);
}

#[test]
fn restarts_deletions_and_plain_wal_match_promtool_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let flags = ["--no-storage.tsdb.wal-compression"];
    let s = Server::start(&data, &flags);
    std::thread::sleep(Duration::from_secs(12));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Delete 4 s of the fast job and all of one metric: tombstone records in the WAL.
    let sel = common::url_encode("{job=\"fast\"}");
    let path = format!(
        "/api/v1/admin/tsdb/delete_series?match[]={sel}&start={}&end={}",
        now - 8,
        now - 4
    );
    assert_eq!(s.post(&path), 204);
    let sel = common::url_encode("prometheus_http_requests_total");
    assert_eq!(
        s.post(&format!("/api/v1/admin/tsdb/delete_series?match[]={sel}")),
        204
    );
    std::thread::sleep(Duration::from_secs(3));
    s.stop();
    // The restarted server replays the same WAL and appends to it.
    let s = Server::start(&data, &flags);
    std::thread::sleep(Duration::from_secs(8));
    s.stop();
    let stats = compare(&data);
    assert!(stats.samples > 5_000, "{stats:?}");
}

#[test]
fn reading_a_running_server_sees_only_complete_records() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start(&data, &[]);
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reads = 0;
    while Instant::now() < deadline {
        let mut got = Lines::default();
        // The WAL page and the chunks_head file being written are read as far as complete.
        let stats = read_head(&data, &opts(), &mut got).expect("read_head of a live head");
        assert_eq!(stats.skipped_invalid, 0);
        assert!(stats.samples >= last, "{} then {}", last, stats.samples);
        last = stats.samples;
        reads += 1;
        std::thread::sleep(Duration::from_millis(150));
    }
    s.stop();
    assert!(reads > 20 && last > 5_000, "{reads} reads, {last} samples");
    assert!(has_mmapped_chunks(&data));
}
