//! Start timestamps in the 3.14 chunk encodings 5 and 6 (`tsdb/chunkenc/st.go`): after each
//! sample, nothing until the start time first changes, then varbit deltas; the chunk's third
//! header byte says whether the first sample has one and at which sample the changes begin.

use super::bstream::{BitReader, BitWriter, Result};
use super::varbit;

/// The last sample a change may first be noted at (7 bits of the header byte).
const MAX_FIRST_CHANGE: u16 = 0x7f;

/// Start-time state of a chunk being read or written (Prometheus's `stDecoder`/`stEncoder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct StartTimes {
    st: i64,
    st_diff: i64,
    first_change_on: u8,
    first_known: bool,
}

impl StartTimes {
    /// A reader's state from the chunk's start-time header byte.
    pub fn from_header(b: u8) -> StartTimes {
        StartTimes {
            first_known: b & 0x80 != 0,
            first_change_on: b & 0x7f,
            ..StartTimes::default()
        }
    }

    /// The start time of the sample read or written last (0: none).
    pub fn st(&self) -> i64 {
        self.st
    }

    /// Reads what follows sample `num` (from 1), whose time is `t`, after one at `prev_t`.
    pub fn decode(&mut self, r: &mut BitReader, num: u16, t: i64, prev_t: i64) -> Result<()> {
        match num {
            1 => {
                if self.first_known {
                    self.st_diff = r.varint()?;
                    self.st = t.wrapping_sub(self.st_diff);
                }
            }
            2 => {
                if self.first_change_on == 1 {
                    self.st_diff = varbit::read_int(r)?;
                    self.st = prev_t.wrapping_sub(self.st_diff);
                }
            }
            _ => {
                let on = self.first_change_on as u16;
                if on > 0 && num > on {
                    let d = varbit::read_int(r)?;
                    self.st_diff = if num - 1 == on {
                        d
                    } else {
                        self.st_diff.wrapping_add(d)
                    };
                    self.st = prev_t.wrapping_sub(self.st_diff);
                }
            }
        }
        Ok(())
    }

    /// Writes what follows sample `num` (from 1) with start time `st`, updating the chunk's
    /// start-time header byte.
    pub fn encode(
        &mut self,
        w: &mut BitWriter,
        header: &mut u8,
        num: u16,
        t: i64,
        prev_t: i64,
        st: i64,
    ) {
        match num {
            1 => {
                if st != 0 {
                    // Go's PutVarint, byte by byte into the bit stream.
                    let mut b = Vec::new();
                    super::put_varint(&mut b, t.wrapping_sub(st));
                    for x in b {
                        w.put(x as u64, 8);
                    }
                    self.first_known = true;
                    *header = 0x80;
                }
            }
            2 => {
                if st != self.st {
                    self.st_diff = prev_t.wrapping_sub(st);
                    self.first_change_on = 1;
                    *header |= 1;
                    varbit::put_int(w, self.st_diff);
                }
            }
            _ => {
                if self.first_change_on == 0 {
                    if st != self.st || num - 1 == MAX_FIRST_CHANGE {
                        self.st_diff = prev_t.wrapping_sub(st);
                        self.first_change_on = (num - 1) as u8;
                        *header |= (num - 1) as u8;
                        varbit::put_int(w, self.st_diff);
                    }
                } else {
                    let diff = prev_t.wrapping_sub(st);
                    varbit::put_int(w, diff.wrapping_sub(self.st_diff));
                    self.st_diff = diff;
                }
            }
        }
        self.st = st;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn start_times_round_trip(
            sts in proptest::collection::vec(prop_oneof![Just(0i64), 0i64..5, any::<i64>()], 1..300),
        ) {
            let (mut enc, mut header, mut w) = (StartTimes::default(), 0u8, BitWriter::default());
            let t = |i: usize| 1000 + 10 * i as i64;
            for (i, &st) in sts.iter().enumerate() {
                enc.encode(&mut w, &mut header, i as u16 + 1, t(i), t(i.max(1) - 1), st);
            }
            let mut dec = StartTimes::from_header(header);
            let mut r = BitReader::new(&w.bytes);
            for (i, &st) in sts.iter().enumerate() {
                dec.decode(&mut r, i as u16 + 1, t(i), t(i.max(1) - 1)).unwrap();
                prop_assert_eq!(dec.st(), st, "sample {}", i);
            }
        }
    }
}
