//! Criterion bench for the head reader: a data dir whose WAL holds one snappy samples record per
//! scrape of 10,000 series (as Prometheus logs a scrape), replayed by `read_head`, all series
//! wanted or one in a hundred (a one-family export). With `BENCH_LIVE_DIR` set (a copy of a real
//! data dir, e.g. `cp -a /tmp/dd-bench/live`), also that head, one family
//! (`BENCH_FAMILY`, default `elasticsearch_os_load1`) wanted.

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

/// Sums what it is given; wants the series `want` accepts.
struct Count<F>(u64, F);

impl<F: FnMut(&Labels) -> bool> HeadVisitor for Count<F> {
    fn series(&mut self, l: &Labels) -> anyhow::Result<Option<u32>> {
        Ok((self.1)(l).then_some(0))
    }
    fn wants(&mut self, l: &Labels) -> bool {
        (self.1)(l)
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
            let mut v = Count(0, |_: &Labels| true);
            read_head(black_box(tmp.path()), &opts, &mut v).unwrap();
            v.0
        })
    });
    g.bench_function("read_head_wal_1pc", |b| {
        b.iter(|| {
            let mut v = Count(0, |l: &Labels| {
                l.get("id").is_some_and(|id| id.ends_with("00"))
            });
            read_head(black_box(tmp.path()), &opts, &mut v).unwrap();
            v.0
        })
    });
    g.finish();
    let Some(live) = std::env::var_os("BENCH_LIVE_DIR") else {
        return;
    };
    let family = std::env::var("BENCH_FAMILY").unwrap_or("elasticsearch_os_load1".into());
    let live = Path::new(&live).to_path_buf();
    let mut g = c.benchmark_group("head_live");
    g.sample_size(20);
    g.bench_function("read_head_one_family", |b| {
        b.iter(|| {
            let mut v = Count(0, |l: &Labels| l.metric_name() == family);
            read_head(black_box(&live), &opts, &mut v).unwrap();
            v.0
        })
    });
    g.finish();
}

criterion_group!(benches, head);
criterion_main!(benches);
