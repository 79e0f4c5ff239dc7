//! `prom2om verify DIR`: checks a shard directory (manifest, checksums, OpenMetrics validity,
//! counts, windows) without importing it, and prints one line per shard and a summary.

use std::io::Write;
use std::path::PathBuf;

use crate::verify::{verify_dir, Report};

/// Check a shard directory: manifest, checksums, OpenMetrics validity, counts.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shard directory, the one that holds manifest.json.
    pub dir: PathBuf,

    /// Also check that this promtool (a path, or a name on PATH) can import the shards: names
    /// outside [a-zA-Z_:][a-zA-Z0-9_:]* need promtool 2.51 or newer.
    #[arg(long, value_name = "PATH")]
    pub promtool: Option<PathBuf>,
}

/// Exit 0 when everything holds; otherwise every problem goes to stderr, naming its file, and
/// the command fails (exit 1).
pub fn run(args: Args) -> anyhow::Result<()> {
    let mut report = verify_dir(&args.dir)?;
    if let Some(p) = &args.promtool {
        let promtool = crate::import::Promtool::detect(p)?;
        if let Err(e) = promtool.check_quoted_names(report.quoted_names.as_ref(), &args.dir) {
            report.problems.push(format!("{e:#}"));
        }
    }
    let mut out = std::io::BufWriter::new(crate::exit_codes::stdout());
    let written = print_report(&mut out, &report).and_then(|()| out.flush());
    // A closed stdout ends the run quietly only when nothing is wrong.
    let n = report.problem_count();
    if n > 0 {
        anyhow::bail!(
            "{}: verification failed: {n} problem{}",
            args.dir.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    written?;
    // Not a problem of the directory, but what it lacks: said.
    for l in &report.losses {
        eprintln!("prom2om: note: {}", l.describe());
    }
    let t = &report.totals;
    writeln!(
        out,
        "OK {}: {}, {} series, {} samples{}{}",
        args.dir.display(),
        super::common::count(report.files.len() as u64, "shard"),
        t.series,
        t.samples,
        markers_note(t.stale_markers),
        histograms_note(t.histogram_samples, t.histogram_stale_markers)
    )?;
    out.flush()?;
    Ok(())
}

/// `, N staleness markers in sidecars` when there are any.
fn markers_note(n: u64) -> String {
    match n {
        0 => String::new(),
        n => format!(", {n} staleness markers in sidecars"),
    }
}

/// `, N histogram samples and M histogram staleness markers in side files` when there are any.
fn histograms_note(samples: u64, markers: u64) -> String {
    match (samples, markers) {
        (0, 0) => String::new(),
        (n, 0) => format!(", {n} histogram samples in side files"),
        (n, m) => {
            format!(", {n} histogram samples and {m} histogram staleness markers in side files")
        }
    }
}

/// The OK lines on `out`, the problems on stderr; every problem is printed even when `out` fails,
/// whose first error is returned.
fn print_report(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    let mut written = Ok(());
    for f in &report.files {
        let path = report.dir.join(&f.file);
        match (&f.stats, f.problems.is_empty()) {
            (Some(st), true) => {
                let range = match (st.min_ts_ms, st.max_ts_ms) {
                    (Some(min), Some(max)) => format!(", ts {min}..{max} ms"),
                    _ => String::new(),
                };
                if written.is_ok() {
                    written = writeln!(
                        out,
                        "OK {}: {} series, {} samples{range}{}{}",
                        path.display(),
                        st.series,
                        st.samples,
                        markers_note(f.stale_markers),
                        histograms_note(f.histogram_samples, f.histogram_stale_markers)
                    );
                }
            }
            _ => {
                for p in &f.problems {
                    eprintln!("prom2om: verify: {}: {p}", path.display());
                }
            }
        }
    }
    for p in &report.problems {
        eprintln!("prom2om: verify: {p}");
    }
    written
}
