//! The gzip writer of shard files: ISA-L's igzip for level 1 in builds with the `igzip` feature
//! (the release tarball's), zlib-rs through flate2 for every other level and build.
//!
//! Level 1 is igzip's own level 0: on shard text it is about 1.8 times as fast as zlib-rs's
//! level 1 and a little smaller (igzip's tables were made for such text; zlib-rs's level 1,
//! `deflate_quick`, has only the fixed Huffman codes). igzip's level 1 would be a third smaller
//! still, but built into prom2om its output for the same text was not always the same (the
//! streamed-equals-sorted property test caught it now and then), and shard bytes must be. Both
//! encoders write one standard gzip member that any gunzip reads.

use std::io::{self, Write};

use flate2::write::GzEncoder;

/// The encoders' input is cut in blocks of this size, whatever the writes: the output of both
/// can depend on where their input is cut between calls (zlib-rs's does at levels 0 and 2-9), so
/// the bytes are then a function of the text and the level alone (the streamed and the sorted
/// path, a resumed fetch, write the same text differently). The copy costs about 7% of igzip's
/// time.
const BLOCK: usize = 1 << 18;
/// Zeros after the text handed to igzip, in the same allocation: its assembly may read past the
/// end of its input (match comparisons go by words), and whatever it could see there is then the
/// same every time. 1 KiB: more than a deflate match (258 bytes) reaches.
const PAD: usize = 1 << 10;

/// A gzip member being written to `W`; [`GzWriter::finish`] ends it.
pub struct GzWriter<W: Write> {
    encoder: Encoder<W>,
    block: Vec<u8>,
}

enum Encoder<W: Write> {
    Zlib(GzEncoder<W>),
    #[cfg(feature = "igzip")]
    Igzip(igzip::Encoder<W>),
}

impl<W: Write> GzWriter<W> {
    /// A writer at `level` (0 stores, 1 fastest, 9 smallest).
    pub fn new(inner: W, level: u32) -> GzWriter<W> {
        let encoder = match level {
            #[cfg(feature = "igzip")]
            1 => Encoder::Igzip(igzip::Encoder::new(inner)),
            _ => Encoder::Zlib(GzEncoder::new(inner, flate2::Compression::new(level))),
        };
        GzWriter {
            encoder,
            block: Vec::with_capacity(BLOCK + PAD),
        }
    }

    /// Passes the block to the encoder and empties it.
    fn compress_block(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Zlib(w) => w.write_all(&self.block)?,
            #[cfg(feature = "igzip")]
            Encoder::Igzip(w) => w.compress(padded(&mut self.block), false)?,
        }
        self.block.clear();
        Ok(())
    }

    /// Ends the gzip member (trailer written) and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self.encoder {
            Encoder::Zlib(mut w) => {
                w.write_all(&self.block)?;
                w.finish()
            }
            #[cfg(feature = "igzip")]
            Encoder::Igzip(mut w) => {
                let mut block = self.block;
                w.compress(padded(&mut block), true)?;
                Ok(w.into_inner())
            }
        }
    }
}

/// The block's text, with [`PAD`] zeros after it in the same allocation.
#[cfg(feature = "igzip")]
fn padded(block: &mut Vec<u8>) -> &[u8] {
    let len = block.len();
    block.resize(len + PAD, 0);
    &block[..len]
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let take = (BLOCK - self.block.len()).min(rest.len());
            self.block.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.block.len() == BLOCK {
                self.compress_block()?;
            }
        }
        Ok(buf.len())
    }

    /// Flushes what the encoder has already output; the text still in the block stays there, so
    /// the bytes are those of one uninterrupted member.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Zlib(w) => w.get_mut().flush(),
            #[cfg(feature = "igzip")]
            Encoder::Igzip(w) => w.flush(),
        }
    }
}

#[cfg(feature = "igzip")]
mod igzip {
    //! A safe streaming wrapper over ISA-L's stateful `isal_deflate`, its level 0, gzip framing.

    use std::io::{self, Write};
    use std::mem::MaybeUninit;

    use isal_sys::igzip_lib as isal;

    /// Compressed bytes gathered before they are passed on.
    const OUT_BUF: usize = 1 << 16;

    pub struct Encoder<W: Write> {
        // Boxed: 82 KB, most of it the history and hash table of level 0.
        stream: Box<isal::isal_zstream>,
        out: Vec<u8>,
        inner: W,
    }

    // SAFETY: the stream's raw pointers point at ISA-L's static tables, or are set from the
    // caller's input and the encoder's own output buffer for the length of one `compress` call;
    // nothing is shared with another thread.
    unsafe impl<W: Write + Send> Send for Encoder<W> {}

    impl<W: Write> Encoder<W> {
        pub fn new(inner: W) -> Encoder<W> {
            let mut stream: Box<MaybeUninit<isal::isal_zstream>> = Box::new_uninit();
            // Zeroed first, so that no field isal_deflate_init leaves alone holds leftovers.
            // SAFETY: zeroed is a valid isal_zstream (integers and null pointers), and
            // isal_deflate_init then sets it up.
            let mut stream = unsafe {
                stream.as_mut_ptr().write_bytes(0, 1);
                isal::isal_deflate_init(stream.as_mut_ptr());
                stream.assume_init()
            };
            // Level 0 needs no level buffer (ISAL_DEF_LVL0_DEFAULT is 0).
            stream.level = 0;
            stream.gzip_flag = isal::IGZIP_GZIP as u16;
            stream.flush = isal::NO_FLUSH as u16;
            stream.end_of_stream = 0;
            Encoder {
                stream,
                out: Vec::with_capacity(OUT_BUF),
                inner,
            }
        }

        /// Compresses all of `input` (the last input when `end`: then until the trailer is out),
        /// passing full output buffers on.
        pub fn compress(&mut self, input: &[u8], end: bool) -> io::Result<()> {
            let avail = u32::try_from(input.len()).map_err(io::Error::other)?;
            self.stream.next_in = input.as_ptr().cast_mut();
            self.stream.avail_in = avail;
            self.stream.end_of_stream = u16::from(end);
            loop {
                // Zeroed, so that nothing left there by earlier use can show in what ISA-L
                // writes (igzip's level 1 was seen to give other bytes for the same text).
                self.out.spare_capacity_mut().fill(MaybeUninit::new(0));
                let used = self.out.len();
                let spare = self.out.capacity() - used;
                let avail_in = self.stream.avail_in;
                // SAFETY: next_out/avail_out describe the vector's spare capacity, and ISA-L
                // writes at most avail_out bytes there; next_in/avail_in describe `input`,
                // which outlives the call and which ISA-L only reads.
                let (rc, written) = unsafe {
                    self.stream.next_out = self.out.as_mut_ptr().add(used);
                    self.stream.avail_out = spare as u32;
                    let rc = isal::isal_deflate(&mut *self.stream);
                    let written = spare - self.stream.avail_out as usize;
                    self.out.set_len(used + written);
                    (rc, written)
                };
                if rc != isal::COMP_OK as i32 {
                    return Err(io::Error::other(format!(
                        "igzip: isal_deflate failed ({rc})"
                    )));
                }
                let done = self.stream.avail_in == 0
                    && (!end
                        || self.stream.internal_state.state == isal::isal_zstate_state_ZSTATE_END);
                if self.out.len() == self.out.capacity() || (done && end) {
                    self.flush_out()?;
                } else if !done && written == 0 && self.stream.avail_in == avail_in {
                    return Err(io::Error::other("igzip: isal_deflate made no progress"));
                }
                if done {
                    break;
                }
            }
            // Not kept past the call: the caller's input may go away.
            self.stream.next_in = std::ptr::null_mut();
            Ok(())
        }

        fn flush_out(&mut self) -> io::Result<()> {
            self.inner.write_all(&self.out)?;
            self.out.clear();
            Ok(())
        }

        pub fn flush(&mut self) -> io::Result<()> {
            self.flush_out()?;
            self.inner.flush()
        }

        /// The inner writer, once the last input has been compressed.
        pub fn into_inner(self) -> W {
            self.inner
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut text)
            .unwrap();
        text
    }

    /// Shard-like text: one series' lines, then the next's, with values that vary.
    fn shard_text(series: usize, lines: usize) -> Vec<u8> {
        let mut t = Vec::new();
        for s in 0..series {
            for i in 0..lines {
                let line = format!(
                    "es_os_load1{{cluster=\"c{}\",instance=\"10.0.{s}.1:9114\"}} {} {}.{:03}\n",
                    s % 3,
                    (i * 7919 + s) % 1000,
                    1_700_000_000 + i * 15,
                    i % 1000
                );
                t.extend_from_slice(line.as_bytes());
            }
        }
        t.extend_from_slice(b"# EOF\n");
        t
    }

    fn compress(text: &[u8], level: u32, writes: &[usize]) -> Vec<u8> {
        let mut w = GzWriter::new(Vec::new(), level);
        let mut rest = text;
        for &n in writes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at(n.clamp(1, rest.len()));
            w.write_all(a).unwrap();
            rest = b;
        }
        w.finish().unwrap()
    }

    #[test]
    fn every_level_writes_one_member_gunzip_reads() {
        let text = shard_text(40, 500);
        for level in 0..=9 {
            let gz = compress(&text, level, &[1 << 18]);
            assert_eq!(gunzip(&gz), text, "level {level}");
            assert_eq!(&gz[..3], b"\x1f\x8b\x08", "a gzip member");
        }
        assert_eq!(gunzip(&compress(b"", 1, &[1])), b"", "an empty member");
    }

    #[test]
    fn level_one_uses_igzip_in_igzip_builds() {
        let text = shard_text(40, 500);
        let one = compress(&text, 1, &[1 << 18]);
        let zlib = {
            let mut w = GzEncoder::new(Vec::new(), flate2::Compression::new(1));
            w.write_all(&text).unwrap();
            w.finish().unwrap()
        };
        assert_eq!(one == zlib, !cfg!(feature = "igzip"));
        if cfg!(feature = "igzip") {
            assert!(one.len() < zlib.len(), "{} vs {}", one.len(), zlib.len());
        }
    }

    #[test]
    fn the_bytes_depend_on_the_text_alone() {
        // Not on how it was written: the streamed and the sorted path, or a resumed fetch, cut
        // the same text differently.
        let text = shard_text(30, 800);
        for level in 0..=9 {
            let a = compress(&text, level, &[1 << 18, 5000]);
            let b = compress(&text, level, &[777, 1 << 20, 3]);
            assert!(a == b, "level {level}");
        }
    }

    /// Leaves pseudo-random bytes where the next calls' stack frames will be.
    #[inline(never)]
    fn dirty_stack(seed: u64) {
        let mut junk = [0u64; 8192];
        let mut x = seed | 1;
        for j in junk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *j = x;
        }
        std::hint::black_box(&junk);
        // And the vector registers: a large copy and a hash, as the shard writer runs between
        // two compressions.
        let bytes: Vec<u8> = junk.iter().flat_map(|j| j.to_le_bytes()).collect();
        let copy = bytes.clone();
        std::hint::black_box(&copy);
        std::hint::black_box(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    }

    #[test]
    fn the_same_text_gives_the_same_bytes_on_any_thread() {
        // A check on igzip under the conditions of the shard writers: many threads, between
        // compressions other work on the stack and in the vector registers.
        let texts: Vec<Vec<u8>> = (1..40)
            .map(|k| shard_text(k % 7 + 1, k * 13 % 90 + 1))
            .collect();
        let want: Vec<Vec<u8>> = texts.iter().map(|t| compress(t, 1, &[1 << 18])).collect();
        std::thread::scope(|s| {
            for k in 0..4u64 {
                let (texts, want) = (&texts, &want);
                s.spawn(move || {
                    for round in 0..10 {
                        for (t, w) in texts.iter().zip(want) {
                            dirty_stack(k * 1000 + round);
                            assert!(compress(t, 1, &[1 << 18]) == *w, "thread {k} round {round}");
                        }
                    }
                });
            }
        });
    }

    proptest! {
        // Few cases: zlib-rs's higher levels are slow in the debug build the suite runs in.
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn round_trip(text in proptest::collection::vec(any::<u8>(), 0..100_000),
                      writes in proptest::collection::vec(1usize..100_000, 1..8),
                      level in 0u32..=9) {
            prop_assert_eq!(gunzip(&compress(&text, level, &writes)), text);
        }

        #[test]
        fn same_text_same_bytes(series in 1usize..40, lines in 1usize..300, level in 0u32..=9,
                                a in proptest::collection::vec(1usize..300_000, 1..4),
                                b in proptest::collection::vec(1usize..300_000, 1..4)) {
            let text = shard_text(series, lines);
            prop_assert!(compress(&text, level, &a) == compress(&text, level, &b));
        }

        #[test]
        fn round_trip_repetitive(series in 1usize..60, lines in 1usize..400,
                                 writes in proptest::collection::vec(1usize..300_000, 1..4)) {
            let text = shard_text(series, lines);
            prop_assert_eq!(gunzip(&compress(&text, 1, &writes)), text);
        }
    }
}
