//! `import --remote-write` of native histograms: a data dir a Prometheus 3.5.3 wrote with
//! integer, float (gauge) and NHCB histograms, their staleness markers, a series that changed
//! type and floats, converted to shards, pushed into a Prometheus 3.5.3 receiver (remote write
//! 2.0) that then answers as the source at every instant, also after a push killed part-way and a
//! lost answer; into 2.42 (1.0: NHCB left out, counted); into VictoriaMetrics 1.145 (refused
//! without --skip-histograms). The data dir is made in seconds (history by remote write into a
//! fresh server, which is then stopped): the shared fixtures take minutes.

mod common;
mod fetch_support;
#[path = "common/nativehist.rs"]
#[allow(dead_code)]
mod nativehist;
#[path = "common/promdir.rs"]
#[allow(dead_code)]
mod promdir;
mod rw_support;
#[path = "common/truth.rs"]
#[allow(dead_code)]
mod truth;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{prom2om, run, run_ok, sid_tool, Prom, PromVersion};
use fetch_support::{Fault, Proxy};
use nativehist::{custom, exponential, float_gauge, hist_series, stale, HistSeries};
use promdir::{copy_dir, now_ms, Server, REAL_NAN, STALE_NAN};
use rw_support::Vm;
use truth::{
    compare, counts, histogram_queries, histogram_series, instants, metric_names,
    raw_samples_sliced, Labels, Scope,
};

const ALL: &str = r#"{__name__=~".+"}"#;
/// Minutes of history.
const MINUTES: i64 = 10;

/// Minute `k` of the history, every 10 s: the three kinds of histogram (a staleness marker in
/// two), `hist_mixed` (floats, then histograms from 4.5 minutes in) and six float series (one
/// with a real NaN, one with a staleness marker and back).
fn minute(start: i64, k: i64) -> Vec<HistSeries> {
    let times: Vec<i64> = (0..6).map(|j| start + k * 60_000 + j * 10_000).collect();
    let with_stale = |f: fn(i64, i64) -> nativehist::Histogram, at: i64| {
        let hs = times
            .iter()
            .map(|&t| if t == at { stale(t) } else { f(start, t) });
        hs.collect::<Vec<_>>()
    };
    let native = |kind| [("__name__", "hist_native"), ("kind", kind)];
    let mixed_from = start + 270_000;
    let (mixed_f, mixed_h): (Vec<i64>, Vec<i64>) = times.iter().partition(|&&t| t < mixed_from);
    let mut v = vec![
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
            &[("__name__", "hist_mixed")],
            &mixed_f
                .iter()
                .map(|&t| (t, ((t - start) as f64 / 4_000.0).to_bits()))
                .collect::<Vec<_>>(),
            mixed_h
                .iter()
                .map(|&t| exponential(mixed_from, t))
                .collect(),
        ),
    ];
    for i in 0..6 {
        let idx = i.to_string();
        let floats: Vec<(i64, u64)> = times
            .iter()
            .map(|&t| {
                let bits = match (i, t - start) {
                    (1, 200_000) => REAL_NAN,
                    (2, 300_000) => STALE_NAN,
                    _ => ((t - start) as f64 * 0.001 + i as f64).to_bits(),
                };
                (t, bits)
            })
            .collect();
        v.push(hist_series(
            &[("__name__", "plain"), ("i", idx.as_str())],
            &floats,
            Vec::new(),
        ));
    }
    v
}

/// A 3.5.3 data dir holding the history (in its WAL), the server stopped.
fn source_dir(work: &Path) -> PathBuf {
    let data = work.join("source");
    std::fs::create_dir_all(&data).unwrap();
    let config = "global:\n  scrape_interval: 15s\nscrape_configs: []\n";
    let mut srv = Server::start(
        PromVersion::V3_5,
        &data,
        config,
        &["--enable-feature=native-histograms"],
    );
    let start = (now_ms() - (MINUTES + 3) * 60_000) / 60_000 * 60_000;
    for k in 0..MINUTES {
        srv.remote_write_histograms(minute(start, k));
    }
    srv.stop();
    data
}

/// The flags of a receiver: 3.5 and 2.42 store native histograms only with the feature on
/// (without it 3.5.3 refuses them: "native histograms are disabled").
const RECEIVER: &[&str] = &[
    "--web.enable-remote-write-receiver",
    "--enable-feature=native-histograms",
];
/// Prometheus's lookback: a series answers this long after its last sample unless a marker
/// ends it.
const LOOKBACK_MS: i64 = 300_000;

/// The data dir converted to a shard directory (default: markers carried).
fn shards(data: &Path, work: &Path) -> PathBuf {
    let dir = work.join("shards");
    run_ok(
        prom2om()
            .arg("convert")
            .arg(data)
            .arg("-q")
            .arg("-o")
            .arg(&dir),
    );
    dir
}

/// The source data dir, its shards, and a server on a copy of it.
fn source(work: &Path) -> (PathBuf, Prom) {
    let data = source_dir(work);
    let dir = shards(&data, work);
    let copy = work.join("source-copy");
    copy_dir(&data, &copy);
    (dir, Prom::start_version(PromVersion::V3_5, &copy, &[]))
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn push(dir: &Path, write_url: &str, args: &[&str]) -> (i32, String, String) {
    let mut c = prom2om();
    c.arg("import")
        .arg(dir)
        .arg("--remote-write")
        .arg(write_url)
        .args(args);
    run(c)
}

/// The source and `home` answer alike: every series at instants 5 s apart from the first
/// sample to a lookback after the last, and per histogram metric the raw series,
/// histogram_quantile over rate, histogram_count and histogram_sum 15 s apart.
fn answers_as_the_source(source: &Prom, home: &Prom, dir: &Path, what: &str) {
    let t = &manifest(dir)["totals"];
    let (min, max) = (
        t["min_ts_ms"].as_i64().unwrap(),
        t["max_ts_ms"].as_i64().unwrap(),
    );
    let window = (min - 5_000, max + LOOKBACK_MS);
    let m = compare(
        source,
        home,
        &[ALL.into()],
        &instants(window, 5_000),
        Scope::All,
    );
    assert!(m.total > 100, "{what}: {} instants", m.total);
    assert_eq!(
        m.bad, 0,
        "{what}: {} of {} differ; first {}",
        m.bad, m.total, m.first
    );
    let samples = raw_samples_sliced(source, ALL, (min - 1_000, max), 300_000);
    let hist = histogram_series(&samples);
    let names = metric_names(
        &samples
            .into_iter()
            .filter(|(k, _)| hist.contains(k))
            .collect(),
    );
    let queries: Vec<String> = names.iter().flat_map(|m| histogram_queries(m)).collect();
    let m = compare(
        source,
        home,
        &queries,
        &instants(window, 15_000),
        Scope::All,
    );
    assert_eq!(
        m.bad, 0,
        "{what}: {} of {} differ; first {}",
        m.bad, m.total, m.first
    );
    assert_eq!(m.source_errors, 0, "{what}: the source answered errors");
    eprintln!(
        "{what}: every series and {} histogram queries of {} metrics alike",
        m.total,
        names.len()
    );
}

/// Into 3.5.3 over remote write 2.0, then the same again with a kill part-way and a lost
/// answer after it: both receivers answer as the source.
#[test]
fn a_3_5_receiver_answers_as_the_source() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (dir, source) = source(tmp.path());
    let t = manifest(&dir)["totals"].clone();
    let hist = t["histogram_samples"].as_u64().unwrap();
    assert!(
        hist > 100 && t["histogram_stale_markers"].as_u64() == Some(2),
        "{t}"
    );

    let home = Prom::start_version(PromVersion::V3_5, &tmp.path().join("home"), RECEIVER);
    let write = format!("{}/api/v1/write", home.url());
    let verify = home.url();
    let args = ["--batch-samples", "20", "--verify-url", &verify];
    let (code, out, err) = push(&dir, &write, &args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains(
            "the receiver is Prometheus 3.5.3, which takes remote write 2.0: native histograms \
             and floats pushed over remote write 2.0"
        ),
        "{err}"
    );
    let summary = out.lines().find(|l| l.starts_with("pushed ")).expect(&out);
    assert!(
        summary.contains(&format!("{hist} histogram samples")),
        "{summary}"
    );
    assert!(
        out.contains("all hold exactly the manifest's count") && out.contains("histogram sample"),
        "{out}"
    );
    let requests: usize = summary
        .split("samples/s; ")
        .nth(1)
        .and_then(|r| r.split(" requests").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {summary}"));
    answers_as_the_source(&source, &home, &dir, "3.5.3 home");

    // Killed near the end (the histogram-only series come last in each shard), each answer
    // 60 ms late after the receiver stored the request; then the rerun's first request
    // after the probe (number 0) loses its answer.
    let home2 = Prom::start_version(PromVersion::V3_5, &tmp.path().join("home2"), RECEIVER);
    let slow = Proxy::start_writes(home2.port, |_| Fault::SlowAnswer(Duration::from_millis(60)));
    let kill_after = requests.saturating_sub(3).max(2);
    let verify2 = home2.url();
    let args2 = ["--batch-samples", "20", "--verify-url", &verify2];
    let mut child = prom2om()
        .arg("import")
        .arg(&dir)
        .arg("--remote-write")
        .arg(format!("{}/api/v1/write", slow.url()))
        .args(args2)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while slow.requests.load(Ordering::Relaxed) < kill_after {
        assert!(Instant::now() < deadline, "the push never got that far");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let lossy = Proxy::start_writes(home2.port, |n| match n {
        1 => Fault::Truncate(0),
        _ => Fault::Pass,
    });
    let (code, out, err) = push(&dir, &format!("{}/api/v1/write", lossy.url()), &args2);
    assert_eq!(code, 0, "killed after {kill_after}: {out}\n{err}");
    let summary = out.lines().find(|l| l.starts_with("pushed ")).expect(&out);
    assert!(
        summary.contains("whose fate was unknown asked about"),
        "{summary}"
    );
    assert!(
        out.contains("all hold exactly the manifest's count"),
        "{out}"
    );
    eprintln!("killed after {kill_after} of {requests} requests; the rerun: {summary}");
    answers_as_the_source(&source, &home2, &dir, "3.5.3 home after a kill");
}

/// 2.42 takes remote write 1.0 only: integer and float histograms go in 1.0's histograms
/// field, the NHCB are left out and counted; --verify-url holds it to exactly that.
#[test]
fn a_2_42_receiver_takes_all_but_custom_buckets() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = shards(&source_dir(tmp.path()), tmp.path());
    let home = Prom::start_version(PromVersion::V2_42, &tmp.path().join("home"), RECEIVER);
    let write = format!("{}/api/v1/write", home.url());
    let verify = home.url();
    let (code, out, err) = push(&dir, &write, &["--verify-url", &verify]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("Prometheus 2.42.0 takes remote write 1.0 only")
            && err.contains("(NHCB), which need remote write 2.0 (2.54.0 on), are left out"),
        "{err}"
    );
    assert!(
        err.contains("native histogram samples and markers of the shards pushed now were left out"),
        "{err}"
    );
    assert!(
        out.contains("all hold exactly the manifest's count"),
        "{out}"
    );
    // The exponential ones are there, the NHCB are not.
    let (from, to) = (
        manifest(&dir)["totals"]["min_ts_ms"].as_i64().unwrap() - 1_000,
        now_ms(),
    );
    let got = counts(&raw_samples_sliced(&home, ALL, (from, to), 300_000));
    let hist_of = |pred: &dyn Fn(&Labels) -> bool| -> u64 {
        got.iter()
            .filter(|(k, _)| pred(k))
            .map(|(_, c)| c.histograms)
            .sum()
    };
    let kind = |k: &Labels, kind: &str| k.get("kind").map(String::as_str) == Some(kind);
    assert!(hist_of(&|k| kind(k, "exponential")) > 0);
    assert!(hist_of(&|k| kind(k, "float")) > 0);
    assert!(hist_of(&|k| k["__name__"] == "hist_mixed") > 0);
    assert_eq!(hist_of(&|k| kind(k, "custom")), 0);
}

fn vm_145() -> Vm {
    Vm::start_bin(&sid_tool("victoria-metrics"), &[])
}

/// VictoriaMetrics keeps no native histogram: refused before anything is sent, unless
/// --skip-histograms, with which the floats are pushed and verified exactly.
#[test]
fn victoriametrics_is_refused_without_skip_histograms() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = shards(&source_dir(tmp.path()), tmp.path());
    let vm = vm_145();
    let write = format!("http://127.0.0.1:{}/api/v1/write", vm.port);
    let verify = format!("http://127.0.0.1:{}", vm.port);
    let (code, out, err) = push(&dir, &write, &["--verify-url", &verify]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("the receiver is VictoriaMetrics, which keeps no native histogram")
            && err.contains("pass --skip-histograms"),
        "{err}"
    );
    assert!(!out.contains("pushed"), "{out}");
    let (code, out, err) = push(
        &dir,
        &write,
        &["--verify-url", &verify, "--skip-histograms"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("are not pushed (--skip-histograms)"), "{err}");
    assert!(
        out.contains("all hold exactly the manifest's count less its"),
        "{out}"
    );
    let summary = out.lines().find(|l| l.starts_with("pushed ")).expect(&out);
    assert!(!summary.contains("histogram sample"), "{summary}");
}

/// Prometheus 3.5 stores native histograms only with the feature flag: without it the push
/// fails on the first histogram (a 500, not retried) with the receiver's words and the flag to
/// start it with.
#[test]
fn a_3_5_receiver_without_the_feature_flag_says_which_flag() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = shards(&source_dir(tmp.path()), tmp.path());
    let home = Prom::start_version(
        PromVersion::V3_5,
        &tmp.path().join("home"),
        &["--web.enable-remote-write-receiver"],
    );
    let write = format!("{}/api/v1/write", home.url());
    let (code, out, err) = push(&dir, &write, &["--verify-url", &home.url()]);
    assert_eq!(code, 1, "{out}\n{err}");
    let failed = out.lines().find(|l| l.starts_with("FAILED")).expect(&out);
    assert!(
        failed.contains("native histograms are disabled")
            && failed
                .contains("start the receiving Prometheus with --enable-feature=native-histograms"),
        "{failed}"
    );
    assert!(!failed.contains("giving up after"), "{failed}");
}
