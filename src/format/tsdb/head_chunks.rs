//! Head chunk files (`chunks_head/NNNNNN`, `tsdb/chunks/head_chunks.go`): the head's full chunks
//! written out, read here lazily and zero-copy from the file bytes.
//!
//! File: BE32 magic 0x0130BC91, version 1, 3 bytes padding; then chunks: BE64 series ref, BE64
//! mint, BE64 maxt, encoding byte (0x80 = out-of-order), uvarint length, data, CRC32C of all of
//! it. Files are preallocated: an all-zero chunk header marks the end.

use super::{Cursor, Error, ErrorKind};

pub const MAGIC: u32 = 0x0130_BC91;
pub const HEADER_SIZE: usize = 8;
/// The out-of-order flag of the encoding byte (2.39+).
pub const OOO_FLAG: u8 = 0x80;
/// Series ref, mint, maxt, encoding, the longest length varint Prometheus writes, CRC.
const MAX_META: usize = 8 + 16 + 1 + 5 + 4;

/// One chunk as stored; `data` starts with the BE16 sample count, as every encoding does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadChunk<'a> {
    pub series_ref: u64,
    pub mint: i64,
    pub maxt: i64,
    pub encoding: u8,
    pub data: &'a [u8],
    pub offset: usize,
}

impl HeadChunk<'_> {
    pub fn is_ooo(&self) -> bool {
        self.encoding & OOO_FLAG != 0
    }

    /// The encoding without the out-of-order flag: 1 XOR, 2 histogram, 3 float histogram.
    pub fn base_encoding(&self) -> u8 {
        self.encoding & !OOO_FLAG
    }

    /// Every sample of the chunk, whatever its encoding (the out-of-order bit set or not), as
    /// [`chunkenc::decode_samples`](super::chunkenc::decode_samples) gives them; errors at
    /// their byte of the chunk's data.
    pub fn decode_samples(
        &self,
        f: impl FnMut(i64, i64, super::chunkenc::Value<'_>),
    ) -> Result<usize, Error> {
        super::chunkenc::decode_samples(self.base_encoding(), self.data, f)
    }

    /// The sample count every chunk encoding starts with.
    pub fn num_samples(&self) -> u16 {
        match self.data {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        }
    }
}

/// Prometheus' chunk reference: file sequence in the upper 32 bits, byte offset in the lower.
pub fn chunk_ref(file_seq: u32, offset: usize) -> u64 {
    (file_seq as u64) << 32 | offset as u64
}

/// Checks magic and version.
pub fn check_header(file: &[u8]) -> Result<(), Error> {
    let bad = |msg: String| Error::new(ErrorKind::Header, 0, msg);
    if file.len() < HEADER_SIZE {
        let msg = format!("{} bytes is too short for a header", file.len());
        return Err(Error::new(ErrorKind::Truncated, 0, msg));
    }
    let magic = u32::from_be_bytes([file[0], file[1], file[2], file[3]]);
    if magic != MAGIC {
        return Err(bad(format!("magic {magic:08x}, expected {MAGIC:08x}")));
    }
    if file[4] != 1 {
        return Err(bad(format!("unknown format version {}", file[4])));
    }
    Ok(())
}

/// The chunks of one file (header already checked), in file order.
pub struct HeadChunks<'a> {
    file: &'a [u8],
    pos: usize,
    done: bool,
    check_crc: bool,
}

impl<'a> HeadChunks<'a> {
    pub fn new(file: &'a [u8]) -> HeadChunks<'a> {
        HeadChunks {
            file,
            pos: HEADER_SIZE,
            done: false,
            check_crc: true,
        }
    }

    /// The same walk without the CRC checks, so a chunk whose bytes are damaged comes out as if
    /// whole: for a quick look at the headers where that can only cost speed (the head's time
    /// bound), never for the samples.
    pub fn unchecked(file: &'a [u8]) -> HeadChunks<'a> {
        HeadChunks {
            check_crc: false,
            ..HeadChunks::new(file)
        }
    }

    /// Damage at `offset`; reading goes on after it when `skippable` (the chunk's extent is
    /// known).
    fn fail(
        &mut self,
        kind: ErrorKind,
        offset: usize,
        msg: String,
        skippable: bool,
    ) -> Option<Result<HeadChunk<'a>, Error>> {
        self.done = !skippable;
        Some(Err(Error::new(kind, offset, msg)))
    }
}

impl<'a> Iterator for HeadChunks<'a> {
    /// A chunk, or damage: [`ErrorKind::Torn`] when it reaches the end of the file with nothing
    /// but zeros after it, as a chunk being written does in the newest file of a running server.
    type Item = Result<HeadChunk<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let f = self.file;
        let at = self.pos;
        if self.done || at >= f.len() {
            return None;
        }
        if f.len() - at < MAX_META {
            if f[at..].iter().all(|&b| b == 0) {
                self.done = true;
                return None;
            }
            let msg = format!("{} bytes left, too few for a chunk header", f.len() - at);
            return self.fail(ErrorKind::Torn, at, msg, false);
        }
        let be = |i: usize| u64::from_be_bytes(f[i..i + 8].try_into().expect("8 bytes"));
        let (series_ref, mint, maxt) = (be(at), be(at + 8) as i64, be(at + 16) as i64);
        if series_ref == 0 && mint == 0 && maxt == 0 {
            self.done = true;
            return None;
        }
        let encoding = f[at + 24];
        let mut d = Cursor::new(&f[at + 25..at + 30], at + 25);
        let Ok(len) = d.uvarint("chunk length") else {
            return self.fail(ErrorKind::Malformed, at, "bad chunk length".into(), false);
        };
        let start = d.offset();
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|e| e.saturating_add(4) <= f.len());
        let Some(end) = end else {
            let msg = format!("chunk length {len} is past the file end");
            return self.fail(ErrorKind::Torn, at, msg, false);
        };
        self.pos = end + 4;
        let stored = u32::from_be_bytes(f[end..end + 4].try_into().expect("4 bytes"));
        let actual = if self.check_crc {
            crc32c::crc32c(&f[at..end])
        } else {
            stored
        };
        if stored != actual {
            let msg = format!("CRC32C mismatch: stored {stored:08x}, computed {actual:08x} (series ref {series_ref})");
            let kind = if f[end + 4..].iter().all(|&b| b == 0) {
                ErrorKind::Torn
            } else {
                ErrorKind::Checksum
            };
            return self.fail(kind, at, msg, true);
        }
        Some(Ok(HeadChunk {
            series_ref,
            mint,
            maxt,
            encoding,
            data: &f[start..end],
            offset: at,
        }))
    }
}

/// Writes a chunk file the way Prometheus lays one out, `prealloc` zero bytes at the end: for
/// tests and fixtures.
pub fn write_file(chunks: &[(u64, i64, i64, u8, &[u8])], prealloc: usize) -> Vec<u8> {
    let mut f = MAGIC.to_be_bytes().to_vec();
    f.extend_from_slice(&[1, 0, 0, 0]);
    for &(r, mint, maxt, enc, data) in chunks {
        let start = f.len();
        f.extend_from_slice(&r.to_be_bytes());
        f.extend_from_slice(&mint.to_be_bytes());
        f.extend_from_slice(&maxt.to_be_bytes());
        f.push(enc);
        let mut n = data.len() as u64;
        while n >= 0x80 {
            f.push(n as u8 | 0x80);
            n >>= 7;
        }
        f.push(n as u8);
        f.extend_from_slice(data);
        let crc = crc32c::crc32c(&f[start..]);
        f.extend_from_slice(&crc.to_be_bytes());
    }
    f.resize(f.len() + prealloc, 0);
    f
}

/// Fuzz target body: a chunk file from arbitrary bytes (with and without a valid header); every
/// chunk's samples decoded; never panics nor loops.
pub fn fuzz_head_chunks(data: &[u8]) {
    let mut with_header = MAGIC.to_be_bytes().to_vec();
    with_header.extend_from_slice(&[1, 0, 0, 0]);
    with_header.extend_from_slice(data);
    for file in [data, &with_header[..]] {
        if check_header(file).is_err() {
            continue;
        }
        for c in HeadChunks::new(file).flatten() {
            let _ = c.decode_samples(|_, _, _| {});
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A one-sample XOR chunk: count, varint timestamp, value bits.
    pub(crate) fn xor_chunk(t: i64, v: f64) -> Vec<u8> {
        let mut c = 1u16.to_be_bytes().to_vec();
        let mut z = ((t << 1) ^ (t >> 63)) as u64;
        while z >= 0x80 {
            c.push(z as u8 | 0x80);
            z >>= 7;
        }
        c.push(z as u8);
        c.extend_from_slice(&v.to_bits().to_be_bytes());
        c
    }

    #[test]
    fn chunks_then_zero_tail() {
        let a = xor_chunk(1000, 1.5);
        let b = xor_chunk(500, 7.0);
        let file = write_file(&[(1, 1000, 2000, 1, &a), (2, 500, 500, 0x81, &b)], 4096);
        check_header(&file).unwrap();
        let got: Vec<_> = HeadChunks::new(&file).map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].series_ref, got[0].mint, got[0].maxt),
            (1, 1000, 2000)
        );
        assert_eq!(got[0].offset, HEADER_SIZE);
        assert_eq!(got[0].num_samples(), 1);
        assert!(!got[0].is_ooo() && got[1].is_ooo());
        assert_eq!(got[1].base_encoding(), 1);
        let mut s = Vec::new();
        crate::format::tsdb::xor::decode(got[0].data, |t, v| s.push((t, f64::from_bits(v))))
            .unwrap();
        assert_eq!(s, vec![(1000, 1.5)]);
        // Zero tail shorter than a chunk header, and no tail at all.
        let short = write_file(&[(1, 1000, 2000, 1, &a)], 10);
        assert_eq!(HeadChunks::new(&short).count(), 1);
        let none = write_file(&[(1, 1000, 2000, 1, &a)], 0);
        assert_eq!(HeadChunks::new(&none).count(), 1);
        assert_eq!(chunk_ref(3, 8), 3 << 32 | 8);
    }

    #[test]
    fn damaged_files() {
        let a = xor_chunk(1000, 1.0);
        let mut file = write_file(&[(1, 1000, 1000, 1, &a), (2, 1000, 1000, 1, &a)], 100);
        assert!(check_header(&file[..4]).is_err());
        let mut bad = file.clone();
        bad[0] = 9;
        assert!(check_header(&bad).unwrap_err().what.contains("magic"));
        bad = file.clone();
        bad[4] = 2;
        assert!(check_header(&bad).unwrap_err().what.contains("version"));
        // A flipped data byte: that chunk is skippable, the next one still reads.
        file[HEADER_SIZE + 30] ^= 1;
        let got: Vec<_> = HeadChunks::new(&file).collect();
        let e = got[0].clone().unwrap_err();
        assert!(
            e.kind == ErrorKind::Checksum
                && e.what.contains("CRC32C")
                && e.offset == Some(HEADER_SIZE as u64),
            "{e}"
        );
        assert_eq!(got[1].clone().unwrap().series_ref, 2);
        // Unchecked, the same walk gives the damaged chunk as if whole.
        let refs: Vec<_> = HeadChunks::unchecked(&file)
            .map(|c| c.unwrap().series_ref)
            .collect();
        assert_eq!(refs, [1, 2]);
        // Cut inside the second chunk: not skippable, named at its offset.
        let file = write_file(&[(1, 1000, 1000, 1, &a), (2, 1000, 1000, 1, &a)], 0);
        let cut = &file[..file.len() - 3];
        let got: Vec<_> = HeadChunks::new(cut).collect();
        assert!(got[0].is_ok());
        let e = got[1].clone().unwrap_err();
        assert!(e.is_torn(), "{e}");
        // Junk shorter than a header after the chunks.
        let mut junk = write_file(&[(1, 1000, 1000, 1, &a)], 0);
        junk.extend_from_slice(&[0, 0, 7]);
        let got: Vec<_> = HeadChunks::new(&junk).collect();
        assert!(got[1].clone().unwrap_err().what.contains("too few"));
    }

    #[test]
    fn out_of_order_bit_on_any_encoding() {
        use crate::format::histogram::{FloatHistogram, Histogram};
        use crate::format::tsdb::chunkenc::Value;
        let h = Histogram {
            count: 2,
            sum: 1.5f64.to_bits(),
            ..Histogram::default()
        };
        let hc = crate::format::tsdb::histogram::encode(&[(1000, h.clone())]).unwrap();
        let fh = FloatHistogram {
            count: 2.5f64.to_bits(),
            ..FloatHistogram::default()
        };
        let fc = crate::format::tsdb::float_histogram::encode(&[(2000, fh.clone())]).unwrap();
        let x = xor_chunk(3000, 4.0);
        let file = write_file(
            &[
                (1, 1000, 1000, 2 | OOO_FLAG, &hc),
                (1, 2000, 2000, 3 | OOO_FLAG, &fc),
                (2, 3000, 3000, 1 | OOO_FLAG, &x),
                (3, 1000, 1000, 2, &hc),
            ],
            64,
        );
        let mut got = Vec::new();
        for c in HeadChunks::new(&file) {
            let c = c.unwrap();
            c.decode_samples(|_, t, v| {
                let v = match v {
                    Value::Float(b) => format!("{}", f64::from_bits(b)),
                    Value::Histogram(h) => format!("h{}", h.count),
                    Value::FloatHistogram(h) => format!("fh{}", f64::from_bits(h.count)),
                };
                got.push((c.is_ooo(), c.base_encoding(), t, v));
            })
            .unwrap();
        }
        let want = [
            (true, 2, 1000, "h2"),
            (true, 3, 2000, "fh2.5"),
            (true, 1, 3000, "4"),
            (false, 2, 1000, "h2"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|&(o, e, t, v)| (o, e, t, v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    proptest::proptest! {
        #[test]
        fn random_files_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            fuzz_head_chunks(&data);
        }
    }
}
