//! `prom2om convert DIR` and `inspect DIR` on the data dir of a RUNNING Prometheus (2.42, 3.5.3) with
//! 1-minute blocks, fed by remote write fast enough that it compacts its head, compacts blocks and
//! truncates its WAL all through the reads: every read succeeds, and strace shows that nothing
//! under the directory was opened for writing, created, removed, renamed or written to.

mod common;

#[path = "common/promdir.rs"]
#[allow(dead_code)]
mod promdir;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{tool, PromVersion};
use promdir::{config, now_ms, series, Server};

/// Pushes minutes of data, 10 s of sample time per request, from three hours ago towards now:
/// a head compaction every ~9 requests. Every 7th request also brings out-of-order samples.
fn feed(srv: &Server, start: i64, stop: &AtomicBool) -> i64 {
    let mut t = start;
    let deadline = Instant::now() + Duration::from_secs(150);
    while !stop.load(Ordering::SeqCst) && t < now_ms() - 10_000 && Instant::now() < deadline {
        let mut batch = Vec::new();
        for i in 0..40 {
            let idx = format!("{i:02}");
            let samples: Vec<(i64, u64)> = (0..10)
                .map(|j| {
                    (
                        t + j * 1000,
                        ((t / 1000 + j) as f64 * 0.5 + i as f64).to_bits(),
                    )
                })
                .collect();
            batch.push(series(
                &[("__name__", "live_gauge"), ("i", &idx), ("q", "a\"b\\c")],
                &samples,
            ));
        }
        if (t - start) / 10_000 % 7 == 6 {
            let late: Vec<(i64, u64)> = (0..10)
                .map(|j| (t - 240_000 + j * 1000 + 500, (j as f64 - 0.25).to_bits()))
                .collect();
            batch.push(series(&[("__name__", "live_late"), ("k", "ö")], &late));
        }
        srv.remote_write(batch);
        t += 10_000;
        std::thread::sleep(Duration::from_millis(60));
    }
    t
}

/// Runs prom2om with `args` under `strace -f`; requires success; returns the trace.
fn traced(args: &[&str], trace: &Path) -> String {
    let out = std::process::Command::new(tool("strace"))
        .args(["-f", "-y", "-qq", "-e", "trace=%file,%desc", "-o"])
        .arg(trace)
        .arg(assert_cmd::cargo::cargo_bin("prom2om"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prom2om {args:?} failed on a live data dir: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(trace).unwrap()
}

const OPENS: &[&str] = &["open", "openat", "openat2", "creat"];
const WRITE_FLAGS: &[&str] = &["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"];
/// Calls that change a file or directory whatever their arguments.
const MUTATORS: &[&str] = &[
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "rmdir",
    "truncate",
    "ftruncate",
    "fallocate",
    "write",
    "pwrite64",
    "writev",
    "pwritev",
    "pwritev2",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "setxattr",
    "fsetxattr",
    "lsetxattr",
    "removexattr",
    "fremovexattr",
    "mknod",
    "mknodat",
    "copy_file_range",
    "sendfile",
    "splice",
];

/// Calls on a file descriptor whose quoted argument is data, not a path.
const DATA_CALLS: &[&str] = &[
    "read", "pread64", "readv", "preadv", "preadv2", "write", "pwrite64", "writev", "pwritev",
    "pwritev2",
];

/// Every path a strace line names, absolute: the quoted ones (joined to the `<dir>` of a dirfd
/// first argument when relative) and the `<path>` annotations of file descriptors.
fn paths(line: &str) -> Vec<PathBuf> {
    let (name, args) = line.split_once('(').unwrap_or(("", ""));
    let dirfd = args
        .split_once(',')
        .and_then(|(first, _)| first.split_once('<'))
        .map(|(_, p)| PathBuf::from(p.trim_end_matches('>')));
    if DATA_CALLS.contains(&name) {
        // The quoted argument is the data read or written (which may well be a path).
        return dirfd.into_iter().collect();
    }
    let mut v = Vec::new();
    let mut quoted = args.split('"').skip(1).step_by(2);
    for q in quoted.by_ref() {
        let p = PathBuf::from(q);
        v.push(match (&dirfd, p.is_relative()) {
            (Some(d), true) => d.join(p),
            _ => p,
        });
    }
    for part in args.split('<').skip(1) {
        if let Some((p, _)) = part.split_once('>') {
            v.push(PathBuf::from(p));
        }
    }
    v
}

/// The lines of a trace that write under `dir`, and how many lines touched it at all.
fn writes_under(trace: &str, dir: &Path) -> (Vec<String>, usize) {
    let mut bad = Vec::new();
    let mut touched = 0;
    for line in trace.lines() {
        // "PID call(args) = result", or the first half of a call another thread interrupted.
        let call = line
            .split_once(' ')
            .map_or(line, |(_, rest)| rest.trim_start());
        let name = call.split('(').next().unwrap_or("");
        let under = paths(call).iter().any(|p| p.starts_with(dir));
        if !under {
            continue;
        }
        touched += 1;
        let writes = (OPENS.contains(&name) && WRITE_FLAGS.iter().any(|f| call.contains(f)))
            || MUTATORS.contains(&name)
            || (name.starts_with("mmap")
                && call.contains("PROT_WRITE")
                && call.contains("MAP_SHARED"));
        if writes {
            bad.push(line.to_string());
        }
    }
    (bad, touched)
}

#[test]
fn reads_of_a_running_server_succeed_and_write_nothing() {
    reads_of_a_running_server(PromVersion::V2_42);
}

#[test]
fn reads_of_a_running_server_succeed_and_write_nothing_3_5() {
    reads_of_a_running_server(PromVersion::V3_5);
}

fn reads_of_a_running_server(version: PromVersion) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let srv = Server::start(version, &data, &config(&[], Some("30m")), &[]);
    let start = now_ms().div_euclid(60_000) * 60_000 - 3 * 3_600_000;
    let stop = AtomicBool::new(false);
    // Stops the feeder when a read fails too: the scope waits for it before reporting.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let metric = |n: &str| srv.metric(n).unwrap_or(0.0);
    std::thread::scope(|s| {
        let feeder = s.spawn(|| feed(&srv, start, &stop));
        let _stop = StopOnDrop(&stop);
        // Blocks and a checkpoint exist before the first read.
        srv.wait_until("a checkpoint", Duration::from_secs(60), || {
            std::fs::read_dir(data.join("wal")).is_ok_and(|rd| {
                rd.flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("checkpoint."))
            })
        });
        let compactions = metric("prometheus_tsdb_compactions_total");
        let truncations = metric("prometheus_tsdb_wal_truncations_total");
        let d = data.to_str().unwrap();
        // Reads go on until the server has compacted twice and truncated its WAL (written a
        // checkpoint) at least once since the first one began: at least 3 rounds, at most 60.
        let busy = || {
            metric("prometheus_tsdb_compactions_total") - compactions >= 2.0
                && metric("prometheus_tsdb_wal_truncations_total") - truncations >= 1.0
        };
        let mut i = 0;
        while i < 3 || (!busy() && i < 60) {
            let out = tmp.path().join(format!("out{i}"));
            let trace = traced(
                &["convert", "-q", d, "-o", out.to_str().unwrap()],
                &tmp.path().join("convert.trace"),
            );
            check_trace(&trace, &data, &format!("convert #{i}"));
            assert!(
                !common::shard_files(&out).is_empty(),
                "convert #{i}: no shard"
            );
            std::fs::remove_dir_all(&out).unwrap();
            let trace = traced(&["inspect", d], &tmp.path().join("inspect.trace"));
            check_trace(&trace, &data, &format!("inspect #{i}"));
            i += 1;
        }
        let compacted = metric("prometheus_tsdb_compactions_total") - compactions;
        let truncated = metric("prometheus_tsdb_wal_truncations_total") - truncations;
        stop.store(true, Ordering::SeqCst);
        let reached = feeder.join().unwrap();
        assert!(
            compacted >= 2.0 && truncated >= 1.0,
            "the server did not compact ({compacted}) and truncate its WAL ({truncated}) during \
             {i} rounds of reads (fed up to {} min of 180)",
            (reached - start) / 60_000
        );
    });
}

fn check_trace(trace: &str, data: &Path, what: &str) {
    let (bad, touched) = writes_under(trace, data);
    assert!(
        touched > 10,
        "{what}: the trace shows almost no access to the data dir ({touched} lines)"
    );
    assert!(
        bad.is_empty(),
        "{what} wrote under the data dir:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_trace_check_sees_writes() {
    // The check itself, on a trace of a program that does write: a test that finds nothing must
    // be able to find something.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    let trace_file = tmp.path().join("t");
    let out = std::process::Command::new(tool("strace"))
        .args(["-f", "-y", "-qq", "-e", "trace=%file,%desc", "-o"])
        .arg(&trace_file)
        .args([
            "sh",
            "-c",
            "echo x > \"$0\"/f; mkdir \"$0\"/g; mv \"$0\"/f \"$0\"/h; rm \"$0\"/h",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (bad, _) = writes_under(&std::fs::read_to_string(&trace_file).unwrap(), &dir);
    for call in ["openat", "mkdir", "rename", "unlink"] {
        assert!(
            bad.iter().any(|l| l.contains(call)),
            "{call} not caught in:\n{}",
            bad.join("\n")
        );
    }
    // And on a real Go program: 2.42's `promtool tsdb dump` makes chunks_head in the dir it
    // dumps (the reason the fixtures are dumped from a copy).
    let data = tmp.path().join("tsdb");
    common::backfill(&common::testdata("awkward.om"), &data);
    std::process::Command::new(tool("strace"))
        .args(["-f", "-y", "-qq", "-e", "trace=%file,%desc", "-o"])
        .arg(&trace_file)
        .arg(common::promtool())
        .args(["tsdb", "dump"])
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    let (bad, touched) = writes_under(&std::fs::read_to_string(&trace_file).unwrap(), &data);
    assert!(
        touched > 10 && bad.iter().any(|l| l.contains("chunks_head")),
        "{bad:?}"
    );
}
