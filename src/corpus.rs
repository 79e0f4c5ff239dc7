//! Synthetic Elasticsearch-exporter data for benchmarks, tests and the shipped sample: the same
//! output for the same parameters, with millisecond scrape jitter and the occasional target
//! restart (a staleness marker, i.e. a lone NaN), like a real Prometheus holds.

use std::io::{self, Write};

use crate::format::{dump, openmetrics};
use crate::labels::Labels;

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

/// splitmix64: tiny, good enough, and the same on every platform. Public so that the corpus's
/// other writers (examples/pushcorpus.rs) draw the same values.
pub struct Rng(pub u64);
impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The labels of series `i`: metric, cluster, instance, job, node name, and a pool or index.
pub fn series_labels(i: usize) -> Labels {
    let metric = METRICS[i % METRICS.len()];
    let node = i / METRICS.len();
    let mut pairs = vec![
        ("__name__".to_string(), metric.to_string()),
        ("cluster".to_string(), format!("es-prod-{}", node % 3)),
        (
            "instance".to_string(),
            format!("10.1.{}.{}:9114", node / 250, node % 250),
        ),
        ("job".to_string(), "elasticsearch".to_string()),
        ("name".to_string(), format!("es-data-{node:04}")),
    ];
    if metric.contains("thread_pool") {
        pairs.push((
            "type".to_string(),
            ["search", "write", "get"][node % 3].to_string(),
        ));
    }
    if metric.contains("index_stats") || metric.contains("indices_store") {
        pairs.push((
            "index".to_string(),
            format!("logs-2023.11.{:02}", node % 28 + 1),
        ));
    }
    Labels::from_pairs(pairs)
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct CorpusSpec {
    pub series: usize,
    pub hours: f64,
    pub interval_ms: i64,
    pub start_ms: i64,
    pub seed: u64,
    /// OpenMetrics (to build a TSDB with promtool) instead of dump text.
    pub openmetrics: bool,
    /// Series in creation order, as a dump of a head-only TSDB prints them, instead of sorted by
    /// labels, as a dump of persisted blocks does.
    pub head_order: bool,
}

impl Default for CorpusSpec {
    fn default() -> Self {
        CorpusSpec {
            series: 3000,
            hours: 24.0,
            interval_ms: 15_000,
            start_ms: 1_700_000_000_000,
            seed: 1,
            openmetrics: false,
            head_order: false,
        }
    }
}

/// Writes the corpus: series after series, each in time order, as a dump of blocks prints it.
pub fn generate(spec: &CorpusSpec, out: &mut impl Write) -> io::Result<()> {
    let steps = (spec.hours * 3_600_000.0 / spec.interval_ms as f64) as i64;
    let mut line = Vec::with_capacity(256);
    let mut prefix = Vec::new();
    let mut all: Vec<(usize, Labels)> = (0..spec.series).map(|i| (i, series_labels(i))).collect();
    if !spec.head_order {
        all.sort_by(|(_, a), (_, b)| a.metric_name().cmp(b.metric_name()).then_with(|| a.cmp(b)));
    }
    for (i, labels) in all {
        // Each series has its own stream, so its values do not depend on the order.
        let mut rng = Rng(spec.seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let name = labels.metric_name();
        let counter = name.ends_with("_total") || name.ends_with("_count");
        let offset = (rng.next_u64() % spec.interval_ms as u64) as i64;
        let restart_at = if rng.f() < 0.05 {
            (rng.next_u64() % steps.max(1) as u64) as i64
        } else {
            -1
        };
        let mut v = (rng.f() * 1e9).round();
        prefix.clear();
        openmetrics::write_series_prefix(&labels, &mut prefix);
        for step in 0..steps {
            // Scrapes land a few ms off the interval, as real ones do.
            let ts = spec.start_ms + offset + step * spec.interval_ms + (rng.next_u64() % 7) as i64;
            let value = if step == restart_at {
                f64::NAN
            } else if counter {
                v += (rng.f() * 1000.0).round();
                v
            } else {
                v = (v * (0.98 + rng.f() * 0.04)).round() + (rng.f() * 100.0).round() / 100.0;
                v
            };
            line.clear();
            if spec.openmetrics {
                openmetrics::write_sample(&prefix, value, ts, &mut line);
            } else {
                dump::write_line(&labels, value, ts, &mut line);
            }
            out.write_all(&line)?;
        }
    }
    if spec.openmetrics {
        out.write_all(openmetrics::EOF_LINE)?;
    }
    Ok(())
}
