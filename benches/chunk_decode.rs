//! XOR chunk decoding, samples per second on one core: chunks of 120 samples as a scraping
//! Prometheus writes them (15 s interval with millisecond jitter), for three value shapes —
//! counters, noisy gauges and constants — and the chunks of a real promtool 2.42 block. Native
//! histogram chunks too (`histogram_decode`): exponential (schema 3, 20 buckets) and custom
//! bucket (NHCB, 10 buckets) counters, float histograms, and those of a real Prometheus 3.5.3
//! block; histogram samples per second.
//!
//! Run: cargo bench --bench chunk_decode   (target: at least 100 M samples/s per core for XOR)
//! On a machine other jobs share, `CHUNK_DECODE_CLOCK=thread-cpu` times the decoding thread's CPU
//! time instead of the wall clock: the per-core figure, without the time spent waiting for a core.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{black_box, Criterion, Throughput};
use prom2om::format::histogram::{FloatHistogram, Histogram, Span};
use prom2om::format::tsdb::{chunkenc, float_histogram, histogram, xor};

const CHUNKS: usize = 1000;
const PER_CHUNK: usize = 120;

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

fn chunks(shape: &str) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..CHUNKS)
        .map(|c| {
            let mut t = 1_700_000_000_000i64 + c as i64 * 1_800_000;
            let mut v = 1000.0f64;
            let samples: Vec<(i64, u64)> = (0..PER_CHUNK)
                .map(|_| {
                    // Most scrapes land on the interval; some are a few ms off.
                    let jitter = if rng.next() % 4 == 0 {
                        (rng.next() % 7) as i64 - 3
                    } else {
                        0
                    };
                    t += 15_000 + jitter;
                    v = match shape {
                        "counter" => v + (rng.next() % 500) as f64,
                        "gauge" => (rng.next() % 1_000_000) as f64 / 1000.0,
                        _ => v,
                    };
                    (t, v.to_bits())
                })
                .collect();
            xor::encode(&samples).unwrap()
        })
        .collect()
}

fn decode_all(chunks: &[Vec<u8>]) -> u64 {
    let mut acc = 0u64;
    for c in chunks {
        xor::decode(c, |t, v| acc = acc.wrapping_add(t as u64 ^ v)).unwrap();
    }
    acc
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("xor_decode");
    for shape in ["counter", "gauge", "constant"] {
        let data = chunks(shape);
        g.throughput(Throughput::Elements((CHUNKS * PER_CHUNK) as u64));
        g.bench_function(shape, |b| {
            b.iter(|| black_box(decode_all(black_box(&data))))
        });
    }
    // The golden block's chunks, as Prometheus 2.42 wrote them.
    let seg = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/tsdb/golden-block/chunks/000001"),
    )
    .unwrap();
    let real: Vec<Vec<u8>> = prom2om::format::tsdb::chunks::iter(&seg)
        .map(|c| c.unwrap().1.data.to_vec())
        .collect();
    let n: usize = real
        .iter()
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as usize)
        .sum();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("promtool_block", |b| {
        b.iter(|| black_box(decode_all(black_box(&real))))
    });
    g.finish();
    bench_histograms(c);
}

/// Histogram chunks of 60 samples (a 1 s scrape over a minute, or what a byte-sized cut
/// leaves): `(encoding, chunk)`.
fn histogram_chunks(kind: &str) -> Vec<(u8, Vec<u8>)> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..200)
        .map(|c| {
            let (schema, n) = if kind == "nhcb" { (-53, 10) } else { (3, 20) };
            let mut counts = vec![0i64; n];
            let (mut count, mut sum) = (0u64, 0.0f64);
            let mut t = 1_700_000_000_000i64 + c as i64 * 60_000;
            let mut ints = Vec::new();
            for _ in 0..60 {
                t += 1000 + (rng.next() % 3) as i64 - 1;
                for b in counts.iter_mut() {
                    let inc = (rng.next() % 4) as i64;
                    *b += inc;
                    count += inc as u64;
                    sum += inc as f64 * 0.013;
                }
                let mut prev = 0;
                let deltas = counts
                    .iter()
                    .map(|b| {
                        let d = b - prev;
                        prev = *b;
                        d
                    })
                    .collect();
                ints.push((
                    t,
                    Histogram {
                        schema,
                        zero_threshold: if schema == -53 {
                            0
                        } else {
                            2f64.powi(-128).to_bits()
                        },
                        count,
                        sum: sum.to_bits(),
                        positive_spans: vec![Span {
                            offset: -8,
                            length: n as u32,
                        }],
                        positive_buckets: deltas,
                        custom_values: if schema == -53 {
                            (1..n).map(|i| (i as f64 * 0.05).to_bits()).collect()
                        } else {
                            Vec::new()
                        },
                        ..Histogram::default()
                    },
                ));
            }
            if kind == "float" {
                let f: Vec<(i64, FloatHistogram)> = ints
                    .iter()
                    .map(|(t, h)| (*t, rate(&h.to_float())))
                    .collect();
                (
                    chunkenc::ENC_FLOAT_HISTOGRAM,
                    float_histogram::encode(&f).unwrap(),
                )
            } else {
                (chunkenc::ENC_HISTOGRAM, histogram::encode(&ints).unwrap())
            }
        })
        .collect()
}

/// A float histogram as a rate makes it: counts divided, no longer whole.
fn rate(h: &FloatHistogram) -> FloatHistogram {
    let d = |b: &u64| (f64::from_bits(*b) / 59.7).to_bits();
    FloatHistogram {
        count: d(&h.count),
        sum: d(&h.sum),
        positive_buckets: h.positive_buckets.iter().map(d).collect(),
        ..h.clone()
    }
}

fn decode_histograms(chunks: &[(u8, Vec<u8>)]) -> u64 {
    let mut acc = 0u64;
    for (enc, c) in chunks {
        chunkenc::decode_samples(*enc, c, |_, t, v| {
            acc = acc.wrapping_add(t as u64);
            match v {
                chunkenc::Value::Histogram(h) => acc = acc.wrapping_add(h.count),
                chunkenc::Value::FloatHistogram(h) => acc = acc.wrapping_add(h.count),
                chunkenc::Value::Float(b) => acc ^= b,
            }
        })
        .unwrap();
    }
    acc
}

fn bench_histograms<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("histogram_decode");
    let count = |chunks: &[(u8, Vec<u8>)]| -> u64 {
        chunks
            .iter()
            .map(|(_, c)| u16::from_be_bytes([c[0], c[1]]) as u64)
            .sum()
    };
    for kind in ["exponential", "nhcb", "float"] {
        let data = histogram_chunks(kind);
        g.throughput(Throughput::Elements(count(&data)));
        g.bench_function(kind, |b| {
            b.iter(|| black_box(decode_histograms(black_box(&data))))
        });
    }
    // The histogram chunks of a Prometheus 3.5.3 block (testdata/tsdb/histograms).
    let seg = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/tsdb/histograms/block/chunks/000001"),
    )
    .unwrap();
    let real: Vec<(u8, Vec<u8>)> = prom2om::format::tsdb::chunks::iter(&seg)
        .map(|c| c.unwrap().1)
        .filter(|c| c.encoding != chunkenc::ENC_XOR)
        .map(|c| (c.encoding, c.data.to_vec()))
        .collect();
    g.throughput(Throughput::Elements(count(&real)));
    g.bench_function("prometheus_block", |b| {
        b.iter(|| black_box(decode_histograms(black_box(&real))))
    });
    g.finish();
}

/// CPU time of the calling thread, shown like wall time.
struct ThreadCpu(WallTime);

fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_now()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.0.formatter()
    }
}

fn main() {
    match std::env::var("CHUNK_DECODE_CLOCK").as_deref() {
        Ok("thread-cpu") => {
            let mut c = Criterion::default()
                .with_measurement(ThreadCpu(WallTime))
                .configure_from_args();
            bench(&mut c);
            c.final_summary();
        }
        Ok(other) if other != "wall" => {
            panic!("CHUNK_DECODE_CLOCK is wall or thread-cpu, not {other}")
        }
        _ => {
            let mut c = Criterion::default().configure_from_args();
            bench(&mut c);
            c.final_summary();
        }
    }
}
