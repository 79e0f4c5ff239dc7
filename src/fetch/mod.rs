//! `fetch`: pulls raw samples out of a live Prometheus HTTP API (remote read, raw PromQL range
//! selectors, or query_range) when no dump is possible, in planned, retried, resumable work
//! units. Series go to a [`SampleSink`]; `commands::fetch` gives the shard sink, edits applied.

pub mod api;
pub mod discover;
pub mod http;
pub mod plan;
pub mod remote_read;
pub mod spool;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::labels::Labels;
use crate::pipeline::feed::{Provenance, SampleSink};
use http::{Client, ClientConfig};
use plan::{Checkpoint, Match, Method, Sizing, Unit};

/// Subdirectory of the output directory holding the checkpoint and the spool.
pub const STATE_DIR: &str = ".prom2om-fetch";

/// `--method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodChoice {
    Auto,
    Use(Method),
}

#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub client: ClientConfig,
    /// Series selectors (a series matching any is fetched); empty: every series.
    pub selectors: Vec<Vec<Match>>,
    /// Inclusive time range, ms.
    pub start_ms: i64,
    pub end_ms: i64,
    pub method: MethodChoice,
    /// `range` step; default: the server's global scrape interval, else 15s.
    pub step_ms: Option<i64>,
    pub concurrency: usize,
    /// Estimated samples per request that work units are sized to.
    pub samples_per_request: u64,
    /// `--top-by LABEL=N`.
    pub top_by: Option<(String, usize)>,
    /// Where the checkpoint and spool live (`DIR/.prom2om-fetch`); `None`: not resumable.
    pub state_dir: Option<PathBuf>,
    /// Continue the fetch recorded in `state_dir`.
    pub resume: bool,
    /// Identifies the options that must match for `--resume` (URL, selectors, range, method).
    pub fingerprint: String,
    pub progress: bool,
}

/// What a fetch did.
#[derive(Clone, Debug, Default)]
pub struct FetchStats {
    pub method: Option<Method>,
    pub method_notes: Vec<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub series_discovered: u64,
    /// Series batches delivered (a series spanning several units counts once per unit).
    pub series_batches: u64,
    pub samples: u64,
    /// Staleness markers received (the sink carries, drops or keeps them).
    pub stale_markers: u64,
    pub histogram_chunks: u64,
    pub units: usize,
    pub units_resumed: usize,
    pub samples_resumed: u64,
    pub requests: u64,
    pub retries: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Runs the fetch into `sink`, the series as the server has them, a batch of samples at a time:
/// each batch sorted by time, batches of one series in any order, overlapping at most in
/// duplicates.
pub fn fetch(opts: &FetchOptions, sink: &mut impl SampleSink) -> Result<FetchStats> {
    let started = Instant::now();
    let client = Client::new(&opts.client)?;
    let mut stats = FetchStats::default();
    let config = server_config(&client)?;
    let (plan, checkpoint) = start(&client, opts, &config, &mut stats)?;
    let Plan {
        method,
        units,
        done,
        spool_len,
    } = plan;
    stats.method = Some(method);
    stats.units = units.len();
    stats.units_resumed = done.iter().filter(|d| **d).count();
    let spool = match &opts.state_dir {
        Some(d) if checkpoint.is_some() => {
            if spool_len > 0 {
                spool::replay(d, spool_len, |l, s| {
                    stats.samples_resumed += s.len() as u64;
                    deliver(sink, l, &s)
                })?;
            }
            Some(spool::SpoolWriter::open(d, spool_len)?)
        }
        _ => None,
    };
    let pending: Vec<usize> = (0..units.len()).filter(|&i| !done[i]).collect();
    let exec = worker::Exec {
        client: &client,
        method,
        step_ms: step_for(opts, &config),
        external_labels: &config.external_labels,
    };
    let bar = progress_bar(opts.progress, &units, stats.units_resumed);
    let mut c = Collector {
        sink,
        stats: &mut stats,
        spool,
        checkpoint,
        bar,
        warned_hist: false,
    };
    worker::run(&exec, &units, &pending, opts.concurrency, |msg| c.take(msg))?;
    c.bar.finish_and_clear();
    let n = &client.counters;
    stats.requests = n.requests.load(Ordering::Relaxed);
    stats.retries = n.retries.load(Ordering::Relaxed);
    stats.bytes = n.bytes.load(Ordering::Relaxed);
    stats.elapsed = started.elapsed();
    if stats.start_ms == 0 && stats.end_ms == 0 {
        stats.start_ms = opts.start_ms;
        stats.end_ms = opts.end_ms;
    }
    Ok(stats)
}

/// The server's configuration; an unreadable one (but a reachable server) is the defaults.
fn server_config(client: &Client) -> Result<api::ServerConfig> {
    match api::server_config(client) {
        Ok(c) => Ok(c),
        Err(e) if http::unreachable(&e) => Err(e),
        Err(e) => {
            eprintln!("prom2om: warning: {e:#}; assuming a 15s scrape interval");
            Ok(api::ServerConfig::default())
        }
    }
}

/// What a fetch runs: the method, the units and which are done, and the spool's length.
struct Plan {
    method: Method,
    units: Vec<Unit>,
    done: Vec<bool>,
    spool_len: u64,
}

/// The plan of the fetch recorded in the state directory (`--resume`), or a fresh one with its
/// checkpoint created (when there is a state directory).
fn start(
    client: &Client,
    opts: &FetchOptions,
    config: &api::ServerConfig,
    stats: &mut FetchStats,
) -> Result<(Plan, Option<Checkpoint>)> {
    let resume_from = match &opts.state_dir {
        Some(d) if opts.resume && Checkpoint::path(d).exists() => Some(d),
        _ => None,
    };
    if let Some(dir) = resume_from {
        let (cp, r) = Checkpoint::resume(dir, &opts.fingerprint)?;
        stats.start_ms = r.start_ms;
        stats.end_ms = r.end_ms;
        let plan = Plan {
            method: r.method,
            units: r.units,
            done: r.done,
            spool_len: r.spool_len,
        };
        return Ok((plan, Some(cp)));
    }
    let (method, units) = plan_fetch(client, opts, config, stats)?;
    let cp = match &opts.state_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            let (fp, start, end) = (&opts.fingerprint, opts.start_ms, opts.end_ms);
            Some(Checkpoint::create(d, fp, method, &units, start, end)?)
        }
        None => None,
    };
    let done = vec![false; units.len()];
    let plan = Plan {
        method,
        units,
        done,
        spool_len: 0,
    };
    Ok((plan, cp))
}

/// Takes the workers' messages on the calling thread: series into the spool and the sink, each
/// finished unit into the checkpoint.
struct Collector<'a, S> {
    sink: &'a mut S,
    stats: &'a mut FetchStats,
    spool: Option<spool::SpoolWriter>,
    checkpoint: Option<Checkpoint>,
    bar: indicatif::ProgressBar,
    warned_hist: bool,
}

impl<S: SampleSink> Collector<'_, S> {
    fn take(&mut self, msg: worker::Msg) -> Result<()> {
        let stats = &mut *self.stats;
        match msg {
            worker::Msg::Series(sd) => {
                stats.stale_markers += sd.stale_markers;
                if sd.histogram_chunks > 0 && !self.warned_hist {
                    self.warned_hist = true;
                    self.bar.suspend(|| eprintln!("prom2om: warning: skipping native histogram chunks (series {}): OpenMetrics backfill cannot carry them", sd.labels));
                }
                stats.histogram_chunks += sd.histogram_chunks;
                if sd.samples.is_empty() {
                    return Ok(());
                }
                stats.series_batches += 1;
                stats.samples += sd.samples.len() as u64;
                self.bar.set_message(format!("{} samples", stats.samples));
                if let Some(sp) = self.spool.as_mut() {
                    sp.append(&sd.labels, &sd.samples)?;
                }
                deliver(self.sink, sd.labels, &sd.samples)
            }
            worker::Msg::Done(i) => {
                if let (Some(sp), Some(cp)) = (self.spool.as_mut(), self.checkpoint.as_mut()) {
                    let len = sp.commit()?;
                    cp.done(i, len)?;
                }
                self.bar.inc(1);
                Ok(())
            }
            worker::Msg::Failed(e) => Err(e),
        }
    }
}

/// Hands one batch of one series to the sink. Remote read gives the values' exact bits.
fn deliver(sink: &mut impl SampleSink, labels: Labels, samples: &[(i64, f64)]) -> Result<()> {
    let id = sink.series(labels, Provenance::EXACT)?;
    for &(t, v) in samples {
        sink.float(id, t, v.to_bits())?;
    }
    Ok(())
}

/// Discovery, `--top-by`, method choice and the unit plan of a fresh fetch.
fn plan_fetch(
    client: &Client,
    opts: &FetchOptions,
    config: &api::ServerConfig,
    stats: &mut FetchStats,
) -> Result<(Method, Vec<Unit>)> {
    let (start, end) = (opts.start_ms, opts.end_ms);
    let sizing = sizing(opts, config);
    let selectors = selectors_to_fetch(client, opts, &sizing)?;
    let found = discover::discover(client, &selectors, start, end)?;
    stats.series_discovered = found.series;
    let method = match opts.method {
        MethodChoice::Use(m) => m,
        MethodChoice::Auto => match found.groups.first() {
            Some(g) => {
                let (m, notes) = discover::choose_method(client, &g.matchers, end)?;
                stats.method_notes = notes;
                m
            }
            None => Method::RemoteRead,
        },
    };
    let mut sizing = sizing;
    if method == Method::Range {
        sizing.step_ms = step_for(opts, config);
    }
    Ok((
        method,
        plan::plan(method, &found.groups, start, end, &sizing),
    ))
}

/// The selectors, narrowed by `--top-by` when given.
fn selectors_to_fetch(
    client: &Client,
    opts: &FetchOptions,
    sizing: &Sizing,
) -> Result<Vec<Vec<Match>>> {
    let (start, end) = (opts.start_ms, opts.end_ms);
    let selectors = discover::effective_selectors(&opts.selectors);
    let Some((label, n)) = &opts.top_by else {
        return Ok(selectors);
    };
    let found = discover::discover(client, &selectors, start, end)?;
    let windows = |sel: &[Match]| {
        let series = found
            .groups
            .iter()
            .filter(|g| g.matchers.ends_with(sel))
            .map(|g| g.series)
            .sum();
        let g = plan::Group {
            matchers: sel.to_vec(),
            series,
        };
        plan::plan(Method::Raw, &[g], start, end, sizing)
            .into_iter()
            .map(|u| (u.start_ms, u.end_ms))
            .collect()
    };
    discover::top_by(client, &selectors, label, *n, &windows)
}

fn sizing(opts: &FetchOptions, config: &api::ServerConfig) -> Sizing {
    Sizing {
        interval_ms: config.min_interval_ms.unwrap_or(15_000).max(1),
        samples_per_request: opts.samples_per_request.max(1),
        step_ms: step_for(opts, config),
        max_points: 11_000,
    }
}

fn step_for(opts: &FetchOptions, config: &api::ServerConfig) -> i64 {
    opts.step_ms
        .or(config.global_interval_ms)
        .unwrap_or(15_000)
        .max(1)
}

/// `--list-metrics`: metric names and the number of series the fetch would export (after
/// `--top-by`).
pub fn list_metrics(opts: &FetchOptions) -> Result<Vec<(String, u64)>> {
    let client = Client::new(&opts.client)?;
    let selectors = if opts.top_by.is_some() {
        // --top-by sizes its queries by the server's scrape interval, as the fetch does.
        let config = api::server_config(&client).unwrap_or_default();
        selectors_to_fetch(&client, opts, &sizing(opts, &config))?
    } else {
        discover::effective_selectors(&opts.selectors)
    };
    let found = discover::discover(&client, &selectors, opts.start_ms, opts.end_ms)?;
    Ok(found.per_metric.into_iter().collect())
}

/// Removes the checkpoint and spool of a finished fetch.
pub fn remove_state(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

fn progress_bar(on: bool, units: &[Unit], done: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !on || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(units.len() as u64);
    pb.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(8));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "fetch [{bar:30}] {pos}/{len} units, {msg} ({elapsed}, eta {eta})",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_position(done as u64);
    pb
}
