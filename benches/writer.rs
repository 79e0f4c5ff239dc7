//! Criterion bench for the shard writers: formatting sample lines alone (value, timestamp, the
//! series prefix) and a whole `TextWriter` gzipping at level 1 into memory, on lines like the
//! live-dir bench's (`elasticsearch_os_load1{...} 3.9960625143e+08 1795960811.708`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::write::GzEncoder;
use prom2om::format::gofloat::format_g;
use prom2om::format::openmetrics::{write_sample, write_series_prefix, write_timestamp};
use prom2om::labels::Labels;
use prom2om::pipeline::shard::{Hists, NoSidecar, StaleMode, TextWriter};

const SERIES: usize = 100;
const PER_SERIES: usize = 480;

/// A small deterministic generator: the bench needs varied digits, not statistical quality.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Series {
    prefix: Vec<u8>,
    samples: Vec<(i64, u64)>,
}

/// 100 series of 480 samples (2 h at 15 s, a few ms of jitter): 70% of the series hold large
/// gauges with 10-11 significant digits, 15% two-decimal ratios, 15% integer counters.
fn corpus() -> Vec<Series> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..SERIES)
        .map(|i| {
            let labels = Labels::from_pairs([
                ("__name__", "elasticsearch_os_load1".to_string()),
                ("cluster", "es-prod-0".to_string()),
                ("instance", format!("10.1.0.{i}:9114")),
                ("job", "elasticsearch".to_string()),
                ("name", format!("es-data-{i:04}")),
            ]);
            let mut prefix = Vec::new();
            write_series_prefix(&labels, &mut prefix);
            let mut counter = 1_000_000u64;
            let samples = (0..PER_SERIES)
                .map(|k| {
                    let ts = 1_795_960_811_000 + k as i64 * 15_000 + (rng.next() % 10) as i64;
                    let r = rng.next();
                    let v = match i % 20 {
                        0..=13 => {
                            let sig = 3_000_000_000 + r % 7_000_000_000;
                            (sig as f64 / 10.0).round() / 100.0
                        }
                        14..=16 => (r % 10_000) as f64 / 100.0,
                        _ => {
                            counter += r % 5000;
                            counter as f64
                        }
                    };
                    (ts, v.to_bits())
                })
                .collect();
            Series { prefix, samples }
        })
        .collect()
}

fn format(c: &mut Criterion) {
    let series = corpus();
    let n = (SERIES * PER_SERIES) as u64;
    let mut out = Vec::with_capacity(16 << 20);
    let mut g = c.benchmark_group("format");
    g.throughput(Throughput::Elements(n));
    g.bench_function("write_sample", |b| {
        b.iter(|| {
            out.clear();
            for s in &series {
                for &(t, v) in &s.samples {
                    write_sample(
                        &s.prefix,
                        f64::from_bits(black_box(v)),
                        black_box(t),
                        &mut out,
                    );
                }
            }
            out.len()
        })
    });
    g.bench_function("format_g", |b| {
        b.iter(|| {
            out.clear();
            for s in &series {
                for &(_, v) in &s.samples {
                    format_g(f64::from_bits(black_box(v)), &mut out);
                }
            }
            out.len()
        })
    });
    g.bench_function("write_timestamp", |b| {
        b.iter(|| {
            out.clear();
            for s in &series {
                for &(t, _) in &s.samples {
                    write_timestamp(black_box(t), &mut out);
                }
            }
            out.len()
        })
    });
    g.finish();
}

fn writer(c: &mut Criterion) {
    let series = corpus();
    let mut g = c.benchmark_group("writer");
    g.throughput(Throughput::Elements((SERIES * PER_SERIES) as u64));
    g.bench_function("text_plain", |b| {
        b.iter(|| {
            let mut w = TextWriter::new(NoSidecar(Vec::with_capacity(8 << 20)), StaleMode::Keep);
            for s in &series {
                w.series(&s.prefix, black_box(&s.samples), Hists::NONE, None)
                    .expect("in memory");
            }
            w.finish().expect("in memory").0 .0.len()
        })
    });
    g.bench_function("text_gzip1", |b| {
        b.iter(|| {
            let gz = GzEncoder::new(Vec::with_capacity(1 << 20), flate2::Compression::new(1));
            let mut w = TextWriter::new(NoSidecar(gz), StaleMode::Keep);
            for s in &series {
                w.series(&s.prefix, black_box(&s.samples), Hists::NONE, None)
                    .expect("in memory");
            }
            let (out, _) = w.finish().expect("in memory");
            out.0.finish().expect("in memory").len()
        })
    });
    g.finish();
}

criterion_group!(benches, format, writer);
criterion_main!(benches);
