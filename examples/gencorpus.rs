//! Generates a reproducible corpus of Elasticsearch-exporter-like series, as `promtool tsdb dump`
//! prints them (`--format dump`, for benchmarks) or as OpenMetrics (`--format openmetrics`, to
//! build a real TSDB with `promtool tsdb create-blocks-from openmetrics`).
//!
//!   cargo run --release --example gencorpus -- --series 3000 --hours 24 > corpus.dump
//!
//! Scrape timestamps carry millisecond jitter like real scrapes; a few targets restart, which
//! leaves a staleness marker (a lone NaN) in their series. Output is the same for the same flags.

use std::io::{self, BufWriter, Write};

use prom2om::labels::Labels;
use prom2om::{dump, openmetrics};

const METRICS: &[&str] = &[
    "elasticsearch_jvm_memory_used_bytes",
    "elasticsearch_jvm_memory_max_bytes",
    "elasticsearch_jvm_gc_collection_seconds_count",
    "elasticsearch_jvm_gc_collection_seconds_sum",
    "elasticsearch_os_cpu_percent",
    "elasticsearch_os_load1",
    "elasticsearch_process_open_files_count",
    "elasticsearch_thread_pool_active_count",
    "elasticsearch_thread_pool_completed_count",
    "elasticsearch_thread_pool_rejected_count",
    "elasticsearch_transport_rx_size_bytes_total",
    "elasticsearch_filesystem_data_available_bytes",
    "elasticsearch_indices_docs",
    "elasticsearch_indices_store_size_bytes",
    "elasticsearch_indices_search_query_time_seconds",
    "elasticsearch_indices_indexing_index_total",
    "elasticsearch_index_stats_search_query_total",
    "elasticsearch_cluster_health_active_shards",
    "elasticsearch_breakers_estimated_size_bytes",
    "node_cpu_seconds_total",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64: tiny, good enough, and the same everywhere.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Opts {
    series: usize,
    hours: f64,
    interval_ms: i64,
    start_ms: i64,
    openmetrics: bool,
    seed: u64,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        series: 3000,
        hours: 24.0,
        interval_ms: 15_000,
        start_ms: 1_700_000_000_000,
        openmetrics: false,
        seed: 1,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--series" => o.series = v.parse().expect("--series N"),
            "--hours" => o.hours = v.parse().expect("--hours H"),
            "--interval-ms" => o.interval_ms = v.parse().expect("--interval-ms MS"),
            "--start-ms" => o.start_ms = v.parse().expect("--start-ms MS"),
            "--seed" => o.seed = v.parse().expect("--seed N"),
            "--format" => o.openmetrics = v == "openmetrics",
            other => panic!("unknown flag {other}; see the file's doc comment"),
        }
        i += 2;
    }
    o
}

fn series_labels(i: usize) -> Labels {
    let metric = METRICS[i % METRICS.len()];
    let node = i / METRICS.len();
    let mut pairs = vec![
        ("__name__".to_string(), metric.to_string()),
        ("cluster".to_string(), format!("es-prod-{}", node % 3)),
        ("instance".to_string(), format!("10.1.{}.{}:9114", node / 250, node % 250)),
        ("job".to_string(), "elasticsearch".to_string()),
        ("name".to_string(), format!("es-data-{node:04}")),
    ];
    if metric.contains("thread_pool") {
        pairs.push(("type".to_string(), ["search", "write", "get"][node % 3].to_string()));
    }
    if metric.contains("index_stats") || metric.contains("indices_store") {
        pairs.push(("index".to_string(), format!("logs-2023.11.{:02}", node % 28 + 1)));
    }
    Labels::from_pairs(pairs)
}

fn main() -> io::Result<()> {
    let o = parse_args();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut rng = Rng(o.seed);
    let steps = (o.hours * 3_600_000.0 / o.interval_ms as f64) as i64;
    let mut line = Vec::with_capacity(256);
    let mut prefix = Vec::new();
    for i in 0..o.series {
        let labels = series_labels(i);
        let counter = labels.metric_name().ends_with("_total") || labels.metric_name().ends_with("_count");
        let offset = (rng.next() % o.interval_ms as u64) as i64;
        let restart_at = if rng.f() < 0.05 { (rng.next() % steps.max(1) as u64) as i64 } else { -1 };
        let mut v = (rng.f() * 1e9).round();
        prefix.clear();
        openmetrics::write_series_prefix(&labels, &mut prefix);
        for step in 0..steps {
            // Scrapes land a few ms off the interval, as real ones do.
            let ts = o.start_ms + offset + step * o.interval_ms + (rng.next() % 7) as i64;
            let value = if step == restart_at {
                f64::NAN
            } else if counter {
                v += (rng.f() * 1000.0).round();
                v
            } else {
                v = (v * (0.98 + rng.f() * 0.04)).round() / 100.0 * 100.0 + rng.f();
                v
            };
            line.clear();
            if o.openmetrics {
                openmetrics::write_sample(&prefix, value, ts, &mut line);
            } else {
                dump::write_line(&labels, value, ts, &mut line);
            }
            out.write_all(&line)?;
        }
    }
    if o.openmetrics {
        out.write_all(openmetrics::EOF_LINE)?;
    }
    out.flush()
}
