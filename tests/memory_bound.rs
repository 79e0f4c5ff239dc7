//! Peak memory of `convert` stays within --memory-limit plus a small constant on an input many
//! times larger, measured from the child's own rusage (its peak resident set).

mod common;

use common::*;

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

#[test]
fn peak_rss_within_limit_and_output_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus.dump");
    // Written straight to a file: Linux carries a parent's peak RSS into a spawned child's
    // ru_maxrss, so this process must never hold the corpus.
    let spec = prom2om::corpus::CorpusSpec {
        series: 1000,
        hours: 4.0,
        ..Default::default()
    };
    let mut w = std::io::BufWriter::new(std::fs::File::create(&corpus).unwrap());
    prom2om::corpus::generate(&spec, &mut w).unwrap();
    std::io::Write::flush(&mut w).unwrap();
    drop(w);
    let size = std::fs::metadata(&corpus).unwrap().len();
    let limit: u64 = 16 << 20;
    let args = |out: &str, mem: &str| -> Vec<std::ffi::OsString> {
        vec![
            "convert".into(),
            corpus.clone().into(),
            "-q".into(),
            "--memory-limit".into(),
            mem.into(),
            "-o".into(),
            tmp.path().join(out).into(),
        ]
    };
    let (rss_small, code) = run_measured(&args("small", "16MiB"));
    assert_eq!(code, 0);
    let (rss_big, code) = run_measured(&args("big", "4GiB"));
    assert_eq!(code, 0);
    eprintln!("input {size} bytes; peak RSS {rss_small} with a 16 MiB limit, {rss_big} without");
    assert!(size > 8 * limit, "the input must be many times the limit");
    // The constant: code, thread stacks, read-ahead chunks and gzip state (~40 MiB measured).
    assert!(
        rss_small < limit + (48 << 20),
        "peak RSS {rss_small} over the limit"
    );
    assert!(
        rss_small < rss_big,
        "the limit made no difference: {rss_small} vs {rss_big}"
    );
    let files = |d: &str| -> Vec<Vec<u8>> {
        shard_files(&tmp.path().join(d))
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    };
    assert_eq!(files("small"), files("big"));
    assert_eq!(
        std::fs::read(tmp.path().join("small/manifest.json")).unwrap(),
        std::fs::read(tmp.path().join("big/manifest.json")).unwrap()
    );
}
