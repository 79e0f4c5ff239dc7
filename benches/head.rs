//! Criterion bench for the head reader: a data dir whose WAL holds one snappy samples record per
//! scrape of 10,000 series (as Prometheus logs a scrape), replayed by `read_head`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prom2om::format::tsdb::record::{encode_samples, encode_series};
use prom2om::format::tsdb::wal::{Compression, Writer, PAGE_SIZE};
use prom2om::labels::Labels;
use prom2om::pipeline::head::{read_head, HeadOptions, HeadVisitor};

const SERIES: u64 = 10_000;
const SCRAPES: i64 = 100;

fn build(dir: &Path) {
    let mut w = Writer::new(PAGE_SIZE * 4096, Compression::Snappy);
    let names: Vec<(u64, String)> = (1..=SERIES).map(|r| (r, format!("{r:05}"))).collect();
    let labels: Vec<[(&str, &str); 3]> = names
        .iter()
        .map(|(_, n)| {
            [
                ("__name__", "node_metric"),
                ("instance", "host:9100"),
                ("id", n),
            ]
        })
        .collect();
    let series: Vec<(u64, &[(&str, &str)])> = names
        .iter()
        .zip(&labels)
        .map(|((r, _), l)| (*r, &l[..]))
        .collect();
    w.log(&encode_series(&series));
    for i in 0..SCRAPES {
        let t = 1_700_000_000_000 + i * 15_000;
        let s: Vec<_> = (1..=SERIES)
            .map(|r| {
                (
                    r,
                    t + (r as i64 % 7),
                    ((r as f64) * 1.5 + i as f64).to_bits(),
                )
            })
            .collect();
        w.log(&encode_samples(&s));
    }
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    for (i, seg) in w.segments().iter().enumerate() {
        std::fs::write(dir.join(format!("wal/{i:08}")), seg).unwrap();
    }
}

struct Count(u64);

impl HeadVisitor for Count {
    fn series(&mut self, _: &Labels) -> Option<u32> {
        Some(0)
    }
    fn sample(&mut self, _: u32, ts: i64, bits: u64) -> anyhow::Result<()> {
        self.0 = self.0.wrapping_add(ts as u64 ^ bits);
        Ok(())
    }
}

fn head(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    let opts = HeadOptions {
        min_valid_time: i64::MIN,
        mint: i64::MIN,
        maxt: i64::MAX,
        skip_invalid: false,
    };
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Elements(SERIES * SCRAPES as u64));
    g.sample_size(10);
    g.bench_function("read_head_wal", |b| {
        b.iter(|| {
            let mut v = Count(0);
            read_head(black_box(tmp.path()), &opts, &mut v).unwrap();
            v.0
        })
    });
    g.finish();
}

criterion_group!(benches, head);
criterion_main!(benches);
