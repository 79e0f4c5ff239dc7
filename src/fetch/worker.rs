//! Executes work units: `--concurrency` threads each take the next unit, fetch it with the chosen
//! method and send complete series to the collecting thread, which feeds the sink and the spool
//! and records each finished unit in the checkpoint.

use std::collections::HashSet;
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};

use anyhow::{anyhow, Result};

use super::api;
use super::discover::{content_type, remote_read_headers};
use super::histjson;
use super::http::{Client, Failure, HttpStatus};
use super::plan::{promql_selector, Method, Unit};
use super::remote_read::{self, SeriesData};
use crate::format::histogram::HistogramValue;
use crate::labels::Labels;

/// What a worker sends to the collector.
pub enum Msg {
    /// A series of the unit of this index.
    Series(usize, SeriesData),
    /// Unit index: all its series were sent before this.
    Done(usize),
    Failed(anyhow::Error),
}

/// How the units are fetched.
pub struct Exec<'a> {
    pub client: &'a Client,
    pub method: Method,
    pub step_ms: i64,
    /// Remote read adds these to every series; they are taken off again (PromQL has none).
    pub external_labels: &'a [(String, String)],
}

/// Where a worker's series go: the collector's channel, tagged with the unit's index.
struct Out<'a> {
    tx: &'a SyncSender<Msg>,
    stop: &'a AtomicBool,
    unit: usize,
}

/// Runs `pending` units (indices into `units`) on `concurrency` threads, taken in that order;
/// `collect` sees every message on the calling thread and returns how many of `pending` it has
/// done with. A worker takes a unit only while fewer than `ahead` units lie between it and the
/// first the collector has not done with. Stops at the first failure and returns it.
pub fn run(
    exec: &Exec,
    units: &[Unit],
    pending: &[usize],
    (concurrency, ahead): (usize, usize),
    mut collect: impl FnMut(Msg) -> Result<usize>,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let delivered = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = sync_channel::<Msg>(256);
    std::thread::scope(|s| {
        for _ in 0..concurrency.max(1).min(pending.len().max(1)) {
            let tx = tx.clone();
            let (next, stop, delivered) = (&next, &stop, &delivered);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = pending.get(k) else { break };
                    // The collector holds what comes ahead of its unit: keep that bounded.
                    while k >= delivered.load(Ordering::Acquire) + ahead
                        && !stop.load(Ordering::Relaxed)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    let out = Out {
                        tx: &tx,
                        stop,
                        unit: i,
                    };
                    let res = fetch_unit(exec, &units[i], &out);
                    let msg = match res {
                        Ok(()) => Msg::Done(i),
                        Err(e) => Msg::Failed(e),
                    };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut first_err: Option<anyhow::Error> = None;
        for msg in rx {
            if first_err.is_some() {
                continue; // drain so workers blocked on send can finish
            }
            let r = match msg {
                Msg::Failed(e) => Err(e),
                m => collect(m),
            };
            match r {
                Ok(n) => delivered.store(n, Ordering::Release),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_err = Some(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    })
}

fn send(out: &Out, sd: SeriesData) -> Result<()> {
    if out.stop.load(Ordering::Relaxed) || out.tx.send(Msg::Series(out.unit, sd)).is_err() {
        return Err(anyhow!("stopped"));
    }
    Ok(())
}

fn fetch_unit(exec: &Exec, u: &Unit, out: &Out) -> Result<()> {
    match exec.method {
        Method::RemoteRead => remote_read_unit(exec, u, out),
        Method::Raw => raw_unit(exec, u.start_ms, u.end_ms, u, out),
        Method::Range => {
            let q = promql_selector(&u.matchers);
            let m = api::query_range(exec.client, &q, u.start_ms, u.end_ms, exec.step_ms)?;
            send_matrix(m, false, out)
        }
    }
}

fn remote_read_unit(exec: &Exec, u: &Unit, out: &Out) -> Result<()> {
    let c = exec.client;
    let body = remote_read::encode_request(&u.matchers, u.start_ms, u.end_ms, true);
    // Series already sent survive a broken stream: a retry skips them.
    let mut sent: HashSet<Labels> = HashSet::new();
    let mut halted = false;
    let res = c.retry(|| {
        let resp = c.post("/api/v1/read", &body, &remote_read_headers())?;
        let streamed = content_type(&resp).starts_with(remote_read::STREAMED_CONTENT_TYPE);
        let mut r = BufReader::with_capacity(256 << 10, c.reader(resp));
        let mut emit = |mut sd: SeriesData| -> Result<()> {
            strip_external(&mut sd.labels, exec.external_labels);
            if sent.contains(&sd.labels) {
                return Ok(());
            }
            sent.insert(sd.labels.clone());
            send(out, sd).inspect_err(|_| halted = true)
        };
        let res = if streamed {
            remote_read::read_streamed(&mut r, u.start_ms, u.end_ms, &mut emit)
        } else {
            let mut buf = Vec::new();
            match r.read_to_end(&mut buf) {
                Ok(_) => remote_read::read_samples(&buf, u.start_ms, u.end_ms, &mut emit),
                Err(e) => Err(e.into()),
            }
        };
        match res {
            Ok(()) => Ok(()),
            Err(e) if halted => Err(Failure::Fatal(e)),
            // A cut or corrupted stream: ask again.
            Err(e) => Err(Failure::transient(
                e.context(format!("{}/api/v1/read", c.display_url())),
            )),
        }
    });
    res.map_err(|e| e.context(format!("remote read of {}", promql_selector(&u.matchers))))
}

/// Raw samples of `[a, b]` through `{sel}[W]` at time `b`. Prometheus 2 includes the sample at
/// `b - W`, 3 does not; asking for `W = b - a + 1` and keeping `[a, b]` is right for both. A
/// window the server finds too big is split in two.
fn raw_unit(exec: &Exec, a: i64, b: i64, u: &Unit, out: &Out) -> Result<()> {
    let q = format!(
        "{}[{}]",
        promql_selector(&u.matchers),
        api::promql_duration(b - a + 1)
    );
    match api::query_matrix(exec.client, &q, b) {
        Ok(mut m) => {
            for s in &mut m {
                s.retain_range(a, b);
            }
            send_matrix(m, true, out)
        }
        Err(e) if too_many_samples(&e) && b - a >= 2000 => {
            let mid = a + (b - a) / 2;
            raw_unit(exec, a, mid, u, out)?;
            raw_unit(exec, mid + 1, b, u, out)
        }
        Err(e) => Err(e),
    }
}

fn too_many_samples(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|x| x.downcast_ref::<HttpStatus>())
        .any(|s| s.status == 422 && s.message.contains("too many samples"))
}

/// Sends the series of a matrix answer. Raw samples (`raw`) carry their histograms, rebuilt
/// from the JSON; `query_range`'s resampled points of histograms are only counted.
fn send_matrix(m: api::Matrix, raw: bool, out: &Out) -> Result<()> {
    for s in m {
        let mut sd = SeriesData {
            labels: s.labels,
            samples: s.floats,
            ..Default::default()
        };
        if raw {
            let hs = histjson::rebuild_series(&s.histograms, &mut sd.guessed)
                .map_err(|e| anyhow!("series {}: {e}", sd.labels))?;
            sd.histograms = (hs.into_iter())
                .map(|(t, h)| (t, HistogramValue::Float(h)))
                .collect();
        } else {
            sd.histograms_skipped = s.histograms.len() as u64;
        }
        if sd.samples.is_empty() && sd.histograms.is_empty() && sd.histograms_skipped == 0 {
            continue;
        }
        send(out, sd)?;
    }
    Ok(())
}

/// Takes off the external labels remote read merged in (a series' own label of the same name
/// and value is indistinguishable and goes too).
fn strip_external(labels: &mut Labels, ext: &[(String, String)]) {
    for (n, v) in ext {
        if labels.get(n) == Some(v.as_str()) {
            labels.remove(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_labels_come_off_only_with_their_value() {
        let mut l = Labels::from_pairs([("__name__", "m"), ("cluster", "eu"), ("replica", "b")]);
        strip_external(
            &mut l,
            &[
                ("cluster".into(), "eu".into()),
                ("replica".into(), "a".into()),
            ],
        );
        assert_eq!(l.to_string(), r#"{__name__="m", replica="b"}"#);
    }

    #[test]
    fn too_many_samples_is_recognised() {
        let e = anyhow::Error::new(HttpStatus {
            status: 422,
            message: "execution: query processing would load too many samples into memory in query execution".into(),
        })
        .context("query");
        assert!(too_many_samples(&e));
        assert!(!too_many_samples(&anyhow!("x")));
    }
}
