//! prom2om's block writer against real Prometheus servers: native histograms of every kind
//! (integer and float, exponential and with custom buckets, a gauge, staleness markers, counter
//! resets, a schema change) and a series that changes type, written as one block, answer on a
//! Prometheus serving that block exactly as on a Prometheus that received the same samples by
//! remote write: raw series, `histogram_quantile` over `rate`, `histogram_count`,
//! `histogram_sum` and the floats, at every instant 5 s apart and 5 minutes after. Prometheus
//! 3.5.3 with every kind; 2.42 with what it reads (no custom buckets before 2.54).

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

use common::{Prom, PromVersion};
use nativehist::{custom, exponential, float_gauge, hist_series, stale, HistSeries};
use prom2om::format::histogram::HistogramValue;
use prom2om::format::tsdb::block_writer::BlockWriter;
use prom2om::labels::Labels;
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

    let end = start + (SAMPLES - 1) * STEP;
    let raw = |p: &Prom| raw_samples(p, r#"{__name__=~"hb_.*"}"#, start - 1, end);
    let want = raw(&pushed);
    assert_eq!(raw(&home), want, "raw samples");
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
