//! Peak memory of `convert` stays within --memory-limit plus a small constant on an input many
//! times larger, measured from the child's own rusage (its peak resident set).

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// Runs prom2om and returns (peak RSS in bytes, exit status).
fn run_measured(args: &[std::ffi::OsString]) -> (u64, i32) {
    let child = prom2om().args(args).spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    std::mem::forget(child);
    (usage.ru_maxrss as u64 * 1024, libc::WEXITSTATUS(status))
}

/// Writes a corpus of 1000 series over 4 h; `head_order`: series unsorted, as a head's dump.
fn corpus(dir: &Path, head_order: bool) -> PathBuf {
    let path = dir.join(if head_order {
        "head.dump"
    } else {
        "blocks.dump"
    });
    let spec = prom2om::corpus::CorpusSpec {
        series: 1000,
        hours: 4.0,
        head_order,
        ..Default::default()
    };
    write_corpus(&path, &spec);
    path
}

/// Both write paths: a dump in series order is written while reading (streamed), one in head
/// order is sorted, spilled and merged. Both stay within the limit and give the same shards.
#[test]
fn peak_rss_within_limit_and_output_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let limit: u64 = 16 << 20;
    let mut outputs = Vec::new();
    for head_order in [false, true] {
        let corpus = corpus(tmp.path(), head_order);
        let size = std::fs::metadata(&corpus).unwrap().len();
        assert!(size > 8 * limit, "the input must be many times the limit");
        let run = |mem: &str| {
            let out = tmp.path().join(format!("{head_order}-{mem}"));
            let args: Vec<std::ffi::OsString> = vec![
                "convert".into(),
                corpus.clone().into(),
                "-q".into(),
                "--memory-limit".into(),
                mem.into(),
                "-o".into(),
                out.clone().into(),
            ];
            let (rss, code) = run_measured(&args);
            assert_eq!(code, 0);
            (rss, out)
        };
        let (rss_small, small) = run("16MiB");
        let (rss_big, big) = run("4GiB");
        eprintln!(
            "head order {head_order}: input {size} bytes; peak RSS {rss_small} with a 16 MiB limit, {rss_big} without"
        );
        // The constant: code, thread stacks, read-ahead chunks and gzip state (~40 MiB measured).
        assert!(
            rss_small < limit + (48 << 20),
            "peak RSS {rss_small} over the limit"
        );
        assert!(
            rss_small < rss_big,
            "the limit made no difference: {rss_small} vs {rss_big}"
        );
        let manifest = |d: &Path| std::fs::read(d.join("manifest.json")).unwrap();
        assert_eq!(manifest(&small), manifest(&big));
        outputs.push(files(&small));
        outputs.push(files(&big));
    }
    assert!(outputs.len() == 4 && outputs.iter().all(|o| *o == outputs[0]));
}

fn files(dir: &Path) -> Vec<Vec<u8>> {
    shard_files(dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// A dump over many block windows (200 here, thousands for a quarter's data) spilled to disk
/// keeps neither a file descriptor nor a buffer per window, and streaming opens no more shards
/// than the open-file limit allows: both run with 64 open files.
#[test]
fn many_windows_spill_with_few_open_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("long.dump");
    let spec = prom2om::corpus::CorpusSpec {
        series: 20,
        hours: 400.0,
        interval_ms: 60_000,
        ..Default::default()
    };
    write_corpus(&path, &spec);
    for limit in ["16MiB", "1GiB"] {
        let out = tmp.path().join(limit);
        let mut cmd = prom2om();
        cmd.arg("convert")
            .arg(&path)
            .args(["--memory-limit", limit, "-o"])
            .arg(&out);
        set_rlimit(&mut cmd, libc::RLIMIT_NOFILE, 64);
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
        // 16 MiB spills (no file per window); 1 GiB streams (no more shards open than files allowed).
        let expect = if limit == "16MiB" {
            "spilled to disk"
        } else {
            "while reading"
        };
        assert!(stderr.contains(expect), "{stderr}");
        assert_eq!(shard_files(&out).len(), 201, "{stderr}");
    }
}
