//! Damaged blocks: every kind of damage stops the run with exit 2 and names the block, the file,
//! the byte offset and the series where known; --skip-invalid skips and counts the damage.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::assert::OutputAssertExt;
use common::*;
use predicates::prelude::*;

const BLOCK: &str = "01M8MX6V563YAV666ATQ07V9E4";

/// A data dir holding a copy of the golden block written by promtool 2.42.
fn data_dir(tmp: &Path) -> PathBuf {
    let data = tmp.join("data");
    std::fs::create_dir_all(data.join("wal")).unwrap();
    run_ok(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(testdata("tsdb/golden-block"))
            .arg(data.join(BLOCK)),
    );
    data
}

fn edit(data: &Path, file: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let p = data.join(BLOCK).join(file);
    let mut b = std::fs::read(&p).unwrap();
    f(&mut b);
    std::fs::write(&p, b).unwrap();
}

fn convert(data: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    prom2om()
        .arg("convert")
        .arg(data)
        .args(extra)
        .args(["-o", "-"])
        .assert()
}

/// The first chunk of the segment starts at byte 8: a two-byte length, the encoding, the data.
fn first_chunk_len(seg: &[u8]) -> usize {
    (seg[8] & 0x7f) as usize | (seg[9] as usize) << 7
}

#[test]
fn chunk_checksum_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path());
    edit(&data, "chunks/000001", |b| b[20] ^= 0x10);
    convert(&data, &[])
        .code(2)
        .stderr(predicate::str::contains(format!(
            "block {BLOCK}: chunks/000001: at byte 8:"
        )))
        .stderr(predicate::str::contains("CRC32C mismatch"))
        .stderr(predicate::str::contains(
            r#"(series {__name__="golden", s="0", x="a\"b"})"#,
        ))
        .stderr(predicate::str::contains("--skip-invalid"));
    // Skipped: the other chunks and series are all there.
    let out = prom2om()
        .arg("convert")
        .arg(&data)
        .args(["--skip-invalid", "-o", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("damaged chunks or series skipped 1"), "{err}");
    assert!(
        err.contains("skipped block 01M8MX6V563YAV666ATQ07V9E4: chunks/000001: at byte 8"),
        "{err}"
    );
    let dump = std::fs::read_to_string(testdata("tsdb/golden-block.dump")).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let first_chunk_samples = dump.lines().count() - (text.lines().count() - 1);
    assert!(
        first_chunk_samples > 10 && first_chunk_samples < 150,
        "{first_chunk_samples}"
    );
}

#[test]
fn unknown_encoding_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path());
    edit(&data, "chunks/000001", |b| {
        let n = first_chunk_len(b);
        b[10] = 7;
        let crc = crc32c::crc32c(&b[10..11 + n]);
        b[11 + n..15 + n].copy_from_slice(&crc.to_be_bytes());
    });
    convert(&data, &[])
        .code(2)
        .stderr(predicate::str::contains(
            "chunks/000001: chunk at byte 8: chunk encoding 7 is unknown",
        ))
        .stderr(predicate::str::contains(r#"s="0""#));
}

#[test]
fn truncated_chunk_file_and_missing_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path());
    let len = std::fs::metadata(data.join(BLOCK).join("chunks/000001"))
        .unwrap()
        .len();
    edit(&data, "chunks/000001", |b| b.truncate(b.len() / 2));
    convert(&data, &[])
        .code(2)
        .stderr(predicate::str::contains("chunks/000001: at byte"))
        .stderr(
            predicate::str::contains("runs past the end")
                .or(predicate::str::contains("outside the segment")),
        );
    let data = data_dir(&tmp.path().join("b"));
    std::fs::remove_file(data.join(BLOCK).join("chunks/000001")).unwrap();
    convert(&data, &[]).code(2).stderr(predicate::str::contains(
        "chunks/000001: chunk segment missing",
    ));
    assert!(len > 1000);
}

#[test]
fn truncated_index_and_bad_series_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path());
    edit(&data, "index", |b| b.truncate(b.len() - 30));
    convert(&data, &[])
        .code(2)
        .stderr(predicate::str::contains(format!("{BLOCK}/index: at byte")));
    // A damaged series entry: the first series is at byte 16 * its ref.
    let data = data_dir(&tmp.path().join("b"));
    let ix = std::fs::read(data.join(BLOCK).join("index")).unwrap();
    let ix = prom2om::format::tsdb::index::Index::parse(&ix).unwrap();
    let id = ix.all_postings().unwrap()[0];
    edit(&data, "index", |b| b[id as usize * 16 + 4] ^= 1);
    convert(&data, &[])
        .code(2)
        .stderr(predicate::str::contains(format!(
            "block {BLOCK}: index: at byte {}: series {id}",
            id * 16
        )));
    let out = prom2om()
        .arg("convert")
        .arg(&data)
        .args(["--skip-invalid", "-o", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains(r#"s="0""#) && text.contains(r#"s="1""#),
        "{text}"
    );
}

/// Damage skipped under --skip-invalid is a loss: said even with -q, and listed in the manifest.
#[test]
fn skipped_damage_is_said_with_q_and_listed_in_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data_dir(tmp.path());
    edit(&data, "chunks/000001", |b| b[20] ^= 0x10);
    let out = tmp.path().join("out");
    prom2om()
        .arg("convert")
        .arg(&data)
        .args(["-q", "--skip-invalid", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: skipped 1 damaged items of",
        ))
        .stderr(predicate::str::contains("CRC32C mismatch"))
        .stderr(predicate::str::contains("listed in the manifest's losses"));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let losses = m["losses"].as_array().unwrap();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0]["kind"], "skipped_invalid");
    assert_eq!(losses[0]["count"], 1);
    assert_eq!(losses[0]["input"], data.to_str().unwrap());
    assert!(
        losses[0]["details"][0]
            .as_str()
            .unwrap()
            .contains(&format!("block {BLOCK}: chunks/000001: at byte 8")),
        "{losses:?}"
    );
}
