//! The blocks `import` writes itself (no promtool on PATH), for every corpus the tests use: the
//! very bytes promtool's backfill writes for the same shards, `promtool tsdb dump` equal to the
//! source, `promtool tsdb analyze` content, and a real Prometheus 2.42 serving every sample.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use prom2om::format::dump;
use prom2om::format::shard_dir::sha256_hex;

/// `prom2om import SHARDS --tsdb DATA` with no promtool on PATH; must succeed.
fn import_without_promtool(shards: &Path, data: &Path) -> String {
    let mut c = prom2om();
    c.arg("import").arg(shards).arg("--tsdb").arg(data);
    c.env("PATH", "/nonexistent-prom2om-test-path");
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "import: {out}\n{err}");
    out
}

fn import_with_promtool(shards: &Path, data: &Path) {
    let mut c = prom2om();
    c.arg("import").arg(shards).arg("--tsdb").arg(data);
    c.arg(format!("--promtool={}", promtool().display()));
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "import --promtool: {out}\n{err}");
}

/// `prom2om convert DUMP -o SHARDS --stale keep` (every NaN of the source is a real one).
fn convert(dump_file: &Path, shards: &Path) {
    let mut c = prom2om();
    c.arg("convert").arg(dump_file).arg("-o").arg(shards);
    c.args(["--stale", "keep"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 0, "convert: {out}\n{err}");
}

fn block_dirs(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    v.sort();
    v
}

/// Each block's files by their SHA-256, the ULID left out of meta.json: what two writers of
/// the same data share.
fn block_contents(data: &Path) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for b in block_dirs(data) {
        let ulid = b.file_name().unwrap().to_str().unwrap().to_string();
        let meta = std::fs::read_to_string(b.join("meta.json")).unwrap();
        let mut files = vec![meta.replace(&ulid, "ULID")];
        for rel in ["index", "tombstones", "chunks/000001"] {
            let bytes = std::fs::read(b.join(rel)).unwrap();
            files.push(format!("{rel} {}", sha256_hex(&bytes[..]).unwrap()));
        }
        assert!(!b.join("chunks/000002").exists());
        out.insert(files);
    }
    out
}

/// `promtool tsdb analyze DATA ULID` of every block: each must be read whole without complaint.
fn analyze_each(data: &Path) -> usize {
    let blocks = block_dirs(data);
    for b in &blocks {
        let ulid = b.file_name().unwrap();
        let out = Command::new(promtool())
            .args(["tsdb", "analyze"])
            .arg(data)
            .arg(ulid)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "analyze {ulid:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("Block ID: {}", ulid.to_str().unwrap())),
            "{text}"
        );
    }
    blocks.len()
}

/// Imports the shards of `dump_file` both ways and checks everything this file promises.
fn check_corpus(tmp: &Path, dump_file: &Path) -> PathBuf {
    let shards = tmp.join("shards");
    convert(dump_file, &shards);
    let data = tmp.join("data");
    let out = import_without_promtool(&shards, &data);
    assert!(out.contains("failed 0"), "{out}");
    let want = sample_set(&std::fs::read(dump_file).unwrap());
    assert_eq!(
        sample_set(&dump(&data, None)),
        want,
        "dump of the imported blocks"
    );
    let n = analyze_each(&data);
    let by_promtool = tmp.join("data-promtool");
    import_with_promtool(&shards, &by_promtool);
    assert_eq!(
        block_contents(&data),
        block_contents(&by_promtool),
        "the blocks promtool writes for the same shards"
    );
    assert_eq!(n, block_dirs(&by_promtool).len());
    data
}

#[test]
fn awkward_corpus_blocks_equal_promtools_and_dump_back_to_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source_dump) = awkward_tsdb(tmp.path());
    let dump_file = tmp.path().join("awkward.dump");
    std::fs::write(&dump_file, &source_dump).unwrap();
    check_corpus(tmp.path(), &dump_file);
}

#[test]
fn sample_dump_of_many_windows_and_1970_timestamps() {
    let tmp = tempfile::tempdir().unwrap();
    let data = check_corpus(tmp.path(), &testdata("sample.dump"));
    assert!(block_dirs(&data).len() >= 4);
}

#[test]
fn generated_corpus_over_thirty_hours() {
    let tmp = tempfile::tempdir().unwrap();
    let dump_file = tmp.path().join("gen.dump");
    let spec = prom2om::corpus::CorpusSpec {
        series: 60,
        hours: 30.0,
        interval_ms: 20_000,
        start_ms: 1_700_000_123_456,
        seed: 7,
        ..Default::default()
    };
    write_corpus(&dump_file, &spec);
    let data = check_corpus(tmp.path(), &dump_file);
    assert!(block_dirs(&data).len() >= 15);
}

#[test]
fn quoted_names_are_written_as_they_are() {
    let tmp = tempfile::tempdir().unwrap();
    let dump_file = tmp.path().join("q.dump");
    std::fs::write(
        &dump_file,
        "{__name__=\"service.requests\", job=\"a\"} 1 1700000000000\n\
         {__name__=\"up\", \"k8s.pod\"=\"b\"} 2 1700000000000\n\
         {__name__=\"up\", job=\"x\"} 3 1700000000000\n",
    )
    .unwrap();
    let shards = tmp.path().join("shards");
    convert(&dump_file, &shards);
    let data = tmp.path().join("data");
    import_without_promtool(&shards, &data);
    // promtool 2.42 prints every name bare.
    let want: BTreeSet<String> = [
        "{__name__=\"service.requests\", job=\"a\"} 1 1700000000000",
        "{__name__=\"up\", job=\"x\"} 3 1700000000000",
        "{__name__=\"up\", k8s.pod=\"b\"} 2 1700000000000",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(dump_lines(&data), want);
    assert_eq!(analyze_each(&data), 1);
}

/// (labels, ms, value bits with NaN folded).
type Sample = (Vec<(String, String)>, i64, u64);

fn fold(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

fn samples_of_dump(text: &[u8]) -> BTreeSet<Sample> {
    let mut out = BTreeSet::new();
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let l = dump::parse_line(line).unwrap();
        let labels = dump::decode_labels(l.labels).unwrap();
        let dump::Value::Float(v) = l.value else {
            panic!("no histograms here")
        };
        let pairs = labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        out.insert((pairs, l.ts, fold(v)));
    }
    out
}

/// Every sample the server returns for `{__name__=~".+"}[100y]` at `time_s`.
fn served(server: &Prom, time_s: i64) -> BTreeSet<Sample> {
    server
        .matrix(r#"{__name__=~".+"}[100y]"#, time_s)
        .into_iter()
        .map(|(labels, ms, v)| (labels, ms, fold(v)))
        .collect()
}

#[test]
fn prometheus_serves_every_sample_of_the_written_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = tmp.path().join("shards");
    convert(&testdata("sample.dump"), &shards);
    let data = tmp.path().join("data");
    import_without_promtool(&shards, &data);
    let want = samples_of_dump(&std::fs::read(testdata("sample.dump")).unwrap());
    let max_ms = want.iter().map(|s| s.1).max().unwrap();
    let server = Prom::start(&data);
    let got = served(&server, max_ms / 1000 + 1);
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
}
