//! Chunk encoding dispatch (`tsdb/chunkenc`): float chunks (1 XOR, 4 XOR2), native histogram
//! chunks (2, 3, and the start-timestamp variants 5, 6); an unknown encoding is an error naming
//! it, never a silent skip. [`decode`] serves float-only readers (histograms counted only).

use super::histogram_meta::Sample;
use super::{float_histogram, histogram, xor, xor2, Error, ErrorKind, Result};
use crate::format::histogram::{FloatHistogram, Histogram};

pub const ENC_XOR: u8 = 1;
pub const ENC_HISTOGRAM: u8 = 2;
pub const ENC_FLOAT_HISTOGRAM: u8 = 3;
pub const ENC_XOR2: u8 = 4;
pub const ENC_HISTOGRAM_ST: u8 = 5;
pub const ENC_FLOAT_HISTOGRAM_ST: u8 = 6;

/// What a chunk held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Float samples, each passed to the callback.
    Floats(usize),
    /// Native histogram samples, counted only: OpenMetrics backfill cannot carry them.
    Histograms(usize),
}

/// Prometheus's name for an encoding, for messages.
pub fn encoding_name(enc: u8) -> String {
    match enc {
        0 => "none".into(),
        ENC_XOR => "XOR".into(),
        ENC_HISTOGRAM => "histogram".into(),
        ENC_FLOAT_HISTOGRAM => "floathistogram".into(),
        ENC_XOR2 => "XOR2".into(),
        ENC_HISTOGRAM_ST => "histogram with start timestamps".into(),
        ENC_FLOAT_HISTOGRAM_ST => "floathistogram with start timestamps".into(),
        n => format!("unknown ({n})"),
    }
}

/// Decodes a chunk body (the bytes after the encoding byte) for a reader of floats: float
/// samples go to `f(timestamp_ms, value_bits)`, histogram chunks are only counted (from their
/// header). Offsets in errors are relative to the chunk body ([`Error::shifted`] by where the
/// body lies gives the file's).
pub fn decode(enc: u8, data: &[u8], f: impl FnMut(i64, u64)) -> Result<Decoded> {
    match enc {
        ENC_XOR => xor::decode(data, f).map(Decoded::Floats),
        ENC_XOR2 => xor2::decode(data, f).map(Decoded::Floats),
        ENC_HISTOGRAM | ENC_FLOAT_HISTOGRAM | ENC_HISTOGRAM_ST | ENC_FLOAT_HISTOGRAM_ST => {
            // Every chunk starts with its BE16 sample count; the start-time encodings keep the
            // counter-reset header in its top two bits.
            match data {
                [a, b, ..] => {
                    let n = u16::from_be_bytes([*a, *b]);
                    let st = matches!(enc, ENC_HISTOGRAM_ST | ENC_FLOAT_HISTOGRAM_ST);
                    Ok(Decoded::Histograms(if st { n & 0x3fff } else { n } as usize))
                }
                _ => Err(Error::new(
                    ErrorKind::Truncated,
                    0,
                    format!("{} chunk has no header", encoding_name(enc)),
                )),
            }
        }
        n => Err(unknown(n)),
    }
}

#[cold]
fn unknown(n: u8) -> Error {
    Error::new(
        ErrorKind::UnknownEncoding(n),
        0,
        format!("chunk encoding {n} is unknown to this prom2om (a newer Prometheus feature?)"),
    )
}

/// A sample's value, whatever the chunk's encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// A float's bits.
    Float(u64),
    Histogram(&'a Histogram),
    FloatHistogram(&'a FloatHistogram),
}

/// Decodes a chunk body of any encoding, calling `f(st, t, value)` per sample (`st`, the start
/// time, 0 but for encodings 5 and 6): the histogram values are lent for the call. Returns the
/// number of samples.
pub fn decode_samples(
    enc: u8,
    data: &[u8],
    mut f: impl FnMut(i64, i64, Value<'_>),
) -> Result<usize> {
    let st = matches!(enc, ENC_HISTOGRAM_ST | ENC_FLOAT_HISTOGRAM_ST);
    match enc {
        ENC_XOR => xor::decode(data, |t, v| f(0, t, Value::Float(v))),
        ENC_XOR2 => xor2::decode(data, |t, v| f(0, t, Value::Float(v))),
        ENC_HISTOGRAM | ENC_HISTOGRAM_ST => histogram::decode(data, st, |s: Sample<'_, _>| {
            f(s.st, s.t, Value::Histogram(s.h))
        }),
        ENC_FLOAT_HISTOGRAM | ENC_FLOAT_HISTOGRAM_ST => {
            float_histogram::decode(data, st, |s| f(s.st, s.t, Value::FloatHistogram(s.h)))
        }
        n => Err(unknown(n)),
    }
}

/// Fuzz logic: arbitrary bytes as a chunk body of every encoding, through [`decode_samples`].
pub fn fuzz_chunk_samples(data: &[u8]) {
    for enc in 0..=7 {
        let _ = decode_samples(enc, data, |_, _, _| {});
    }
}

#[cfg(test)]
#[path = "chunkenc_tests.rs"]
mod tests;
