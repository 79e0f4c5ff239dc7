//! The spool: every fetched series is also appended here (binary, exact value bits, native
//! histograms as the WAL's histogram records hold them), so that `--resume` can replay the
//! finished work units of an interrupted fetch into the sink instead of asking the server
//! again. The checkpoint records how long the spool was at each unit's end.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::format::histogram::HistogramValue;
use crate::format::tsdb::record::{self, HistogramSample};
use crate::labels::Labels;

pub const SPOOL_FILE: &str = "spool.bin";

/// A series' histograms: (timestamp, value).
pub type Histograms = Vec<(i64, HistogramValue)>;

pub struct SpoolWriter {
    out: BufWriter<File>,
    len: u64,
    path: PathBuf,
}

impl SpoolWriter {
    /// Opens the spool in `dir` for appending after its first `len` bytes (0: a new spool).
    pub fn open(dir: &Path, len: u64) -> Result<SpoolWriter> {
        let path = dir.join(SPOOL_FILE);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // Bytes past the last checkpoint belong to an unfinished unit: drop them.
        f.set_len(len)?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        use std::io::Seek;
        out.seek(std::io::SeekFrom::Start(len))?;
        Ok(SpoolWriter { out, len, path })
    }

    /// Appends one series' samples and histograms: labels, the samples, then the histograms
    /// as one WAL histogram record each (type 12 for integer, 13 for float: every field kept).
    pub fn append(
        &mut self,
        labels: &Labels,
        samples: &[(i64, f64)],
        histograms: &[(i64, HistogramValue)],
    ) -> Result<()> {
        let mut head = Vec::with_capacity(64);
        head.extend_from_slice(&(labels.len() as u32).to_le_bytes());
        for (n, v) in labels.iter() {
            head.extend_from_slice(&(n.len() as u32).to_le_bytes());
            head.extend_from_slice(n.as_bytes());
            head.extend_from_slice(&(v.len() as u32).to_le_bytes());
            head.extend_from_slice(v.as_bytes());
        }
        head.extend_from_slice(&(samples.len() as u64).to_le_bytes());
        self.out.write_all(&head)?;
        for &(t, v) in samples {
            let mut rec = [0u8; 16];
            rec[..8].copy_from_slice(&t.to_le_bytes());
            rec[8..].copy_from_slice(&v.to_bits().to_le_bytes());
            self.out.write_all(&rec)?;
        }
        self.len += head.len() as u64 + 16 * samples.len() as u64;
        self.out
            .write_all(&(histograms.len() as u64).to_le_bytes())?;
        self.len += 8;
        for (t, h) in histograms {
            let typ = match h {
                HistogramValue::Int(_) => 12,
                HistogramValue::Float(_) => 13,
            };
            let s = HistogramSample {
                series_ref: 0,
                st: 0,
                t: *t,
                h: h.clone(),
            };
            let rec = record::encode_histograms(typ, std::slice::from_ref(&s));
            self.out.write_all(&(rec.len() as u32).to_le_bytes())?;
            self.out.write_all(&rec)?;
            self.len += 4 + rec.len() as u64;
        }
        Ok(())
    }

    /// Makes everything appended so far durable; returns the spool length to checkpoint.
    pub fn commit(&mut self) -> Result<u64> {
        self.out
            .flush()
            .and_then(|_| self.out.get_ref().sync_data())
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(self.len)
    }
}

/// Calls `f` for every series record in the first `len` bytes of the spool in `dir`.
pub fn replay(
    dir: &Path,
    len: u64,
    mut f: impl FnMut(Labels, Vec<(i64, f64)>, Histograms) -> Result<()>,
) -> Result<()> {
    let path = dir.join(SPOOL_FILE);
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    if file.metadata()?.len() < len {
        bail!(
            "{} is shorter than its checkpoint says: cannot resume",
            path.display()
        );
    }
    let mut r = BufReader::with_capacity(1 << 20, file.take(len));
    let mut pos = 0u64;
    while pos < len {
        let (labels, samples, hists, n) = read_record(&mut r)
            .with_context(|| format!("{}: bad record at byte {pos}", path.display()))?;
        pos += n;
        f(labels, samples, hists)?;
    }
    Ok(())
}

/// A series, its samples and histograms, and the record's size in bytes.
type Record = (Labels, Vec<(i64, f64)>, Histograms, u64);

fn read_record(r: &mut impl Read) -> Result<Record> {
    let mut n = 0u64;
    let u32_ = |r: &mut dyn Read, n: &mut u64| -> Result<u32> {
        let mut b = [0u8; 4];
        r.read_exact(&mut b)?;
        *n += 4;
        Ok(u32::from_le_bytes(b))
    };
    let nl = u32_(r, &mut n)?;
    let mut pairs = Vec::with_capacity(nl as usize);
    for _ in 0..nl {
        let mut s = [String::new(), String::new()];
        for part in &mut s {
            let l = u32_(r, &mut n)? as usize;
            let mut buf = vec![0u8; l];
            r.read_exact(&mut buf)?;
            n += l as u64;
            *part = String::from_utf8(buf)?;
        }
        let [a, b] = s;
        pairs.push((a, b));
    }
    let mut b8 = [0u8; 8];
    r.read_exact(&mut b8)?;
    n += 8;
    let ns = u64::from_le_bytes(b8);
    let mut samples = Vec::with_capacity(ns.min(1 << 20) as usize);
    for _ in 0..ns {
        let mut rec = [0u8; 16];
        r.read_exact(&mut rec)?;
        let t = i64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
        let v = u64::from_le_bytes(rec[8..].try_into().expect("8 bytes"));
        samples.push((t, f64::from_bits(v)));
    }
    n += 16 * ns;
    r.read_exact(&mut b8)?;
    n += 8;
    let nh = u64::from_le_bytes(b8);
    let mut hists = Vec::with_capacity(nh.min(1 << 16) as usize);
    for _ in 0..nh {
        let len = u32_(r, &mut n)? as usize;
        let mut rec = vec![0u8; len];
        r.read_exact(&mut rec)?;
        n += len as u64;
        let mut it = record::histograms(&rec)?;
        let (Some(s), None) = (it.next().transpose()?, it.next()) else {
            anyhow::bail!("a histogram record of the spool holds no histogram or several");
        };
        hists.push((s.t, s.h));
    }
    Ok((Labels::from_pairs(pairs), samples, hists, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_commit_replay_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let a = Labels::from_pairs([("__name__", "a"), ("x", "ü\n\"")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        let mut w = SpoolWriter::open(dir.path(), 0).unwrap();
        let hist = HistogramValue::Float(crate::format::histogram::FloatHistogram {
            schema: -53,
            count: 2.5f64.to_bits(),
            custom_values: vec![1.0f64.to_bits()],
            ..Default::default()
        });
        let stale = HistogramValue::Int(crate::format::histogram::Histogram::stale());
        let hists = vec![(1, hist), (2, stale)];
        w.append(
            &a,
            &[(1, 1.5), (2, f64::from_bits(0x7ff8_0000_0000_0001))],
            &hists,
        )
        .unwrap();
        let l1 = w.commit().unwrap();
        w.append(&b, &[(3, -0.0)], &[]).unwrap();
        drop(w);
        let mut got = Vec::new();
        replay(dir.path(), l1, |l, s, h| {
            got.push((l, s, h));
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, a);
        assert_eq!(got[0].1[1].1.to_bits(), 0x7ff8_0000_0000_0001);
        assert_eq!(got[0].2, hists, "histograms back exactly");
        // Reopening at the checkpoint drops the unfinished record, then appends cleanly.
        let mut w = SpoolWriter::open(dir.path(), l1).unwrap();
        w.append(&b, &[(3, -0.0)], &[]).unwrap();
        let l2 = w.commit().unwrap();
        let mut got = Vec::new();
        replay(dir.path(), l2, |l, s, h| {
            got.push((l, s, h));
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1[0].1.to_bits(), (-0.0f64).to_bits());
        assert!(replay(dir.path(), l2 + 100, |_, _, _| Ok(())).is_err());
    }
}
