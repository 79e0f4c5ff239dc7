//! A push interrupted at any point completes to exactly the manifest's samples, and
//! `--verify-url` knows what the receiver keeps: a fault-injecting proxy in front of a real
//! Prometheus 2.42 and 3.5.3 (without an out-of-order window: a sample sent again is refused
//! as out of order) and a real VictoriaMetrics (which keeps both copies of a sample sent twice).

mod common;
mod fetch_support;
mod rw_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{prom2om, Prom, PromVersion};
use fetch_support::{assert_same, samples, Data, Fault, Proxy, T0};
use rw_support::*;

/// Series of a corpus, and samples of each, 15 s apart: 50 minutes, less than the hour behind
/// its newest sample that a Prometheus without an out-of-order window takes.
const SERIES: usize = 12;
const PER_SERIES: i64 = 200;
/// Samples per request: each series is four requests.
const BATCH: &str = "50";

/// A shard directory of `SERIES` series of metric `name`: every other series has a NaN at
/// every other sample (kept as samples: `--stale keep`), so a window holds far more NaN than one
/// request holds samples. Returns the directory and what its shards hold.
fn corpus(tmp: &Path, name: &str) -> (PathBuf, Data) {
    let mut text = String::new();
    for s in 0..SERIES {
        for k in 0..PER_SERIES {
            let v = if s % 2 == 1 && k % 2 == 0 {
                "NaN".to_string()
            } else {
                format!("{}", (s as i64 * 1000 + k) as f64 * 0.5)
            };
            let t = T0 + k * 15_000;
            text.push_str(&format!("{{__name__=\"{name}\", s=\"{s:02}\"}} {v} {t}\n"));
        }
    }
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("in.dump"), text).unwrap();
    let mut c = prom2om();
    c.arg("convert")
        .arg(dir.join("in.dump"))
        .args(["--stale", "keep", "-o"])
        .arg(dir.join("shards"));
    let (code, out, err) = common::run(c);
    assert_eq!(code, 0, "convert: {out}\n{err}");
    let shards = dir.join("shards");
    let want = shard_data(&shards);
    assert_eq!(samples(&want), SERIES * PER_SERIES as usize);
    (shards, want)
}

fn nan_count(d: &Data) -> usize {
    samples(d) - samples(&without_nan(d))
}

/// A real receiver: Prometheus of a version without an out-of-order window, or
/// VictoriaMetrics without deduplication.
enum Server {
    Prom(Prom),
    Vm(Vm),
}

impl Server {
    /// A new server, its data in `tmp/receiver-NAME` (`--verify-url` counts everything in a
    /// window's time range: one receiver per corpus).
    fn start(kind: Kind, tmp: &Path, name: &str) -> Server {
        match kind {
            Kind::Prom(v) => Server::Prom(Prom::start_version(
                v,
                &tmp.join(format!("receiver-{name}")),
                &["--web.enable-remote-write-receiver"],
            )),
            Kind::Vm => Server::Vm(Vm::start()),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Server::Prom(p) => p.port,
            Server::Vm(v) => v.port,
        }
    }

    fn query_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// Asserts that the receiver holds exactly `want` (VictoriaMetrics: less its NaN, and no
    /// sample twice: the export parser refuses a duplicate).
    fn holds_exactly(&self, want: &Data, what: &str) {
        match self {
            Server::Prom(p) => assert_same(&settled_remote_read(&p.url(), want), want, what),
            Server::Vm(v) => {
                let want = without_nan(want);
                let got = v.export("{__name__=~\"fx_.*\"}", samples(&want));
                assert_same(&got, &want, what);
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Prom(PromVersion),
    Vm,
}

const ALL: [Kind; 3] = [
    Kind::Prom(PromVersion::V2_42),
    Kind::Prom(PromVersion::V3_5),
    Kind::Vm,
];

fn proxied(proxy: &Proxy) -> String {
    format!("{}/api/v1/write", proxy.url())
}

fn summary_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("pushed "))
        .unwrap_or_else(|| panic!("no summary in {out}"))
}

/// A proxy answers 204 to one request without passing it on: the push sees nothing wrong,
/// `--verify-url` finds the window short by exactly that request though the window holds 20
/// times as many NaN, and the same command again asks the receiver about each request of that
/// window and sends only the missing one.
#[test]
fn verify_url_catches_a_request_stored_nowhere_and_the_rerun_sends_it() {
    for kind in ALL {
        let tmp = tempfile::tempdir().unwrap();
        let (shards, want) = corpus(tmp.path(), "fx_a");
        assert!(nan_count(&want) >= 10 * 50, "more NaN than a request");
        let server = Server::start(kind, tmp.path(), "fx_a");
        // One lane, so request 3 is the last quarter of the first series, which a receiver
        // without an out-of-order window still takes afterwards.
        let proxy = Proxy::start_writes(server.port(), |n| match n {
            3 => Fault::Swallow,
            _ => Fault::Pass,
        });
        let verify = server.query_url();
        let args = [
            "--batch-samples",
            BATCH,
            "--concurrency",
            "1",
            "--verify-url",
            &verify,
        ];
        let (code, out, err) = push(&shards, &proxied(&proxy), &args);
        assert_eq!(code, 1, "{kind:?}: {out}\n{err}");
        assert!(out.contains("failed 0"), "{kind:?}: {out}");
        let differs: Vec<&str> = out.lines().filter(|l| l.starts_with("DIFFERS")).collect();
        assert_eq!(differs.len(), 1, "{kind:?}: {out}");
        let keeps_nan = matches!(kind, Kind::Prom(_));
        let should = if keeps_nan {
            samples(&want)
        } else {
            samples(&without_nan(&want))
        };
        assert!(
            differs[0].contains(&format!(
                "the receiver holds {} samples, it should hold {should}",
                should - 50
            )),
            "{kind:?}: {}",
            differs[0]
        );
        assert!(err.contains("1 of 1 windows differ"), "{kind:?}: {err}");
        assert!(
            err.contains("Run the same command again"),
            "{kind:?}: {err}"
        );
        let which = if keeps_nan {
            "which keeps NaN"
        } else {
            "VictoriaMetrics, which keeps no NaN"
        };
        assert!(err.contains(which), "{kind:?}: {err}");

        // The same command again: every request of the window asked about, one sent.
        let (code, out, err) = push(&shards, &proxied(&proxy), &args);
        assert_eq!(code, 0, "{kind:?}: {out}\n{err}");
        let requests = SERIES * PER_SERIES as usize / 50;
        assert!(
            summary_line(&out).contains(&format!(
                "{requests} requests whose fate was unknown asked about on the receiver, {} of \
                 them found held",
                requests - 1
            )),
            "{kind:?}: {out}"
        );
        assert!(
            out.contains("all hold exactly the manifest's count"),
            "{out}"
        );
        server.holds_exactly(&want, &format!("{kind:?} after the rerun"));
    }
}

/// Requests the receiver stored whose answer was lost, came after `--timeout`, or was a 503
/// of a proxy: each is asked about on the receiver and not sent again; the push ends with exit
/// 0 and the receiver holding every sample once. VictoriaMetrics is asked through the query API
/// found from the write URL (no `--verify-url`).
#[test]
fn lost_late_and_503_answers_after_storing_end_exact_in_one_run() {
    for kind in ALL {
        let tmp = tempfile::tempdir().unwrap();
        let (shards, want) = corpus(tmp.path(), "fx_b");
        let server = Server::start(kind, tmp.path(), "fx_b");
        let proxy = Proxy::start_writes(server.port(), |n| match n {
            2 => Fault::Truncate(0),
            5 => Fault::SlowAnswer(Duration::from_secs(3)),
            8 => Fault::StoredThen503,
            _ => Fault::Pass,
        });
        let verify = server.query_url();
        let mut args = vec!["--batch-samples", BATCH, "--concurrency", "2"];
        args.extend(["--timeout", "1s"]);
        if matches!(kind, Kind::Prom(_)) {
            args.extend(["--verify-url", &verify]);
        }
        let (code, out, err) = push(&shards, &proxied(&proxy), &args);
        assert_eq!(code, 0, "{kind:?}: {out}\n{err}");
        assert!(
            summary_line(&out).contains(
                "3 requests whose fate was unknown asked about on the receiver, 3 of them found \
                 held and not sent again"
            ),
            "{kind:?}: {out}"
        );
        assert!(!err.contains("warning"), "{kind:?}: {err}");
        server.holds_exactly(&want, &format!("{kind:?} behind lost answers"));
    }
}

/// A 400 part-way through a shard (the proxy's, before or after the receiver stored the
/// request): the shard fails, what the receiver took of it is recorded, and the same command
/// again sends only the rest (asking first about the requests the refusal left uncertain).
#[test]
fn a_refusal_part_way_is_completed_by_one_rerun() {
    for kind in ALL {
        let tmp = tempfile::tempdir().unwrap();
        for (name, fault) in [("fx_c", Fault::BadRequest), ("fx_d", Fault::StoredThen400)] {
            let (shards, want) = corpus(tmp.path(), name);
            let server = Server::start(kind, tmp.path(), name);
            let proxy = Proxy::start_writes(server.port(), move |n| match n {
                9 => fault,
                _ => Fault::Pass,
            });
            let verify = server.query_url();
            let args = [
                "--batch-samples",
                BATCH,
                "--concurrency",
                "3",
                "--verify-url",
                &verify,
            ];
            let (code, out, err) = push(&shards, &proxied(&proxy), &args);
            assert_eq!(code, 1, "{kind:?} {fault:?}: {out}\n{err}");
            let failed = out.lines().find(|l| l.starts_with("FAILED")).expect(&out);
            assert!(failed.contains("HTTP 400: refused by proxy"), "{failed}");
            let state =
                std::fs::read_to_string(shards.join(".prom2om-remote-write/state.json")).unwrap();
            assert!(state.contains("\"partial\""), "{state}");

            let (code, out, err) = push(&shards, &proxied(&proxy), &args);
            assert_eq!(code, 0, "{kind:?} {fault:?}: {out}\n{err}");
            let ok = out.lines().find(|l| l.starts_with("ok")).expect(&out);
            assert!(ok.contains("delivered by an earlier run"), "{ok}");
            assert!(
                out.contains("all hold exactly the manifest's count"),
                "{kind:?} {fault:?}: {out}"
            );
            server.holds_exactly(&want, &format!("{kind:?} {fault:?} after the rerun"));
        }
    }
}

/// Killed (SIGKILL) at several points of a push, the same command again ends with exit 0 and
/// the receiver holding every sample once: the recorded progress of each lane, and what the
/// receiver holds of the requests after it.
#[test]
fn a_kill_at_any_point_then_one_rerun_ends_exact() {
    for kind in [Kind::Prom(PromVersion::V2_42), Kind::Vm] {
        let tmp = tempfile::tempdir().unwrap();
        for (name, kill_after) in [("fx_e", 1), ("fx_f", 9), ("fx_g", 30)] {
            let (shards, want) = corpus(tmp.path(), name);
            let server = Server::start(kind, tmp.path(), name);
            // Each answer 60 ms late, after the receiver stored the request.
            let slow = Proxy::start_writes(server.port(), |_| {
                Fault::SlowAnswer(Duration::from_millis(60))
            });
            let verify = server.query_url();
            let args = [
                "--batch-samples",
                BATCH,
                "--concurrency",
                "2",
                "--verify-url",
                &verify,
            ];
            let mut child = prom2om()
                .arg("import")
                .arg(&shards)
                .arg("--remote-write")
                .arg(proxied(&slow))
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(60);
            while slow.requests.load(std::sync::atomic::Ordering::Relaxed) < kill_after {
                assert!(Instant::now() < deadline, "the push never got going");
                std::thread::sleep(Duration::from_millis(5));
            }
            child.kill().unwrap();
            child.wait().unwrap();
            let (code, out, err) = push(&shards, &proxied(&slow), &args);
            assert_eq!(code, 0, "{kind:?} killed after {kill_after}: {out}\n{err}");
            assert!(
                out.contains("all hold exactly the manifest's count"),
                "{kind:?}: {out}"
            );
            server.holds_exactly(&want, &format!("{kind:?} killed after {kill_after}"));
        }
    }
}

/// Without a query API to ask (the one found from the write URL refuses every query): the
/// retry of a request whose answer was lost is sent unasked. A Prometheus refuses it as out of
/// order, and the shard fails saying to give --verify-url, with which the same command then
/// completes; VictoriaMetrics takes it, and the summary warns that it may now hold it twice.
#[test]
fn without_a_query_api_a_lost_answer_is_said_and_verify_url_completes_the_push() {
    let no_queries = |head: &str, n: usize| match (head.starts_with("POST "), n) {
        (false, _) => Fault::BadRequest,
        (true, 2) => Fault::Truncate(0),
        _ => Fault::Pass,
    };
    let tmp = tempfile::tempdir().unwrap();
    let (shards, want) = corpus(tmp.path(), "fx_h");
    let server = Server::start(Kind::Prom(PromVersion::V2_42), tmp.path(), "fx_h");
    let proxy = Proxy::start_by(server.port(), no_queries);
    let args = ["--batch-samples", BATCH, "--concurrency", "1"];
    let (code, out, err) = push(&shards, &proxied(&proxy), &args);
    assert_eq!(code, 1, "{out}\n{err}");
    let failed = out.lines().find(|l| l.starts_with("FAILED")).expect(&out);
    assert!(failed.contains("out of order sample"), "{failed}");
    assert!(
        failed.contains("what the receiver holds could not be checked"),
        "{failed}"
    );
    assert!(failed.contains("with --verify-url"), "{failed}");
    let verify = server.query_url();
    let mut with = args.to_vec();
    with.extend(["--verify-url", &verify]);
    let (code, out, err) = push(&shards, &proxied(&proxy), &with);
    assert_eq!(code, 0, "{out}\n{err}");
    server.holds_exactly(&want, "Prometheus after the rerun with --verify-url");

    let tmp = tempfile::tempdir().unwrap();
    let (shards, want) = corpus(tmp.path(), "fx_i");
    let vm = Vm::start();
    let proxy = Proxy::start_by(vm.port, no_queries);
    let (code, out, err) = push(&shards, &proxied(&proxy), &args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("warning: 1 requests whose fate was unknown")
            && err.contains("were sent again without asking the receiver what it held")
            && err.contains("give --verify-url"),
        "{err}"
    );
    // And it does hold that request twice: 50 samples more than sent.
    let twice = samples(&without_nan(&want)) + 50;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = common::http_get(vm.port, "/internal/force_flush");
        let path = "/api/v1/export?match[]=%7B__name__%3D%22fx_i%22%7D&start=0";
        let (status, body) = common::http_get(vm.port, path).unwrap();
        assert_eq!(status, 200);
        // `{"metric":{..},"values":[..],"timestamps":[..]}`: count the timestamps.
        let held: usize = body
            .lines()
            .map(|l| {
                l.rsplit("\"timestamps\":[")
                    .next()
                    .unwrap()
                    .matches(',')
                    .count()
                    + 1
            })
            .sum();
        if held >= twice || Instant::now() > deadline {
            assert_eq!(held, twice, "{body}");
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // Which --verify-url then finds, and says what it may be.
    let verify = format!("http://127.0.0.1:{}", vm.port);
    let mut with = args.to_vec();
    with.extend(["--verify-url", &verify]);
    let (code, out, err) = push(&shards, &proxied(&proxy), &with);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("pushed 0 shards, skipped 1"), "{out}");
    assert!(
        err.contains("1 holds more samples than the manifest")
            && err.contains("samples stored twice")
            && err.contains("-dedup.minScrapeInterval"),
        "{err}"
    );
}
