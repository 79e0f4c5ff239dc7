//! `prom2om import DIR --remote-write URL`: the options turned into a push, one line per shard as
//! it finishes, progress bars (shards, samples/s), and a summary with the exit code.

use anyhow::{bail, Result};
use indicatif::ProgressStyle;

use super::import::{out_line, Args, Bars};
use std::collections::HashMap;

use crate::fetch::http::{mask_url, Client};
use crate::format::shard_dir::ShardDir;
use crate::import::remote_write::{push, Options, Outcome, Progress, ShardResult, Summary};
use crate::import::verify_remote;
use crate::select::filter::LabelEdits;

/// How long a window found short is asked again: new data takes a moment to become searchable.
const VERIFY_SETTLE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn run(args: Args, dir: &ShardDir) -> Result<()> {
    let url = args
        .remote_write
        .clone()
        .expect("clap requires --tsdb or --remote-write");
    let opts = Options {
        client: args.http.client_config(&url)?,
        batch_samples: args.batch_samples as usize,
        concurrency: args.concurrency as usize,
        edits: LabelEdits::parse(&[], &args.add_labels)?,
    };
    let bars = Bars::new();
    bars.samples.set_style(
        ProgressStyle::with_template(
            "samples [{bar:30}] {human_pos}/{human_len} ({per_sec}, eta {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let summary = push(dir, &opts, &bars)?;
    bars.clear();
    print_summary(&summary, &mask_url(&url));
    let failed = summary.failed();
    if failed > 0 {
        bail!(
            "{failed} of {} shards were not pushed (listed above); run the same command again to \
             retry them, the pushed ones are skipped",
            summary.results.len()
        );
    }
    if let Some(v) = &args.verify_url {
        verify(&args, dir, v, &opts.edits.add, &summary.nan)?;
    }
    Ok(())
}

/// Counts each window on the receiver; one line per window that differs and a summary line.
fn verify(
    args: &Args,
    dir: &ShardDir,
    url: &str,
    matchers: &[(String, String)],
    nan_read: &HashMap<usize, u64>,
) -> Result<()> {
    let client = Client::new(&args.http.client_config(url)?)?;
    let checks = verify_remote::verify(dir, &client, matchers, VERIFY_SETTLE, nan_read)?;
    let mut differ = 0;
    let mut nan_missing = 0;
    for c in &checks {
        if c.holds_all() {
            nan_missing += c.expected - c.held;
            continue;
        }
        differ += 1;
        out_line(&format!(
            "DIFFERS window {} ({} to {}): the receiver holds {} samples, the manifest says {}{}",
            rfc3339(c.window_start_ms),
            rfc3339(c.min_ts_ms),
            rfc3339(c.max_ts_ms),
            c.held,
            c.expected,
            match c.nan {
                0 => String::new(),
                n => format!(" ({n} of them NaN)"),
            }
        ));
    }
    let n = checks.len();
    let at = client.display_url();
    if differ > 0 {
        bail!("{differ} of {n} windows differ on {at} (listed above)");
    }
    let nan = match nan_missing {
        0 => String::new(),
        k => format!(" (less {k} NaN samples, which the receiver does not keep)"),
    };
    // PromQL counts no staleness marker (count_over_time skips them): the markers were checked
    // as the receiver accepted them, each shard's against its sidecar's count.
    let markers = match dir.manifest().totals.stale_markers {
        0 => String::new(),
        k => format!(
            "; the {k} staleness markers of the sidecars, which PromQL does not count, were each accepted by the receiver"
        ),
    };
    out_line(&format!(
        "verified {n} windows on {at}: all hold the manifest's count{nan}{markers}"
    ));
    Ok(())
}

fn rfc3339(ms: i64) -> String {
    crate::timeparse::format_time(ms)
}

impl Progress for Bars {
    fn verifying(&self, shards: u64) {
        self.show_verifying(shards);
    }

    fn planned(&self, shards: u64, samples: u64) {
        self.shards.set_length(shards);
        self.samples.set_length(samples);
    }

    fn accepted(&self, samples: u64) {
        self.samples.inc(samples);
    }

    fn finished(&self, r: &ShardResult) {
        self.print_line(&shard_line(r));
        if !matches!(r.outcome, Outcome::Skipped) {
            self.shards.inc(1);
        }
    }
}

fn shard_line(r: &ShardResult) -> String {
    match &r.outcome {
        Outcome::Pushed {
            samples,
            requests,
            markers,
        } => format!(
            "ok      {}: {samples} samples{} in {requests} requests, as the manifest says",
            r.file,
            match markers {
                0 => String::new(),
                n => format!(" and {n} staleness markers"),
            }
        ),
        Outcome::Skipped => format!("skipped {}: pushed by an earlier run", r.file),
        Outcome::Failed(why) => format!("FAILED  {}: {why}", r.file),
    }
}

fn print_summary(s: &Summary, url: &str) {
    for w in &s.warnings {
        eprintln!("prom2om: warning: {w}");
    }
    if s.overridden > 0 {
        eprintln!(
            "prom2om: warning: --add-label replaced a different value {} series already had",
            s.overridden
        );
    }
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    out_line(&format!(
        "pushed {} shards, skipped {} (pushed before), failed {}; {} samples to {url} in {secs:.1}s \
         ({:.0} samples/s; {} requests, {} retries, {} sent)",
        s.pushed(),
        s.skipped(),
        s.failed(),
        s.samples(),
        s.samples() as f64 / secs,
        s.requests,
        s.retries,
        super::common::human_bytes(s.bytes_sent)
    ));
}
