//! Writes prom2om's man pages (prom2om.1 and one per subcommand, prom2om-convert.1, ...) into the
//! directory given, from the same clap definitions as the parser; `dist/build.sh` packages them.

use clap::CommandFactory;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ".".into());
    std::fs::create_dir_all(&dir)?;
    let cmd = prom2om::cli::Cli::command();
    clap_mangen::generate_to(cmd, &dir)
}
