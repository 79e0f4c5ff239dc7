//! The block writer of `import --tsdb`, samples per second into memory: floats (1000 series of
//! 2880 samples at 30 s, counters and gauges, cut into chunks as Prometheus 2.42's head cuts
//! them: the float path must not slow down for native histograms), and native histograms
//! (`histograms`: 200 exponential counter series of 20 buckets at 15 s and 50 NHCB ones of 10,
//! cut as Prometheus 3.5's head cuts them, with its 1 KiB target and recoding).
//!
//! Run: cargo bench --bench block_writer

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use prom2om::format::histogram::{Histogram, HistogramValue, Span};
use prom2om::format::tsdb::block_writer::{BlockWriter, SegmentWriter};
use prom2om::labels::Labels;

/// The head range `import` gives the writer: twice the 2 h block.
const CHUNK_RANGE: i64 = 4 * 3_600_000;
const START: i64 = 1_700_000_000_000;

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

type FloatSeries = Vec<(Labels, Vec<(i64, u64)>)>;

fn float_series() -> FloatSeries {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..1000)
        .map(|i| {
            let labels = Labels::from_pairs([
                (
                    "__name__",
                    if i % 2 == 0 {
                        "bench_counter"
                    } else {
                        "bench_gauge"
                    },
                ),
                ("instance", &format!("host-{:03}:9100", i / 10)),
                ("i", &i.to_string()),
            ]);
            let mut v = 0.0f64;
            let samples = (0..2880)
                .map(|k| {
                    v = if i % 2 == 0 {
                        v + (rng.next() % 100) as f64
                    } else {
                        (rng.next() % 1_000_000) as f64 / 1000.0
                    };
                    (START + k * 30_000, v.to_bits())
                })
                .collect();
            (labels, samples)
        })
        .collect()
}

type HistSeries = Vec<(Labels, Vec<(i64, HistogramValue)>)>;

/// Counter histograms that grow by a few observations a scrape, in `buckets` buckets.
fn histogram_series(n: usize, buckets: u32, custom: bool) -> HistSeries {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|i| {
            let labels = Labels::from_pairs([
                ("__name__", if custom { "bench_nhcb" } else { "bench_hist" }),
                ("i", &i.to_string()),
            ]);
            let mut counts = vec![0i64; buckets as usize];
            let samples = (0..960)
                .map(|k| {
                    for c in counts.iter_mut() {
                        *c += (rng.next() % 3) as i64;
                    }
                    let mut prev = 0;
                    let deltas = counts
                        .iter()
                        .map(|&c| {
                            let d = c - prev;
                            prev = c;
                            d
                        })
                        .collect();
                    let h = Histogram {
                        schema: if custom { -53 } else { 3 },
                        count: counts.iter().sum::<i64>() as u64,
                        sum: (k as f64 * 0.37).to_bits(),
                        positive_spans: vec![Span {
                            offset: 0,
                            length: buckets,
                        }],
                        positive_buckets: deltas,
                        custom_values: if custom {
                            (1..buckets).map(|b| (b as f64 * 0.1).to_bits()).collect()
                        } else {
                            Vec::new()
                        },
                        ..Histogram::default()
                    };
                    (START + k * 15_000, HistogramValue::Int(h))
                })
                .collect();
            (labels, samples)
        })
        .collect()
}

fn write<T>(series: &[(Labels, Vec<(i64, T)>)], append: impl Fn(&mut BlockWriter, i64, &T)) {
    let mut w = BlockWriter::new(CHUNK_RANGE);
    for (labels, samples) in series {
        w.start_series(labels.clone()).unwrap();
        for (t, v) in samples {
            append(&mut w, *t, v);
        }
    }
    let segs = SegmentWriter::new(|_| Ok(Vec::new()));
    black_box(w.finish(segs, Vec::new()).unwrap());
}

fn floats(c: &mut Criterion) {
    let series = float_series();
    let n: usize = series.iter().map(|s| s.1.len()).sum();
    let mut g = c.benchmark_group("block_writer");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("floats", |b| {
        b.iter(|| write(&series, |w, t, v| w.append(t, *v).unwrap()))
    });
    g.finish();
}

fn histograms(c: &mut Criterion) {
    let mut series = histogram_series(200, 20, false);
    series.extend(histogram_series(50, 10, true));
    let n: usize = series.iter().map(|s| s.1.len()).sum();
    let mut g = c.benchmark_group("block_writer");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("histograms", |b| {
        b.iter(|| write(&series, |w, t, h| w.append_histogram(t, h).unwrap()))
    });
    g.finish();
}

criterion_group!(benches, floats, histograms);
criterion_main!(benches);
