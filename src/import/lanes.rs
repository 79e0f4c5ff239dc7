//! The lanes of a push: a shard's points cut into requests, each series always on the same lane
//! (a stable hash), and each request delivered: sent, retried, and when its fate is unknown
//! (an answer lost, a refusal for what the receiver holds) settled by asking the receiver.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::OnceLock;

use anyhow::Result;

use super::holding::{Checker, Held};
use super::rw_request::{Protocol, Request};
use crate::fetch::http::{Client, ClientConfig, Failure, GaveUp, HttpStatus};
use crate::format::histogram::HistogramValue;
use crate::format::prompb::Label;
use crate::format::shard_dir::series_hash;
use crate::labels::Labels;

/// The requests being filled, one per lane; a full one goes to its lane.
pub(super) struct Lanes<'a> {
    pub batch: usize,
    /// Each lane's request being filled.
    pub pending: Vec<Request>,
    pub txs: &'a [SyncSender<Request>],
    /// Points of each lane an earlier run delivered: left out.
    pub skip: Vec<u64>,
    lane: usize,
}

impl<'a> Lanes<'a> {
    pub fn new(
        batch: usize,
        protocol: Protocol,
        txs: &'a [SyncSender<Request>],
        skip: Vec<u64>,
    ) -> Lanes<'a> {
        Lanes {
            batch: batch.max(1),
            pending: (0..txs.len()).map(|_| Request::new(protocol)).collect(),
            txs,
            skip,
            lane: 0,
        }
    }

    /// Starts a series (labels as sent).
    pub fn series(&mut self, l: &Labels) {
        self.lane = lane_of(l, self.txs.len());
        self.pending[self.lane].series(to_proto(l));
    }

    /// The request of the current series' lane, unless the point is one an earlier run
    /// delivered.
    fn next(&mut self) -> Option<&mut Request> {
        if self.skip[self.lane] > 0 {
            self.skip[self.lane] -= 1;
            return None;
        }
        Some(&mut self.pending[self.lane])
    }

    pub fn push(&mut self, value: f64, timestamp: i64) {
        if let Some(req) = self.next() {
            req.float(value, timestamp);
            self.sent_when_full();
        }
    }

    pub fn push_histogram(&mut self, h: &HistogramValue, timestamp: i64) {
        if let Some(req) = self.next() {
            req.histogram(h, timestamp);
            self.sent_when_full();
        }
    }

    fn sent_when_full(&mut self) {
        let req = &mut self.pending[self.lane];
        if req.len() >= self.batch {
            let full = req.take();
            // A closed lane has stopped on a refusal, which the result reports.
            let _ = self.txs[self.lane].send(full);
        }
    }

    pub fn flush(self) {
        for (i, req) in self.pending.into_iter().enumerate() {
            if !req.is_empty() {
                let _ = self.txs[i].send(req);
            }
        }
    }
}

/// The lane of a series: FNV-1a of its labels as sent, stable across runs and versions, so a
/// rerun puts each series on the lane its recorded progress counts it in.
pub(super) fn lane_of(l: &Labels, lanes: usize) -> usize {
    let mut bytes = Vec::new();
    for (n, v) in l.iter() {
        bytes.extend_from_slice(n.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(v.as_bytes());
        bytes.push(0xff);
    }
    (series_hash(&bytes) % lanes.max(1) as u64) as usize
}

fn to_proto(l: &Labels) -> Vec<Label> {
    l.iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

/// The receiver's query API, for the requests whose fate is unknown; found out (which store it
/// is) on first use only, as a push without faults never asks it.
pub(super) struct Query {
    cfg: Option<ClientConfig>,
    checker: OnceLock<Result<Checker, String>>,
}

impl Query {
    pub fn new(cfg: Option<ClientConfig>) -> Query {
        Query {
            cfg,
            checker: OnceLock::new(),
        }
    }

    /// The checker, or why there is none (no query URL given, or it does not answer).
    pub fn checker(&self) -> Result<&Checker, String> {
        let made = self.checker.get_or_init(|| {
            let cfg = self.cfg.as_ref().ok_or_else(|| {
                "no --verify-url was given (the receiver's query API, which prom2om asks)"
                    .to_string()
            })?;
            Client::new(cfg)
                .and_then(Checker::new)
                .map_err(|e| format!("{e:#}"))
        });
        made.as_ref().map_err(|e| e.clone())
    }
}

/// How a request ended well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Delivered {
    /// Accepted by the receiver.
    Sent,
    /// Not (or not all) sent again: the receiver holds it already.
    Found,
}

/// What the deliveries of a push counted.
#[derive(Default)]
pub(super) struct Counts {
    pub sent_bytes: AtomicU64,
    /// Requests whose fate was unknown, checked on the receiver.
    pub checked: AtomicU64,
    /// Of those, found held: not sent again.
    pub found: AtomicU64,
    /// Requests sent again after a lost answer without a way to check (no query API).
    pub unchecked: AtomicU64,
}

/// Sends one request until the receiver holds it. `uncertain`: it may be held already (the
/// lane resumes an interrupted run, or rechecks a short window), so the receiver is asked
/// first. A lost answer makes it uncertain; a refusal for what the receiver holds (out of order,
/// duplicate, out of bounds, too old) is settled by asking what it holds: a request it holds
/// whole is delivered, whoever stored it.
pub(super) fn deliver(
    client: &Client,
    query: &Query,
    counts: &Counts,
    mut req: Request,
    uncertain: bool,
) -> Result<Delivered> {
    let mut one = Asking {
        query,
        counts,
        asked: false,
        unchecked: false,
    };
    let mut maybe_held = uncertain;
    // What the receiver holds of `req` was just asked.
    let mut asked_now = false;
    let mut tries = 0;
    loop {
        if maybe_held && !std::mem::take(&mut asked_now) {
            match one.held(&req)? {
                Some(Held::All) => return Ok(one.found()),
                Some(Held::Missing(rest)) => req = rest,
                Some(Held::Unknown) => {}
                None => one.unchecked(),
            }
        }
        let err = match post(client, counts, &req) {
            Ok(()) => return Ok(Delivered::Sent),
            Err(Failure::Transient(e, after)) => {
                if tries >= client.retries() {
                    return Err(e.context(GaveUp {
                        attempts: tries + 1,
                    }));
                }
                client.pause(tries, after);
                tries += 1;
                maybe_held = true;
                continue;
            }
            Err(Failure::Fatal(e)) => e,
        };
        match one.settle_refusal(&req, err, maybe_held)? {
            Settled::Delivered(how) => return Ok(how),
            Settled::Rest(rest) => {
                req = rest;
                asked_now = true;
            }
        }
    }
}

/// How a refusal for what the receiver holds was settled.
enum Settled {
    Delivered(Delivered),
    /// It holds part: the rest (fewer samples) is to be sent. A remote write 2.0 receiver
    /// writes what it can of a request it refuses.
    Rest(Request),
}

/// The questions about one request, counted once per request.
struct Asking<'a> {
    query: &'a Query,
    counts: &'a Counts,
    asked: bool,
    unchecked: bool,
}

impl Asking<'_> {
    /// What the receiver holds of `req`: `None` without a query API to ask.
    fn held(&mut self, req: &Request) -> Result<Option<Held>> {
        let Ok(checker) = self.query.checker() else {
            return Ok(None);
        };
        if !self.asked {
            self.asked = true;
            self.counts.checked.fetch_add(1, Ordering::Relaxed);
        }
        checker.held(req).map(Some)
    }

    fn found(&self) -> Delivered {
        self.counts.found.fetch_add(1, Ordering::Relaxed);
        Delivered::Found
    }

    /// Sent again without a way to ask first.
    fn unchecked(&mut self) {
        if !self.unchecked {
            self.unchecked = true;
            self.counts.unchecked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A final refusal `err` of `req`: delivered after all when the refusal is for what the
    /// receiver holds and it holds the request; `maybe_held`: an earlier attempt (or run) may
    /// have stored it.
    fn settle_refusal(
        &mut self,
        req: &Request,
        err: anyhow::Error,
        maybe_held: bool,
    ) -> Result<Settled> {
        if !refused_for_what_it_holds(&err) {
            return Err(err);
        }
        let found = |s: &Self| Ok(Settled::Delivered(s.found()));
        match self.held(req)? {
            Some(Held::All) => found(self),
            Some(Held::Missing(rest)) if rest.len() < req.len() => Ok(Settled::Rest(rest)),
            // Staleness markers only, which PromQL cannot show: the receiver refuses them as
            // not newer than what it holds of their series, and this lane sent nothing newer
            // of them, so it is this request, stored on an attempt whose answer was lost.
            Some(Held::Unknown) if maybe_held && out_of_order(&err) => found(self),
            Some(_) => Err(err),
            None if maybe_held => Err(err.context(format!(
                "this request may be held already (an earlier attempt's answer was lost, or \
                 an earlier run was stopped while sending it), and what the receiver holds \
                 could not be checked: {}; run the same command again with --verify-url \
                 (the receiver's query API) so prom2om can check",
                self.query.checker().err().unwrap_or_default()
            ))),
            None => Err(err),
        }
    }
}

/// One attempt; a 2.0 receiver's `Written` headers must count all of it.
fn post(client: &Client, counts: &Counts, req: &Request) -> Result<(), Failure> {
    let body = req.body();
    match client.post("", &body, &req.headers()) {
        Ok(resp) => {
            counts
                .sent_bytes
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let written = req.check_written(header);
            // Read the (short) answer so the connection goes back to the pool.
            let _ = client.reader(resp).read_to_end(&mut Vec::new());
            written.map_err(|e| Failure::Fatal(e.context(client.display_url().to_string())))
        }
        // Remote-write senders would retry these 500s forever (a 2.0 receiver rolls back a
        // request it answers 5xx, a 1.0 one any it refuses).
        Err(Failure::Transient(e, _)) if too_old(&e) || histograms_disabled(&e) => {
            Err(Failure::Fatal(e))
        }
        Err(f) => Err(f),
    }
}

/// A Prometheus up to 3.8 started without native histograms answers 500 to every request
/// holding one.
fn histograms_disabled(e: &anyhow::Error) -> bool {
    super::rw_negotiate::refusal_advice(e).is_some()
}

fn refusal_text(e: &anyhow::Error) -> Option<(u16, String)> {
    e.chain()
        .find_map(|c| c.downcast_ref::<HttpStatus>())
        .map(|s| (s.status, s.message.to_ascii_lowercase()))
}

/// Prometheus answers samples behind its out-of-order window with 500 (2.42: "too old sample")
/// or 400 ("out of bounds", and 3.x's "too old sample").
pub(super) fn too_old(e: &anyhow::Error) -> bool {
    refusal_text(e).is_some_and(|(s, m)| {
        (s == 500 || s == 400) && (m.contains("too old") || m.contains("out of bounds"))
    })
}

fn out_of_order(e: &anyhow::Error) -> bool {
    refusal_text(e).is_some_and(|(s, m)| s == 400 && m.contains("out of order"))
}

/// A refusal because of what the receiver holds already: samples at or before the newest it
/// holds of their series (out of order, out of bounds, too old) or another value at a
/// timestamp it holds (duplicate sample).
fn refused_for_what_it_holds(e: &anyhow::Error) -> bool {
    too_old(e)
        || out_of_order(e)
        || refusal_text(e).is_some_and(|(s, m)| s == 400 && m.contains("duplicate sample"))
}

/// The refusal of a request, with its first series and timestamp and what to do.
pub(super) fn describe_refusal(e: &anyhow::Error, first: Option<(&Labels, i64)>) -> String {
    let answered = e.chain().any(|c| c.is::<HttpStatus>());
    let first = first.filter(|_| answered).map_or(String::new(), |(l, t)| {
        format!("; the refused request starts with {l} at {t} ms")
    });
    let advice = if too_old(e) {
        " (the receiver takes samples only within its out-of-order window behind its newest \
         sample: for Prometheus set storage: tsdb: out_of_order_time_window in its configuration \
         to cover the data's time range, for Mimir -ingester.out-of-order-time-window; push into \
         an empty receiver first, then the live data)"
    } else {
        super::rw_negotiate::refusal_advice(e).unwrap_or("")
    };
    format!("{e:#}{first}{advice}")
}

/// The first series and timestamp of a request, for messages.
pub(super) fn first_of(req: &Request) -> Option<(Labels, i64)> {
    let (labels, t) = req.first()?;
    let l = Labels::from_pairs(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
    Some((l, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(status: u16, msg: &str) -> anyhow::Error {
        anyhow::Error::new(HttpStatus {
            status,
            message: msg.into(),
        })
        .context("http://x/api/v1/write")
    }

    #[test]
    fn refusals_are_recognised_in_prometheus_words() {
        assert!(too_old(&refusal(500, "too old sample")));
        assert!(too_old(&refusal(400, "out of bounds")));
        assert!(!too_old(&refusal(500, "internal error")));
        assert!(!too_old(&refusal(400, "out of order sample")));
        assert!(out_of_order(&refusal(400, "out of order sample")));
        for held in [
            "out of order sample",
            "duplicate sample for timestamp",
            "out of bounds",
        ] {
            assert!(refused_for_what_it_holds(&refusal(400, held)), "{held}");
        }
        assert!(!refused_for_what_it_holds(&refusal(400, "bad request")));
        assert!(!refused_for_what_it_holds(&refusal(
            503,
            "out of order sample"
        )));
        let e = refusal(400, "native histograms are disabled");
        let d = describe_refusal(&e, None);
        assert!(d.contains("--enable-feature=native-histograms"), "{d}");
    }

    #[test]
    fn a_series_keeps_its_lane() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        assert_eq!(lane_of(&l, 7), lane_of(&l.clone(), 7));
        assert_eq!(lane_of(&l, 1), 0);
        // Pinned, stable across versions: the recorded progress of a shard depends on it.
        assert_eq!((lane_of(&l, 1000), lane_of(&l, 7)), (147, 4));
        let spread: std::collections::HashSet<usize> = (0..64)
            .map(|i| lane_of(&Labels::from_pairs([("i", i.to_string())]), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }
}
