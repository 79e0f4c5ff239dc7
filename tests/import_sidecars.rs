//! Staleness markers carried in sidecar files beside the shards (`manifest::Sidecar`, kind
//! `stale_markers`): `import` writes them into the blocks as real markers, and they come back as
//! markers from prom2om's data-dir reader, `promtool tsdb dump` and a real Prometheus 2.42.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use common::*;
use prom2om::format::shard_dir::{
    sha256_hex, Manifest, ShardEntry, Sidecar, Totals, MANIFEST_FILE, SIDECAR_STALE_MARKERS,
};

const WINDOW_MS: i64 = 7_200_000;
/// A 2h-aligned start.
const BASE_MS: i64 = 1_700_000_000_000 / WINDOW_MS * WINDOW_MS;
const STEP_MS: i64 = 15_000;

/// `name{job="x"}` every 15 s over `[from, to)`.
fn samples(name: &str, from: i64, to: i64, v: f64, text: &mut Vec<u8>) -> u64 {
    let mut n = 0;
    for t in (from..to).step_by(STEP_MS as usize) {
        writeln!(text, "{name}{{job=\"x\"}} {v} {}.{:03}", t / 1000, t % 1000).unwrap();
        n += 1;
    }
    n
}

fn marker(name: &str, t: i64, text: &mut Vec<u8>) {
    writeln!(text, "{name}{{job=\"x\"}} NaN {}.{:03}", t / 1000, t % 1000).unwrap();
}

/// The times of the story: `up_a` is scraped for 30 min, its target vanishes (marker), comes
/// back 30 min later; `up_b` is scraped until the end of window 0 and its marker falls at the
/// start of window 1, where it has no sample at all.
struct Story {
    a_gone: i64,
    b_gone: i64,
}

/// Writes the two windows' shards and sidecars (gzip).
fn write_dir(dir: &Path) -> (Manifest, Story) {
    std::fs::create_dir_all(dir).unwrap();
    let story = Story {
        a_gone: BASE_MS + 30 * 60_000 + 7_000,
        b_gone: BASE_MS + WINDOW_MS + 3_000,
    };
    let mut m = Manifest {
        prom2om_version: "test".into(),
        source: "convert".into(),
        block_duration_ms: WINDOW_MS,
        compressed: true,
        ..Default::default()
    };
    for w in 0..2i64 {
        let start = BASE_MS + w * WINDOW_MS;
        let mut text = Vec::new();
        let mut side = Vec::new();
        let (mut n, mut series) = (0, 0);
        let marker_times: Vec<i64>;
        // Markers of one series per window.
        let marker_series = 1;
        if w == 0 {
            n += samples("up_a", start, start + 30 * 60_000, 1.0, &mut text);
            n += samples(
                "up_a",
                start + 60 * 60_000,
                start + 90 * 60_000,
                1.0,
                &mut text,
            );
            n += samples("up_b", start, start + WINDOW_MS, 2.0, &mut text);
            series += 2;
            marker_times = vec![story.a_gone, start + 90 * 60_000 + 1];
            for &t in &marker_times {
                marker("up_a", t, &mut side);
            }
        } else {
            n += samples("up_a", start, start + 10 * 60_000, 1.0, &mut text);
            series += 1;
            marker_times = vec![story.b_gone];
            marker("up_b", story.b_gone, &mut side);
        }
        text.extend_from_slice(b"# EOF\n");
        side.extend_from_slice(b"# EOF\n");
        let file = format!("w{w}.om.gz");
        let gz = gzip(&text);
        std::fs::write(dir.join(&file), &gz).unwrap();
        // Gzip, as in every compressed directory.
        let side_file = format!("w{w}.stale.om.gz");
        let side_bytes = gzip(&side);
        std::fs::write(dir.join(&side_file), &side_bytes).unwrap();
        m.shards.push(ShardEntry {
            file,
            window_start_ms: start,
            window_end_ms: start + WINDOW_MS,
            shard: 0,
            series,
            samples: n,
            min_ts_ms: start,
            max_ts_ms: if w == 0 {
                start + WINDOW_MS - STEP_MS
            } else {
                start + 10 * 60_000 - STEP_MS
            },
            bytes: gz.len() as u64,
            uncompressed_bytes: text.len() as u64,
            sha256: sha256_hex(&gz[..]).unwrap(),
            sidecars: vec![Sidecar {
                kind: SIDECAR_STALE_MARKERS.into(),
                file: side_file,
                series: marker_series,
                samples: marker_times.len() as u64,
                min_ts_ms: marker_times[0],
                max_ts_ms: *marker_times.last().unwrap(),
                bytes: side_bytes.len() as u64,
                uncompressed_bytes: side.len() as u64,
                sha256: sha256_hex(&side_bytes[..]).unwrap(),
            }],
        });
    }
    let mut totals = Totals::default();
    for e in &m.shards {
        totals.shards += 1;
        totals.samples += e.samples;
        totals.series += e.series;
        totals.bytes += e.bytes;
        totals.uncompressed_bytes += e.uncompressed_bytes;
    }
    totals.series = 2;
    totals.stale_markers = 3;
    totals.min_ts_ms = Some(BASE_MS);
    totals.max_ts_ms = m.shards.iter().map(|e| e.max_ts_ms).max();
    m.totals = totals;
    save(dir, &m);
    (m, story)
}

fn save(dir: &Path, m: &Manifest) {
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(m).unwrap(),
    )
    .unwrap();
}

fn import(dir: &Path, data: &Path) -> (i32, String, String) {
    let mut c = prom2om();
    c.arg("import").arg(dir).arg("--tsdb").arg(data);
    c.env("PATH", "/nonexistent-prom2om-test-path");
    run(c)
}

/// Whether an instant query for `name` at `t_ms` finds the series.
fn present(server: &Prom, name: &str, t_ms: i64) -> bool {
    let (status, body) = server.get(&format!(
        "/api/v1/query?query={name}&time={}.{:03}",
        t_ms / 1000,
        t_ms % 1000
    ));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    !v["data"]["result"].as_array().unwrap().is_empty()
}

#[test]
fn markers_become_staleness_markers_in_the_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let (m, story) = write_dir(&dir);
    let data = tmp.path().join("data");
    let (code, out, err) = import(&dir, &data);
    assert_eq!(code, 0, "{out}\n{err}");
    let samples: u64 = m.shards.iter().map(|e| e.samples).sum();
    assert!(
        out.contains(&format!("{samples} samples and 3 staleness markers moved")),
        "samples and markers, counted apart as the manifest counts them: {out}"
    );

    // promtool prints each marker as NaN, at its time.
    let dumped = dump_lines(&data);
    assert_eq!(dumped.len() as u64, samples + 3);
    for (name, t) in [("up_a", story.a_gone), ("up_b", story.b_gone)] {
        let line = format!("{{__name__=\"{name}\", job=\"x\"}} NaN {t}");
        assert!(dumped.contains(&line), "{line}");
    }

    // prom2om's data-dir reader tells them from NaN values exactly: kept as NaN...
    let keep = run_ok(
        prom2om()
            .arg("convert")
            .arg(&data)
            .args(["--stale", "keep", "-o", "-"]),
    );
    let keep = String::from_utf8(keep).unwrap();
    let nans: BTreeSet<&str> = keep.lines().filter(|l| l.contains(" NaN ")).collect();
    assert_eq!(nans.len(), 3, "{nans:?}");
    // Whole seconds, which OpenMetrics prints without a fraction.
    let at = |t: i64| format!(" NaN {}", t / 1000);
    assert_eq!((story.a_gone % 1000, story.b_gone % 1000), (0, 0));
    assert!(
        nans.iter()
            .any(|l| l.starts_with("up_a{") && l.ends_with(&at(story.a_gone))),
        "{nans:?}"
    );
    assert!(
        nans.iter()
            .any(|l| l.starts_with("up_b{") && l.ends_with(&at(story.b_gone))),
        "{nans:?}"
    );
    // ...and dropped exactly, with their count said.
    let mut c = prom2om();
    c.arg("convert").arg(&data).args(["-o", "-"]);
    let (code, drop, err) = run(c);
    assert_eq!(code, 0, "{err}");
    assert!(!drop.contains("NaN"), "{drop}");
    assert!(err.contains("staleness markers dropped 3"), "{err}");

    // A server on the data: the series is gone right after its marker, not 5 minutes later.
    let server = Prom::start(&data);
    assert!(present(&server, "up_a", story.a_gone - 1_000));
    assert!(!present(&server, "up_a", story.a_gone + 1_000));
    assert!(!present(&server, "up_a", story.a_gone + 60_000));
    assert!(
        present(&server, "up_a", BASE_MS + 60 * 60_000 + 1_000),
        "back again"
    );
    assert!(present(&server, "up_b", story.b_gone - 1_000));
    assert!(!present(&server, "up_b", story.b_gone + 1_000));
}

#[test]
fn without_markers_the_series_would_linger_for_the_lookback() {
    // What the markers change: the same shards with their sidecars left out of the manifest.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let (mut m, story) = write_dir(&dir);
    for e in &mut m.shards {
        e.sidecars.clear();
    }
    save(&dir, &m);
    let data = tmp.path().join("data");
    let (code, out, err) = import(&dir, &data);
    assert_eq!(code, 0, "{out}\n{err}");
    let server = Prom::start(&data);
    assert!(present(&server, "up_a", story.a_gone + 60_000));
    assert!(present(&server, "up_b", story.b_gone + 60_000));
}

#[test]
fn unknown_sidecar_kinds_refuse_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let (mut m, _) = write_dir(&dir);
    m.shards[1].sidecars[0].kind = "native_histograms".into();
    save(&dir, &m);
    let data = tmp.path().join("data");
    let (code, out, err) = import(&dir, &data);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("shard w1.om.gz has a sidecar w1.stale.om.gz of kind \"native_histograms\""),
        "{err}"
    );
    assert!(!data.exists(), "nothing done before the refusal");
}

#[test]
fn a_sidecar_that_does_not_match_its_entry_refuses_its_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shards");
    let (m, _) = write_dir(&dir);
    // Same size, one byte changed: the checksum tells.
    let side = dir.join(&m.shards[0].sidecars[0].file);
    let mut bytes = std::fs::read(&side).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&side, &bytes).unwrap();
    let data = tmp.path().join("data");
    let (code, out, err) = import(&dir, &data);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("FAILED  w0.om.gz: verify: sidecar w0.stale.om.gz: sha256 is"),
        "{out}"
    );
    assert!(out.contains("ok      w1.om.gz"), "{out}");
}

#[test]
fn sidecars_holding_values_or_clashing_with_samples_are_refused() {
    let line = |v: &str, t: i64| format!("up_a{{job=\"x\"}} {v} {}.{:03}\n", t / 1000, t % 1000);
    for (what, bad_t, expect) in [
        (
            "a value",
            BASE_MS + 7,
            "every sample of a stale-markers sidecar is NaN",
        ),
        (
            "a sample's time",
            BASE_MS + STEP_MS,
            "where the stale-markers sidecar has a marker of the same series",
        ),
        (
            "outside the window",
            BASE_MS - 1,
            "a marker outside the window",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shards");
        let (mut m, _) = write_dir(&dir);
        let v = if what == "a value" { "5" } else { "NaN" };
        let text = format!("{}# EOF\n", line(v, bad_t)).into_bytes();
        let gz = gzip(&text);
        let sc = &mut m.shards[0].sidecars[0];
        std::fs::write(dir.join(&sc.file), &gz).unwrap();
        (sc.bytes, sc.uncompressed_bytes) = (gz.len() as u64, text.len() as u64);
        sc.sha256 = sha256_hex(&gz[..]).unwrap();
        (sc.samples, sc.series) = (1, 1);
        (sc.min_ts_ms, sc.max_ts_ms) = (bad_t, bad_t);
        m.totals.stale_markers = 2;
        save(&dir, &m);
        let data = tmp.path().join("data");
        let (code, out, err) = import(&dir, &data);
        assert_eq!(code, 1, "{what}: {out}\n{err}");
        assert!(
            out.contains("FAILED  w0.om.gz: ") && out.contains(expect),
            "{what}: {out}"
        );
    }
}
