//! `convert` against the real promtool: dump → convert → backfill → dump gives back the same
//! samples, for a stream and for shards, whatever the input order or repetition.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

fn convert_stream(input: &std::path::Path, extra: &[&str]) -> Vec<u8> {
    run_ok(
        prom2om()
            .arg("convert")
            .arg(input)
            .args(["-o", "-", "-q"])
            .args(extra),
    )
}

#[test]
fn stream_round_trip_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source) = awkward_tsdb(tmp.path());
    let dump_file = tmp.path().join("source.dump");
    std::fs::write(&dump_file, &source).unwrap();
    let om = convert_stream(&dump_file, &["--stale", "keep"]);
    assert!(om.ends_with(b"# EOF\n"));
    let om_file = tmp.path().join("out.om");
    std::fs::write(&om_file, &om).unwrap();
    let data = tmp.path().join("restored");
    backfill(&om_file, &data);
    let restored = dump(&data, None);
    assert_eq!(sample_set(&restored), sample_set(&source));
}

#[test]
fn values_are_the_dump_text_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source) = awkward_tsdb(tmp.path());
    let dump_file = tmp.path().join("source.dump");
    std::fs::write(&dump_file, &source).unwrap();
    let om = convert_stream(&dump_file, &["--stale", "keep"]);
    let value_of = |line: &[u8], from_right: usize| -> Vec<u8> {
        line.rsplit(|&b| b == b' ')
            .nth(from_right)
            .unwrap()
            .to_vec()
    };
    let dump_values: BTreeSet<Vec<u8>> =
        sample_set(&source).iter().map(|l| value_of(l, 1)).collect();
    let om_values: BTreeSet<Vec<u8>> = sample_set(&om)
        .iter()
        .filter(|l| !l.starts_with(b"#"))
        .map(|l| value_of(l, 1))
        .collect();
    assert_eq!(om_values, dump_values);
}

#[test]
fn staleness_markers_dropped_runs_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source) = awkward_tsdb(tmp.path());
    let dump_file = tmp.path().join("source.dump");
    std::fs::write(&dump_file, &source).unwrap();
    let out = prom2om()
        .arg("convert")
        .arg(&dump_file)
        .args(["-o", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let nans: Vec<&str> = text.lines().filter(|l| l.contains(" NaN ")).collect();
    assert_eq!(nans.len(), 2, "only the run of two NaNs is kept: {nans:?}");
    assert!(nans
        .iter()
        .all(|l| l.starts_with("nan_cases{case=\"run\"}")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("staleness markers dropped 1"), "{stderr}");
}

#[test]
fn shards_each_backfill_and_together_equal_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source) = awkward_tsdb(tmp.path());
    let dump_file = tmp.path().join("source.dump");
    std::fs::write(&dump_file, &source).unwrap();
    let out = tmp.path().join("shards");
    run_ok(
        prom2om()
            .arg("convert")
            .arg(&dump_file)
            .args(["--stale", "keep", "-q", "--shards", "2", "-o"])
            .arg(&out),
    );
    let shards = shard_files(&out);
    assert!(
        shards.len() >= 4,
        "7h of data over 2h windows, 2 shards each: {shards:?}"
    );
    assert!(out.join("manifest.json").exists());
    let mut all = BTreeSet::new();
    for (i, s) in shards.iter().enumerate() {
        let work = tmp.path().join(format!("one-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        let data = work.join("tsdb");
        backfill(&gunzip_to(s, &work), &data);
        all.extend(sample_set(&dump(&data, None)));
    }
    assert_eq!(all, sample_set(&source));
}

/// Shuffled lines, the dump twice, and two overlapping halves all give the clean sample set.
#[test]
fn any_order_duplicates_and_overlaps() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source) = awkward_tsdb(tmp.path());
    let mut lines: Vec<&[u8]> = source
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    // A fixed permutation: reproducible, and far from the dump's order.
    let n = lines.len();
    let mut shuffled = Vec::with_capacity(n);
    for i in 0..n {
        shuffled.push(lines[(i * 7919) % n]);
    }
    assert_eq!(
        shuffled.iter().collect::<BTreeSet<_>>().len(),
        n,
        "7919 is coprime with n"
    );
    let join = |ls: &[&[u8]]| -> Vec<u8> {
        ls.iter()
            .flat_map(|l| l.iter().copied().chain([b'\n']))
            .collect()
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("shuffled", join(&shuffled)),
        ("twice", [source.clone(), source.clone()].concat()),
        ("overlap", {
            lines.sort();
            let (a, b) = (&lines[..n * 2 / 3], &lines[n / 3..]);
            [join(a), join(b)].concat()
        }),
    ];
    for (name, input) in cases {
        let f = tmp.path().join(format!("{name}.dump"));
        std::fs::write(&f, input).unwrap();
        let out = tmp.path().join(format!("{name}-shards"));
        run_ok(
            prom2om()
                .arg("convert")
                .arg(&f)
                .args(["--stale", "keep", "-q", "-o"])
                .arg(&out),
        );
        let work = tmp.path().join(format!("{name}-work"));
        std::fs::create_dir_all(&work).unwrap();
        assert_eq!(
            sample_set(&backfill_shards(&out, &work)),
            sample_set(&source),
            "case {name}"
        );
    }
}

#[test]
fn conflicting_duplicates_keep_the_later_input() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.dump");
    let b = tmp.path().join("b.dump");
    std::fs::write(
        &a,
        "{__name__=\"m\"} 1 1700000000000\n{__name__=\"m\"} 2 1700000015000\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "{__name__=\"m\"} 9 1700000015000\n{__name__=\"m\"} 1 1700000000000\n",
    )
    .unwrap();
    let out = prom2om()
        .arg("convert")
        .args([&a, &b])
        .args(["-o", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "m 1 1700000000\nm 9 1700000015\n# EOF\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("duplicates dropped 1, conflicting duplicates 1"),
        "{stderr}"
    );
}

/// The same selectors select the same series in promtool and in prom2om.
#[test]
fn match_selects_what_promtool_selects() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, source) = awkward_tsdb(tmp.path());
    let dump_file = tmp.path().join("source.dump");
    std::fs::write(&dump_file, &source).unwrap();
    let selectors = [
        "up",
        "{__name__=~\"elasticsearch_.*\"}",
        "{__name__=~\"elasticsearch_.*\",cluster!=\"test\"}",
        "{__name__=~\"elastic\"}",
        "awkward_label_value{v=~\".*\\\\n.*\"}",
        "awkward_label_value{case!~\"t.*|n.*\"}",
        "{cluster=\"\",__name__=~\"[a-u].*\"}",
        "{Zeta=\"1\"}",
        "value_forms{case=~\"(?i)INF\"}",
        "{__name__=~\"es:.*\"}",
        "nan_cases{case=\"lone\"}",
    ];
    for sel in selectors {
        let theirs = series_set(&dump(&data, Some(sel)));
        let om = tmp.path().join("sel.om");
        std::fs::write(
            &om,
            convert_stream(&dump_file, &["--stale", "keep", "--allow-empty", "-m", sel]),
        )
        .unwrap();
        let restored = tmp.path().join(format!("sel-{}", theirs.len()));
        let _ = std::fs::remove_dir_all(&restored);
        let ours = if std::fs::read(&om).unwrap() == b"# EOF\n" {
            BTreeSet::new()
        } else {
            backfill(&om, &restored);
            series_set(&dump(&restored, None))
        };
        assert_eq!(ours, theirs, "selector {sel}");
    }
}

/// `tail -n +1` keeps the command honest about reading stdin.
#[test]
fn reads_stdin_and_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, source) = awkward_tsdb(tmp.path());
    let gz = tmp.path().join("source.dump.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &source).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let from_gz = convert_stream(&gz, &["--stale", "keep"]);
    let from_stdin = run_ok(Command::new("sh").arg("-c").arg(format!(
        "gzip -dc {} | {} convert -q --stale keep -o -",
        gz.display(),
        assert_cmd::cargo::cargo_bin("prom2om").display()
    )));
    assert_eq!(from_gz, from_stdin);
}
