//! `import --remote-write` against the real receivers: VictoriaMetrics (compared with what its
//! own `vmctl prometheus` makes of the same TSDB) and a Prometheus 2.42 remote-write receiver,
//! through faults, a refusal, and a kill followed by a rerun.

mod common;
mod fetch_support;
mod rw_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{awkward_tsdb, prom2om, tool};
use fetch_support::{assert_same, samples, Data, Fault, Proxy};
use prom2om::labels::Labels;
use rw_support::*;

/// The awkward corpus (several 2h windows, odd label values, NaN, extreme values) as a source
/// TSDB, its shards' content, and its shards. For a Prometheus receiver (`for_prometheus`) the
/// one series of 1970 is left out: its out-of-order window cannot reach 53 years back (that
/// refusal is tested on its own), and its compaction would walk those years 2h at a time.
fn corpus(
    tmp: &std::path::Path,
    for_prometheus: bool,
) -> (std::path::PathBuf, Data, std::path::PathBuf) {
    let (source, text) = awkward_tsdb(tmp);
    let dump_file = tmp.join("source.dump");
    let early = |l: &[u8]| for_prometheus && bstr::ByteSlice::contains_str(l, "case=\"early\"");
    let kept: Vec<&[u8]> = text
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| !early(l))
        .collect();
    let text = kept.concat();
    std::fs::write(&dump_file, &text).unwrap();
    let shards = convert(&dump_file, tmp);
    let want = shard_data(&shards);
    // The shards hold the source, less the NaN that `convert` took for staleness markers.
    let source_data = parse_dump(&text);
    let mut dropped = 0;
    for (l, s) in &source_data {
        for (t, v) in s {
            match want.get(l).and_then(|w| w.get(t)) {
                Some(w) => assert_eq!(w, v, "{l} at {t}: shard vs source"),
                None => {
                    assert!(f64::from_bits(*v).is_nan(), "{l} at {t}: not in the shards");
                    dropped += 1;
                }
            }
        }
    }
    assert_eq!(samples(&want) + dropped, samples(&source_data));
    let windows = std::fs::read_dir(&shards).unwrap().count() - 1;
    assert!(windows >= 4, "the corpus should span several windows");
    (source, want, shards)
}

fn without_label(d: Data, name: &str) -> Data {
    d.into_iter()
        .map(|(mut l, s)| {
            l.remove(name);
            (l, s)
        })
        .collect()
}

#[test]
fn victoria_metrics_gets_every_sample_labels_byte_exact_where_vmctl_changes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (source, want, shards) = corpus(tmp.path(), false);
    let want = without_nan(&want);
    let vm = Vm::start();
    let (code, out, err) = push(
        &shards,
        &vm.write_url(),
        &[
            "--add-label",
            "path=prom2om",
            "--batch-samples",
            "7",
            "--concurrency",
            "3",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("failed 0"), "{out}");

    // The same TSDB through VictoriaMetrics' own tool, into the same server (vmctl wants a tty).
    let vmctl = format!(
        "{} prometheus -s --vm-disable-progress-bar --prom-snapshot={} \
         --vm-addr=http://127.0.0.1:{} --vm-extra-label=path=vmctl",
        tool("vmctl").display(),
        source.display(),
        vm.port
    );
    let st = Command::new("script")
        .args(["-qec", &vmctl, "/dev/null"])
        .stdout(Stdio::null())
        .status()
        .expect("script (util-linux) runs vmctl on a pty");
    assert!(st.success(), "vmctl failed");

    let ours = without_label(vm.export("{path=\"prom2om\"}", samples(&want)), "path");
    let theirs = without_label(vm.export_settled("{path=\"vmctl\"}"), "path");

    // Every series arrives with its labels byte-exact, every sample at its timestamp.
    let keys = |d: &Data| d.keys().cloned().collect::<Vec<Labels>>();
    assert_eq!(keys(&ours), keys(&want), "series (labels) differ");
    let mut rounded = Vec::new();
    for (l, ws) in &want {
        let gs = &ours[l];
        assert_eq!(
            gs.keys().collect::<Vec<_>>(),
            ws.keys().collect::<Vec<_>>(),
            "timestamps of {l}"
        );
        for (t, w) in ws {
            if gs[t] != *w {
                rounded.push((l.clone(), *t, f64::from_bits(*w), f64::from_bits(gs[t])));
            }
        }
    }
    // Where a value differs, VictoriaMetrics itself rounds it: vmctl's copy holds the same.
    for (l, t, w, g) in &rounded {
        let v = theirs.get(l).and_then(|s| s.get(t)).copied();
        assert_eq!(
            v,
            Some(g.to_bits()),
            "{l} at {t}: sent {w:e}, VictoriaMetrics holds {g:e}, vmctl's copy {v:?}"
        );
    }
    eprintln!("values VictoriaMetrics rounds on both paths: {rounded:?}");

    // vmctl's path changes data that ours keeps: label values it rewrites, samples it leaves out.
    let changed: Vec<&Labels> = want.keys().filter(|l| !theirs.contains_key(*l)).collect();
    eprintln!("series vmctl changed: {changed:?}");
    eprintln!(
        "what vmctl stored instead: {:?}",
        theirs
            .keys()
            .filter(|l| !want.contains_key(*l))
            .collect::<Vec<_>>()
    );
    for l in &changed {
        assert!(
            l.iter()
                .any(|(_, v)| v.chars().any(|c| c.is_control() || c == '\u{10FFFD}')),
            "vmctl changed {l}"
        );
    }
    let mut lost = Vec::new();
    for (l, s) in &theirs {
        let Some(o) = ours.get(l) else { continue };
        // What vmctl holds, ours holds too, with the same value.
        for (t, v) in s {
            assert_eq!(
                o.get(t),
                Some(v),
                "{l} at {t}: vmctl's copy differs from ours"
            );
        }
        lost.extend(
            o.keys()
                .filter(|t| !s.contains_key(t))
                .map(|t| (l.clone(), *t)),
        );
    }
    eprintln!("samples vmctl left out: {} {lost:?}", lost.len());
    assert!(
        !changed.is_empty() || !lost.is_empty(),
        "vmctl's copy equals ours: update this test and the README"
    );
}

#[test]
fn prometheus_receiver_holds_the_source_sample_for_sample_nan_included() {
    let tmp = tempfile::tempdir().unwrap();
    let (_source, want, shards) = corpus(tmp.path(), true);
    let data = tmp.path().join("receiver");
    let prom = prom_receiver(&data);
    let url = format!("{}/api/v1/write", prom.url());
    let (code, out, err) = push(
        &shards,
        &url,
        &["--batch-samples", "5", "--concurrency", "4"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        want.values()
            .flat_map(|s| s.values())
            .any(|v| f64::from_bits(*v).is_nan()),
        "the corpus should hold NaN"
    );
    assert_same(
        &settled_remote_read(&prom.url(), &want),
        &want,
        "receiver vs source",
    );
}

/// Against VictoriaMetrics: the same result as a push without faults into another one. (Behind
/// faults a Prometheus 2.42 receiver gets its samples in a different order, and then its
/// `promtool tsdb dump` was seen to miss part of the newest window.)
#[test]
fn faults_503_resets_and_stalls_give_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let (_source, want, shards) = corpus(tmp.path(), false);
    let n = samples(&without_nan(&want));
    let clean = Vm::start();
    let (code, out, err) = push(&shards, &clean.write_url(), &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A request whose answer was cut (Truncate) was stored and is sent again: deduplication at
    // 1 ms keeps one copy, as it would of a scrape sent twice by a Prometheus.
    let vm = Vm::start_with(&["-dedup.minScrapeInterval=1ms"]);
    // Faults on the writes: the queries that settle a request whose answer was lost (to the
    // query API found from the write URL) pass.
    let proxy = Proxy::start_writes(vm.port, |n| match n % 5 {
        1 => Fault::Unavailable,
        2 => Fault::Drop,
        3 if n < 20 => Fault::Stall(Duration::from_secs(3)),
        4 => Fault::Truncate(5),
        _ => Fault::Pass,
    });
    let url = format!("{}/api/v1/write", proxy.url());
    let (code, out, err) = push(
        &shards,
        &url,
        &[
            "--batch-samples",
            "20",
            "--concurrency",
            "2",
            "--timeout",
            "1s",
            "--retries",
            "12",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let retries: u64 = out
        .split(" retries")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retry count in {out}"));
    assert!(retries >= 10, "the faults should have been retried: {out}");
    assert_eq!(n, samples(&clean.export("{__name__!=\"\"}", n)));
    assert_same(
        &vm.export("{__name__!=\"\"}", n),
        &clean.export("{__name__!=\"\"}", n),
        "behind faults vs without",
    );
}

#[test]
fn refusals_400_and_too_old_500_stop_that_shard_and_the_others_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("receiver");
    let prom = prom_receiver(&data);
    let url = format!("{}/api/v1/write", prom.url());
    let make = |name: &str, text: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("in.dump"), text).unwrap();
        convert(&dir.join("in.dump"), &dir)
    };
    let first = make(
        "a",
        "{__name__=\"m\", a=\"1\"} 1 1700000000000\n{__name__=\"m\", a=\"1\"} 2 1700000015000\n",
    );
    let (code, out, err) = push(&first, &url, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Another value at the series' newest timestamp: Prometheus refuses it with 400.
    let second = make(
        "b",
        "{__name__=\"m\", a=\"1\"} 99 1700000015000\n{__name__=\"n\"} 5 1700010000000\n",
    );
    let (code, out, err) = push(&second, &url, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    let failed = out.lines().find(|l| l.starts_with("FAILED")).expect(&out);
    assert!(failed.contains("HTTP 400"), "{failed}");
    assert!(
        failed.contains("duplicate sample for timestamp"),
        "{failed}"
    );
    assert!(
        failed.contains("{__name__=\"m\", a=\"1\"} at 1700000015000 ms"),
        "the first series: {failed}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok")).count(),
        1,
        "{out}"
    );
    assert!(err.contains("1 of 2 shards were not pushed"), "{err}");
    // Far behind the newest sample: 2.42 answers 500 "too old sample", which senders would retry
    // forever. Stopped at once, with advice.
    let third = make("c", "{__name__=\"old\"} 1 1000\n");
    let (code, out, err) = push(&third, &url, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    let failed = out.lines().find(|l| l.starts_with("FAILED")).expect(&out);
    assert!(failed.contains("HTTP 500: too old sample"), "{failed}");
    assert!(failed.contains("out_of_order_time_window"), "{failed}");
    assert!(out.contains(" 0 retries"), "{out}");
    let got = dump_copy(&data);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(samples(&got), 3);
}

/// On VictoriaMetrics, which (with deduplication at 1 ms) keeps one copy of a sample sent twice:
/// the shard the kill cut short is sent again whole. (A Prometheus 2.42 receiver takes such
/// resent samples too, but its `promtool tsdb dump` does not show all of its head then.)
#[test]
fn a_rerun_after_a_kill_sends_only_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (_source, want, shards) = corpus(tmp.path(), false);
    let want = without_nan(&want);
    let vm = Vm::start_with(&["-dedup.minScrapeInterval=1ms"]);
    let slow = Proxy::start(vm.port, |_| Fault::Delay(Duration::from_millis(150)));
    let url = format!("{}/api/v1/write", slow.url());
    let mut child = prom2om()
        .arg("import")
        .arg(&shards)
        .arg("--remote-write")
        .arg(&url)
        .args(["--batch-samples", "4", "--concurrency", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = shards.join(".prom2om-remote-write/state.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let pushed_before = loop {
        let n = std::fs::read(&state)
            .ok()
            .and_then(|s| serde_json::from_slice::<serde_json::Value>(&s).ok())
            .map_or(0, |v| {
                v["targets"]
                    .as_object()
                    .into_iter()
                    .flat_map(|t| t.values())
                    .map(|t| t["pushed"].as_object().map_or(0, |p| p.len()))
                    .sum()
            });
        if n >= 2 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(pushed_before >= 2, "two shards should be pushed by then");
    // The same receiver through the same URL: the state is kept per receiver.
    let (code, out, err) = push(&shards, &url, &["--batch-samples", "50"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let skipped = out.lines().filter(|l| l.starts_with("skipped")).count();
    let sent = out.lines().filter(|l| l.starts_with("ok")).count();
    assert!(skipped >= pushed_before, "{out}");
    assert!(sent >= 1, "the kill should have left shards to send: {out}");
    // A third run has nothing left to send.
    let (code, out, _) = push(&shards, &url, &[]);
    assert_eq!(code, 0);
    assert!(out.contains("pushed 0 shards"), "{out}");
    let got = vm.export("{__name__!=\"\"}", samples(&want));
    let keys = |d: &Data| d.keys().cloned().collect::<Vec<Labels>>();
    assert_eq!(keys(&got), keys(&want));
    for (l, s) in &want {
        assert_eq!(
            got[l].keys().collect::<Vec<_>>(),
            s.keys().collect::<Vec<_>>(),
            "{l}: timestamps after kill and rerun"
        );
    }
}

#[test]
fn usage_tsdb_or_remote_write_and_credentials_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let (_source, want, shards) = corpus(tmp.path(), false);
    let mut c = prom2om();
    c.arg("import")
        .arg(&shards)
        .args(["--tsdb", "x", "--remote-write", "http://h/w"]);
    assert_eq!(common::run(c).0, 2, "--tsdb and --remote-write together");
    for flag in [
        &["--concurrency", "2"][..],
        &["--user", "u"],
        &["--add-label", "a=b"],
    ] {
        let mut c = prom2om();
        c.arg("import")
            .arg(&shards)
            .args(["--tsdb", "x"])
            .args(flag);
        assert_eq!(common::run(c).0, 2, "{flag:?} without --remote-write");
    }
    // VictoriaMetrics takes no auth: the credentials only have to stay out of every message.
    let vm = Vm::start();
    let url = format!("http://me:s3cret@127.0.0.1:{}/api/v1/write", vm.port);
    let (code, out, err) = push(&shards, &url, &["--add-label", "customer=acme"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !out.contains("s3cret") && !err.contains("s3cret"),
        "{out}\n{err}"
    );
    let got = vm.export("{customer=\"acme\"}", samples(&without_nan(&want)));
    assert_eq!(got.len(), want.len());
    // Nothing answers on the port: an error naming the URL without its password, exit 1.
    let dead = format!(
        "http://me:s3cret@127.0.0.1:{}/api/v1/write",
        common::free_port()
    );
    std::fs::remove_dir_all(shards.join(".prom2om-remote-write")).unwrap();
    let (code, out, err) = push(&shards, &dead, &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        !out.contains("s3cret") && !err.contains("s3cret"),
        "{out}\n{err}"
    );
}

/// The 2h windows that hold samples of `d`.
fn windows_of(d: &Data) -> std::collections::BTreeSet<i64> {
    d.values()
        .flat_map(|s| s.keys().map(|t| t.div_euclid(7_200_000)))
        .collect()
}

#[test]
fn verify_url_finds_every_window_whole_then_the_windows_of_a_deleted_series() {
    let tmp = tempfile::tempdir().unwrap();
    // Without the series of 1970: VictoriaMetrics stores it (its export has it) but its query
    // API finds no sample in the first seconds after the epoch, so that window would differ.
    let (_, want, shards) = corpus(tmp.path(), true);
    let nan = samples(&want) - samples(&without_nan(&want));
    assert!(nan > 0, "the corpus keeps some NaN in its shards");
    let windows = windows_of(&want).len();
    let vm = Vm::start();
    let verify_url = format!("http://127.0.0.1:{}", vm.port);
    let args = [
        "--add-label",
        "customer=a\"c\\me",
        "--verify-url",
        &verify_url,
    ];

    // VictoriaMetrics keeps no NaN: the count is short by exactly those, and said so.
    let (code, out, err) = push(&shards, &vm.write_url(), &args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "verified {windows} windows on {verify_url} (VictoriaMetrics, which keeps no NaN): \
             all hold exactly the manifest's count less its {nan} NaN samples"
        )),
        "{out}\n{err}"
    );
    assert!(!out.contains("DIFFERS"), "{out}");

    // Delete every series of one metric name: the rerun pushes nothing (all pushed before) and
    // finds exactly that metric's windows short.
    let name = want
        .keys()
        .next()
        .unwrap()
        .get("__name__")
        .unwrap()
        .to_string();
    let gone: Data = want
        .iter()
        .filter(|(l, _)| l.get("__name__") == Some(name.as_str()))
        .map(|(l, s)| (l.clone(), s.clone()))
        .collect();
    let gone = without_nan(&gone);
    let selector = format!("{{__name__={name:?},customer=\"a\\\"c\\\\me\"}}");
    let path = format!(
        "/api/v1/admin/tsdb/delete_series?match[]={}",
        common::url_encode(&selector)
    );
    let (status, body) = common::http_get(vm.port, &path).expect("VictoriaMetrics answers");
    assert_eq!(status, 204, "delete_series: {body}");

    let (code, out, err) = push(&shards, &vm.write_url(), &args);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("failed 0"), "{out}");
    let differ = windows_of(&gone).len();
    assert!(differ > 0);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("DIFFERS")).collect();
    assert_eq!(lines.len(), differ, "{out}");
    let held_less: usize = lines
        .iter()
        .map(|l| {
            let held: usize = l
                .split("holds ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let should: usize = l
                .split("should hold ")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            should - held
        })
        .sum();
    // Short by exactly the deleted samples: the NaN it never kept are not counted as missing.
    assert_eq!(held_less, samples(&gone), "{out}");
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("NaN") || l.contains("does not keep")),
        "{out}"
    );
    assert!(
        err.contains(&format!(
            "{differ} of {windows} windows differ on {verify_url}"
        )),
        "{err}"
    );
}

/// Series that differ only by metric name: Prometheus 2.x will not `count_over_time` them in one
/// query (the function drops the name and 2.x refuses two equal label sets), so `--verify-url`
/// counts each name on its own and still finds every sample.
#[test]
fn verify_url_on_prometheus_counts_series_that_differ_only_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let base = 1_700_000_000_000i64;
    let mut text = String::new();
    for name in ["cpu_a", "cpu_b", "cpu_c"] {
        for k in 0..30 {
            let t = base + k * 15_000;
            text.push_str(&format!("{{__name__=\"{name}\", host=\"h1\"}} {k} {t}\n"));
        }
    }
    let dump_file = tmp.path().join("names.dump");
    std::fs::write(&dump_file, text).unwrap();
    let shards = convert(&dump_file, tmp.path());
    let prom = prom_receiver(&tmp.path().join("receiver"));
    let url = format!("{}/api/v1/write", prom.url());
    let (code, out, err) = push(&shards, &url, &["--verify-url", &prom.url()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("all hold exactly the manifest's count"),
        "{out}\n{err}"
    );
}
