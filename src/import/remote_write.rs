//! `import --remote-write`: pushes verified shards, window by window in time order, to any
//! Prometheus remote-write receiver (1.0, or 2.0 for native histograms where it takes it), on N
//! ordered lanes (a series always takes the same one), recording how far each lane got, so an
//! interrupted push always completes (see `lanes`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use super::lanes::{deliver, describe_refusal, first_of, Counts, Delivered, Lanes, Query};
use super::outcome::{Destination, Outcome, Progress, ShardResult, Summary};
use super::rw_negotiate::{self, Kind, Plan};
use super::rw_request::Request;
use super::state::{self, Partial, PushState, PushTarget, StateFile, STATE_FILE};
use super::window_gate::WindowGate;
use crate::fetch::http::{Client, ClientConfig};
use crate::format::histogram::{is_custom_buckets, HistogramValue};
use crate::format::shard_dir::Value;
use crate::format::shard_dir::{sha256_hex, SeriesHashes, ShardDir, ShardEntry, ShardFiles};
use crate::select::filter::LabelEdits;

/// Push state and lock, inside the shard directory (the receiver has no place for ours).
pub const STATE_DIR: &str = ".prom2om-remote-write";
/// Requests waiting per lane: enough to keep the lane busy while the reader builds the next.
const LANE_QUEUE: usize = 2;
/// How often a shard's progress is written while it is sent.
const SAVE_EVERY: Duration = Duration::from_millis(500);

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
    /// The receiver's query API, asked what it holds of a request whose fate is unknown.
    pub query: Option<ClientConfig>,
    /// Leave the native histogram samples (and their markers) out, counted
    /// (`--skip-histograms`).
    pub skip_histograms: bool,
}

/// Who receives: the URL without credentials, the headers (a tenant) and the label edits, and
/// whether native histograms are left out (a push without them does not make the shards pushed
/// for one with them). Hashed, so a header holding a secret never lands in the state file.
fn target_key(display_url: &str, cfg: &ClientConfig, opts: &Options) -> String {
    let mut text = format!("{display_url}\n{:?}\n{:?}", cfg.headers, opts.edits.add);
    if opts.skip_histograms {
        text.push_str("\nskip-histograms");
    }
    sha256_hex(text.as_bytes()).expect("reading a slice cannot fail")[..16].to_string()
}

/// Pushes the shards of `dir` to the receiver of `opts`, each shard read once.
///
/// Errors are for the run as a whole (bad URL or options, receiver unreachable). A shard the
/// receiver refuses, or that does not read back as its manifest says, is an
/// [`Outcome::Failed`] and stops nothing else; what the receiver took of it is recorded, and
/// the next run sends the rest.
pub fn push(dir: &ShardDir, opts: &Options, progress: &dyn Progress) -> Result<Summary> {
    let started = Instant::now();
    let manifest = dir.manifest();
    let client = Client::new(&opts.client)?;
    let plan = plan_for(dir, &client, opts)?;
    let state_dir = dir.path().join(STATE_DIR);
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("{}: cannot create", state_dir.display()))?;
    let _guard = crate::pipeline::run_lock::acquire(
        &state_dir.join("lock"),
        &format!("the push state {}", state_dir.display()),
    )?;
    let state_path = state_dir.join(STATE_FILE);
    let mut st = PushState::load(&state_path)?;
    let target = target_key(client.display_url(), &opts.client, opts);

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
    // Points: samples, and the side files' markers and histograms, as the lanes count them.
    let points = |e: &ShardEntry| e.samples + e.sidecars.iter().map(|s| s.samples).sum::<u64>();
    let todo_samples = todo.iter().map(|&i| points(&manifest.shards[i])).sum();
    progress.planned(todo.len() as u64, todo_samples);
    let (gate, hash_only) = match WindowGate::new(dir, &todo) {
        Some((gate, extra)) => (Some(gate), extra.into_iter().collect()),
        None => (None, HashSet::new()),
    };
    let query = Query::new(opts.query.clone());
    let mut run = Run {
        dir,
        pusher: Pusher {
            client: &client,
            query: &query,
            opts,
            plan: &plan,
            progress,
            counts: Counts::default(),
            overridden: AtomicU64::new(0),
            unreachable: AtomicBool::new(false),
            tracker: Mutex::new(Tracker {
                state: st,
                path: state_path,
                target,
                saved: Instant::now(),
                shard: None,
            }),
        },
        todo: todo.into_iter().collect(),
        gate,
        hash_only,
        nan: HashMap::new(),
        histograms: HashMap::new(),
        pending: Vec::new(),
        results: Vec::new(),
    };
    for (k, &i) in order.iter().enumerate() {
        let window = |j: usize| manifest.shards[j].window_start_ms;
        let window_ends = order.get(k + 1).is_none_or(|&j| window(j) != window(i));
        run.shard(i, window_ends)?;
    }
    let c = &run.pusher.counts;
    Ok(Summary {
        results: run.results,
        warnings,
        destination: Destination::Receiver {
            overridden: run.pusher.overridden.load(Ordering::Relaxed),
            requests: client.counters.requests.load(Ordering::Relaxed),
            retries: client.counters.retries.load(Ordering::Relaxed),
            bytes_sent: c.sent_bytes.load(Ordering::Relaxed),
            checked: c.checked.load(Ordering::Relaxed),
            found: c.found.load(Ordering::Relaxed),
            unchecked: c.unchecked.load(Ordering::Relaxed),
            nan: run.nan,
            histograms: run.histograms,
            plan,
        },
        elapsed: started.elapsed(),
    })
}

/// What the push sends: floats over remote write 1.0 when the shards hold no native histogram;
/// else as `rw_negotiate::plan` decides from what the receiver says it is and takes (asked
/// before anything is sent), the first note naming the receiver and the protocol.
fn plan_for(dir: &ShardDir, client: &Client, opts: &Options) -> Result<Plan> {
    let t = &dir.manifest().totals;
    let histograms = t.histogram_samples + t.histogram_stale_markers;
    if histograms == 0 {
        return Ok(Plan::floats_only());
    }
    let r = rw_negotiate::probe(client, &opts.client)
        .with_context(|| format!("asking {} what it takes", client.display_url()))?;
    let mut plan = rw_negotiate::plan(&r, histograms, opts.skip_histograms)?;
    let who = match &r.kind {
        Kind::Prometheus(v) => format!("Prometheus {v}"),
        Kind::VictoriaMetrics => "VictoriaMetrics".to_string(),
        Kind::Other => "a receiver that does not say what it is".to_string(),
    };
    let what = if plan.histograms {
        "native histograms and floats"
    } else {
        "floats"
    };
    plan.notes.insert(
        0,
        format!(
            "the receiver is {who}, which takes {}: {what} pushed over {}",
            r.protocol.name(),
            plan.protocol.name()
        ),
    );
    Ok(plan)
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
    /// NaN samples, and histogram samples sent (markers not included), of each shard read,
    /// for `--verify-url`.
    nan: HashMap<usize, u64>,
    histograms: HashMap<usize, u64>,
    pending: Vec<(usize, Outcome)>,
    results: Vec<ShardResult>,
}

impl Run<'_> {
    /// Pushes shard `i` (or skips it, pushed before), then settles what waits: at once, or at
    /// the end of its window (`window_ends`) when the directory has side files.
    fn shard(&mut self, i: usize, window_ends: bool) -> Result<()> {
        let (outcome, hashes) = if self.todo.contains(&i) {
            let k = key(&self.dir.manifest().shards[i]);
            let (resume, recheck) = self.pusher.tracker().resume(&k);
            let (o, hashes, read) = self.pusher.shard(self.dir.shard(i), &k, resume, recheck);
            if let Outcome::Failed(why) = &o {
                if self.pusher.unreachable.load(Ordering::Relaxed) {
                    return Err(anyhow!("{why}"));
                }
            }
            self.nan.insert(i, read.nan);
            self.histograms.insert(i, read.histograms);
            (o, Some(hashes))
        } else if self.hash_only.contains(&i) {
            // Read for the check across its window; its NaN count serves --verify-url.
            let mut n = 0;
            let r = self.dir.shard(i).samples(|p| {
                n += u64::from(p.value.float().is_some_and(f64::is_nan));
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
                self.pusher.tracker().done(&key(e), samples)?;
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
    query: &'a Query,
    opts: &'a Options,
    plan: &'a Plan,
    progress: &'a dyn Progress,
    counts: Counts,
    overridden: AtomicU64,
    /// Nothing answered at the URL: no use trying the other shards.
    unreachable: AtomicBool,
    tracker: Mutex<Tracker>,
}

/// The first refusal on a shard; stops its reader and its other lanes.
struct Refusal {
    stop: AtomicBool,
    first: Mutex<Option<String>>,
}

impl Refusal {
    fn refuse(&self, why: String) {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = self.first.lock().expect("no panics while held");
        first.get_or_insert(why);
    }
}

impl Pusher<'_> {
    /// Sends one shard, as it is read, on the lanes, and waits for every answer: from where
    /// `resume` (an earlier run's progress) says each lane stands, asking the receiver first
    /// what it holds of each lane's next requests when their fate is unknown (`resume`), or of
    /// every request (`recheck`). Returns its outcome, what its read gathered for the check
    /// across its window, and what the read counted.
    fn shard(
        &self,
        files: ShardFiles<'_>,
        key: &str,
        resume: Option<Partial>,
        recheck: bool,
    ) -> (Outcome, SeriesHashes, Read) {
        if !files.sound() {
            // Nothing of it is sent: its report says why.
            let r = files.check();
            let why = format!("verify: {}", r.problems.join("; "));
            return (Outcome::Failed(why), r.hashes, Read::default());
        }
        let uncertain = resume.is_some() || recheck;
        let lanes = resume
            .as_ref()
            .map_or(self.opts.concurrency, |p| p.lanes)
            .max(1);
        let mut skip = resume.map_or_else(Vec::new, |p| p.acked);
        skip.resize(lanes, 0);
        let earlier: u64 = skip.iter().sum();
        let begun = self.tracker().begin(
            key,
            Partial {
                lanes,
                acked: skip.clone(),
            },
        );
        if let Err(e) = begun {
            let hashes = files.check().hashes;
            return (Outcome::Failed(format!("{e:#}")), hashes, Read::default());
        }
        self.progress.samples_done(earlier);
        let refusal = Refusal {
            stop: AtomicBool::new(false),
            first: Mutex::new(None),
        };
        let mut read = Read::default();
        let (requests, report) = std::thread::scope(|s| {
            let mut txs = Vec::with_capacity(lanes);
            let mut handles = Vec::with_capacity(lanes);
            for lane in 0..lanes {
                let (tx, rx) = sync_channel::<Request>(LANE_QUEUE);
                txs.push(tx);
                let refusal = &refusal;
                handles.push(s.spawn(move || self.lane(lane, rx, refusal, uncertain, recheck)));
            }
            let report = self.read_into_lanes(files, &txs, skip, &refusal, &mut read);
            drop(txs);
            let requests: u64 = handles
                .into_iter()
                .map(|h| h.join().expect("lane threads do not panic"))
                .sum();
            (requests, report)
        });
        if let Err(e) = self.tracker().end() {
            refusal.refuse(format!("{e:#}"));
        }
        if let Some(why) = refusal.first.into_inner().expect("lanes joined") {
            return (Outcome::Failed(why), report.hashes, read);
        }
        if !report.is_ok() {
            let why = format!("verify: {}", report.problems.join("; "));
            return (Outcome::Failed(why), report.hashes, read);
        }
        let samples = report.stats.as_ref().map_or(0, |st| st.samples);
        let outcome = Outcome::Pushed {
            samples,
            requests,
            markers: report.stale_markers,
            histograms: report.histogram_samples - read.left_out.0,
            histogram_markers: report.histogram_stale_markers - read.left_out.1,
            left_out: read.left_out.0 + read.left_out.1,
            earlier,
        };
        (outcome, report.hashes, read)
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().expect("no panics while held")
    }

    /// Reads the shard and hands full requests to the lanes, each series' staleness markers
    /// and native histograms (from its side files) merged in time order with its samples, with
    /// their exact bits: a remote-write receiver stores the markers as staleness markers. A
    /// series that changes type gets an entry per run of one kind, in order. Leaves out each
    /// lane's first `skip` points, which an earlier run delivered, and the histograms the plan
    /// does not send (never in a lane, so the lanes' counts do not depend on them). Counts the
    /// NaN samples and what is left out.
    fn read_into_lanes(
        &self,
        files: ShardFiles<'_>,
        txs: &[std::sync::mpsc::SyncSender<Request>],
        skip: Vec<u64>,
        refusal: &Refusal,
        read: &mut Read,
    ) -> crate::format::shard_dir::ShardReport {
        let mut lanes = Lanes::new(self.opts.batch_samples, self.plan.protocol, txs, skip);
        let report = files.points(|p| {
            if refusal.stop.load(Ordering::Relaxed) {
                return Err(anyhow!("stopped: the receiver refused a request"));
            }
            if p.new_series {
                let mut l = p.labels.clone();
                // A series of markers only was counted in the shard that had its samples.
                if p.side_only {
                    self.opts.edits.apply(&mut l);
                } else if self.opts.edits.apply_traced(&mut l).overrides {
                    self.overridden.fetch_add(1, Ordering::Relaxed);
                }
                lanes.series(&l);
            }
            read.nan += u64::from(p.value.float().is_some_and(f64::is_nan));
            match p.value {
                Value::Histogram(h) => {
                    let schema = match h {
                        HistogramValue::Int(h) => h.schema,
                        HistogramValue::Float(h) => h.schema,
                    };
                    let custom = is_custom_buckets(schema);
                    if rw_negotiate::left_out(self.plan, custom).is_some() {
                        match h.is_stale() {
                            false => read.left_out.0 += 1,
                            true => read.left_out.1 += 1,
                        }
                    } else {
                        read.histograms += u64::from(!h.is_stale());
                        lanes.push_histogram(h, p.ts_ms);
                    }
                }
                v => {
                    let bits = v.float_bits().expect("a float or a marker");
                    lanes.push(f64::from_bits(bits), p.ts_ms);
                }
            }
            Ok(())
        });
        lanes.flush();
        report
    }

    /// Delivers the requests of lane `lane` in order, recording each as the receiver holds
    /// it; the number delivered. `uncertain`: the first requests may be held already (asked
    /// until one is not), `always`: every request is asked about. After a refusal (here or on
    /// another lane) it only drains its queue.
    fn lane(
        &self,
        lane: usize,
        rx: Receiver<Request>,
        refusal: &Refusal,
        mut uncertain: bool,
        always: bool,
    ) -> u64 {
        let mut delivered = 0;
        for req in rx {
            if refusal.stop.load(Ordering::Relaxed) {
                continue;
            }
            let first = first_of(&req);
            let points = req.len() as u64;
            match deliver(self.client, self.query, &self.counts, req, uncertain) {
                Ok(how) => {
                    delivered += 1;
                    // Found held: the next may be too; sent: the rest of the lane is new.
                    uncertain = always || (uncertain && how == Delivered::Found);
                    self.progress.samples_done(points);
                    if let Err(e) = self.tracker().ack(lane, points) {
                        refusal.refuse(format!("{e:#}"));
                    }
                }
                Err(e) => {
                    if crate::fetch::http::unreachable(&e) {
                        self.unreachable.store(true, Ordering::Relaxed);
                    }
                    let first = first.as_ref().map(|(l, t)| (l, *t));
                    refusal.refuse(describe_refusal(&e, first));
                }
            }
        }
        delivered
    }
}

/// What the read of a shard counted: NaN samples, histogram samples sent (markers not
/// included), and the histogram samples and markers left out.
#[derive(Default)]
struct Read {
    nan: u64,
    histograms: u64,
    left_out: (u64, u64),
}

/// The push state, and the progress of the shard being sent, written at most every
/// [`SAVE_EVERY`] while it is sent: a kill loses what was delivered since, which the rerun
/// then finds held on the receiver.
struct Tracker {
    state: PushState,
    path: PathBuf,
    target: String,
    saved: Instant,
    shard: Option<(String, Partial)>,
}

impl Tracker {
    fn entry(&mut self) -> &mut PushTarget {
        self.state
            .targets
            .get_mut(&self.target)
            .expect("made when the push began")
    }

    /// An earlier run's progress on shard `key`, and whether it is to be rechecked.
    fn resume(&mut self, key: &str) -> (Option<Partial>, bool) {
        let t = self.entry();
        (t.partial.get(key).cloned(), t.recheck.contains(key))
    }

    /// Records shard `key` as being sent, before its first request: a kill from here on leaves
    /// it for the rerun to resume with a check.
    fn begin(&mut self, key: &str, p: Partial) -> Result<()> {
        self.shard = Some((key.to_string(), p));
        self.save()
    }

    /// `points` more of `lane` are held by the receiver; written now and then, unsynced (the
    /// lanes wait for this lock): a power cut may lose some, which the next run asks about.
    fn ack(&mut self, lane: usize, points: u64) -> Result<()> {
        let (_, p) = self.shard.as_mut().expect("begun");
        p.acked[lane] += points;
        if self.saved.elapsed() >= SAVE_EVERY {
            self.record();
            self.saved = Instant::now();
            self.state
                .save_unsynced(&self.path)
                .context("recording the push's progress")?;
        }
        Ok(())
    }

    /// The shard's lanes are done: its progress written.
    fn end(&mut self) -> Result<()> {
        self.save()?;
        self.shard = None;
        Ok(())
    }

    /// Shard `key` is pushed whole.
    fn done(&mut self, key: &str, samples: u64) -> Result<()> {
        let t = self.entry();
        t.pushed.insert(key.to_string(), samples);
        t.partial.remove(key);
        t.recheck.remove(key);
        self.save()
    }

    /// The shard under way's progress into the state.
    fn record(&mut self) {
        if let Some((k, p)) = self.shard.clone() {
            self.entry().partial.insert(k, p);
        }
    }

    fn save(&mut self) -> Result<()> {
        self.record();
        self.saved = Instant::now();
        self.state
            .save(&self.path)
            .context("recording the push's progress")
    }
}

/// Marks the shards of the windows starting at `windows` to be rechecked by the next run to the
/// same receiver: asked request by request what the receiver holds, and only the rest sent.
/// Returns how many shards.
pub fn recheck(dir: &ShardDir, opts: &Options, windows: &[i64]) -> Result<usize> {
    let client = Client::new(&opts.client)?;
    let state_dir = dir.path().join(STATE_DIR);
    let _guard = crate::pipeline::run_lock::acquire(
        &state_dir.join("lock"),
        &format!("the push state {}", state_dir.display()),
    )?;
    let state_path = state_dir.join(STATE_FILE);
    let mut st = PushState::load(&state_path)?;
    let target = target_key(client.display_url(), &opts.client, opts);
    let t = st.targets.entry(target).or_default();
    let mut n = 0;
    for e in &dir.manifest().shards {
        if windows.contains(&e.window_start_ms) {
            t.pushed.remove(&key(e));
            t.recheck.insert(key(e));
            n += 1;
        }
    }
    st.save(&state_path)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_key_hides_headers_and_tells_edits_apart() {
        let cfg = ClientConfig {
            headers: vec![("Authorization".into(), "Bearer s3cret".into())],
            ..Default::default()
        };
        let opts = |add: &[String], skip_histograms| Options {
            client: cfg.clone(),
            batch_samples: 1,
            concurrency: 1,
            edits: LabelEdits::parse(&[], add).unwrap(),
            query: None,
            skip_histograms,
        };
        let none = opts(&[], false);
        let acme = opts(&["customer=acme".to_string()], false);
        let a = target_key("http://h/api/v1/write", &cfg, &none);
        assert_eq!(a.len(), 16);
        assert!(!a.contains("s3cret"));
        assert_ne!(a, target_key("http://h/api/v1/write", &cfg, &acme));
        assert_eq!(a, target_key("http://h/api/v1/write", &cfg, &none));
        // Pinned: the keys of earlier pushes (floats only) stay valid.
        assert_eq!(a, "6c4d032c3efdaba2");
        let skip = opts(&[], true);
        assert_ne!(a, target_key("http://h/api/v1/write", &cfg, &skip));
    }
}
