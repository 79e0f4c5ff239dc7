//! Test support shared by every integration test and the fetch bench: the real promtool and
//! Prometheus server (found on PATH, never mocked; missing ones fail the test), free ports, TSDBs
//! backfilled from OpenMetrics in temp dirs, dumps, and small HTTP and command helpers.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The real `name` (`promtool` or `prometheus`) on PATH. Fails the test (never skips) when it is
/// missing: Debian's `prometheus` package has both, and `.ci/run` installs it.
pub fn tool(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} not found on PATH: these tests need the real one and fail without it; \
                 install Debian's `prometheus` package (.ci/run does)"
            )
        })
}

/// Which real Prometheus a test runs against: both are customers' versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromVersion {
    /// Debian bookworm's 2.42, on PATH (Debian's `prometheus` package).
    V2_42,
    /// 3.5.3 (the long-term-support line) from Debian's `sid` suite, unpacked by `.ci/sid-tools`.
    V3_5,
}

impl PromVersion {
    /// Both, oldest first.
    pub const ALL: [PromVersion; 2] = [PromVersion::V2_42, PromVersion::V3_5];

    /// Its version number, for names and messages.
    pub fn number(self) -> &'static str {
        match self {
            PromVersion::V2_42 => "2.42",
            PromVersion::V3_5 => "3.5.3",
        }
    }
}

/// `name` (`prometheus`, `promtool`, `victoria-metrics`, `vmctl`) as Debian's `sid` suite ships
/// it, unpacked by `.ci/sid-tools` into `target/sid-tools` (or `$PROM2OM_SID_TOOLS`). Fails the
/// test (never skips) when it is missing.
pub fn sid_tool(name: &str) -> PathBuf {
    let root = std::env::var_os("PROM2OM_SID_TOOLS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sid-tools"),
        PathBuf::from,
    );
    let path = root.join("usr/bin").join(name);
    assert!(
        path.is_file(),
        "{} not found: these tests need Debian sid's {name} and fail without it; run \
         `bash .ci/sid-tools` (.ci/run does)",
        path.display()
    );
    path
}

/// The real `name` of that Prometheus version: [`tool`] for 2.42, [`sid_tool`] for 3.5.
pub fn tool_of(version: PromVersion, name: &str) -> PathBuf {
    match version {
        PromVersion::V2_42 => tool(name),
        PromVersion::V3_5 => sid_tool(name),
    }
}

/// The real promtool; see [`tool`].
pub fn promtool() -> PathBuf {
    tool("promtool")
}

/// The real Prometheus server binary; see [`tool`].
pub fn prometheus() -> PathBuf {
    tool("prometheus")
}

/// Runs `cmd`, requires success, and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `cmd` to its end: (exit code, stdout, stderr).
pub fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().expect("exited"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Backfills one OpenMetrics file into `data` with the real promtool, and leaves `data` ready
/// for `tsdb dump` and a server (2.42 needs a wal dir).
pub fn backfill(om: &Path, data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    run_ok(
        Command::new(promtool())
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(om)
            .arg(data),
    );
    std::fs::create_dir_all(data.join("wal")).unwrap();
}

/// `promtool tsdb dump` of a data dir (2.42 needs a wal dir to exist), optionally `--match`.
pub fn dump(data: &Path, matcher: Option<&str>) -> Vec<u8> {
    dump_with(PromVersion::V2_42, data, matcher)
}

/// [`dump`] with that version's promtool (3.5.3's prints histograms as `{count:N, sum:S, ...}`,
/// lossily, and leaves out the first sample of each histogram series).
pub fn dump_with(version: PromVersion, data: &Path, matcher: Option<&str>) -> Vec<u8> {
    std::fs::create_dir_all(data.join("wal")).unwrap();
    let mut cmd = Command::new(tool_of(version, "promtool"));
    cmd.args(["tsdb", "dump"]);
    if let Some(m) = matcher {
        cmd.arg(format!("--match={m}"));
    }
    run_ok(cmd.arg(data))
}

/// `promtool tsdb dump` of a data dir as a set of text lines.
pub fn dump_lines(data: &Path) -> BTreeSet<String> {
    String::from_utf8(dump(data, None))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A dump's lines as a set: the sample set, independent of order.
pub fn sample_set(dump: &[u8]) -> BTreeSet<Vec<u8>> {
    dump.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect()
}

/// The label part of each dump line: the series set.
pub fn series_set(dump: &[u8]) -> BTreeSet<Vec<u8>> {
    sample_set(dump)
        .into_iter()
        .map(|l| {
            let mut parts = l.rsplitn(3, |&b| b == b' ');
            let (_ts, _v) = (parts.next(), parts.next());
            parts.next().unwrap().to_vec()
        })
        .collect()
}

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// `testdata/datadir/metrics2.tar.gz` unpacked into `into` (with the system's tar, as the README's
/// journey does): the small data dir a Prometheus 3.5.3 wrote. Returns `into/metrics2`.
pub fn shipped_datadir(into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    run_ok(
        Command::new("tar")
            .arg("xzf")
            .arg(testdata("datadir/metrics2.tar.gz"))
            .arg("-C")
            .arg(into),
    );
    into.join("metrics2")
}

/// A TSDB built by promtool from `testdata/awkward.om`, and its full dump.
pub fn awkward_tsdb(dir: &Path) -> (PathBuf, Vec<u8>) {
    let data = dir.join("source-tsdb");
    backfill(&testdata("awkward.om"), &data);
    let d = dump(&data, None);
    assert!(d.len() > 1000, "the awkward TSDB dumped almost nothing");
    (data, d)
}

/// The prom2om binary under test.
/// Writes the synthetic corpus of `spec` straight to `path`: a test process that held it would
/// carry its peak RSS into the children it measures.
pub fn write_corpus(path: &Path, spec: &prom2om::corpus::CorpusSpec) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    prom2om::corpus::generate(spec, &mut w).unwrap();
    w.flush().unwrap();
}

/// Sets a resource limit in the child before it runs. A file-size limit makes writes past it fail
/// with EFBIG: the signal that would kill the child is ignored.
pub fn set_rlimit(cmd: &mut Command, resource: libc::__rlimit_resource_t, value: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls (signal, setrlimit) are made.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            if libc::setrlimit(resource, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub fn prom2om() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("prom2om"))
}

/// `prom2om convert testdata/sample.dump -o out`: an earlier export for the `--force` tests.
pub fn export_sample(out: &Path) {
    run_ok(
        prom2om()
            .args(["convert", "-q", "-o"])
            .arg(out)
            .arg(testdata("sample.dump")),
    );
}

/// Every file in `dir` with its bytes, by name (not its subdirectories, such as fetch's
/// checkpoint): to check that a run left a directory as it was.
pub fn dir_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// Shard files of an output directory, sorted by name (not their stale-markers sidecars).
pub fn shard_files(dir: &Path) -> Vec<PathBuf> {
    om_files(dir, false)
}

/// The stale-markers sidecars of an output directory, sorted by name.
pub fn sidecar_files(dir: &Path) -> Vec<PathBuf> {
    om_files(dir, true)
}

fn om_files(dir: &Path, sidecars: bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            let sidecar = n.ends_with(".stale.om.gz") || n.ends_with(".stale.om");
            (n.ends_with(".om.gz") || n.ends_with(".om")) && sidecar == sidecars
        })
        .collect();
    v.sort();
    v
}

/// Decompresses a shard to a plain `.om` file next to `tmp` (promtool cannot read gzip).
pub fn gunzip_to(shard: &Path, tmp: &Path) -> PathBuf {
    let bytes = std::fs::read(shard).unwrap();
    let mut text = Vec::new();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut text)
            .unwrap();
    } else {
        text = bytes;
    }
    let out = tmp.join(format!(
        "{}.plain.om",
        shard.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&out, text).unwrap();
    out
}

/// Gzip of `data`, as the shards are written.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Backfills every shard of `dir` into one new TSDB under `work`; returns its data dir.
pub fn restore_shards(dir: &Path, work: &Path) -> PathBuf {
    let data = work.join("restored");
    let shards = shard_files(dir);
    assert!(!shards.is_empty(), "no shards in {}", dir.display());
    for s in shards {
        backfill(&gunzip_to(&s, work), &data);
    }
    data
}

/// Backfills every shard of `dir` into one new TSDB and dumps it.
pub fn backfill_shards(dir: &Path, work: &Path) -> Vec<u8> {
    dump(&restore_shards(dir, work), None)
}

/// A port nothing listens on at the moment, on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encodes a URL query parameter.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (so never a chunked body): (status, body), or None when
/// nothing answers.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n")?.1.to_string()))
}

/// The configuration a [`Prom`] gets unless told otherwise: no scrapes.
pub const PROM_CONFIG: &str = "global:\n  scrape_interval: 15s\nscrape_configs: []\n";

/// A real Prometheus server on a free port of 127.0.0.1, its configuration in a temp dir, keeping
/// every sample (100y retention); killed on drop.
/// A sample as Prometheus serves it: sorted label pairs, timestamp (ms), value.
#[allow(dead_code)]
pub type ServedSample = (Vec<(String, String)>, i64, f64);

pub struct Prom {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Prom {
    /// Serves the TSDB in `data`; returns once it is ready.
    pub fn start(data: &Path) -> Prom {
        Self::start_with(data, &[])
    }

    /// Starts with extra command-line flags.
    pub fn start_with(data: &Path, flags: &[&str]) -> Prom {
        Self::start_config(data, PROM_CONFIG, flags)
    }

    /// Starts with this configuration file and extra command-line flags.
    pub fn start_config(data: &Path, config: &str, flags: &[&str]) -> Prom {
        Self::spawn(Some(data), config, flags).ready()
    }

    /// A server on an empty TSDB of its own, in its temp dir.
    pub fn start_empty() -> Prom {
        Self::spawn(None, PROM_CONFIG, &[]).ready()
    }

    /// Starts the server and returns at once, not waiting for it to be ready: for a server the
    /// plain HTTP probe cannot reach (TLS). Without `data`, an empty TSDB in the temp dir.
    pub fn spawn(data: Option<&Path>, config: &str, flags: &[&str]) -> Prom {
        Self::spawn_version(PromVersion::V2_42, data, config, flags)
    }

    /// Serves the TSDB in `data` with that version of Prometheus; returns once it is ready.
    pub fn start_version(version: PromVersion, data: &Path, flags: &[&str]) -> Prom {
        Self::spawn_version(version, Some(data), PROM_CONFIG, flags).ready()
    }

    /// Serves the TSDB in `data` with that version, this configuration and extra flags; returns
    /// once it is ready.
    pub fn start_version_config(
        version: PromVersion,
        data: &Path,
        config: &str,
        flags: &[&str],
    ) -> Prom {
        Self::spawn_version(version, Some(data), config, flags).ready()
    }

    /// [`Prom::spawn`] with that version of Prometheus.
    pub fn spawn_version(
        version: PromVersion,
        data: Option<&Path>,
        config: &str,
        flags: &[&str],
    ) -> Prom {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let data = data.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
        let port = free_port();
        // Every sample kept, unless the test sets a retention of its own.
        let retention = flags
            .iter()
            .all(|f| !f.starts_with("--storage.tsdb.retention.time="))
            .then_some("--storage.tsdb.retention.time=100y");
        let child = Command::new(tool_of(version, "prometheus"))
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .args(retention)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting prometheus");
        Prom {
            child,
            port,
            _dir: dir,
        }
    }

    /// Waits (up to a minute) until `/-/ready` answers 200.
    fn ready(self) -> Prom {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get(self.port, "/-/ready").is_some_and(|(status, _)| status == 200) {
                return self;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus did not become ready on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// [`http_get`] on this server: (status, body); fails the test when nothing answers.
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).unwrap_or_else(|| panic!("GET {path}: no answer"))
    }

    /// The samples an instant query for a range selector returns at `time_s`: sorted label
    /// pairs, timestamp in ms, value (`+Inf`, `-Inf` and `NaN` as Prometheus spells them).
    #[allow(dead_code)]
    pub fn matrix(&self, selector: &str, time_s: i64) -> Vec<ServedSample> {
        let path = format!("/api/v1/query?query={}&time={time_s}", url_encode(selector));
        let (status, body) = self.get(&path);
        assert_eq!(status, 200, "{path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["data"]["resultType"], "matrix", "{body}");
        let mut out = Vec::new();
        for series in v["data"]["result"].as_array().unwrap() {
            let mut labels: Vec<(String, String)> = series["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            labels.sort();
            for p in series["values"].as_array().unwrap() {
                let ms = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                let value: f64 = p[1].as_str().unwrap().parse().unwrap();
                out.push((labels.clone(), ms, value));
            }
        }
        out
    }
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real shard sink writing into `dir` as `convert -o DIR --stale carry` does, with windows of
/// `window_ms` and `shards` per window (or as many as the text asks for).
pub fn carry_sink(
    dir: &Path,
    window_ms: i64,
    shards: Option<u32>,
) -> prom2om::pipeline::sink::Sink {
    use prom2om::pipeline::sink::{Output, Sink, SinkOptions, StaleMode};
    Sink::create(SinkOptions {
        output: Output::Dir {
            path: dir.to_path_buf(),
            compress: true,
        },
        block_duration_ms: window_ms,
        shards,
        target_shard_bytes: 256 << 20,
        memory_limit: 1 << 30,
        temp_dir: None,
        stale: StaleMode::Carry,
        compression_level: 6,
        force: false,
        progress: false,
        stream: true,
    })
    .unwrap()
}

/// Ends a [`carry_sink`] run: the manifest records it as `convert --stale carry` of one input.
pub fn finish_carry(sink: prom2om::pipeline::sink::Sink) {
    let mut info = prom2om::pipeline::sink::RunInfo {
        source: "convert".into(),
        inputs: vec!["test".into()],
        ..Default::default()
    };
    info.filters.stale = "carry".into();
    sink.finish(info).unwrap();
}
