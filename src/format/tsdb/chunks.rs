//! Block chunk segment files (`tsdb/chunks`, `chunks/000001`…): an 8-byte header (magic
//! 0x85BD40DD, version 1, padding), then chunks of uvarint length, encoding byte, data, CRC32C.

use super::{check_crc, Cursor, Error, ErrorKind, Result};

pub const MAGIC: u32 = 0x85BD_40DD;
pub const HEADER_LEN: usize = 8;

/// Checks a segment file's header.
pub fn check_segment(data: &[u8]) -> Result<()> {
    let mut b = Cursor::new(data, 0);
    let magic = b.be32("segment header")?;
    if magic != MAGIC {
        return Err(Error::new(
            ErrorKind::Header,
            0,
            format!("not a chunk segment file (magic {magic:08x})"),
        ));
    }
    let version = b.byte("segment header")?;
    if version != 1 {
        return Err(Error::new(
            ErrorKind::Header,
            4,
            format!("unknown chunk segment version {version}"),
        ));
    }
    b.bytes(3, "segment header")?;
    Ok(())
}

/// The segment index and byte offset packed into a block chunk reference.
pub fn unpack_ref(chunk_ref: u64) -> (usize, usize) {
    (
        (chunk_ref >> 32) as usize,
        (chunk_ref & 0xffff_ffff) as usize,
    )
}

/// One chunk, borrowed from its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub encoding: u8,
    pub data: &'a [u8],
    /// Where `data` starts in the segment file.
    pub data_offset: usize,
}

impl Chunk<'_> {
    /// [`chunkenc::decode`](super::chunkenc::decode) with errors at their byte of the segment.
    pub fn decode(&self, f: impl FnMut(i64, u64)) -> Result<super::chunkenc::Decoded> {
        super::chunkenc::decode(self.encoding, self.data, f)
            .map_err(|e| e.shifted(self.data_offset))
    }

    /// [`chunkenc::decode_samples`](super::chunkenc::decode_samples): every sample, histograms
    /// too, with errors at their byte of the segment.
    pub fn decode_samples(
        &self,
        f: impl FnMut(i64, i64, super::chunkenc::Value<'_>),
    ) -> Result<usize> {
        super::chunkenc::decode_samples(self.encoding, self.data, f)
            .map_err(|e| e.shifted(self.data_offset))
    }
}

/// Reads the chunk at byte `offset` of a segment, checking its CRC32C.
pub fn chunk_at(segment: &[u8], offset: usize) -> Result<Chunk<'_>> {
    if offset < HEADER_LEN || offset >= segment.len() {
        return Err(Error::new(
            ErrorKind::Truncated,
            offset,
            format!(
                "chunk reference outside the segment's {} bytes",
                segment.len()
            ),
        ));
    }
    let mut b = Cursor::new(&segment[offset..], offset);
    let len = b.uvarint("chunk length")?;
    let body = b.bytes(
        usize::try_from(len).unwrap_or(usize::MAX).saturating_add(1),
        "chunk",
    )?;
    let data_offset = b.offset() - body.len() + 1;
    let sum = b.bytes(4, "chunk checksum")?;
    check_crc(body, sum, offset, "chunk")?;
    Ok(Chunk {
        encoding: body[0],
        data: &body[1..],
        data_offset,
    })
}

/// The encoding and sample count of the chunk at `offset`, from its header alone (no checksum):
/// enough for counting without reading whole chunks.
pub fn header_at(segment: &[u8], offset: usize) -> Result<(u8, u16)> {
    if offset < HEADER_LEN || offset >= segment.len() {
        return Err(Error::new(
            ErrorKind::Truncated,
            offset,
            "chunk reference outside the segment",
        ));
    }
    let mut b = Cursor::new(&segment[offset..], offset);
    b.uvarint("chunk length")?;
    let enc = b.byte("chunk encoding")?;
    let n = b.bytes(2, "chunk sample count")?;
    Ok((enc, u16::from_be_bytes([n[0], n[1]])))
}

/// Walks every chunk of a segment in file order (the segment's chunks are back to back).
pub fn iter(segment: &[u8]) -> impl Iterator<Item = Result<(usize, Chunk<'_>)>> + '_ {
    let mut off = HEADER_LEN;
    let mut done = check_segment(segment).err().map(Err);
    let mut stop = false;
    std::iter::from_fn(move || {
        if stop {
            return None;
        }
        if let Some(e) = done.take() {
            stop = true;
            return Some(e);
        }
        if off >= segment.len() {
            return None;
        }
        match chunk_at(segment, off) {
            Ok(c) => {
                let at = off;
                let mut b = Cursor::new(&segment[off..], off);
                let _ = b.uvarint("chunk length");
                off = b.offset() + 1 + c.data.len() + 4;
                Some(Ok((at, c)))
            }
            Err(e) => {
                stop = true;
                Some(Err(e))
            }
        }
    })
}

/// Fuzz logic: walk a segment and decode each chunk it holds.
pub(crate) fn fuzz(data: &[u8]) {
    for c in iter(data).take(100_000) {
        let Ok((_, c)) = c else { break };
        let _ = c.decode_samples(|_, _, _| {});
    }
    // Also treat the whole input as one chunk body of every encoding.
    for enc in 0..=7 {
        let _ = super::chunkenc::decode(enc, data, |_, _| {});
    }
    super::chunkenc::fuzz_chunk_samples(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(chunks: &[(u8, &[u8])]) -> Vec<u8> {
        let mut s = MAGIC.to_be_bytes().to_vec();
        s.extend_from_slice(&[1, 0, 0, 0]);
        for (enc, data) in chunks {
            let mut len = Vec::new();
            let mut n = data.len() as u64;
            while n >= 0x80 {
                len.push(n as u8 | 0x80);
                n >>= 7;
            }
            len.push(n as u8);
            s.extend_from_slice(&len);
            let mut body = vec![*enc];
            body.extend_from_slice(data);
            s.extend_from_slice(&body);
            s.extend_from_slice(&crate::format::tsdb::crc32c(&body).to_be_bytes());
        }
        s
    }

    #[test]
    fn reads_chunks_back_to_back() {
        let seg = segment(&[(1, b"abc"), (2, &[7; 200])]);
        let all: Vec<_> = iter(&seg).map(|c| c.unwrap()).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, 8);
        assert_eq!(all[0].1.data, b"abc");
        assert_eq!(all[1].1.encoding, 2);
        assert_eq!(chunk_at(&seg, all[1].0).unwrap().data.len(), 200);
        assert_eq!(all[0].1.data_offset, 8 + 1 + 1);
        assert_eq!(all[1].1.data_offset, all[1].0 + 2 + 1);
    }

    #[test]
    fn bad_crc_names_the_offset() {
        let mut seg = segment(&[(1, b"abc"), (1, b"defg")]);
        let second = 8 + 1 + 1 + 3 + 4;
        seg[second + 3] ^= 1;
        let e = chunk_at(&seg, second).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Checksum);
        assert_eq!(e.offset, Some(second as u64));
        assert!(e.to_string().contains(&format!("at byte {second}")), "{e}");
    }

    #[test]
    fn truncated_segment_and_bad_refs() {
        let seg = segment(&[(1, b"abcdef")]);
        let e = chunk_at(&seg[..seg.len() - 2], 8).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Truncated);
        assert!(e.to_string().contains("at byte"), "{e}");
        assert_eq!(chunk_at(&seg, 4).unwrap_err().kind, ErrorKind::Truncated);
        assert_eq!(chunk_at(&seg, 1 << 20).unwrap_err().offset, Some(1 << 20));
        assert_eq!(
            check_segment(&seg[..6]).unwrap_err().kind,
            ErrorKind::Truncated
        );
        let mut bad = seg.clone();
        bad[0] = 0;
        assert_eq!(check_segment(&bad).unwrap_err().kind, ErrorKind::Header);
        assert_eq!(unpack_ref(3 << 32 | 77), (3, 77));
    }
}
