//! `prom2om convert DIR` and `inspect DIR` on real Prometheus 2.42 data dirs (blocks, compacted
//! blocks, tombstones, WAL with checkpoint, m-mapped head chunks, wbl): byte-identical to
//! converting `promtool tsdb dump` of a copy, staleness dropped exactly as a serving 2.42 exports
//! it over remote read, and the directory left untouched. The dirs are built once per run
//! (`tests/common/scenarios.rs`, about 90 s); `PROM2OM_FIXTURES_OUT=DIR cargo test --test
//! datadir_e2e scenarios` also writes them, with promtool dumps and a README, to DIR. `journey.rs`
//! takes one of them home: convert, import, and a home Prometheus answering as the source.

mod common;

/// The whole journey with staleness, on the same fixtures.
#[path = "datadir_e2e/journey.rs"]
mod journey;
#[path = "common/promdir.rs"]
#[allow(dead_code)]
mod promdir;
#[path = "common/scenarios.rs"]
#[allow(dead_code)]
mod scenarios;

use std::collections::BTreeMap;
use std::path::Path;

use common::{prom2om, run_ok, series_set, Prom};
use promdir::{copy_dir, listing, Layout};
use scenarios::{fixtures, Fixture};

/// Selectors with regexes, negative matchers and awkward values, over every fixture.
const SELECTORS: &[&[&str]] = &[
    &["awk_gauge"],
    &[r#"{__name__=~"hist_.*",idx!~"00[0-4]"}"#],
    &[r#"{__name__=~"awk_(many|nan|special)",grp!="g3"}"#],
    &[r#"awk_gauge{quote="say \"hi\""}"#, r#"{nl="a\nb"}"#],
    &[
        r#"hist_utf8{v="日本語 ünïcödé 🚀"}"#,
        r#"{env=~"tést.*",job="awkward"}"#,
    ],
    &["up", "ooo_only", r#"{__name__=~"awk_deleted|awk_flappy"}"#],
    &[r#"{__name__=~".+",__name__!~"prometheus_.*|go_.*|net_.*"}"#],
    &[r#"{__name__="hist_gauge",idx=~"00[1-5]"}"#],
];

/// `promtool tsdb dump` of a copy of the fixture (2.42's dump may write into the dir it reads).
fn promtool_dump(f: &Fixture, work: &Path) -> std::path::PathBuf {
    let copy = work.join(format!("{}-copy", f.name));
    copy_dir(&f.data, &copy);
    let out = work.join(format!("{}.dump", f.name));
    std::fs::write(&out, common::dump(&copy, None)).unwrap();
    out
}

fn convert(input: &Path, extra: &[String]) -> Vec<u8> {
    run_ok(
        prom2om()
            .arg("convert")
            .arg(input)
            .args(["-q", "-o", "-"])
            .args(extra),
    )
}

/// Fails with the first line where two outputs differ.
fn assert_same(what: &str, dir_out: &[u8], dump_out: &[u8]) {
    if dir_out == dump_out {
        return;
    }
    let a: Vec<&[u8]> = dir_out.split(|&b| b == b'\n').collect();
    let b: Vec<&[u8]> = dump_out.split(|&b| b == b'\n').collect();
    let i = (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .unwrap();
    let show = |v: &[&[u8]]| {
        v.get(i)
            .map_or("<end>".into(), |l| String::from_utf8_lossy(l).into_owned())
    };
    panic!(
        "{what}: outputs differ at line {} ({} vs {} lines)\n  from the dir:  {}\n  from the dump: {}",
        i + 1,
        a.len(),
        b.len(),
        show(&a),
        show(&b)
    );
}

/// Unix seconds with milliseconds, as --start/--end take them.
fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// A range that starts 30.5 s into the second block and ends in the head, halfway between the
/// end of the last block and the last sample of the dump.
fn cutting_range(l: &Layout, dump: &[u8]) -> (i64, i64) {
    let mut mins: Vec<i64> = l.blocks.iter().map(|b| b.min_time).collect();
    mins.sort();
    let last_block = l.blocks.iter().map(|b| b.max_time).max().unwrap();
    let last_sample = dump
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            std::str::from_utf8(line)
                .ok()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(last_block);
    (
        mins[1] + 30_500,
        last_block + (last_sample - last_block).max(0) / 2,
    )
}

#[test]
fn scenarios_build_real_data_dirs() {
    let work = tempfile::tempdir().unwrap();
    for f in fixtures() {
        eprintln!("{}:\n{}", f.name, f.layout.describe());
        let dump = std::fs::read(promtool_dump(f, work.path())).unwrap();
        assert!(
            series_set(&dump).len() > 300,
            "{}: the dump holds few series",
            f.name
        );
    }
}

#[test]
fn convert_dir_equals_converted_promtool_dump() {
    let work = tempfile::tempdir().unwrap();
    for f in fixtures() {
        let before = listing(&f.data);
        let dump = promtool_dump(f, work.path());
        // Some selectors keep nothing in some dirs: both sides must then agree on that too.
        let keep = || vec!["--stale".into(), "keep".into(), "--allow-empty".into()];
        let whole = convert(&f.data, &keep());
        assert!(whole.len() > 100_000, "{}: little output", f.name);
        assert_same(f.name, &whole, &convert(&dump, &keep()));
        let (start, end) = cutting_range(&f.layout, &std::fs::read(&dump).unwrap());
        let ranged = |sel: &[&str]| {
            let mut a = keep();
            a.extend(["--start".into(), secs(start), "--end".into(), secs(end)]);
            a.extend(sel.iter().map(|s| format!("--match={s}")));
            a
        };
        for sel in SELECTORS {
            let mut args = keep();
            args.extend(sel.iter().map(|s| format!("--match={s}")));
            let what = format!("{} {sel:?}", f.name);
            assert_same(&what, &convert(&f.data, &args), &convert(&dump, &args));
            let what = format!("{what} --start {} --end {}", secs(start), secs(end));
            assert_same(
                &what,
                &convert(&f.data, &ranged(sel)),
                &convert(&dump, &ranged(sel)),
            );
        }
        assert_same(
            &format!("{} --start {} --end {}", f.name, secs(start), secs(end)),
            &convert(&f.data, &ranged(&[])),
            &convert(&dump, &ranged(&[])),
        );
        assert_eq!(before, listing(&f.data), "{}: the dir changed", f.name);
    }
}

#[test]
fn blocks_alone_equal_the_promtool_dump() {
    // The persisted blocks without the head: compacted, out-of-order and tombstoned blocks,
    // staleness markers next to real NaNs. 2.42's dump needs a wal/ dir, even an empty one.
    let work = tempfile::tempdir().unwrap();
    for f in fixtures() {
        let data = work.path().join(f.name);
        copy_dir(&f.data, &data);
        for sub in ["wal", "chunks_head", "wbl"] {
            let _ = std::fs::remove_dir_all(data.join(sub));
        }
        std::fs::create_dir(data.join("wal")).unwrap();
        let copy = work.path().join(format!("{}-blocks-copy", f.name));
        copy_dir(&data, &copy);
        let dump = work.path().join(format!("{}-blocks.dump", f.name));
        std::fs::write(&dump, common::dump(&copy, None)).unwrap();
        let keep = ["--stale".to_string(), "keep".to_string()];
        assert_same(
            &format!("{} (blocks only)", f.name),
            &convert(&data, &keep),
            &convert(&dump, &keep),
        );
    }
}

#[test]
fn default_convert_drops_markers_as_remote_read_of_a_serving_prometheus() {
    let work = tempfile::tempdir().unwrap();
    for f in fixtures() {
        let copy = work.path().join(f.name);
        copy_dir(&f.data, &copy);
        let prom = Prom::start_config(&copy, &f.serve_config, &[]);
        let start = f.layout.blocks.iter().map(|b| b.min_time).min().unwrap() - 1_000;
        let end = promdir::now_ms();
        let range = ["--start".into(), secs(start), "--end".into(), secs(end)];
        let fetched = run_ok(
            prom2om()
                .args([
                    "fetch",
                    "-q",
                    "--url",
                    &prom.url(),
                    "--method",
                    "remote-read",
                ])
                .args(["-m", r#"{__name__=~".+"}"#, "-o", "-"])
                .args(&range),
        );
        drop(prom);
        let converted = convert(&f.data, &range);
        assert_same(
            &format!(
                "{}: convert DIR (default) vs fetch --method remote-read",
                f.name
            ),
            &converted,
            &fetched,
        );
        let text = String::from_utf8_lossy(&converted);
        assert!(
            text.contains("NaN"),
            "{}: no real NaN survived the drop of markers",
            f.name
        );
    }
}

/// The files of a shard directory, by name; the manifest without the fields that tell the runs
/// apart (version, source, inputs, filters).
fn shard_dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let mut bytes = std::fs::read(e.path()).unwrap();
        if name == "manifest.json" {
            let mut m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for k in ["prom2om_version", "source", "inputs", "filters"] {
                m.as_object_mut().unwrap().remove(k);
            }
            bytes = serde_json::to_vec_pretty(&m).unwrap();
        }
        out.insert(name, bytes);
    }
    out
}

/// The sample lines of OpenMetrics text (`# EOF` left out).
fn om_lines(text: &[u8]) -> std::collections::BTreeSet<Vec<u8>> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .map(|l| l.to_vec())
        .collect()
}

fn gunzip(path: &Path) -> Vec<u8> {
    use std::io::Read;
    let mut text = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    text
}

#[test]
fn carried_markers_are_the_sources_exactly_and_equal_remote_reads() {
    let work = tempfile::tempdir().unwrap();
    for f in fixtures() {
        let copy = work.path().join(f.name);
        copy_dir(&f.data, &copy);
        let prom = Prom::start_config(&copy, &f.serve_config, &[]);
        let start = f.layout.blocks.iter().map(|b| b.min_time).min().unwrap() - 1_000;
        let end = promdir::now_ms();
        let range = ["--start".into(), secs(start), "--end".into(), secs(end)];
        let fetch = |extra: &[&str]| {
            let mut c = prom2om();
            c.args([
                "fetch",
                "-q",
                "--url",
                &prom.url(),
                "--method",
                "remote-read",
            ])
            .args(["-m", r#"{__name__=~".+"}"#, "--block-duration", "1m"])
            .args(&range)
            .args(extra);
            c
        };
        let b = work.path().join(format!("{}-fetched", f.name));
        run_ok(fetch(&["-o", b.to_str().unwrap()]).arg("--shards").arg("2"));
        // Prometheus's own word on which samples are markers: its remote read answer with the
        // markers kept as NaN, less the answer with them dropped.
        let kept = run_ok(
            fetch(&["--stale", "keep", "-o", "-"])
                .arg("--shards")
                .arg("1"),
        );
        let dropped = run_ok(
            fetch(&["--stale", "drop", "-o", "-"])
                .arg("--shards")
                .arg("1"),
        );
        drop(prom);
        let a = work.path().join(format!("{}-converted", f.name));
        run_ok(
            prom2om()
                .arg("convert")
                .arg(&f.data)
                .args(["-q", "--block-duration", "1m", "--shards", "2", "-o"])
                .arg(&a)
                .args(&range),
        );
        let (fa, fb) = (shard_dir_files(&a), shard_dir_files(&b));
        assert_eq!(
            fa.keys().collect::<Vec<_>>(),
            fb.keys().collect::<Vec<_>>(),
            "{}: files of convert DIR vs fetch --method remote-read",
            f.name
        );
        for (name, bytes) in &fa {
            assert!(
                *bytes == fb[name],
                "{}: {name} differs between convert DIR and fetch --method remote-read",
                f.name
            );
        }
        let want: std::collections::BTreeSet<Vec<u8>> = om_lines(&kept)
            .difference(&om_lines(&dropped))
            .cloned()
            .collect();
        let mut got = std::collections::BTreeSet::new();
        for side in common::sidecar_files(&a) {
            got.extend(om_lines(&gunzip(&side)));
        }
        assert!(
            f.name != "stale_restart" || want.len() > 100,
            "{}: few markers ({})",
            f.name,
            want.len()
        );
        assert!(got == want, "{}: the sidecars' markers differ", f.name);
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(a.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(
            m["totals"]["stale_markers"].as_u64().unwrap_or(0),
            want.len() as u64
        );
        assert_eq!(m["filters"]["stale"], "carry");
        run_ok(prom2om().arg("verify").arg(&a));
    }
}

#[test]
fn inspect_dir_counts_the_series_of_the_dump() {
    let work = tempfile::tempdir().unwrap();
    for f in fixtures() {
        let dump = std::fs::read(promtool_dump(f, work.path())).unwrap();
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for s in series_set(&dump) {
            let s = String::from_utf8(s).unwrap();
            let name = s
                .split_once("__name__=\"")
                .map(|(_, r)| r.split('"').next().unwrap().to_string())
                .unwrap_or_default();
            *want.entry(name).or_default() += 1;
        }
        let out = run_ok(prom2om().arg("inspect").arg(&f.data).arg("--json"));
        let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let got: BTreeMap<String, u64> = report["families"]
            .as_array()
            .unwrap()
            .iter()
            .map(|fam| {
                (
                    fam["name"].as_str().unwrap().to_string(),
                    fam["series"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, want, "{}: families and series counts", f.name);
        assert_eq!(
            report["series"].as_u64().unwrap(),
            want.values().sum::<u64>(),
            "{}: total series",
            f.name
        );
        // Samples too: tombstones in blocks and head applied, repeated head samples once.
        let lines = dump
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert_eq!(
            report["samples"].as_u64().unwrap(),
            lines as u64,
            "{}: total samples",
            f.name
        );
    }
}
