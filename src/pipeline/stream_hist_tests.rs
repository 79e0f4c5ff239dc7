//! Native histograms through the sink: streamed and sorted paths, spilled or not, write the same
//! side files, which read back (through the shard directory's reader) as exactly what went in,
//! the later sample winning at a repeated timestamp, float or histogram.
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{files, gunzip, Files, Opts};
use crate::exit_codes::ExitCode;
use crate::format::histogram::{CounterResetHint, FloatHistogram, Histogram, HistogramValue, Span};
use crate::format::shard_dir::{ShardDir, Value};
use crate::format::tsdb::xor::STALE_NAN_BITS;
use crate::labels::Labels;
use crate::pipeline::feed::{Provenance, SampleSink};
use crate::pipeline::sink::{Output, RunInfo, Sink, SinkOptions, SinkSummary, StaleMode};

/// A sample of the input: a float's value, or a histogram.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    F(f64),
    H(HistogramValue),
}

type Mixed = Vec<(Labels, Vec<(i64, Val)>)>;

fn labels(name: &str, i: u32) -> Labels {
    Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())])
}

fn run_mixed(input: &Mixed, o: &Opts) -> (Files, SinkSummary) {
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
    for (l, samples) in input {
        let id = sink.series(l.clone(), Provenance::EXACT).unwrap();
        for (ts, v) in samples {
            match v {
                Val::F(f) => sink.float(id, *ts, f.to_bits()).unwrap(),
                Val::H(h) => sink.histogram(id, *ts, h).unwrap(),
            }
        }
    }
    let summary = sink.finish(RunInfo::default()).unwrap();
    (files(&out), summary)
}

/// Streamed against sorted, and against sorted in 1 MiB of memory (spilled): the same files.
fn same_everywhere(input: &Mixed, o: Opts) -> (Files, SinkSummary) {
    let (got, summary) = run_mixed(input, &o);
    let (sorted, _) = run_mixed(input, &Opts { stream: false, ..o });
    assert!(got == sorted, "streamed files differ from sorted ones");
    let small = Opts {
        stream: false,
        memory: 1,
        ..o
    };
    let (spilled, s) = run_mixed(input, &small);
    assert!(got == spilled, "spilled files differ");
    let _ = s;
    (got, summary)
}

/// What a point reads back as: a float's bits (any NaN as one), a float marker, a histogram.
#[derive(Clone, Debug, PartialEq)]
enum Back {
    F(u64),
    M,
    H(HistogramValue),
}

fn float_back(v: f64) -> Back {
    Back::F(if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    })
}

type Points = BTreeMap<(Labels, i64), Back>;

/// Every point of a directory's files, through the shard directory's reader, which also
/// verifies every file.
fn read_back(files: &Files) -> Points {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let report = crate::verify::verify_dir(dir.path()).unwrap();
    assert!(report.is_ok(), "{:?} {:?}", report.problems, report.files);
    let sd = ShardDir::open(dir.path()).unwrap();
    let mut out = Points::new();
    for i in 0..sd.manifest().shards.len() {
        sd.read_points(i, |p| {
            let v = match p.value {
                Value::Float(v) => float_back(v),
                Value::StaleMarker => Back::M,
                Value::Histogram(h) => Back::H(h.clone()),
            };
            assert!(out.insert((p.labels.clone(), p.ts_ms), v).is_none());
            Ok(())
        })
        .unwrap();
    }
    out
}

/// What the input should read back as: the later sample of a timestamp wins, whatever its
/// kind; markers as `stale` says.
fn expected(input: &Mixed, stale: StaleMode) -> Points {
    let mut out = Points::new();
    for (l, samples) in input {
        let last: BTreeMap<i64, &Val> = samples.iter().map(|(t, v)| (*t, v)).collect();
        for (t, v) in last {
            let back = match v {
                Val::F(f) if f.to_bits() == STALE_NAN_BITS => match stale {
                    StaleMode::Drop => continue,
                    StaleMode::Carry => Back::M,
                    StaleMode::Keep => float_back(*f),
                },
                Val::F(f) => float_back(*f),
                Val::H(h) if h.is_stale() && stale == StaleMode::Drop => continue,
                Val::H(h) => Back::H(h.clone()),
            };
            out.insert((l.clone(), t), back);
        }
    }
    out
}

fn int(count: u64, sum: f64, hint: CounterResetHint) -> HistogramValue {
    HistogramValue::Int(Histogram {
        hint,
        schema: 3,
        zero_threshold: 1e-128f64.to_bits(),
        zero_count: 1,
        count,
        sum: sum.to_bits(),
        positive_spans: vec![
            Span {
                offset: -2,
                length: 2,
            },
            Span {
                offset: 3,
                length: 1,
            },
        ],
        positive_buckets: vec![1, count as i64 - 3, -1],
        ..Histogram::default()
    })
}

fn nhcb(count: f64) -> HistogramValue {
    HistogramValue::Float(FloatHistogram {
        schema: -53,
        count: count.to_bits(),
        sum: (count * 0.25).to_bits(),
        positive_spans: vec![Span {
            offset: 0,
            length: 3,
        }],
        positive_buckets: vec![0, count.to_bits(), f64::NAN.to_bits()],
        custom_values: vec![0.1f64.to_bits(), 1f64.to_bits()],
        ..FloatHistogram::default()
    })
}

/// Float and histogram series, a series that changes type, markers of both kinds.
fn mixed_input() -> Mixed {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let mut input = Vec::new();
    for i in 0..3 {
        let s = (0..12)
            .map(|k| (k * 1000 + i as i64, Val::F(k as f64)))
            .collect();
        input.push((labels("a", i), s));
    }
    let mut h: Vec<(i64, Val)> = (0..12)
        .map(|k| {
            (
                k * 1000,
                Val::H(int(
                    k as u64 + 4,
                    k as f64,
                    CounterResetHint::NotCounterReset,
                )),
            )
        })
        .collect();
    h.push((12_500, Val::H(HistogramValue::Int(Histogram::stale()))));
    input.push((labels("b_seconds", 0), h));
    let n = (0..6)
        .map(|k| (k * 2000 + 7, Val::H(nhcb(k as f64))))
        .collect();
    input.push((labels("c_nhcb", 1), n));
    // A metric that changed type: floats, then histograms, a float marker between.
    let mut t: Vec<(i64, Val)> = (0..4).map(|k| (k * 1000, Val::F(1.0))).collect();
    t.push((4000, Val::F(stale)));
    t.extend((5..9).map(|k| (k * 1000, Val::H(int(9, 1.5, CounterResetHint::Unknown)))));
    input.push((labels("d", 0), t));
    input
}

#[test]
fn histograms_stream_sort_and_spill_to_the_same_side_files() {
    let input = mixed_input();
    for stale in [StaleMode::Carry, StaleMode::Keep, StaleMode::Drop] {
        let o = Opts {
            block: 5_000,
            dump: false,
            stale,
            ..Opts::new(true)
        };
        let (files, s) = same_everywhere(&input, o);
        assert_eq!(s.streamed_shards, s.shards, "{stale:?}");
        assert_eq!(read_back(&files), expected(&input, stale), "{stale:?}");
        let h = &s.written.histograms;
        let markers = u64::from(stale != StaleMode::Drop);
        assert_eq!(
            (h.samples, h.stale_markers, h.stale_dropped),
            (22, markers, 1 - markers)
        );
        let m: crate::format::shard_dir::Manifest =
            serde_json::from_slice(&files["manifest.json"]).unwrap();
        assert_eq!(
            (m.totals.histogram_samples, m.totals.histogram_stale_markers),
            (22, markers)
        );
        // Every series that holds a sample counts, a series of histograms only too.
        assert_eq!((m.totals.series, s.series), (6, 6));
    }
    let o = Opts {
        block: 5_000,
        dump: false,
        stale: StaleMode::Carry,
        ..Opts::new(true)
    };
    let (files, _) = run_mixed(&input, &o);
    let names: Vec<&str> = files.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "19700101T000000Z-000.hist.om.gz",
            "19700101T000000Z-000.om.gz",
            "19700101T000000Z-000.stale.om.gz",
            "19700101T000005Z-000.hist.om.gz",
            "19700101T000005Z-000.om.gz",
            "19700101T000010Z-000.hist.om.gz",
            "19700101T000010Z-000.om.gz",
            "manifest.json"
        ]
    );
    // The side file: the shard's series text and order, one line per sample.
    let side = gunzip(&files["19700101T000010Z-000.hist.om.gz"]);
    let lines: Vec<&str> = side.lines().collect();
    assert!(
        lines[0].starts_with("b_seconds{i=\"0\"} {count:14,sum:10,schema:3,"),
        "{side}"
    );
    assert!(
        lines[0].ends_with(",counter_reset_hint:not_reset,kind:int} 10"),
        "{side}"
    );
    assert!(
        lines[2].starts_with("b_seconds{i=\"0\"} {count:0,sum:StaleNaN,"),
        "{side}"
    );
    assert!(lines[2].ends_with(" 12.5"), "{side}");
    assert!(
        lines[3].starts_with("c_nhcb{i=\"1\"} {count:5,sum:1.25,schema:-53,"),
        "{side}"
    );
    assert_eq!(lines.last(), Some(&"# EOF"));
}

#[test]
fn a_float_and_a_histogram_at_one_timestamp_the_later_wins_and_streaming_leaves_it_to_the_sort() {
    let h = int(5, 1.0, CounterResetHint::Unknown);
    let input: Mixed = vec![
        (
            labels("x", 0),
            vec![
                (1000, Val::F(1.0)),
                (1000, Val::H(h.clone())),
                (2000, Val::H(h.clone())),
                (2000, Val::F(2.0)),
                (3000, Val::H(h.clone())),
                (3000, Val::H(h.clone())),
            ],
        ),
        (labels("y", 0), vec![(1000, Val::F(1.0))]),
    ];
    let o = Opts {
        dump: false,
        stale: StaleMode::Carry,
        ..Opts::new(true)
    };
    let (files, s) = same_everywhere(&input, o);
    assert_eq!(s.streamed_shards, 0);
    assert_eq!((s.written.conflicts, s.written.duplicates), (2, 1));
    assert_eq!(read_back(&files), expected(&input, StaleMode::Carry));
}

#[test]
fn histograms_beyond_the_memory_limit_are_spilled() {
    // About 10 MB of histogram text: more than the 1 MiB a sink of 1 byte's limit keeps.
    let mut input: Mixed = Vec::new();
    for i in 0..40 {
        let s = (0..1000)
            .map(|k| {
                (
                    k * 15_000,
                    Val::H(int(k as u64 + 3, k as f64 / 7.0, CounterResetHint::Gauge)),
                )
            })
            .collect();
        input.push((labels("h", i), s));
    }
    input.reverse();
    // One shard (an external sort of the window) and three (the window's records distributed
    // to the shards first): the records point into the window's texts either way.
    for shards in [None, Some(3)] {
        let o = Opts {
            dump: false,
            block: 7_200_000,
            stream: false,
            shards,
            ..Opts::new(false)
        };
        let (all, _) = run_mixed(&input, &o);
        let (spilled, s) = run_mixed(&input, &Opts { memory: 1, ..o });
        assert!(s.spilled_bytes > 8 << 20, "{}", s.spilled_bytes);
        assert!(all == spilled, "spilled files differ");
        assert_eq!(read_back(&spilled).len(), 40_000);
    }
}

#[test]
fn histograms_are_refused_where_they_cannot_go() {
    let mut sink = Sink::create(SinkOptions {
        output: Output::Stdout,
        ..SinkOptions::test_dir(std::path::Path::new("unused"), false)
    })
    .unwrap();
    let id = sink.series(labels("h", 0), Provenance::EXACT).unwrap();
    let err = sink
        .histogram(id, 5, &int(5, 1.0, CounterResetHint::Unknown))
        .unwrap_err();
    assert_eq!(ExitCode::of(&err), ExitCode::BadInput);
    assert!(
        err.to_string()
            .contains("-o - cannot carry native histograms"),
        "{err}"
    );
    sink.abandon();

    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::create(SinkOptions::test_dir(&dir.path().join("o"), true)).unwrap();
    let id = sink.series(labels("h", 0), Provenance::EXACT).unwrap();
    let mut bad = int(5, 1.0, CounterResetHint::Unknown);
    if let HistogramValue::Int(h) = &mut bad {
        h.positive_buckets.pop();
    }
    let err = sink.histogram(id, 5, &bad).unwrap_err();
    assert_eq!(ExitCode::of(&err), ExitCode::BadInput);
    assert!(
        err.to_string()
            .contains("the positive spans lay out 3 buckets, but there are 2"),
        "{err}"
    );
    sink.abandon();
}

fn arb_hist() -> impl Strategy<Value = HistogramValue> {
    prop_oneof![
        (0u64..50, -2.0f64..2.0, 0u8..4).prop_map(|(c, s, h)| int(
            c + 3,
            s,
            CounterResetHint::from_u8(h).unwrap()
        )),
        (0.0f64..9.0).prop_map(nhcb),
        Just(HistogramValue::Int(Histogram::stale())),
        Just(HistogramValue::Float(FloatHistogram::stale())),
    ]
}

fn arb_mixed() -> impl Strategy<Value = Mixed> {
    let val = prop_oneof![
        3 => (0i32..5).prop_map(|v| Val::F(f64::from(v))),
        1 => Just(Val::F(f64::NAN)),
        1 => Just(Val::F(f64::from_bits(STALE_NAN_BITS))),
        3 => arb_hist().prop_map(Val::H),
    ];
    // Steps of 0 repeat a timestamp: a duplicate or a conflict, of one kind or of both.
    let samples = prop::collection::vec((0i64..3000, val), 0..25).prop_map(|v| {
        let mut ts = -5_000;
        v.into_iter()
            .map(|(step, val)| {
                ts += step;
                (ts, val)
            })
            .collect::<Vec<_>>()
    });
    prop::collection::vec(samples, 1..7).prop_map(|all| {
        all.into_iter()
            .enumerate()
            .map(|(i, s)| (labels("m", i as u32), s))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn streamed_sorted_and_spilled_histograms_read_back_exactly(
        input in arb_mixed(),
        shards in 1u32..3,
        stale in prop_oneof![Just(StaleMode::Carry), Just(StaleMode::Drop), Just(StaleMode::Keep)],
    ) {
        let o = Opts {
            shards: Some(shards),
            stale,
            block: 4_000,
            dump: false,
            ..Opts::new(true)
        };
        let (files, _) = same_everywhere(&input, o);
        prop_assert_eq!(read_back(&files), expected(&input, stale));
    }
}
