//! Runs that must not end looking fine when they are not (issue 10): nothing kept, an empty `-o`,
//! lines without a metric name or with unwritable timestamps, label edits that merge series,
//! exit codes that agree across commands, and help and README text that works when copied.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Two `up` series at 2023-11-14T22:13:20Z and 22:13:35Z.
const TWO: &str = "{__name__=\"up\", job=\"a\"} 1 1700000000000\n\
                   {__name__=\"up\", job=\"a\"} 1 1700000015000\n\
                   {__name__=\"up\", job=\"b\"} 0 1700000000000\n\
                   {__name__=\"up\", job=\"b\"} 0 1700000015000\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn convert(args: &[&str]) -> (i32, String, String) {
    let mut c = prom2om();
    c.arg("convert").args(args);
    run(c)
}

fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    lines[0]
}

/// Nothing left behind: the output directory, which did not exist before the run, is gone
/// (a run that failed leaves no manifest, no shard, not even an empty directory).
fn nothing_finished(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(!dir.exists(), "{} left with {left:?}", dir.display());
}

#[test]
fn empty_input_is_refused_with_exit_2_and_no_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "empty.dump", "");
    let out = tmp.path().join("out");
    let (code, _, err) = convert(&[f.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let line = one_line(&err);
    assert!(
        line.contains("empty") && line.contains("no samples"),
        "{line}"
    );
    nothing_finished(&out);
    // Piped, as `promtool tsdb dump` that failed leaves it.
    let (code, _, err) = {
        let mut c = prom2om();
        c.args(["convert", "-o"]).arg(&out);
        c.stdin(std::process::Stdio::null());
        run(c)
    };
    assert_eq!(code, 2, "{err}");
    nothing_finished(&out);
}

#[test]
fn selector_matching_nothing_says_what_the_input_held() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "two.dump", TWO);
    let out = tmp.path().join("out");
    let (code, _, err) = convert(&[
        f.to_str().unwrap(),
        "-m",
        "{__name__=\"nope\"}",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    let line = one_line(&err);
    for want in [
        "2 series",
        "2023-11-14T22:13:20Z",
        "2023-11-14T22:13:35Z",
        "{__name__=\"nope\"}",
    ] {
        assert!(line.contains(want), "{want:?} not in {line}");
    }
    nothing_finished(&out);
}

#[test]
fn window_outside_the_data_says_both_ranges_also_on_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "two.dump", TWO);
    let out = tmp.path().join("out");
    let args = [
        f.to_str().unwrap(),
        "--start",
        "2024-05-01T00:00:00Z",
        "--end",
        "2024-05-02T00:00:00Z",
        "-o",
    ];
    let (code, _, err) = convert(&[&args[..], &[out.to_str().unwrap()]].concat());
    assert_eq!(code, 2, "{err}");
    let line = one_line(&err);
    for want in [
        "2 series",
        "2023-11-14T22:13:20Z",
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    ] {
        assert!(line.contains(want), "{want:?} not in {line}");
    }
    nothing_finished(&out);
    let (code, stdout, err) = convert(&[&args[..], &["-"]].concat());
    assert_eq!(code, 2, "{err}");
    assert_eq!(stdout, "", "nothing on stdout when nothing is kept");
}

#[test]
fn allow_empty_keeps_the_old_behaviour() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "two.dump", TWO);
    let out = tmp.path().join("out");
    let (code, _, err) = convert(&[
        f.to_str().unwrap(),
        "-m",
        "nope",
        "--allow-empty",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("manifest.json").exists());
    let (code, stdout, _) = convert(&[
        f.to_str().unwrap(),
        "-m",
        "nope",
        "--allow-empty",
        "-o",
        "-",
    ]);
    assert_eq!((code, stdout.as_str()), (0, "# EOF\n"));
    let mut c = prom2om();
    let (_, help, _) = run({
        c.args(["convert", "--help"]);
        c
    });
    let allow = help.split("--allow-empty").nth(1).unwrap_or("");
    assert!(allow.contains("exit code 2"), "{help}");
}

#[test]
fn millisecond_times_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "two.dump", TWO);
    for flag in ["--start", "--end"] {
        let (code, _, err) = convert(&[f.to_str().unwrap(), flag, "1700000000000", "-o", "-"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("milliseconds") && err.contains(flag), "{err}");
    }
    let mut c = prom2om();
    c.args([
        "fetch",
        "--url",
        "http://127.0.0.1:1",
        "--start",
        "1700000000000",
    ]);
    c.args(["-o", tmp.path().join("f").to_str().unwrap()]);
    let (code, _, err) = run(c);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("milliseconds"), "{err}");
}

#[test]
fn empty_output_path_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "two.dump", TWO);
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let mut c = prom2om();
    c.current_dir(&cwd).arg("convert").arg(&f).args(["-o", ""]);
    let (code, _, err) = run(c);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "wrote into the cwd"
    );
    let mut c = prom2om();
    c.current_dir(&cwd).args([
        "fetch",
        "--url",
        "http://127.0.0.1:1",
        "--since",
        "1h",
        "-o",
        "",
    ]);
    let (code, _, err) = run(c);
    assert_eq!(code, 2, "{err}");
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);
}

#[test]
fn lines_without_a_metric_name_are_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let good = "{__name__=\"up\"} 1 1700000000000\n";
    for (i, bad) in [
        "{a=\"1\"} 1 1700000000000",
        "{} 1 1700000000000",
        "{__name__=\"\", a=\"1\"} 1 1700000000000",
    ]
    .iter()
    .enumerate()
    {
        let f = write(tmp.path(), &format!("n{i}.dump"), &format!("{good}{bad}\n"));
        let (code, _, err) = convert(&[f.to_str().unwrap(), "-o", "-"]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(
            err.contains(&format!("n{i}.dump:2:")) && err.contains("metric name"),
            "{err}"
        );
        let (code, stdout, err) = convert(&[f.to_str().unwrap(), "--skip-invalid", "-o", "-"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(stdout, "up 1 1700000000\n# EOF\n");
        assert!(err.contains("bad lines 1"), "{err}");
    }
}

#[test]
fn timestamps_out_of_range_are_invalid_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "{__name__=\"up\"} 1 1700000000000\n{__name__=\"up\"} 2 9000000000000000\n";
    let f = write(tmp.path(), "big.dump", text);
    let (code, _, err) = convert(&[f.to_str().unwrap(), "-o", "-"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("big.dump:2:") && err.contains("9000000000000000"),
        "{err}"
    );
    let (code, stdout, err) = convert(&[f.to_str().unwrap(), "--skip-invalid", "-o", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout, "up 1 1700000000\n# EOF\n");
    assert!(
        err.contains("bad lines 1") && err.contains("big.dump:2:"),
        "{err}"
    );
}

#[test]
fn label_edits_that_merge_series_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let f = write(tmp.path(), "two.dump", TWO);
    let out = tmp.path().join("out");
    let (code, _, err) = convert(&[
        f.to_str().unwrap(),
        "--drop-label",
        "job",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("job=\"a\"") && err.contains("job=\"b\"") && err.contains("--allow-merge"),
        "{err}"
    );
    nothing_finished(&out);
    // The same through --add-label overriding the label that told them apart.
    let (code, _, err) = convert(&[f.to_str().unwrap(), "--add-label", "job=x", "-o", "-"]);
    assert_eq!(code, 2, "{err}");
    let (code, stdout, err) = convert(&[
        f.to_str().unwrap(),
        "--drop-label",
        "job",
        "--allow-merge",
        "-o",
        "-",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("up "), "{stdout}");
    let mut c = prom2om();
    c.args(["convert", "--help"]);
    let (_, help, _) = run(c);
    let allow = help.split("--allow-merge").nth(1).unwrap_or("");
    assert!(allow.contains("interleave"), "{help}");
}

#[test]
fn add_label_overriding_says_so_once() {
    let tmp = tempfile::tempdir().unwrap();
    let text = "{__name__=\"up\", job=\"a\"} 1 1700000000000\n\
                {__name__=\"down\", job=\"b\"} 1 1700000000000\n\
                {__name__=\"left\"} 1 1700000000000\n";
    let f = write(tmp.path(), "o.dump", text);
    let (code, _, err) = convert(&[f.to_str().unwrap(), "--add-label", "job=x", "-o", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("overrides").count(), 1, "{err}");
    let (code, _, err) = convert(&[f.to_str().unwrap(), "--add-label", "site=x", "-o", "-"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("overrides"), "{err}");
}

/// A TSDB (promtool backfill) holding the two `up` series of [`TWO`], served by Prometheus.
fn served_two(dir: &Path) -> Prom {
    let om = write(
        dir,
        "two.om",
        "# TYPE up gauge\nup{job=\"a\"} 1 1700000000\nup{job=\"a\"} 1 1700000015\n\
         up{job=\"b\"} 0 1700000000\nup{job=\"b\"} 0 1700000015\n# EOF\n",
    );
    let data = dir.join("data");
    backfill(&om, &data);
    Prom::start(&data)
}

#[test]
fn fetch_refuses_nothing_kept_and_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let prom = served_two(tmp.path());
    let fetch = |extra: &[&str], out: &Path| {
        let mut c = prom2om();
        c.args(["fetch", "-q", "--url", &prom.url()]);
        c.args(["--start", "1699999990", "--end", "1700000020"]);
        c.args(extra).arg("-o").arg(out);
        run(c)
    };
    let out = tmp.path().join("none");
    let (code, _, err) = fetch(&["-m", "{__name__=\"nope\"}"], &out);
    assert_eq!(code, 2, "{err}");
    assert!(one_line(&err).contains("{__name__=\"nope\"}"), "{err}");
    nothing_finished(&out);
    let out = tmp.path().join("allowed");
    let (code, _, err) = fetch(&["-m", "{__name__=\"nope\"}", "--allow-empty"], &out);
    assert_eq!(code, 0, "{err}");
    let out = tmp.path().join("merged");
    let (code, _, err) = fetch(&["-m", "up", "--drop-label", "job"], &out);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("job=\"a\"") && err.contains("job=\"b\""),
        "{err}"
    );
    nothing_finished(&out);
    let out = tmp.path().join("merged-ok");
    let (code, _, err) = fetch(&["-m", "up", "--drop-label", "job", "--allow-merge"], &out);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn missing_manifest_is_exit_2_in_verify_and_import() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("no-manifest");
    std::fs::create_dir(&dir).unwrap();
    let mut c = prom2om();
    c.arg("verify").arg(&dir);
    let (code, _, err) = run(c);
    assert_eq!(code, 2, "{err}");
    let mut c = prom2om();
    c.arg("import")
        .arg(&dir)
        .arg("--tsdb")
        .arg(tmp.path().join("data"));
    let (code, _, err) = run(c);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn damaged_gzip_input_is_bad_input_with_its_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let gz = gzip(TWO.as_bytes());
    let truncated = tmp.path().join("truncated.gz");
    std::fs::write(&truncated, &gz[..gz.len() - 12]).unwrap();
    let (code, _, err) = convert(&[truncated.to_str().unwrap(), "-o", "-"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("truncated.gz") && err.contains("byte"),
        "{err}"
    );
    let trailing = tmp.path().join("trailing.gz");
    let mut bytes = gz.clone();
    bytes.extend_from_slice(b"garbage\n");
    std::fs::write(&trailing, &bytes).unwrap();
    let (code, _, err) = convert(&[trailing.to_str().unwrap(), "-o", "-"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("trailing.gz") && err.contains(&format!("byte {}", gz.len())),
        "{err}"
    );
}

#[test]
fn help_shows_limits_whole_examples_and_required_output() {
    let help = |sub: &str| {
        let mut c = prom2om();
        c.args([sub, "--help"]).env("COLUMNS", "100");
        run(c).1
    };
    let convert = help("convert");
    let mem = convert.split("--memory-limit").nth(1).unwrap_or("");
    assert!(
        mem[..mem.find("\n\n").unwrap_or(mem.len())].contains("16MiB"),
        "{convert}"
    );
    // Each example, its continuation lines joined, is the whole command.
    let examples = convert
        .split("Examples:")
        .nth(1)
        .expect("an Examples section");
    let joined = examples.replace("\\\n", " ");
    let joined: String = joined.split_whitespace().collect::<Vec<_>>().join(" ");
    for cmd in [
        "promtool tsdb dump /var/lib/prometheus/metrics2 | prom2om convert -m '{__name__=~\"elasticsearch_.*\"}' --since 24h -o shards/",
        "prom2om convert dump.txt.gz --start 2024-05-01T00:00:00Z --end 2024-05-02T00:00:00Z -o shards/",
    ] {
        assert!(joined.contains(cmd), "{cmd:?} not whole in:\n{examples}");
    }
    for line in examples.lines().filter(|l| l.starts_with("  ")) {
        assert!(line.len() <= 100, "{line:?}");
    }
    let fetch = help("fetch");
    let usage = fetch.lines().find(|l| l.starts_with("Usage:")).unwrap();
    assert!(
        usage.contains("-o <DIR|->") && !usage.contains("[-o"),
        "{usage}"
    );
}

#[test]
fn readme_lists_exit_codes() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let codes = readme
        .split("## Exit codes")
        .nth(1)
        .expect("an Exit codes section");
    for want in ["0", "1", "2", "--allow-empty", "--allow-merge"] {
        assert!(codes.contains(want), "{want} not in the exit codes section");
    }
    // The journey, its home server included, runs as written in tests/readme_journey.rs.
}
