//! The real data dirs the data-dir reader is tested on, each made by a Prometheus 2.42 or 3.5.3
//! with 1-minute blocks (see `promdir.rs`): history pushed minute by minute so blocks, compactions
//! and a WAL checkpoint exist within seconds, then scrapes of the awkward target, outages, a
//! restart, deletions and out-of-order samples; on 3.5.3 also native histograms (`native.rs`).
//! Built in parallel threads; two to three minutes in all.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use prom2om::fetch::remote_read::TimeSeries;

use crate::common::PromVersion;
use crate::promdir::*;

/// The native-histogram scenario of Prometheus 3.5.3.
#[path = "scenario_native.rs"]
mod native;
/// Native histograms for remote write.
#[path = "nativehist.rs"]
pub mod nativehist;
pub use native::NAME as NATIVE;

/// A built data dir (server stopped), how it was made, and the configuration a server serving a
/// copy of it needs (the out-of-order window, without which 2.42 ignores the wbl).
pub struct Fixture {
    pub name: &'static str,
    /// The Prometheus that made it; serve copies and dump it with the same one.
    pub version: PromVersion,
    pub data: PathBuf,
    pub serve_config: String,
    pub how: String,
    pub layout: Layout,
    /// How long the scenario took to build (all are built at once).
    pub build_time: Duration,
}

/// Minutes of history pushed before scraping starts: nine head compactions, so the WAL has been
/// truncated into a checkpoint (which needs four segments) and 3-minute blocks were compacted.
const HISTORY_MINUTES: i64 = 10;

/// The fixtures of this test process, built once on first use under the target's temp dir.
/// With PROM2OM_FIXTURES_OUT set, also copied there with dumps and a README.
pub fn fixtures() -> &'static [Fixture] {
    static F: OnceLock<Vec<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_roots(tmp);
        let root = tmp.join(format!("promdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let built = build_all(&root);
        if let Some(out) = std::env::var_os("PROM2OM_FIXTURES_OUT") {
            export(&built, Path::new(&out));
        }
        built
    })
}

/// Removes the fixtures of earlier test processes that have ended (a static is never dropped).
fn remove_stale_roots(tmp: &Path) {
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("promdir-") {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

impl Fixture {
    /// Its name and version, unique among the fixtures: for paths and messages.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.version.number())
    }

    /// Whether it holds native histograms (which prom2om does not carry yet: issue 22).
    pub fn has_histograms(&self) -> bool {
        self.name == native::NAME
    }
}

/// The fixture `name` made by `version`.
pub fn fixture(name: &str, version: PromVersion) -> &'static Fixture {
    fixtures()
        .iter()
        .find(|f| f.name == name && f.version == version)
        .unwrap_or_else(|| panic!("no fixture {name} of {version:?}"))
}

/// Builds every scenario under `root`, in parallel: the float ones with both versions, the
/// native-histogram one with 3.5.3.
pub fn build_all(root: &Path) -> Vec<Fixture> {
    type Scenario = fn(&Path, PromVersion) -> Fixture;
    let floats: [Scenario; 3] = [stale_restart, tombstones, out_of_order];
    let mut all: Vec<(Scenario, PromVersion)> = Vec::new();
    for v in [PromVersion::V2_42, PromVersion::V3_5] {
        all.extend(floats.iter().map(|&f| (f, v)));
    }
    all.push((native::native_histograms, PromVersion::V3_5));
    std::thread::scope(|s| {
        let handles: Vec<_> = all
            .iter()
            .map(|&(f, v)| {
                s.spawn(move || {
                    let t0 = std::time::Instant::now();
                    let mut fixture = f(root, v);
                    fixture.build_time = t0.elapsed();
                    fixture
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The scrape jobs of the scenarios: Prometheus itself and the awkward target, each with its
/// own options (4 spaces in).
fn awkward_jobs<'a>(
    srv: &Server,
    target: &Target,
    self_options: &'a str,
    target_options: &'a str,
) -> [Job<'a>; 2] {
    [
        Job {
            name: "prometheus",
            addr: format!("127.0.0.1:{}", srv.port),
            labels: "",
            options: self_options,
        },
        Job {
            name: "awkward",
            addr: target.addr(),
            labels: "          env: 'tést \"q\" \\ x'\n",
            options: target_options,
        },
    ]
}

fn awkward_config(srv: &Server, target: &Target, ooo: Option<&str>) -> String {
    config(&awkward_jobs(srv, target, "", ""), ooo)
}

/// The first minute of history: whole minutes ending at the current minute.
fn history_start() -> i64 {
    now_ms().div_euclid(60_000) * 60_000 - HISTORY_MINUTES * 60_000
}

/// Pushes history minutes `from..to` (from `start`), each in one request, and waits for the
/// head compaction each full minute after the first triggers.
fn push_history(srv: &Server, start: i64, from: i64, to: i64) {
    push_minutes(srv, start, from, to, |k| {
        srv.remote_write(history_minute(start, k))
    });
}

/// Pushes minutes `from..to` with `push(k)`, one request each, waiting for the head compaction
/// each full minute after the first triggers.
fn push_minutes(srv: &Server, start: i64, from: i64, to: i64, push: impl Fn(i64)) {
    for k in from..to {
        push(k);
        if k >= 1 {
            srv.wait_head_min(start + k * 60_000, Duration::from_secs(30));
            // Let the compaction finish (WAL truncation, block compaction) before the next push
            // triggers another, so each leaves its own WAL segment.
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Minute `k` of the history series: 100 gauges every 10 s, a counter every second (reset at
/// minute 5), real NaN, staleness markers and infinities by value, and awkward label values.
fn history_minute(start: i64, k: i64) -> Vec<TimeSeries> {
    let t0 = start + k * 60_000;
    let every = |step: i64, f: &dyn Fn(i64, i64) -> u64| -> Vec<(i64, u64)> {
        (0..60_000 / step)
            .map(|j| (t0 + j * step, f(j, t0 + j * step)))
            .collect()
    };
    let mut v = Vec::new();
    for idx in 0..100 {
        let name = format!("{idx:03}");
        let samples = every(10_000, &|j, _| {
            (idx as f64 + k as f64 * 0.5 + j as f64 * 0.01).to_bits()
        });
        v.push(series(
            &[
                ("__name__", "hist_gauge"),
                ("idx", &name),
                ("zone", "eu\"west"),
            ],
            &samples,
        ));
    }
    v.push(series(
        &[("__name__", "hist_counter_total"), ("path", "/a\\b")],
        &every(1_000, &|_, t| {
            (((t - start) / 1000 % 300 * 3) as f64).to_bits()
        }),
    ));
    let special = |i: i64| match i % 5 {
        1 => STALE_NAN,
        3 => REAL_NAN,
        _ => (i as f64).to_bits(),
    };
    v.push(series(
        &[("__name__", "hist_special"), ("kind", "stale_nan")],
        &every(10_000, &|j, _| special(k * 6 + j)),
    ));
    v.push(series(
        &[("__name__", "hist_special"), ("kind", "inf")],
        &every(10_000, &|j, _| {
            if j % 2 == 0 {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            }
            .to_bits()
        }),
    ));
    v.push(series(
        &[
            ("__name__", "hist_utf8"),
            ("v", "日本語 ünïcödé 🚀"),
            ("nl", "a\nb"),
            ("q", "\"\\"),
        ],
        &every(10_000, &|j, _| (j as f64 / 3.0).to_bits()),
    ));
    v
}

/// Waits until a head chunk is m-mapped to chunks_head early in a minute, so that what the caller
/// does next has 10 s or more before the head's next compaction.
fn wait_mmapped_chunk(srv: &mut Server) {
    // With 1 m blocks and 1 s scrapes the head is compacted as soon as it spans 90 s: at second
    // 30 of each minute, truncated to the minute before, which deletes the chunks that ended
    // there. A chunk is cut at each minute boundary; 2.42 m-maps it then, so it is on disk from
    // second 0 to 30. 3.x m-maps it on the TSDB's one-minute timer, which runs from the server's
    // start: when that comes after second 30, no chunk is ever on disk, and the server is
    // restarted early in a minute.
    let chunks_head = srv.data.join("chunks_head");
    let mmapped = || {
        std::fs::read_dir(&chunks_head)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 8))
    };
    for _ in 0..4 {
        let deadline = std::time::Instant::now() + Duration::from_secs(70);
        while std::time::Instant::now() < deadline {
            if now_ms().rem_euclid(60_000) < 20_000 && mmapped() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "{}: no head chunk on disk early in a minute for 70 s; restarting early in a minute",
            srv.data.display()
        );
        srv.restart_early_in_a_minute();
    }
    panic!(
        "no head chunk m-mapped to chunks_head early in a minute, with 3 restarts\n{}",
        srv.log()
    );
}

fn scenario_dir(root: &Path, name: &str, version: PromVersion) -> PathBuf {
    let d = root.join(version.number()).join(name).join("data");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Staleness: scrapes with per-series and whole-target staleness markers, real NaN beside them,
/// a restart that turns WAL compression off (the WAL holds both kinds of record), markers both
/// in a block and in the head.
fn stale_restart(root: &Path, version: PromVersion) -> Fixture {
    let data = scenario_dir(root, "stale_restart", version);
    let target = Target::start();
    let mut srv = Server::start(
        version,
        &data,
        &config(&[], None),
        &["--storage.tsdb.wal-compression"],
    );
    let start = history_start();
    push_history(&srv, start, 0, HISTORY_MINUTES);
    srv.reload(&awkward_config(&srv, &target, None));
    target.wait_scrapes(10);
    target.set(|s| s.phase = 1);
    target.wait_scrapes(5);
    target.set(|s| s.up = false);
    std::thread::sleep(Duration::from_secs(6));
    let outage_end = now_ms();
    target.set(|s| {
        s.up = true;
        s.phase = 2;
    });
    target.wait_scrapes(5);
    srv.restart(&["--no-storage.tsdb.wal-compression"]);
    target.wait_scrapes(5);
    // The first outage's markers reach a block; the second outage stays in the head.
    srv.wait_head_min(outage_end + 1_000, Duration::from_secs(180));
    target.set(|s| s.up = false);
    std::thread::sleep(Duration::from_secs(5));
    target.set(|s| {
        s.up = true;
        s.phase = 3;
    });
    target.wait_scrapes(4);
    wait_mmapped_chunk(&mut srv);
    srv.stop();
    let layout = Layout::scan(&data);
    check(&layout, "stale_restart");
    Fixture {
        name: "stale_restart",
        version,
        data,
        serve_config: config(&[], None),
        how: format!(
            "{HISTORY_MINUTES} minutes of history by remote write (100 gauges at 10 s, a counter \
             at 1 s, staleness markers and real NaN by value, infinities, UTF-8/newline/quote \
             labels), one request per minute, each compacted; then 1 s scrapes of Prometheus \
             itself and of the awkward target (WAL compression on); `awk_flappy` vanishes (per-series \
             markers); the target fails for 6 s (markers for all its series, up=0) and comes back; \
             Prometheus restarts with --no-storage.tsdb.wal-compression (the WAL mixes snappy and \
             plain records); scraping goes on until the first outage is in a block; a second 5 s \
             outage (markers in the head); once the head has m-mapped a chunk, stopped with \
             SIGTERM. History starts at {start} ms."
        ),
        layout,
        build_time: Duration::ZERO,
    }
}

/// Tombstones in blocks and in the head (WAL compression off): partial deletions that cut
/// through blocks and the head, a whole-series deletion, kept under the 5% of a block's series
/// that would make compaction rewrite it.
fn tombstones(root: &Path, version: PromVersion) -> Fixture {
    let data = scenario_dir(root, "tombstones", version);
    let target = Target::start();
    let mut srv = Server::start(
        version,
        &data,
        &config(&[], None),
        &["--no-storage.tsdb.wal-compression"],
    );
    let start = history_start();
    push_history(&srv, start, 0, HISTORY_MINUTES);
    srv.reload(&awkward_config(&srv, &target, None));
    target.wait_scrapes(12);
    wait_mmapped_chunk(&mut srv);
    let now = now_ms();
    srv.delete_series(
        r#"hist_gauge{idx=~"00[1-3]"}"#,
        Some((start + 150_000, now)),
    );
    srv.delete_series("hist_utf8", Some((start + 30_000, start + 200_000)));
    srv.delete_series(r#"awk_deleted{k="1"}"#, None);
    srv.delete_series(
        r#"{__name__="awk_many",i=~"01."}"#,
        Some((now - 8_000, now - 3_000)),
    );
    target.wait_scrapes(3);
    let mut srv = srv;
    srv.stop();
    let layout = Layout::scan(&data);
    check(&layout, "tombstones");
    assert!(
        layout.blocks_with_tombstones() >= 1,
        "tombstones: no block kept its tombstones\n{}",
        layout.describe()
    );
    Fixture {
        name: "tombstones",
        version,
        data,
        serve_config: config(&[], None),
        how: format!(
            "WAL compression off. The same history as stale_restart (from {start} ms), then 1 s \
             scrapes of Prometheus and the awkward target for 12 s and until the head has m-mapped a \
             chunk; then deletions through the \
             admin API: hist_gauge{{idx=~\"00[1-3]\"}} from history minute 2.5 to now (blocks and \
             head), hist_utf8 from 30 s to 200 s (blocks only), awk_deleted{{k=\"1\"}} whole \
             (head), awk_many{{i=~\"01.\"}} for 5 s (head); 3 more scrapes; SIGTERM."
        ),
        layout,
        build_time: Duration::ZERO,
    }
}

/// Out-of-order samples (window 30m) by remote write: some compacted into out-of-order blocks
/// that overlap in-order ones, some left in the wbl and in m-mapped out-of-order head chunks,
/// some inside the in-order head's time range.
fn out_of_order(root: &Path, version: PromVersion) -> Fixture {
    let data = scenario_dir(root, "out_of_order", version);
    let target = Target::start();
    let mut srv = Server::start(version, &data, &config(&[], Some("30m")), &[]);
    let start = history_start();
    push_history(&srv, start, 0, 5);
    // Behind blocks already written: compacted into out-of-order blocks by the next head
    // compaction.
    srv.remote_write(ooo_batch(
        start,
        60_000,
        180_000,
        5_000,
        &["000", "001", "002"],
        "early",
    ));
    push_history(&srv, start, 5, HISTORY_MINUTES);
    srv.reload(&awkward_config(&srv, &target, Some("30m")));
    // Scrapes compact the last history minute; the next head compaction (which would take the
    // out-of-order head with it) is then 150 s away: time to leave samples in the wbl.
    let head_start = start + HISTORY_MINUTES * 60_000;
    srv.wait_head_min(head_start, Duration::from_secs(100));
    while now_ms() < head_start + 45_000 {
        std::thread::sleep(Duration::from_millis(200));
    }
    // 60 samples before the head (an m-mapped out-of-order chunk of 32, the rest in memory)...
    srv.remote_write(ooo_batch(start, 360_000, 420_000, 1_000, &["004"], "late"));
    // ...and samples between the scraped ones of a scraped series, inside the head's range.
    let instance = target.addr();
    let labels = [
        ("__name__", "awk_many"),
        ("env", "tést \"q\" \\ x"),
        ("grp", "g0"),
        ("i", "007"),
        ("instance", instance.as_str()),
        ("job", "awkward"),
    ];
    let samples: Vec<(i64, u64)> = (0..15)
        .map(|j| {
            (
                head_start + 2_000 + j * 2_000 + 507,
                (-(j as f64) - 0.5).to_bits(),
            )
        })
        .collect();
    srv.remote_write(vec![series(&labels, &samples)]);
    target.wait_scrapes(5);
    let appended = srv
        .metric("prometheus_tsdb_head_out_of_order_samples_appended_total")
        .unwrap_or(0.0);
    assert!(appended > 0.0, "out_of_order: no sample went out of order");
    srv.stop();
    let layout = Layout::scan(&data);
    check(&layout, "out_of_order");
    assert!(
        layout.wbl_segments.iter().any(|s| s.1 > 0),
        "out_of_order: the wbl is empty\n{}",
        layout.describe()
    );
    Fixture {
        name: "out_of_order",
        version,
        data,
        serve_config: config(&[], Some("30m")),
        how: format!(
            "out_of_order_time_window 30m, WAL compression on. History minutes 0-4 (from {start} \
             ms); out-of-order samples at 5 s offsets in minutes 1-3 for hist_gauge idx 000-002 \
             and a new series ooo_only{{batch=\"early\"}} (compacted at the next head compaction \
             into out-of-order blocks, which block compaction then merges with the in-order \
             ones); history minutes 5-9; scrapes until minute 9 is compacted and 45 s into the \
             next; then out-of-order samples left in the head (wbl): 60 at 1 s in minute 6 \
             (hist_gauge idx 004, ooo_only{{batch=\"late\"}}: an m-mapped out-of-order chunk of \
             32 and the rest in memory), and 15 at 2 s between the scraped samples of \
             awk_many{{i=\"007\"}} inside the in-order head's range; 5 more scrapes; SIGTERM."
        ),
        layout,
        build_time: Duration::ZERO,
    }
}

/// Out-of-order samples for `hist_gauge` of `idxs` at odd offsets from the history's own, and
/// for an `ooo_only` series that has no in-order sample at all.
fn ooo_batch(
    start: i64,
    from: i64,
    to: i64,
    step: i64,
    idxs: &[&str],
    batch: &str,
) -> Vec<TimeSeries> {
    let samples = |scale: f64| -> Vec<(i64, u64)> {
        (from / step..to / step)
            .map(|j| {
                let t = start + j * step + step / 2 + 7;
                (t, (j as f64 * scale - 0.5).to_bits())
            })
            .collect()
    };
    let mut v: Vec<TimeSeries> = idxs
        .iter()
        .map(|idx| {
            series(
                &[
                    ("__name__", "hist_gauge"),
                    ("idx", idx),
                    ("zone", "eu\"west"),
                ],
                &samples(1.5),
            )
        })
        .collect();
    v.push(series(
        &[("__name__", "ooo_only"), ("batch", batch), ("q", "ö\\\"")],
        &samples(-2.25),
    ));
    v
}

/// What every scenario must have produced: blocks (some compacted to level 2), a WAL checkpoint,
/// WAL segments and m-mapped head chunks with data.
fn check(l: &Layout, name: &str) {
    let d = l.describe();
    assert!(l.blocks.len() >= 3, "{name}: too few blocks\n{d}");
    assert!(
        l.blocks.iter().any(|b| b.level >= 2),
        "{name}: no compacted block\n{d}"
    );
    assert!(!l.checkpoints.is_empty(), "{name}: no WAL checkpoint\n{d}");
    assert!(
        l.wal_segments.iter().filter(|s| s.1 > 0).count() >= 2,
        "{name}: fewer than two WAL segments with data\n{d}"
    );
    assert!(
        l.chunks_head.iter().any(|s| s.1 > 8),
        "{name}: no m-mapped head chunk\n{d}"
    );
}

/// Copies each fixture to `out/<id>/data` (id: name and version), dumps another copy with that
/// version's promtool into `out/<id>/dump.txt`, and writes `out/README.md`.
pub fn export(fixtures: &[Fixture], out: &Path) {
    let mut readme = String::from(
        "# Prometheus 2.42 and 3.5.3 data directories\n\n\
         Made by `tests/common/scenarios.rs` (run with PROM2OM_FIXTURES_OUT=DIR; the tests build \
         their own in a temp dir). Each `<name>-<version>/data` is the data dir of a stopped \
         Prometheus 2.42.0 (Debian bookworm) or 3.5.3 (Debian sid) run with \
         --storage.tsdb.min-block-duration=1m --storage.tsdb.max-block-duration=3m; \
         `dump.txt` is `promtool tsdb dump` of another copy by the same version's promtool \
         (2.42's dump writes into the dir it reads; 3.5.3's prints histograms lossily and \
         leaves out the first sample of each histogram series). Label values include quotes, \
         backslashes, newlines, tabs, UTF-8 and a 2000-byte value; values include real NaN \
         (0x7ff8000000000001) next to staleness markers (0x7ff0000000000002), ±Inf, -0, \
         5e-324. Servers serving a copy need `serve.yml` (the out-of-order window).\n\n\
         Checked on these dirs: the dump includes the out-of-order head (wbl and m-mapped \
         out-of-order chunks) and applies tombstones; remote read from the same version serving \
         a copy returns exactly the dump's float samples less the staleness markers. The \
         fixture lists below give each block's [minTime, maxTime) in ms.\n\n",
    );
    for f in fixtures {
        let dir = out.join(f.id());
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&f.data, &dir.join("data"));
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(&f.data, tmp.path());
        let dump = crate::common::dump_with(f.version, tmp.path(), None);
        std::fs::write(dir.join("dump.txt"), dump).unwrap();
        std::fs::write(dir.join("serve.yml"), &f.serve_config).unwrap();
        readme.push_str(&format!(
            "## {} (Prometheus {})\n\n{}\n\n{}\n",
            f.name,
            f.version.number(),
            f.how,
            f.layout.describe()
        ));
    }
    std::fs::write(out.join("README.md"), readme).unwrap();
}
