//! `prom2om completions SHELL`: prints the shell completion script, generated from the same clap
//! definitions as the parser, so completions never drift from the options.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

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

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut crate::cli::Cli::command(),
        "prom2om",
        &mut script,
    );
    // A reader that goes away (`| head`) ends the run quietly, as for every command's output.
    let mut out = crate::exit_codes::stdout();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("writing the completion script to stdout")
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
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut crate::cli::Cli::command(),
                "prom2om",
                &mut script,
            );
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
