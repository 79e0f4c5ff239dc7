//! A remote-write request being filled, in remote write 1.0 (`prometheus.WriteRequest`) or 2.0
//! (`io.prometheus.write.v2.Request`): each series' floats and native histograms in time order,
//! its body and headers, and the check of what a 2.0 receiver says it wrote.
//!
//! A receiver appends an entry's floats before its histograms, and 2.0 allows only one kind per
//! entry: a series that changes type gets one entry per run of one kind, in order.

use anyhow::{bail, Result};

use crate::format::histogram::{CounterResetHint, HistogramValue};
use crate::format::prompb::{self, v2, Histogram, Label, Sample, TimeSeries, WriteRequest};

/// The protocol a push speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V1,
    V2,
}

impl Protocol {
    /// The request headers of this protocol's body.
    pub fn headers(self) -> [(&'static str, &'static str); 3] {
        let (ct, version) = match self {
            Protocol::V1 => (prompb::WRITE_CONTENT_TYPE, prompb::WRITE_VERSION),
            Protocol::V2 => (v2::CONTENT_TYPE, v2::VERSION),
        };
        [
            ("Content-Encoding", "snappy"),
            ("Content-Type", ct),
            ("X-Prometheus-Remote-Write-Version", version),
        ]
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "remote write 1.0",
            Protocol::V2 => "remote write 2.0",
        }
    }
}

/// What the open entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Run {
    Floats,
    Histograms,
}

/// One request being filled: its entries in 1.0's shape (one kind per entry, in order), which
/// the body gives in the request's protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    protocol: Protocol,
    entries: WriteRequest,
    /// The series the next samples belong to, and the kind of its open entry (none yet).
    labels: Vec<Label>,
    run: Option<Run>,
    floats: usize,
    histograms: usize,
}

impl Request {
    pub fn new(protocol: Protocol) -> Request {
        Request {
            protocol,
            entries: WriteRequest::default(),
            labels: Vec::new(),
            run: None,
            floats: 0,
            histograms: 0,
        }
    }

    /// A request of `entries` (each of one kind), e.g. what is left of another once the
    /// receiver was found to hold part of it.
    pub fn from_entries(protocol: Protocol, entries: WriteRequest) -> Request {
        let floats = entries.timeseries.iter().map(|t| t.samples.len()).sum();
        let histograms = entries.timeseries.iter().map(|t| t.histograms.len()).sum();
        Request {
            protocol,
            entries,
            labels: Vec::new(),
            run: None,
            floats,
            histograms,
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The entries so far, in order, each of one kind (samples or histograms).
    pub fn entries(&self) -> &WriteRequest {
        &self.entries
    }

    /// The next samples are of `labels` (sorted by name).
    pub fn series(&mut self, labels: Vec<Label>) {
        self.labels = labels;
        self.run = None;
    }

    /// Samples of both kinds so far.
    pub fn len(&self) -> usize {
        self.floats + self.histograms
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (float samples, histogram samples) so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.floats, self.histograms)
    }

    /// An empty request of the same protocol, continuing the same series.
    pub fn take(&mut self) -> Request {
        let mut next = Request::new(self.protocol);
        next.labels = self.labels.clone();
        std::mem::replace(self, next)
    }

    /// The open entry of `run` for the current series: a new one unless the open one is of
    /// that kind.
    fn open(&mut self, run: Run) -> &mut TimeSeries {
        if self.run != Some(run) {
            self.run = Some(run);
            self.entries.timeseries.push(TimeSeries {
                labels: self.labels.clone(),
                samples: Vec::new(),
                histograms: Vec::new(),
            });
        }
        self.entries.timeseries.last_mut().expect("opened")
    }

    /// A float sample (a staleness marker too) of the current series.
    pub fn float(&mut self, value: f64, timestamp: i64) {
        self.open(Run::Floats)
            .samples
            .push(Sample { value, timestamp });
        self.floats += 1;
    }

    /// A native histogram sample (a staleness marker too) of the current series.
    pub fn histogram(&mut self, h: &HistogramValue, timestamp: i64) {
        let m = Histogram::from_model(h, timestamp);
        self.open(Run::Histograms).histograms.push(m);
        self.histograms += 1;
    }

    /// The request body: the protocol's message, snappy-compressed.
    pub fn body(&self) -> Vec<u8> {
        match self.protocol {
            Protocol::V1 => self.entries.encode_body(),
            Protocol::V2 => self.v2().encode_body(),
        }
    }

    /// The entries as a 2.0 request: a histogram entry says its type (a gauge histogram's
    /// hint makes it a gauge histogram), as Prometheus's sender does.
    fn v2(&self) -> v2::Request {
        let mut b = v2::Builder::new();
        for e in &self.entries.timeseries {
            let ts = b.series(&e.labels);
            ts.samples.clone_from(&e.samples);
            ts.histograms.clone_from(&e.histograms);
            if let Some(h) = e.histograms.first() {
                let kind = match h.reset_hint {
                    x if x == CounterResetHint::Gauge as i32 => v2::METRIC_TYPE_GAUGEHISTOGRAM,
                    _ => v2::METRIC_TYPE_HISTOGRAM,
                };
                ts.metadata = Some(v2::Metadata {
                    r#type: kind,
                    help_ref: 0,
                    unit_ref: 0,
                });
            }
        }
        b.finish()
    }

    pub fn headers(&self) -> [(&'static str, &'static str); 3] {
        self.protocol.headers()
    }

    /// The first entry's labels and first time, to name a refused request.
    pub fn first(&self) -> Option<(Vec<Label>, i64)> {
        let ts = self.entries.timeseries.first()?;
        let t = ts
            .samples
            .first()
            .map(|s| s.timestamp)
            .or_else(|| ts.histograms.first().map(|h| h.timestamp))
            .unwrap_or(0);
        Some((ts.labels.clone(), t))
    }

    /// After a 2xx to a 2.0 request: the receiver's `Written` headers must count all of it (a
    /// 2xx without them is a 1.0 receiver that read an empty request). `header` gives a
    /// response header's value.
    pub fn check_written(&self, header: impl Fn(&str) -> Option<String>) -> Result<()> {
        if self.protocol != Protocol::V2 {
            return Ok(());
        }
        let count = |name: &str| -> Result<Option<u64>> {
            match header(name) {
                None => Ok(None),
                Some(v) => match v.trim().parse() {
                    Ok(n) => Ok(Some(n)),
                    Err(_) => bail!("the receiver's {name} is {v:?}, not a count"),
                },
            }
        };
        let (samples, histograms) = (count(v2::SAMPLES_WRITTEN)?, count(v2::HISTOGRAMS_WRITTEN)?);
        if samples.is_none() && histograms.is_none() {
            bail!(
                "the receiver answered a remote write 2.0 request with success but without the \
                 X-Prometheus-Remote-Write-*-Written headers: a 1.0 receiver, which read an \
                 empty request"
            );
        }
        let (s, h) = (samples.unwrap_or(0), histograms.unwrap_or(0));
        if s != self.floats as u64 || h != self.histograms as u64 {
            bail!(
                "the receiver says it wrote {s} samples and {h} histogram samples of the {} and \
                 {} sent",
                self.floats,
                self.histograms
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::histogram::Histogram as IntHistogram;

    fn labels(name: &str) -> Vec<Label> {
        vec![Label {
            name: "__name__".into(),
            value: name.into(),
        }]
    }

    fn hist(k: u64) -> HistogramValue {
        HistogramValue::Int(IntHistogram {
            count: k,
            ..IntHistogram::default()
        })
    }

    /// A series that changes type: one entry per run, in order, in either protocol; full
    /// requests continue the series.
    #[test]
    fn runs_of_one_kind_each_get_an_entry() {
        for protocol in [Protocol::V1, Protocol::V2] {
            let mut r = Request::new(protocol);
            r.series(labels("a"));
            r.float(1.0, 1);
            r.histogram(&hist(1), 2);
            r.histogram(&hist(2), 3);
            r.float(2.0, 4);
            r.series(labels("b"));
            r.histogram(&hist(3), 1);
            assert_eq!(r.counts(), (2, 3));
            let full = r.take();
            r.float(3.0, 5);
            assert_eq!(r.first().unwrap(), (labels("b"), 5));
            let runs: Vec<(String, usize, usize)> = match protocol {
                Protocol::V1 => {
                    let req = WriteRequest::decode_body(&full.body()).unwrap();
                    req.timeseries
                        .iter()
                        .map(|t| {
                            (
                                t.labels[0].value.clone(),
                                t.samples.len(),
                                t.histograms.len(),
                            )
                        })
                        .collect()
                }
                Protocol::V2 => {
                    let req = v2::Request::decode_body(&full.body()).unwrap();
                    req.timeseries
                        .iter()
                        .map(|t| {
                            let l = req.labels(t).unwrap();
                            (l[0].value.clone(), t.samples.len(), t.histograms.len())
                        })
                        .collect()
                }
            };
            let want = [("a", 1, 0), ("a", 0, 2), ("a", 1, 0), ("b", 0, 1)];
            let want: Vec<(String, usize, usize)> = want
                .iter()
                .map(|(n, s, h)| (n.to_string(), *s, *h))
                .collect();
            assert_eq!(runs, want, "{protocol:?}");
        }
    }

    #[test]
    fn written_headers_must_count_everything() {
        let mut r = Request::new(Protocol::V2);
        r.series(labels("a"));
        r.float(1.0, 1);
        r.histogram(&hist(1), 2);
        let answer = |s: &'static str, h: &'static str| {
            move |name: &str| match name {
                v2::SAMPLES_WRITTEN => Some(s.to_string()),
                v2::HISTOGRAMS_WRITTEN => Some(h.to_string()),
                _ => None,
            }
        };
        r.check_written(answer("1", "1")).unwrap();
        let e = r.check_written(answer("1", "0")).unwrap_err().to_string();
        assert!(e.contains("wrote 1 samples and 0 histogram"), "{e}");
        let e = r.check_written(|_| None).unwrap_err().to_string();
        assert!(e.contains("1.0 receiver"), "{e}");
        assert!(r.check_written(answer("x", "1")).is_err());
        // 1.0 has no such headers.
        Request::new(Protocol::V1).check_written(|_| None).unwrap();
    }
}
