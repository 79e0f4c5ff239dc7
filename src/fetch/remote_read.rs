//! Prometheus remote read (`POST /api/v1/read`): the protobuf messages of `prompb/remote.proto`
//! and `types.proto`, the snappy-compressed request, the streamed response (frames of uvarint
//! length, big-endian CRC32-Castagnoli, `ChunkedReadResponse`) and the `SAMPLES` fallback.

use std::io::BufRead;

use anyhow::{bail, Context, Result};
use prost::Message;

use super::plan::{Match, Op};
use crate::format::histogram::HistogramValue;
pub use crate::format::prompb::{Label, Sample, TimeSeries};
use crate::format::tsdb::chunkenc::{self, Value};
use crate::format::tsdb::xor;
use crate::labels::Labels;

#[derive(Clone, PartialEq, Message)]
pub struct ReadRequest {
    #[prost(message, repeated, tag = "1")]
    pub queries: Vec<Query>,
    #[prost(enumeration = "ResponseType", repeated, tag = "2")]
    pub accepted_response_types: Vec<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    Samples = 0,
    StreamedXorChunks = 1,
}

#[derive(Clone, PartialEq, Message)]
pub struct Query {
    #[prost(int64, tag = "1")]
    pub start_timestamp_ms: i64,
    #[prost(int64, tag = "2")]
    pub end_timestamp_ms: i64,
    #[prost(message, repeated, tag = "3")]
    pub matchers: Vec<LabelMatcher>,
}

#[derive(Clone, PartialEq, Message)]
pub struct LabelMatcher {
    /// EQ = 0, NEQ = 1, RE = 2, NRE = 3.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(string, tag = "3")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub results: Vec<QueryResult>,
}

#[derive(Clone, PartialEq, Message)]
pub struct QueryResult {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<ReadSeries>,
}

/// `prompb.TimeSeries` as a `SAMPLES` response holds it: samples and native histograms.
#[derive(Clone, PartialEq, Message)]
pub struct ReadSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<crate::format::prompb::Histogram>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ChunkedReadResponse {
    #[prost(message, repeated, tag = "1")]
    pub chunked_series: Vec<ChunkedSeries>,
    #[prost(int64, tag = "2")]
    pub query_index: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ChunkedSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub chunks: Vec<Chunk>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Chunk {
    #[prost(int64, tag = "1")]
    pub min_time_ms: i64,
    #[prost(int64, tag = "2")]
    pub max_time_ms: i64,
    /// UNKNOWN = 0, XOR = 1, HISTOGRAM = 2, FLOAT_HISTOGRAM = 3.
    #[prost(int32, tag = "3")]
    pub r#type: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
}

const CHUNK_XOR: i32 = 1;
const CHUNK_HISTOGRAM: i32 = 2;
const CHUNK_FLOAT_HISTOGRAM: i32 = 3;
/// Far above Prometheus' 1 MiB default frame size, low enough to stop a garbage length.
const MAX_FRAME: u64 = 256 << 20;
pub const STREAMED_CONTENT_TYPE: &str = "application/x-streamed-protobuf";

/// The snappy-compressed `ReadRequest` for one query over `[start_ms, end_ms]`, asking for
/// streamed XOR chunks first (or only for samples when `streamed` is false).
pub fn encode_request(matchers: &[Match], start_ms: i64, end_ms: i64, streamed: bool) -> Vec<u8> {
    let q = Query {
        start_timestamp_ms: start_ms,
        end_timestamp_ms: end_ms,
        matchers: matchers
            .iter()
            .map(|m| LabelMatcher {
                r#type: match m.op {
                    Op::Eq => 0,
                    Op::Ne => 1,
                    Op::Re => 2,
                    Op::Nre => 3,
                },
                name: m.name.clone(),
                value: m.value.clone(),
            })
            .collect(),
    };
    let types = if streamed {
        vec![
            ResponseType::StreamedXorChunks as i32,
            ResponseType::Samples as i32,
        ]
    } else {
        vec![ResponseType::Samples as i32]
    };
    let req = ReadRequest {
        queries: vec![q],
        accepted_response_types: types,
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy accepts any input below 4 GiB")
}

/// One series as a method returned it, restricted to the query's time range.
#[derive(Debug, Default)]
pub struct SeriesData {
    pub labels: Labels,
    /// Samples with their exact bits, staleness markers (`0x7ff0000000000002`) included.
    pub samples: Vec<(i64, f64)>,
    /// Of those, staleness markers.
    pub stale_markers: u64,
    /// Native histograms in time order (exact from remote read, their markers included).
    pub histograms: Vec<(i64, HistogramValue)>,
    /// Of those, staleness markers.
    pub histogram_stale_markers: u64,
    /// Native histogram points a method cannot export (`query_range`'s).
    pub histograms_skipped: u64,
    /// Of the histograms `--method raw` rebuilt from JSON, what it took from other samples.
    pub guessed: super::histjson::Guessed,
}

/// Reads the frames of a streamed response: `uvarint(len) crc32c_be(data) data`.
pub struct FrameReader<R> {
    r: R,
    buf: Vec<u8>,
}

impl<R: BufRead> FrameReader<R> {
    pub fn new(r: R) -> Self {
        FrameReader { r, buf: Vec::new() }
    }

    /// The next frame's payload, `None` at a clean end of stream; every CRC is checked.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>> {
        let Some(len) = read_uvarint(&mut self.r)? else {
            return Ok(None);
        };
        if len > MAX_FRAME {
            bail!("frame of {len} bytes announced: not a remote read stream");
        }
        let mut crc = [0u8; 4];
        self.r
            .read_exact(&mut crc)
            .context("stream ends inside a frame header")?;
        self.buf.resize(len as usize, 0);
        self.r
            .read_exact(&mut self.buf)
            .context("stream ends inside a frame")?;
        let want = u32::from_be_bytes(crc);
        let got = crc32c::crc32c(&self.buf);
        if got != want {
            bail!("corrupted frame: CRC32C {got:08x}, header says {want:08x}");
        }
        Ok(Some(&self.buf))
    }
}

/// Go's `binary.ReadUvarint`; `None` on EOF before the first byte.
fn read_uvarint(r: &mut impl BufRead) -> Result<Option<u64>> {
    let mut x = 0u64;
    for i in 0..10 {
        let mut b = [0u8];
        match r.read(&mut b) {
            Ok(0) if i == 0 => return Ok(None),
            Ok(0) => bail!("stream ends inside a frame length"),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the remote read stream"),
        }
        let b = b[0];
        if b < 0x80 {
            return Ok(Some(x | (b as u64) << (7 * i)));
        }
        x |= ((b & 0x7f) as u64) << (7 * i);
    }
    bail!("frame length overflows 64 bits: not a remote read stream")
}

/// Decodes a streamed response, calling `emit` once per complete series (a series may span
/// several frames; it is complete when another starts or the stream ends).
pub fn read_streamed<R: BufRead>(
    r: R,
    start_ms: i64,
    end_ms: i64,
    mut emit: impl FnMut(SeriesData) -> Result<()>,
) -> Result<()> {
    let mut frames = FrameReader::new(r);
    let mut cur: Option<(Vec<Label>, SeriesData)> = None;
    while let Some(frame) = frames.next_frame()? {
        let msg = ChunkedReadResponse::decode(frame).context("bad ChunkedReadResponse frame")?;
        for cs in msg.chunked_series {
            if cur.as_ref().is_some_and(|(l, _)| *l != cs.labels) {
                let (_, done) = cur.take().expect("checked");
                emit(finish(done))?;
            }
            let (_, sd) = cur.get_or_insert_with(|| {
                let labels = to_labels(&cs.labels);
                (
                    cs.labels.clone(),
                    SeriesData {
                        labels,
                        ..Default::default()
                    },
                )
            });
            for c in &cs.chunks {
                add_chunk(sd, c, start_ms, end_ms)?;
            }
        }
    }
    if let Some((_, done)) = cur {
        emit(finish(done))?;
    }
    Ok(())
}

fn add_chunk(sd: &mut SeriesData, c: &Chunk, start_ms: i64, end_ms: i64) -> Result<()> {
    if c.max_time_ms < start_ms || c.min_time_ms > end_ms {
        return Ok(());
    }
    let res = match c.r#type {
        CHUNK_XOR => {
            let samples = &mut sd.samples;
            let stale = &mut sd.stale_markers;
            xor::decode(&c.data, |t, bits| {
                if t < start_ms || t > end_ms {
                    return;
                }
                *stale += u64::from(bits == xor::STALE_NAN_BITS);
                samples.push((t, f64::from_bits(bits)));
            })
        }
        // The chunk types are the TSDB's encodings: 2 histogram, 3 float histogram.
        CHUNK_HISTOGRAM | CHUNK_FLOAT_HISTOGRAM => {
            let hists = &mut sd.histograms;
            let stale = &mut sd.histogram_stale_markers;
            chunkenc::decode_samples(c.r#type as u8, &c.data, |_, t, v| {
                if t < start_ms || t > end_ms {
                    return;
                }
                let h = match v {
                    Value::Histogram(h) => HistogramValue::Int(h.clone()),
                    Value::FloatHistogram(h) => HistogramValue::Float(h.clone()),
                    Value::Float(_) => unreachable!("a histogram chunk holds histograms"),
                };
                *stale += u64::from(h.is_stale());
                hists.push((t, h));
            })
        }
        n => bail!(
            "series {}: remote read chunk of unknown type {n}",
            sd.labels
        ),
    };
    res.with_context(|| format!("series {}", sd.labels))?;
    Ok(())
}

/// Chunks "may overlap": order by time and keep the first sample of each timestamp, of each
/// kind.
fn finish(mut sd: SeriesData) -> SeriesData {
    if !sd.samples.windows(2).all(|w| w[0].0 < w[1].0) {
        sd.samples.sort_by_key(|s| s.0);
        sd.samples.dedup_by_key(|s| s.0);
    }
    let h = &mut sd.histograms;
    if !h.windows(2).all(|w| w[0].0 < w[1].0) {
        h.sort_by_key(|s| s.0);
        h.dedup_by_key(|s| s.0);
        sd.histogram_stale_markers = h.iter().filter(|s| s.1.is_stale()).count() as u64;
    }
    sd
}

/// Decodes a `SAMPLES` response: one snappy-compressed `ReadResponse`.
pub fn read_samples(
    body: &[u8],
    start_ms: i64,
    end_ms: i64,
    mut emit: impl FnMut(SeriesData) -> Result<()>,
) -> Result<()> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .context("remote read response is not snappy-compressed")?;
    let resp = ReadResponse::decode(raw.as_slice()).context("bad ReadResponse")?;
    for qr in resp.results {
        for ts in qr.timeseries {
            let mut sd = SeriesData {
                labels: to_labels(&ts.labels),
                ..Default::default()
            };
            for s in ts.samples {
                if s.timestamp < start_ms || s.timestamp > end_ms {
                    continue;
                }
                sd.stale_markers += u64::from(s.value.to_bits() == xor::STALE_NAN_BITS);
                sd.samples.push((s.timestamp, s.value));
            }
            for h in ts.histograms {
                if h.timestamp < start_ms || h.timestamp > end_ms {
                    continue;
                }
                let v = h.to_model();
                sd.histogram_stale_markers += u64::from(v.is_stale());
                sd.histograms.push((h.timestamp, v));
            }
            emit(finish(sd))?;
        }
    }
    Ok(())
}

/// Fuzz logic: arbitrary bytes as a streamed response and as a `SAMPLES` response (snappy
/// block); never panics.
pub fn fuzz_remote_read(data: &[u8]) {
    let _ = read_streamed(data, i64::MIN, i64::MAX, |_| Ok(()));
    let _ = read_samples(data, i64::MIN, i64::MAX, |_| Ok(()));
}

fn to_labels(ls: &[Label]) -> Labels {
    Labels::from_pairs(ls.iter().map(|l| (l.name.as_str(), l.value.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tsdb::xor::tests::encode;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_responses_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..300),
            typ in 0i32..5,
        ) {
            fuzz_remote_read(&data);
            // A well-framed stream around a chunk of random bytes, of each chunk type.
            let stream = frame(&ChunkedReadResponse {
                chunked_series: vec![series("a", vec![Chunk {
                    min_time_ms: 0,
                    max_time_ms: 10,
                    r#type: typ,
                    data: data.clone(),
                }])],
                query_index: 0,
            });
            fuzz_remote_read(&stream);
            let body = snap::raw::Encoder::new().compress_vec(&data).unwrap();
            fuzz_remote_read(&body);
        }
    }

    fn frame(msg: &impl Message) -> Vec<u8> {
        let data = msg.encode_to_vec();
        let mut out = Vec::new();
        let mut n = data.len() as u64;
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(&crc32c::crc32c(&data).to_be_bytes());
        out.extend_from_slice(&data);
        out
    }

    fn series(name: &str, chunks: Vec<Chunk>) -> ChunkedSeries {
        ChunkedSeries {
            labels: vec![Label {
                name: "__name__".into(),
                value: name.into(),
            }],
            chunks,
        }
    }

    fn xor_chunk(samples: &[(i64, u64)]) -> Chunk {
        Chunk {
            min_time_ms: samples[0].0,
            max_time_ms: samples.last().unwrap().0,
            r#type: CHUNK_XOR,
            data: encode(samples),
        }
    }

    #[test]
    fn series_split_over_frames_stale_and_histograms() {
        let a1 = xor_chunk(&[(0, 1.0f64.to_bits()), (10, xor::STALE_NAN_BITS)]);
        let a2 = xor_chunk(&[(20, f64::NAN.to_bits()), (30, 4.0f64.to_bits())]);
        let h = |n: u64| crate::format::histogram::Histogram {
            count: n,
            ..Default::default()
        };
        let stale = crate::format::histogram::Histogram::stale();
        let samples = [(-5, h(1)), (40, h(2)), (45, stale)];
        let hist = Chunk {
            min_time_ms: -5,
            max_time_ms: 45,
            r#type: CHUNK_HISTOGRAM,
            data: crate::format::tsdb::histogram::encode(&samples).unwrap(),
        };
        let b = xor_chunk(&[(5, 2.0f64.to_bits()), (99, 3.0f64.to_bits())]);
        let mut stream = frame(&ChunkedReadResponse {
            chunked_series: vec![series("a", vec![a1])],
            query_index: 0,
        });
        stream.extend(frame(&ChunkedReadResponse {
            chunked_series: vec![series("a", vec![a2, hist]), series("b", vec![b])],
            query_index: 0,
        }));
        let mut got = Vec::new();
        read_streamed(stream.as_slice(), 0, 50, |s| {
            got.push(s);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].labels.metric_name(), "a");
        let ts: Vec<_> = got[0].samples.iter().map(|s| s.0).collect();
        assert_eq!(ts, [0, 10, 20, 30]);
        // The marker keeps its exact bits; the real NaN its own.
        assert_eq!(got[0].samples[1].1.to_bits(), xor::STALE_NAN_BITS);
        assert_eq!(got[0].samples[2].1.to_bits(), f64::NAN.to_bits());
        assert_eq!(got[0].stale_markers, 1);
        // The histogram chunk's samples in [0, 50], the marker with its bits.
        let hs: Vec<_> = got[0].histograms.iter().map(|s| s.0).collect();
        assert_eq!(hs, [40, 45]);
        let HistogramValue::Int(first) = &got[0].histograms[0].1 else {
            panic!("an integer histogram")
        };
        assert_eq!(first.count, 2);
        assert!(got[0].histograms[1].1.is_stale());
        assert_eq!(got[0].histogram_stale_markers, 1);
        // A chunk of a type no Prometheus writes is an error, not a silent skip.
        let odd = Chunk {
            r#type: 7,
            ..xor_chunk(&[(1, 1)])
        };
        let stream = frame(&ChunkedReadResponse {
            chunked_series: vec![series("c", vec![odd])],
            query_index: 0,
        });
        let e = read_streamed(stream.as_slice(), 0, 50, |_| Ok(())).unwrap_err();
        assert!(format!("{e:#}").contains("unknown type 7"), "{e:#}");
        // Out of [0, 50]: the sample at 99 is dropped.
        assert_eq!(got[1].samples, vec![(5, 2.0)]);
    }

    #[test]
    fn crc_mismatch_and_truncation_fail() {
        let mut stream = frame(&ChunkedReadResponse {
            chunked_series: vec![series("a", vec![xor_chunk(&[(1, 1)])])],
            query_index: 0,
        });
        let ok = stream.clone();
        let last = stream.len() - 1;
        stream[last] ^= 1;
        let err = read_streamed(stream.as_slice(), 0, 9, |_| Ok(())).unwrap_err();
        assert!(format!("{err:#}").contains("CRC32C"), "{err:#}");
        for cut in 1..ok.len() {
            assert!(read_streamed(&ok[..cut], 0, 9, |_| Ok(())).is_err());
        }
        assert!(read_streamed(&[][..], 0, 9, |_| Ok(())).is_ok());
    }

    #[test]
    fn overlapping_chunks_are_merged() {
        let c1 = xor_chunk(&[(0, 1), (10, 2), (20, 3)]);
        let c2 = xor_chunk(&[(10, 2), (15, 9), (20, 3)]);
        let stream = frame(&ChunkedReadResponse {
            chunked_series: vec![series("a", vec![c1, c2])],
            query_index: 0,
        });
        let mut got = Vec::new();
        read_streamed(stream.as_slice(), 0, 100, |s| {
            got.push(s);
            Ok(())
        })
        .unwrap();
        let ts: Vec<_> = got[0].samples.iter().map(|s| s.0).collect();
        assert_eq!(ts, [0, 10, 15, 20]);
    }

    #[test]
    fn samples_response_and_request_roundtrip() {
        let resp = ReadResponse {
            results: vec![QueryResult {
                timeseries: vec![ReadSeries {
                    histograms: vec![crate::format::prompb::Histogram {
                        count: Some(crate::format::prompb::Count::Float(1.5)),
                        sum: Some(2.0),
                        timestamp: 3,
                        ..Default::default()
                    }],
                    labels: vec![Label {
                        name: "__name__".into(),
                        value: "m".into(),
                    }],
                    samples: vec![
                        Sample {
                            value: 1.0,
                            timestamp: 1,
                        },
                        Sample {
                            value: f64::from_bits(xor::STALE_NAN_BITS),
                            timestamp: 2,
                        },
                    ],
                }],
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&resp.encode_to_vec())
            .unwrap();
        let mut got = Vec::new();
        read_samples(&body, 0, 10, |s| {
            got.push(s);
            Ok(())
        })
        .unwrap();
        assert_eq!(got[0].samples[0], (1, 1.0));
        assert_eq!(got[0].samples[1].1.to_bits(), xor::STALE_NAN_BITS);
        assert_eq!(got[0].stale_markers, 1);
        let HistogramValue::Float(h) = &got[0].histograms[0].1 else {
            panic!("a float histogram")
        };
        assert_eq!((got[0].histograms[0].0, h.count), (3, 1.5f64.to_bits()));

        let m = Match {
            name: "job".into(),
            op: Op::Re,
            value: "a.*".into(),
        };
        let req = encode_request(&[m], 5, 6, true);
        let raw = snap::raw::Decoder::new().decompress_vec(&req).unwrap();
        let back = ReadRequest::decode(raw.as_slice()).unwrap();
        assert_eq!(back.accepted_response_types, vec![1, 0]);
        assert_eq!(back.queries[0].matchers[0].r#type, 2);
        assert_eq!(back.queries[0].end_timestamp_ms, 6);
    }
}
