//! The streamed path against the sorted one: the same files whatever the input order, passes,
//! layout or staleness markers.
use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::labels::Labels;
use crate::pipeline::feed::{Provenance, SampleSink};
use crate::pipeline::sink::{RunInfo, Sink, SinkOptions, SinkSummary, StaleMode};

type Input = Vec<(Labels, Vec<(i64, f64)>)>;

#[path = "stream_hist_tests.rs"]
mod hist;

#[derive(Clone, Copy)]
struct Opts {
    stream: bool,
    shards: Option<u32>,
    target: u64,
    memory: u64,
    stale: StaleMode,
    block: i64,
    /// The input is dump text: its NaNs get the staleness guess.
    dump: bool,
    /// Plan each window's shards from its exact text size times this ([`Sink::plan_windows`]).
    plan: Option<f64>,
}

impl Opts {
    fn new(stream: bool) -> Opts {
        Opts {
            stream,
            shards: None,
            target: 1 << 30,
            memory: 1 << 30,
            stale: StaleMode::Drop,
            block: 10_000,
            dump: true,
            plan: None,
        }
    }
}

/// Pushes `input` series after series and returns every file of the output directory.
fn run(input: &Input, o: &Opts) -> (Files, SinkSummary) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let mut sink = Sink::create(SinkOptions {
        block_duration_ms: o.block,
        shards: o.shards,
        target_shard_bytes: o.target,
        memory_limit: o.memory,
        stale: o.stale,
        stream: o.stream,
        ..SinkOptions::test_dir(&out, true)
    })
    .unwrap();
    if let Some(scale) = o.plan {
        sink.plan_windows(window_text(input, o.block, scale));
    }
    let from = Provenance {
        nan_markers: o.dump,
        ..Provenance::EXACT
    };
    for (labels, samples) in input {
        let id = sink.series(labels.clone(), from).unwrap();
        for &(ts, v) in samples {
            sink.float(id, ts, v.to_bits()).unwrap();
        }
    }
    let summary = sink.finish(RunInfo::default()).unwrap();
    (files(&out), summary)
}

/// The text of each window as the sink sizes it (prefix and 26 bytes a sample), times `scale`.
fn window_text(input: &Input, block: i64, scale: f64) -> BTreeMap<i64, u64> {
    let mut out = BTreeMap::new();
    for (labels, samples) in input {
        let mut prefix = Vec::new();
        crate::format::openmetrics::write_series_prefix(labels, &mut prefix);
        for &(ts, _) in samples {
            *out.entry(ts.div_euclid(block) * block).or_default() += prefix.len() as u64 + 26;
        }
    }
    out.values_mut()
        .for_each(|v| *v = (*v as f64 * scale) as u64);
    out
}

/// Every file of directory `dir`, by name.
fn files(dir: &std::path::Path) -> Files {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn series(name: &str, inst: u32, samples: Vec<(i64, f64)>) -> (Labels, Vec<(i64, f64)>) {
    let labels = Labels::from_pairs([("__name__", name.to_string()), ("i", inst.to_string())]);
    (labels, samples)
}

fn sorted_input() -> Input {
    let mut input = Vec::new();
    for name in ["a", "b_total"] {
        for inst in 0..5 {
            let samples = (0..40)
                .map(|k| {
                    let v = if k % 7 == 3 { f64::NAN } else { k as f64 };
                    (k * 1000 + inst as i64, v)
                })
                .collect();
            input.push(series(name, inst, samples));
        }
    }
    input
}

fn same_as_sorted(input: &Input, o: Opts) -> SinkSummary {
    let (got, summary) = run(input, &o);
    let (want, _) = run(input, &Opts { stream: false, ..o });
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(got == want, "streamed files differ from sorted ones");
    summary
}

#[test]
fn sorted_input_is_streamed_to_the_same_bytes() {
    let s = same_as_sorted(&sorted_input(), Opts::new(true));
    assert_eq!((s.shards, s.streamed_shards), (4, 4));
    let s = same_as_sorted(
        &sorted_input(),
        Opts {
            shards: Some(3),
            stale: StaleMode::Keep,
            ..Opts::new(true)
        },
    );
    assert_eq!(s.streamed_shards, s.shards);
}

#[test]
fn out_of_order_input_falls_back_to_sorting() {
    let mut input = sorted_input();
    input.swap(2, 7);
    assert_eq!(same_as_sorted(&input, Opts::new(true)).streamed_shards, 0);
    let mut input = sorted_input();
    input[4].1.swap(10, 11);
    assert_eq!(same_as_sorted(&input, Opts::new(true)).streamed_shards, 0);
    // A series seen again later (two dumps concatenated).
    let mut input = sorted_input();
    input.push(input[0].clone());
    assert_eq!(same_as_sorted(&input, Opts::new(true)).streamed_shards, 0);
}

#[test]
fn windows_that_outgrow_the_layout_are_sorted() {
    // About 130 bytes of text per sample: 2 KB is more than one shard for every window.
    let o = Opts {
        target: 2_000,
        ..Opts::new(true)
    };
    let s = same_as_sorted(&sorted_input(), o);
    assert!(s.shards > 4);
    assert_eq!(s.streamed_shards, 0);
    // 16 MiB: room for 3 open shards, so the fourth window is sorted.
    let o = Opts {
        memory: 16 << 20,
        ..Opts::new(true)
    };
    assert_eq!(same_as_sorted(&sorted_input(), o).streamed_shards, 3);
}

#[test]
fn planned_windows_stream_into_their_shards() {
    let o = Opts {
        target: 2_000,
        plan: Some(1.0),
        ..Opts::new(true)
    };
    let s = same_as_sorted(&sorted_input(), o);
    assert!(s.shards > 4);
    assert_eq!(s.streamed_shards, s.shards);
}

#[test]
fn windows_planned_wrong_are_sorted_to_the_same_bytes() {
    for scale in [0.4, 3.0] {
        let o = Opts {
            target: 2_000,
            plan: Some(scale),
            ..Opts::new(true)
        };
        let s = same_as_sorted(&sorted_input(), o);
        assert!(s.shards > 4);
        assert_eq!(s.streamed_shards, 0, "plan {scale}");
    }
}

fn gunzip(b: &[u8]) -> String {
    use std::io::Read;
    let mut s = String::new();
    flate2::read::GzDecoder::new(b)
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn markers_are_carried_beside_their_shards() {
    let stale = f64::from_bits(STALE_NAN_BITS);
    // `a` has its marker alone in the second window; `b` a real NaN beside a marker.
    let input = vec![
        series("a", 0, vec![(0, 1.0), (1000, 2.0), (4500, stale)]),
        series("b", 0, vec![(1000, f64::NAN), (2000, stale), (3000, 5.0)]),
    ];
    let o = Opts {
        block: 4_000,
        dump: false,
        stale: StaleMode::Carry,
        ..Opts::new(true)
    };
    let s = same_as_sorted(&input, o);
    let (files, _) = run(
        &input,
        &Opts {
            block: 4_000,
            dump: false,
            stale: StaleMode::Carry,
            ..Opts::new(true)
        },
    );
    let names: Vec<&str> = files.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "19700101T000000Z-000.om.gz",
            "19700101T000000Z-000.stale.om.gz",
            "19700101T000004Z-000.om.gz",
            "19700101T000004Z-000.stale.om.gz",
            "manifest.json"
        ]
    );
    assert_eq!(
        gunzip(&files["19700101T000000Z-000.om.gz"]),
        "a{i=\"0\"} 1 0\na{i=\"0\"} 2 1\nb{i=\"0\"} NaN 1\nb{i=\"0\"} 5 3\n# EOF\n"
    );
    assert_eq!(
        gunzip(&files["19700101T000000Z-000.stale.om.gz"]),
        "b{i=\"0\"} NaN 2\n# EOF\n"
    );
    // The window of `a`'s marker holds no sample: its shard is `# EOF` alone.
    assert_eq!(gunzip(&files["19700101T000004Z-000.om.gz"]), "# EOF\n");
    assert_eq!(
        gunzip(&files["19700101T000004Z-000.stale.om.gz"]),
        "a{i=\"0\"} NaN 4.5\n# EOF\n"
    );
    let m: crate::format::shard_dir::Manifest =
        serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!((m.totals.samples, m.totals.stale_markers), (4, 2));
    assert_eq!(
        (m.totals.min_ts_ms, m.totals.max_ts_ms),
        (Some(0), Some(3000))
    );
    let e = &m.shards[1];
    assert_eq!((e.samples, e.series, e.sidecars.len()), (0, 0, 1));
    let sc = &e.sidecars[0];
    assert_eq!(
        (
            sc.kind.as_str(),
            sc.series,
            sc.samples,
            sc.min_ts_ms,
            sc.max_ts_ms
        ),
        ("stale_markers", 1, 1, 4500, 4500)
    );
    assert_eq!((s.written.markers.markers, s.written.stale_dropped), (2, 0));
    // Drop removes exactly the markers; keep writes them as NaN; neither writes a sidecar.
    for (stale, shards, samples) in [(StaleMode::Drop, 1, 4), (StaleMode::Keep, 2, 6)] {
        let o = Opts {
            block: 4_000,
            dump: false,
            stale,
            ..Opts::new(true)
        };
        let s = same_as_sorted(&input, o);
        assert_eq!((s.shards, s.written.samples), (shards, samples));
        assert_eq!(s.written.markers.markers, 0);
    }
}

type Files = BTreeMap<String, Vec<u8>>;

/// Pushes `passes` one after the other, a pass boundary at `from` between them, into a
/// streaming sink, and the same samples into a sorting one: both outputs' files.
fn run_passes(passes: &[Input], from: i64) -> (Files, Files, SinkSummary) {
    let mut outs = Vec::new();
    let mut summary = None;
    for stream in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("o");
        let mut sink = Sink::create(SinkOptions {
            block_duration_ms: 10_000,
            stream,
            ..SinkOptions::test_dir(&out, true)
        })
        .unwrap();
        for (i, pass) in passes.iter().enumerate() {
            if i > 0 {
                sink.begin_pass(from).unwrap();
            }
            for (labels, samples) in pass {
                let id = sink.series(labels.clone(), Provenance::EXACT).unwrap();
                for &(ts, v) in samples {
                    sink.float(id, ts, v.to_bits()).unwrap();
                }
            }
        }
        let s = sink.finish(RunInfo::default()).unwrap();
        summary.get_or_insert(s);
        outs.push(files(&out));
    }
    let sorted = outs.pop().unwrap();
    (outs.pop().unwrap(), sorted, summary.unwrap())
}

/// The samples of `input` in [lo, hi).
fn between(input: &Input, lo: i64, hi: i64) -> Input {
    input
        .iter()
        .map(|(l, s)| {
            let s = s.iter().copied().filter(|&(t, _)| lo <= t && t < hi);
            (l.clone(), s.collect())
        })
        .collect()
}

#[test]
fn passes_split_at_a_window_stream_every_window() {
    // Windows of 10 s; the input spans 4 of them, split after the second.
    let input = sorted_input();
    let passes = [
        between(&input, -1, 20_000),
        between(&input, 20_000, 1 << 40),
    ];
    let (got, want, s) = run_passes(&passes, 20_000);
    assert!(got == want, "streamed files differ from sorted ones");
    assert_eq!((s.shards, s.streamed_shards), (4, 4));
    // A series may start in the second pass only, and the first pass may end mid-window:
    // the windows it wrote are still complete.
    let mut passes = [
        between(&input, -1, 15_000),
        between(&input, 20_000, 1 << 40),
    ];
    passes[1].push(series("c", 0, vec![(25_000, 1.0)]));
    let (got, want, s) = run_passes(&passes, 20_000);
    assert!(got == want);
    assert_eq!((s.shards, s.streamed_shards), (4, 4));
}

#[test]
fn a_late_sample_in_a_closed_window_sorts_that_window_only() {
    let input = sorted_input();
    let mut passes = [
        between(&input, -1, 20_000),
        between(&input, 20_000, 1 << 40),
    ];
    // The second pass brings a sample of the first pass's second window (10 s to 20 s).
    passes[1][3].1.insert(0, (15_500, 7.0));
    let (got, want, s) = run_passes(&passes, 20_000);
    assert!(got == want, "streamed files differ from sorted ones");
    assert_eq!((s.shards, s.streamed_shards), (4, 3));
    // A new window before the boundary, met in the second pass only.
    let mut passes = [
        between(&input, 10_000, 20_000),
        between(&input, 20_000, 1 << 40),
    ];
    passes[1][0].1.insert(0, (-3_000, 1.0));
    let (got, want, s) = run_passes(&passes, 20_000);
    assert!(got == want);
    assert_eq!((s.shards, s.streamed_shards), (4, 3));
}

#[test]
fn guessed_series_are_not_streamed_in_passes() {
    // Dump series: the staleness guess looks across windows, hence across passes.
    let input = sorted_input();
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::create(SinkOptions {
        block_duration_ms: 10_000,
        stale: StaleMode::Drop,
        ..SinkOptions::test_dir(&dir.path().join("o"), true)
    })
    .unwrap();
    let dump = Provenance {
        nan_markers: true,
        ..Provenance::EXACT
    };
    for pass in [
        between(&input, -1, 20_000),
        between(&input, 20_000, 1 << 40),
    ] {
        for (labels, samples) in &pass {
            let id = sink.series(labels.clone(), dump).unwrap();
            for &(ts, v) in samples {
                sink.float(id, ts, v.to_bits()).unwrap();
            }
        }
        sink.begin_pass(20_000).unwrap();
    }
    let s = sink.finish(RunInfo::default()).unwrap();
    assert_eq!((s.shards, s.streamed_shards), (4, 0));
}

fn arb_input() -> impl Strategy<Value = Input> {
    let value = prop_oneof![
        4 => (0i32..5).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::from_bits(STALE_NAN_BITS)),
    ];
    // Steps of 0 repeat a timestamp: a duplicate or a conflict, merged as the sort merges it.
    let samples = prop::collection::vec((0i64..3000, value), 0..30).prop_map(|v| {
        let mut ts = -5_000;
        v.into_iter()
            .map(|(step, val)| {
                ts += step;
                (ts, val)
            })
            .collect::<Vec<_>>()
    });
    prop::collection::vec(samples, 1..8).prop_map(|all| {
        all.into_iter()
            .enumerate()
            .map(|(i, s)| series("m", i as u32, s))
            .collect()
    })
}

type Points = std::collections::BTreeSet<(Labels, i64, Option<u64>)>;

/// The samples (NaN as `None`) and the markers of OpenMetrics files.
fn read_back(files: &BTreeMap<String, Vec<u8>>) -> (Points, Points) {
    let (mut samples, mut markers) = (Points::new(), Points::new());
    for (name, bytes) in files.iter().filter(|(n, _)| n.ends_with(".om.gz")) {
        let into = if name.ends_with(".stale.om.gz") {
            &mut markers
        } else {
            &mut samples
        };
        let text = gunzip(bytes);
        crate::format::openmetrics::read(text.as_bytes(), |s| {
            let v = (!s.value.is_nan()).then(|| s.value.to_bits());
            into.insert((s.labels.clone(), s.ts_ms, v));
            Ok(())
        })
        .unwrap();
    }
    (samples, markers)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn streamed_equals_sorted(
        input in arb_input(),
        shards in 1u32..3,
        stale in prop_oneof![Just(StaleMode::Carry), Just(StaleMode::Drop), Just(StaleMode::Keep)],
        dump in any::<bool>(),
    ) {
        let o = Opts {
            shards: Some(shards),
            stale,
            block: 4_000,
            dump,
            ..Opts::new(true)
        };
        let s = same_as_sorted(&input, o);
        prop_assert_eq!(s.streamed_shards, s.shards);
    }

    /// Shards planned from an estimate, right or wrong, give the sorted path's bytes; planned
    /// right, every window streams.
    #[test]
    fn planned_equals_sorted(
        input in arb_input(),
        target in 200u64..3_000,
        scale in prop_oneof![Just(1.0), 0.3f64..3.0],
        dump in any::<bool>(),
    ) {
        let o = Opts {
            target,
            plan: Some(scale),
            block: 4_000,
            dump,
            ..Opts::new(true)
        };
        let s = same_as_sorted(&input, o);
        if scale == 1.0 {
            prop_assert_eq!(s.streamed_shards, s.shards);
        }
    }

    #[test]
    fn carried_markers_read_back(input in arb_input(), shards in 1u32..4) {
        let o = Opts {
            shards: Some(shards),
            stale: StaleMode::Carry,
            block: 4_000,
            dump: false,
            ..Opts::new(false)
        };
        let (files, _) = run(&input, &o);
        let (mut want_samples, mut want_markers) = (Points::new(), Points::new());
        for (labels, samples) in &input {
            // A repeated timestamp keeps the later value.
            let last: BTreeMap<i64, u64> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            for (t, b) in last {
                if b == STALE_NAN_BITS {
                    want_markers.insert((labels.clone(), t, None));
                } else {
                    let v = (!f64::from_bits(b).is_nan()).then_some(b);
                    want_samples.insert((labels.clone(), t, v));
                }
            }
        }
        let (got_samples, got_markers) = read_back(&files);
        prop_assert_eq!(got_samples, want_samples);
        prop_assert_eq!(got_markers, want_markers);
        // What the sink writes, verify accepts.
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in &files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let report = crate::verify::verify_dir(dir.path()).unwrap();
        prop_assert!(report.is_ok(), "{:?} {:?}", report.problems, report.files);
    }
}
