//! Option groups shared by `convert` and `fetch` (what to keep, where and how to write it), each
//! turned into a validated configuration once, and the summary formatting they share.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::format::openmetrics::QUOTED_NAMES_SINCE;
use crate::format::shard_dir::QuotedNames;
use crate::pipeline::run_lock::{self, RunLock};
use crate::pipeline::shard::WriteStats;
use crate::pipeline::sink::{Output, SinkOptions, StaleMode, DEFAULT_SHARD_BYTES};
use crate::select::filter::{Filter, LabelEdits};
use crate::select::selector::Selector;
use crate::timeparse;

#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Keep series matching this PromQL series selector, e.g. '{__name__=~"elasticsearch_.*"}'
    /// or 'up{job="node",instance!~"test.*"}'. Repeatable: a series is kept if it matches any.
    /// Prometheus semantics: regexes are fully anchored, l="" matches an absent label.
    /// Default: every series.
    #[arg(short = 'm', long = "match", value_name = "SELECTOR")]
    pub matchers: Vec<String>,

    /// Keep samples at or after this time: RFC 3339 (2024-05-01T12:00:00Z) or Unix seconds.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,

    /// Keep samples at or before this time: RFC 3339 or Unix seconds.
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,

    /// Keep the samples of this long before --end (or before now without --end): 24h, 90m, 2d.
    #[arg(long, value_name = "DURATION", conflicts_with = "start")]
    pub since: Option<String>,

    /// Remove this label from every series (repeatable), e.g. to drop a noisy `pod` label.
    #[arg(long = "drop-label", value_name = "NAME")]
    pub drop_labels: Vec<String>,

    /// Set this label on every series (repeatable), so imported data can be told apart from
    /// local data, e.g. --add-label source=customer-a.
    #[arg(long = "add-label", value_name = "NAME=VALUE")]
    pub add_labels: Vec<String>,
}

impl FilterArgs {
    pub fn resolve(&self) -> Result<Filter> {
        let selectors = self
            .matchers
            .iter()
            .map(|s| Selector::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let end = parse_time_flag("--end", self.end.as_deref())?;
        let mut start = parse_time_flag("--start", self.start.as_deref())?;
        if let Some(since) = &self.since {
            let d = timeparse::parse_duration(since)?;
            let end = end.unwrap_or_else(now_ms);
            start = Some(end.saturating_sub(d));
        }
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                return Err(crate::bad_input!(
                    "the start of the time range is after its end"
                ));
            }
        }
        Ok(Filter {
            selectors,
            start,
            end,
            edits: LabelEdits::parse(&self.drop_labels, &self.add_labels)?,
        })
    }
}

/// `--dashboard`: select what Grafana dashboards query (resolved in `commands::dashboard`).
#[derive(Args, Debug, Clone, Default)]
pub struct DashboardArgs {
    /// Keep the series this Grafana dashboard JSON queries (panels, annotations, variables), and
    /// the reach back its queries need before --start. Repeatable; adds to --match. Review with
    /// `prom2om dashboard FILE`.
    #[arg(long = "dashboard", value_name = "FILE")]
    pub dashboards: Vec<PathBuf>,

    /// Value of a dashboard variable, e.g. --var cluster=prod-a. Repeat a name for several
    /// values; NAME=* means All. Unset: the value saved in the dashboard, else any value.
    #[arg(long = "var", value_name = "NAME=VALUE", requires = "dashboards")]
    pub vars: Vec<String>,

    /// Keep --start as given instead of moving it back by the dashboards' longest reach
    /// (rate(x[1h]), offset, subqueries, the 5m lookback).
    #[arg(long, requires = "dashboards")]
    pub no_reach_back: bool,

    /// Stop when a dashboard expression does not parse (default: report it, use the rest).
    #[arg(long, requires = "dashboards")]
    pub strict: bool,
}

/// A `--start`/`--end` value; 13 digits and more are milliseconds given by mistake.
fn parse_time_flag(flag: &str, value: Option<&str>) -> Result<Option<i64>> {
    let Some(v) = value else {
        return Ok(None);
    };
    if timeparse::looks_like_milliseconds(v) {
        let secs = v.split('.').next().unwrap_or(v).replace('_', "");
        let hint = secs.parse::<i64>().ok().map_or(String::new(), |ms| {
            format!(
                " ({} or {})",
                ms.div_euclid(1000),
                timeparse::format_time(ms)
            )
        });
        return Err(crate::bad_input!(
            "{flag} {v}: looks like milliseconds; give Unix seconds or RFC 3339{hint}"
        ));
    }
    timeparse::parse_time(v)
        .map(Some)
        .map_err(|e| e.context(format!("{flag} {v}")))
}

/// A path as the manifest records it: absolute, since a relative one means nothing once the
/// shard directory has travelled (`..` and symbolic links are left as given).
pub fn recorded_path(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// `1 shard`, `2 shards`: a count and its noun, for messages (regular plurals only).
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// The selectors, for messages: `--match '{...}' --match '...'`.
pub fn describe_selectors(f: &Filter) -> String {
    let parts: Vec<String> = f
        .selectors
        .iter()
        .map(|s| format!("--match '{}'", s.text))
        .collect();
    parts.join(" ")
}

/// The time range asked, for messages: `--start T --end T` in RFC 3339.
pub fn describe_window(f: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(t) = f.start {
        parts.push(format!("--start {}", timeparse::format_time(t)));
    }
    if let Some(t) = f.end {
        parts.push(format!("--end {}", timeparse::format_time(t)));
    }
    parts.join(" ")
}

/// `from A to B` in RFC 3339.
pub fn describe_range((min, max): (i64, i64)) -> String {
    format!(
        "from {} to {}",
        timeparse::format_time(min),
        timeparse::format_time(max)
    )
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Output directory for the shards and manifest.json, or - for one OpenMetrics stream on
    /// stdout. Required; an empty value (an unset shell variable) is refused.
    #[arg(short = 'o', long, value_name = "DIR|-",
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub output: String,

    /// Shards per block window [default: enough that each holds at most about 256 MiB of
    /// OpenMetrics text]. A series is never split across the shards of a window.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub shards: Option<u32>,

    /// Block window of each shard, aligned as backfill aligns blocks. Match the importing
    /// promtool's block duration (2h unless it has --max-block-duration).
    #[arg(long, value_name = "DURATION", default_value = "2h")]
    pub block_duration: String,

    /// Write plain .om files instead of .om.gz.
    #[arg(long)]
    pub no_compress: bool,

    /// gzip level, 1 (fastest) to 9 (smallest); 0 stores uncompressed gzip. Level 1 is ISA-L's
    /// igzip in builds with it (the release tarball's; `prom2om --version` says): about 1.8 times
    /// as fast as zlib's level 1.
    #[arg(long, value_name = "0-9", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: u32,

    /// Memory bound, at least 16MiB; samples beyond it are spilled to --temp-dir and merged
    /// back. Sizes like 512MiB, 2GiB.
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub memory_limit: String,

    /// Directory for spill files [default: inside the output directory; the system temp
    /// directory for -o -].
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,

    /// Replace the shards and manifest of an earlier run in a non-empty output directory. They
    /// stay untouched until this run has written everything (under temporary names), so a run
    /// that fails or is interrupted leaves the earlier export as it was; meanwhile the disk
    /// holds both.
    #[arg(long)]
    pub force: bool,

    /// Succeed (exit code 0) with an empty output (a manifest listing no shards, or only
    /// `# EOF` on stdout) when no sample is kept. Without it such a run (empty input, a selector
    /// that matches nothing, a time range outside the data) writes nothing and fails with exit
    /// code 2, saying what the input held against what the filters asked.
    #[arg(long)]
    pub allow_empty: bool,

    /// Let --drop-label/--add-label make two different series one. Without it that stops the
    /// run (exit code 2) naming an example pair. With it the merged series interleaves the
    /// samples of both (two counters make one that jumps back and forth); on equal timestamps
    /// the later input wins and the conflict is counted.
    #[arg(long)]
    pub allow_merge: bool,
}

impl OutputArgs {
    pub fn sink_options(&self, stale: StaleMode, progress: bool) -> Result<SinkOptions> {
        let output = if self.output == "-" {
            Output::Stdout
        } else {
            Output::Dir {
                path: PathBuf::from(&self.output),
                compress: !self.no_compress,
            }
        };
        let block = timeparse::parse_duration(&self.block_duration)?;
        if block < 60_000 || block % 1000 != 0 {
            return Err(crate::bad_input!(
                "--block-duration {}: must be whole seconds and at least 1m",
                self.block_duration
            ));
        }
        let memory_limit = timeparse::parse_size(&self.memory_limit)?;
        if memory_limit < 16 << 20 {
            return Err(crate::bad_input!(
                "--memory-limit {}: at least 16MiB",
                self.memory_limit
            ));
        }
        Ok(SinkOptions {
            output,
            block_duration_ms: block,
            shards: self.shards,
            target_shard_bytes: DEFAULT_SHARD_BYTES,
            memory_limit,
            temp_dir: self.temp_dir.clone(),
            stale,
            compression_level: self.compression_level,
            force: self.force,
            progress,
            stream: false,
        })
    }
}

/// Takes the run lock of the output directory (created when missing) for as long as the value
/// lives; `None` for stdout. Taken before anything in the directory is looked at.
pub fn lock_output(output: &Output) -> Result<Option<RunLock>> {
    let Output::Dir { path, .. } = output else {
        return Ok(None);
    };
    let created = !path.exists();
    std::fs::create_dir_all(path)
        .with_context(|| format!("creating output directory {}", path.display()))?;
    let lock = run_lock::acquire(
        &path.join(run_lock::LOCK_FILE),
        &format!("output directory {}", path.display()),
    )?;
    Ok(Some(if created {
        lock.remove_if_empty(path.clone())
    } else {
        lock
    }))
}

/// Warns when the output holds names that only a recent promtool imports, with examples, so the
/// user learns it at convert time and not at the customer's import.
pub fn warn_quoted_names(q: &QuotedNames) {
    if q.series == 0 {
        return;
    }
    let (major, minor) = QUOTED_NAMES_SINCE;
    eprintln!(
        "prom2om: warning: {} series have metric or label names outside [a-zA-Z_:][a-zA-Z0-9_:]* \
         (e.g. {}); they are written in the quoted form {{\"name\", ...}} that only promtool \
         {major}.{minor} or newer imports (Debian 12 ships 2.42). Leave them out with --match or \
         --drop-label if the importing side has an older promtool; `prom2om import` and \
         `prom2om verify --promtool PATH` check it",
        q.series,
        q.examples.join(", ")
    );
}

/// What the files of a run hold, in the manifest's words (`samples`, `stale_markers`,
/// `histogram_samples`, `histogram_stale_markers`): `N samples`, then each other count that is
/// not 0, and the histogram staleness markers `--stale drop` dropped.
pub fn held(w: &WriteStats) -> String {
    let h = &w.histograms;
    let mut s = count(w.samples, "sample");
    for (n, what) in [
        (w.markers.markers, "staleness marker"),
        (h.samples, "histogram sample"),
        (h.stale_markers, "histogram staleness marker"),
    ] {
        if n > 0 {
            s += &format!(", {}", count(n, what));
        }
    }
    if h.stale_dropped > 0 {
        s += &format!(
            " ({} dropped)",
            count(h.stale_dropped, "histogram staleness marker")
        );
    }
    s
}

/// `1.5 GiB`-style sizes for summaries.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Whether progress bars make sense: stderr is a terminal.
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Says (even with -q) how many samples `convert` or `fetch` wrote later than the start of the
/// run, and the latest: counted again from the shards written (exact), or as delivered for
/// `-o -`.
pub fn warn_later(later: &crate::pipeline::sink::Later, out: &str) -> anyhow::Result<()> {
    let Some(latest) = later.latest_ms else {
        return Ok(());
    };
    let mut n = later.samples;
    if out != "-" {
        let dir = crate::format::shard_dir::ShardDir::open(std::path::Path::new(out))?;
        if let Some(a) = crate::import::future::ahead(&dir, later.than_ms) {
            n = crate::import::future::count(&dir, &a, later.than_ms)?;
        }
    }
    eprintln!(
        "prom2om: warning: {n} sample{} later than the start of this run, the latest at {} ({} \
         ahead of this host's clock): the clock of the host that wrote them was ahead (or this \
         host's is behind). At home `import` refuses them unless --allow-future, since a \
         Prometheus holding them counts its retention back from them and refuses current \
         samples as out of bounds; check the clocks (timedatectl), or convert again with \
         --end {} to leave them out",
        if n == 1 { " is" } else { "s are" },
        crate::timeparse::format_time(latest),
        crate::import::future::span(latest - later.than_ms),
        later.than_ms.div_euclid(1000)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_say_one_shard_and_two_shards() {
        assert_eq!(count(0u64, "shard"), "0 shards");
        assert_eq!(count(1u64, "shard"), "1 shard");
        assert_eq!(count(2u64, "block"), "2 blocks");
    }

    #[test]
    fn held_counts_in_the_manifest_s_words() {
        let mut w = WriteStats {
            samples: 7,
            ..WriteStats::default()
        };
        assert_eq!(held(&w), "7 samples");
        w.markers.markers = 2;
        w.histograms.samples = 5;
        w.histograms.stale_markers = 1;
        assert_eq!(
            held(&w),
            "7 samples, 2 staleness markers, 5 histogram samples, 1 histogram staleness marker"
        );
        w.histograms.stale_markers = 0;
        w.histograms.stale_dropped = 3;
        assert_eq!(
            held(&w),
            "7 samples, 2 staleness markers, 5 histogram samples (3 histogram staleness markers dropped)"
        );
    }
}
