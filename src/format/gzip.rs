//! The gzip writer of shard files: zlib-rs through flate2, fed the text in fixed blocks so that
//! the compressed bytes are a function of the text and the level alone.

use std::io::{self, Write};

use flate2::write::GzEncoder;

/// The encoder's input is cut in blocks of this size, whatever the writes: zlib-rs's output at
/// levels 0 and 2-9 depends on where its input is cut between calls, so the bytes are then a
/// function of the text and the level alone (the streamed and the sorted path, a resumed fetch,
/// write the same text differently).
const BLOCK: usize = 1 << 18;

/// A gzip member being written to `W`; [`GzWriter::finish`] ends it.
pub struct GzWriter<W: Write> {
    encoder: GzEncoder<W>,
    block: Vec<u8>,
}

impl<W: Write> GzWriter<W> {
    /// A writer at `level` (0 stores, 1 fastest, 9 smallest).
    pub fn new(inner: W, level: u32) -> GzWriter<W> {
        GzWriter {
            encoder: GzEncoder::new(inner, flate2::Compression::new(level)),
            block: Vec::with_capacity(BLOCK),
        }
    }

    /// Ends the gzip member (trailer written) and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.encoder.write_all(&self.block)?;
        self.encoder.finish()
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let take = (BLOCK - self.block.len()).min(rest.len());
            self.block.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.block.len() == BLOCK {
                self.encoder.write_all(&self.block)?;
                self.block.clear();
            }
        }
        Ok(buf.len())
    }

    /// Flushes what the encoder has already output; the text still in the block stays there, so
    /// the bytes are those of one uninterrupted member.
    fn flush(&mut self) -> io::Result<()> {
        self.encoder.get_mut().flush()
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
    }
}
