//! Runs ended by `timeout`, systemd or a closed terminal: SIGTERM and SIGHUP remove temporary
//! shards and spill dirs and exit 143 and 129, what a SIGKILL leaves is removed by the next run,
//! `verify` names it, and one run at a time writes into a directory.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `prom2om ARGS` reading a dump from a pipe the test keeps open, so the run is still reading
/// when the signal comes.
fn spawn(args: &[&str], tmpdir: &Path) -> (Child, ChildStdin) {
    let mut child = prom2om()
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

/// Names in `dir` (none while it does not exist) that are prom2om's temporary files or dirs.
fn temporaries(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".prom2om-") && n.ends_with(".tmp"))
        .collect();
    v.sort();
    v
}

/// Writes whole series (in dump order, so `convert` streams shards while reading) until a
/// temporary name appears in `watch`; returns it.
fn feed_until_temporary(stdin: &mut ChildStdin, watch: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    for s in 0..1_000_000 {
        let mut chunk = String::new();
        for t in 0..100 {
            chunk.push_str(&format!(
                "{{__name__=\"m\", i=\"{s:07}\"}} {t} {}\n",
                1_700_000_000_000i64 + t * 15_000
            ));
        }
        stdin.write_all(chunk.as_bytes()).unwrap();
        if s % 100 == 0 {
            // Not the output directory's writability probe, which exists only for a moment.
            let probe = |t: &String| t.ends_with("-probe.tmp");
            if let Some(t) = temporaries(watch).into_iter().find(|t| !probe(t)) {
                return t;
            }
            assert!(Instant::now() < deadline, "no temporary file in {watch:?}");
        }
    }
    panic!("no temporary file in {watch:?}");
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Waits for the child (stdin still open), returns (exit code, stderr).
fn finish(child: Child, stdin: ChildStdin) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn sigterm_and_sighup_remove_temporary_shards_and_exit_143_and_129() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let (child, mut stdin) = spawn(&["convert", "-o", out.to_str().unwrap()], tmp.path());
        let t = feed_until_temporary(&mut stdin, &out);
        assert!(t.ends_with(".om.gz.tmp"), "{t}");
        signal(&child, sig);
        let (got, stderr) = finish(child, stdin);
        assert_eq!(got, Some(code), "signal {sig}: {stderr}");
        assert!(stderr.contains("temporary files removed"), "{stderr}");
        assert_eq!(names(&out), Vec::<String>::new(), "signal {sig}");
    }
}

#[test]
fn sigterm_removes_the_spill_dir_under_the_system_temp_dir_for_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let sys_tmp = tmp.path().join("systmp");
    std::fs::create_dir(&sys_tmp).unwrap();
    let (child, mut stdin) = spawn(&["convert", "-o", "-", "--memory-limit", "16MiB"], &sys_tmp);
    let t = feed_until_temporary(&mut stdin, &sys_tmp);
    assert!(t.ends_with("-spill.tmp"), "{t}");
    signal(&child, libc::SIGTERM);
    let (got, stderr) = finish(child, stdin);
    assert_eq!(got, Some(143), "{stderr}");
    assert_eq!(names(&sys_tmp), Vec::<String>::new());
}

/// A run killed with SIGKILL while writing into `out`: what it left there.
fn killed_run(out: &Path, tmpdir: &Path) -> Vec<String> {
    let (mut child, mut stdin) = spawn(&["convert", "-o", out.to_str().unwrap()], tmpdir);
    feed_until_temporary(&mut stdin, out);
    child.kill().unwrap(); // SIGKILL: no cleanup of any kind
    child.wait().unwrap();
    temporaries(out)
}

#[test]
fn a_killed_runs_temporary_files_go_with_the_next_run_and_verify_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let left = killed_run(&out, tmp.path());
    assert_eq!(left.len(), 1, "{left:?}");

    // verify: a finished directory with such a file in it is not what was written.
    let done = tmp.path().join("done");
    run_ok(
        prom2om()
            .args(["convert", "-o"])
            .arg(&done)
            .arg(testdata("sample.dump")),
    );
    std::fs::copy(out.join(&left[0]), done.join(&left[0])).unwrap();
    let mut cmd = prom2om();
    cmd.arg("verify").arg(&done);
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&left[0]) && stderr.contains("killed"),
        "{stderr}"
    );

    // The next run into the killed run's directory needs no --force and leaves no leftover.
    let mut cmd = prom2om();
    cmd.args(["convert", "-o"])
        .arg(&out)
        .arg(testdata("sample.dump"));
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("removed 1 temporary file(s) that a killed earlier run left"),
        "{stderr}"
    );
    assert_eq!(temporaries(&out), Vec::<String>::new());
    run_ok(prom2om().arg("verify").arg(&out));
}

/// A --force run stopped while it streams shards of the same names as the earlier run's: the
/// earlier export stays byte for byte, and `verify` passes on it.
#[test]
fn an_interrupted_force_run_leaves_the_earlier_export_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    export_sample(&out);
    let before = dir_files(&out);
    let (child, mut stdin) = spawn(
        &["convert", "--force", "-o", out.to_str().unwrap()],
        tmp.path(),
    );
    let t = feed_until_temporary(&mut stdin, &out);
    // The earlier run has a shard of this window too.
    assert!(t.ends_with("-20231114T220000Z-000.om.gz.tmp"), "{t}");
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, stdin);
    assert_eq!(code, Some(143), "{stderr}");
    assert!(dir_files(&out) == before, "the earlier export changed");
    run_ok(prom2om().arg("verify").arg(&out));
}

#[test]
fn a_killed_runs_spill_dir_in_the_system_temp_dir_goes_with_the_next_spilling_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sys_tmp: PathBuf = tmp.path().join("systmp");
    std::fs::create_dir(&sys_tmp).unwrap();
    let args = ["convert", "-o", "-", "--memory-limit", "16MiB"];
    let (mut child, mut stdin) = spawn(&args, &sys_tmp);
    let first = feed_until_temporary(&mut stdin, &sys_tmp);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert!(sys_tmp.join(&first).is_dir());

    let (child, mut stdin) = spawn(&args, &sys_tmp);
    let deadline = Instant::now() + Duration::from_secs(120);
    // The new run removes the dead one's spill when it starts its own.
    while sys_tmp.join(&first).exists() {
        feed_until_temporary(&mut stdin, &sys_tmp);
        assert!(Instant::now() < deadline, "{first} still there");
    }
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, stdin);
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(names(&sys_tmp), Vec::<String>::new());
}

#[test]
fn a_second_run_into_a_directory_in_use_is_refused_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (child, mut stdin) = spawn(&["convert", "-o", out.to_str().unwrap()], tmp.path());
    feed_until_temporary(&mut stdin, &out);
    for force in [false, true] {
        let mut cmd = prom2om();
        cmd.args(["convert", "-o"])
            .arg(&out)
            .arg(testdata("sample.dump"));
        if force {
            cmd.arg("--force");
        }
        let (code, _, stderr) = run(cmd);
        assert_eq!(code, 1, "force {force}: {stderr}");
        assert!(
            stderr.contains("is in use by another prom2om run")
                && stderr.contains(&format!("PID {}", child.id())),
            "force {force}: {stderr}"
        );
    }
    // fetch is refused the same way, before any request.
    let mut cmd = prom2om();
    cmd.args([
        "fetch",
        "--url",
        "http://127.0.0.1:9",
        "--since",
        "1h",
        "-o",
    ])
    .arg(&out);
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&format!("PID {}", child.id())), "{stderr}");
    // The first run's work is untouched by the refused ones.
    assert_eq!(temporaries(&out).len(), 1);
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child, stdin);
    assert_eq!(code, Some(143), "{stderr}");
}

#[test]
fn an_import_into_a_data_dir_whose_staging_is_locked_is_refused_naming_the_holder() {
    use std::os::fd::AsRawFd;
    let tmp = tempfile::tempdir().unwrap();
    let shards = tmp.path().join("shards");
    run_ok(
        prom2om()
            .args(["convert", "-o"])
            .arg(&shards)
            .arg(testdata("sample.dump")),
    );
    let data = tmp.path().join("data");
    let staging = data.join(".prom2om-import");
    std::fs::create_dir_all(&staging).unwrap();
    // Another import's lock, as it holds it: flock taken, its PID inside.
    let lock = std::fs::File::create(staging.join("lock")).unwrap();
    (&lock).write_all(b"4242\n").unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let mut cmd = prom2om();
    cmd.arg("import")
        .arg(&shards)
        .arg("--tsdb")
        .arg(&data)
        .arg("--force");
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("in use by another prom2om run (PID 4242)"),
        "{stderr}"
    );
    drop(lock);
}
