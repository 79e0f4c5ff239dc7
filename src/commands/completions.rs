//! `prom2om completions SHELL`: prints the shell completion script, generated from the same clap
//! definitions as the parser (which `cli` hands in), so completions never drift from the options.

use std::io::Write;

use anyhow::Context;

/// Print a shell completion script to stdout.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  prom2om completions bash > /etc/bash_completion.d/prom2om
  prom2om completions zsh > \"${fpath[1]}/_prom2om\"
  prom2om completions fish > ~/.config/fish/completions/prom2om.fish")]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the script for `cli`, the whole command line's definition.
pub fn run(args: Args, cli: &mut clap::Command) -> anyhow::Result<()> {
    let script = script(args.shell, cli);
    // A reader that goes away (`| head`) ends the run quietly, as for every command's output.
    let mut out = crate::exit_codes::stdout();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completion script to stdout")
}

/// The completion script of `cli` for `shell`.
pub fn script(shell: clap_complete::Shell, cli: &mut clap::Command) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, cli, "prom2om", &mut script);
    script
}
