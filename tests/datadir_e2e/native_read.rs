//! The data-dir reader on the Prometheus 3.5.3 native-histogram data dir: it finds exactly the
//! samples, floats and histograms, that the source's query API returns, per series and value,
//! including the first sample of each histogram series that promtool's dump leaves out; the
//! same whether the head is held, replayed after the blocks, or the read split in passes.

use std::collections::BTreeMap;

use prom2om::pipeline::datadir::{self, ReadOptions};

use crate::common::PromVersion;
use crate::histtruth::{first_difference, Collector, Delivered, Got};
use crate::native::{serve_copy, window, ALL};
use crate::scenarios::{fixture, NATIVE};
use crate::truth::{count_over_time, counts, histogram_series, raw_samples_sliced};

/// Reads the data dir as `convert` does (staleness markers dropped: the API leaves them out).
fn read(data: &std::path::Path, share: u64, window: i64) -> (Got, datadir::DirStats) {
    let mut sink = Collector::new(share, window);
    let opened = datadir::open(data).unwrap();
    let pb = indicatif::ProgressBar::hidden();
    let st = datadir::read_dir(opened, &ReadOptions::default(), &mut sink, &pb).unwrap();
    (sink.into_series(), st)
}

fn histograms(s: &[(i64, Delivered)]) -> usize {
    s.iter()
        .filter(|x| matches!(x.1, Delivered::Histogram(_)))
        .count()
}

#[test]
fn data_dir_read_finds_exactly_the_samples_of_the_query_api() {
    let f = fixture(NATIVE, PromVersion::V3_5);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = serve_copy(f, &tmp.path().join("copy"));
    let (from, to) = window(f);
    let api = raw_samples_sliced(&source, ALL, (from, to), 300_000);
    let hist = histogram_series(&api);
    // The head after the blocks; held and joined to the blocks' stream; read in two passes.
    let mut reads = Vec::new();
    for (share, w) in [(0, 0), (1 << 30, 0), (1 << 30, 60_000)] {
        let (got, st) = read(&f.data, share, w);
        if let Some(d) = first_difference(&got, &api) {
            panic!("memory share {share}, window {w}: {d}");
        }
        reads.push((got, st));
    }
    let (got, st) = &reads[0];
    let n: usize = got.values().map(|s| histograms(s)).sum();
    assert_eq!(st.histogram_samples(), n as u64);
    let api_n: u64 = counts(&api).values().map(|c| c.histograms).sum();
    assert_eq!(n as u64, api_n);
    assert!(reads.iter().all(|r| r.1 == *st), "the stats differ by path");
    // count_over_time per histogram metric: what a dashboard counts.
    let names: std::collections::BTreeSet<&String> = hist.iter().map(|k| &k["__name__"]).collect();
    for name in names {
        let want = count_over_time(&source, name, "", from, to);
        let have: BTreeMap<_, u64> = got
            .iter()
            .filter(|(k, _)| &k["__name__"] == name)
            .map(|(k, s)| (k.clone(), s.len() as u64))
            .collect();
        assert_eq!(have, want, "count_over_time of {name}");
    }
    inspect_counts_them(f, got, st);
    // promtool's dump of the same dir leaves out the first histogram of each series.
    let copy = tmp.path().join("dump-copy");
    crate::promdir::copy_dir(&f.data, &copy);
    let dump = crate::common::dump_with(f.version, &copy, None);
    let lines = dump
        .split(|&b| b == b'\n')
        .filter(|l| l.windows(7).any(|w| w == b"{count:"))
        .count();
    eprintln!(
        "{} histogram series, {n} histogram samples read (the API: {api_n}); promtool's dump \
         prints {lines}",
        hist.len()
    );
    assert!(lines < n, "the dump holds every histogram");
}

/// `inspect DIR` counts the histogram samples the read delivers, per family, and their
/// staleness markers apart.
fn inspect_counts_them(f: &crate::scenarios::Fixture, got: &Got, st: &datadir::DirStats) {
    let out = crate::common::run_ok(
        crate::common::prom2om()
            .arg("inspect")
            .arg(&f.data)
            .arg("--json"),
    );
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (k, s) in got {
        *want.entry(k["__name__"].clone()).or_default() += histograms(s) as u64;
    }
    want.retain(|_, n| *n > 0);
    let have: BTreeMap<String, u64> = report["families"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|fam| {
            let n = fam["histogram_samples"].as_u64()?;
            Some((fam["name"].as_str().unwrap().to_string(), n))
        })
        .collect();
    assert_eq!(have, want, "histogram samples per family");
    assert_eq!(report["histogram_samples"], st.histogram_samples());
    // The markers: what a read keeping them passes on beyond the samples.
    let mut sink = Collector::new(0, 0);
    let opts = ReadOptions {
        keep_stale: true,
        ..Default::default()
    };
    let opened = datadir::open(&f.data).unwrap();
    let pb = indicatif::ProgressBar::hidden();
    let kept = datadir::read_dir(opened, &opts, &mut sink, &pb).unwrap();
    assert!(
        kept.histogram_stale_kept > 0,
        "no histogram staleness marker"
    );
    assert_eq!(report["histogram_stale_markers"], kept.histogram_stale_kept);
    assert_eq!(kept.histogram_samples(), st.histogram_samples());
    // Series per family, those of histograms included (the dump loses some of those).
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for k in sink.into_series().keys() {
        *want.entry(k["__name__"].clone()).or_default() += 1;
    }
    let have: BTreeMap<String, u64> = report["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|fam| {
            let n = fam["series"].as_u64().unwrap();
            (fam["name"].as_str().unwrap().to_string(), n)
        })
        .collect();
    assert_eq!(have, want, "series per family");
}

/// Selectors, a time range cutting chunks and label edits apply to histogram series as to
/// floats: the read equals the API's samples of the selector in the range, labels edited.
#[test]
fn selectors_time_range_and_label_edits_apply_to_histograms() {
    use prom2om::select::filter::{Filter, LabelEdits};
    use prom2om::select::selector::Selector;
    let f = fixture(NATIVE, PromVersion::V3_5);
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let source = serve_copy(f, &tmp.path().join("copy"));
    let sel = r#"{__name__=~"hist_native|hist_mixed|awk_size_bytes",kind!="float"}"#;
    // From inside the first block to inside the head, off any scrape or push time.
    let min = f.layout.blocks.iter().map(|b| b.min_time).min().unwrap();
    let max_block = f.layout.blocks.iter().map(|b| b.max_time).max().unwrap();
    let (start, end) = (min + 95_003, max_block + 20_003);
    let api = raw_samples_sliced(&source, sel, (start - 1, end), 300_000);
    assert!(!histogram_series(&api).is_empty());
    let edits = LabelEdits::parse(&["job".into()], &["site=eu".into()]).unwrap();
    let opts = ReadOptions {
        filter: Filter {
            selectors: vec![Selector::parse(sel).unwrap()],
            start: Some(start),
            end: Some(end),
            edits: edits.clone(),
        },
        ..Default::default()
    };
    let mut sink = Collector::new(1 << 30, 60_000);
    let opened = datadir::open(&f.data).unwrap();
    let pb = indicatif::ProgressBar::hidden();
    datadir::read_dir(opened, &opts, &mut sink, &pb).unwrap();
    let got = sink.into_series();
    let want: crate::truth::Samples = api
        .into_iter()
        .map(|(mut k, v)| {
            k.remove("job");
            k.insert("site".into(), "eu".into());
            (k, v)
        })
        .collect();
    if let Some(d) = first_difference(&got, &want) {
        panic!("{sel} in [{start}, {end}], edited: {d}");
    }
}
