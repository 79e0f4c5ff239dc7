//! Native histograms carried beside the shards: shard directories written by the real sink with
//! integer, float and custom-bucket histograms, histogram staleness markers, a series that
//! changes type and a window of histograms only; `verify` accepts them and names each kind of
//! damage to their side files, `inspect` and the shard directory's reader count them apart.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{prom2om, run};
use prom2om::format::histogram::{
    CounterResetHint, FloatHistogram, Histogram, HistogramValue, Span,
};
use prom2om::format::histtext;
use prom2om::format::openmetrics::{write_series_prefix, EOF_LINE};
use prom2om::format::shard_dir::{
    series_hash, sha256_hex, Manifest, ShardDir, Value, MANIFEST_FILE, SIDECAR_NATIVE_HISTOGRAMS,
};
use prom2om::format::tsdb::xor::STALE_NAN_BITS;
use prom2om::labels::Labels;
use prom2om::pipeline::feed::{Provenance, SampleSink};

const H2: i64 = 7_200_000;
const STEP: i64 = 15_000;

fn labels(name: &str, i: u32) -> Labels {
    Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())])
}

/// A sample of the source.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    F(u64),
    H(HistogramValue),
}

type Source = BTreeMap<Labels, BTreeMap<i64, Val>>;

fn exponential(k: u64) -> HistogramValue {
    HistogramValue::Int(Histogram {
        hint: if k == 0 {
            CounterResetHint::CounterReset
        } else {
            CounterResetHint::NotCounterReset
        },
        schema: 3,
        zero_threshold: 2.938735877055719e-39f64.to_bits(),
        zero_count: k,
        count: 3 * k + 2,
        sum: (k as f64 * 0.125).to_bits(),
        negative_spans: vec![Span {
            offset: 2,
            length: 1,
        }],
        negative_buckets: vec![1],
        positive_spans: vec![
            Span {
                offset: -1,
                length: 2,
            },
            Span {
                offset: 4,
                length: 0,
            },
            Span {
                offset: 1,
                length: 1,
            },
        ],
        positive_buckets: vec![k as i64, 1, -1],
        custom_values: Vec::new(),
    })
}

fn nhcb(k: u64) -> HistogramValue {
    HistogramValue::Float(FloatHistogram {
        hint: CounterResetHint::Gauge,
        schema: -53,
        count: (k as f64 + 0.5).to_bits(),
        sum: (-0.0f64).to_bits(),
        positive_spans: vec![Span {
            offset: 0,
            length: 4,
        }],
        positive_buckets: vec![
            0,
            (k as f64).to_bits(),
            5e-324f64.to_bits(),
            0.5f64.to_bits(),
        ],
        custom_values: vec![
            0.005f64.to_bits(),
            0.1f64.to_bits(),
            f64::INFINITY.to_bits(),
        ],
        ..FloatHistogram::default()
    })
}

/// Three 2h windows from `t0`: float series `a`; exponential histograms `h` that stop with a
/// marker in window 1; custom-bucket float histograms `n` in window 2 only (a window of
/// histograms only: its shard holds 0 samples); `t`, a metric that changes from floats to
/// histograms in window 0, a float marker between; 20 histogram series `z` so that shard
/// assignment matters.
fn source(t0: i64) -> Source {
    let mut s = Source::new();
    for (k, t) in (t0..t0 + H2).step_by(STEP as usize).enumerate() {
        s.entry(labels("a", 0))
            .or_default()
            .insert(t, Val::F((k as f64).to_bits()));
    }
    let h = s.entry(labels("h", 1)).or_default();
    for (k, t) in (t0 + H2 / 2..t0 + 3 * H2 / 2)
        .step_by(STEP as usize)
        .enumerate()
    {
        h.insert(t, Val::H(exponential(k as u64)));
    }
    h.insert(
        t0 + 3 * H2 / 2 + 5_000,
        Val::H(HistogramValue::Int(Histogram::stale())),
    );
    let n = s.entry(labels("n", 2)).or_default();
    for (k, t) in (t0 + 2 * H2 + 7..t0 + 3 * H2).step_by(60_000).enumerate() {
        n.insert(t, Val::H(nhcb(k as u64)));
    }
    let t = s.entry(labels("t", 3)).or_default();
    for k in 0..10 {
        t.insert(t0 + k * STEP, Val::F(1f64.to_bits()));
    }
    t.insert(t0 + 10 * STEP, Val::F(STALE_NAN_BITS));
    for k in 11..20 {
        t.insert(t0 + k * STEP, Val::H(exponential(k as u64)));
    }
    for i in 0..20 {
        let z = s.entry(labels("z", 100 + i)).or_default();
        for k in 0..30 {
            z.insert(
                t0 + i as i64 * 100 + k * STEP,
                Val::H(exponential(k as u64)),
            );
        }
    }
    s
}

/// Writes `src` through the real sink (`--stale carry`) into `dir`.
fn write_shards(src: &Source, dir: &Path, shards: Option<u32>) {
    let mut sink = common::carry_sink(dir, H2, shards);
    for (l, s) in src {
        let id = sink.series(l.clone(), Provenance::EXACT).unwrap();
        for (&t, v) in s {
            match v {
                Val::F(bits) => sink.float(id, t, *bits).unwrap(),
                Val::H(h) => sink.histogram(id, t, h).unwrap(),
            }
        }
    }
    common::finish_carry(sink);
}

fn t0() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now.div_euclid(H2) * H2 - 3 * H2
}

/// Everything the directory holds, through the one reader (every point of every shard).
fn read_back(dir: &Path) -> Source {
    let sd = ShardDir::open(dir).unwrap();
    let mut out = Source::new();
    for i in 0..sd.manifest().shards.len() {
        sd.read_points(i, |p| {
            let v = match p.value {
                Value::Float(v) => Val::F(v.to_bits()),
                Value::StaleMarker => Val::F(STALE_NAN_BITS),
                Value::Histogram(h) => Val::H(h.clone()),
            };
            let prev = out.entry(p.labels.clone()).or_default().insert(p.ts_ms, v);
            assert!(prev.is_none(), "one point per timestamp");
            Ok(())
        })
        .unwrap();
    }
    out
}

fn load(dir: &Path) -> Manifest {
    Manifest::load(dir).unwrap()
}

fn save(dir: &Path, m: &Manifest) {
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(m).unwrap(),
    )
    .unwrap();
}

fn verify(dir: &Path) -> (i32, String, String) {
    let mut c = prom2om();
    c.arg("verify").arg(dir);
    run(c)
}

fn assert_fails(dir: &Path, what: &str, want: &[&str]) {
    let (code, out, err) = verify(dir);
    assert_eq!(code, 1, "{what}: verify should fail\n{out}\n{err}");
    for w in want {
        assert!(err.contains(w), "{what}: no {w:?} in\n{err}");
    }
}

/// The manifest index and side-file index of the histograms' side file of window `w`'s shard
/// that has one.
fn hist_side(m: &Manifest, t0: i64, w: i64) -> (usize, usize) {
    for (i, e) in m.shards.iter().enumerate() {
        if e.window_start_ms != t0 + w * H2 {
            continue;
        }
        if let Some(j) = e
            .sidecars
            .iter()
            .position(|s| s.kind == SIDECAR_NATIVE_HISTOGRAMS)
        {
            return (i, j);
        }
    }
    panic!("no histograms' side file in window {w}");
}

/// Replaces the text of side file `(i, j)` and makes its entry agree with the new bytes (counts
/// too), so that only what the text says is wrong.
fn rewrite_side(dir: &Path, (i, j): (usize, usize), text: &[u8]) {
    let mut m = load(dir);
    let sc = &mut m.shards[i].sidecars[j];
    let gz = common::gzip(text);
    std::fs::write(dir.join(&sc.file), &gz).unwrap();
    sc.bytes = gz.len() as u64;
    sc.uncompressed_bytes = text.len() as u64;
    sc.sha256 = sha256_hex(&gz[..]).unwrap();
    save(dir, &m);
}

fn line(l: &Labels, h: &HistogramValue, ts: i64) -> Vec<u8> {
    let mut prefix = Vec::new();
    write_series_prefix(l, &mut prefix);
    let mut out = Vec::new();
    histtext::write_sample(&prefix, h, ts, &mut out);
    out
}

#[test]
fn side_files_hold_exactly_the_histograms_and_verify_and_inspect_count_them_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = t0();
    let src = source(t0);
    let dir = tmp.path().join("shards");
    write_shards(&src, &dir, None);
    assert_eq!(read_back(&dir), src);
    let m = load(&dir);
    // h: 480 samples and a marker; n: 120; t: 9; z: 600.
    assert_eq!(
        (m.totals.histogram_samples, m.totals.histogram_stale_markers),
        (1209, 1)
    );
    assert_eq!((m.totals.samples, m.totals.stale_markers), (490, 1));
    assert_eq!(m.totals.series, 24);
    let (i, j) = hist_side(&m, t0, 2);
    let e = &m.shards[i];
    assert_eq!((e.samples, e.series, e.sidecars.len()), (0, 0, 1), "{e:?}");
    assert!(e.sidecars[j].file.ends_with(".hist.om.gz"));
    let (code, out, err) = verify(&dir);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("490 samples, 1 staleness markers in sidecars, 1209 histogram samples and 1 histogram staleness markers in side files"),
        "{out}"
    );
    let mut c = prom2om();
    c.arg("inspect").arg(&dir);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("series 24, samples 490\n"), "{out}");
    assert!(
        out.contains("histogram samples in side files: 1209\n"),
        "{out}"
    );
    assert!(
        out.contains("histogram staleness markers in side files: 1\n"),
        "{out}"
    );
    assert!(
        out.contains("           0        120        1            0        120        1  n\n"),
        "{out}"
    );
    let mut c = prom2om();
    c.args(["inspect", "--json"]).arg(&dir);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["histogram_samples"], 1209);
    assert_eq!(j["histogram_stale_markers"], 1);
    // The census per series (what a dashboard's summary counts).
    let census = prom2om::format::shard_dir::samples_per_series(&dir).unwrap();
    let t = census[&labels("t", 3)];
    assert_eq!((t.samples, t.histogram_samples), (10, 9));
}

#[test]
fn verify_names_each_kind_of_damage_to_a_histograms_side_file() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = t0();
    let src = source(t0);
    let fresh = |name: &str, shards: Option<u32>| {
        let dir = tmp.path().join(name);
        write_shards(&src, &dir, shards);
        dir
    };
    let dir = fresh("changed", None);
    let m = load(&dir);
    let at = hist_side(&m, t0, 2);
    let side = m.shards[at.0].sidecars[at.1].file.clone();
    let path = dir.join(&side);
    let mut bytes = std::fs::read(&path).unwrap();
    let k = bytes.len() - 10;
    bytes[k] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    assert_fails(&dir, "changed", &[&side, "sha256"]);

    let dir = fresh("count", None);
    let mut m = load(&dir);
    m.shards[at.0].sidecars[at.1].samples += 1;
    save(&dir, &m);
    assert_fails(
        &dir,
        "count",
        &[
            &side,
            "samples is 120, the manifest says 121",
            "totals.histogram_samples + histogram_stale_markers is 1210, the shards add up to 1211",
        ],
    );

    // The split of the totals is the side files' to say.
    let dir = fresh("split", None);
    let mut m = load(&dir);
    m.totals.histogram_samples += 1;
    m.totals.histogram_stale_markers -= 1;
    save(&dir, &m);
    assert_fails(
        &dir,
        "split",
        &[
            "totals.histogram_samples is 1210, the side files hold 1209",
            "totals.histogram_stale_markers is 0, the side files hold 1",
        ],
    );

    let n = labels("n", 2);
    let dir = fresh("strict", None);
    let mut text = line(&n, &nhcb(1), t0 + 2 * H2 + 7);
    let k = text.windows(6).position(|w| w == b"count:").unwrap();
    text.splice(k + 6..k + 7, *b" ");
    rewrite_side(&dir, at, &[text, EOF_LINE.to_vec()].concat());
    assert_fails(
        &dir,
        "strict",
        &[&side, "invalid native histogram text: line 1"],
    );

    let dir = fresh("outside", None);
    let text = [line(&n, &nhcb(1), t0 + 3 * H2), EOF_LINE.to_vec()].concat();
    rewrite_side(&dir, at, &text);
    assert_fails(
        &dir,
        "outside",
        &[&side, "histogram sample outside the window"],
    );

    // A histogram where the shard has a float sample of the series.
    let dir = fresh("clash", None);
    let m = load(&dir);
    let at0 = hist_side(&m, t0, 0);
    let before = m.shards[at0.0].sidecars[at0.1].samples;
    let a = labels("a", 0);
    let text = [line(&a, &nhcb(1), t0 + STEP), EOF_LINE.to_vec()].concat();
    rewrite_side(&dir, at0, &text);
    let mut m = load(&dir);
    let sc = &mut m.shards[at0.0].sidecars[at0.1];
    (sc.series, sc.samples, sc.min_ts_ms, sc.max_ts_ms) = (1, 1, t0 + STEP, t0 + STEP);
    m.totals.histogram_samples = 1209 - before + 1;
    save(&dir, &m);
    assert_fails(
        &dir,
        "clash",
        &["where the histograms' side file has a histogram sample of the same series"],
    );

    // Four shards a window: a histogram series in the side file of a shard it does not hash to.
    let dir = fresh("wrong_shard", Some(4));
    let m = load(&dir);
    let at = hist_side(&m, t0, 0);
    let s = m.shards[at.0].shard as u64;
    // A series after every other in the file, hashing to another shard.
    let stranger = (0..50)
        .map(|k| labels("zzz", k))
        .find(|l| {
            let mut p = Vec::new();
            write_series_prefix(l, &mut p);
            series_hash(&p) % 4 != s
        })
        .unwrap();
    let side = m.shards[at.0].sidecars[at.1].file.clone();
    let mut text = Vec::new();
    let gz = std::fs::read(dir.join(&side)).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut text).unwrap();
    text.truncate(text.len() - EOF_LINE.len());
    text.extend(line(&stranger, &exponential(1), t0 + H2 - 1));
    text.extend_from_slice(EOF_LINE);
    rewrite_side(&dir, at, &text);
    let mut m = load(&dir);
    let sc = &mut m.shards[at.0].sidecars[at.1];
    sc.samples += 1;
    sc.series += 1;
    sc.max_ts_ms = t0 + H2 - 1;
    m.totals.histogram_samples += 1;
    save(&dir, &m);
    assert_fails(&dir, "wrong shard", &[&side, "belong to another shard"]);
}
