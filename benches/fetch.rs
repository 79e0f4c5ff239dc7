//! Samples per second of `prom2om fetch` against a local Prometheus holding a few thousand series
//! over 24 h, side by side with a query_range export on a 4-thread pool (what the user's Python
//! script did, here in Rust with the same JSON parsing as `fetch --method range`).
//!
//! Run: cargo bench --bench fetch   (BENCH_SERIES, BENCH_INTERVAL_S change the data set)

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/fetch_support/mod.rs"]
mod fetch_support;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Prom;
use fetch_support::{Rng, T0};
use prom2om::fetch::api;
use prom2om::fetch::http::{Client, ClientConfig};

const HOURS: i64 = 24;
const METRICS: usize = 20;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Blocks of `series` series (20 metrics) over 24 h, kept under target/ between runs.
fn data_dir(series: usize, interval_ms: i64) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("fetch-bench-{series}-{interval_ms}"));
    let data = root.join("data");
    if data.join("wal").exists() {
        return data;
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let om = root.join("input.om");
    let t = Instant::now();
    {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&om).unwrap());
        let mut rng = Rng::new(7);
        for m in 0..METRICS {
            let name = format!("bench_metric_{m:02}");
            writeln!(w, "# TYPE {name} gauge").unwrap();
            for k in 0..series / METRICS {
                let mut v = (rng.next() % 1000) as f64;
                let mut ts = T0 + (k as i64 * 13) % 1000;
                while ts < T0 + HOURS * 3_600_000 {
                    // A random walk with two decimals, like real gauges.
                    v += ((rng.next() % 201) as f64 - 100.0) / 100.0;
                    writeln!(
                        w,
                        "{name}{{instance=\"host-{k:04}.example.com:9100\",job=\"node\",cluster=\"c{}\"}} {:.2} {}.{:03}",
                        k % 3,
                        v,
                        ts / 1000,
                        ts % 1000
                    )
                    .unwrap();
                    ts += interval_ms;
                }
            }
        }
        writeln!(w, "# EOF").unwrap();
    }
    common::backfill(&om, &data);
    std::fs::remove_file(&om).unwrap();
    eprintln!("made the data set in {:.1}s", t.elapsed().as_secs_f64());
    data
}

/// `prom2om fetch` as a user runs it: shards and manifest written, summary read back.
fn run_fetch(url: &str, method: &str, out: &Path) -> (f64, u64) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_prom2om"))
        .args(["fetch", "--url", url, "-m", r#"{__name__=~"bench_.*"}"#])
        .args(["--start", &(T0 / 1000).to_string()])
        .args(["--end", &((T0 + HOURS * 3_600_000) / 1000).to_string()])
        .args(["--method", method, "--force", "-o"])
        .arg(out)
        .output()
        .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    (secs, m["totals"]["samples"].as_u64().unwrap())
}

/// The user's script, in Rust: one query_range per metric on a 4-thread pool at the scrape
/// interval, every point written out as an OpenMetrics line.
fn run_query_range_pool(url: &str, interval_ms: i64) -> (f64, u64) {
    let client = Client::new(&ClientConfig {
        url: url.to_string(),
        timeout: Duration::from_secs(300),
        ..Default::default()
    })
    .unwrap();
    let next = AtomicUsize::new(0);
    let total = AtomicU64::new(0);
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| loop {
                let m = next.fetch_add(1, Ordering::Relaxed);
                if m >= METRICS {
                    break;
                }
                let q = format!("bench_metric_{m:02}");
                let res =
                    api::query_range(&client, &q, T0, T0 + HOURS * 3_600_000, interval_ms).unwrap();
                let mut out = Vec::with_capacity(1 << 20);
                let mut n = 0;
                for s in res {
                    for (ts, v) in s.floats {
                        let labels = &s.labels;
                        writeln!(out, "{labels} {v} {}.{:03}", ts / 1000, ts % 1000).unwrap();
                        n += 1;
                    }
                }
                std::hint::black_box(&out);
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    (t.elapsed().as_secs_f64(), total.load(Ordering::Relaxed))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benches; nothing to list here
    }
    let series = env_or("BENCH_SERIES", 2000);
    let interval_ms = env_or("BENCH_INTERVAL_S", 30) as i64 * 1000;
    let data = data_dir(series, interval_ms);
    let prom = Prom::start(&data);
    let url = prom.url();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    println!("data: {series} series, 24h at {}s", interval_ms / 1000);
    // One warm-up so the server has its blocks in the page cache for every contender.
    let _ = run_query_range_pool(&url, interval_ms);
    let (qs, qn) = run_query_range_pool(&url, interval_ms);
    println!(
        "query_range pool (4 threads): {qn} samples in {qs:.2}s = {:.0} samples/s",
        qn as f64 / qs
    );
    for method in ["remote-read", "raw", "range"] {
        let (s, n) = run_fetch(&url, method, &out);
        println!(
            "prom2om fetch --method {method:<11}: {n} samples in {s:.2}s = {:.0} samples/s ({:.1}x the pool)",
            n as f64 / s,
            (n as f64 / s) / (qn as f64 / qs)
        );
    }
}
