//! `prom2om fetch`: raw samples from a live Prometheus HTTP API in, the same sorted shards and
//! manifest as `convert` out (through the same sink).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};

use super::common::{
    describe_selectors, held, human_bytes, lock_output, now_ms, stderr_is_terminal,
    warn_quoted_names, DashboardArgs, FilterArgs, OutputArgs,
};
use super::convert::Stale;
use super::http_args::{parse_duration, HttpArgs};
use crate::exit_codes::ExitCode;
use crate::fetch::http::{mask_url, ClientConfig};
use crate::fetch::plan::{Match, Method};
use crate::fetch::{self, FetchOptions, FetchStats, MethodChoice, STATE_DIR};
use crate::pipeline::feed::Edited;
use crate::pipeline::sink::{Output, RunInfo, Sink, SinkOptions, SinkSummary, StaleMode};
use crate::select::filter::Filter;
use crate::timeparse;

/// Export raw samples from a Prometheus HTTP API into the same shards `convert` writes, when
/// there is no shell on the Prometheus host for `promtool tsdb dump`.
///
/// Example: prom2om fetch --url https://prom.example.com --user me --password-file pw -m '{__name__=~"elasticsearch_.*"}' --since 24h -o shards/
#[derive(ClapArgs, Debug)]
#[command(
    override_usage = "prom2om fetch --url <URL> --since <DURATION>|--start <TIME> -o <DIR|-> [OPTIONS]
       prom2om fetch --url <URL> --list-metrics [OPTIONS]"
)]
#[command(mut_arg("output", |a| a.required(false)
    .required_unless_present("list_metrics")
    .default_value_if("list_metrics", clap::builder::ArgPredicate::IsPresent, Some("-"))))]
pub struct Args {
    /// Base URL of the server, e.g. https://prom.example.com or http://host:9090/prometheus.
    /// `user:password@` in it is used as basic auth (and never printed).
    #[arg(long, value_name = "URL")]
    pub url: String,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub dashboard: DashboardArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// How to read samples. remote-read: POST /api/v1/read, streamed XOR chunks, the raw samples
    /// with their exact bits (Prometheus, Mimir, Cortex). raw: instant queries of {sel}[W], raw
    /// samples through PromQL (also Thanos, VictoriaMetrics). range: query_range at --step,
    /// resampled values, for servers that allow nothing else. auto tries them in that order.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,

    /// Step of the range method [default: the server's global scrape_interval, else 15s].
    #[arg(long, value_name = "DURATION")]
    pub step: Option<String>,

    /// Requests in flight at once. Prometheus serves 10 remote reads at a time by default.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,

    /// At most this many requests per second, over all threads.
    #[arg(long, value_name = "REQ/S")]
    pub rate_limit: Option<f64>,

    /// Size of one request, in estimated samples (at the smallest scrape interval in the
    /// server's configuration). Keep it well under the server's query.max-samples (50M).
    #[arg(long, value_name = "N", default_value_t = 2_000_000)]
    pub samples_per_request: u64,

    /// Continue an interrupted fetch into the same output directory: finished work units are
    /// taken from its checkpoint, the rest is fetched. The options must be the same.
    #[arg(long)]
    pub resume: bool,

    #[command(flatten)]
    pub http: HttpArgs,

    /// Print the metric names and series counts the selectors would export, and stop. Without
    /// --start or --since it counts the series with samples at any time up to --end (or now).
    #[arg(long)]
    pub list_metrics: bool,

    /// Narrow a high-cardinality label: keep only the N values of LABEL whose series reach the
    /// largest sample value within the time range (max_over_time, then max over the series that
    /// share the value), e.g. --top-by index=20. Series without LABEL are kept.
    #[arg(long, value_name = "LABEL=N")]
    pub top_by: Option<String>,

    /// What to do with staleness markers, which remote read gives with their exact bits:
    /// `carry` writes them to a sidecar beside each shard (WINDOW-SHARD.stale.om.gz, listed in
    /// the manifest; `import` writes them into the home blocks as markers, `import
    /// --remote-write` sends them), `drop` removes them, `keep`
    /// writes them as NaN in the shards. With -o - there is no sidecar: `carry` drops them. The
    /// raw and range methods go through PromQL, which never returns a marker.
    #[arg(long, value_enum, default_value_t = Stale::Carry)]
    pub stale: Stale,

    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodArg {
    Auto,
    RemoteRead,
    Raw,
    Range,
}

pub fn run(args: Args) -> Result<()> {
    let mut filter = args.filter.resolve()?;
    let dashboards = args.dashboard.apply(&mut filter, args.quiet)?;
    let progress = stderr_is_terminal() && !args.quiet;
    let mut opts = fetch_options(&args, &filter, progress)?;
    if args.list_metrics {
        return list_metrics(&opts);
    }
    let stale = args.stale.mode();
    let mut sink_opts = args.output.sink_options(stale, progress)?;
    // The units come to the sink in time order, each with its series in the server's order: the
    // shards of each are written as they come (input out of order falls back to the sort). A
    // resumed fetch has no estimate to lay its shards out by: it sorts.
    sink_opts.stream = !args.resume;
    let _lock = lock_output(&sink_opts.output)?;
    opts.state_dir = state_dir(&args, &mut sink_opts)?;
    let mut sink = Sink::create(sink_opts)?;
    if !args.output.allow_merge {
        sink.refuse_merges(&filter.edits);
    }
    let mut edited = Edited::new(&mut sink, &filter.edits);
    let result = fetch::fetch(&opts, &mut edited);
    let overrode = edited.overrode;
    let stats = match result {
        Ok(s) => s,
        Err(e) => return Err(failed(e, opts.state_dir.as_deref(), sink)),
    };
    let histograms = sink.histogram_samples();
    if stats.samples + stats.samples_resumed == 0 && histograms == 0 && !args.output.allow_empty {
        if let Some(state) = &opts.state_dir {
            fetch::remove_state(state)?;
        }
        sink.abandon();
        return Err(nothing_kept(&args.url, &filter, &stats));
    }
    if let Some(l) = &overrode {
        eprintln!(
            "prom2om: warning: --add-label overrides labels the series already have, e.g. of {l}"
        );
    }
    let mut f = filter.clone();
    f.start = Some(stats.start_ms);
    f.end = Some(stats.end_ms);
    let mut filters = f.describe(stale.as_str());
    filters.dashboards = dashboards.as_ref().map(|d| d.recorded.clone());
    let info = RunInfo {
        source: "fetch".to_string(),
        inputs: vec![mask_url(&args.url)],
        filters,
        losses: Vec::new(),
    };
    let summary = sink.finish(info)?;
    super::common::warn_later(&summary.later, &args.output.output)?;
    warn_quoted_names(&summary.quoted_names);
    if let Some(state) = &opts.state_dir {
        fetch::remove_state(state)?;
    }
    if !args.quiet {
        let out = (args.output.output.as_str(), stale);
        print_summary(&stats, &summary, &mask_url(&args.url), out);
        if let Some(d) = &dashboards {
            d.print_summary(Some(&args.output.output));
        }
    }
    Ok(())
}

/// The fetch `args` and the resolved `filter` ask for (no state directory yet).
fn fetch_options(args: &Args, filter: &Filter, progress: bool) -> Result<FetchOptions> {
    let end = filter.end.unwrap_or_else(now_ms);
    let start = match filter.start {
        Some(start) => start,
        // Listing is cheap: without a range it looks at everything the server holds.
        None if args.list_metrics => {
            if !args.quiet {
                eprintln!(
                    "prom2om: listing series with samples from 1970-01-01T00:00:00Z to {} (give \
                     --since or --start to narrow)",
                    crate::timeparse::format_time(end)
                );
            }
            0
        }
        None => return Err(crate::bad_input!("fetch needs --start or --since")),
    };
    let selectors: Vec<Vec<Match>> = filter
        .selectors
        .iter()
        .map(|s| s.matchers.iter().map(Match::from).collect())
        .collect();
    Ok(FetchOptions {
        client: ClientConfig {
            rate_limit: args.rate_limit,
            ..args.http.client_config(&args.url)?
        },
        selectors,
        start_ms: start,
        end_ms: end,
        method: match args.method {
            MethodArg::Auto => MethodChoice::Auto,
            MethodArg::RemoteRead => MethodChoice::Use(Method::RemoteRead),
            MethodArg::Raw => MethodChoice::Use(Method::Raw),
            MethodArg::Range => MethodChoice::Use(Method::Range),
        },
        step_ms: args.step.as_deref().map(parse_duration).transpose()?,
        concurrency: args.concurrency as usize,
        samples_per_request: args.samples_per_request,
        top_by: args.top_by.as_deref().map(parse_top_by).transpose()?,
        state_dir: None,
        resume: args.resume,
        fingerprint: fingerprint(args),
        progress,
    })
}

/// The checkpoint and spool directory of a fetch into a directory. An interrupted fetch there
/// is continued (`--resume`, the output then replaced at the end as with `--force`), started
/// over (`--force`) or refused.
fn state_dir(args: &Args, sink_opts: &mut SinkOptions) -> Result<Option<PathBuf>> {
    let Output::Dir { path, .. } = &sink_opts.output else {
        if args.resume {
            return Err(crate::bad_input!(
                "--resume needs an output directory, not -o -"
            ));
        }
        return Ok(None);
    };
    let state = path.join(STATE_DIR);
    let interrupted = fetch::plan::Checkpoint::path(&state).exists();
    if interrupted && args.resume {
        // The checkpoint and spool stay; stray shards of the interrupted run (and any earlier
        // export) are replaced when the resumed run completes, as with --force.
        sink_opts.force = true;
    } else if interrupted && args.output.force {
        fetch::remove_state(&state)?;
    } else if interrupted {
        return Err(crate::bad_input!(
            "{} holds an interrupted fetch: add --resume to continue it, or --force to start over",
            path.display()
        ));
    } else if args.resume {
        eprintln!(
            "prom2om: warning: nothing to resume in {}; starting a new fetch",
            path.display()
        );
    }
    Ok(Some(state))
}

/// The error a failed fetch ends with. Label edits that merge series are bad input: nothing to
/// resume, and nothing left behind.
fn failed(e: anyhow::Error, state: Option<&Path>, sink: Sink) -> anyhow::Error {
    if ExitCode::of(&e) == ExitCode::BadInput {
        if let Some(Err(r)) = state.map(fetch::remove_state) {
            return r;
        }
        sink.abandon();
        return e;
    }
    match state {
        // Only a transfer cut short is worth resuming: a refusal (a bad URL, a 404, a login
        // page, options that differ from the checkpoint) would meet the resumed run as well.
        Some(state)
            if crate::fetch::http::gave_up(&e) && fetch::plan::Checkpoint::path(state).exists() =>
        {
            e.context("fetch interrupted; rerun the same command with --resume to continue")
        }
        _ => e,
    }
}

/// Why a fetch that kept no sample fails.
fn nothing_kept(url: &str, filter: &Filter, stats: &FetchStats) -> anyhow::Error {
    let selectors = match describe_selectors(filter) {
        s if s.is_empty() => "any selector".to_string(),
        s => s,
    };
    let (from, to) = (
        timeparse::format_time(stats.start_ms),
        timeparse::format_time(stats.end_ms),
    );
    let held = match stats.series_discovered {
        0 => format!("has no series matching {selectors} from {from} to {to}"),
        n => {
            format!("has {n} series matching {selectors}, with no float sample from {from} to {to}")
        }
    };
    crate::bad_input!(
        "nothing kept: {} {held}; --allow-empty accepts an empty output",
        mask_url(url)
    )
}

fn parse_top_by(s: &str) -> Result<(String, usize)> {
    let bad = || crate::bad_input!("--top-by {s:?}: expected LABEL=N with N >= 1");
    let (l, n) = s.split_once('=').ok_or_else(bad)?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || !crate::labels::is_classic_label_name(l) {
        return Err(bad());
    }
    Ok((l.to_string(), n))
}

/// What must not change between a fetch and its `--resume`.
fn fingerprint(a: &Args) -> String {
    let f = &a.filter;
    format!(
        "url={} method={:?} match={:?} start={:?} end={:?} since={:?} step={:?} top_by={:?} spr={} dashboards={:?}",
        mask_url(&a.url),
        a.method,
        f.matchers,
        f.start,
        f.end,
        f.since,
        a.step,
        a.top_by,
        a.samples_per_request,
        a.dashboard
    )
}

fn list_metrics(opts: &FetchOptions) -> Result<()> {
    use std::io::Write;
    let rows = fetch::list_metrics(opts)?;
    let mut out = std::io::BufWriter::new(crate::exit_codes::stdout());
    let total: u64 = rows.iter().map(|r| r.1).sum();
    for (name, n) in &rows {
        writeln!(out, "{n:>10}  {name}")?;
    }
    writeln!(out, "{total:>10}  series in {} metrics", rows.len())?;
    out.flush()?;
    Ok(())
}

/// The native histograms fetched, and what the method could not know of them.
fn print_histograms(st: &FetchStats) {
    if st.histogram_samples + st.histogram_stale_markers > 0 {
        eprintln!(
            "prom2om: native histograms: {} histogram samples, {} histogram staleness markers",
            st.histogram_samples, st.histogram_stale_markers
        );
    }
    if st.histograms_skipped > 0 {
        eprintln!(
            "prom2om: histogram points skipped {}: --method range cannot export native \
             histograms (query_range resamples them); use --method remote-read (exact) or raw",
            st.histograms_skipped
        );
    }
    if st.method == Some(fetch::plan::Method::Raw) && st.histogram_samples > 0 {
        let g = &st.guessed;
        eprintln!(
            "prom2om: note: --method raw rebuilt the histograms from the query API's JSON, which \
             cannot say their counter-reset hints (written unknown), whether their counts were \
             integers (written as float histograms), their empty buckets, or custom bounds only \
             empty buckets show; {} took their schema and {} their zero threshold from another \
             sample of their series, {} from none; --method remote-read carries them exactly",
            g.schema, g.zero_threshold, g.unknown
        );
    }
}

fn print_summary(st: &FetchStats, s: &SinkSummary, url: &str, (out, stale): (&str, StaleMode)) {
    let secs = st.elapsed.as_secs_f64().max(1e-9);
    let method = st.method.map_or("-", |m| m.as_str());
    for n in &st.method_notes {
        eprintln!("prom2om: {n}");
    }
    eprintln!(
        "prom2om: fetched {} series, {} samples{} from {url} with {method} in {secs:.2}s ({:.0} samples/s)",
        s.series,
        // Markers apart from the samples, as the manifest counts them.
        (st.samples + st.samples_resumed).saturating_sub(st.stale_markers),
        if st.stale_markers > 0 {
            format!(" and {} staleness markers", st.stale_markers)
        } else {
            String::new()
        },
        st.samples as f64 / secs
    );
    let carried = s.written.markers.markers;
    let kept = if stale == StaleMode::Keep {
        st.stale_markers
    } else {
        0
    };
    eprintln!(
        "prom2om: staleness markers dropped {}, kept {kept}, carried in sidecars {carried}; duplicates dropped {}",
        st.stale_markers.saturating_sub(kept + carried),
        s.written.duplicates
    );
    print_histograms(st);
    eprintln!(
        "prom2om: {} requests, {} retries, {} received; {} work units{}",
        st.requests,
        st.retries,
        human_bytes(st.bytes),
        st.units,
        if st.units_resumed > 0 {
            format!(" ({} taken from the checkpoint)", st.units_resumed)
        } else {
            String::new()
        }
    );
    if out != "-" {
        eprintln!(
            "prom2om: wrote {}, {} ({} of OpenMetrics), {} to {out}",
            super::common::count(s.shards as u64, "shard"),
            human_bytes(s.bytes),
            human_bytes(s.written.uncompressed_bytes),
            held(&s.written)
        );
    }
}
