//! Remote-write test support, on top of `common` and `fetch_support`: a real VictoriaMetrics on
//! 127.0.0.1, its `/api/v1/export` parsed, shard dirs made by `prom2om convert`, a Prometheus 2.42
//! receiver, and its data dir dumped and parsed.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prom2om::labels::Labels;

use crate::common::{free_port, http_get, prom2om, run, tool, Prom};
use crate::fetch_support::Data;

/// A real VictoriaMetrics (Debian's `victoria-metrics`) on a free port with a temp storage dir;
/// killed on drop.
pub struct Vm {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Vm {
    pub fn start() -> Vm {
        Self::start_with(&[])
    }

    /// Starts with extra command-line flags.
    pub fn start_with(flags: &[&str]) -> Vm {
        Self::start_bin(&tool("victoria-metrics"), flags)
    }

    /// Starts the VictoriaMetrics binary `bin` (Debian bookworm's or sid's) with extra flags.
    pub fn start_bin(bin: &Path, flags: &[&str]) -> Vm {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("vm").display()
            ))
            .arg("-retentionPeriod=100y")
            .arg("-search.disableCache")
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting victoria-metrics");
        let vm = Vm {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get(port, "/health").is_some_and(|(s, _)| s == 200) {
                return vm;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("victoria-metrics did not start on port {port}");
    }

    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// Every series matching `selector`, all time, after making pending data searchable; waits
    /// (up to 30 s) until `want_samples` samples are there, as new data takes a moment to show.
    pub fn export(&self, selector: &str, want_samples: usize) -> Data {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let _ = http_get(self.port, "/internal/force_flush");
            let path = format!(
                "/api/v1/export?start=0&match[]={}",
                crate::common::url_encode(selector)
            );
            let (status, body) = http_get(self.port, &path).expect("VictoriaMetrics answers");
            assert_eq!(status, 200, "export: {body}");
            let d = parse_export(&body);
            if crate::fetch_support::samples(&d) >= want_samples || Instant::now() > deadline {
                return d;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Vm {
    /// [`export`](Self::export) once two reads a second apart agree, for data of unknown size.
    pub fn export_settled(&self, selector: &str) -> Data {
        let mut last = self.export(selector, 1);
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = self.export(selector, 1);
            if crate::fetch_support::samples(&now) == crate::fetch_support::samples(&last) {
                return now;
            }
            last = now;
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/api/v1/export` JSON lines: `{"metric":{..},"values":[..],"timestamps":[..]}`, where values
/// may be the bare tokens `+Inf`, `-Inf` (not JSON: quoted here before parsing).
pub fn parse_export(body: &str) -> Data {
    let mut d = Data::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let fixed = line
            .replace("[+Inf", "[\"+Inf\"")
            .replace(",+Inf", ",\"+Inf\"")
            .replace("[-Inf", "[\"-Inf\"")
            .replace(",-Inf", ",\"-Inf\"")
            .replace("[NaN", "[\"NaN\"")
            .replace(",NaN", ",\"NaN\"");
        let v: serde_json::Value =
            serde_json::from_str(&fixed).unwrap_or_else(|e| panic!("export line {line:?}: {e}"));
        let labels = Labels::from_pairs(
            v["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
        );
        let ts = v["timestamps"].as_array().unwrap();
        let vals = v["values"].as_array().unwrap();
        let e = d.entry(labels).or_default();
        for (t, x) in ts.iter().zip(vals) {
            let x = match x {
                serde_json::Value::String(s) => crate::fetch_support::parse_value(s),
                n => n.as_f64().unwrap(),
            };
            let prev = e.insert(t.as_i64().unwrap(), x.to_bits());
            assert!(prev.is_none(), "a duplicate sample in the export: {line}");
        }
    }
    d
}

/// Parses a `promtool tsdb dump` with prom2om's own parser (Go-quoted label values).
pub fn parse_dump(text: &[u8]) -> Data {
    let mut d = Data::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let l = prom2om::format::dump::parse_line(line).unwrap();
        let labels = prom2om::format::dump::decode_labels(l.labels).unwrap();
        let prom2om::format::dump::Value::Float(v) = l.value else {
            panic!("histogram in a test dump")
        };
        d.entry(labels).or_default().insert(l.ts, v.to_bits());
    }
    d
}

/// `promtool tsdb dump` of a copy of `data`, a stopped server's data dir (a running one may be
/// compacting: 2.42's dump reads blocks and the WAL, not the out-of-order head).
pub fn dump_copy(data: &Path) -> Data {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy");
    let st = Command::new("cp")
        .arg("-a")
        .arg(data)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::create_dir_all(copy.join("wal")).unwrap();
    parse_dump(&crate::common::dump(&copy, None))
}

/// `prom2om convert DUMP -o DIR` (gzip shards, 2h windows); returns DIR.
pub fn convert(dump_file: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("shards");
    let mut c = prom2om();
    c.arg("convert").arg(dump_file).arg("-o").arg(&out);
    let (code, o, e) = run(c);
    assert_eq!(code, 0, "convert: {o}\n{e}");
    out
}

/// Runs `prom2om import DIR --remote-write URL ARGS...`: (exit code, stdout, stderr).
pub fn push(dir: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let mut c = prom2om();
    c.arg("import")
        .arg(dir)
        .arg("--remote-write")
        .arg(url)
        .args(args);
    run(c)
}

/// A Prometheus 2.42 remote-write receiver on an empty TSDB in `data`, taking samples up to
/// ten years behind its newest one.
pub fn prom_receiver(data: &Path) -> Prom {
    let config = "global:\n  scrape_interval: 15s\nscrape_configs: []\nstorage:\n  tsdb:\n    \
                  out_of_order_time_window: 3650d\n";
    Prom::start_config(data, config, &["--web.enable-remote-write-receiver"])
}

/// The data without NaN samples (VictoriaMetrics keeps none).
pub fn without_nan(d: &Data) -> Data {
    d.iter()
        .map(|(l, s)| {
            let s: BTreeMap<i64, u64> = s
                .iter()
                .filter(|(_, v)| !f64::from_bits(**v).is_nan())
                .map(|(t, v)| (*t, *v))
                .collect();
            (l.clone(), s)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

/// What the shards of `dir` hold, read with prom2om's own OpenMetrics reader: what `import`
/// is handed (`convert` drops the NaN it takes for staleness markers).
pub fn shard_data(dir: &Path) -> Data {
    use std::io::Read;
    let mut d = Data::new();
    for f in crate::common::shard_files(dir) {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&f).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        prom2om::format::openmetrics::read(&text, |s| {
            d.entry(s.labels.clone())
                .or_default()
                .insert(s.ts_ms, s.value.to_bits());
            Ok(())
        })
        .unwrap();
    }
    d
}

/// Equal as samples: same series and timestamps, values bit-equal or both NaN.
pub fn same(a: &Data, b: &Data) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((la, sa), (lb, sb))| {
            la == lb
                && sa.len() == sb.len()
                && sa.iter().zip(sb).all(|((ta, va), (tb, vb))| {
                    ta == tb
                        && (va == vb
                            || (f64::from_bits(*va).is_nan() && f64::from_bits(*vb).is_nan()))
                })
        })
}

/// The dump of a receiver's data dir once it holds `want` (up to 90 s), else the last one seen:
/// 2.42's `promtool tsdb dump` reads blocks and the WAL but not the out-of-order head, which the
/// server writes into blocks at its next head compaction (started by the push itself).
pub fn settled_dump(data: &Path, want: &Data) -> Data {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("copy");
        // The server may remove a file while it is copied: then just try again.
        let copied = Command::new("cp")
            .arg("-a")
            .arg(data)
            .arg(&copy)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        if copied {
            std::fs::create_dir_all(copy.join("wal")).unwrap();
            let out = Command::new(crate::common::promtool())
                .args(["tsdb", "dump"])
                .arg(&copy)
                .stderr(Stdio::null())
                .output()
                .unwrap();
            if out.status.success() {
                let got = parse_dump(&out.stdout);
                if same(&got, want) || Instant::now() > deadline {
                    return got;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no complete copy of {}",
            data.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What a running receiver answers over remote read (`prom2om fetch --method remote-read`) for
/// the time span of `want`, asked again until it equals `want` or 90 s have passed: samples the
/// receiver took last may take a moment to be queryable. Its own answer, not a dump of a copy of
/// its directory, which 2.42's read-only head replay sometimes gave short with out-of-order data.
pub fn settled_remote_read(url: &str, want: &Data) -> Data {
    let ts = want.values().flat_map(|s| s.keys().copied());
    let (lo, hi) = ts.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    let secs = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("fetched");
        let status = Command::new(env!("CARGO_BIN_EXE_prom2om"))
            .args(["fetch", "-q", "--url", url, "--method", "remote-read"])
            .args(["-m", r#"{__name__=~".+"}"#, "--allow-empty"])
            .args(["--start", &secs(lo), "--end", &secs(hi)])
            .arg("-o")
            .arg(&out)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "fetch from the receiver failed");
        let got = shard_data(&out);
        if same(&got, want) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
