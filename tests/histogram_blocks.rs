//! prom2om's block writer against real Prometheus servers: native histograms of every kind
//! (integer and float, exponential and with custom buckets, a gauge, staleness markers, counter
//! resets, a schema change) and a series that changes type, written as one block, answer on a
//! Prometheus serving that block exactly as on a Prometheus that received the same samples by
//! remote write: raw series, `histogram_quantile` over `rate`, `histogram_count`,
//! `histogram_sum` and the floats, at every instant 5 s apart and 5 minutes after. Prometheus
//! 3.5.3 with every kind; 2.42 with what it reads (no custom buckets before 2.54). The same
//! samples through a shard directory and `prom2om import --tsdb` (no promtool on PATH) answer
//! alike too; a home too old for what the shards hold is refused before anything is written,
//! and `import --promtool` says how many histograms it leaves out.

mod common;
#[path = "common/nativehist.rs"]
#[allow(dead_code)]
mod nativehist;
#[path = "common/promdir.rs"]
#[allow(dead_code)]
mod promdir;
#[path = "common/truth.rs"]
#[allow(dead_code)]
mod truth;

use std::path::Path;

use common::{prom2om, run, tool_of, Prom, PromVersion};
use nativehist::{custom, exponential, float_gauge, hist_series, stale, HistSeries};
use prom2om::format::histogram::HistogramValue;
use prom2om::format::tsdb::block_writer::BlockWriter;
use prom2om::labels::Labels;
use prom2om::pipeline::feed::{Provenance, SampleSink};
use prost::Message;
use truth::{compare, histogram_queries, instants, raw_samples, Scope};

/// The head's chunk range of a default Prometheus (2h blocks): the block is cut as its head
/// cuts the pushed samples.
const CHUNK_RANGE: i64 = 7_200_000;
const STEP: i64 = 10_000;
/// Ten minutes of samples.
const SAMPLES: i64 = 60;

/// The sample of a series at one time: a float's bits or a histogram.
enum Point {
    Float(u64),
    Hist(Box<nativehist::Histogram>),
}

/// A series: its labels and samples.
type Series = (Vec<(&'static str, &'static str)>, Vec<(i64, Point)>);

/// Each series' samples in time order: the pushed histogram kinds (the integer ones reset at
/// minute 5, the exponential one changes schema at minute 7, staleness markers in two), and a
/// series that is a float, then a histogram, then a float again.
fn history(start: i64, with_custom: bool) -> Vec<Series> {
    let times: Vec<i64> = (0..SAMPLES).map(|i| start + i * STEP).collect();
    let kind = |f: fn(i64, i64) -> nativehist::Histogram, marker: Option<i64>| {
        times
            .iter()
            .map(|&t| {
                let h = if Some(t) == marker {
                    stale(t)
                } else {
                    f(start, t)
                };
                (t, Point::Hist(Box::new(h)))
            })
            .collect::<Vec<_>>()
    };
    let mut out = vec![
        (
            vec![("__name__", "hb_native"), ("kind", "exponential")],
            kind(exponential, Some(start + 210_000)),
        ),
        (
            vec![("__name__", "hb_native"), ("kind", "float")],
            kind(float_gauge, None),
        ),
    ];
    if with_custom {
        out.push((
            vec![("__name__", "hb_native"), ("kind", "custom")],
            kind(custom, Some(start + 380_000)),
        ));
    }
    let mixed = times
        .iter()
        .map(|&t| {
            let i = (t - start) / STEP;
            let p = if (20..40).contains(&i) {
                Point::Hist(Box::new(exponential(start, t)))
            } else {
                Point::Float((i as f64 * 0.5).to_bits())
            };
            (t, p)
        })
        .collect();
    out.push((vec![("__name__", "hb_mixed")], mixed));
    out
}

/// The histogram as prom2om's model, through remote write's bytes (prom2om's own message).
fn model(h: &nativehist::Histogram) -> HistogramValue {
    prom2om::format::prompb::Histogram::decode(&h.encode_to_vec()[..])
        .unwrap()
        .to_model()
}

/// Pushes each series, a request per run of one kind (a receiver appends a request's floats
/// before its histograms), in time order.
fn push(prom: &Prom, series: &[Series]) {
    for (labels, points) in series {
        let mut runs: Vec<HistSeries> = Vec::new();
        for (t, p) in points {
            let hist = matches!(p, Point::Hist(_));
            let same = runs
                .last()
                .is_some_and(|r: &HistSeries| r.histograms.is_empty() != hist);
            if !same {
                runs.push(hist_series(labels, &[], Vec::new()));
            }
            let r = runs.last_mut().unwrap();
            match p {
                Point::Float(v) => r.samples.push(prom2om::fetch::remote_read::Sample {
                    value: f64::from_bits(*v),
                    timestamp: *t,
                }),
                Point::Hist(h) => r.histograms.push((**h).clone()),
            }
        }
        for r in runs {
            let body = snap::raw::Encoder::new()
                .compress_vec(
                    &nativehist::HistWriteRequest {
                        timeseries: vec![r],
                    }
                    .encode_to_vec(),
                )
                .unwrap();
            let resp = ureq::post(format!("{}/api/v1/write", prom.url()))
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .send(&body[..])
                .unwrap();
            assert!(resp.status().is_success());
        }
    }
}

/// The same samples as one block in `data` (prom2om's writer, as `import --tsdb` uses it).
fn write_block(data: &Path, series: &[Series]) {
    let mut w = BlockWriter::new(CHUNK_RANGE);
    for (labels, points) in series {
        w.start_series(Labels::from_pairs(labels.iter().copied()))
            .unwrap();
        for (t, p) in points {
            match p {
                Point::Float(v) => w.append(*t, *v).unwrap(),
                Point::Hist(h) => w.append_histogram(*t, &model(h)).unwrap(),
            }
        }
    }
    std::fs::create_dir_all(data).unwrap();
    prom2om::import::build::write_block(w, data).unwrap();
}

/// The same samples as a shard directory in `dir`, through the real sink (`--stale carry`, 2h
/// windows, two shards each): floats in the shards, histograms and markers in side files.
fn write_shards(dir: &Path, series: &[Series]) {
    let mut sink = common::carry_sink(dir, CHUNK_RANGE, Some(2));
    for (labels, points) in series {
        let l = Labels::from_pairs(labels.iter().copied());
        let id = sink.series(l, Provenance::EXACT).unwrap();
        for (t, p) in points {
            match p {
                Point::Float(v) => sink.float(id, *t, *v).unwrap(),
                Point::Hist(h) => sink.histogram(id, *t, &model(h)).unwrap(),
            }
        }
    }
    common::finish_carry(sink);
}

/// A PATH of one directory holding only `prometheus` of `version` (no promtool): the home
/// version `import` finds.
fn path_with_prometheus(tmp: &Path, version: Option<PromVersion>) -> std::path::PathBuf {
    let bin = tmp.join(format!("bin-{}", version.map_or("none", |v| v.number())));
    std::fs::create_dir_all(&bin).unwrap();
    if let Some(v) = version {
        std::os::unix::fs::symlink(tool_of(v, "prometheus"), bin.join("prometheus")).unwrap();
    }
    bin
}

/// `prom2om import SHARDS --tsdb HOME` with `path` as its PATH, and `extra` arguments.
fn import(shards: &Path, home: &Path, path: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut c = prom2om();
    c.arg("import")
        .arg(shards)
        .arg("--tsdb")
        .arg(home)
        .args(extra)
        .env("PATH", path);
    run(c)
}

/// Histogram samples and their markers of `series` (what the side files hold).
fn histograms_of(series: &[Series]) -> (u64, u64) {
    let mut n = (0, 0);
    for (_, points) in series {
        for (_, p) in points {
            if let Point::Hist(h) = p {
                match model(h).is_stale() {
                    true => n.1 += 1,
                    false => n.0 += 1,
                }
            }
        }
    }
    n
}

fn block_answers_like_pushed_samples(version: PromVersion, with_custom: bool) {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let flags = [
        "--web.enable-remote-write-receiver",
        "--enable-feature=native-histograms",
    ];
    let pushed = Prom::start_version(version, &tmp.path().join("pushed"), &flags);
    // An hour back: inside an empty head's appendable range, and a block that ends in the past.
    let start = (promdir::now_ms() - 3_600_000).div_euclid(60_000) * 60_000;
    let series = history(start, with_custom);
    push(&pushed, &series);
    let home_dir = tmp.path().join("home");
    write_block(&home_dir, &series);
    // Blocks are read without the feature flag: a home server needs none.
    let home = Prom::start_version(version, &home_dir, &[]);
    // Through a shard directory and `import --tsdb`, a prometheus of the version on PATH.
    let shards = tmp.path().join("shards");
    write_shards(&shards, &series);
    let imported_dir = tmp.path().join("imported");
    let path = path_with_prometheus(tmp.path(), Some(version));
    let (code, out, err) = import(&shards, &imported_dir, &path, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (h, hm) = histograms_of(&series);
    let floats = SAMPLES as u64 * (series.len() as u64) - h - hm;
    let markers = if hm == 1 { "marker" } else { "markers" };
    assert!(
        out.contains(&format!(
            "{floats} samples, {h} histogram samples and {hm} histogram staleness {markers} moved"
        )),
        "{out}"
    );
    let imported = Prom::start_version(version, &imported_dir, &[]);

    let end = start + (SAMPLES - 1) * STEP;
    let raw = |p: &Prom| raw_samples(p, r#"{__name__=~"hb_.*"}"#, start - 1, end);
    let want = raw(&pushed);
    assert_eq!(raw(&home), want, "raw samples");
    assert_eq!(raw(&imported), want, "raw samples imported");
    let n: usize = want.values().map(Vec::len).sum();
    // The markers are no samples to the API.
    let markers = if with_custom { 2 } else { 1 };
    assert_eq!(n as i64, series.len() as i64 * SAMPLES - markers);

    let mut queries: Vec<String> = histogram_queries("hb_native");
    queries.extend(histogram_queries("hb_mixed"));
    queries.push("hb_mixed".into());
    queries.push("rate(hb_mixed[1m])".into());
    let at = instants((start - 5_000, end + 300_000), 5_000);
    let m = compare(&pushed, &home, &queries, &at, Scope::All);
    assert_eq!(m.bad, 0, "{}", m.first);
    assert_eq!(m.source_errors, 0);
    let m = compare(&pushed, &imported, &queries, &at, Scope::All);
    assert_eq!(m.bad, 0, "imported: {}", m.first);
    // The answers hold histograms and quantiles, not only empty vectors.
    let kinds = want
        .iter()
        .filter(|(_, v)| v.iter().any(|s| s.1.is_histogram()))
        .count();
    assert_eq!(kinds, series.len());
    let quantile = "histogram_quantile(0.9, rate(hb_native[1m]))";
    let answered = at.iter().any(|&t| {
        truth::instant(&home, quantile, t)
            .values()
            .any(|v| matches!(v, truth::Value::Float(x) if x != "NaN"))
    });
    assert!(answered, "{quantile}: no number");
    eprintln!(
        "Prometheus {}: {n} raw samples alike; {} queries × instants answered alike",
        version.number(),
        m.total
    );
}

#[test]
fn a_block_of_histograms_answers_on_3_5_like_the_pushed_samples() {
    block_answers_like_pushed_samples(PromVersion::V3_5, true);
}

#[test]
fn a_block_of_histograms_answers_on_2_42_like_the_pushed_samples() {
    block_answers_like_pushed_samples(PromVersion::V2_42, false);
}

/// Whether `dir` holds a block (a directory with a meta.json).
fn has_blocks(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|d| d.flatten().any(|e| e.path().join("meta.json").is_file()))
}

#[test]
fn a_2_42_home_refuses_custom_buckets_before_anything_is_written() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let start = (promdir::now_ms() - 3_600_000).div_euclid(60_000) * 60_000;
    let shards = tmp.path().join("shards");
    write_shards(&shards, &history(start, true));
    // The prometheus on PATH is 2.42: the shards' NHCB need 2.54.
    let home = tmp.path().join("home");
    let path = path_with_prometheus(tmp.path(), Some(PromVersion::V2_42));
    let (code, out, err) = import(&shards, &home, &path, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    // 60 custom-bucket samples less the one that is a marker (schema 0, as Prometheus writes
    // a marker).
    for want in [
        "include 59 native histograms with custom buckets (NHCB), which Prometheus reads from \
         2.54.0 on; the prometheus on PATH (",
        ") is 2.42.0",
        "--promtool",
        "Nothing was imported",
    ] {
        assert!(err.contains(want), "no {want:?} in\n{err}");
    }
    assert!(!home.exists(), "the data dir was created");
    // A 2.42 running on the data dir (--force) is the reader, whatever is on PATH.
    std::fs::create_dir_all(&home).unwrap();
    let running = Prom::start_version(PromVersion::V2_42, &home, &[]);
    let none = path_with_prometheus(tmp.path(), None);
    let (code, out, err) = import(&shards, &home, &none, &["--force"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("prometheus running on"), "{err}");
    assert!(err.contains(") is 2.42.0. Serve the data dir"), "{err}");
    drop(running);
    assert!(!has_blocks(&home), "a block was written");
    // Without the custom buckets 2.42 reads them all (float histograms from 2.42.0).
    let shards = tmp.path().join("shards-no-nhcb");
    write_shards(&shards, &history(start, false));
    let (code, out, err) = import(&shards, &home, &path, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(has_blocks(&home));
}

#[test]
fn import_with_promtool_says_how_many_histograms_it_leaves_out() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let start = (promdir::now_ms() - 3_600_000).div_euclid(60_000) * 60_000;
    let shards = tmp.path().join("shards");
    let series = history(start, true);
    write_shards(&shards, &series);
    let home = tmp.path().join("home");
    let promtool = format!("--promtool={}", common::promtool().display());
    let path = path_with_prometheus(tmp.path(), None);
    let (code, out, err) = import(&shards, &home, &path, &[&promtool]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (h, hm) = histograms_of(&series);
    assert!(
        err.contains(&format!(
            "warning: {} native histogram samples (markers included) in the shards' side files \
             are not imported: promtool's backfill",
            h + hm
        )),
        "{err}"
    );
    // The floats only: hb_mixed's, one block per 2 h window they fall in (the hour before now
    // crosses a window boundary at some times of day).
    let floats: Vec<i64> = series
        .iter()
        .flat_map(|s| &s.1)
        .filter(|p| matches!(p.1, Point::Float(_)))
        .map(|p| p.0)
        .collect();
    let mut windows: Vec<i64> = floats.iter().map(|t| t.div_euclid(7_200_000)).collect();
    windows.dedup();
    let blocks = match windows.len() {
        1 => "1 block".to_string(),
        n => format!("{n} blocks"),
    };
    let want = format!("; {blocks}, {} samples moved", floats.len());
    assert!(out.contains(&want), "no {want:?} in\n{out}");
}
