//! Staleness markers carried beside the shards: shard directories written by the real sink with
//! exact markers (one window holding markers only), `verify` naming each kind of sidecar damage,
//! `import` through promtool (which cannot carry markers: said, with the count) and through
//! remote write into a real Prometheus 2.42, whose own remote-read answer then holds the markers
//! with their exact bits.

mod common;
mod fetch_support;
mod rw_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{prom2om, promtool, run, shard_files, sidecar_files};
use fetch_support::Data;
use prom2om::format::openmetrics::{write_sample, write_series_prefix, EOF_LINE};
use prom2om::format::shard_dir::series_hash;
use prom2om::format::shard_dir::{sha256_hex, Manifest, MANIFEST_FILE};
use prom2om::format::tsdb::xor::STALE_NAN_BITS;
use prom2om::labels::Labels;
use prom2om::pipeline::feed::{Provenance, SampleSink};
use rw_support::{prom_receiver, push, shard_data};

const H2: i64 = 7_200_000;
const STEP: i64 = 15_000;
/// A real NaN as Go writes it, beside the markers.
const GO_NAN: u64 = 0x7ff8_0000_0000_0001;

fn labels(name: &str, i: u32) -> Labels {
    Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())])
}

/// Samples and markers of the source: series -> ts -> bits.
struct Source {
    samples: Data,
    markers: Data,
}

/// Three 2h windows from `t0`: `a` vanishes and comes back (a marker in window 0, one in
/// window 1), `b` holds a real NaN and ends at window 0's end (its marker in window 1), `c`
/// lives in window 1 and its marker is all that window 2 holds; `d` fills the windows with
/// series so that shard assignment matters. No two series differ by their name alone: the
/// `--verify-url` query (`count_over_time`, which drops the name) would fail on Prometheus 2.x.
fn source(t0: i64) -> Source {
    let mut s = Source {
        samples: Data::new(),
        markers: Data::new(),
    };
    let mut add = |l: &Labels, from: i64, to: i64, marker: Option<i64>| {
        let m = s.samples.entry(l.clone()).or_default();
        for (k, t) in (from..to).step_by(STEP as usize).enumerate() {
            m.insert(t, (k as f64 * 1.5).to_bits());
        }
        if let Some(t) = marker {
            s.markers
                .entry(l.clone())
                .or_default()
                .insert(t, STALE_NAN_BITS);
        }
    };
    let a = labels("a", 100);
    add(&a, t0, t0 + H2 / 2, Some(t0 + H2 / 2 + 5_000));
    add(
        &a,
        t0 + 3 * H2 / 4,
        t0 + 5 * H2 / 4,
        Some(t0 + 5 * H2 / 4 + 5_000),
    );
    add(&labels("b", 101), t0, t0 + H2, Some(t0 + H2 + 5_000));
    add(
        &labels("c", 102),
        t0 + H2,
        t0 + 2 * H2,
        Some(t0 + 2 * H2 + 1_000),
    );
    for i in 0..20 {
        add(
            &labels("d", i),
            t0 + i as i64 * 1000,
            t0 + H2 + 600_000,
            None,
        );
    }
    s.samples
        .get_mut(&labels("b", 101))
        .unwrap()
        .insert(t0 + 10 * STEP, GO_NAN);
    s
}

/// Writes `src` through the real sink (exact markers, `--stale carry`) into `dir`.
fn write_shards(src: &Source, dir: &Path, shards: Option<u32>) {
    let mut sink = common::carry_sink(dir, H2, shards);
    let mut all: BTreeMap<Labels, BTreeMap<i64, u64>> = src.samples.clone();
    for (l, m) in &src.markers {
        all.entry(l.clone()).or_default().extend(m);
    }
    for (l, s) in &all {
        let id = sink.series(l.clone(), Provenance::EXACT).unwrap();
        for (&t, &v) in s {
            sink.float(id, t, v).unwrap();
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

fn gunzip(path: &Path) -> Vec<u8> {
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    text
}

/// The markers the sidecars of `dir` hold (every value NaN, checked).
fn sidecar_data(dir: &Path) -> Data {
    let mut d = Data::new();
    for f in sidecar_files(dir) {
        prom2om::format::openmetrics::read(&gunzip(&f), |s| {
            assert!(
                s.value.is_nan(),
                "{}: a marker that is not NaN",
                f.display()
            );
            d.entry(s.labels.clone())
                .or_default()
                .insert(s.ts_ms, STALE_NAN_BITS);
            Ok(())
        })
        .unwrap();
    }
    d
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

/// Replaces the text of sidecar `(shard, 0)` and makes the manifest agree with the new bytes, so
/// that only the content is wrong.
fn rewrite_sidecar(dir: &Path, shard: usize, text: &[u8]) {
    let mut m = load(dir);
    let sc = &mut m.shards[shard].sidecars[0];
    let gz = common::gzip(text);
    std::fs::write(dir.join(&sc.file), &gz).unwrap();
    sc.bytes = gz.len() as u64;
    sc.uncompressed_bytes = text.len() as u64;
    sc.sha256 = sha256_hex(&gz[..]).unwrap();
    save(dir, &m);
}

fn marker_line(l: &Labels, ts: i64) -> Vec<u8> {
    let mut prefix = Vec::new();
    write_series_prefix(l, &mut prefix);
    let mut out = Vec::new();
    write_sample(&prefix, f64::NAN, ts, &mut out);
    out
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

/// The index in the manifest of the shard of window `w` (from `t0`) that has a sidecar.
fn with_sidecar(m: &Manifest, t0: i64, w: i64) -> usize {
    m.shards
        .iter()
        .position(|e| e.window_start_ms == t0 + w * H2 && !e.sidecars.is_empty())
        .unwrap()
}

#[test]
fn sidecars_hold_exactly_the_markers_and_a_window_of_markers_only_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = t0();
    let src = source(t0);
    let dir = tmp.path().join("shards");
    write_shards(&src, &dir, None);
    assert_eq!(shard_data(&dir), src.samples);
    assert_eq!(sidecar_data(&dir), src.markers);
    let m = load(&dir);
    assert_eq!(m.totals.stale_markers, 4);
    let last = &m.shards[with_sidecar(&m, t0, 2)];
    assert_eq!((last.samples, last.series), (0, 0), "{last:?}");
    assert_eq!(gunzip(&dir.join(&last.file)), EOF_LINE);
    let (code, out, err) = verify(&dir);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("4 staleness markers in sidecars"), "{out}");
    let mut c = prom2om();
    c.arg("inspect").arg(&dir);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("staleness markers carried in sidecars: 4"),
        "{out}"
    );
}

#[test]
fn verify_names_each_kind_of_sidecar_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = t0();
    let src = source(t0);
    let fresh = |name: &str, shards: Option<u32>| -> PathBuf {
        let dir = tmp.path().join(name);
        write_shards(&src, &dir, shards);
        dir
    };

    let dir = fresh("missing", None);
    let m = load(&dir);
    let side = m.shards[with_sidecar(&m, t0, 0)].sidecars[0].file.clone();
    std::fs::remove_file(dir.join(&side)).unwrap();
    assert_fails(&dir, "missing", &[&side, "cannot read"]);

    let dir = fresh("changed", None);
    let path = dir.join(&side);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    assert_fails(&dir, "changed", &[&side, "sha256"]);

    let dir = fresh("count", None);
    let mut m = load(&dir);
    let i = with_sidecar(&m, t0, 0);
    m.shards[i].sidecars[0].samples += 1;
    m.totals.stale_markers += 1;
    save(&dir, &m);
    assert_fails(&dir, "count", &[&side, "samples is 1, the manifest says 2"]);

    let dir = fresh("kind", None);
    let mut m = load(&dir);
    m.shards[i].sidecars[0].kind = "exemplars".into();
    save(&dir, &m);
    assert_fails(&dir, "kind", &[&side, "unknown kind \"exemplars\""]);

    let dir = fresh("unlisted", None);
    let mut m = load(&dir);
    m.totals.stale_markers -= m.shards[i].sidecars[0].samples;
    m.shards[i].sidecars.clear();
    save(&dir, &m);
    assert_fails(&dir, "unlisted", &[&side, "not listed in the manifest"]);

    // Window 0's sidecar holds `a`'s marker at t0+1h+5s.
    let a = labels("a", 100);
    let text = |lines: &[Vec<u8>]| [lines.concat(), EOF_LINE.to_vec()].concat();
    let dir = fresh("outside", None);
    rewrite_sidecar(&dir, i, &text(&[marker_line(&a, t0 + H2 + 1)]));
    assert_fails(&dir, "outside", &[&side, "outside the window"]);

    let dir = fresh("clash", None);
    rewrite_sidecar(&dir, i, &text(&[marker_line(&a, t0 + H2 / 2 - STEP)]));
    assert_fails(&dir, "clash", &["a marker of the same series"]);

    let dir = fresh("value", None);
    let mut line = marker_line(&a, t0 + H2 / 2 + 5_000);
    let at = line.windows(3).position(|w| w == b"NaN").unwrap();
    line.splice(at..at + 3, *b"7");
    rewrite_sidecar(&dir, i, &text(&[line]));
    assert_fails(&dir, "value", &[&side, "is NaN"]);

    // Four shards a window: a marker in the sidecar of a shard its series does not hash to.
    let dir = fresh("wrong_shard", Some(4));
    let m = load(&dir);
    let i = with_sidecar(&m, t0, 0);
    let s = m.shards[i].shard as u64;
    let stranger = (0..20)
        .map(|k| labels("d", k))
        .find(|l| {
            let mut p = Vec::new();
            write_series_prefix(l, &mut p);
            series_hash(&p) % 4 != s
        })
        .unwrap();
    let side = m.shards[i].sidecars[0].file.clone();
    rewrite_sidecar(
        &dir,
        i,
        &text(&[
            marker_line(&a, t0 + H2 / 2 + 5_000),
            // Not a sample of it: theirs fall on whole seconds.
            marker_line(&stranger, t0 + H2 - 1),
        ]),
    );
    let mut m = load(&dir);
    m.shards[i].sidecars[0].samples = 2;
    m.shards[i].sidecars[0].series = 2;
    m.shards[i].sidecars[0].max_ts_ms = t0 + H2 - 1;
    m.totals.stale_markers += 1;
    save(&dir, &m);
    assert_fails(&dir, "wrong shard", &[&side, "belong to another shard"]);
}

#[test]
fn promtool_import_says_what_it_cannot_carry_and_takes_the_markers_only_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = t0();
    let src = source(t0);
    let dir = tmp.path().join("shards");
    write_shards(&src, &dir, None);
    let data = tmp.path().join("data");
    let mut c = prom2om();
    c.arg("import")
        .arg(&dir)
        .arg("--tsdb")
        .arg(&data)
        .arg(format!("--promtool={}", promtool().display()));
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("warning: 4 staleness markers in the shards' sidecars are not imported"),
        "{err}"
    );
    assert!(out.contains("imported 3 shards"), "{out}");
    let dump = common::dump(&data, None);
    let got = rw_support::parse_dump(&dump);
    assert!(rw_support::same(&got, &src.samples), "imported samples");
}

#[test]
fn remote_write_gives_a_prometheus_receiver_the_markers_with_their_exact_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = t0();
    let src = source(t0);
    let dir = tmp.path().join("shards");
    write_shards(&src, &dir, None);
    let prom = prom_receiver(&tmp.path().join("receiver"));
    let url = format!("{}/api/v1/write", prom.url());
    let (code, out, err) = push(
        &dir,
        &url,
        &[
            "--batch-samples",
            "7",
            "--concurrency",
            "3",
            "--verify-url",
            &prom.url(),
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("and 1 staleness marker in"), "{out}");
    assert!(
        out.contains("the 4 staleness markers of the sidecars"),
        "{out}"
    );
    // The receiver's own answer, read back with the markers carried: a marker it stored as a
    // plain NaN would land in the shards, not in the sidecars.
    let secs = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
    let deadline = Instant::now() + Duration::from_secs(90);
    for attempt in 0.. {
        let back = tmp.path().join(format!("back-{attempt}"));
        let mut c = prom2om();
        c.args([
            "fetch",
            "-q",
            "--url",
            &prom.url(),
            "--method",
            "remote-read",
        ])
        .args(["-m", r#"{__name__=~".+"}"#])
        .args(["--start", &secs(t0), "--end", &secs(t0 + 3 * H2)])
        .arg("-o")
        .arg(&back);
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "{out}\n{err}");
        let (samples, markers) = (shard_data(&back), sidecar_data(&back));
        let done = rw_support::same(&samples, &src.samples) && markers == src.markers;
        if done || Instant::now() > deadline {
            assert!(rw_support::same(&samples, &src.samples), "samples differ");
            assert_eq!(markers, src.markers, "markers differ");
            break;
        }
        std::fs::remove_dir_all(&back).unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn mixed_inputs_guess_only_for_the_dump_series() {
    // A lone real NaN in a data dir (backfilled: promtool stores NaN as a real NaN, never a
    // marker) is kept; a lone NaN in dump text is taken for a marker and dropped.
    let tmp = tempfile::tempdir().unwrap();
    let om = tmp.path().join("x.om");
    std::fs::write(
        &om,
        "x{a=\"1\"} 1 1\nx{a=\"1\"} NaN 2\nx{a=\"1\"} 3 3\n# EOF\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    common::backfill(&om, &data);
    let dump = tmp.path().join("dump.txt");
    std::fs::write(
        &dump,
        "{__name__=\"y\", a=\"2\"} 1 1000\n{__name__=\"y\", a=\"2\"} NaN 2000\n{__name__=\"y\", a=\"2\"} 3 3000\n",
    )
    .unwrap();
    for stale in ["carry", "drop"] {
        let mut c = prom2om();
        c.arg("convert")
            .arg(&data)
            .arg(&dump)
            .args(["--stale", stale, "-o", "-"]);
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            out,
            "x{a=\"1\"} 1 1\nx{a=\"1\"} NaN 2\nx{a=\"1\"} 3 3\ny{a=\"2\"} 1 1\ny{a=\"2\"} 3 3\n# EOF\n",
            "--stale {stale}"
        );
        assert!(
            err.contains("staleness markers dropped 1 (guessed"),
            "{err}"
        );
    }
    // Dump text alone: nothing exact to carry; the manifest records what was done, as before.
    let out = tmp.path().join("dump-shards");
    let mut c = prom2om();
    c.arg("convert").arg(&dump).arg("-q").arg("-o").arg(&out);
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "{err}");
    assert_eq!(load(&out).filters.stale, "drop");
    assert!(sidecar_files(&out).is_empty());
}

#[test]
fn default_import_writes_the_sidecars_markers_into_the_blocks_with_their_exact_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = t0();
    let src = source(t0);
    let dir = tmp.path().join("shards");
    write_shards(&src, &dir, None);
    let data = tmp.path().join("data");
    let mut c = prom2om();
    c.arg("import").arg(&dir).arg("--tsdb").arg(&data);
    c.env("PATH", "/nonexistent-prom2om-test-path");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!err.contains("not imported"), "{err}");
    // The data dir read back by prom2om's own reader, markers carried: exactly the source,
    // the window that holds only a marker included.
    let back = tmp.path().join("back");
    let mut c = prom2om();
    c.args(["convert", "-q"]).arg(&data).arg("-o").arg(&back);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        rw_support::same(&shard_data(&back), &src.samples),
        "samples differ"
    );
    assert_eq!(sidecar_data(&back), src.markers, "markers differ");
}

/// An export with sidecars, replaced with --force by a run without markers: a failed run leaves
/// it as it was (sidecars included, `verify` passes), a finished one leaves no sidecar of it.
#[test]
fn force_replaces_an_export_with_sidecars_only_when_the_new_run_is_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = t0();
    let out = tmp.path().join("out");
    write_shards(&source(t0), &out, None);
    let files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let bytes = std::fs::read(e.path()).unwrap();
                (e.file_name().to_string_lossy().into_owned(), bytes)
            })
            .collect()
    };
    let before = files(&out);
    assert!(!sidecar_files(&out).is_empty());
    // One sample in the first window of the earlier export: a shard of the same name.
    let line = format!("{{__name__=\"new\"}} 1 {}\n", t0 + 1000);
    let good = tmp.path().join("good.dump");
    std::fs::write(&good, &line).unwrap();
    let bad = tmp.path().join("bad.dump");
    std::fs::write(&bad, format!("{line}junk\n")).unwrap();
    let convert = |input: &Path, dir: &Path, force: bool| {
        let mut c = prom2om();
        c.args(["convert", "-q", "-o"]).arg(dir).arg(input);
        if force {
            c.arg("--force");
        }
        run(c)
    };
    let (code, _, stderr) = convert(&bad, &out, true);
    assert_eq!(code, 2, "{stderr}");
    assert!(files(&out) == before, "the earlier export changed");
    let (code, stdout, stderr) = verify(&out);
    assert_eq!(code, 0, "{stdout}{stderr}");

    let (code, _, stderr) = convert(&good, &out, true);
    assert_eq!(code, 0, "{stderr}");
    let fresh = tmp.path().join("fresh");
    let (code, _, stderr) = convert(&good, &fresh, false);
    assert_eq!(code, 0, "{stderr}");
    let after = files(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        files(&fresh).keys().collect::<Vec<_>>()
    );
    assert!(after == files(&fresh));
    assert!(sidecar_files(&out).is_empty());
    let shared = shard_files(&out)[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(before.contains_key(&shared), "{shared}");
}
