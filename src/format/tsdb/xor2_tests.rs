//! XOR2 chunks written by an encoder that follows Prometheus's `xor2Appender` (its slow path:
//! the fast paths write the same bits), start timestamps included.

use super::*;
use crate::format::tsdb::bstream::BitWriter;
use proptest::prelude::*;

struct Enc2 {
    w: BitWriter,
    n: u16,
    t: i64,
    v: u64,
    st: i64,
    st_diff: i64,
    t_delta: u64,
    leading: u32,
    trailing: u32,
    header: u8,
    change_on: u16,
}

impl Enc2 {
    fn new() -> Enc2 {
        Enc2 {
            w: BitWriter::default(),
            n: 0,
            t: 0,
            v: 0,
            st: 0,
            st_diff: 0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
            header: 0,
            change_on: 0,
        }
    }

    fn varbit(&mut self, x: i64) {
        let classes: [(u64, u32, i64); 7] = [
            (0b10, 3, 3),
            (0b110, 6, 31),
            (0b1110, 9, 255),
            (0b11110, 12, 2047),
            (0b111110, 18, 131071),
            (0b1111110, 25, (1 << 24) - 1),
            (0b11111110, 56, (1 << 55) - 1),
        ];
        if x == 0 {
            self.w.put(0, 1);
            return;
        }
        for (prefix, sz, lo) in classes {
            if -lo <= x && x <= lo + 1 {
                self.w.put(prefix, 64 - prefix.leading_zeros());
                self.w.put(x as u64 & ((1 << sz) - 1), sz);
                return;
            }
        }
        self.w.put(0xff, 8);
        self.w.put(x as u64, 64);
    }

    fn append(&mut self, st: i64, t: i64, v: u64) {
        let mut td = 0;
        let mut st_diff = 0;
        match self.n {
            0 => {
                self.w.put_varint(t);
                self.w.put(v, 64);
                if st != 0 {
                    self.w.put_varint(t - st);
                    self.header |= 0x80;
                }
            }
            1 => {
                td = (t - self.t) as u64;
                self.w.put_uvarint(td);
                self.vdelta(v);
                if st != self.st {
                    st_diff = self.t - st;
                    self.change_on = 1;
                    self.header |= 1;
                    self.varbit(st_diff);
                }
            }
            _ => {
                td = (t - self.t) as u64;
                let dod = td.wrapping_sub(self.t_delta) as i64;
                self.joint(dod, v);
                if self.change_on > 0 {
                    st_diff = self.t - st;
                    self.varbit(st_diff - self.st_diff);
                } else if st != self.st || self.n == 127 {
                    st_diff = self.t - st;
                    self.change_on = self.n;
                    self.header |= self.n as u8;
                    self.varbit(st_diff);
                }
            }
        }
        self.st = st;
        self.st_diff = st_diff;
        self.t = t;
        if v != STALE_NAN_BITS {
            self.v = v;
        }
        self.t_delta = td;
        self.n += 1;
    }

    fn joint(&mut self, dod: i64, v: u64) {
        if dod == 0 {
            if v == STALE_NAN_BITS {
                self.w.put(0b11111, 5);
            } else if v == self.v {
                self.w.put(0, 1);
            } else {
                self.w.put(0b10, 2);
                self.window(v ^ self.v, (0, 1), (1, 1));
            }
            return;
        }
        if (-(1 << 12)..(1 << 12)).contains(&dod) {
            self.w.put(0b110, 3);
            self.w.put(dod as u64 & 0x1fff, 13);
        } else if (-(1 << 19)..(1 << 19)).contains(&dod) {
            self.w.put(0b1110, 4);
            self.w.put(dod as u64 & 0xfffff, 20);
        } else {
            self.w.put(0b11110, 5);
            self.w.put(dod as u64, 64);
        }
        if v == self.v {
            self.w.put(0, 1);
        } else {
            self.vdelta(v);
        }
    }

    fn vdelta(&mut self, v: u64) {
        if v == STALE_NAN_BITS {
            self.w.put(0b111, 3);
        } else if v == self.v {
            self.w.put(0, 1);
        } else {
            self.window(v ^ self.v, (0b10, 2), (0b110, 3));
        }
    }

    /// Writes a non-zero XOR in the previous window (`reuse` prefix) or a new one.
    fn window(&mut self, x: u64, reuse: (u64, u32), new: (u64, u32)) {
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        if self.leading != 0xff && lead >= self.leading && trail >= self.trailing {
            self.w.put(reuse.0, reuse.1);
            self.w
                .put(x >> self.trailing, 64 - self.leading - self.trailing);
            return;
        }
        (self.leading, self.trailing) = (lead, trail);
        self.w.put(new.0, new.1);
        self.w.put(lead as u64, 5);
        let sig = 64 - lead - trail;
        self.w.put((sig & 63) as u64, 6);
        self.w.put(x >> trail, sig);
    }

    fn finish(self) -> Vec<u8> {
        let mut out = self.n.to_be_bytes().to_vec();
        out.push(self.header);
        out.extend_from_slice(&self.w.bytes);
        out
    }
}

fn check(samples: &[(i64, i64, u64)]) {
    let mut e = Enc2::new();
    for &(st, t, v) in samples {
        e.append(st, t, v);
    }
    let chunk = e.finish();
    let mut got = Vec::new();
    assert_eq!(
        decode(&chunk, |t, v| got.push((t, v))).unwrap(),
        samples.len()
    );
    let want: Vec<_> = samples.iter().map(|&(_, t, v)| (t, v)).collect();
    assert_eq!(got, want);
    if !samples.is_empty() {
        // The last byte always holds bits of the last sample.
        assert!(decode(&chunk[..chunk.len() - 1], |_, _| {}).is_err());
    }
}

#[test]
fn every_control_case() {
    let one = 1.0f64.to_bits();
    let two = 2.5f64.to_bits();
    check(&[
        (0, 1000, one),
        (0, 2000, two),                  // second: new window
        (0, 3000, two),                  // dod 0, unchanged
        (0, 4000, one),                  // dod 0, changed
        (0, 5000, STALE_NAN_BITS),       // dod 0, stale
        (0, 6000, one),                  // dod 0, back to the baseline
        (0, 7100, two),                  // 13-bit dod
        (0, 7100 + 1100 + 300_000, one), // 20-bit dod
        (0, 1 << 40, STALE_NAN_BITS),    // 64-bit dod, stale
        (0, (1 << 40) + 7, f64::NAN.to_bits()),
    ]);
}

#[test]
fn start_timestamps_are_read_past() {
    let s: Vec<_> = (0..200)
        .map(|i| {
            (
                if i < 50 { 500 } else { 900 + i * 3 },
                1000 + i * 15_000,
                (i as f64).to_bits(),
            )
        })
        .collect();
    check(&s);
    let s: Vec<_> = (0..5).map(|i| (7 + i, 100 + i, 3)).collect();
    check(&s);
}

#[test]
fn truncated_and_empty() {
    assert!(decode(&[0, 1], |_, _| {}).is_err());
    assert_eq!(decode(&[0, 0, 0], |_, _| {}).unwrap(), 0);
    assert!(decode(&[0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0], |_, _| {}).is_err());
}

proptest! {
    #[test]
    fn random_series_roundtrip(
        start in -1_000_000_000_000i64..4_000_000_000_000i64,
        steps in proptest::collection::vec((0i64..3_000_000, any::<u64>(), 0u8..6, -5i64..5), 0..300),
    ) {
        let mut t = start;
        let mut prev = 0u64;
        let mut st = 0i64;
        let mut samples = Vec::new();
        for (dt, bits, kind, dst) in steps {
            t += match kind { 4 => 15_000, _ => dt };
            st = if dst == 0 { st } else { st + dst * 1000 };
            let v = match kind {
                0 | 4 => prev,
                1 => (f64::from_bits(prev) + 1.0).to_bits(),
                2 => bits,
                _ => STALE_NAN_BITS,
            };
            if v != STALE_NAN_BITS {
                prev = v;
            }
            samples.push((st, t, v));
        }
        check(&samples);
    }
}
