//! Build script: puts the git commit into `prom2om --version`, so a binary found on a customer's
//! host says exactly which source it was built from.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=PROM2OM_GIT_COMMIT");
    // A source tarball has no .git: the packager may pass the commit in.
    let commit = std::env::var("PROM2OM_GIT_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PROM2OM_GIT_COMMIT={commit}");
    // Which encoder writes gzip level 1 (the default), so `--version` tells a binary with
    // igzip (the release tarball's) from one without.
    let gzip = match std::env::var_os("CARGO_FEATURE_IGZIP") {
        Some(_) => "igzip",
        None => "zlib-rs",
    };
    println!("cargo:rustc-env=PROM2OM_GZIP={gzip}");
    // Rebuild when HEAD moves: HEAD itself (per worktree) and the one branch it points at, not
    // every branch (other worktrees' commits must not rebuild this one).
    if let (Some(dir), Some(common)) = (
        git(&["rev-parse", "--git-dir"]),
        git(&["rev-parse", "--git-common-dir"]),
    ) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        // A path that does not exist would make cargo rerun this script on every build.
        let packed = format!("{common}/packed-refs");
        if std::path::Path::new(&packed).exists() {
            println!("cargo:rerun-if-changed={packed}");
        }
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={common}/{branch}");
        }
    }
}
