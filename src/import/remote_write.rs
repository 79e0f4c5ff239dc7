//! `import --remote-write`: pushes verified shards, window by window in time order, to any
//! Prometheus remote-write 1.0 receiver, on N ordered lanes (a series always takes the same one).

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};

use super::outcome::{Destination, Outcome, Progress, ShardResult, Summary};
use super::state::{self, PushState, StateFile, STATE_FILE};
use super::window_gate::WindowGate;
use crate::fetch::http::{Client, ClientConfig, Failure, HttpStatus};
use crate::format::prompb::{self, Label, Sample, TimeSeries, WriteRequest};
use crate::format::shard_dir::{sha256_hex, SeriesHashes, ShardDir, ShardEntry, ShardFiles};
use crate::labels::Labels;
use crate::select::filter::LabelEdits;

/// Push state and lock, inside the shard directory (the receiver has no place for ours).
pub const STATE_DIR: &str = ".prom2om-remote-write";
/// Requests waiting per lane: enough to keep the lane busy while the reader builds the next.
const LANE_QUEUE: usize = 2;

#[derive(Clone, Debug)]
pub struct Options {
    /// The receiver's write endpoint, e.g. `http://host:8428/api/v1/write`, with auth and TLS.
    pub client: ClientConfig,
    /// Samples per request, at least 1.
    pub batch_samples: usize,
    /// Requests in flight at once (ordered lanes), at least 1.
    pub concurrency: usize,
    /// `--add-label` edits applied to every series before it is sent.
    pub edits: LabelEdits,
}

/// Who receives: the URL without credentials, the headers (a tenant) and the label edits. Hashed,
/// so a header holding a secret never lands in the state file.
fn target_key(display_url: &str, cfg: &ClientConfig, edits: &LabelEdits) -> String {
    let text = format!("{display_url}\n{:?}\n{:?}", cfg.headers, edits.add);
    sha256_hex(text.as_bytes()).expect("reading a slice cannot fail")[..16].to_string()
}

/// Pushes the shards of `dir` to the receiver of `opts`, each shard read once.
///
/// Errors are for the run as a whole (bad URL or options, receiver unreachable). A shard the
/// receiver refuses, or that does not read back as its manifest says, is an
/// [`Outcome::Failed`] and stops nothing else.
pub fn push(dir: &ShardDir, opts: &Options, progress: &dyn Progress) -> Result<Summary> {
    let started = Instant::now();
    let manifest = dir.manifest();
    let client = Client::new(&opts.client)?;
    let state_dir = dir.path().join(STATE_DIR);
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("{}: cannot create", state_dir.display()))?;
    let _guard = crate::pipeline::run_lock::acquire(
        &state_dir.join("lock"),
        &format!("the push state {}", state_dir.display()),
    )?;
    let state_path = state_dir.join(STATE_FILE);
    let mut st = PushState::load(&state_path)?;
    let target = target_key(client.display_url(), &opts.client, &opts.edits);

    progress.verifying(manifest.shards.len() as u64);
    let warnings = crate::verify::dir_problems(dir);
    // Time order: receivers take old samples only within a window behind their newest one.
    let mut order: Vec<usize> = (0..manifest.shards.len()).collect();
    order.sort_by_key(|&i| (manifest.shards[i].window_start_ms, manifest.shards[i].shard));
    let done = st.targets.entry(target.clone()).or_default();
    done.url = client.display_url().to_string();
    let todo: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| !done.pushed.contains_key(&key(&manifest.shards[i])))
        .collect();
    let todo_samples = todo.iter().map(|&i| manifest.shards[i].samples).sum();
    progress.planned(todo.len() as u64, todo_samples);
    let (gate, hash_only) = match WindowGate::new(dir, &todo) {
        Some((gate, extra)) => (Some(gate), extra.into_iter().collect()),
        None => (None, HashSet::new()),
    };
    let mut run = Run {
        dir,
        pusher: Pusher {
            client: &client,
            opts,
            progress,
            sent: AtomicU64::new(0),
            overridden: AtomicU64::new(0),
            unreachable: AtomicBool::new(false),
        },
        todo: todo.into_iter().collect(),
        gate,
        hash_only,
        state: st,
        state_path,
        target,
        nan: HashMap::new(),
        pending: Vec::new(),
        results: Vec::new(),
    };
    for (k, &i) in order.iter().enumerate() {
        let window = |j: usize| manifest.shards[j].window_start_ms;
        let window_ends = order.get(k + 1).is_none_or(|&j| window(j) != window(i));
        run.shard(i, window_ends)?;
    }
    let p = &run.pusher;
    Ok(Summary {
        results: run.results,
        warnings,
        destination: Destination::Receiver {
            overridden: p.overridden.load(Ordering::Relaxed),
            requests: client.counters.requests.load(Ordering::Relaxed),
            retries: client.counters.retries.load(Ordering::Relaxed),
            bytes_sent: p.sent.load(Ordering::Relaxed),
            nan: run.nan,
        },
        elapsed: started.elapsed(),
    })
}

fn key(e: &ShardEntry) -> String {
    state::key(&e.file, &e.sha256)
}

/// One push run over the shards in time order.
struct Run<'a> {
    dir: &'a ShardDir,
    pusher: Pusher<'a>,
    /// The shards not pushed before (manifest indices).
    todo: HashSet<usize>,
    /// With side files: the check across each window's shards, which a window's results wait
    /// for in `pending`; `hash_only`, the shards pushed before that it reads.
    gate: Option<WindowGate>,
    hash_only: HashSet<usize>,
    state: PushState,
    state_path: PathBuf,
    target: String,
    /// NaN samples of each shard read, for `--verify-url`.
    nan: HashMap<usize, u64>,
    pending: Vec<(usize, Outcome)>,
    results: Vec<ShardResult>,
}

impl Run<'_> {
    /// Pushes shard `i` (or skips it, pushed before), then settles what waits: at once, or at
    /// the end of its window (`window_ends`) when the directory has side files.
    fn shard(&mut self, i: usize, window_ends: bool) -> Result<()> {
        let (outcome, hashes) = if self.todo.contains(&i) {
            let (o, hashes, n) = self.pusher.shard(self.dir.shard(i));
            if let Outcome::Failed(why) = &o {
                if self.pusher.unreachable.load(Ordering::Relaxed) {
                    return Err(anyhow!("{why}"));
                }
            }
            self.nan.insert(i, n);
            (o, Some(hashes))
        } else if self.hash_only.contains(&i) {
            // Read for the check across its window; its NaN count serves --verify-url.
            let mut n = 0;
            let r = self.dir.shard(i).samples(|p| {
                n += u64::from(p.value.is_nan());
                Ok(())
            });
            self.nan.insert(i, n);
            (Outcome::Skipped, Some(r.hashes))
        } else {
            (Outcome::Skipped, None)
        };
        self.pending.push((i, outcome));
        let mut problems = Vec::new();
        if let (Some(g), Some(h)) = (self.gate.as_mut(), hashes) {
            problems = g.read(self.dir.manifest(), i, h).unwrap_or_default();
        }
        if self.gate.is_none() || window_ends {
            self.settle(&problems)?;
        }
        Ok(())
    }

    /// The waiting results, each refused by a problem of its window that names it; the pushed
    /// ones recorded in the state.
    fn settle(&mut self, problems: &[(usize, String)]) -> Result<()> {
        let m = self.dir.manifest();
        for (j, mut outcome) in std::mem::take(&mut self.pending) {
            let e = &m.shards[j];
            let of_j: Vec<&str> = problems
                .iter()
                .filter(|(x, _)| *x == j)
                .map(|(_, p)| p.as_str())
                .collect();
            if !of_j.is_empty() {
                outcome = Outcome::Failed(format!("verify: {}", of_j.join("; ")));
            }
            if let Outcome::Pushed { samples, .. } = outcome {
                let t = self
                    .state
                    .targets
                    .get_mut(&self.target)
                    .expect("entry made");
                t.pushed.insert(key(e), samples);
                self.state.save(&self.state_path)?;
            }
            let r = ShardResult {
                index: j,
                file: e.file.clone(),
                expected_samples: e.samples,
                outcome,
            };
            self.pusher.progress.finished(&r);
            self.results.push(r);
        }
        Ok(())
    }
}

/// What the lanes of every shard share.
struct Pusher<'a> {
    client: &'a Client,
    opts: &'a Options,
    progress: &'a dyn Progress,
    sent: AtomicU64,
    overridden: AtomicU64,
    /// Nothing answered at the URL: no use trying the other shards.
    unreachable: AtomicBool,
}

/// The first refusal on a shard; stops its reader and its other lanes.
struct Refusal {
    stop: AtomicBool,
    first: Mutex<Option<String>>,
}

impl Pusher<'_> {
    /// Sends one shard, as it is read, on the lanes, and waits for every answer. Returns its
    /// outcome, what its read gathered for the check across its window, and its NaN samples.
    fn shard(&self, files: ShardFiles<'_>) -> (Outcome, SeriesHashes, u64) {
        if !files.sound() {
            // Nothing of it is sent: its report says why.
            let r = files.check();
            let why = format!("verify: {}", r.problems.join("; "));
            return (Outcome::Failed(why), r.hashes, 0);
        }
        let refusal = Refusal {
            stop: AtomicBool::new(false),
            first: Mutex::new(None),
        };
        let lanes = self.opts.concurrency.max(1);
        let mut nan = 0;
        let (requests, report) = std::thread::scope(|s| {
            let mut txs = Vec::with_capacity(lanes);
            let mut handles = Vec::with_capacity(lanes);
            for _ in 0..lanes {
                let (tx, rx) = sync_channel::<WriteRequest>(LANE_QUEUE);
                txs.push(tx);
                let refusal = &refusal;
                handles.push(s.spawn(move || self.lane(rx, refusal)));
            }
            let report = self.read_into_lanes(files, &txs, &refusal, &mut nan);
            drop(txs);
            let requests: u64 = handles
                .into_iter()
                .map(|h| h.join().expect("lane threads do not panic"))
                .sum();
            (requests, report)
        });
        if let Some(why) = refusal.first.into_inner().expect("lanes joined") {
            return (Outcome::Failed(why), report.hashes, nan);
        }
        if !report.is_ok() {
            let why = format!("verify: {}", report.problems.join("; "));
            return (Outcome::Failed(why), report.hashes, nan);
        }
        let samples = report.stats.as_ref().map_or(0, |st| st.samples);
        let outcome = Outcome::Pushed {
            samples,
            requests,
            markers: report.stale_markers,
        };
        (outcome, report.hashes, nan)
    }

    /// Reads the shard and hands full requests to the lanes, each series' staleness markers
    /// (from its side file) merged in time order with its samples, with their exact bits: a
    /// remote-write receiver stores them as staleness markers. Counts the NaN samples.
    fn read_into_lanes(
        &self,
        files: ShardFiles<'_>,
        txs: &[std::sync::mpsc::SyncSender<WriteRequest>],
        refusal: &Refusal,
        nan: &mut u64,
    ) -> crate::format::shard_dir::ShardReport {
        let mut lanes = Lanes {
            batch: self.opts.batch_samples.max(1),
            pending: (0..txs.len())
                .map(|_| (WriteRequest::default(), 0))
                .collect(),
            txs,
            lane: 0,
            labels: Vec::new(),
            open: false,
        };
        let report = files.points(|p| {
            if refusal.stop.load(Ordering::Relaxed) {
                return Err(anyhow!("stopped: the receiver refused a request"));
            }
            if p.new_series {
                let mut l = p.labels.clone();
                // A series of markers only was counted in the shard that had its samples.
                if p.markers_only {
                    self.opts.edits.apply(&mut l);
                } else if self.opts.edits.apply_traced(&mut l).overrides {
                    self.overridden.fetch_add(1, Ordering::Relaxed);
                }
                lanes.series(&l);
            }
            *nan += u64::from(!p.marker && p.value.is_nan());
            lanes.push(p.value, p.ts_ms);
            Ok(())
        });
        lanes.flush();
        report
    }

    /// Sends the requests of one lane in order; the number accepted. After a refusal (here or
    /// on another lane) it only drains its queue.
    fn lane(&self, rx: Receiver<WriteRequest>, refusal: &Refusal) -> u64 {
        let mut accepted = 0;
        for req in rx {
            if refusal.stop.load(Ordering::Relaxed) {
                continue;
            }
            match self.send(&req) {
                Ok(()) => {
                    accepted += 1;
                    self.progress.samples_done(req.samples() as u64);
                }
                Err(e) => {
                    if crate::fetch::http::unreachable(&e) {
                        self.unreachable.store(true, Ordering::Relaxed);
                    }
                    refusal.stop.store(true, Ordering::Relaxed);
                    let mut first = refusal.first.lock().expect("no panics while held");
                    if first.is_none() {
                        *first = Some(describe_refusal(&e, &req));
                    }
                }
            }
        }
        accepted
    }

    /// One request, retried on what may pass; a "too old" 500 from Prometheus is final.
    fn send(&self, req: &WriteRequest) -> Result<()> {
        let body = req.encode_body();
        let headers = [
            ("Content-Encoding", "snappy"),
            ("Content-Type", prompb::WRITE_CONTENT_TYPE),
            ("X-Prometheus-Remote-Write-Version", prompb::WRITE_VERSION),
        ];
        self.client
            .retry(|| match self.client.post("", &body, &headers) {
                Ok(resp) => {
                    self.sent.fetch_add(body.len() as u64, Ordering::Relaxed);
                    // Read the (short) answer so the connection goes back to the pool.
                    let _ = self.client.reader(resp).read_to_end(&mut Vec::new());
                    Ok(())
                }
                Err(Failure::Transient(e, _)) if too_old(&e) => Err(Failure::Fatal(e)),
                Err(f) => Err(f),
            })
    }
}

/// Prometheus answers samples behind its out-of-order window with 500 (2.42: "too old sample")
/// or 400 ("out of bounds"); remote-write senders would retry the 500 forever.
fn too_old(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<HttpStatus>())
        .any(|s| {
            let m = s.message.to_ascii_lowercase();
            (s.status == 500 || s.status == 400)
                && (m.contains("too old") || m.contains("out of bounds"))
        })
}

fn describe_refusal(e: &anyhow::Error, req: &WriteRequest) -> String {
    let answered = e.chain().any(|c| c.is::<HttpStatus>());
    let first = req
        .timeseries
        .first()
        .filter(|_| answered)
        .map_or(String::new(), |ts| {
            let l = Labels::from_pairs(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            );
            let t = ts.samples.first().map_or(0, |s| s.timestamp);
            format!("; the refused request starts with {l} at {t} ms")
        });
    let advice = if too_old(e) {
        " (the receiver takes samples only within its out-of-order window behind its newest \
         sample: for Prometheus set storage: tsdb: out_of_order_time_window in its configuration \
         to cover the data's time range, for Mimir -ingester.out-of-order-time-window; push into \
         an empty receiver first, then the live data)"
    } else {
        ""
    };
    format!("{e:#}{first}{advice}")
}

/// The requests being filled, one per lane; a full one goes to its lane.
struct Lanes<'a> {
    batch: usize,
    pending: Vec<(WriteRequest, usize)>,
    txs: &'a [std::sync::mpsc::SyncSender<WriteRequest>],
    lane: usize,
    labels: Vec<Label>,
    /// Whether the current series has an entry in its lane's pending request.
    open: bool,
}

impl Lanes<'_> {
    /// Starts a series (labels as sent).
    fn series(&mut self, l: &Labels) {
        self.lane = lane_of(l, self.txs.len());
        self.labels = to_proto(l);
        self.open = false;
    }

    fn push(&mut self, value: f64, timestamp: i64) {
        let (req, n) = &mut self.pending[self.lane];
        if !self.open {
            req.timeseries.push(TimeSeries {
                labels: self.labels.clone(),
                samples: Vec::new(),
                histograms: Vec::new(),
            });
            self.open = true;
        }
        let ts = req.timeseries.last_mut().expect("pushed above");
        ts.samples.push(Sample { value, timestamp });
        *n += 1;
        if *n >= self.batch {
            let full = std::mem::take(req);
            *n = 0;
            self.open = false;
            // A closed lane has stopped on a refusal, which the result reports.
            let _ = self.txs[self.lane].send(full);
        }
    }

    fn flush(self) {
        for (i, (req, n)) in self.pending.into_iter().enumerate() {
            if n > 0 {
                let _ = self.txs[i].send(req);
            }
        }
    }
}

/// The lane of a series: a stable hash, so a series keeps its lane (and order) across shards.
fn lane_of(l: &Labels, lanes: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    l.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

fn to_proto(l: &Labels) -> Vec<Label> {
    l.iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_old_is_recognised_in_prometheus_words() {
        let e = |status, msg: &str| {
            anyhow::Error::new(HttpStatus {
                status,
                message: msg.into(),
            })
            .context("http://x/api/v1/write")
        };
        assert!(too_old(&e(500, "too old sample")));
        assert!(too_old(&e(400, "out of bounds")));
        assert!(!too_old(&e(500, "internal error")));
        assert!(!too_old(&e(400, "out of order sample")));
    }

    #[test]
    fn a_series_keeps_its_lane() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        assert_eq!(lane_of(&l, 7), lane_of(&l.clone(), 7));
        assert!(lane_of(&l, 1) == 0);
    }
}
