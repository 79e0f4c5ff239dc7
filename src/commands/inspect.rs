//! `prom2om inspect`: look before a long run — families, label cardinality, time range, and what
//! the filters would keep.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use clap::Args as ClapArgs;

use super::common::{human_bytes, DashboardArgs, FilterArgs};
use crate::inspect::{inspect_dir, inspect_dump, inspect_tsdb, Report};
use crate::pipeline::input::InputSpec;

/// Show what a Prometheus data directory, a dump or a shard directory holds: metric families with series and sample counts
/// (largest first), label names with their number of distinct values, the time range, and the
/// estimated size of the output for the given --match/--start/--end.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Dump files (plain or gzip), - for stdin, one shard directory written by prom2om, or one
    /// Prometheus data directory or block directory (read from its indexes, read-only).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub dashboard: DashboardArgs,

    /// Show only the N largest families and the N labels with the most values.
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,

    /// Print the report as JSON (for scripts).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut filter = args.filter.resolve()?;
    let dashboards = args.dashboard.apply(&mut filter, args.json)?;
    let report = match args.inputs.as_slice() {
        [one]
            if Path::new(one)
                .join(crate::format::shard_dir::MANIFEST_FILE)
                .is_file() =>
        {
            inspect_dir(Path::new(one), &filter, args.top)?
        }
        [one] if Path::new(one).is_dir() => inspect_tsdb(Path::new(one), &filter, args.top)?,
        [] => inspect_dump(&[InputSpec::Stdin], &filter, args.top)?,
        many => {
            let specs: Vec<InputSpec> = many.iter().map(|s| InputSpec::parse(s)).collect();
            inspect_dump(&specs, &filter, args.top)?
        }
    };
    let mut out = std::io::BufWriter::new(crate::exit_codes::stdout());
    if args.json {
        // Through a String: serde_json's error would hide the closed stdout in its chain.
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_text(&mut out, &report)?;
        if let Some(d) = &dashboards {
            d.print_summary(None);
        }
    }
    out.flush()?;
    Ok(())
}

fn print_text(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let fmt_ts = |t: Option<i64>| {
        t.map(|ms| format!("{} ({ms})", crate::format::shard_dir::utc_stamp(ms)))
            .unwrap_or_else(|| "-".into())
    };
    writeln!(out, "series {}, samples {}", r.series, r.samples)?;
    // A data directory's report says what its filters keep of the markers; a shard
    // directory's carries them in side files.
    let datadir = r.kept_stale_markers.is_some();
    match (r.stale_markers.filter(|&n| n > 0), datadir) {
        (Some(n), false) => writeln!(out, "staleness markers carried in sidecars: {n}")?,
        // Counted apart from the samples, as convert and the manifest do.
        (Some(n), true) => writeln!(out, "staleness markers {n} (not in the samples)")?,
        (None, _) => {}
    }
    let hist = r.histogram_samples + r.histogram_stale_markers > 0;
    if hist && datadir {
        writeln!(
            out,
            "native histogram samples {}, histogram staleness markers {}",
            r.histogram_samples, r.histogram_stale_markers
        )?;
    } else if hist {
        writeln!(
            out,
            "histogram samples in side files: {}",
            r.histogram_samples
        )?;
        writeln!(
            out,
            "histogram staleness markers in side files: {}",
            r.histogram_stale_markers
        )?;
    }
    writeln!(
        out,
        "time range {} .. {}",
        fmt_ts(r.min_ts_ms),
        fmt_ts(r.max_ts_ms)
    )?;
    writeln!(
        out,
        "kept by the filters: series {}, samples {}{}, about {} of OpenMetrics",
        r.kept_series,
        r.kept_samples,
        {
            let mut s = String::new();
            if let Some(n) = r.kept_stale_markers.filter(|&n| n > 0) {
                s += &format!(", staleness markers {n}");
            }
            if hist {
                s += &format!(", histogram samples {}", r.kept_histogram_samples);
            }
            s
        },
        human_bytes(r.estimated_output_bytes)
    )?;
    if r.invalid_lines > 0 {
        writeln!(out, "invalid lines: {}, the first:", r.invalid_lines)?;
        for l in &r.first_invalid {
            writeln!(out, "  {l}")?;
        }
    }
    writeln!(out)?;
    if hist {
        writeln!(
            out,
            "{:>12} {:>10} {:>8} {:>12} {:>10} {:>8}  family",
            "samples", "histograms", "series", "kept", "kept_h", "kept_s"
        )?;
    } else {
        writeln!(
            out,
            "{:>12} {:>8} {:>12} {:>8}  family",
            "samples", "series", "kept", "kept_s"
        )?;
    }
    for f in &r.families {
        if hist {
            writeln!(
                out,
                "{:>12} {:>10} {:>8} {:>12} {:>10} {:>8}  {}",
                f.samples,
                f.histogram_samples,
                f.series,
                f.kept_samples,
                f.kept_histogram_samples,
                f.kept_series,
                f.name
            )?;
        } else {
            writeln!(
                out,
                "{:>12} {:>8} {:>12} {:>8}  {}",
                f.samples, f.series, f.kept_samples, f.kept_series, f.name
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{:>8}  label", "values")?;
    for l in &r.labels {
        writeln!(out, "{:>8}  {}", l.values, l.name)?;
    }
    Ok(())
}
