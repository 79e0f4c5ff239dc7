//! Real Prometheus data directories (2.42 and 3.5.3) for the data-dir reader's tests: a server with
//! 1-minute blocks driven through scrapes of an awkward exposition, remote write, reloads, restarts
//! and the admin API, and a description of what its directory holds (blocks, WAL, checkpoint,
//! chunks_head, wbl, tombstones). Scenarios built from these live in `scenarios.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prom2om::fetch::remote_read::{Label, Sample, TimeSeries};
use prost::Message;

use crate::common::{free_port, http_get, tool_of, url_encode, PromVersion};

/// The staleness marker Prometheus writes (`value.StaleNaN`).
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
/// The NaN a scrape of `NaN` stores (Go's `math.NaN()`): a real value, not a marker.
pub const REAL_NAN: u64 = 0x7ff8_0000_0000_0001;

/// Flags every fixture server gets: 1-minute blocks compacted into 3-minute ones (ranges are
/// 1m·3^k up to the maximum, so a 2m maximum would allow no compaction at all), every sample kept,
/// and the endpoints the scenarios drive.
pub const SERVER_FLAGS: &[&str] = &[
    "--storage.tsdb.min-block-duration=1m",
    "--storage.tsdb.max-block-duration=3m",
    "--storage.tsdb.retention.time=100y",
    "--web.enable-remote-write-receiver",
    "--web.enable-admin-api",
    "--web.enable-lifecycle",
];

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One scrape job of a [`config`].
pub struct Job<'a> {
    pub name: &'a str,
    /// host:port of its one target.
    pub addr: String,
    /// Lines of the static config's `labels:` map (10 spaces in), or empty.
    pub labels: &'a str,
    /// Lines of the job's own options (4 spaces in), e.g. its scrape protocols, or empty.
    pub options: &'a str,
}

/// A Prometheus configuration: scrape interval 1 s; the scrape `jobs`; the out-of-order window
/// when given.
pub fn config(jobs: &[Job], ooo_window: Option<&str>) -> String {
    let mut c = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n");
    if jobs.is_empty() {
        c.push_str("scrape_configs: []\n");
    } else {
        c.push_str("scrape_configs:\n");
        for j in jobs {
            c.push_str(&format!("  - job_name: {}\n{}", j.name, j.options));
            c.push_str(&format!(
                "    static_configs:\n      - targets: ['{}']\n",
                j.addr
            ));
            if !j.labels.is_empty() {
                c.push_str(&format!("        labels:\n{}", j.labels));
            }
        }
    }
    if let Some(w) = ooo_window {
        c.push_str(&format!(
            "storage:\n  tsdb:\n    out_of_order_time_window: {w}\n"
        ));
    }
    c
}

/// A Prometheus server on a data dir the caller owns, stopped gracefully (SIGTERM) so that its
/// directory is left as a real shutdown leaves it; killed if still running on drop.
pub struct Server {
    child: Option<Child>,
    pub version: PromVersion,
    pub port: u16,
    pub data: PathBuf,
    config_file: PathBuf,
    flags: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts that `version` on `data` with `config` and the extra `flags`; returns once it is
    /// ready.
    pub fn start(version: PromVersion, data: &Path, config: &str, flags: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let mut s = Server {
            child: None,
            version,
            port: free_port(),
            data: data.to_path_buf(),
            config_file,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            _dir: dir,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self._dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(tool_of(self.version, "prometheus"))
            .arg(format!("--config.file={}", self.config_file.display()))
            .arg(format!("--storage.tsdb.path={}", self.data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .args(SERVER_FLAGS)
            .args(&self.flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get(self.port, "/-/ready").is_some_and(|(status, _)| status == 200) {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("prometheus exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "prometheus not ready on port {}:\n{}",
            self.port,
            self.log()
        );
    }

    /// The server's log (its stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGTERM and wait for a clean exit (the WAL and head chunks are flushed, nothing compacted).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "prometheus stopped with {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("prometheus did not stop within a minute");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops and starts again on the same data dir and port, with `flags` replacing the extra
    /// flags: the next process replays the WAL and the m-mapped head chunks.
    pub fn restart(&mut self, flags: &[&str]) {
        self.stop();
        self.flags = flags.iter().map(|f| f.to_string()).collect();
        self.spawn();
    }

    /// Restarts with the same flags, early in a minute (in its first 6 s): the TSDB's one-minute
    /// timer, which runs from the start, then fires early in each minute (see
    /// `scenarios::wait_mmapped_chunk`).
    pub fn restart_early_in_a_minute(&mut self) {
        self.stop();
        while now_ms().rem_euclid(60_000) >= 6_000 {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.spawn();
    }

    /// Writes a new configuration and has the server load it.
    pub fn reload(&self, config: &str) {
        std::fs::write(&self.config_file, config).unwrap();
        self.post("/-/reload", "text/plain", &[], Vec::new());
    }

    fn post(&self, path: &str, ctype: &str, headers: &[(&str, &str)], body: Vec<u8>) {
        let mut req = ureq::post(format!("{}{path}", self.url())).header("Content-Type", ctype);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Err(e) = req.send(&body[..]) {
            panic!("POST {path}: {e}\n{}", self.log());
        }
    }

    /// Pushes `series` with remote write 1.0 (snappy block-compressed protobuf).
    pub fn remote_write(&self, series: Vec<TimeSeries>) {
        self.remote_write_body(
            snap::raw::Encoder::new()
                .compress_vec(&WriteRequest { timeseries: series }.encode_to_vec())
                .unwrap(),
        );
    }

    /// Posts a remote write 1.0 request body (a snappy-compressed `prompb.WriteRequest`).
    pub fn remote_write_body(&self, body: Vec<u8>) {
        self.post(
            "/api/v1/write",
            "application/x-protobuf",
            &[
                ("Content-Encoding", "snappy"),
                ("X-Prometheus-Remote-Write-Version", "0.1.0"),
            ],
            body,
        );
    }

    /// Deletes the samples of the series matching `selector` within [start, end] (ms; the whole
    /// series without them) through the admin API: tombstones in blocks and in the head.
    pub fn delete_series(&self, selector: &str, range: Option<(i64, i64)>) {
        let mut q = format!("match[]={}", url_encode(selector));
        if let Some((s, e)) = range {
            q.push_str(&format!("&start={}&end={}", secs(s), secs(e)));
        }
        self.post(
            &format!("/api/v1/admin/tsdb/delete_series?{q}"),
            "application/x-www-form-urlencoded",
            &[],
            Vec::new(),
        );
    }

    /// The value of one of the server's own metrics (its first series), from /metrics.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = http_get(self.port, "/metrics")?;
        body.lines()
            .find(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until the head's minimum time reaches `t` (ms): the head was compacted up to it.
    pub fn wait_head_min(&self, t: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .metric("prometheus_tsdb_head_min_time")
                .is_some_and(|m| m as i64 >= t)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the head was not compacted up to {t} within {timeout:?} (head min time {:?})\n{}",
            self.metric("prometheus_tsdb_head_min_time"),
            self.log()
        );
    }

    /// Polls `done` until it holds; fails the test after `timeout`.
    pub fn wait_until(&self, what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Remote write 1.0's request: prompb.WriteRequest with its timeseries only.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// A remote-write series; `labels` in any order (sorted here, as remote write requires).
pub fn series(labels: &[(&str, &str)], samples: &[(i64, u64)]) -> TimeSeries {
    let mut labels: Vec<Label> = labels
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect();
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels,
        samples: samples
            .iter()
            .map(|&(t, bits)| Sample {
                value: f64::from_bits(bits),
                timestamp: t,
            })
            .collect(),
        histograms: Vec::new(),
    }
}

/// What the scrape target serves; the scenarios change it while the server scrapes.
#[derive(Clone, Debug)]
pub struct TargetState {
    /// False: every scrape fails (503), and the server writes staleness markers.
    pub up: bool,
    /// Even: `awk_flappy` is exposed; odd: it is gone (a per-series staleness marker).
    pub phase: u32,
    /// Scrapes served so far.
    pub scrapes: u64,
}

/// A scrape target served by a thread of the test: awkward label values (quotes, backslashes,
/// newlines, UTF-8, a 2000-byte value), real NaN and infinities, many series, a histogram.
pub struct Target {
    pub port: u16,
    pub state: Arc<Mutex<TargetState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Target {
    pub fn start() -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(TargetState {
            up: true,
            phase: 0,
            scrapes: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let _ = serve(conn, &st);
                }
            }
        });
        Target {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn set(&self, f: impl FnOnce(&mut TargetState)) {
        f(&mut self.state.lock().unwrap());
    }

    pub fn scrapes(&self) -> u64 {
        self.state.lock().unwrap().scrapes
    }

    /// Waits for `n` more scrapes to be served.
    pub fn wait_scrapes(&self, n: u64) {
        let target = self.scrapes() + n;
        let deadline = Instant::now() + Duration::from_secs(30 + 2 * n);
        while self.scrapes() < target {
            assert!(Instant::now() < deadline, "the target is not being scraped");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<TargetState>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let (up, body) = {
        let mut s = state.lock().unwrap();
        if s.up {
            s.scrapes += 1;
        }
        (s.up, exposition(s.phase, s.scrapes))
    };
    if up {
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
    } else {
        write!(
            conn,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?;
    }
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    Ok(())
}

/// Series of `awk_many`: enough that a few deleted ones stay under the 5% of a block's series
/// above which compaction rewrites the block (and its tombstones vanish).
pub const MANY: usize = 300;

/// The text exposition (format 0.0.4) for scrape number `n` in `phase`.
pub fn exposition(phase: u32, n: u64) -> String {
    let f = n as f64;
    let long: String = "x\"\\é".repeat(10) + &"y".repeat(1950);
    let mut s = String::with_capacity(64 << 10);
    s.push_str("# HELP awk_gauge Awkward label values.\n# TYPE awk_gauge gauge\n");
    s.push_str(&format!(
        "awk_gauge{{quote=\"say \\\"hi\\\"\",backslash=\"C:\\\\dir\\\\\",newline=\"one\\ntwo\",utf8=\"zürich 日本 🚀\",empty=\"\"}} {}\n",
        f * 0.25
    ));
    let esc = long.replace('\\', "\\\\").replace('"', "\\\"");
    s.push_str(&format!("awk_gauge{{long=\"{esc}\"}} {}\n", f * 0.5 + 0.1));
    s.push_str(&format!(
        "awk_gauge{{eq=\"a=b,c\",brace=\"}}{{\",tab=\"\t\"}} {}\n",
        -f
    ));
    s.push_str("# TYPE awk_nan gauge\nawk_nan{kind=\"always\"} NaN\n");
    let flip = if n % 3 == 0 {
        "NaN".into()
    } else {
        f.to_string()
    };
    s.push_str(&format!("awk_nan{{kind=\"flip\"}} {flip}\n"));
    s.push_str("# TYPE awk_special gauge\n");
    for (v, x) in [
        ("+inf", "+Inf"),
        ("-inf", "-Inf"),
        ("negzero", "-0"),
        ("max", "1.7976931348623157e+308"),
        ("min", "5e-324"),
        ("tiny", "1.5e-300"),
    ] {
        s.push_str(&format!("awk_special{{v=\"{v}\"}} {x}\n"));
    }
    s.push_str(&format!(
        "# TYPE awk:rule:rate5m gauge\nawk:rule:rate5m{{job_x=\"r\"}} {}\n",
        f / 7.0
    ));
    s.push_str("# TYPE awk_many gauge\n");
    for i in 0..MANY {
        s.push_str(&format!(
            "awk_many{{i=\"{i:03}\",grp=\"g{}\"}} {}\n",
            i % 7,
            (i as u64 * 1000 + n) as f64
        ));
    }
    if phase % 2 == 0 {
        s.push_str(&format!(
            "# TYPE awk_flappy gauge\nawk_flappy{{which=\"a\"}} {f}\nawk_flappy{{which=\"b\"}} NaN\n"
        ));
    }
    s.push_str(&format!(
        "# TYPE awk_deleted gauge\nawk_deleted{{k=\"1\"}} {f}\nawk_deleted{{k=\"2\"}} {}\n",
        f * 2.0
    ));
    s.push_str(&format!(
        "# TYPE awk_requests_total counter\nawk_requests_total{{code=\"200\",method=\"GET\"}} {}\nawk_requests_total{{code=\"500\",method=\"POST\"}} {}\n",
        n * 3,
        n / 10
    ));
    s.push_str("# TYPE awk_latency_seconds histogram\n");
    let mut cum = 0;
    for (i, le) in ["0.005", "0.1", "1", "+Inf"].iter().enumerate() {
        cum += n * (i as u64 + 1);
        s.push_str(&format!(
            "awk_latency_seconds_bucket{{le=\"{le}\"}} {cum}\n"
        ));
    }
    s.push_str(&format!(
        "awk_latency_seconds_sum {}\nawk_latency_seconds_count {cum}\n",
        f * 1.125
    ));
    // Histograms a Prometheus 3 stores as NHCB when told to: one resets every 25 scrapes, one
    // vanishes in odd phases (a histogram staleness marker); both have an empty bucket.
    s.push_str("# TYPE awk_size_bytes histogram\n");
    let reset = n % 25;
    let mut size = |route: &str, cums: [u64; 4], sum: f64| {
        for (le, c) in ["100", "1000", "10000", "+Inf"].iter().zip(cums) {
            s.push_str(&format!(
                "awk_size_bytes_bucket{{route=\"{route}\",le=\"{le}\"}} {c}\n"
            ));
        }
        s.push_str(&format!(
            "awk_size_bytes_sum{{route=\"{route}\"}} {sum}\nawk_size_bytes_count{{route=\"{route}\"}} {}\n",
            cums[3]
        ));
    };
    size(
        "/a",
        [reset, reset, 3 * reset, 3 * reset + 1],
        reset as f64 * 150.5,
    );
    if phase % 2 == 0 {
        size("/b", [n, 2 * n, 2 * n, 4 * n], f * 99.25);
    }
    s
}

/// What a data dir holds, from its files: for the README and for checking that a scenario
/// produced what it is for.
#[derive(Debug, Default)]
pub struct Layout {
    /// (ULID, minTime, maxTime, compaction level, series, samples, tombstones file bytes,
    /// out-of-order block).
    pub blocks: Vec<Block>,
    pub wal_segments: Vec<(String, u64)>,
    pub checkpoints: Vec<(String, u64)>,
    pub chunks_head: Vec<(String, u64)>,
    pub wbl_segments: Vec<(String, u64)>,
}

#[derive(Debug)]
pub struct Block {
    pub ulid: String,
    pub min_time: i64,
    pub max_time: i64,
    pub level: u64,
    pub series: u64,
    pub samples: u64,
    pub tombstones_bytes: u64,
    pub out_of_order: bool,
}

/// The tombstones file of a block with no tombstone: magic, version and CRC only.
const EMPTY_TOMBSTONES: u64 = 9;

impl Layout {
    pub fn scan(data: &Path) -> Layout {
        let mut l = Layout::default();
        for e in sorted_dir(data) {
            let p = data.join(&e);
            let meta = p.join("meta.json");
            if !meta.is_file() {
                continue;
            }
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
            let hints = m["compaction"]["hints"].as_array().cloned();
            l.blocks.push(Block {
                ulid: e.clone(),
                min_time: m["minTime"].as_i64().unwrap(),
                max_time: m["maxTime"].as_i64().unwrap(),
                level: m["compaction"]["level"].as_u64().unwrap(),
                series: m["stats"]["numSeries"].as_u64().unwrap_or(0),
                samples: m["stats"]["numSamples"].as_u64().unwrap_or(0),
                tombstones_bytes: std::fs::metadata(p.join("tombstones")).map_or(0, |m| m.len()),
                out_of_order: hints
                    .is_some_and(|h| h.iter().any(|x| x.as_str() == Some("from-out-of-order"))),
            });
        }
        let files = |dir: &Path| -> Vec<(String, u64)> {
            sorted_dir(dir)
                .into_iter()
                .map(|n| {
                    let len = std::fs::metadata(dir.join(&n)).map_or(0, |m| m.len());
                    (n, len)
                })
                .collect()
        };
        for (name, len) in files(&data.join("wal")) {
            if name.starts_with("checkpoint.") {
                let size = files(&data.join("wal").join(&name))
                    .iter()
                    .map(|f| f.1)
                    .sum();
                l.checkpoints.push((name, size));
            } else {
                l.wal_segments.push((name, len));
            }
        }
        l.chunks_head = files(&data.join("chunks_head"));
        l.wbl_segments = files(&data.join("wbl"));
        l
    }

    pub fn blocks_with_tombstones(&self) -> usize {
        self.blocks
            .iter()
            .filter(|b| b.tombstones_bytes > EMPTY_TOMBSTONES)
            .count()
    }

    /// A few lines for the README and failure messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for b in &self.blocks {
            s.push_str(&format!(
                "- block {} [{}, {}) level {}, {} series, {} samples{}{}\n",
                b.ulid,
                b.min_time,
                b.max_time,
                b.level,
                b.series,
                b.samples,
                if b.tombstones_bytes > EMPTY_TOMBSTONES {
                    format!(", tombstones {} bytes", b.tombstones_bytes)
                } else {
                    String::new()
                },
                if b.out_of_order {
                    ", from out-of-order"
                } else {
                    ""
                },
            ));
        }
        let list = |v: &[(String, u64)]| {
            v.iter()
                .map(|(n, l)| format!("{n} ({l} B)"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s.push_str(&format!("- wal segments: {}\n", list(&self.wal_segments)));
        s.push_str(&format!("- wal checkpoints: {}\n", list(&self.checkpoints)));
        s.push_str(&format!("- chunks_head: {}\n", list(&self.chunks_head)));
        s.push_str(&format!("- wbl segments: {}\n", list(&self.wbl_segments)));
        s
    }
}

fn sorted_dir(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Copies a directory tree (a stopped server's data dir) file by file.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Every file under `dir` with its size and mtime: a before/after listing that shows a reader
/// wrote nothing.
pub fn listing(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            v.push((e.path(), m.len(), m.modified().unwrap()));
        }
    }
    v.sort();
    v
}
