//! `prom2om verify DIR`: checks a shard directory (manifest, checksums, OpenMetrics validity,
//! counts, windows) without importing it, and prints one line per shard and a summary.

use std::path::PathBuf;

use crate::verify::{verify_dir, Report};

/// Check a shard directory: manifest, checksums, OpenMetrics validity, counts.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The shard directory, the one that holds manifest.json.
    pub dir: PathBuf,
}

/// Exit 0 when everything holds; otherwise every problem goes to stderr, naming its file, and
/// the command fails (exit 1).
pub fn run(args: Args) -> anyhow::Result<()> {
    let report = verify_dir(&args.dir)?;
    print_report(&report);
    let n = report.problem_count();
    if n > 0 {
        anyhow::bail!(
            "{}: verification failed: {n} problem{}",
            args.dir.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    let t = &report.totals;
    println!(
        "OK {}: {} shards, {} series, {} samples",
        args.dir.display(),
        report.files.len(),
        t.series,
        t.samples
    );
    Ok(())
}

fn print_report(report: &Report) {
    for f in &report.files {
        let path = report.dir.join(&f.file);
        match (&f.stats, f.problems.is_empty()) {
            (Some(st), true) => {
                let range = match (st.min_ts_ms, st.max_ts_ms) {
                    (Some(min), Some(max)) => format!(", ts {min}..{max} ms"),
                    _ => String::new(),
                };
                println!(
                    "OK {}: {} series, {} samples{range}",
                    path.display(),
                    st.series,
                    st.samples
                );
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
}
