//! Criterion benches of the shard sink alone (plain shards, so the sink's own work shows, not
//! gzip's): float samples through the sorted path (input in time order) and the streamed path
//! (input in series order), and native histogram samples through both.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prom2om::format::histogram::{CounterResetHint, Histogram, HistogramValue, Span};
use prom2om::labels::Labels;
use prom2om::pipeline::feed::{Provenance, SampleSink};
use prom2om::pipeline::sink::{Output, Sink, SinkOptions, StaleMode, DEFAULT_SHARD_BYTES};

const SERIES: usize = 2000;
const STEPS: i64 = 720;
const T0: i64 = 1_700_000_000_000;

fn options(dir: &std::path::Path, stream: bool) -> SinkOptions {
    SinkOptions {
        output: Output::Dir {
            path: dir.join("o"),
            compress: false,
        },
        block_duration_ms: 7_200_000,
        shards: None,
        target_shard_bytes: DEFAULT_SHARD_BYTES,
        memory_limit: 1 << 30,
        temp_dir: None,
        stale: StaleMode::Carry,
        compression_level: 1,
        force: false,
        progress: false,
        stream,
    }
}

fn labels(i: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % 40)),
        ("instance", format!("host-{i}:9100")),
        ("job", "node".to_string()),
    ])
}

fn histogram(k: i64) -> HistogramValue {
    HistogramValue::Int(Histogram {
        hint: CounterResetHint::NotCounterReset,
        schema: 3,
        zero_threshold: 2.938735877055719e-39f64.to_bits(),
        zero_count: 1,
        count: 20 + k as u64,
        sum: (k as f64 * 0.37).to_bits(),
        positive_spans: vec![
            Span {
                offset: -4,
                length: 8,
            },
            Span {
                offset: 3,
                length: 4,
            },
        ],
        positive_buckets: vec![1, 1, 0, 2, -1, 3, k, -k, 1, 0, 2, 1],
        ..Histogram::default()
    })
}

/// Pushes every sample, series after series (`series_order`) or instant after instant, and
/// writes the shards.
fn run(series_order: bool, hist: bool, stream: bool) -> u64 {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut sink = Sink::create(options(tmp.path(), stream)).expect("sink");
    let ids: Vec<u32> = (0..SERIES)
        .map(|i| sink.series(labels(i), Provenance::EXACT).expect("series"))
        .collect();
    let hs: Vec<HistogramValue> = (0..STEPS).map(histogram).collect();
    let mut push = |s: usize, k: i64| {
        let ts = T0 + k * 15_000 + s as i64;
        if hist {
            sink.histogram(ids[s], ts, black_box(&hs[k as usize]))
        } else {
            sink.float(ids[s], ts, (k as f64 * 1.5 + s as f64).to_bits())
        }
        .expect("push")
    };
    if series_order {
        // The sink's series order is by name, then labels.
        let mut order: Vec<usize> = (0..SERIES).collect();
        order.sort_by_key(|&i| {
            let l = labels(i);
            (l.metric_name().to_string(), l)
        });
        for s in order {
            for k in 0..STEPS {
                push(s, k);
            }
        }
    } else {
        for k in 0..STEPS {
            for s in 0..SERIES {
                push(s, k);
            }
        }
    }
    sink.finish(Default::default())
        .expect("finish")
        .written
        .samples
}

fn sink(c: &mut Criterion) {
    let mut g = c.benchmark_group("sink");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SERIES as u64 * STEPS as u64));
    for (name, series_order, stream) in [("sorted", false, false), ("streamed", true, true)] {
        g.bench_with_input(BenchmarkId::new("floats", name), &(), |b, ()| {
            b.iter(|| run(series_order, false, stream))
        });
    }
    for (name, series_order, stream) in [("sorted", false, false), ("streamed", true, true)] {
        g.bench_with_input(BenchmarkId::new("histograms", name), &(), |b, ()| {
            b.iter(|| run(series_order, true, stream))
        });
    }
    g.finish();
}

criterion_group!(benches, sink);
criterion_main!(benches);
