//! The Prometheus 3.5.3 scenario of issue 22: native histograms of every kind (exponential from
//! scrapes over protobuf and remote write, NHCB from a classic histogram and remote write, float).

use std::path::Path;
use std::time::Duration;

use super::nativehist::{custom, exponential, float_gauge, hist_series, stale, HistSeries};
use super::*;

pub const NAME: &str = "native_histograms";

/// The flag that turns native histograms on in 3.5 (stable, and renamed, from 3.8).
pub const NATIVE_FLAG: &str = "--enable-feature=native-histograms";

/// Prometheus's own `/metrics` over protobuf first: its latency histograms are exponential.
const SELF_OPTIONS: &str =
    "    scrape_protocols: [PrometheusProto, OpenMetricsText1.0.0, PrometheusText0.0.4]\n";
/// The awkward target's classic histograms stored as native ones with custom buckets.
const TARGET_OPTIONS: &str = "    convert_classic_histograms_to_nhcb: true\n";

/// Labels of the pushed histogram series of `kind`.
fn native(kind: &str) -> [(&'static str, &str); 2] {
    [("__name__", "hist_native"), ("kind", kind)]
}

/// Minute `k` of the pushed histogram history, every 10 s: the three kinds (a histogram
/// staleness marker in two of them), and `hist_mixed`: floats, and from 4.5 minutes in (inside a
/// block) histograms under the same labels; its `head` twin stays float here.
fn histogram_minute(start: i64, k: i64) -> Vec<HistSeries> {
    let times: Vec<i64> = (0..6).map(|j| start + k * 60_000 + j * 10_000).collect();
    let with_stale = |f: fn(i64, i64) -> super::nativehist::Histogram, at: i64| {
        times
            .iter()
            .map(|&t| if t == at { stale(t) } else { f(start, t) })
            .collect::<Vec<_>>()
    };
    let mixed_from = start + 270_000;
    let floats = |ts: &[i64]| -> Vec<(i64, u64)> {
        ts.iter()
            .map(|&t| (t, ((t - start) as f64 / 4_000.0).to_bits()))
            .collect()
    };
    let (mixed_f, mixed_h): (Vec<i64>, Vec<i64>) = times.iter().partition(|&&t| t < mixed_from);
    vec![
        hist_series(
            &native("exponential"),
            &[],
            with_stale(exponential, start + 210_000),
        ),
        hist_series(
            &native("float"),
            &[],
            times.iter().map(|&t| float_gauge(start, t)).collect(),
        ),
        hist_series(&native("custom"), &[], with_stale(custom, start + 380_000)),
        hist_series(
            &[("__name__", "hist_mixed"), ("where", "block")],
            &floats(&mixed_f),
            mixed_h
                .iter()
                .map(|&t| exponential(mixed_from, t))
                .collect(),
        ),
        hist_series(
            &[("__name__", "hist_mixed"), ("where", "head")],
            &floats(&times),
            Vec::new(),
        ),
    ]
}

/// Out-of-order histograms of `kinds` at `from..to` ms after `start`, `step` apart, 5 007 ms
/// (or 507 ms for steps under 10 s) past the in-order ones.
fn ooo_histograms(start: i64, from: i64, to: i64, step: i64, kinds: &[&str]) -> Vec<HistSeries> {
    let off = if step >= 10_000 { 5_007 } else { 507 };
    let times: Vec<i64> = (from / step..to / step)
        .map(|j| start + j * step + off)
        .collect();
    let kind = |name: &str| {
        let f = match name {
            "exponential" => exponential,
            "float" => float_gauge,
            _ => custom,
        };
        hist_series(
            &native(name),
            &[],
            times.iter().map(|&t| f(start, t)).collect(),
        )
    };
    kinds.iter().map(|k| kind(k)).collect()
}

/// When the scenario's series began: scraping, and the histogram series pushed into the head.
struct Starts {
    history: i64,
    scrapes: i64,
    head_series: i64,
}

/// Deletions through the admin API: a middle range and whole series of floats (blocks and
/// head), and only the first samples of histogram series (blocks and head). Prometheus 3.5.3
/// (since 2.45: `tombstones.Intervals.Add` takes `len(in)` for `len(in)-mini` when trimming at
/// MaxInt64) panics ("index out of range [2] with length 2") on a query of a series with a
/// tombstone when the query's range ends before that tombstone and the series has chunks both
/// before its start and after its end: `rate(m[1m])` in a 3-minute block. The source would then
/// answer errors where home answers values. A deleted prefix merges with the front trim and
/// never does; nor do the instant queries of floats (5 minutes of lookback, blocks of 3).
fn delete(srv: &Server, s: &Starts) {
    let now = now_ms();
    srv.delete_series(
        r#"hist_native{kind="custom"}"#,
        Some((s.history, s.history + 90_000)),
    );
    srv.delete_series(
        r#"prometheus_http_request_duration_seconds{handler="/metrics"}"#,
        Some((s.scrapes, s.scrapes + 8_000)),
    );
    srv.delete_series(
        r#"hist_native{kind="head"}"#,
        Some((s.head_series, s.head_series + 5_000)),
    );
    srv.delete_series(
        r#"hist_gauge{idx="005"}"#,
        Some((s.history + 150_000, s.history + 200_000)),
    );
    srv.delete_series(r#"awk_deleted{k="1"}"#, None);
    srv.delete_series(
        r#"{__name__="awk_many",i=~"01."}"#,
        Some((now - 8_000, now - 3_000)),
    );
}

fn as_hist(v: Vec<TimeSeries>) -> Vec<HistSeries> {
    v.into_iter()
        .map(|s| HistSeries {
            labels: s.labels,
            samples: s.samples,
            histograms: Vec::new(),
        })
        .collect()
}

/// Native histograms on, out-of-order window 30m. History by remote write (the float history of
/// the other scenarios with histograms of every kind), out-of-order floats and histograms behind
/// blocks, scrapes of Prometheus itself over protobuf and of the awkward target with NHCB, a
/// histogram that vanishes, an outage, a restart onto a zstd WAL, a series turning histogram in
/// the head, deletions, out-of-order samples left in the wbl.
pub fn native_histograms(root: &Path, version: PromVersion) -> Fixture {
    assert_eq!(
        version,
        PromVersion::V3_5,
        "native histograms need Prometheus 3"
    );
    let data = scenario_dir(root, NAME, version);
    let target = Target::start();
    let empty = config(&[], Some("30m"));
    let mut srv = Server::start(version, &data, &empty, &[NATIVE_FLAG]);
    let start = history_start();
    let push = |k: i64| {
        let mut v = as_hist(history_minute(start, k));
        v.extend(histogram_minute(start, k));
        srv.remote_write_histograms(v);
    };
    push_minutes(&srv, start, 0, 5, push);
    srv.remote_write(ooo_batch(start, 60_000, 180_000, 5_000, &["000"], "early"));
    let all = ["exponential", "float", "custom"];
    srv.remote_write_histograms(ooo_histograms(start, 60_000, 180_000, 10_000, &all));
    push_minutes(&srv, start, 5, HISTORY_MINUTES, push);
    let scrapes = config(
        &awkward_jobs(&srv, &target, SELF_OPTIONS, TARGET_OPTIONS),
        Some("30m"),
    );
    let scrapes_from = now_ms();
    srv.reload(&scrapes);
    target.wait_scrapes(10);
    target.set(|s| s.phase = 1);
    target.wait_scrapes(5);
    target.set(|s| s.up = false);
    std::thread::sleep(Duration::from_secs(6));
    let outage_end = now_ms();
    target.set(|s| {
        s.up = true;
        s.phase = 2;
    });
    target.wait_scrapes(5);
    srv.restart(&[NATIVE_FLAG, "--storage.tsdb.wal-compression-type=zstd"]);
    target.wait_scrapes(3);
    // The head twin of hist_mixed turns histogram, in order, in the head; a histogram series
    // starts there.
    let now = now_ms();
    let head_from = now - 30_000;
    let in_head = |from: i64, n: i64| -> Vec<_> {
        (0..n)
            .map(|j| exponential(from, from + j * 1_000))
            .collect()
    };
    srv.remote_write_histograms(vec![
        hist_series(
            &[("__name__", "hist_mixed"), ("where", "head")],
            &[],
            in_head(now - 10_000, 10),
        ),
        hist_series(&native("head"), &[], in_head(head_from, 30)),
    ]);
    // The outage's markers (and scraped histograms) reach a block.
    srv.wait_head_min(outage_end + 1_000, Duration::from_secs(180));
    wait_mmapped_chunk(&mut srv);
    let starts = Starts {
        history: start,
        scrapes: scrapes_from,
        head_series: head_from,
    };
    delete(&srv, &starts);
    // Out of order behind the head, left in the wbl: 60 at 1 s (an m-mapped out-of-order chunk
    // of 32 and the rest in memory) of each kind and of a float series.
    srv.remote_write_histograms(ooo_histograms(start, 360_000, 420_000, 1_000, &all));
    srv.remote_write(ooo_batch(start, 360_000, 420_000, 1_000, &["004"], "late"));
    target.wait_scrapes(2);
    let appended = srv
        .metric("prometheus_tsdb_head_out_of_order_samples_appended_total")
        .unwrap_or(0.0);
    assert!(appended > 0.0, "{NAME}: no sample went out of order");
    srv.stop();
    let layout = Layout::scan(&data);
    check(&layout, NAME);
    let d = layout.describe();
    assert!(
        layout.blocks_with_tombstones() >= 1,
        "{NAME}: no tombstones in a block\n{d}"
    );
    assert!(
        layout.wbl_segments.iter().any(|s| s.1 > 0),
        "{NAME}: the wbl is empty\n{d}"
    );
    Fixture {
        name: NAME,
        version,
        data,
        serve_config: empty,
        how: format!(
            "--enable-feature=native-histograms, out_of_order_time_window 30m, WAL compression \
             snappy. History minutes 0-4 by remote write (from {start} ms): the float history of \
             stale_restart, and every 10 s hist_native{{kind=\"exponential\"}} (integer, schema 3, \
             0 from minute 7, zero and negative buckets, an empty bucket, a reset at minute 5, a \
             staleness marker at 210 s), {{kind=\"float\"}} (a float gauge histogram, schema 1), \
             {{kind=\"custom\"}} (NHCB, bounds 0.005/0.1/1/10, the same reset, a marker at 380 s), \
             hist_mixed{{where=\"block\"}} (floats, histograms from 270 s) and \
             {{where=\"head\"}} (floats); out-of-order floats (hist_gauge idx 000, \
             ooo_only{{batch=\"early\"}}) and histograms of the three kinds in minutes 1-3 \
             (out-of-order blocks, which block compaction then merges with the in-order ones); \
             history minutes 5-9; then 1 s scrapes of Prometheus itself over protobuf \
             (exponential histograms) and of the awkward target with \
             convert_classic_histograms_to_nhcb (awk_latency_seconds, awk_size_bytes: NHCB); \
             awk_size_bytes{{route=\"/b\"}} and awk_flappy vanish; a 6 s outage; a restart onto \
             a zstd WAL; hist_mixed{{where=\"head\"}} turns histogram for 10 s and \
             hist_native{{kind=\"head\"}} starts (30 s at 1 s); scrapes until the outage is in a \
             block and the head has m-mapped a chunk; deletions through the admin API (see \
             `delete` for why histograms lose only their first samples): \
             hist_native{{kind=\"custom\"}} its first 90 s (blocks), \
             prometheus_http_request_duration_seconds{{handler=\"/metrics\"}} its first 8 s, \
             hist_native{{kind=\"head\"}} its first 5 s (head), hist_gauge{{idx=\"005\"}} \
             150-200 s (blocks), awk_deleted{{k=\"1\"}} whole, awk_many{{i=~\"01.\"}} for 5 s \
             (head); out-of-order samples left in the wbl: 60 at 1 s in minute 6 of each \
             histogram kind, hist_gauge idx 004 and ooo_only{{batch=\"late\"}}; 2 more scrapes; \
             SIGTERM."
        ),
        layout,
        build_time: Duration::ZERO,
    }
}
