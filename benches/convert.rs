//! Criterion benches for the hot paths: parsing dump lines (kept, and filtered out by --match),
//! encoding OpenMetrics, and the whole convert pipeline into gzip shards.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prom2om::corpus::{generate, CorpusSpec};
use prom2om::pipeline::convert::{convert, ConvertOptions};
use prom2om::pipeline::input::InputSpec;
use prom2om::pipeline::sink::{Output, Sink, SinkOptions, StaleMode, DEFAULT_SHARD_BYTES};
use prom2om::select::filter::Filter;
use prom2om::select::selector::Selector;

fn corpus(series: usize, hours: f64) -> Vec<u8> {
    let mut out = Vec::new();
    let spec = CorpusSpec {
        series,
        hours,
        ..Default::default()
    };
    generate(&spec, &mut out).expect("in-memory write");
    out
}

fn parse(c: &mut Criterion) {
    let data = corpus(200, 2.0);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("parse_line", |b| {
        b.iter(|| {
            let mut n = 0i64;
            for line in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                n = n.wrapping_add(
                    prom2om::format::dump::parse_line(black_box(line))
                        .expect("valid")
                        .ts,
                );
            }
            n
        })
    });
    g.bench_function("labels_len", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for line in data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                n += prom2om::format::dump::labels_len(black_box(line)).expect("valid");
            }
            n
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let labels = prom2om::corpus::series_labels(7);
    let mut prefix = Vec::new();
    prom2om::format::openmetrics::write_series_prefix(&labels, &mut prefix);
    let samples: Vec<(i64, f64)> = (0..100_000)
        .map(|i| (1_700_000_000_000 + i * 15_003, 1.0e8 + i as f64 * 1234.5))
        .collect();
    let mut out = Vec::with_capacity(16 << 20);
    out.clear();
    for &(t, v) in &samples {
        prom2om::format::openmetrics::write_sample(&prefix, v, t, &mut out);
    }
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(out.len() as u64));
    g.bench_function("write_sample", |b| {
        b.iter(|| {
            out.clear();
            for &(t, v) in &samples {
                prom2om::format::openmetrics::write_sample(
                    &prefix,
                    black_box(v),
                    black_box(t),
                    &mut out,
                );
            }
            out.len()
        })
    });
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let data = corpus(600, 6.0);
    let tmp = tempfile::tempdir().expect("temp dir");
    let input = tmp.path().join("corpus.dump");
    std::fs::write(&input, &data).expect("write corpus");
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    for (name, matcher) in [("all", None), ("filtered_out", Some("no_such_metric"))] {
        g.bench_with_input(
            BenchmarkId::new("convert_gzip_shards", name),
            &matcher,
            |b, m| {
                b.iter(|| {
                    let out = tempfile::tempdir_in(tmp.path()).expect("out dir");
                    let opts = SinkOptions {
                        output: Output::Dir {
                            path: out.path().join("o"),
                            compress: true,
                        },
                        block_duration_ms: 7_200_000,
                        shards: None,
                        target_shard_bytes: DEFAULT_SHARD_BYTES,
                        memory_limit: 1 << 30,
                        temp_dir: None,
                        stale: StaleMode::Drop,
                        compression_level: 1,
                        force: false,
                        progress: false,
                        stream: true,
                    };
                    let mut sink = Sink::create(opts).expect("sink");
                    let filter = Filter {
                        selectors: m
                            .iter()
                            .map(|s| Selector::parse(s).expect("selector"))
                            .collect(),
                        ..Default::default()
                    };
                    let copts = ConvertOptions {
                        filter,
                        ..Default::default()
                    };
                    convert(&[InputSpec::File(input.clone())], &copts, &mut sink).expect("convert");
                    sink.finish(Default::default()).expect("finish")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, parse, encode, pipeline);
criterion_main!(benches);
