//! The command line: the subcommands and the global behaviour (exit codes, error printing).

use clap::{CommandFactory, Parser, Subcommand};

use crate::exit_codes::ExitCode;

/// `prom2om --version`: the package version, the git commit it was built from and the gzip
/// level-1 encoder built in.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PROM2OM_GIT_COMMIT"),
    ", gzip level 1: ",
    env!("PROM2OM_GZIP"),
    ")"
);

/// Export Prometheus data as sorted, sharded OpenMetrics that `promtool tsdb create-blocks-from
/// openmetrics` imports bit-exact, and import it at home.
#[derive(Parser, Debug)]
#[command(name = "prom2om", version = VERSION, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Convert a Prometheus data directory (read directly) or `promtool tsdb dump` output into
    /// sorted, sharded OpenMetrics.
    Convert(crate::commands::convert::Args),
    /// Export raw samples from a Prometheus HTTP API into shards (when there is no shell on its host).
    Fetch(Box<crate::commands::fetch::Args>),
    /// Check a shard directory: manifest, checksums, OpenMetrics validity, counts.
    Verify(crate::commands::verify::Args),
    /// Load a shard directory into a TSDB data dir, checked against the manifest.
    Import(crate::commands::import::Args),
    /// Show what a data directory, dump or shard directory holds and what the filters would keep.
    Inspect(crate::commands::inspect::Args),
    /// Show the series selectors Grafana dashboards need, per panel, for --match or --dashboard.
    Dashboard(crate::commands::dashboard::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(crate::commands::completions::Args),
}

/// Parses the command line, runs it, prints any error, and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::BadInput
            } else {
                ExitCode::Success
            };
        }
    };
    let result = match cli.command {
        Command::Convert(a) => crate::commands::convert::run(a),
        Command::Inspect(a) => crate::commands::inspect::run(a),
        Command::Verify(a) => crate::commands::verify::run(a),
        Command::Fetch(a) => crate::commands::fetch::run(*a),
        Command::Import(a) => crate::commands::import::run(a),
        Command::Dashboard(a) => crate::commands::dashboard::run(a),
        Command::Completions(a) => crate::commands::completions::run(a, &mut Cli::command()),
    };
    match result {
        Ok(()) => ExitCode::Success,
        Err(e) if crate::exit_codes::is_stdout_closed(&e) => ExitCode::Success,
        Err(e) => {
            eprintln!("prom2om: error: {e:#}");
            ExitCode::of(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_script_names_every_subcommand() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let script = crate::commands::completions::script(shell, &mut Cli::command());
            let text = String::from_utf8(script).unwrap();
            for sub in [
                "convert",
                "fetch",
                "verify",
                "import",
                "inspect",
                "completions",
            ] {
                assert!(text.contains(sub), "{shell:?} completion lacks {sub}");
            }
        }
    }
}
