use super::*;
use crate::exit_codes::ExitCode;
use crate::format::openmetrics;
use crate::format::tsdb::xor::STALE_NAN_BITS;

const W: i64 = 7_200_000;

pub(super) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Writes `text` as `file` (gzipped) into `dir`; returns the counts, sizes and checksum of it.
fn put(dir: &Path, file: &str, text: &str) -> ShardEntry {
    let stored = gzip(text.as_bytes());
    std::fs::write(dir.join(file), &stored).unwrap();
    let st = openmetrics::read(text.as_bytes(), |_| Ok(())).unwrap();
    ShardEntry {
        file: file.into(),
        window_start_ms: 0,
        window_end_ms: W,
        series: st.series,
        samples: st.samples,
        min_ts_ms: st.min_ts_ms.unwrap_or(0),
        max_ts_ms: st.max_ts_ms.unwrap_or(0),
        bytes: stored.len() as u64,
        uncompressed_bytes: text.len() as u64,
        sha256: sha256_hex(&stored[..]).unwrap(),
        ..ShardEntry::default()
    }
}

/// A compressed directory of one shard `w-0.om.gz` holding `text`, with a stale-markers side
/// file holding `markers` when given.
fn dir_of(dir: &Path, text: &str, markers: Option<&str>) -> Manifest {
    dir_with(dir, text, markers, None)
}

/// [`dir_of`] with a native histograms' side file holding `hist` when given.
fn dir_with(dir: &Path, text: &str, markers: Option<&str>, hist: Option<&str>) -> Manifest {
    let mut e = put(dir, "w-0.om.gz", text);
    if let Some(m) = markers {
        let s = put(dir, "w-0.stale.om.gz", m);
        e.sidecars.push(side_entry(SIDECAR_STALE_MARKERS, s));
    }
    if let Some(h) = hist {
        let stored = gzip(h.as_bytes());
        std::fs::write(dir.join("w-0.hist.om.gz"), &stored).unwrap();
        // A file that does not read (a test of that) claims nothing.
        let st = crate::format::histtext::read(h.as_bytes(), |_| Ok(())).unwrap_or_default();
        e.sidecars.push(Sidecar {
            kind: SIDECAR_NATIVE_HISTOGRAMS.into(),
            file: "w-0.hist.om.gz".into(),
            series: st.series,
            samples: st.samples,
            min_ts_ms: st.min_ts_ms.unwrap_or(0),
            max_ts_ms: st.max_ts_ms.unwrap_or(0),
            bytes: stored.len() as u64,
            uncompressed_bytes: h.len() as u64,
            sha256: sha256_hex(&stored[..]).unwrap(),
        });
    }
    let m = Manifest {
        compressed: true,
        block_duration_ms: W,
        shards: vec![e],
        ..Manifest::default()
    };
    save(dir, &m);
    m
}

fn side_entry(kind: &str, s: ShardEntry) -> Sidecar {
    Sidecar {
        kind: kind.into(),
        file: s.file,
        series: s.series,
        samples: s.samples,
        min_ts_ms: s.min_ts_ms,
        max_ts_ms: s.max_ts_ms,
        bytes: s.bytes,
        uncompressed_bytes: s.uncompressed_bytes,
        sha256: s.sha256,
    }
}

fn save(dir: &Path, m: &Manifest) {
    std::fs::write(dir.join(MANIFEST_FILE), serde_json::to_vec(m).unwrap()).unwrap();
}

/// Every point of shard 0 as `name ts S|M|H|HM [new] [only]` (a float sample, a float marker, a
/// histogram sample, a histogram marker), and the report.
fn points(dir: &Path, markers: bool) -> (Vec<String>, ShardReport) {
    let sd = ShardDir::open(dir).unwrap();
    let mut got = Vec::new();
    let mut f = |p: &Point<'_>| {
        let kind = match p.value {
            Value::Float(v) => {
                assert_ne!(v.to_bits(), STALE_NAN_BITS);
                "S"
            }
            Value::StaleMarker => "M",
            Value::Histogram(h) if h.is_stale() => "HM",
            Value::Histogram(_) => "H",
        };
        assert_eq!(p.value.is_marker(), kind.ends_with('M'));
        got.push(format!(
            "{} {} {kind}{}{}",
            p.labels.metric_name(),
            p.ts_ms,
            if p.new_series { " new" } else { "" },
            if p.side_only { " only" } else { "" },
        ));
        Ok(())
    };
    let files = sd.shard(0);
    let r = if markers {
        files.points(&mut f)
    } else {
        files.samples(&mut f)
    };
    (got, r)
}

const SHARD: &str = "a 1 1\na 3 3\nb 1 1\n# EOF\n";
const MARKERS: &str = "a NaN 0.5\na NaN 2\na NaN 5\nc NaN 4\n# EOF\n";

#[test]
fn markers_are_merged_into_their_series_by_time_and_markers_only_series_come_last() {
    let tmp = tempfile::tempdir().unwrap();
    dir_of(tmp.path(), SHARD, Some(MARKERS));
    let (got, r) = points(tmp.path(), true);
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(
        got,
        [
            "a 500 M new",
            "a 1000 S",
            "a 2000 M",
            "a 3000 S",
            "a 5000 M",
            "b 1000 S new",
            "c 4000 M new only",
        ]
    );
    assert_eq!((r.stale_markers, r.stats.unwrap().samples), (4, 3));
    // Without the markers, each series still starts at its first sample.
    let (got, _) = points(tmp.path(), false);
    assert_eq!(got, ["a 1000 S new", "a 3000 S", "b 1000 S new"]);
}

#[test]
fn a_file_that_does_not_match_the_manifest_gives_no_point() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = dir_of(tmp.path(), SHARD, Some(MARKERS));
    m.shards[0].sha256 = "0".repeat(64);
    save(tmp.path(), &m);
    let (got, r) = points(tmp.path(), true);
    assert!(got.is_empty(), "{got:?}");
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].starts_with("sha256 is "), "{:?}", r.problems);
    // The checks of the content are made all the same, as `verify` reports them.
    assert_eq!(r.stats.unwrap().samples, 3);

    let mut m = dir_of(tmp.path(), SHARD, Some(MARKERS));
    m.shards[0].sidecars[0].sha256 = "0".repeat(64);
    save(tmp.path(), &m);
    let (got, r) = points(tmp.path(), true);
    assert!(got.is_empty(), "{got:?}");
    assert!(
        r.problems[0].starts_with("sidecar w-0.stale.om.gz: sha256 is "),
        "{:?}",
        r.problems
    );
}

#[test]
fn more_text_than_the_manifest_states_is_refused_for_a_shard_and_a_side_file() {
    for side in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let mut m = dir_of(tmp.path(), SHARD, Some(MARKERS));
        if side {
            m.shards[0].sidecars[0].uncompressed_bytes -= 1;
        } else {
            m.shards[0].uncompressed_bytes -= 1;
        }
        save(tmp.path(), &m);
        let (got, r) = points(tmp.path(), true);
        assert!(got.is_empty(), "{got:?}");
        let want = if side {
            "sidecar w-0.stale.om.gz: uncompressed size is larger than the manifest's"
        } else {
            "uncompressed size is larger than the manifest's"
        };
        assert!(r.problems[0].starts_with(want), "{:?}", r.problems);
        let sd = ShardDir::open(tmp.path()).unwrap();
        let err = sd.read_samples(0, |_| Ok(())).unwrap_err();
        assert_eq!(ExitCode::of(&err).code(), 2);
        assert!(format!("{err}").contains("w-0.om.gz: "), "{err}");
    }
}

#[test]
fn a_marker_on_a_sample_is_a_problem_and_not_handed_on() {
    let tmp = tempfile::tempdir().unwrap();
    dir_of(tmp.path(), SHARD, Some("a NaN 3\n# EOF\n"));
    let (got, r) = points(tmp.path(), true);
    assert_eq!(got, ["a 1000 S new", "a 3000 S", "b 1000 S new"]);
    assert_eq!(
        r.problems,
        ["line 2: a sample at ts 3000 ms where the stale-markers sidecar has a marker of the same series"]
    );
}

#[test]
fn the_consumer_s_error_stops_the_read_and_is_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    dir_of(tmp.path(), SHARD, None);
    let sd = ShardDir::open(tmp.path()).unwrap();
    let mut n = 0;
    let r = sd.shard(0).points(|_| {
        n += 1;
        anyhow::ensure!(n < 2, "full");
        Ok(())
    });
    assert_eq!((n, r.problems), (2, vec!["full".to_string()]));
}

#[test]
fn unknown_side_files_and_unreadable_manifests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut m = dir_of(tmp.path(), SHARD, Some(MARKERS));
    m.shards[0].sidecars[0].kind = "exemplars".into();
    save(tmp.path(), &m);
    let sd = ShardDir::open(tmp.path()).unwrap();
    let err = sd.refuse_unreadable().unwrap_err();
    assert_eq!(ExitCode::of(&err).code(), 2);
    assert!(format!("{err}").contains("of kind \"exemplars\""), "{err}");
    let r = sd.shard(0).check();
    assert!(
        r.problems[0].starts_with("sidecar w-0.stale.om.gz: unknown kind \"exemplars\""),
        "{:?}",
        r.problems
    );

    let code = |e: anyhow::Error| ExitCode::of(&e).code();
    assert_eq!(
        code(ShardDir::open(&tmp.path().join("nope")).unwrap_err()),
        2
    );
    std::fs::write(tmp.path().join(MANIFEST_FILE), b"{").unwrap();
    assert_eq!(code(ShardDir::open(tmp.path()).unwrap_err()), 2);
    std::fs::remove_file(tmp.path().join(MANIFEST_FILE)).unwrap();
    let err = ShardDir::open(tmp.path()).unwrap_err();
    assert!(
        format!("{err}").contains("manifest.json: no manifest"),
        "{err}"
    );
    assert_eq!(code(err), 2);
}

#[test]
fn bad_manifests_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let code = |e: anyhow::Error| ExitCode::of(&e).code();
    let mut m = Manifest::default();
    m.shards.push(ShardEntry {
        file: "../x.om".into(),
        ..ShardEntry::default()
    });
    save(dir.path(), &m);
    let sd = ShardDir::open(dir.path()).unwrap();
    assert_eq!(code(sd.refuse_unreadable().unwrap_err()), 2);
    m.shards[0].file = "x.om".into();
    m.shards.push(m.shards[0].clone());
    save(dir.path(), &m);
    let sd = ShardDir::open(dir.path()).unwrap();
    let err = sd.refuse_unreadable().unwrap_err();
    assert!(
        format!("{err}").contains("shard x.om is listed twice"),
        "{err}"
    );
}

/// A native histogram side file of `lines` (metric name, ts in ms, sum), each a one-bucket
/// integer histogram, `StaleNaN` for a marker.
fn hist_text(lines: &[(&str, i64, &str)]) -> String {
    use crate::format::histogram::{Histogram, HistogramValue};
    let mut out = Vec::new();
    for &(name, ts, sum) in lines {
        let h = Histogram {
            count: 1,
            sum: match sum {
                "StaleNaN" => STALE_NAN_BITS,
                s => s.parse::<f64>().unwrap().to_bits(),
            },
            ..Histogram::default()
        };
        let mut p = Vec::new();
        openmetrics::write_series_prefix(
            &crate::labels::Labels::from_pairs([("__name__", name)]),
            &mut p,
        );
        crate::format::histtext::write_sample(&p, &HistogramValue::Int(h), ts, &mut out);
    }
    out.extend_from_slice(openmetrics::EOF_LINE);
    String::from_utf8(out).unwrap()
}

#[test]
fn histograms_and_markers_merge_by_time_and_side_only_series_come_last_in_series_order() {
    let tmp = tempfile::tempdir().unwrap();
    let hist = hist_text(&[
        ("a", 1500, "1"),
        ("a", 6000, "StaleNaN"),
        ("b0", 100, "2"),
        ("c", 3000, "3"),
        ("d", 1, "StaleNaN"),
    ]);
    let markers = "a NaN 0.5\na NaN 2\nc NaN 4\nzz NaN 1\n# EOF\n";
    dir_with(tmp.path(), SHARD, Some(markers), Some(&hist));
    let (got, r) = points(tmp.path(), true);
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(
        got,
        [
            "a 500 M new",
            "a 1000 S",
            "a 1500 H",
            "a 2000 M",
            "a 3000 S",
            "a 6000 HM",
            "b 1000 S new",
            "b0 100 H new only",
            "c 3000 H new only",
            "c 4000 M only",
            "d 1 HM new only",
            "zz 1000 M new only",
        ]
    );
    assert_eq!(
        (
            r.stale_markers,
            r.histogram_samples,
            r.histogram_stale_markers
        ),
        (4, 3, 2)
    );
    // The samples alone, as before.
    let (got, _) = points(tmp.path(), false);
    assert_eq!(got, ["a 1000 S new", "a 3000 S", "b 1000 S new"]);
    // Their hashes are gathered for the check across the window.
    assert_eq!(r.hashes.side.len(), 3 + 4);
}

#[test]
fn a_histogram_on_a_sample_or_a_marker_and_a_bad_side_file_are_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let hist = hist_text(&[("a", 3000, "1"), ("c", 4000, "1")]);
    dir_with(tmp.path(), SHARD, Some("c NaN 4\n# EOF\n"), Some(&hist));
    let (_, r) = points(tmp.path(), true);
    assert_eq!(
        r.problems,
        [
            "line 2: a sample at ts 3000 ms where the histograms' side file has a histogram sample of the same series",
            "{__name__=\"c\"} has a staleness marker and a histogram sample at ts 4000 ms",
        ]
    );
    // Out of the window, out of order, an empty file, counts the manifest does not say.
    let hist = hist_text(&[("b", 1, "1"), ("c", W + 1, "1"), ("a", 5, "1")]);
    dir_with(tmp.path(), SHARD, None, Some(&hist));
    let (got, r) = points(tmp.path(), true);
    assert!(got.is_empty());
    assert!(
        r.problems[0].starts_with("sidecar w-0.hist.om.gz: a histogram sample outside the window"),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems[1].contains("invalid native histogram text: line 3: series"),
        "{:?}",
        r.problems
    );
    let hist = hist_text(&[("a", 1, "1")]);
    let mut m = dir_with(tmp.path(), SHARD, None, Some(&hist));
    m.shards[0].sidecars[0].samples = 2;
    m.shards[0].sidecars[0].series = 3;
    save(tmp.path(), &m);
    let (got, r) = points(tmp.path(), true);
    assert!(
        got.is_empty(),
        "a side file unlike its entry gives no point: {got:?}"
    );
    assert_eq!(
        r.problems,
        [
            "sidecar w-0.hist.om.gz: series is 1, the manifest says 3",
            "sidecar w-0.hist.om.gz: samples is 1, the manifest says 2",
        ]
    );
    dir_with(tmp.path(), SHARD, None, Some("# EOF\n"));
    let (_, r) = points(tmp.path(), true);
    assert_eq!(
        r.problems,
        ["sidecar w-0.hist.om.gz: holds no histogram: an empty side file is never written"]
    );
}
