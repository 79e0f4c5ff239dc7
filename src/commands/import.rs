//! `prom2om import`: a shard directory into a Prometheus data dir (blocks written by prom2om, or by
//! promtool with `--promtool`) or a remote-write receiver, checked against the manifest; prints
//! one line per shard as it finishes (above progress bars), a summary, and for blocks how
//! Prometheus will see them, for a receiver the `--verify-url` count.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args as ClapArgs;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::http_args::HttpArgs;
use crate::fetch::http::{mask_url, Client};
use crate::format::shard_dir::ShardDir;
use crate::import::blocks::read_blocks;
use crate::import::receiver::Receiver;
use crate::import::{future, remote_write, tsdb, verify_remote};
use crate::import::{Destination, Outcome, Progress, ShardResult, Summary};
use crate::select::filter::LabelEdits;

/// The subcommand's one-line help is its variant's doc in `cli.rs`; the details are here.
const DETAILS: &str = "\
Every shard is read once, and verified in that read as `prom2om verify` does (size, sha256, \
the size of its text, OpenMetrics validity, counts, window, sidecars); nothing of a shard that \
fails is written. Each shard becomes one TSDB block, written by prom2om itself (no promtool \
needed), --jobs shards at once: built in memory as the shard is read, with the staleness \
markers its sidecar files carry (a shard directory written from a data dir or by fetch) as \
real markers, and their native histograms as histogram chunks. A Prometheus too old for the \
kinds of native histogram the side files hold (integer: 2.40, float: 2.42, custom buckets: \
2.54), running on DATA_DIR or else first on PATH, has the import refused before anything is \
written. The block is written into a staging dir inside DATA_DIR and moved into DATA_DIR \
only when it holds exactly the manifest's sample count (plus its markers); in a directory with \
sidecars, whose one check spans the shards of a window, only once every shard of its window \
has been read. A failed shard stops nothing else; running the same command again retries the \
failed shards and skips the imported ones (state in DATA_DIR/.prom2om-import).

With --promtool (or --promtool=PATH) the blocks are made instead by `promtool tsdb \
create-blocks-from openmetrics`, as prom2om 0.1 did: the text of a gzip shard, from the read \
that verifies it, is written into the staging dir for it; it is slower, needs promtool 2.51+ \
for quoted names, and cannot write staleness markers or native histograms (it says how many \
it leaves out).

A running Prometheus loads new blocks at its next block reload (every minute). At that reload it \
deletes blocks ending more than --storage.tsdb.retention.time (default 15d) before the newest \
block: import old data into a server started with a long enough retention.

With --remote-write URL the shards go instead to any Prometheus remote-write receiver \
(VictoriaMetrics, Mimir, Thanos Receive, Cortex, Prometheus): each shard read once and sent as \
it is verified in the same way (a shard whose files do not match the manifest's sizes and \
checksums sends nothing; a sidecar series in the wrong shard of its window is found once the \
window is sent, and fails its shard), window by window in time order (Prometheus and Mimir \
take old samples only within their out-of-order window behind their newest sample), in \
requests of --batch-samples, --concurrency at once, each series' samples in order. Timeouts, \
dropped connections, 429 (after its Retry-After) and 5xx are retried with backoff and jitter \
(--retries); another 4xx stops that shard with the receiver's message, and the others go on. \
A request whose answer was lost (the receiver may have stored it: a dropped connection, an \
answer later than --timeout, a 5xx from a proxy), or that the receiver refuses for what it \
holds (out of order, duplicate sample, out of bounds), is settled by asking the receiver's \
query API what it holds of the request's series over its time span: what it holds is not sent \
again, so a Prometheus without an out-of-order window does not refuse the retry and a \
VictoriaMetrics does not store it twice. The query API is --verify-url, or the write URL \
without /api/v1/write (where Prometheus and VictoriaMetrics serve it). State in \
DIR/.prom2om-remote-write records per receiver the pushed shards and, for a shard the \
receiver took part of (a refusal, a kill), how far each lane got: running the same command \
again sends only the rest, asking first about the requests that were under way.

A shard directory with native histograms is pushed only after asking the receiver what it is \
and takes, before the first sample (an empty remote write 2.0 request, which writes nothing, \
and Prometheus's build info), as the first line of the output says: over remote write 2.0 where \
the receiver takes it (Prometheus 3: every kind, each answer's Written headers checked), else \
1.0 (Prometheus 2.42+: histograms with custom buckets, NHCB, left out and counted, as they need \
2.0). VictoriaMetrics, which keeps no native histogram, and a Prometheus before 2.42 are \
refused unless --skip-histograms, which pushes the floats only and counts what it leaves out. \
A Prometheus up to 3.8 stores native histograms only with --enable-feature=native-histograms.

With --verify-url URL (the receiver's Prometheus query API) each window is then counted on the \
receiver: sum(count_over_time(...)) over the window's first to last sample, restricted to the \
--add-label labels, and compared exactly with what that receiver keeps of the manifest's \
count: all of it for Prometheus (and stores built on its TSDB: Mimir, Thanos, Cortex), all but \
the NaN samples for VictoriaMetrics, which is found out by asking, and the native histogram \
samples pushed. A window that differs is \
printed and the exit code is 1; a window holding fewer samples than pushed is marked, and the \
same command again asks the receiver about each request of it and sends only what it lacks. \
Newly pushed data takes a moment to become searchable: a short window is asked again for up \
to 10 s.

Exit codes: 0 every shard imported (now or before); 1 a shard failed, a window differs \
under --verify-url, promtool missing or too \
old for the shards' quoted names (2.51+ needed, with --promtool), DATA_DIR in use (a running Prometheus, or \
another import holding its staging lock), receiver unreachable; 2 bad usage or no manifest in \
DIR; 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM.

Examples:
  prom2om import shards/ --tsdb ./data
  prom2om import shards/ --remote-write http://127.0.0.1:8428/api/v1/write \\
    --add-label customer=acme --verify-url http://127.0.0.1:8428";

#[derive(ClapArgs, Debug)]
#[command(after_long_help = DETAILS)]
#[command(override_usage = "prom2om import <DIR> --tsdb <DATA_DIR> [OPTIONS]
       prom2om import <DIR> --remote-write <URL> [OPTIONS]")]
#[command(mut_args(remote_only))]
pub struct Args {
    /// Shard directory written by `prom2om convert -o` or `prom2om fetch -o` (holds
    /// manifest.json).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,

    /// Prometheus data directory (its --storage.tsdb.path) to add the blocks to; created when
    /// missing.
    #[arg(
        long,
        value_name = "DATA_DIR",
        required_unless_present = "remote_write"
    )]
    pub tsdb: Option<PathBuf>,

    /// Push the shards instead to this Prometheus remote-write endpoint (VictoriaMetrics,
    /// Mimir, Thanos Receive, Cortex, Prometheus with --web.enable-remote-write-receiver), e.g.
    /// http://host:8428/api/v1/write: remote write 1.0, or 2.0 for native histograms where the
    /// receiver takes it. `user:password@` in it is basic auth (never printed).
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<String>,

    /// Samples per remote-write request.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH_SAMPLES,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub batch_samples: u64,

    /// Remote-write requests in flight at once; a series always goes through the same one of
    /// these N ordered lanes, so its samples arrive in time order.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,

    /// After the push, ask this Prometheus query API (the receiver's, e.g. http://vm:8428 or
    /// http://mimir/prometheus) whether each window holds exactly what the receiver keeps of the
    /// manifest's sample count. During the push it is asked what the receiver holds of a request
    /// whose answer was lost. The auth and TLS options apply to it too.
    #[arg(long, value_name = "URL", requires = "remote_write")]
    pub verify_url: Option<String>,

    /// Push no native histogram sample (nor histogram staleness marker): they are left out and
    /// counted. Needed for a receiver that keeps no native histogram (VictoriaMetrics, which
    /// turns them into buckets of its own) or too old a Prometheus, which are refused without it.
    #[arg(long, requires = "remote_write")]
    pub skip_histograms: bool,

    /// Add (or replace) a label on every pushed series, e.g. --add-label customer=acme
    /// (repeatable): tells customers apart in a shared store.
    #[arg(long = "add-label", value_name = "NAME=VALUE")]
    pub add_labels: Vec<String>,

    #[command(flatten)]
    pub http: HttpArgs,

    /// How many shards are built (or promtool processes run) at once. Default: the number of
    /// cores.
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,

    /// Make the blocks with `promtool tsdb create-blocks-from openmetrics` instead of prom2om's
    /// own block writer: --promtool runs the promtool on PATH, --promtool=PATH that binary.
    /// Slower, and it cannot carry staleness markers or native histograms.
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true,
          default_missing_value = "promtool")]
    pub promtool: Option<PathBuf>,

    /// Import even when another process (a running Prometheus) uses DATA_DIR: its lock file
    /// is held, or it has files in DATA_DIR open. A running server loads the new blocks at its
    /// next block reload, within about a minute.
    #[arg(long)]
    pub force: bool,

    /// Import samples later than now too. Without it a shard directory holding any is refused
    /// before anything is imported: they come from a host whose clock was ahead, and a
    /// Prometheus that holds them counts retention back from them (deleting older blocks) and
    /// refuses every current sample as out of bounds until its clock passes them.
    #[arg(long)]
    pub allow_future: bool,
}

/// Samples per request unless --batch-samples says otherwise; measured against VictoriaMetrics
/// (README, "Into a remote-write receiver").
pub const DEFAULT_BATCH_SAMPLES: u64 = 10_000;

/// The remote-write options conflict with --tsdb, which would silently ignore them. (Set on
/// --tsdb: clap checks a conflict only for options actually given, defaults aside.)
fn remote_only(a: clap::Arg) -> clap::Arg {
    const REMOTE: &[&str] = &[
        "remote_write",
        "skip_histograms",
        "batch_samples",
        "concurrency",
        "add_labels",
        "verify_url",
        "timeout",
        "retries",
        "user",
        "password",
        "password_file",
        "bearer_token",
        "bearer_token_file",
        "headers",
        "ca_file",
        "cert_file",
        "key_file",
        "insecure_skip_verify",
        "proxy",
    ];
    match a.get_id().as_str() {
        "tsdb" => a.conflicts_with_all(REMOTE),
        "remote_write" => a.conflicts_with_all(["jobs", "promtool", "force"]),
        _ => a,
    }
}

/// How long a window found short is asked again: new data takes a moment to become searchable.
const VERIFY_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn run(args: Args) -> Result<()> {
    // The manifest is read once, and anything wrong with it is bad input (exit 2).
    let dir = ShardDir::open(&args.dir)?;
    dir.refuse_unreadable()?;
    refuse_future(&args, &dir)?;
    for l in &dir.manifest().losses {
        eprintln!("prom2om: warning: {}", l.describe());
    }
    match &args.tsdb {
        Some(data) => into_tsdb(&args, &dir, data),
        None => into_receiver(&args, &dir),
    }
}

/// Refuses a directory holding samples later than now (unless --allow-future), before anything
/// is imported; with the flag, says that they are imported.
fn refuse_future(args: &Args, dir: &ShardDir) -> Result<()> {
    let now = future::now_ms();
    let Some(a) = future::ahead(dir, now) else {
        return Ok(());
    };
    if !args.allow_future {
        let n = future::count(dir, &a, now)?;
        return Err(future::refusal(dir, &a, n, now, args.tsdb.is_none()));
    }
    eprintln!(
        "prom2om: warning: importing samples later than now (--allow-future), the latest at {} \
         ({} ahead of this host's clock)",
        rfc3339(a.latest_ms),
        future::span(a.latest_ms - now)
    );
    Ok(())
}

fn into_tsdb(args: &Args, dir: &ShardDir, data: &Path) -> Result<()> {
    let jobs = match args.jobs {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let opts = tsdb::Options {
        promtool: args.promtool.clone(),
        jobs,
        force: args.force,
    };
    let bars = Bars::new(false);
    let summary = tsdb::import(dir, data, &opts, &bars)?;
    bars.clear();
    print_blocks_summary(&summary, data);
    let failed = summary.failed();
    if let (
        true,
        Destination::Blocks {
            no_space: true,
            staging,
        },
    ) = (failed > 0, &summary.destination)
    {
        bail!(
            "{failed} of {} shards failed (listed above): no space left in the staging dir {} \
             (DATA_DIR's filesystem), where each shard's blocks are built (and, with \
             --promtool, each gzip shard is decompressed), --jobs at a time. Free space there (or use fewer --jobs), \
             then run the same command again: the imported shards are skipped",
            summary.results.len(),
            staging.display()
        );
    }
    if failed > 0 {
        bail!(
            "{failed} of {} shards failed (listed above); run the same command again to retry \
             them, the imported ones are skipped",
            summary.results.len()
        );
    }
    Ok(())
}

fn into_receiver(args: &Args, dir: &ShardDir) -> Result<()> {
    let url = args
        .remote_write
        .clone()
        .expect("clap requires --tsdb or --remote-write");
    let query = match args.verify_url.as_deref().or(query_api_of(&url)) {
        Some(q) => Some(args.http.client_config(q)?),
        None => None,
    };
    let opts = remote_write::Options {
        client: args.http.client_config(&url)?,
        batch_samples: args.batch_samples as usize,
        concurrency: args.concurrency as usize,
        edits: LabelEdits::parse(&[], &args.add_labels)?,
        query,
        skip_histograms: args.skip_histograms,
    };
    let bars = Bars::new(true);
    let summary = remote_write::push(dir, &opts, &bars)?;
    bars.clear();
    print_push_summary(&summary, &mask_url(&url));
    let failed = summary.failed();
    if failed > 0 {
        bail!(
            "{failed} of {} shards were not pushed (listed above); run the same command again: \
             it sends what the receiver has not taken of them, and skips the pushed ones",
            summary.results.len()
        );
    }
    if let (
        Some(v),
        Destination::Receiver {
            nan,
            histograms,
            plan,
            ..
        },
    ) = (&args.verify_url, &summary.destination)
    {
        let read = verify_remote::Read {
            nan,
            histograms,
            plan,
        };
        verify_receiver(args, dir, v, &opts, &read)?;
    }
    Ok(())
}

/// The query API of a receiver whose write endpoint is `url`, where Prometheus and a single
/// VictoriaMetrics serve it: the URL without `/api/v1/write`. Asked (only) what the receiver
/// holds of a request whose fate is unknown, when `--verify-url` does not say.
fn query_api_of(url: &str) -> Option<&str> {
    url.split('?')
        .next()
        .and_then(|u| u.trim_end_matches('/').strip_suffix("/api/v1/write"))
}

/// Counts each window on the receiver; one line per window that differs and a summary line.
/// Windows found short are marked for the next run to check request by request.
fn verify_receiver(
    args: &Args,
    dir: &ShardDir,
    url: &str,
    opts: &remote_write::Options,
    read: &verify_remote::Read,
) -> Result<()> {
    let client = Client::new(&args.http.client_config(url)?)?;
    let receiver = Receiver::identify(&client)?;
    let matchers = &opts.edits.add;
    let checks = verify_remote::verify(dir, &client, &receiver, matchers, VERIFY_SETTLE, read)?;
    let mut short = Vec::new();
    let mut over = 0;
    for c in checks.iter().filter(|c| !c.holds_all()) {
        if c.held < c.want {
            short.push(c.window_start_ms);
        } else {
            over += 1;
        }
        out_line(&differs_line(c, &receiver));
    }
    let n = checks.len();
    let at = format!("{} ({})", client.display_url(), receiver.describe());
    if !short.is_empty() || over > 0 {
        let mut why = format!(
            "{} of {n} windows differ on {at} (listed above)",
            short.len() + over
        );
        if !short.is_empty() {
            let shards = remote_write::recheck(dir, opts, &short)?;
            why.push_str(&format!(
                ". {} fewer samples than were pushed: requests the receiver (or a proxy in front \
                 of it) answered without storing them. Run the same command again: it asks the \
                 receiver what it holds of each request of {} ({shards} shards) and sends only \
                 what it lacks",
                match short.len() {
                    1 => "1 holds".to_string(),
                    k => format!("{k} hold"),
                },
                if short.len() == 1 {
                    "that window"
                } else {
                    "those windows"
                }
            ));
        }
        if over > 0 {
            why.push_str(&format!(
                ". {} more samples than the manifest: other data in the same series and \
                 times, or samples stored twice (a VictoriaMetrics without \
                 -dedup.minScrapeInterval keeps both copies of a request sent again after its \
                 answer was lost), which prom2om cannot take back",
                match over {
                    1 => "1 holds".to_string(),
                    k => format!("{k} hold"),
                }
            ));
        }
        bail!("{why}");
    }
    let nan_less: u64 = checks
        .iter()
        .map(|c| c.expected + c.histograms - c.want)
        .sum();
    let nan = match nan_less {
        0 => String::new(),
        k => format!(" less its {k} NaN samples"),
    };
    let hist: u64 = checks.iter().map(|c| c.histograms).sum();
    let hist = match hist {
        0 => String::new(),
        k => format!(" and {}", super::common::count(k, "histogram sample")),
    };
    // PromQL counts no staleness marker (count_over_time skips them): the markers were checked
    // as the receiver accepted them, each shard's against its sidecar's count.
    let t = &dir.manifest().totals;
    let hist_markers = match read.plan.histograms {
        true => t.histogram_stale_markers,
        false => 0,
    };
    let markers = match (t.stale_markers, hist_markers) {
        (0, 0) => String::new(),
        (k, 0) => format!(
            "; the {k} staleness markers of the sidecars, which PromQL does not count, were each accepted by the receiver"
        ),
        _ => "; the staleness markers (of floats and of native histograms) of the side files, \
              which PromQL does not count, were each accepted by the receiver"
            .to_string(),
    };
    out_line(&format!(
        "verified {n} windows on {at}: all hold exactly the manifest's count{nan}{hist}{markers}"
    ));
    Ok(())
}

/// The line of a window that differs: what it holds, what it should, and why that much.
fn differs_line(c: &verify_remote::WindowCheck, receiver: &Receiver) -> String {
    let because = match (c.nan, receiver.keeps_nan()) {
        (0, _) => format!("the manifest's {}", c.expected),
        (k, false) => format!(
            "the manifest's {} less its {k} NaN samples, which the receiver does not keep",
            c.expected
        ),
        (k, true) if c.held + k == c.want => format!(
            "the manifest's {}, {k} of them NaN, which it keeps (short by exactly those NaN: a \
             store that drops NaN would hold this, and prom2om knows only VictoriaMetrics to)",
            c.expected
        ),
        (k, true) => format!(
            "the manifest's {}, {k} of them NaN, which it keeps",
            c.expected
        ),
    };
    format!(
        "DIFFERS window {} ({} to {}): the receiver holds {} samples, it should hold {}: {because}",
        rfc3339(c.window_start_ms),
        rfc3339(c.min_ts_ms),
        rfc3339(c.max_ts_ms),
        c.held,
        c.want,
    )
}

fn rfc3339(ms: i64) -> String {
    crate::timeparse::format_time(ms)
}

/// The per-shard lines (printed as shards finish, above the bars) and the bars, on a terminal.
struct Bars {
    multi: Option<MultiProgress>,
    shards: ProgressBar,
    samples: ProgressBar,
    /// Into a receiver: its words, and the samples bar shows the rate.
    push: bool,
}

impl Bars {
    fn new(push: bool) -> Bars {
        if !std::io::stderr().is_terminal() {
            return Bars {
                multi: None,
                shards: ProgressBar::hidden(),
                samples: ProgressBar::hidden(),
                push,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let style = |t: &str| {
            ProgressStyle::with_template(t)
                .expect("static template")
                .progress_chars("=> ")
        };
        let shards = multi.add(ProgressBar::new(0));
        shards.set_style(style(
            "shards  [{bar:30}] {pos}/{len} {elapsed} (eta {eta})",
        ));
        let samples = multi.add(ProgressBar::new(0));
        samples.set_style(style(if push {
            "samples [{bar:30}] {human_pos}/{human_len} ({per_sec}, eta {eta})"
        } else {
            "samples [{bar:30}] {human_pos}/{human_len}"
        }));
        Bars {
            multi: Some(multi),
            shards,
            samples,
            push,
        }
    }

    /// Prints a per-shard line above the bars.
    fn print_line(&self, line: &str) {
        match &self.multi {
            Some(m) => m.suspend(|| out_line(line)),
            None => out_line(line),
        }
    }

    fn clear(&self) {
        self.shards.finish_and_clear();
        self.samples.finish_and_clear();
    }
}

impl Progress for Bars {
    /// Says the shards are being verified (before the bars have lengths).
    fn verifying(&self, shards: u64) {
        self.shards
            .set_message(format!("verifying {shards} shards"));
        self.shards.tick();
    }

    fn planned(&self, shards: u64, samples: u64) {
        self.shards.set_message("");
        self.shards.set_length(shards);
        self.samples.set_length(samples);
    }

    fn samples_done(&self, samples: u64) {
        self.samples.inc(samples);
    }

    fn warn(&self, text: &str) {
        let line = format!("prom2om: warning: {text}");
        match &self.multi {
            Some(m) => m.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    fn finished(&self, r: &ShardResult) {
        self.print_line(&shard_line(r, self.push));
        if !matches!(r.outcome, Outcome::Skipped | Outcome::Recovered { .. }) {
            self.shards.inc(1);
        }
    }
}

fn shard_line(r: &ShardResult, push: bool) -> String {
    match &r.outcome {
        Outcome::Imported {
            blocks,
            samples,
            markers,
            histograms,
            histogram_markers,
            ..
        } => format!(
            "ok      {}: {} in {}, as the manifest says",
            r.file,
            super::common::counts(*samples, *markers, *histograms, *histogram_markers),
            super::common::count(blocks.len() as u64, "block")
        ),
        Outcome::Pushed {
            samples,
            requests,
            markers,
            histograms,
            histogram_markers,
            left_out,
            earlier,
        } => format!(
            "ok      {}: {} in {}, as the manifest says{}{}",
            r.file,
            super::common::counts(*samples, *markers, *histograms, *histogram_markers),
            super::common::count(*requests, "request"),
            match left_out {
                0 => String::new(),
                n => format!(" ({n} histogram samples and markers left out)"),
            },
            match earlier {
                0 => String::new(),
                n => format!(" ({n} of them delivered by an earlier run)"),
            }
        ),
        Outcome::Skipped => format!(
            "skipped {}: {} by an earlier run",
            r.file,
            if push { "pushed" } else { "imported" }
        ),
        Outcome::Recovered { blocks } => format!(
            "skipped {}: an earlier run was interrupted moving its blocks; moved the rest of its {} block(s)",
            r.file,
            blocks.len()
        ),
        Outcome::Failed(why) => format!("FAILED  {}: {why}", r.file),
    }
}

/// A line of the report on stdout. An import goes on whatever becomes of its stdout (`| head`):
/// stopping halfway would help nobody, and the exit code still tells how it went.
fn out_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn print_warnings(s: &Summary) {
    for w in &s.warnings {
        eprintln!("prom2om: warning: {w}");
    }
}

fn print_blocks_summary(s: &Summary, data: &Path) {
    print_warnings(s);
    let (histograms, histogram_markers) = s.histograms();
    let (blocks, samples) = (
        s.blocks(),
        super::common::counts(s.samples(), s.markers(), histograms, histogram_markers),
    );
    out_line(&format!(
        "imported {}, skipped {} (imported before), failed {}; {}, {samples} moved into {} in {:.1}s",
        super::common::count(s.done() as u64, "shard"),
        s.skipped(),
        s.failed(),
        super::common::count(blocks as u64, "block"),
        data.display(),
        s.elapsed.as_secs_f64()
    ));
    if s.done() > 0 {
        out_line(&format!(
            "verified: the blocks of the {} imported now hold exactly the manifest's counts ({samples})",
            super::common::count(s.done() as u64, "shard")
        ));
    }
    // Only about blocks this run moved (imported now, or a killed run's finished moves).
    if blocks > 0 {
        eprintln!("{}", pickup_hint(data));
    }
}

fn print_push_summary(s: &Summary, url: &str) {
    print_warnings(s);
    let Destination::Receiver {
        overridden,
        requests,
        retries,
        bytes_sent,
        checked,
        found,
        unchecked,
        plan,
        ..
    } = &s.destination
    else {
        return;
    };
    for note in &plan.notes {
        eprintln!("prom2om: {note}");
    }
    if *unchecked > 0 {
        eprintln!(
            "prom2om: warning: {unchecked} requests whose fate was unknown (an answer lost, or \
             an earlier run stopped while sending them) were sent again without asking the \
             receiver what it held: give --verify-url (its query API) so prom2om can ask. A \
             receiver that keeps both copies of a sample sent twice (VictoriaMetrics without \
             -dedup.minScrapeInterval) may hold some samples twice, which --verify-url counts"
        );
    }
    if *overridden > 0 {
        eprintln!(
            "prom2om: warning: --add-label replaced a different value {overridden} series already had"
        );
    }
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let asked = match checked {
        0 => String::new(),
        n => format!(
            "; {n} requests whose fate was unknown asked about on the receiver, {found} of them \
             found held and not sent again"
        ),
    };
    let sum = |f: fn(&Outcome) -> u64| s.results.iter().map(|r| f(&r.outcome)).sum::<u64>();
    let (histograms, histogram_markers, left_out) = (
        sum(|o| match o {
            Outcome::Pushed { histograms, .. } => *histograms,
            _ => 0,
        }),
        sum(|o| match o {
            Outcome::Pushed {
                histogram_markers, ..
            } => *histogram_markers,
            _ => 0,
        }),
        sum(|o| match o {
            Outcome::Pushed { left_out, .. } => *left_out,
            _ => 0,
        }),
    );
    if left_out > 0 {
        eprintln!(
            "prom2om: warning: {left_out} native histogram samples and markers of the shards \
             pushed now were left out{}",
            match plan.histograms {
                false => " (--skip-histograms, or a receiver that keeps none)",
                true => " (custom buckets, which the receiver takes over remote write 2.0 only)",
            }
        );
    }
    out_line(&format!(
        "pushed {}, skipped {} (pushed before), failed {}; {} to {url} in {secs:.1}s \
         ({:.0} samples/s; {requests} requests, {retries} retries, {} sent){asked}",
        super::common::count(s.done() as u64, "shard"),
        s.skipped(),
        s.failed(),
        super::common::counts(s.samples(), s.markers(), histograms, histogram_markers),
        s.samples() as f64 / secs,
        super::common::human_bytes(*bytes_sent)
    ));
}

/// How Prometheus will see the new blocks; found with a real 2.42 server: it rescans its data
/// dir every minute and then also applies time retention, deleting each block that ends
/// `retention` or more before the newest block's end, and refuses samples older than the newest
/// block. The blocks of `data` (those there before too) must all outlive the newest one.
fn pickup_hint(data: &Path) -> String {
    let now_ms = future::now_ms();
    let mut s = String::from(
        "prom2om: a running Prometheus loads the new blocks at its next block reload (every \
         minute, no restart needed); a stopped one loads them when it starts. At each reload it \
         deletes the blocks that end more than --storage.tsdb.retention.time (default 15d) \
         before the newest block in its data dir.",
    );
    // A block a running server compacts away meanwhile is no matter for a hint.
    let blocks = read_blocks(data).unwrap_or_default();
    let (Some(oldest), Some(newest)) = (
        blocks.iter().map(|b| b.min_time).min(),
        blocks.iter().map(|b| b.max_time).max(),
    ) else {
        return s;
    };
    // Its own head becomes a block ending about now.
    let reference = newest.max(now_ms);
    let days = (reference - oldest).max(0) / 86_400_000 + 1;
    if newest > now_ms {
        s.push_str(&format!(
            " The newest block ends at {}, {} from now: until this host's clock passes it, \
             that Prometheus refuses every scraped or written sample older than it (\"out of \
             bounds\"), and it counts retention back from it.",
            rfc3339(newest),
            future::span(newest - now_ms)
        ));
    }
    if days > 15 {
        s.push_str(&format!(
            " The blocks in {} span {days} days back from {}: keep them all with\n  prometheus \
             --storage.tsdb.path={} --storage.tsdb.retention.time={days}d (or more)",
            data.display(),
            if newest > now_ms {
                "the newest block's end"
            } else {
                "now"
            },
            data.display()
        ));
    }
    s
}
