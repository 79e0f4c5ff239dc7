//! `prom2om convert`: `promtool tsdb dump` output in, sorted OpenMetrics shards (or a stream) out.

use std::time::Instant;

use anyhow::Result;
use clap::{Args as ClapArgs, ValueEnum};

use super::common::{
    describe_range, describe_selectors, describe_window, human_bytes, lock_output,
    stderr_is_terminal, warn_quoted_names, DashboardArgs, FilterArgs, OutputArgs,
};
use crate::pipeline::convert::{convert, ConvertOptions, ConvertStats};
use crate::pipeline::input::InputSpec;
use crate::pipeline::sink::{RunInfo, Sink, SinkSummary, StaleMode};
use crate::select::filter::Filter;

/// Convert `promtool tsdb dump` output into OpenMetrics that `promtool tsdb create-blocks-from
/// openmetrics` imports bit-exact.
#[derive(ClapArgs, Debug)]
#[command(after_help = "Examples:
  promtool tsdb dump /var/lib/prometheus/metrics2 \\
    | prom2om convert -m '{__name__=~\"elasticsearch_.*\"}' --since 24h -o shards/
  prom2om convert dump.txt.gz \\
    --start 2024-05-01T00:00:00Z --end 2024-05-02T00:00:00Z -o shards/
  prom2om convert dump.txt -o - > all.om

A dump of persisted blocks (series whole and in label order) is written while it is read; other
input (a head-only TSDB, concatenated or shuffled dumps) is sorted first, spilling to --temp-dir
beyond --memory-limit. Both give the same bytes.

Shards are named WINDOWSTART-SHARD.om.gz; manifest.json is written last. Import them with
`prom2om import shards/ --tsdb DATA_DIR`, or by hand with gunzip and
`promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`.")]
pub struct Args {
    /// Dump files (plain or gzip, detected by content); - or nothing reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub dashboard: DashboardArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// What to do with NaN samples. The dump prints staleness markers as NaN: `drop` removes a
    /// NaN whose neighbours in its series are not NaN (a marker; imported as a real NaN it breaks
    /// aggregations for 5 minutes) and keeps runs of NaNs (real values); `keep` keeps every NaN.
    #[arg(long, value_enum, default_value_t = Stale::Drop)]
    pub stale: Stale,

    /// Skip lines that are not valid dump output (counted, the first few reported) instead of
    /// stopping with exit code 2.
    #[arg(long)]
    pub skip_invalid: bool,

    /// No summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stale {
    Drop,
    Keep,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let mut filter = args.filter.resolve()?;
    let dashboards = args.dashboard.apply(&mut filter, args.quiet)?;
    let stale = match args.stale {
        Stale::Drop => StaleMode::Drop,
        Stale::Keep => StaleMode::Keep,
    };
    let progress = stderr_is_terminal() && !args.quiet;
    let mut sink_opts = args.output.sink_options(stale, progress)?;
    // Dumps of persisted blocks come in series order: their shards can be written while reading.
    sink_opts.stream = true;
    let inputs: Vec<InputSpec> = if args.inputs.is_empty() {
        vec![InputSpec::Stdin]
    } else {
        args.inputs.iter().map(|s| InputSpec::parse(s)).collect()
    };
    let _lock = lock_output(&sink_opts.output)?;
    let mut sink = Sink::create(sink_opts)?;
    if !args.output.allow_merge {
        sink.refuse_merges(&filter.edits);
    }
    let opts = ConvertOptions {
        filter: filter.clone(),
        skip_invalid: args.skip_invalid,
        progress,
    };
    let stats = match convert(&inputs, &opts, &mut sink) {
        Ok(s) => s,
        Err(e) => {
            sink.abandon();
            return Err(e);
        }
    };
    if stats.samples_kept == 0 {
        if !args.output.allow_empty {
            let why = nothing_kept(&stats, sink.series_count(), &filter);
            sink.abandon();
            return Err(crate::bad_input!(
                "{why}; --allow-empty accepts an empty output"
            ));
        }
        eprintln!("prom2om: warning: no sample kept; writing an empty output (--allow-empty)");
    }
    if let Some(l) = &stats.add_label_override {
        eprintln!(
            "prom2om: warning: --add-label overrides labels the series already have, e.g. of {l}"
        );
    }
    if stats.histograms_skipped > 0 {
        eprintln!(
            "prom2om: warning: skipped {} native histogram samples: OpenMetrics backfill cannot carry them",
            stats.histograms_skipped
        );
    }
    let info = RunInfo {
        source: "convert".to_string(),
        inputs: inputs.iter().map(|i| i.name()).collect(),
        filters: filter.describe(stale.as_str()),
    };
    let summary = sink.finish(info)?;
    warn_quoted_names(&summary.quoted_names);
    if summary.negative_ts > 0 {
        eprintln!(
            "prom2om: warning: {} samples are before 1970; promtool's backfill skips some of those (it aligns its first block by truncating division)",
            summary.negative_ts
        );
    }
    if !args.quiet {
        print_summary(
            &stats,
            &summary,
            started.elapsed().as_secs_f64(),
            &args.output.output,
        );
        if let Some(d) = &dashboards {
            d.print_summary(Some(&args.output.output));
        }
    }
    Ok(())
}

/// Why a run kept no sample, in one line: what the input held against what the filters asked.
fn nothing_kept(st: &ConvertStats, matched: usize, filter: &Filter) -> String {
    let (series, more) = st.input_series(matched);
    let held = match st.input_range {
        Some(r) => format!(
            "{}{series} series {}",
            if more { "more than " } else { "" },
            describe_range(r)
        ),
        None if st.invalid_lines > 0 => {
            return format!(
                "nothing kept: the input held no valid sample ({} bad lines skipped)",
                st.invalid_lines
            )
        }
        None => {
            return "nothing kept: the input is empty: no samples (did `promtool tsdb dump` \
                    fail? 2.42 refuses a data dir without wal/)"
                .into()
        }
    };
    let (selectors, window) = (describe_selectors(filter), describe_window(filter));
    if matched == 0 {
        return format!("nothing kept: the input held {held}, none matching {selectors}");
    }
    if st.dropped_by_time == 0 {
        return match st.histograms_skipped {
            0 => format!(
                "nothing kept: the input held {held}; the {matched} series kept hold no valid \
                 sample ({} bad lines skipped)",
                st.invalid_lines
            ),
            _ => format!(
                "nothing kept: the input held {held}; the {matched} series kept hold only native \
                 histogram samples, which OpenMetrics backfill cannot carry"
            ),
        };
    }
    if filter.selectors.is_empty() {
        return format!("nothing kept: the input held {held}, none within {window}");
    }
    let range = st.matched_range.map(describe_range).unwrap_or_default();
    format!(
        "nothing kept: the input held {held}; the {matched} matching {selectors} hold samples \
         {range}, none within {window}"
    )
}

fn print_summary(c: &ConvertStats, s: &SinkSummary, secs: f64, out: &str) {
    let w = &s.written;
    let mbps = c.bytes as f64 / 1e6 / secs.max(1e-9);
    eprintln!(
        "prom2om: read {} lines ({}) in {secs:.2}s, {mbps:.0} MB/s",
        c.lines,
        human_bytes(c.bytes)
    );
    eprintln!(
        "prom2om: kept {} series, {} samples; dropped by --match {}, by time {}",
        s.series, w.samples, c.dropped_by_match, c.dropped_by_time
    );
    eprintln!(
        "prom2om: staleness markers dropped {}, duplicates dropped {}, conflicting duplicates {} (later input kept), histograms skipped {}, bad lines {}",
        w.stale_dropped, w.duplicates, w.conflicts, c.histograms_skipped, c.invalid_lines
    );
    for r in &c.invalid_reported {
        eprintln!("prom2om:   skipped {r}");
    }
    if out != "-" {
        eprintln!(
            "prom2om: wrote {} shards, {} ({} of OpenMetrics) to {out}{}{}",
            s.shards,
            human_bytes(s.bytes),
            human_bytes(w.uncompressed_bytes),
            if s.streamed_shards > 0 {
                format!(", {} of them while reading", s.streamed_shards)
            } else {
                String::new()
            },
            if s.spilled_bytes > 0 {
                format!(", {} spilled to disk", human_bytes(s.spilled_bytes))
            } else {
                String::new()
            }
        );
    }
}
