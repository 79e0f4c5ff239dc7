//! The protobuf messages Prometheus' remote read and remote write 1.0 share (`prompb/types.proto`),
//! the remote-write `WriteRequest`, and its wire form: snappy block format, as the spec requires;
//! native histograms (`histogram`), and remote write 2.0's messages (`v2`).

use prost::Message;

mod histogram;
pub mod v2;

pub use histogram::{BucketSpan, Count, Histogram, ZeroCount};

/// Content type of a remote-write 1.0 request body.
pub const WRITE_CONTENT_TYPE: &str = "application/x-protobuf";
/// The `X-Prometheus-Remote-Write-Version` of the 1.0 protocol.
pub const WRITE_VERSION: &str = "0.1.0";

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A sample. Encoded by hand: proto3 leaves out a field equal to its default, and the derived
/// (like Go's) encoder takes -0.0 for 0.0 and drops it, so the receiver would store +0. Here only
/// the bits of +0.0 are left out: -0.0 arrives as -0.0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub value: f64,
    pub timestamp: i64,
}

impl Message for Sample {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        if self.value.to_bits() != 0 {
            prost::encoding::double::encode(1, &self.value, buf);
        }
        if self.timestamp != 0 {
            prost::encoding::int64::encode(2, &self.timestamp, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        match tag {
            1 => prost::encoding::double::merge(wire_type, &mut self.value, buf, ctx),
            2 => prost::encoding::int64::merge(wire_type, &mut self.timestamp, buf, ctx),
            _ => prost::encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let v = if self.value.to_bits() != 0 {
            prost::encoding::double::encoded_len(1, &self.value)
        } else {
            0
        };
        let t = if self.timestamp != 0 {
            prost::encoding::int64::encoded_len(2, &self.timestamp)
        } else {
            0
        };
        v + t
    }

    fn clear(&mut self) {
        *self = Sample::default();
    }
}

/// One series: labels sorted by name (the spec's requirement for writes), samples and native
/// histogram samples each in time order (a receiver appends the samples first, then the
/// histograms: a series that changes type is sent as one entry per run of one kind).
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// `prometheus.WriteRequest` of remote write 1.0; field 3 (metadata) is never sent.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

impl WriteRequest {
    /// The request body: the protobuf, snappy-compressed in block format (not framed).
    pub fn encode_body(&self) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&self.encode_to_vec())
            .expect("snappy accepts any input below 4 GiB")
    }

    /// Reads a body as a receiver does (for tests and the fuzz target).
    pub fn decode_body(body: &[u8]) -> anyhow::Result<WriteRequest> {
        let raw = snap::raw::Decoder::new().decompress_vec(body)?;
        Ok(WriteRequest::decode(&raw[..])?)
    }

    /// Float and histogram samples.
    pub fn samples(&self) -> usize {
        self.timeseries
            .iter()
            .map(|t| t.samples.len() + t.histograms.len())
            .sum()
    }
}

/// Samples as (value bits, timestamp): NaN compares equal to itself; histograms as the model
/// (every float as bits) with their timestamps.
type SampleBits = (
    Vec<(u64, i64)>,
    Vec<(crate::format::histogram::HistogramValue, i64)>,
);

/// Fuzz target logic: any bytes either decode or fail cleanly, and what decodes re-encodes to a
/// body that decodes to the same request.
pub fn fuzz_write_request(data: &[u8]) {
    if let Ok(req) = WriteRequest::decode_body(data) {
        let again = WriteRequest::decode_body(&req.encode_body()).expect("own encoding decodes");
        // NaN != NaN: compare the bits.
        let bits = |r: &WriteRequest| -> Vec<(Vec<(String, String)>, SampleBits)> {
            r.timeseries
                .iter()
                .map(|t| {
                    (
                        t.labels
                            .iter()
                            .map(|l| (l.name.clone(), l.value.clone()))
                            .collect(),
                        (
                            t.samples
                                .iter()
                                .map(|s| (s.value.to_bits(), s.timestamp))
                                .collect(),
                            t.histograms
                                .iter()
                                .map(|h| (h.to_model(), h.timestamp))
                                .collect(),
                        ),
                    )
                })
                .collect()
        };
        assert_eq!(bits(&req), bits(&again));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The bytes of a known request, as Go's gogo-protobuf encodes it (field by field, by hand
    /// from the spec): labels {__name__="up"}, one sample (1.5, 1000).
    #[test]
    fn wire_bytes_follow_the_spec() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 1000,
                }],
                histograms: Vec::new(),
            }],
        };
        let mut want = vec![0x0a, 30, 0x0a, 14, 0x0a, 8];
        want.extend_from_slice(b"__name__");
        want.extend_from_slice(&[0x12, 2]);
        want.extend_from_slice(b"up");
        want.extend_from_slice(&[0x12, 12, 0x09]);
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(req.encode_to_vec(), want);
        let body = req.encode_body();
        assert_eq!(
            snap::raw::Decoder::new().decompress_vec(&body).unwrap(),
            want
        );
        assert_eq!(WriteRequest::decode_body(&body).unwrap(), req);
    }

    #[test]
    fn negative_zero_keeps_its_sign() {
        let s = Sample {
            value: -0.0,
            timestamp: 0,
        };
        let back = Sample::decode(&s.encode_to_vec()[..]).unwrap();
        assert_eq!(back.value.to_bits(), (-0.0f64).to_bits());
        assert!(Sample::default().encode_to_vec().is_empty());
    }

    proptest! {
        #[test]
        fn round_trip(series in prop::collection::vec(
            (prop::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..4),
             prop::collection::vec((any::<u64>(), any::<i64>()), 0..6),
             prop::collection::vec((histogram::tests::histogram(), any::<i64>()), 0..3)), 0..5)) {
            let req = WriteRequest {
                timeseries: series.iter().map(|(ls, ss, hs)| TimeSeries {
                    labels: ls.iter().map(|(n, v)| Label { name: n.clone(), value: v.clone() }).collect(),
                    samples: ss.iter().map(|&(v, t)| Sample { value: f64::from_bits(v), timestamp: t }).collect(),
                    histograms: hs.iter().map(|(h, t)| Histogram::from_model(h, *t)).collect(),
                }).collect(),
            };
            fuzz_write_request(&req.encode_body());
            let back = WriteRequest::decode_body(&req.encode_body()).unwrap();
            prop_assert_eq!(back.samples(), req.samples());
            for (b, r) in back.timeseries.iter().zip(&req.timeseries) {
                for (x, y) in b.samples.iter().zip(&r.samples) {
                    prop_assert_eq!(x.value.to_bits(), y.value.to_bits());
                    prop_assert_eq!(x.timestamp, y.timestamp);
                }
                for (x, y) in b.histograms.iter().zip(&r.histograms) {
                    prop_assert_eq!(x.to_model(), y.to_model());
                }
            }
        }

        #[test]
        fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
            fuzz_write_request(&data);
        }
    }
}
