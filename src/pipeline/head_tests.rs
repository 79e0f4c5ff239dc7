//! Replay rules on small data dirs written the way Prometheus writes them (WAL writer, record
//! encoders and chunk files from the format layer's tests).
use super::*;
use crate::exit_codes::ExitCode;
use crate::format::tsdb::head_chunks::tests::xor_chunk;
use crate::format::tsdb::head_chunks::write_file;
use crate::format::tsdb::record::tests::*;
use crate::format::tsdb::wal::{Compression, Writer, PAGE_SIZE};
use std::collections::BTreeSet;
use std::path::PathBuf;

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        let d = Dir {
            tmp: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(d.path().join("wal")).unwrap();
        d
    }

    fn path(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    /// Writes `recs` as one or more segments starting at number `first` under `sub`.
    fn log(&self, sub: &str, first: u32, recs: &[Vec<u8>]) {
        self.log_with(sub, first, recs, Compression::Snappy);
    }

    fn log_with(&self, sub: &str, first: u32, recs: &[Vec<u8>], c: Compression) {
        let mut w = Writer::new(PAGE_SIZE * 4, c);
        for r in recs {
            w.log(r);
        }
        let dir = self.path().join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in w.segments().iter().enumerate() {
            std::fs::write(dir.join(format!("{:08}", first + i as u32)), s).unwrap();
        }
    }

    fn chunks(&self, seq: u32, chunks: &[(u64, i64, i64, u8, Vec<u8>)]) {
        let c: Vec<_> = chunks
            .iter()
            .map(|(r, a, b, e, d)| (*r, *a, *b, *e, &d[..]))
            .collect();
        let dir = self.path().join("chunks_head");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{seq:06}")), write_file(&c, 1000)).unwrap();
    }
}

#[derive(Default)]
struct Collect {
    names: Vec<String>,
    got: BTreeSet<(String, i64, u64)>,
    /// Histograms in the order given.
    hists: Vec<(String, i64, HistogramValue)>,
    visits: usize,
}

impl HeadVisitor for Collect {
    fn series(&mut self, labels: &Labels) -> Result<Option<u32>> {
        if labels.metric_name() == "unwanted" {
            return Ok(None);
        }
        self.names.push(labels.get("s").unwrap_or("").to_string());
        Ok(Some(self.names.len() as u32 - 1))
    }
    fn sample(&mut self, id: u32, ts: i64, bits: u64) -> Result<()> {
        self.visits += 1;
        self.got.insert((self.names[id as usize].clone(), ts, bits));
        Ok(())
    }
    fn histogram(&mut self, id: u32, ts: i64, h: &HistogramValue) -> Result<()> {
        self.visits += 1;
        self.hists
            .push((self.names[id as usize].clone(), ts, h.clone()));
        Ok(())
    }
}

fn opts(min_valid_time: i64) -> HeadOptions {
    HeadOptions {
        min_valid_time,
        mint: i64::MIN,
        maxt: i64::MAX,
        skip_invalid: false,
    }
}

type Got = Vec<(String, i64, f64)>;

fn read(d: &Dir, o: &HeadOptions) -> Result<(Got, HeadStats)> {
    let mut c = Collect::default();
    let st = read_head(&d.path(), o, &mut c)?;
    let v = c
        .got
        .into_iter()
        .map(|(s, t, b)| (s, t, f64::from_bits(b)))
        .collect();
    Ok((v, st))
}

/// The visitor after a replay of `d`.
fn collect(d: &Dir, o: &HeadOptions) -> Collect {
    let mut c = Collect::default();
    read_head(&d.path(), o, &mut c).unwrap();
    c
}

fn sx(name: &str) -> [(&'static str, &str); 2] {
    [("__name__", "m"), ("s", name)]
}

fn f(v: f64) -> u64 {
    v.to_bits()
}

fn s(name: &str, t: i64, v: f64) -> (String, i64, f64) {
    (name.to_string(), t, v)
}

#[test]
fn wal_samples_follow_the_in_order_rules() {
    let d = Dir::new();
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a")), (2, &sx("b"))]),
            enc_samples(&[(1, 100, f(1.0)), (2, 100, f(2.0)), (9, 100, f(9.0))]),
            // Older than the last accepted, a repeat, too old for the head: all dropped.
            enc_samples(&[(1, 50, f(0.5)), (1, 100, f(1.5)), (2, 10, f(0.1))]),
            enc_samples(&[(1, 200, f(3.0))]),
            enc_series(&[(3, &[("__name__", "unwanted")])]),
            enc_samples(&[(3, 300, f(3.0)), (2, 5, f(5.0))]),
        ],
    );
    let (got, st) = read(&d, &opts(20)).unwrap();
    assert_eq!(
        got,
        vec![s("a", 100, 1.0), s("a", 200, 3.0), s("b", 100, 2.0)]
    );
    assert_eq!((st.series, st.samples), (3, 3));
}

#[test]
fn mmapped_chunks_come_first_and_wal_resumes_after_them() {
    let d = Dir::new();
    d.chunks(
        1,
        &[
            (1, 1000, 1000, 1, xor_chunk(1000, 1.0)),
            (1, 2000, 2000, 1, xor_chunk(2000, 2.0)),
            // Entirely before min_valid_time: ignored.
            (2, 10, 10, 1, xor_chunk(10, 0.1)),
            // Unknown series: dropped.
            (5, 3000, 3000, 1, xor_chunk(3000, 5.0)),
        ],
    );
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a")), (2, &sx("b"))]),
            enc_samples(&[(1, 2000, f(9.0)), (1, 2500, f(2.5)), (2, 500, f(0.5))]),
        ],
    );
    let (got, _) = read(&d, &opts(100)).unwrap();
    assert_eq!(
        got,
        vec![
            s("a", 1000, 1.0),
            s("a", 2000, 2.0),
            s("a", 2500, 2.5),
            s("b", 500, 0.5)
        ]
    );
}

#[test]
fn a_series_recreated_under_a_new_ref_is_reset() {
    // As 2.42 replays: the second series record for the same labels drops what was replayed
    // before it (head chunk and m-mapped chunks of the old ref); the new ref's chunks count.
    let d = Dir::new();
    d.chunks(
        1,
        &[
            (1, 10, 10, 1, xor_chunk(10, 0.1)),
            (7, 120, 120, 1, xor_chunk(120, 1.2)),
        ],
    );
    d.log(
        "wal/checkpoint.00000001",
        0,
        &[enc_series(&[(1, &sx("a"))])],
    );
    d.log("wal", 2, &[enc_samples(&[(1, 100, f(1.0))])]);
    d.log(
        "wal",
        3,
        &[
            enc_samples(&[(1, 200, f(2.0)), (7, 90, f(0.9))]),
            enc_series(&[(7, &sx("a"))]),
            enc_samples(&[(7, 110, f(1.1)), (7, 150, f(1.5)), (1, 300, f(3.0))]),
        ],
    );
    let (got, _) = read(&d, &opts(i64::MIN)).unwrap();
    assert_eq!(
        got,
        vec![s("a", 120, 1.2), s("a", 150, 1.5), s("a", 300, 3.0)]
    );
}

#[test]
fn replay_starts_after_the_newest_checkpoint() {
    let d = Dir::new();
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("old"))]),
            enc_samples(&[(1, 1, f(1.0))]),
        ],
    );
    d.log(
        "wal/checkpoint.00000000",
        0,
        &[enc_series(&[(2, &sx("cp0"))])],
    );
    d.log(
        "wal/checkpoint.00000001",
        0,
        &[enc_series(&[(3, &sx("a"))])],
    );
    std::fs::create_dir(d.path().join("wal/checkpoint.00000005.tmp")).unwrap();
    d.log("wal", 1, &[enc_samples(&[(1, 2, f(0.0)), (3, 2, f(2.0))])]);
    d.log("wal", 2, &[enc_samples(&[(2, 3, f(0.0)), (3, 3, f(3.0))])]);
    let (got, _) = read(&d, &opts(i64::MIN)).unwrap();
    assert_eq!(got, vec![s("a", 3, 3.0)]);
}

#[test]
fn tombstones_apply_to_in_order_data_of_the_first_ref() {
    let d = Dir::new();
    // Chunks reaching past min_valid_time (150) keep their older samples, as in 2.42.
    d.chunks(
        1,
        &[
            (1, 100, 160, 1, xor_chunk(100, 1.0)),
            (3, 100, 160, 1, xor_chunk(100, 0.3)),
        ],
    );
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a")), (2, &sx("b")), (3, &sx("c"))]),
            enc_samples(&[(1, 200, f(2.0)), (2, 200, f(2.0)), (1, 300, f(3.0))]),
            enc_tombstones(&[(1, 50, 250)]),
            // Ends before min_valid_time: ignored, as 2.42 does.
            enc_tombstones(&[(3, 0, 120)]),
            enc_series(&[(8, &sx("b"))]),
            // Names the second ref of "b": 2.42 finds no series by that id.
            enc_tombstones(&[(8, 0, 1000)]),
            enc_samples(&[(8, 400, f(4.0))]),
        ],
    );
    d.log("wbl", 0, &[enc_samples(&[(1, 150, f(1.5))])]);
    let (got, _) = read(&d, &opts(150)).unwrap();
    assert_eq!(
        got,
        vec![
            s("a", 150, 1.5),
            s("a", 300, 3.0),
            s("b", 400, 4.0),
            s("c", 100, 0.3)
        ],
        "the wbl sample survives the tombstone"
    );
}

#[test]
fn out_of_order_head_chunk_as_2_42() {
    let d = Dir::new();
    d.chunks(1, &[(1, 1000, 1031, 0x81, xor_chunk(1000, 10.0))]);
    let series = enc_series(&[(1, &sx("a")), (2, &sx("b"))]);
    d.log("wal", 0, std::slice::from_ref(&series));
    let mut wbl = vec![enc_samples(&[
        (1, 5, f(5.0)),
        (1, 5, f(6.0)),
        (1, 4, f(4.0)),
    ])];
    // This marker names the chunk in chunks_head: the OOO head chunk so far is in it.
    wbl.push(enc_markers(&[(1, 1 << 32 | 8)]));
    wbl.push(enc_samples(&[(1, 7, f(7.0))]));
    // A marker of a chunk missing from chunks_head changes nothing.
    wbl.push(enc_markers(&[(1, 2 << 32 | 8)]));
    // 33 samples: the chunk is cut at 32, all kept.
    let many: Vec<_> = (0..33).map(|i| (2, 100 - i, f(i as f64))).collect();
    wbl.push(enc_samples(&many));
    d.log("wbl", 0, &wbl);
    let (got, _) = read(&d, &opts(i64::MIN)).unwrap();
    let a: Vec<_> = got.iter().filter(|x| x.0 == "a").cloned().collect();
    assert_eq!(a, vec![s("a", 7, 7.0), s("a", 1000, 10.0)]);
    assert_eq!(got.len(), 2 + 33);
}

fn damaged_wal(d: &Dir) {
    let recs: Vec<Vec<u8>> = std::iter::once(enc_series(&[(1, &sx("a"))]))
        .chain((0..5000).map(|i| enc_samples(&[(1, i, f(i as f64))])))
        .collect();
    d.log("wal", 0, &recs);
    let seg0 = d.path().join("wal/00000000");
    let mut b = std::fs::read(&seg0).unwrap();
    assert!(d.path().join("wal/00000001").exists());
    b[PAGE_SIZE + 20] ^= 0x40;
    std::fs::write(&seg0, b).unwrap();
}

#[test]
fn damage_is_an_input_error_naming_file_and_offset_or_is_skipped() {
    let d = Dir::new();
    damaged_wal(&d);
    let e = read(&d, &opts(i64::MIN)).unwrap_err();
    assert_eq!(ExitCode::of(&e), ExitCode::BadInput);
    let msg = format!("{e:#}");
    assert!(
        msg.contains("wal/00000000: byte 32") && msg.contains("CRC32C"),
        "{msg}"
    );
    let mut o = opts(i64::MIN);
    o.skip_invalid = true;
    let (got, st) = read(&d, &o).unwrap();
    assert_eq!(st.skipped_invalid, 1, "{st:?}");
    assert_eq!(st.reported.len(), 1);
    assert!(got.len() > 3500 && got.len() < 5000, "{}", got.len());
}

#[test]
fn unknown_record_types_bad_records_and_gaps_are_errors() {
    let d = Dir::new();
    d.log("wal", 0, &[enc_series(&[(1, &sx("a"))]), vec![42, 1, 2]]);
    let msg = format!("{:#}", read(&d, &opts(i64::MIN)).unwrap_err());
    assert!(msg.contains("unknown record type 42"), "{msg}");

    let d = Dir::new();
    let mut bad = enc_samples(&[(1, 5, f(1.0))]);
    bad.pop();
    d.log("wal", 0, &[enc_series(&[(1, &sx("a"))]), bad]);
    let msg = format!("{:#}", read(&d, &opts(i64::MIN)).unwrap_err());
    assert!(
        msg.contains("wal/00000000: byte ") && msg.contains("samples record"),
        "{msg}"
    );

    let d = Dir::new();
    d.log("wal", 0, &[enc_series(&[(1, &sx("a"))])]);
    d.log("wal", 2, &[enc_samples(&[(1, 5, f(1.0))])]);
    let e = read(&d, &opts(i64::MIN)).unwrap_err();
    assert_eq!(ExitCode::of(&e), ExitCode::BadInput);
    assert!(format!("{e:#}").contains("not consecutive"), "{e:#}");
}

#[test]
fn damaged_chunks_are_errors_or_skipped() {
    let d = Dir::new();
    d.log("wal", 0, &[enc_series(&[(1, &sx("a"))])]);
    d.chunks(
        1,
        &[
            (1, 10, 10, 1, xor_chunk(10, 1.0)),
            (1, 20, 20, 1, xor_chunk(20, 2.0)),
            (1, 15, 30, 1, xor_chunk(30, 3.0)),
            (1, 40, 40, 9, xor_chunk(40, 4.0)),
        ],
    );
    let path = d.path().join("chunks_head/000001");
    let mut b = std::fs::read(&path).unwrap();
    b[8 + 30] ^= 1; // the first chunk's data
    std::fs::write(&path, b).unwrap();
    let msg = format!("{:#}", read(&d, &opts(i64::MIN)).unwrap_err());
    assert!(msg.contains("chunks_head/000001: byte 8: CRC32C"), "{msg}");
    let mut o = opts(i64::MIN);
    o.skip_invalid = true;
    let (got, st) = read(&d, &o).unwrap();
    assert_eq!(got, vec![s("a", 20, 2.0)]);
    assert_eq!(st.skipped_invalid, 3, "{:?}", st.reported);
    assert!(st.reported[1].contains("overlaps"), "{:?}", st.reported);
    assert!(st.reported[2].contains("encoding 9"), "{:?}", st.reported);
}

#[test]
fn a_torn_tail_of_the_newest_segment_is_a_write_in_progress() {
    let d = Dir::new();
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a"))]),
            enc_samples(&[(1, 1, f(1.0))]),
            enc_samples(&[(1, 2, f(2.0))]),
        ],
    );
    let seg = d.path().join("wal/00000000");
    let b = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &b[..b.len() - 4]).unwrap();
    let (got, st) = read(&d, &opts(i64::MIN)).unwrap();
    assert_eq!(got, vec![s("a", 1, 1.0)]);
    // Not damage, but said: the record is lost, as Prometheus's repair loses it.
    assert_eq!(st.skipped_invalid, 0);
    assert_eq!(st.torn.len(), 1, "{:?}", st.torn);
    assert!(
        st.torn[0].starts_with("wal/00000000: byte ")
            && st.torn[0].contains("the segment ends inside a record"),
        "{:?}",
        st.torn
    );
}

#[test]
fn a_chunk_being_written_at_the_end_of_the_newest_file_is_left_to_the_wal() {
    let d = Dir::new();
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a"))]),
            enc_samples(&[(1, 10, f(1.0)), (1, 20, f(2.0))]),
        ],
    );
    d.chunks(
        1,
        &[
            (1, 10, 10, 1, xor_chunk(10, 1.0)),
            (1, 20, 20, 1, xor_chunk(20, 2.0)),
        ],
    );
    let path = d.path().join("chunks_head/000001");
    let b = std::fs::read(&path).unwrap();
    // The second chunk half written (its tail still the preallocated zeros).
    let second = 8 + 26 + 11 + 4;
    let mut torn = b.clone();
    torn[second + 30..].fill(0);
    std::fs::write(&path, &torn).unwrap();
    let (got, st) = read(&d, &opts(i64::MIN)).unwrap();
    assert_eq!(got, vec![s("a", 10, 1.0), s("a", 20, 2.0)]);
    assert_eq!(st.skipped_invalid, 0);
    // Cut short instead of zero-filled: the same.
    std::fs::write(&path, &b[..second + 20]).unwrap();
    assert_eq!(read(&d, &opts(i64::MIN)).unwrap().0.len(), 2);
    // In a file that is not the newest, it is damage.
    std::fs::write(d.path().join("chunks_head/000002"), write_file(&[], 100)).unwrap();
    let msg = format!("{:#}", read(&d, &opts(i64::MIN)).unwrap_err());
    assert!(msg.contains("chunks_head/000001: byte 49"), "{msg}");
}

#[test]
fn head_series_gives_labels_and_range() {
    let d = Dir::new();
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a")), (2, &sx("b")), (3, &sx("empty"))]),
            enc_samples(&[(1, 100, f(1.0)), (2, 50, f(2.0)), (1, 300, f(3.0))]),
        ],
    );
    let mut seen = Vec::new();
    let range = head_series(&d.path(), &opts(i64::MIN), &mut |l| {
        seen.push(l.get("s").unwrap().to_string())
    })
    .unwrap();
    assert_eq!(range, Some((50, 300)));
    seen.sort();
    assert_eq!(seen, vec!["a", "b"]);
    let empty = Dir::new();
    assert_eq!(
        head_series(&empty.path(), &opts(0), &mut |_| {}).unwrap(),
        None
    );
}

#[test]
fn histograms_and_floats_share_one_in_order_time_line() {
    let d = Dir::new();
    d.log(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a"))]),
            enc_histograms(7, &[(1, 100), (1, 200)]),
            enc_samples(&[(1, 150, f(1.0)), (1, 250, f(2.0))]),
            enc_histograms(8, &[(1, 240), (1, 300)]),
        ],
    );
    let (got, st) = read(&d, &opts(i64::MIN)).unwrap();
    assert_eq!(got, vec![s("a", 250, 2.0)]);
    assert_eq!((st.samples, st.histograms), (1, 3));
    let c = collect(&d, &opts(i64::MIN));
    let times: Vec<i64> = c.hists.iter().map(|h| h.1).collect();
    assert_eq!(times, [100, 200, 300]);
    assert!(matches!(c.hists[2].2, HistogramValue::Float(_)));
}

#[test]
fn checkpoints_replaced_while_reading_are_listed_again() {
    // A live server writes checkpoint.N+1 and deletes checkpoint.N at any moment.
    let d = Dir::new();
    let recs = [
        enc_series(&[(1, &sx("a"))]),
        enc_samples(&[(1, 100, f(1.0))]),
    ];
    d.log("wal/checkpoint.00000001", 0, &recs);
    // The WAL after every checkpoint of the test; without a checkpoint, segment 0 is missing.
    for i in 2..300 {
        std::fs::write(d.path().join(format!("wal/{i:08}")), b"").unwrap();
    }
    d.log("wal", 300, &[enc_samples(&[(1, 200, f(2.0))])]);
    let root = d.path();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            for k in 1..250u32 {
                let tmp = root.join(format!("wal/checkpoint.{:08}.tmp", k + 1));
                std::fs::create_dir(&tmp).unwrap();
                let mut w = Writer::new(PAGE_SIZE, Compression::None);
                recs.iter().for_each(|r| w.log(r));
                std::fs::write(tmp.join("00000000"), &w.segments()[0]).unwrap();
                std::fs::rename(&tmp, root.join(format!("wal/checkpoint.{:08}", k + 1))).unwrap();
                std::fs::remove_dir_all(root.join(format!("wal/checkpoint.{k:08}"))).unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut reads = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let (got, _) = read(&d, &opts(i64::MIN)).expect("read during checkpoint swaps");
            assert_eq!(got, vec![s("a", 100, 1.0), s("a", 200, 2.0)]);
            reads += 1;
        }
        assert!(reads > 0);
    });
}

#[test]
fn a_wal_as_3_x_writes_it_zstd_and_samples_v2() {
    let d = Dir::new();
    let big: Vec<_> = (0..3000)
        .map(|i| (1 + i % 2, 1000 + i as i64, 0, f(i as f64)))
        .collect();
    d.log_with(
        "wal",
        0,
        &[
            enc_series(&[(1, &sx("a")), (2, &sx("b"))]),
            enc_samples_v2(&big),
            enc_histograms(12, &[(1, 5000)]),
            enc_histograms(13, &[(2, 5000)]),
        ],
        Compression::Zstd,
    );
    let seg = std::fs::read(d.path().join("wal/00000000")).unwrap();
    let mut r = crate::format::tsdb::wal::Records::new(vec![&seg], false);
    let mut zstd = 0;
    while let Some(raw) = r.next_raw() {
        zstd += raw.unwrap().type_hint().is_none() as usize;
    }
    assert!(zstd >= 1, "the samples record is zstd-compressed");
    let (got, st) = read(&d, &opts(i64::MIN)).unwrap();
    assert_eq!(got.len(), 3000);
    assert_eq!(got[0], s("a", 1000, 0.0));
    assert_eq!(st.histograms, 2);
}

#[path = "head_hist_tests.rs"]
mod hist;
