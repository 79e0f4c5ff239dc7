//! A data dir whose newest WAL segment ends inside a record, as a crash leaves it, made by a real
//! Prometheus (2.42 and 3.5.3) then cut: `convert` exits 0 without that record, warns naming the
//! segment even with `-q`, and lists the loss in the manifest; a real Prometheus started on the
//! cut dir repairs its WAL and serves exactly what the shards hold.

mod common;
mod fetch_support;
#[path = "common/promdir.rs"]
#[allow(dead_code)]
mod promdir;
mod rw_support;

use std::path::{Path, PathBuf};

use common::{prom2om, run, PromVersion};
use fetch_support::{assert_same, samples, Data};
use prom2om::format::shard_dir::{Manifest, LOSS_TORN_LOG};
use prom2om::format::tsdb::wal::Records;
use prom2om::labels::Labels;
use promdir::{config, copy_dir, now_ms, series, Server};
use rw_support::{settled_remote_read, shard_data};

const SERIES: usize = 40;
const PER_REQUEST: i64 = 5;

/// Pushes three remote-write requests of `SERIES` series × `PER_REQUEST` samples, one second
/// apart, and stops the server: each request is one samples record in the WAL, the last one
/// last. Returns what each request held.
fn three_requests(srv: &mut Server) -> Vec<Data> {
    let t0 = (now_ms() - 60_000) / 1000 * 1000;
    let mut sent = Vec::new();
    for r in 0..3 {
        let mut d = Data::new();
        let mut batch = Vec::new();
        for i in 0..SERIES {
            let name = format!("{i:02}");
            let pts: Vec<(i64, u64)> = (0..PER_REQUEST)
                .map(|j| {
                    let t = t0 + (r * PER_REQUEST + j) * 1000;
                    (t, ((r * 100 + j) as f64 + i as f64 / 8.0).to_bits())
                })
                .collect();
            let labels = [("__name__", "torn_test"), ("i", name.as_str())];
            d.insert(Labels::from_pairs(labels), pts.iter().copied().collect());
            batch.push(series(&labels, &pts));
        }
        srv.remote_write(batch);
        sent.push(d);
    }
    srv.stop();
    sent
}

/// The newest segment of `data/wal` and where its last record starts and ends (after its last
/// fragment: a segment closed cleanly is padded with zeros to its page's end).
fn last_record(data: &Path) -> (PathBuf, usize, usize) {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(data.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().len() == 8)
        .collect();
    segs.sort();
    let newest = segs.pop().expect("a WAL segment");
    let bytes = std::fs::read(&newest).unwrap();
    let mut rd = Records::new(vec![&bytes[..]], false);
    let mut last = None;
    while let Some(r) = rd.next() {
        last = Some(r.expect("an intact WAL").offset);
    }
    let start = last.expect("records in the newest segment");
    // Fragments: type (low bits 1 full, 2 first, 3 middle, 4 last), BE16 length, CRC32C, data;
    // padding (type 0) to a page's end between them.
    let mut at = start;
    loop {
        let typ = bytes[at] & 7;
        if typ == 0 {
            at = (at / 32768 + 1) * 32768;
            continue;
        }
        let len = u16::from_be_bytes([bytes[at + 1], bytes[at + 2]]) as usize;
        at += 7 + len;
        if typ == 1 || typ == 4 {
            return (newest, start, at);
        }
    }
}

fn merged(parts: &[Data]) -> Data {
    let mut all = Data::new();
    for p in parts {
        for (l, s) in p {
            all.entry(l.clone()).or_default().extend(s);
        }
    }
    all
}

#[test]
fn a_wal_cut_inside_its_last_record_converts_without_it_said_and_listed() {
    for version in [PromVersion::V2_42, PromVersion::V3_5] {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut srv = Server::start(version, &data, &config(&[], None), &[]);
        let sent = three_requests(&mut srv);
        let (seg, at, end) = last_record(&data);
        assert!(
            end - at > 20,
            "{version:?}: the last record is {} bytes",
            end - at
        );
        // Cut inside it, as a crash leaves the segment.
        let cut = at + (end - at) / 2;
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);
        let seg_name = format!("wal/{}", seg.file_name().unwrap().to_str().unwrap());

        let out = tmp.path().join("out");
        let mut c = prom2om();
        c.arg("convert").arg(&data).arg("-q").arg("-o").arg(&out);
        let (code, stdout, err) = run(c);
        assert_eq!(code, 0, "{version:?}: {stdout}\n{err}");
        assert!(
            err.contains(&format!(
                "{}/{seg_name}: byte {at}: the segment ends inside a record",
                data.display()
            )),
            "{version:?}: {err}"
        );
        assert!(err.contains("WAL repair drops that record"), "{err}");
        let m: Manifest =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m.losses.len(), 1, "{version:?}: {:?}", m.losses);
        let loss = &m.losses[0];
        assert_eq!(
            (loss.kind.as_str(), loss.count, loss.input.as_str()),
            (LOSS_TORN_LOG, 1, data.to_str().unwrap())
        );
        assert!(
            loss.details[0].starts_with(&format!("{seg_name}: byte {at}:")),
            "{loss:?}"
        );
        // Every sample but those of the last request.
        let want = merged(&sent[..2]);
        let got = shard_data(&out);
        assert_same(&got, &want, &format!("{version:?}: shards"));
        assert_eq!(samples(&got), 2 * SERIES * PER_REQUEST as usize);

        // At home the loss is said again: by verify (which passes) and by import.
        let mut c = prom2om();
        c.arg("verify").arg(&out);
        let (code, _, err) = run(c);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("note: the export lacks 1 log record(s) being written"),
            "{err}"
        );
        let mut c = prom2om();
        c.arg("import")
            .arg(&out)
            .arg("--tsdb")
            .arg(tmp.path().join("home"));
        let (code, _, err) = run(c);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("warning: the export lacks 1 log record(s)"),
            "{err}"
        );

        // The same version started on the cut dir repairs it, and holds the same.
        let copy = tmp.path().join("copy");
        copy_dir(&data, &copy);
        let mut srv = Server::start(version, &copy, &config(&[], None), &[]);
        assert_same(
            &settled_remote_read(&srv.url(), &want),
            &want,
            &format!("{version:?}: the repaired server vs the shards"),
        );
        assert!(srv.log().contains("repair"), "{}", srv.log());
        srv.stop();
    }
}
