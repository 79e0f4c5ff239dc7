//! Block tombstones (`tsdb/tombstones`): magic 0x0130BA30, format 1, then entries of uvarint
//! series ref and varint deleted interval [mint, maxt], with a CRC32C over the entries.

use std::collections::HashMap;

use super::{check_crc, Cursor, Error, ErrorKind, Result};

pub const MAGIC: u32 = 0x0130_BA30;

/// Deleted intervals (inclusive) per series ref of the block's index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tombstones {
    map: HashMap<u64, Vec<(i64, i64)>>,
}

impl Tombstones {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The deleted intervals of series `series_ref`.
    pub fn intervals(&self, series_ref: u64) -> &[(i64, i64)] {
        self.map.get(&series_ref).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether a sample of the series at `ts` is deleted.
    pub fn deleted(intervals: &[(i64, i64)], ts: i64) -> bool {
        intervals.iter().any(|&(a, b)| a <= ts && ts <= b)
    }

    /// Whether every time in [mint, maxt] is deleted (the whole chunk can be skipped).
    pub fn covers(intervals: &[(i64, i64)], mint: i64, maxt: i64) -> bool {
        intervals.iter().any(|&(a, b)| a <= mint && maxt <= b)
    }
}

/// Parses a tombstones file.
pub fn parse(data: &[u8]) -> Result<Tombstones> {
    if data.len() < 9 {
        return Err(Error::new(
            ErrorKind::Truncated,
            data.len(),
            format!("tombstones file of {} bytes has no header", data.len()),
        ));
    }
    let mut h = Cursor::new(data, 0);
    let magic = h.be32("tombstones header")?;
    if magic != MAGIC {
        return Err(Error::new(
            ErrorKind::Header,
            0,
            format!("not a tombstones file (magic {magic:08x})"),
        ));
    }
    let version = data[4];
    if version != 1 {
        return Err(Error::new(
            ErrorKind::Header,
            4,
            format!("unknown tombstones format {version}"),
        ));
    }
    let (body, sum) = data[5..].split_at(data.len() - 9);
    check_crc(body, sum, 5, "tombstones")?;
    let mut d = Cursor::new(body, 5);
    let mut t = Tombstones::default();
    while d.remaining() > 0 {
        let r = d.uvarint("tombstone series ref")?;
        let a = d.varint("tombstone mint")?;
        let b = d.varint("tombstone maxt")?;
        t.map.entry(r).or_default().push((a, b));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[(u64, i64, i64)]) -> Vec<u8> {
        let mut body = Vec::new();
        let uv = |mut x: u64, out: &mut Vec<u8>| {
            while x >= 0x80 {
                out.push(x as u8 | 0x80);
                x >>= 7;
            }
            out.push(x as u8);
        };
        for &(r, a, b) in entries {
            uv(r, &mut body);
            uv(((a << 1) ^ (a >> 63)) as u64, &mut body);
            uv(((b << 1) ^ (b >> 63)) as u64, &mut body);
        }
        let mut f = MAGIC.to_be_bytes().to_vec();
        f.push(1);
        f.extend_from_slice(&body);
        f.extend_from_slice(&crate::format::tsdb::crc32c(&body).to_be_bytes());
        f
    }

    #[test]
    fn empty_file_as_prometheus_writes_it() {
        let t = parse(&[0x01, 0x30, 0xba, 0x30, 0x01, 0, 0, 0, 0]).unwrap();
        assert!(t.is_empty());
    }

    #[test]
    fn entries_and_intervals() {
        let t = parse(&file(&[(7, -100, 50), (7, 1000, 2000), (16, 5, 5)])).unwrap();
        assert_eq!(t.intervals(7), &[(-100, 50), (1000, 2000)]);
        assert!(Tombstones::deleted(t.intervals(7), -100));
        assert!(Tombstones::deleted(t.intervals(7), 2000));
        assert!(!Tombstones::deleted(t.intervals(7), 51));
        assert!(Tombstones::covers(t.intervals(16), 5, 5));
        assert!(t.intervals(8).is_empty());
    }

    #[test]
    fn damaged_files() {
        let mut f = file(&[(7, 1, 2)]);
        f[6] ^= 0x40;
        let e = parse(&f).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Checksum);
        assert!(e.to_string().starts_with("at byte 5:"), "{e}");
        let mut f = file(&[(7, 1, 2)]);
        f[4] = 2;
        assert_eq!(parse(&f).unwrap_err().kind, ErrorKind::Header);
        assert_eq!(parse(&f[..5]).unwrap_err().kind, ErrorKind::Truncated);
        // A valid CRC over a cut entry: truncated, with the offset of the cut field.
        let body = vec![7u8, 2];
        let mut g = MAGIC.to_be_bytes().to_vec();
        g.push(1);
        g.extend_from_slice(&body);
        g.extend_from_slice(&crate::format::tsdb::crc32c(&body).to_be_bytes());
        let e = parse(&g).unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::Truncated, Some(7)));
    }
}
