//! Chunk encoding dispatch (`tsdb/chunkenc`): float chunks (1 XOR, 4 XOR2) are decoded, native
//! histogram chunks (2, 3, and the start-timestamp variants 5, 6) are counted and skipped, and an
//! unknown encoding is an error naming it, never a silent skip.

use super::{xor, xor2, Error, ErrorKind, Result};

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

/// Decodes a chunk body (the bytes after the encoding byte). Float samples go to
/// `f(timestamp_ms, value_bits)`. Offsets in errors are relative to the chunk body
/// ([`Error::shifted`] by where the body lies gives the file's).
pub fn decode(enc: u8, data: &[u8], f: impl FnMut(i64, u64)) -> Result<Decoded> {
    match enc {
        ENC_XOR => xor::decode(data, f).map(Decoded::Floats),
        ENC_XOR2 => xor2::decode(data, f).map(Decoded::Floats),
        ENC_HISTOGRAM | ENC_FLOAT_HISTOGRAM | ENC_HISTOGRAM_ST | ENC_FLOAT_HISTOGRAM_ST => {
            // Every chunk starts with its BE16 sample count.
            match data {
                [a, b, ..] => Ok(Decoded::Histograms(u16::from_be_bytes([*a, *b]) as usize)),
                _ => Err(Error::new(
                    ErrorKind::Truncated,
                    0,
                    format!("{} chunk has no header", encoding_name(enc)),
                )),
            }
        }
        n => Err(Error::new(
            ErrorKind::UnknownEncoding(n),
            0,
            format!("chunk encoding {n} is unknown to this prom2om (a newer Prometheus feature?)"),
        )),
    }
}

#[cfg(test)]
#[path = "chunkenc_tests.rs"]
mod tests;
