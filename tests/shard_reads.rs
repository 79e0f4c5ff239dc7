//! The shard directory read as one format: `import --tsdb` (prom2om's writer and promtool's) and
//! `import --remote-write` into a real Prometheus 2.42 and 3.5.3 receiver open the manifest and
//! each shard and sidecar file exactly once (counted under strace), and a shard or sidecar that
//! gunzips to more than the manifest states is refused by every command that reads it.

mod common;
mod fetch_support;
mod rw_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{gzip, prom2om, promtool, run, tool, PromVersion};
use prom2om::format::openmetrics::{write_sample, write_series_prefix, EOF_LINE};
use prom2om::format::shard_dir::{
    file_name, series_hash, sha256_hex, stale_sidecar_name, Manifest, ShardEntry, Sidecar,
    MANIFEST_FILE, SIDECAR_STALE_MARKERS,
};
use prom2om::labels::Labels;

const W: i64 = 7_200_000;
const BASE: i64 = 1_700_000_000_000 / W * W;
const STEP: i64 = 60_000;

fn labels(i: u32) -> Labels {
    Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
}

fn prefix(l: &Labels) -> Vec<u8> {
    let mut p = Vec::new();
    write_series_prefix(l, &mut p);
    p
}

/// One file's text, written gzipped into `dir`: its manifest entry's counts, sizes and sum.
fn put(dir: &Path, file: &str, text: &[u8]) -> ShardEntry {
    let stored = gzip(text);
    std::fs::write(dir.join(file), &stored).unwrap();
    let st = prom2om::format::openmetrics::read(text, |_| Ok(())).unwrap();
    ShardEntry {
        file: file.into(),
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

/// A shard directory as the writer lays it out: two 2h windows of two shards each, every series
/// in the shard its hash names; `m{i="0"}` has a staleness marker between two samples, and
/// `m{i="4"}` and `m{i="5"}`, which end with window 0, have their markers in window 1, where
/// they have no sample. Returns the directory and the names of all its shards and sidecars.
fn shard_dir(root: &Path) -> (PathBuf, Vec<String>) {
    let dir = root.join("shards");
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = Manifest {
        prom2om_version: "test".into(),
        source: "convert".into(),
        block_duration_ms: W,
        compressed: true,
        ..Manifest::default()
    };
    let mut files = Vec::new();
    for w in 0..2i64 {
        let start = BASE + w * W;
        for s in 0..2u64 {
            let mut text = Vec::new();
            let mut side = Vec::new();
            for i in 0..8u32 {
                let l = labels(i);
                let p = prefix(&l);
                if series_hash(&p) % 2 != s {
                    continue;
                }
                let steps = if w == 0 {
                    120
                } else if i < 4 {
                    60
                } else {
                    0
                };
                for k in 0..steps {
                    let v = k as f64 + f64::from(i) * 0.5;
                    write_sample(&p, v, start + k * STEP, &mut text);
                }
                if w == 0 && i == 0 {
                    write_sample(&p, f64::NAN, start + 30 * STEP + 30_000, &mut side);
                }
                if w == 1 && (i == 4 || i == 5) {
                    write_sample(&p, f64::NAN, start + 1_000, &mut side);
                }
            }
            if text.is_empty() && side.is_empty() {
                continue;
            }
            text.extend_from_slice(EOF_LINE);
            let file = file_name(start, s as usize, 1, true);
            let mut e = put(&dir, &file, &text);
            (e.window_start_ms, e.window_end_ms, e.shard) = (start, start + W, s as u32);
            files.push(file.clone());
            if !side.is_empty() {
                side.extend_from_slice(EOF_LINE);
                let sc = put(&dir, &stale_sidecar_name(&file), &side);
                files.push(sc.file.clone());
                e.sidecars.push(Sidecar {
                    kind: SIDECAR_STALE_MARKERS.into(),
                    file: sc.file,
                    series: sc.series,
                    samples: sc.samples,
                    min_ts_ms: sc.min_ts_ms,
                    max_ts_ms: sc.max_ts_ms,
                    bytes: sc.bytes,
                    uncompressed_bytes: sc.uncompressed_bytes,
                    sha256: sc.sha256,
                });
            }
            m.shards.push(e);
        }
    }
    let t = &mut m.totals;
    t.shards = m.shards.len() as u64;
    t.series = 8;
    for e in &m.shards {
        t.samples += e.samples;
        t.bytes += e.bytes;
        t.uncompressed_bytes += e.uncompressed_bytes;
        t.stale_markers += e.sidecars.iter().map(|s| s.samples).sum::<u64>();
    }
    let nonempty = || m.shards.iter().filter(|e| e.samples > 0);
    t.min_ts_ms = nonempty().map(|e| e.min_ts_ms).min();
    t.max_ts_ms = nonempty().map(|e| e.max_ts_ms).max();
    assert_eq!(t.stale_markers, 3);
    assert!(m.shards.iter().filter(|e| !e.sidecars.is_empty()).count() >= 2);
    save(&dir, &m);
    let (code, out, err) = run(verify(&dir));
    assert_eq!(code, 0, "the directory should be sound:\n{out}\n{err}");
    (dir, files)
}

fn save(dir: &Path, m: &Manifest) {
    std::fs::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(m).unwrap(),
    )
    .unwrap();
}

fn verify(dir: &Path) -> Command {
    let mut c = prom2om();
    c.arg("verify").arg(dir);
    c
}

fn import_tsdb(dir: &Path, data: &Path) -> Command {
    let mut c = prom2om();
    c.arg("import").arg(dir).arg("--tsdb").arg(data);
    c
}

fn import_remote(dir: &Path, url: &str) -> Command {
    let mut c = prom2om();
    c.arg("import")
        .arg(dir)
        .args(["--remote-write", url, "--batch-samples", "50"]);
    c
}

/// Runs `cmd` under `strace -f`, which must succeed; returns its stdout and the trace.
fn traced(cmd: Command, trace: &Path) -> (String, String) {
    let mut st = Command::new(tool("strace"));
    st.args(["-f", "-qq", "-e", "trace=open,openat,openat2,creat", "-o"])
        .arg(trace)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let (code, out, err) = run(st);
    assert_eq!(code, 0, "{cmd:?} failed:\n{out}\n{err}");
    (out, std::fs::read_to_string(trace).unwrap())
}

/// The opens of `path` in a trace: lines of an open call that name it (a call another thread
/// interrupted names it on its first half only).
fn opens(trace: &str, path: &Path) -> usize {
    let quoted = format!("\"{}\"", path.display());
    trace
        .lines()
        .filter(|l| {
            let call = l.split_once(' ').map_or(*l, |(_, rest)| rest.trim_start());
            let name = call.split('(').next().unwrap_or("");
            ["open", "openat", "openat2", "creat"].contains(&name) && call.contains(&quoted)
        })
        .count()
}

/// Every file of the directory, and the manifest, opened exactly once.
fn assert_each_opened_once(trace: &str, dir: &Path, files: &[String], what: &str) {
    for f in files.iter().map(String::as_str).chain([MANIFEST_FILE]) {
        let n = opens(trace, &dir.join(f));
        assert_eq!(n, 1, "{what}: {f} opened {n} times");
    }
}

/// A Prometheus of `version` taking remote writes, with the out-of-order window that takes the
/// directory's old samples.
fn receiver(version: PromVersion, data: &Path) -> common::Prom {
    let config = "global:\n  scrape_interval: 15s\nscrape_configs: []\nstorage:\n  tsdb:\n    \
                  out_of_order_time_window: 3650d\n";
    let p = common::Prom::spawn_version(
        version,
        Some(data),
        config,
        &["--web.enable-remote-write-receiver"],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = || common::http_get(p.port, "/-/ready").is_some_and(|(s, _)| s == 200);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{version:?} did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

#[test]
fn import_into_blocks_opens_each_shard_and_sidecar_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, files) = shard_dir(tmp.path());
    let trace = tmp.path().join("trace");
    let data = tmp.path().join("data");
    let (out, t) = traced(import_tsdb(&dir, &data), &trace);
    assert!(out.contains("imported 4 shards"), "{out}");
    assert_each_opened_once(&t, &dir, &files, "import --tsdb");

    // promtool's path: prom2om reads each gzip shard once and hands promtool its text.
    let data = tmp.path().join("data-promtool");
    let mut c = import_tsdb(&dir, &data);
    c.arg(format!("--promtool={}", promtool().display()));
    let (out, t) = traced(c, &trace);
    assert!(out.contains("imported 4 shards"), "{out}");
    assert_each_opened_once(&t, &dir, &files, "import --tsdb --promtool");
}

#[test]
fn import_into_a_receiver_opens_each_shard_and_sidecar_once() {
    for version in [PromVersion::V2_42, PromVersion::V3_5] {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, files) = shard_dir(tmp.path());
        let prom = receiver(version, &tmp.path().join("receiver"));
        let url = format!("{}/api/v1/write", prom.url());
        let mut c = import_remote(&dir, &url);
        // The check on the receiver counts NaN from the push's own read of the shards.
        c.args(["--verify-url", &prom.url()]);
        let (out, t) = traced(c, &tmp.path().join("trace"));
        assert!(out.contains("pushed 4 shards"), "{version:?}: {out}");
        assert!(
            out.contains("all hold exactly the manifest's count")
                && out.contains("the 3 staleness markers of the sidecars"),
            "{version:?}: {out}"
        );
        assert_each_opened_once(
            &t,
            &dir,
            &files,
            &format!("{version:?} import --remote-write"),
        );
    }
}

#[test]
fn a_file_that_gunzips_past_its_stated_size_is_refused_by_every_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let vm = rw_support::Vm::start();
    for sidecar in [false, true] {
        let root = tmp.path().join(if sidecar { "side" } else { "shard" });
        let (dir, _) = shard_dir(&root);
        let mut m = Manifest::load(&dir).unwrap();
        let i = m
            .shards
            .iter()
            .position(|e| !e.sidecars.is_empty())
            .unwrap();
        let shard = m.shards[i].file.clone();
        // One byte less than the text holds; the totals agree, so only the file is wrong.
        let named = if sidecar {
            m.shards[i].sidecars[0].uncompressed_bytes -= 1;
            format!("sidecar {}: ", m.shards[i].sidecars[0].file)
        } else {
            m.shards[i].uncompressed_bytes -= 1;
            m.totals.uncompressed_bytes -= 1;
            String::new()
        };
        save(&dir, &m);
        let larger = format!("{named}uncompressed size is larger than the manifest's");
        let at = format!("{}: {larger}", dir.join(&shard).display());
        let what = if sidecar { "a sidecar" } else { "a shard" };

        let (code, out, err) = run(verify(&dir));
        assert_eq!(code, 1, "{what}, verify: {out}\n{err}");
        assert!(err.contains(&at), "{what}, verify: {err}");

        let failed = format!("FAILED  {shard}: verify: {larger}");
        let (code, out, err) = run(import_tsdb(&dir, &root.join("data")));
        assert_eq!(code, 1, "{what}, import --tsdb: {out}\n{err}");
        assert!(out.contains(&failed), "{what}, import --tsdb: {out}");
        assert!(out.contains("imported 3 shards"), "{what}: {out}");

        let (code, out, err) = run(import_remote(&dir, &vm.write_url()));
        assert_eq!(code, 1, "{what}, import --remote-write: {out}\n{err}");
        assert!(
            out.contains(&failed),
            "{what}, import --remote-write: {out}"
        );
        assert!(out.contains("pushed 3 shards"), "{what}: {out}");

        let mut c = prom2om();
        c.arg("inspect").arg(&dir);
        let (code, out, err) = run(c);
        assert_eq!(code, 2, "{what}, inspect: {out}\n{err}");
        assert!(err.contains(&at), "{what}, inspect: {err}");
    }
}
