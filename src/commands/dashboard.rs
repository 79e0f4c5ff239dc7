//! `prom2om dashboard`: the series selectors Grafana dashboards need, per panel, for review; and
//! `--dashboard` on convert, fetch and inspect, resolved once into the filter.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args as ClapArgs;

use super::common::{now_ms, recorded_path, DashboardArgs};
use crate::select::dashboard::{self, vars::format_duration, Options, Report};
use crate::select::filter::Filter;
use crate::select::tally;
use crate::timeparse;

/// The window the dashboards are looked at over when the command gives none.
const DEFAULT_WINDOW_MS: i64 = 86_400_000;

/// Show the series selectors Grafana dashboards need: what each panel, annotation and variable
/// queries, what could not be used and why, and how far before the window the queries reach.
#[derive(ClapArgs, Debug)]
#[command(after_help = "Examples:
  prom2om dashboard elasticsearch.json --var cluster=prod-a
  prom2om convert dump.txt --dashboard elasticsearch.json --var cluster=prod-a --since 24h -o shards/

Prints the report as # comments, then the selectors one per line: `grep -v '^#'` gives
arguments for --match. Exit code 2 with --strict when an expression does not parse.")]
pub struct Args {
    /// Grafana dashboard JSON files (as saved, exported, or from the HTTP API).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Value of a dashboard variable, e.g. --var cluster=prod-a. Repeat a name for several
    /// values; NAME=* means All. Unset: the value saved in the dashboard, else any value.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,

    /// Start of the window the dashboards are looked at over, for $__interval, $__range,
    /// $__from: RFC 3339 or Unix seconds [default: 24h before --end].
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,

    /// End of the window [default: now].
    #[arg(long, value_name = "TIME")]
    pub end: Option<String>,

    /// The window is this long before --end: 24h, 90m, 2d.
    #[arg(long, value_name = "DURATION", conflicts_with = "start")]
    pub since: Option<String>,

    /// Print the reports as JSON.
    #[arg(long)]
    pub json: bool,

    /// Exit with code 2 when an expression does not parse.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: Args) -> Result<()> {
    let end = args
        .end
        .as_deref()
        .map(timeparse::parse_time)
        .transpose()?
        .unwrap_or_else(now_ms);
    let start = match (&args.start, &args.since) {
        (Some(s), _) => timeparse::parse_time(s)?,
        (None, Some(d)) => end.saturating_sub(timeparse::parse_duration(d)?),
        (None, None) => end - DEFAULT_WINDOW_MS,
    };
    if start > end {
        return Err(crate::bad_input!(
            "the start of the time range is after its end"
        ));
    }
    let opts = Options {
        start_ms: start,
        end_ms: end,
        vars: dashboard::parse_vars(&args.vars)?,
    };
    let reports = analyze_files(&args.files, &opts)?;
    let mut out = std::io::BufWriter::new(crate::exit_codes::stdout());
    if args.json {
        // Through a String: serde_json's error would hide the closed stdout in its chain.
        writeln!(out, "{}", serde_json::to_string_pretty(&reports)?)?;
    } else {
        for r in &reports {
            write_report(&mut out, r)?;
        }
        for s in dashboard::union(&reports) {
            writeln!(out, "{s}")?;
        }
    }
    out.flush()?;
    check_strict(&reports, args.strict)
}

fn analyze_files(files: &[PathBuf], opts: &Options) -> Result<Vec<Report>> {
    let reports = files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f)
                .with_context(|| format!("reading dashboard {}", f.display()))
                .map_err(|e| crate::bad_input!("{e:#}"))?;
            let d = dashboard::load(&bytes)
                .map_err(|e| crate::bad_input!("dashboard {}: {e}", f.display()))?;
            Ok(dashboard::analyze(&f.display().to_string(), &d, opts))
        })
        .collect::<Result<Vec<_>>>()?;
    for name in opts.vars.keys() {
        let known = reports
            .iter()
            .any(|r| r.variables.iter().any(|v| &v.name == name && v.used));
        if !known {
            eprintln!("prom2om: warning: --var {name}: no query of the dashboards uses ${name}");
        }
    }
    Ok(reports)
}

fn check_strict(reports: &[Report], strict: bool) -> Result<()> {
    let errors: Vec<String> = reports
        .iter()
        .flat_map(|r| r.errors.iter().map(move |e| format!("{}: {e}", r.name)))
        .collect();
    if strict && !errors.is_empty() {
        return Err(crate::bad_input!(
            "--strict: {} dashboard expressions do not parse:\n  {}",
            errors.len(),
            errors.join("\n  ")
        ));
    }
    Ok(())
}

/// Newlines of multi-line expressions as spaces, so each stays on its comment line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn variables_line(r: &Report) -> String {
    let used = r.variables_used();
    if used.is_empty() {
        return "none".into();
    }
    used.iter()
        .map(|v| format!("{}={} ({})", v.name, v.value, v.source))
        .collect::<Vec<_>>()
        .join(", ")
}

fn write_report(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(out, "# dashboard {:?} ({})", r.title, r.name)?;
    writeln!(out, "#   variables: {}", variables_line(r))?;
    writeln!(
        out,
        "#   reach back: {} ({})",
        format_duration(r.reach_ms),
        one_line(&r.reach_expr)
    )?;
    for w in &r.warnings {
        writeln!(out, "#   warning: {}", one_line(w))?;
    }
    for p in &r.panels {
        writeln!(out, "#   {}", p.title)?;
        for q in &p.queries {
            writeln!(out, "#     {}: {}", q.ref_id, one_line(&q.expr))?;
            if let Some(e) = &q.error {
                writeln!(out, "#        does not parse: {}", one_line(e))?;
            }
            for s in &q.selectors {
                writeln!(out, "#        -> {s}")?;
            }
            for n in &q.notes {
                writeln!(out, "#        note: {}", one_line(n))?;
            }
        }
        for s in &p.skipped {
            writeln!(out, "#     not used: {}", one_line(s))?;
        }
    }
    writeln!(
        out,
        "#   {} panels, {} selectors, {} expressions that do not parse",
        r.panels_used(),
        r.selectors.len(),
        r.errors.len()
    )?;
    writeln!(out, "#")
}

/// What `--dashboard` selected, for the summary at the end of an export.
pub struct Selection {
    pub reports: Vec<Report>,
    /// What the manifest records of it.
    pub recorded: crate::format::shard_dir::Dashboards,
}

impl Selection {
    /// (series, samples) each dashboard selects of the shards written to `output` (read back:
    /// exact after deduplication and staleness handling; labels after the label edits).
    fn counts(&self, output: &str) -> Result<Vec<(u64, u64)>> {
        let census = crate::format::shard_dir::samples_per_series(Path::new(output))?;
        let groups: Vec<_> = self.reports.iter().map(|r| r.selectors.clone()).collect();
        Ok(tally::per_group(
            &groups,
            census.iter().map(|(l, n)| (l, *n)),
        ))
    }

    /// One summary line per dashboard; with the output directory, what the export holds of it.
    pub fn print_summary(&self, output: Option<&str>) {
        let counts = match output.filter(|o| *o != "-").map(|o| self.counts(o)) {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                eprintln!("prom2om: warning: cannot count the export per dashboard: {e:#}");
                Vec::new()
            }
            None => Vec::new(),
        };
        for (i, r) in self.reports.iter().enumerate() {
            let counts = counts
                .get(i)
                .map(|(series, samples)| format!("; exported {series} series, {samples} samples"))
                .unwrap_or_default();
            eprintln!(
                "prom2om: dashboard {:?} ({}): {} panels, {} selectors, variables {}{counts}",
                r.title,
                r.name,
                r.panels_used(),
                r.selectors.len(),
                variables_line(r)
            );
        }
    }
}

impl DashboardArgs {
    /// Adds the dashboards' selectors to the filter and moves its start back by their reach.
    /// `None` without --dashboard. Parse errors are reported (an error with --strict).
    pub fn apply(&self, filter: &mut Filter, quiet: bool) -> Result<Option<Selection>> {
        if self.dashboards.is_empty() {
            return Ok(None);
        }
        let end = filter.end.unwrap_or_else(now_ms);
        let start = filter.start.unwrap_or(end - DEFAULT_WINDOW_MS);
        let opts = Options {
            start_ms: start,
            end_ms: end,
            vars: dashboard::parse_vars(&self.vars)?,
        };
        let reports = analyze_files(&self.dashboards, &opts)?;
        for r in &reports {
            for w in &r.warnings {
                eprintln!("prom2om: warning: {}: {w}", r.name);
            }
            for e in &r.errors {
                eprintln!(
                    "prom2om: warning: {}: does not parse: {}",
                    r.name,
                    one_line(e)
                );
            }
        }
        check_strict(&reports, self.strict)?;
        let selectors = dashboard::union(&reports);
        if selectors.is_empty() {
            return Err(crate::bad_input!(
                "the dashboards select no series (see `prom2om dashboard FILE`)"
            ));
        }
        filter.selectors.extend(selectors);
        let reach = reports.iter().map(|r| r.reach_ms).max().unwrap_or(0);
        let mut recorded = crate::format::shard_dir::Dashboards {
            files: self.dashboards.iter().map(|f| recorded_path(f)).collect(),
            vars: self.vars.clone(),
            reach_back_ms: 0,
        };
        if let (Some(s), false) = (filter.start, self.no_reach_back) {
            filter.start = Some(s.saturating_sub(reach));
            recorded.reach_back_ms = s - s.saturating_sub(reach);
            if !quiet {
                let longest = reports.iter().max_by_key(|r| r.reach_ms).expect("some");
                eprintln!(
                    "prom2om: start moved back {} for the dashboards' queries to be exact from --start on (longest: {} in {}); --no-reach-back keeps it",
                    format_duration(reach),
                    one_line(&longest.reach_expr),
                    longest.name
                );
            }
        }
        Ok(Some(Selection { reports, recorded }))
    }
}
