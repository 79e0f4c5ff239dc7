//! Remote write 2.0's `io.prometheus.write.v2.Request` (spec 2.0-rc.4, Prometheus's
//! `prompb/io/prometheus/write/v2/types.proto`): every string once in a symbols table, series as
//! label references, floats or native histograms (NHCB with their custom bounds), metadata.

use std::collections::HashMap;

use anyhow::{bail, Result};
use prost::Message;

use super::{Histogram, Label, Sample};

/// The content type that names the 2.0 message.
pub const CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
/// The `X-Prometheus-Remote-Write-Version` of the 2.0 protocol.
pub const VERSION: &str = "2.0.0";
/// The response headers by which a 2.0 receiver says what it wrote (all three, always).
pub const SAMPLES_WRITTEN: &str = "X-Prometheus-Remote-Write-Samples-Written";
pub const HISTOGRAMS_WRITTEN: &str = "X-Prometheus-Remote-Write-Histograms-Written";
pub const EXEMPLARS_WRITTEN: &str = "X-Prometheus-Remote-Write-Exemplars-Written";

/// The request: fields 1 to 3 are reserved, so a 1.0 receiver that decodes it as a
/// `prometheus.WriteRequest` reads an empty request.
#[derive(Clone, PartialEq, Message)]
pub struct Request {
    /// Every string the series use, the first one "".
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series' floats or histograms (never both), in time order.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Name and value references into `symbols`, pairs sorted by name.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
}

/// What kind of metric a series is; help and unit as symbol references (0: none).
#[derive(Clone, PartialEq, Message)]
pub struct Metadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// `Metadata.MetricType` values prom2om sends: it knows a histogram series' kind from its
/// samples' reset hints, and nothing of a float series.
pub const METRIC_TYPE_UNSPECIFIED: i32 = 0;
pub const METRIC_TYPE_HISTOGRAM: i32 = 3;
pub const METRIC_TYPE_GAUGEHISTOGRAM: i32 = 4;

/// Builds a request, interning strings as series are added.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    req: Request,
    index: HashMap<String, u32>,
}

impl Builder {
    pub fn new() -> Builder {
        let mut b = Builder::default();
        b.intern("");
        b
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.req.symbols.len() as u32;
        self.req.symbols.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    /// A new, empty series entry of `labels` (sorted by name, as the caller gives them);
    /// returns it for its samples or histograms.
    pub fn series(&mut self, labels: &[Label]) -> &mut TimeSeries {
        let mut refs = Vec::with_capacity(2 * labels.len());
        for l in labels {
            refs.push(self.intern(&l.name));
            refs.push(self.intern(&l.value));
        }
        self.req.timeseries.push(TimeSeries {
            labels_refs: refs,
            ..TimeSeries::default()
        });
        self.req.timeseries.last_mut().expect("pushed")
    }

    /// The series entry added last.
    pub fn last(&mut self) -> Option<&mut TimeSeries> {
        self.req.timeseries.last_mut()
    }

    pub fn is_empty(&self) -> bool {
        self.req.timeseries.is_empty()
    }

    /// The request so far.
    pub fn request(&self) -> &Request {
        &self.req
    }

    pub fn finish(self) -> Request {
        self.req
    }
}

impl Request {
    /// The request body: the protobuf, snappy-compressed in block format (not framed).
    pub fn encode_body(&self) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&self.encode_to_vec())
            .expect("snappy accepts any input below 4 GiB")
    }

    /// Reads a body as a receiver does (for tests and the fuzz target).
    pub fn decode_body(body: &[u8]) -> Result<Request> {
        let raw = snap::raw::Decoder::new().decompress_vec(body)?;
        Ok(Request::decode(&raw[..])?)
    }

    /// Float samples, histogram samples.
    pub fn counts(&self) -> (usize, usize) {
        self.timeseries.iter().fold((0, 0), |(s, h), t| {
            (s + t.samples.len(), h + t.histograms.len())
        })
    }

    /// A series' labels, resolved; an error for a reference past the table or an odd count.
    pub fn labels(&self, ts: &TimeSeries) -> Result<Vec<Label>> {
        if ts.labels_refs.len() % 2 != 0 {
            bail!("{} label references: not pairs", ts.labels_refs.len());
        }
        let sym = |r: u32| -> Result<String> {
            match self.symbols.get(r as usize) {
                Some(s) => Ok(s.clone()),
                None => bail!("label reference {r} past {} symbols", self.symbols.len()),
            }
        };
        ts.labels_refs
            .chunks(2)
            .map(|p| {
                Ok(Label {
                    name: sym(p[0])?,
                    value: sym(p[1])?,
                })
            })
            .collect()
    }
}

/// Fuzz target logic: any bytes decode or fail cleanly; what decodes resolves its labels or
/// says why, and re-encodes to a body that decodes to the same request.
pub fn fuzz_write_request_v2(data: &[u8]) {
    if let Ok(req) = Request::decode_body(data) {
        for ts in &req.timeseries {
            let _ = req.labels(ts);
            for h in &ts.histograms {
                let _ = h.to_model();
            }
        }
        let again = Request::decode_body(&req.encode_body()).expect("own encoding decodes");
        assert_eq!(again.symbols, req.symbols);
        assert_eq!(again.counts(), req.counts());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::histogram::HistogramValue;
    use crate::format::prompb::WriteRequest;
    use proptest::prelude::*;

    fn labels(v: &[(&str, &str)]) -> Vec<Label> {
        v.iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect()
    }

    /// The bytes of a known request, field by field from the 2.0 proto: symbols "" first, each
    /// string once.
    #[test]
    fn wire_bytes_follow_the_spec() {
        let mut b = Builder::new();
        let ls = labels(&[("__name__", "up"), ("job", "up")]);
        b.series(&ls).samples.push(Sample {
            value: 1.5,
            timestamp: 1000,
        });
        let req = b.finish();
        assert_eq!(req.symbols, ["", "__name__", "up", "job"]);
        let mut want = vec![0x22, 0, 0x22, 8];
        want.extend_from_slice(b"__name__");
        want.extend_from_slice(&[0x22, 2]);
        want.extend_from_slice(b"up");
        want.extend_from_slice(&[0x22, 3]);
        want.extend_from_slice(b"job");
        // series: refs [1, 2, 3, 2] packed, one sample.
        want.extend_from_slice(&[0x2a, 20, 0x0a, 4, 1, 2, 3, 2, 0x12, 12, 0x09]);
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xe8, 0x07]);
        assert_eq!(req.encode_to_vec(), want);
        assert_eq!(Request::decode_body(&req.encode_body()).unwrap(), req);
        assert_eq!(req.labels(&req.timeseries[0]).unwrap(), ls);
    }

    /// What the spec's negotiation rests on: a 1.0 receiver reading a 2.0 body reads nothing.
    #[test]
    fn a_1_0_receiver_reads_an_empty_request() {
        let mut b = Builder::new();
        b.series(&labels(&[("__name__", "x")]))
            .samples
            .push(Sample {
                value: 1.0,
                timestamp: 1,
            });
        let raw = b.finish().encode_to_vec();
        let v1 = WriteRequest::decode(&raw[..]).unwrap();
        assert!(v1.timeseries.is_empty());
    }

    #[test]
    fn bad_references_are_refused() {
        let req = Request {
            symbols: vec!["".into(), "a".into()],
            timeseries: vec![
                TimeSeries {
                    labels_refs: vec![1, 7],
                    ..TimeSeries::default()
                },
                TimeSeries {
                    labels_refs: vec![1],
                    ..TimeSeries::default()
                },
            ],
        };
        assert!(req.labels(&req.timeseries[0]).is_err());
        assert!(req.labels(&req.timeseries[1]).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(series in prop::collection::vec(
            (prop::collection::vec(("[a-z_]{1,4}", "\\PC{0,6}"), 1..4),
             prop::collection::vec((any::<u64>(), any::<i64>()), 0..4),
             prop::collection::vec((crate::format::prompb::histogram::tests::histogram(), any::<i64>()), 0..3)), 0..5)) {
            let mut b = Builder::new();
            for (ls, ss, hs) in &series {
                let ls: Vec<(&str, &str)> = ls.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                let ts = b.series(&labels(&ls));
                ts.samples = ss.iter().map(|&(v, t)| Sample { value: f64::from_bits(v), timestamp: t }).collect();
                ts.histograms = hs.iter().map(|(h, t)| Histogram::from_model(h, *t)).collect();
            }
            let req = b.finish();
            fuzz_write_request_v2(&req.encode_body());
            let back = Request::decode_body(&req.encode_body()).unwrap();
            // Each string once.
            let mut syms = back.symbols.clone();
            syms.sort();
            syms.dedup();
            prop_assert_eq!(syms.len(), back.symbols.len());
            for ((ls, ss, hs), ts) in series.iter().zip(&back.timeseries) {
                let got: Vec<(String, String)> = back.labels(ts).unwrap().into_iter().map(|l| (l.name, l.value)).collect();
                prop_assert_eq!(&got, ls);
                let bits: Vec<(u64, i64)> = ts.samples.iter().map(|s| (s.value.to_bits(), s.timestamp)).collect();
                prop_assert_eq!(&bits, ss);
                let h: Vec<(HistogramValue, i64)> = ts.histograms.iter().map(|h| (h.to_model(), h.timestamp)).collect();
                prop_assert_eq!(&h, hs);
            }
        }

        #[test]
        fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
            fuzz_write_request_v2(&data);
        }
    }
}
