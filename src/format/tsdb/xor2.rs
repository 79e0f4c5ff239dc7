//! Decoder for XOR2 float chunks (encoding 4, Prometheus 3.11+ `tsdb/chunkenc/xor2.go`): joint
//! timestamp/value control bits and optional start timestamps, which are read past, not kept.

use super::bstream::{no_header, BitReader, Fault};
use super::xor::STALE_NAN_BITS;
use super::Error;

type Result<T> = std::result::Result<T, Fault>;

/// Decodes one XOR2 chunk, calling `f(timestamp_ms, value_bits)` per sample in order. Fails at
/// the byte of the chunk where the sample that broke starts.
pub fn decode(chunk: &[u8], mut f: impl FnMut(i64, u64)) -> std::result::Result<usize, Error> {
    if chunk.len() < 3 {
        return Err(no_header("XOR2", chunk.len()));
    }
    let total = u16::from_be_bytes([chunk[0], chunk[1]]) as usize;
    let st_known = chunk[2] & 0x80 != 0;
    let st_change_on = (chunk[2] & 0x7f) as usize;
    let mut r = BitReader::new(&chunk[3..]);
    let mut s = State::default();
    for i in 0..total {
        let at = 3 + r.consumed_bits() / 8;
        let res = match i {
            0 => s.first(&mut r, st_known),
            1 => s.second(&mut r, st_change_on == 1),
            _ => s.next(&mut r, st_change_on > 0 && i >= st_change_on),
        };
        if let Err(e) = res {
            return Err(e.at("XOR2", i, total, at));
        }
        f(s.t, s.v);
    }
    Ok(total)
}

#[derive(Default)]
struct State {
    t: i64,
    v: u64,
    /// Last value that was not a staleness marker: what the next XOR refers to.
    baseline: u64,
    t_delta: u64,
    leading: u32,
    trailing: u32,
}

impl State {
    fn first(&mut self, r: &mut BitReader, st_known: bool) -> Result<()> {
        self.t = r.varint()?;
        self.v = r.bits(64)?;
        if self.v != STALE_NAN_BITS {
            self.baseline = self.v;
        }
        if st_known {
            r.varint()?;
        }
        Ok(())
    }

    fn second(&mut self, r: &mut BitReader, st: bool) -> Result<()> {
        self.t_delta = r.uvarint()?;
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.value(r)?;
        if st {
            varbit_int(r)?;
        }
        Ok(())
    }

    fn next(&mut self, r: &mut BitReader, st: bool) -> Result<()> {
        let mut ones = 0;
        while ones < 5 && r.bit()? {
            ones += 1;
        }
        match ones {
            0 => {
                self.advance(0);
                self.v = self.baseline;
            }
            1 => {
                self.advance(0);
                if r.bit()? {
                    self.new_window(r)?;
                } else {
                    self.reuse_window(r)?;
                }
            }
            2..=4 => {
                let w = [13u32, 20, 64][ones - 2];
                let raw = r.bits(w)?;
                let dod = if w < 64 && raw >= 1 << (w - 1) {
                    raw as i64 - (1i64 << w)
                } else {
                    raw as i64
                };
                self.advance(dod);
                self.value(r)?;
            }
            _ => {
                self.advance(0);
                self.v = STALE_NAN_BITS;
            }
        }
        if st {
            varbit_int(r)?;
        }
        Ok(())
    }

    fn advance(&mut self, dod: i64) {
        self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
        self.t = self.t.wrapping_add(self.t_delta as i64);
    }

    /// `0` unchanged, `10` reuse the window, `110` new window, `111` staleness marker.
    fn value(&mut self, r: &mut BitReader) -> Result<()> {
        if !r.bit()? {
            self.v = self.baseline;
        } else if !r.bit()? {
            self.reuse_window(r)?;
        } else if !r.bit()? {
            self.new_window(r)?;
        } else {
            self.v = STALE_NAN_BITS;
        }
        Ok(())
    }

    fn reuse_window(&mut self, r: &mut BitReader) -> Result<()> {
        let sig = 64 - self.leading - self.trailing;
        let bits = if sig == 0 { 0 } else { r.bits(sig)? };
        self.set(bits);
        Ok(())
    }

    fn new_window(&mut self, r: &mut BitReader) -> Result<()> {
        self.leading = r.bits(5)? as u32;
        let mut sig = r.bits(6)? as u32;
        if sig == 0 {
            sig = 64;
        }
        if self.leading + sig > 64 {
            return Err(Fault::Window {
                leading: self.leading,
                sig,
            });
        }
        self.trailing = 64 - self.leading - sig;
        let bits = r.bits(sig)?;
        self.set(bits);
        Ok(())
    }

    fn set(&mut self, bits: u64) {
        self.v = self.baseline ^ (bits << self.trailing);
        self.baseline = self.v;
    }
}

/// Prometheus's `readVarbitInt`: a unary size class of up to eight bits, then the value.
fn varbit_int(r: &mut BitReader) -> Result<i64> {
    let mut ones = 0;
    while ones < 8 && r.bit()? {
        ones += 1;
    }
    let sz = match ones {
        0 => return Ok(0),
        8 => return Ok(r.bits(64)? as i64),
        n => [3u32, 6, 9, 12, 18, 25, 56][n - 1],
    };
    let raw = r.bits(sz)?;
    Ok(if raw > 1 << (sz - 1) {
        raw as i64 - (1i64 << sz)
    } else {
        raw as i64
    })
}

#[cfg(test)]
#[path = "xor2_tests.rs"]
mod tests;
