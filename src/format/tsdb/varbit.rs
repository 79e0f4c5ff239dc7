//! Prometheus's varbit integers (`tsdb/chunkenc/varbit.go`), the histogram chunks' numbers: a
//! unary size class of up to eight bits (0, 10, 110, …, 11111110, 11111111), then 0, 3, 6, 9,
//! 12, 18, 25, 56 or 64 bits of the value.

use super::bstream::{BitReader, BitWriter, Result};

/// Value bits of each size class after the first (the prefix's count of ones).
const SIZES: [u32; 8] = [3, 6, 9, 12, 18, 25, 56, 64];

/// The size class's value bits, from its unary prefix.
#[inline]
fn size(r: &mut BitReader) -> Result<u32> {
    Ok(match r.ones(8)? {
        0 => 0,
        n => SIZES[n as usize - 1],
    })
}

/// `readVarbitInt`: values above `2^(sz-1)` are negative in `sz`-bit two's complement.
pub(super) fn read_int(r: &mut BitReader) -> Result<i64> {
    let sz = size(r)?;
    Ok(match sz {
        0 => 0,
        64 => r.bits(64)? as i64,
        _ => {
            let raw = r.bits(sz)?;
            if raw > 1 << (sz - 1) {
                raw.wrapping_sub(1 << sz) as i64
            } else {
                raw as i64
            }
        }
    })
}

/// `readVarbitUint`.
pub(super) fn read_uint(r: &mut BitReader) -> Result<u64> {
    match size(r)? {
        0 => Ok(0),
        sz => r.bits(sz),
    }
}

/// Whether `x` fits the `n`-bit class: Prometheus's `bitRange`, -(2^(n-1) - 1) ..= 2^(n-1).
fn fits(x: i64, n: u32) -> bool {
    -((1i64 << (n - 1)) - 1) <= x && x <= 1i64 << (n - 1)
}

/// `putVarbitInt`.
pub(super) fn put_int(w: &mut BitWriter, v: i64) {
    if v == 0 {
        w.put(0, 1);
        return;
    }
    for (i, &sz) in SIZES.iter().enumerate() {
        if sz == 64 || fits(v, sz) {
            // i + 1 ones, then a zero unless the prefix is the full eight ones.
            let ones = i as u32 + 1;
            let prefix = if ones == 8 {
                0xff
            } else {
                ((1u64 << ones) - 1) << 1
            };
            w.put(prefix, ones + u32::from(ones < 8));
            w.put(v as u64, sz);
            return;
        }
    }
}

/// `putVarbitUint`.
pub(super) fn put_uint(w: &mut BitWriter, v: u64) {
    if v == 0 {
        w.put(0, 1);
        return;
    }
    for (i, &sz) in SIZES.iter().enumerate() {
        if sz == 64 || v >> sz == 0 {
            let ones = i as u32 + 1;
            let prefix = if ones == 8 {
                0xff
            } else {
                ((1u64 << ones) - 1) << 1
            };
            w.put(prefix, ones + u32::from(ones < 8));
            w.put(v, sz);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bits as Prometheus's `putVarbitInt` writes them, spelled out.
    #[test]
    fn size_classes_are_prometheus_s() {
        let bits = |v: i64| {
            let mut w = BitWriter::default();
            put_int(&mut w, v);
            w.put(0, 7);
            w.bytes
                .iter()
                .map(|b| format!("{b:08b}"))
                .collect::<String>()
        };
        assert!(bits(0).starts_with('0'));
        assert!(bits(-3).starts_with("10101"), "{}", bits(-3));
        assert!(bits(4).starts_with("10100"));
        assert!(bits(5).starts_with("110000101"));
        assert!(bits(-31).starts_with("110100001"));
        assert!(bits(i64::MIN).starts_with("11111111"));
        assert_eq!(bits(i64::MIN).len(), 80);
        assert_eq!(bits(1 << 55).len(), 72);
    }

    proptest! {
        #[test]
        fn varbits_round_trip(
            v in prop_oneof![any::<i64>(), -70_000i64..70_000, -40i64..40],
            u in prop_oneof![any::<u64>(), 0u64..70_000],
        ) {
            let mut w = BitWriter::default();
            put_int(&mut w, v);
            put_uint(&mut w, u);
            put_int(&mut w, -v.wrapping_add(1));
            let mut r = BitReader::new(&w.bytes);
            prop_assert_eq!(read_int(&mut r).unwrap(), v);
            prop_assert_eq!(read_uint(&mut r).unwrap(), u);
            prop_assert_eq!(read_int(&mut r).unwrap(), -v.wrapping_add(1));
        }
    }
}
