use super::*;
use proptest::prelude::*;

/// The library encoder, for tests elsewhere that need a chunk.
pub(crate) fn encode(samples: &[(i64, u64)]) -> Vec<u8> {
    super::encode(samples).unwrap()
}

fn roundtrip(samples: &[(i64, u64)]) {
    let chunk = encode(samples);
    let mut got = Vec::new();
    let n = decode(&chunk, |t, v| got.push((t, v))).unwrap();
    assert_eq!(n, samples.len());
    assert_eq!(got, samples);
}

/// The plainest decoder there is, one bit at a time, for the fast one to be checked against: the
/// samples it gives and the error that stops it, word for word, at the byte where the sample
/// that broke starts.
fn reference(chunk: &[u8]) -> (Vec<(i64, u64)>, Option<String>) {
    struct Bits<'a>(&'a [u8], usize);
    impl Bits<'_> {
        fn bits(&mut self, n: u32) -> Result<u64, String> {
            let mut x = 0;
            for _ in 0..n {
                let byte = self
                    .0
                    .get(self.1 / 8)
                    .ok_or("chunk ends in the middle of a sample")?;
                x = x << 1 | u64::from(byte >> (7 - self.1 % 8) & 1);
                self.1 += 1;
            }
            Ok(x)
        }
        fn ones(&mut self, max: u32) -> Result<u32, String> {
            let mut n = 0;
            while n < max && self.bits(1)? == 1 {
                n += 1;
            }
            Ok(n)
        }
        fn uvarint(&mut self) -> Result<u64, String> {
            let mut x = 0u64;
            for i in 0..10 {
                let b = self.bits(8)?;
                if i == 9 && b > 1 {
                    break;
                }
                x |= (b & 0x7f) << (7 * i);
                if b < 0x80 {
                    return Ok(x);
                }
            }
            Err("varint overflows 64 bits".into())
        }
    }
    let mut out = Vec::new();
    if chunk.len() < 2 {
        return (
            out,
            Some(format!(
                "at byte 0: XOR chunk of {} bytes has no header",
                chunk.len()
            )),
        );
    }
    let total = u16::from_be_bytes([chunk[0], chunk[1]]) as usize;
    let mut r = Bits(&chunk[2..], 0);
    let (mut t, mut v, mut delta, mut leading, mut trailing) = (0i64, 0u64, 0i64, 0u32, 0u32);
    for i in 0..total {
        let start = 2 + r.1 / 8;
        let mut sample = || -> Result<(), String> {
            if i == 0 {
                let u = r.uvarint()?;
                t = (u >> 1) as i64 ^ -((u & 1) as i64);
                v = r.bits(64)?;
                return Ok(());
            }
            if i == 1 {
                delta = r.uvarint()? as i64;
            } else {
                let dod = match r.ones(4)? {
                    0 => 0,
                    4 => r.bits(64)? as i64,
                    n => {
                        let sz = [14, 17, 20][n as usize - 1];
                        let raw = r.bits(sz)? as i64;
                        if raw > 1 << (sz - 1) {
                            raw - (1 << sz)
                        } else {
                            raw
                        }
                    }
                };
                delta = delta.wrapping_add(dod);
            }
            t = t.wrapping_add(delta);
            match r.ones(2)? {
                0 => return Ok(()),
                1 => {}
                _ => {
                    leading = r.bits(5)? as u32;
                    let sig = match r.bits(6)? as u32 {
                        0 => 64,
                        s => s,
                    };
                    if leading + sig > 64 {
                        return Err(format!(
                            "{leading} leading zeros and {sig} significant bits exceed 64"
                        ));
                    }
                    trailing = 64 - leading - sig;
                }
            }
            v ^= r.bits(64 - leading - trailing)? << trailing;
            Ok(())
        };
        if let Err(e) = sample() {
            return (
                out,
                Some(format!(
                    "at byte {start}: corrupt XOR chunk at sample {} of {total}: {e}",
                    i + 1
                )),
            );
        }
        out.push((t, v));
    }
    (out, None)
}

/// A decoder build, filling a vector.
type Build = fn(&[u8], &mut Vec<(i64, u64)>) -> Result<usize, Error>;

/// The fast decoder against the reference: the same samples, then the same error if any. Both
/// builds of it: the one `decode` picks on this CPU and the portable one.
fn same_as_reference(chunk: &[u8]) {
    let (want, err) = reference(chunk);
    let builds: [(&str, Build); 2] = [
        ("decode", |c, got| decode(c, |t, v| got.push((t, v)))),
        ("decode_any", |c, got| {
            decode_any(c, |t, v| got.push((t, v)))
        }),
    ];
    for (name, build) in builds {
        let mut got = Vec::new();
        let res = build(chunk, &mut got);
        assert_eq!(got, want, "{name}: samples of {chunk:02x?}");
        match (res, &err) {
            (Ok(n), None) => assert_eq!(n, want.len()),
            (Err(e), Some(w)) => assert_eq!(&e.to_string(), w, "{name}: error for {chunk:02x?}"),
            (r, w) => panic!("{name} says {r:?}, the reference {w:?}, for {chunk:02x?}"),
        }
    }
}

/// A chunk with every timestamp bucket (64-bit ones included) and every value case, long
/// enough that samples are read both straight from it and from its copied tail.
fn every_case_chunk() -> Vec<u8> {
    let mut samples = vec![(1_700_000_000_000i64, 1.0f64.to_bits())];
    let mut td = 15_000i64;
    let dods = [
        0,
        0,
        3,
        -3,
        8192,
        -8191,
        65536,
        -65535,
        524288,
        -524287,
        1 << 40,
        0,
    ];
    for i in 0..200usize {
        td += dods[i % dods.len()];
        let prev = samples.last().unwrap().1;
        let v = match i % 5 {
            0 => prev,
            1 => (f64::from_bits(prev) + 1.0).to_bits(),
            2 => !prev,
            3 => STALE_NAN_BITS,
            _ => (i as f64 * 0.1).to_bits(),
        };
        samples.push((samples.last().unwrap().0 + td, v));
    }
    encode(&samples)
}

#[test]
fn every_cut_of_a_chunk_matches_the_reference() {
    let chunk = every_case_chunk();
    assert!(chunk.len() > 4 * MARGIN);
    for cut in 0..=chunk.len() {
        same_as_reference(&chunk[..cut]);
    }
}

#[test]
fn long_varints_match_the_reference() {
    // Ten-byte varints at the first and second timestamps: the longest Go accepts, and ones that
    // overflow 64 bits by their tenth byte's value or by an eleventh byte.
    let ok = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    let mut over = ok;
    over[9] = 0x02;
    let mut longer = ok;
    longer[9] = 0x81;
    for (first, second) in [
        (&ok, &ok),
        (&over, &ok),
        (&ok, &over),
        (&longer, &ok),
        (&ok, &longer),
    ] {
        let mut chunk = vec![0, 3];
        chunk.extend_from_slice(first);
        chunk.extend_from_slice(&7u64.to_be_bytes());
        chunk.extend_from_slice(second);
        chunk.push(0);
        let (_, err) = reference(&chunk);
        assert_eq!(
            err.is_some(),
            first == &over || first == &longer || second == &over || second == &longer
        );
        for cut in 0..=chunk.len() {
            same_as_reference(&chunk[..cut]);
        }
    }
}

#[test]
fn corrupt_windows_match_the_reference() {
    // A window header of 31 leading zeros and 63 significant bits at several sample positions,
    // followed by 40 more bytes (read in the hot loop) or not (read from the copied tail), and
    // cut in the middle of the header.
    for at in [2usize, 5, 40, 119] {
        for more in [0, 40] {
            let mut e = Encoder::new();
            for i in 0..at as i64 {
                e.append(i * 15_000, (i % 3) as u64).unwrap();
            }
            e.w.put(0, 1);
            e.w.put(0b11, 2);
            e.w.put(31, 5);
            e.w.put(63, 6);
            e.w.put(u64::MAX, 63);
            for _ in 0..more {
                e.w.put(0, 8);
            }
            e.n += 1;
            let chunk = e.finish();
            let err = decode(&chunk, |_, _| {}).unwrap_err().to_string();
            let want = format!(
                "sample {} of {}: 31 leading zeros and 63 significant bits exceed 64",
                at + 1,
                at + 1
            );
            assert!(err.ends_with(&want), "{err}");
            for cut in chunk.len() - 10 - more..=chunk.len() {
                same_as_reference(&chunk[..cut]);
            }
        }
    }
}

#[test]
fn dod_bucket_edges() {
    // Each bucket's extreme values, both signs, and the first value past each bucket.
    let mut samples = vec![(1_000_000, 1.0f64.to_bits()), (1_015_000, 2.0f64.to_bits())];
    let mut td: i64 = 15_000;
    for dod in [
        0,
        8192,
        -8191,
        8193,
        -8192,
        65536,
        -65535,
        65537,
        -65536,
        524288,
        -524287,
        524289,
        -524288,
        1 << 40,
        -(1 << 40),
    ] {
        td += dod;
        let t = samples.last().unwrap().0 + td;
        samples.push((t, (t as f64).to_bits()));
    }
    roundtrip(&samples);
}

#[test]
fn special_values_and_64_significant_bits() {
    let vals = [
        0.0f64.to_bits(),
        STALE_NAN_BITS,
        f64::NAN.to_bits(),
        0x7ff8_0000_0000_0001,
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        (-0.0f64).to_bits(),
        // XOR with the previous value has no leading and no trailing zeros: 64 sig bits.
        0x8000_0000_0000_0001 ^ f64::NEG_INFINITY.to_bits() ^ (-0.0f64).to_bits(),
        u64::MAX,
        1,
        0x8000_0000_0000_0000,
        1.5f64.to_bits(),
        1.5f64.to_bits(),
    ];
    let samples: Vec<_> = vals
        .iter()
        .enumerate()
        .map(|(i, &v)| (-5_000 + i as i64 * 7, v))
        .collect();
    roundtrip(&samples);
    roundtrip(&samples[..1]);
    roundtrip(&samples[..2]);
    roundtrip(&[]);
}

#[test]
fn first_delta_reuses_zero_leading_trailing() {
    // Second sample written with the "reuse" bit while leading = trailing = 0: 64 bits.
    let mut e = Encoder::new();
    e.append(10, 3.0f64.to_bits()).unwrap();
    let x = 7.25f64.to_bits();
    e.w.put_uvarint(5);
    e.w.put(0b10, 2);
    e.w.put(x ^ 3.0f64.to_bits(), 64);
    e.n = 2;
    let chunk = e.finish();
    let mut got = Vec::new();
    decode(&chunk, |t, v| got.push((t, v))).unwrap();
    assert_eq!(got, vec![(10, 3.0f64.to_bits()), (15, x)]);
}

#[test]
fn truncated_and_malformed_chunks_fail() {
    let chunk = encode(&[(1, 1), (2, 2), (3, 5), (100, 77)]);
    for cut in 2..chunk.len() - 1 {
        assert!(decode(&chunk[..cut], |_, _| {}).is_err(), "cut at {cut}");
    }
    assert!(decode(&[0], |_, _| {}).is_err());
    // Header claims one sample with leading 31 + 63 significant bits: impossible.
    let mut e = Encoder::new();
    e.append(0, 0).unwrap();
    e.w.put_uvarint(1);
    e.w.put(0b11, 2);
    e.w.put(31, 5);
    e.w.put(63, 6);
    e.w.put(0, 63);
    e.n = 2;
    assert!(decode(&e.finish(), |_, _| {}).is_err());
}

proptest! {
    #[test]
    fn random_bodies_match_the_reference(
        total in 0u16..300,
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut chunk = total.to_be_bytes().to_vec();
        chunk.extend_from_slice(&body);
        same_as_reference(&chunk);
    }

    #[test]
    fn damaged_series_match_the_reference(
        steps in proptest::collection::vec(
            (prop_oneof![0i64..8, 14_990i64..15_010, 0i64..3_000_000, 0i64..1 << 45],
             any::<u64>(), 0u8..4),
            0..200),
        flips in proptest::collection::vec(any::<usize>(), 0..3),
        cut in any::<usize>(),
    ) {
        let mut t = 1_700_000_000_000i64;
        let mut prev = 0u64;
        let mut samples = Vec::new();
        for (dt, bits, kind) in steps {
            t += dt;
            prev = match kind {
                0 => prev,
                1 => (f64::from_bits(prev) + 1.0).to_bits(),
                2 => bits,
                _ => STALE_NAN_BITS,
            };
            samples.push((t, prev));
        }
        let mut chunk = encode(&samples);
        same_as_reference(&chunk);
        // Flipped bits past the header, then a cut anywhere.
        for f in flips {
            if chunk.len() > 2 {
                let bit = f % ((chunk.len() - 2) * 8);
                chunk[2 + bit / 8] ^= 0x80 >> (bit % 8);
            }
        }
        same_as_reference(&chunk);
        chunk.truncate(cut % (chunk.len() + 1));
        same_as_reference(&chunk);
    }

    #[test]
    fn random_series_roundtrip(
        start in -1_000_000_000_000i64..4_000_000_000_000i64,
        steps in proptest::collection::vec((0i64..3_000_000, any::<u64>(), 0u8..4), 0..300),
    ) {
        let mut t = start;
        let mut prev = 0u64;
        let mut samples = Vec::new();
        for (dt, bits, kind) in steps {
            t += dt;
            // Mix repeated, nearby and arbitrary values so every value branch is taken.
            let v = match kind {
                0 => prev,
                1 => (f64::from_bits(prev) + 1.0).to_bits(),
                2 => bits,
                _ => STALE_NAN_BITS,
            };
            prev = v;
            samples.push((t, v));
        }
        roundtrip(&samples);
    }
}
