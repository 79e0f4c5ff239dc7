use super::*;
use proptest::prelude::*;

fn rec(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

fn write(recs: &[Vec<u8>], seg_size: usize, c: Compression) -> Vec<Vec<u8>> {
    let mut w = Writer::new(seg_size, c);
    for r in recs {
        w.log(r);
    }
    w.into_segments()
}

fn slices(segs: &[Vec<u8>]) -> Vec<&[u8]> {
    segs.iter().map(|s| &s[..]).collect()
}

#[test]
fn small_records_share_a_page() {
    let recs = vec![rec(10, 1), rec(0, 0), rec(100, 2)];
    let segs = write(&recs, PAGE_SIZE * 4, Compression::None);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].len(), 3 * HEADER_SIZE + 110);
    assert_eq!(segs[0][0], 1, "full fragment");
    assert_eq!(read_all(&slices(&segs), false).unwrap(), recs);
}

#[test]
fn record_spanning_pages_is_reassembled() {
    let recs = vec![rec(5, 1), rec(3 * PAGE_SIZE, 7), rec(20, 3)];
    let segs = write(&recs, PAGE_SIZE * 8, Compression::None);
    let s = &segs[0];
    // first, middle, middle, last fragments, one per page.
    assert_eq!(s[HEADER_SIZE + 5], 2);
    assert_eq!(s[PAGE_SIZE], 3);
    assert_eq!(s[2 * PAGE_SIZE], 3);
    assert_eq!(s[3 * PAGE_SIZE], 4);
    assert_eq!(read_all(&slices(&segs), false).unwrap(), recs);
}

#[test]
fn page_padding_when_less_than_a_header_is_left() {
    // Fill a page up to 3 bytes short of its end: the next record goes to the next page.
    let first = rec(PAGE_SIZE - HEADER_SIZE - 3, 1);
    let recs = vec![first, rec(10, 2)];
    let segs = write(&recs, PAGE_SIZE * 2, Compression::None);
    assert!(segs[0][PAGE_SIZE - 3..PAGE_SIZE].iter().all(|&b| b == 0));
    assert_eq!(segs[0][PAGE_SIZE], 1);
    assert_eq!(read_all(&slices(&segs), false).unwrap(), recs);
}

#[test]
fn records_that_do_not_fit_start_a_new_segment() {
    let recs: Vec<Vec<u8>> = (0..6).map(|i| rec(20_000, i)).collect();
    let segs = write(&recs, PAGE_SIZE * 2, Compression::None);
    assert_eq!(
        segs.len(),
        2,
        "three records of 20000 bytes fill a two-page segment"
    );
    for s in &segs[..segs.len() - 1] {
        assert_eq!(s.len() % PAGE_SIZE, 0, "closed segments end on a page");
    }
    assert_eq!(read_all(&slices(&segs), false).unwrap(), recs);
}

#[test]
fn record_spanning_segments_is_reassembled() {
    // Prometheus never writes one, but its reader (checkpoints) reads segments as one stream.
    let recs = vec![rec(2 * PAGE_SIZE + 100, 9), rec(7, 1)];
    let segs = write(&recs, PAGE_SIZE * 8, Compression::None);
    let (a, b) = segs[0].split_at(PAGE_SIZE);
    assert_eq!(read_all(&[a, b], false).unwrap(), recs);
}

#[test]
fn snappy_and_zstd_records() {
    for c in [Compression::Snappy, Compression::Zstd] {
        let recs = vec![
            vec![7u8; 50_000],
            rec(3, 1),
            vec![0u8; 10],
            b"abc".repeat(999),
        ];
        let segs = write(&recs, PAGE_SIZE * 4, c);
        let flag = if c == Compression::Snappy {
            SNAPPY
        } else {
            ZSTD
        };
        assert_eq!(segs[0][0], 1 | flag, "{c:?}");
        assert_eq!(read_all(&slices(&segs), false).unwrap(), recs, "{c:?}");
    }
}

#[test]
fn torn_tail_of_the_newest_segment_stops_quietly() {
    let recs = vec![rec(100, 1), rec(PAGE_SIZE + 10, 2)];
    let segs = write(&recs, PAGE_SIZE * 4, Compression::None);
    let whole = &segs[0];
    // Cut inside the second record's first fragment, then after its first page.
    for cut in [HEADER_SIZE + 100 + 3, HEADER_SIZE + 100 + 50, PAGE_SIZE] {
        let s = &whole[..cut];
        let mut r = Records::new(vec![s], true);
        assert_eq!(r.next().unwrap().unwrap().data, &recs[0][..]);
        assert!(r.next().is_none(), "cut {cut}");
        assert_eq!(r.torn_tail(), Some((0, HEADER_SIZE + 100)));
        // Not the newest segment: the same cut is damage.
        let e = read_all(&[s, &segs[0][..0]], true).unwrap_err();
        assert_eq!(e.segment, 0);
        assert_eq!(e.offset, Some((HEADER_SIZE + 100) as u64), "{e}");
        // A checkpoint is never being written: damage too.
        assert!(read_all(&[s], false).is_err());
    }
}

#[test]
fn half_written_fragment_at_the_tail_is_a_tear_but_not_in_the_middle() {
    let recs = vec![rec(100, 1), rec(100, 2)];
    let mut seg = write(&recs, PAGE_SIZE * 4, Compression::None).remove(0);
    let second = HEADER_SIZE + 100;
    // The last bytes of the last fragment never reached the disk (zeros).
    let n = seg.len();
    seg[n - 10..].fill(0);
    assert_eq!(read_all(&[&seg], true).unwrap(), vec![recs[0].clone()]);
    // The same damage in the first fragment, with data after it, is corruption.
    let mut seg = write(&recs, PAGE_SIZE * 4, Compression::None).remove(0);
    seg[50] ^= 0xff;
    let e = read_all(&[&seg], true).unwrap_err();
    assert_eq!((e.segment, e.offset), (0, Some(0)));
    assert!(e.what.contains("CRC32C"), "{e}");
    let _ = second;
}

#[test]
fn damage_is_reported_with_segment_and_offset_and_reading_resumes() {
    let recs: Vec<Vec<u8>> = (0..40).map(|i| rec(3000, i)).collect();
    let mut segs = write(&recs, PAGE_SIZE * 2, Compression::None);
    assert!(segs.len() >= 2);
    // Damage one fragment of the first page of segment 1.
    segs[1][HEADER_SIZE + 10] ^= 1;
    let mut r = Records::new(slices(&segs), true);
    let (mut good, mut errs) = (Vec::new(), Vec::new());
    while let Some(x) = r.next() {
        match x {
            Ok(rec) => good.push(rec.data.to_vec()),
            Err(e) => errs.push(e),
        }
    }
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].segment, errs[0].offset), (1, Some(0)));
    // Everything but the page that held the damage came through.
    assert!(good.len() >= recs.len() - 11 && good.len() < recs.len());
    assert_eq!(good.last(), recs.last());
}

#[test]
fn bad_fragment_sequences_and_types_are_damage() {
    let mk = |typ: u8, data: &[u8]| {
        let mut v = vec![typ];
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
        v.extend_from_slice(data);
        v
    };
    for (bytes, want) in [
        (mk(3, b"x"), "unexpected Middle"),
        (mk(4, b"x"), "unexpected Last"),
        ([mk(2, b"x"), mk(1, b"y")].concat(), "unexpected Full"),
        (mk(5, b"x"), "unknown fragment type 5"),
        (
            [vec![0u8, 0, 1], vec![0; 10]].concat(),
            "non-zero byte in page padding",
        ),
    ] {
        let e = read_all(&[&bytes], false).unwrap_err();
        assert!(e.what.contains(want), "{e} / {want}");
    }
    let mut big = mk(1, b"x");
    big[1] = 0xff;
    big[2] = 0xff;
    assert!(read_all(&[&big], false)
        .unwrap_err()
        .what
        .contains("exceeds a page"));
}

#[test]
fn no_segments_no_records() {
    assert!(read_all(&[], true).unwrap().is_empty());
    assert!(read_all(&[&[][..]], true).unwrap().is_empty());
}

#[test]
fn padding_to_the_end_of_a_short_segment_is_fine() {
    let segs = write(&[rec(10, 1)], PAGE_SIZE * 2, Compression::None);
    let mut s = segs[0].clone();
    s.resize(s.len() + 100, 0);
    assert_eq!(read_all(&[&s], false).unwrap(), vec![rec(10, 1)]);
}

#[test]
fn fuzz_wal_on_written_logs() {
    let segs = write(
        &[rec(100, 1), rec(PAGE_SIZE * 2, 2)],
        PAGE_SIZE * 4,
        Compression::Snappy,
    );
    fuzz_wal(&segs[0]);
    let mut s = segs[0].clone();
    for i in (0..s.len()).step_by(997) {
        s[i] ^= 0x5a;
    }
    fuzz_wal(&s);
}

fn records() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let one = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec(0u8..4, 0..(3 * PAGE_SIZE)),
        (1usize..(2 * PAGE_SIZE), any::<u8>()).prop_map(|(n, b)| vec![b; n]),
    ];
    proptest::collection::vec(one, 0..12)
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Snappy),
        Just(Compression::Zstd)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn round_trip(recs in records(), c in compression(), pages in 1usize..5, split in 0usize..4) {
        let segs = write(&recs, PAGE_SIZE * pages, c);
        prop_assert_eq!(read_all(&slices(&segs), true).unwrap(), recs.clone());
        // The same stream cut at any page boundary into two segments reads the same.
        let all = segs.concat();
        let cut = (split * PAGE_SIZE).min(all.len());
        let (a, b) = all.split_at(cut);
        prop_assert_eq!(read_all(&[a, b], false).unwrap(), recs);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..5000)) {
        fuzz_wal(&data);
    }

    #[test]
    fn mutated_logs_never_panic(recs in records(), c in compression(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut s = write(&recs, PAGE_SIZE * 4, c).concat();
        if !s.is_empty() {
            for (i, x) in flips {
                let n = s.len();
                s[i % n] ^= x;
            }
        }
        fuzz_wal(&s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The type hint is the record's first byte whenever it is given.
    #[test]
    fn type_hint_is_the_first_byte(recs in records(), c in compression()) {
        let segs = write(&recs, PAGE_SIZE * 4, c);
        let mut r = Records::new(slices(&segs), false);
        let mut i = 0;
        while let Some(raw) = r.next_raw() {
            let raw = raw.unwrap();
            let hint = raw.type_hint();
            let data = raw.data().unwrap();
            prop_assert_eq!(data, &recs[i][..]);
            if c != Compression::Zstd && !data.is_empty() {
                prop_assert_eq!(hint, Some(data[0]));
            }
            i += 1;
        }
        prop_assert_eq!(i, recs.len());
    }
}

#[test]
fn type_hint_of_snappy_long_literals() {
    for n in [1usize, 59, 60, 61, 255, 256, 70_000] {
        let mut rec: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
        rec[0] = 42;
        let c = snap::raw::Encoder::new().compress_vec(&rec).unwrap();
        assert_eq!(snappy_first_byte(&c), Some(42), "{n}");
    }
    assert_eq!(snappy_first_byte(&[0]), None, "empty");
    assert_eq!(snappy_first_byte(&[0x80]), None, "cut varint");
}

/// Everything a reader yields (records with their place, damage), and where it found a tear.
type Reading = (
    Vec<Result<(Vec<u8>, usize, usize), Error>>,
    Option<(usize, usize)>,
);

fn reading(mut r: Records<'_>) -> Reading {
    let mut out = Vec::new();
    while let Some(x) = r.next() {
        out.push(x.map(|rec| (rec.data.to_vec(), rec.segment, rec.offset)));
        assert!(out.len() < 10_000, "reader does not advance");
    }
    (out, r.torn_tail())
}

/// A log cut into segments at page boundaries, with bytes flipped (damage, tears).
fn damaged(recs: &[Vec<u8>], c: Compression, flips: &[(usize, u8)], cut: usize) -> Vec<Vec<u8>> {
    let mut all = write(recs, PAGE_SIZE * 4, c).concat();
    let n = all.len();
    for &(i, x) in flips.iter().filter(|_| n > 0) {
        all[i % n] ^= x;
    }
    let cut = (cut * PAGE_SIZE).min(all.len());
    vec![all[..cut].to_vec(), all[cut..].to_vec()]
}

#[test]
fn page_checks_mark_sound_pages_and_leave_damaged_ones() {
    let recs: Vec<_> = (0..40).map(|i| rec(3000 + i * 500, i as u8)).collect();
    let mut segs = write(&recs, PAGE_SIZE * 8, Compression::None);
    let sl = slices(&segs);
    let checks = PageChecks::new(&sl);
    checks.check_backwards(&sl);
    assert!(checks
        .pages
        .iter()
        .flatten()
        .all(|p| p.load(Ordering::Relaxed) == SOUND));
    segs[0][PAGE_SIZE + 100] ^= 1;
    let sl = slices(&segs);
    let checks = PageChecks::new(&sl);
    checks.check_backwards(&sl);
    assert_eq!(checks.pages[0][1].load(Ordering::Relaxed), UNKNOWN);
    assert_eq!(checks.pages[0][0].load(Ordering::Relaxed), SOUND);
    // The reader checks the damaged page itself: the same damage, at the same byte.
    let plain = reading(Records::new(sl.clone(), true));
    let trusting = reading(Records::new(sl.clone(), true).with_checks(&checks));
    assert!(plain.0.iter().any(|r| r.is_err()));
    assert_eq!(plain, trusting);
}

#[test]
fn page_checks_stop_where_the_reader_got_to() {
    let recs: Vec<_> = (0..30).map(|i| rec(5000, i as u8)).collect();
    let segs = write(&recs, PAGE_SIZE * 4, Compression::None);
    let sl = slices(&segs);
    let checks = PageChecks::new(&sl);
    let mut r = Records::new(sl.clone(), true).with_checks(&checks);
    for _ in 0..10 {
        r.next().unwrap().unwrap();
    }
    checks.check_backwards(&sl);
    let state = |s: usize, p: usize| checks.pages[s][p].load(Ordering::Relaxed);
    assert_eq!(state(0, 0), CLAIMED);
    let last = sl.len() - 1;
    assert_eq!(state(last, checks.pages[last].len() - 1), SOUND);
    // Pages between the reader and the checker's stop are all claimed or sound.
    assert!(checks
        .pages
        .iter()
        .flatten()
        .all(|p| p.load(Ordering::Relaxed) != UNKNOWN));
    let stopped = PageChecks::new(&sl);
    stopped.stop();
    stopped.check_backwards(&sl);
    assert!(stopped
        .pages
        .iter()
        .flatten()
        .all(|p| p.load(Ordering::Relaxed) == UNKNOWN));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Trusting another thread's CRC checks changes nothing a reader yields, on damaged logs
    /// and torn tails too, whether the checks ran before the reader or beside it.
    #[test]
    fn page_checks_change_nothing(
        recs in records(),
        c in compression(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in 0usize..6,
        live in any::<bool>(),
    ) {
        let segs = damaged(&recs, c, &flips, cut);
        let sl = slices(&segs);
        let plain = reading(Records::new(sl.clone(), live));
        let before = PageChecks::new(&sl);
        before.check_backwards(&sl);
        prop_assert_eq!(&reading(Records::new(sl.clone(), live).with_checks(&before)), &plain);
        let beside = PageChecks::new(&sl);
        let got = std::thread::scope(|s| {
            s.spawn(|| beside.check_backwards(&sl));
            reading(Records::new(sl.clone(), live).with_checks(&beside))
        });
        prop_assert_eq!(&got, &plain);
    }
}
