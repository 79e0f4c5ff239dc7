//! `fetch`: pulls raw samples out of a live Prometheus HTTP API (remote read, raw PromQL range
//! selectors, or query_range) when no dump is possible, in planned, retried, resumable work
//! units. Series go to a [`SampleSink`]; `commands::fetch` gives the shard sink, edits applied.

pub mod api;
mod collect;
pub mod discover;
pub mod histjson;
pub mod http;
pub mod plan;
pub mod remote_read;
pub mod spool;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::pipeline::feed::SampleSink;
use collect::{Collector, Order};
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
    /// Native histogram samples delivered, staleness markers excluded.
    pub histogram_samples: u64,
    /// Native histogram staleness markers received (the sink carries or drops them).
    pub histogram_stale_markers: u64,
    /// Native histogram points `--method range` cannot export.
    pub histograms_skipped: u64,
    /// Of the histograms `--method raw` rebuilt from JSON, what it took from other samples.
    pub guessed: histjson::Guessed,
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
        text,
    } = plan;
    sink.plan_ranges(&text);
    stats.method = Some(method);
    stats.units = units.len();
    stats.units_resumed = done.iter().filter(|d| **d).count();
    let spool = match &opts.state_dir {
        Some(d) if checkpoint.is_some() => {
            if spool_len > 0 {
                spool::replay(d, spool_len, |l, s, h| {
                    stats.samples_resumed += s.len() as u64;
                    let markers = h.iter().filter(|x| x.1.is_stale()).count() as u64;
                    stats.histogram_stale_markers += markers;
                    stats.histogram_samples += h.len() as u64 - markers;
                    collect::deliver(sink, l, &s, &h)
                })?;
            }
            Some(spool::SpoolWriter::open(d, spool_len)?)
        }
        _ => None,
    };
    // In time order, so that the sink gets the units one after another, each a pass over its
    // series in the server's order: it can write shards as they come (see `Collector`).
    let mut pending: Vec<usize> = (0..units.len()).filter(|&i| !done[i]).collect();
    pending.sort_by_key(|&i| units[i].start_ms);
    let exec = worker::Exec {
        client: &client,
        method,
        step_ms: step_for(opts, &config),
        external_labels: &config.external_labels,
    };
    let bar = progress_bar(opts.progress, &units, stats.units_resumed);
    let order = Order::new(&units, &pending, &done);
    let mut c = Collector::new(sink, &mut stats, (spool, checkpoint), bar, order);
    let ahead = 2 * opts.concurrency.max(1);
    worker::run(&exec, &units, &pending, (opts.concurrency, ahead), |msg| {
        c.take(msg)
    })?;
    c.finish();
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
    /// The units' text, estimated (none when resumed).
    text: Vec<TextEstimate>,
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
            text: Vec::new(),
        };
        return Ok((plan, Some(cp)));
    }
    let (method, units, text) = plan_fetch(client, opts, config, stats)?;
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
        text,
    };
    Ok((plan, cp))
}

/// Discovery, `--top-by`, method choice and the unit plan of a fresh fetch.
fn plan_fetch(
    client: &Client,
    opts: &FetchOptions,
    config: &api::ServerConfig,
    stats: &mut FetchStats,
) -> Result<(Method, Vec<Unit>, Vec<TextEstimate>)> {
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
    let units = plan::plan(method, &found.groups, start, end, &sizing);
    let text = text_estimate(&units, &found);
    Ok((method, units, text))
}

/// A unit's OpenMetrics text, estimated: its time range and bytes.
type TextEstimate = (i64, i64, u64);

/// The text each unit will give, from its estimated samples and the mean text prefix of its
/// metric's series (a unit pins one metric name; else the mean over all).
fn text_estimate(units: &[Unit], found: &discover::Discovery) -> Vec<TextEstimate> {
    let mean = |bytes: u64, series: u64| bytes / series.max(1);
    let all = mean(found.prefix_bytes.values().sum(), found.series);
    let of_unit = |u: &Unit| {
        let name = u
            .matchers
            .first()
            .filter(|m| m.name == crate::labels::METRIC_NAME && m.op == plan::Op::Eq);
        let per = name.and_then(|m| {
            let bytes = *found.prefix_bytes.get(&m.value)?;
            Some(mean(bytes, *found.per_metric.get(&m.value)?))
        });
        per.unwrap_or(all) + crate::pipeline::datadir::LINE_BYTES
    };
    units
        .iter()
        .map(|u| (u.start_ms, u.end_ms, u.est_samples * of_unit(u)))
        .collect()
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
