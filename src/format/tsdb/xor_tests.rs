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
