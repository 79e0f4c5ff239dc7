//! Samples later than now (a customer host whose clock ran ahead): `import --tsdb` into a data
//! dir that has blocks refuses them before touching it, and with `--allow-future` gives a
//! retention hint under which a real Prometheus keeps every block (the default 15d deletes the
//! old ones); `import --remote-write` refuses them before sending anything.

mod common;
mod fetch_support;
mod rw_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{prom2om, run, Prom, PromVersion};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().into(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// The block dirs (ULIDs) of a data dir.
fn blocks(data: &Path) -> Vec<String> {
    let mut b: Vec<String> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 26 && n.starts_with('0'))
        .collect();
    b.sort();
    b
}

/// A data dir with blocks of 12 hours of data from 10 days ago, by promtool.
fn data_dir_with_blocks(tmp: &Path) -> PathBuf {
    let start = (now_ms() - 10 * DAY) / (2 * HOUR) * (2 * HOUR);
    let mut om = String::from("# TYPE old_data gauge\n");
    for k in 0..12 * 60 {
        let t = start + k * 60_000;
        om.push_str(&format!(
            "old_data{{i=\"a\"}} {k} {}.{:03}\n",
            t / 1000,
            t % 1000
        ));
    }
    om.push_str("# EOF\n");
    let file = tmp.join("old.om");
    std::fs::write(&file, om).unwrap();
    let data = tmp.join("data");
    common::backfill(&file, &data);
    assert!(blocks(&data).len() >= 2, "{:?}", blocks(&data));
    data
}

/// Shards of a recent hour and one sample 30 days ahead.
fn shards_with_a_future_sample(tmp: &Path, now: i64) -> PathBuf {
    let mut text = String::new();
    for k in 0..60 {
        let t = now - HOUR + k * 60_000;
        text.push_str(&format!("{{__name__=\"new_data\", i=\"b\"}} {k} {t}\n"));
    }
    text.push_str(&format!(
        "{{__name__=\"new_data\", i=\"c\"}} 1 {}\n",
        now + 30 * DAY
    ));
    std::fs::write(tmp.join("in.dump"), text).unwrap();
    let out = tmp.join("shards");
    let mut c = prom2om();
    c.arg("convert")
        .arg(tmp.join("in.dump"))
        .arg("-o")
        .arg(&out);
    let (code, o, e) = run(c);
    assert_eq!(code, 0, "{o}\n{e}");
    out
}

fn import(shards: &Path, data: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut c = prom2om();
    c.arg("import")
        .arg(shards)
        .arg("--tsdb")
        .arg(data)
        .args(extra);
    run(c)
}

/// Starts a Prometheus 2.42 on `data` with that retention (it applies retention when it opens
/// the data dir) and returns the blocks left once it is ready.
fn blocks_kept_with(data: &Path, retention_days: i64) -> Vec<String> {
    let flag = format!("--storage.tsdb.retention.time={retention_days}d");
    let prom = Prom::start_version(PromVersion::V2_42, data, &[&flag]);
    let kept = blocks(data);
    drop(prom);
    kept
}

#[test]
fn a_sample_30_days_ahead_is_refused_and_with_the_flag_the_hint_keeps_every_block() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir_with_blocks(tmp.path());
    let now = now_ms();
    let shards = shards_with_a_future_sample(tmp.path(), now);
    let before = snapshot(&data);

    let (code, out, err) = import(&shards, &data, &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("1 sample later than now"), "{err}");
    assert!(err.contains("29d 23h ahead of this host's clock"), "{err}");
    assert!(err.contains("--allow-future"), "{err}");
    assert!(err.contains("deleting the blocks"), "{err}");
    assert_eq!(snapshot(&data), before, "the data dir must be as it was");

    let (code, out, err) = import(&shards, &data, &["--allow-future"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("importing samples later than now"), "{err}");
    assert!(err.contains("The newest block ends at"), "{err}");
    assert!(
        err.contains("refuses every scraped or written sample"),
        "{err}"
    );
    let days: i64 = err
        .split("--storage.tsdb.retention.time=")
        .nth(1)
        .and_then(|s| s.split('d').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retention in the hint: {err}"));
    // From ten days ago to the end of the window of the sample 30 days ahead.
    assert!((40..=42).contains(&days), "{days}: {err}");
    let all = blocks(&data);
    assert!(all.len() >= 4, "{all:?}");

    // The hint keeps every block: the ones that were there and the imported ones.
    let copy = tmp.path().join("copy");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(blocks_kept_with(&data, days), all);
    // The default retention would delete the blocks that were there before.
    let kept = blocks_kept_with(&copy, 15);
    assert!(kept.len() < all.len(), "{kept:?} of {all:?}");
}

#[test]
fn remote_write_refuses_a_future_sample_before_sending_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let shards = shards_with_a_future_sample(tmp.path(), now_ms());
    let vm = rw_support::Vm::start();
    let (code, out, err) = rw_support::push(&shards, &vm.write_url(), &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("1 sample later than now"), "{err}");
    assert!(err.contains("out of bounds"), "{err}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let got = vm.export("{__name__!=\"\"}", 0);
    assert!(got.is_empty(), "nothing may be sent: {got:?}");
}

/// `convert` names samples later than now, from a dump and from a data dir (blocks promtool
/// made), even with -q: how many, the latest, the clock to check.
#[test]
fn convert_names_samples_later_than_now() {
    let tmp = tempfile::tempdir().unwrap();
    let now = now_ms();
    // From dump text, into a shard dir and onto stdout.
    let shards = tmp.path().join("dump");
    std::fs::create_dir_all(&shards).unwrap();
    shards_with_a_future_sample(&shards, now);
    for out in [shards.join("again"), PathBuf::from("-")] {
        let mut c = prom2om();
        c.arg("convert")
            .arg(shards.join("in.dump"))
            .arg("-q")
            .arg("-o")
            .arg(&out);
        let (code, _, err) = run(c);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("warning: 1 sample is later than the start of this run"),
            "{err}"
        );
        assert!(err.contains("29d 23h ahead of this host's clock"), "{err}");
        assert!(
            err.contains("--allow-future") && err.contains("--end "),
            "{err}"
        );
    }
    // From a data dir: two samples 30 days ahead in a block.
    let t = now + 30 * DAY;
    let om = format!(
        "# TYPE ahead gauge\nahead 1 {}.{:03}\nahead 2 {}.{:03}\n# EOF\n",
        t / 1000,
        t % 1000,
        (t + 1000) / 1000,
        (t + 1000) % 1000
    );
    std::fs::write(tmp.path().join("ahead.om"), om).unwrap();
    let data = tmp.path().join("ahead-data");
    common::backfill(&tmp.path().join("ahead.om"), &data);
    let mut c = prom2om();
    c.arg("convert")
        .arg(&data)
        .arg("-o")
        .arg(tmp.path().join("ahead-shards"));
    let (code, _, err) = run(c);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: 2 samples are later than the start of this run"),
        "{err}"
    );
}
