//! The promtool that `import` drives: finding it, what its `create-blocks-from openmetrics`
//! accepts, and one backfill run with promtool's own error kept for the summary.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::format::openmetrics::QUOTED_NAMES_SINCE;
use crate::format::shard_dir::QuotedNames;

/// A promtool, and what its `create-blocks-from openmetrics` accepts.
#[derive(Clone, Debug)]
pub struct Promtool {
    pub path: PathBuf,
    /// `--max-block-duration` exists (not in 2.42).
    pub max_block_duration: bool,
    /// `promtool --version`, when it says one: (major, minor, patch).
    pub version: Option<(u32, u32, u32)>,
}

impl Promtool {
    /// Runs `promtool tsdb create-blocks-from openmetrics --help` to find the tool and its flags.
    pub fn detect(path: &Path) -> Result<Promtool> {
        let out = Command::new(path)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--help"])
            .stdin(Stdio::null())
            .output();
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
                "promtool not found ({}): install Prometheus' promtool (Debian: the `prometheus` \
                 package) or pass --promtool=PATH",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot run {}", path.display())),
        };
        let mut help = String::from_utf8_lossy(&out.stdout).into_owned();
        help.push_str(&String::from_utf8_lossy(&out.stderr));
        if !out.status.success() || !help.contains("create-blocks-from openmetrics") {
            bail!(
                "{} does not look like promtool: `tsdb create-blocks-from openmetrics --help` \
                 failed ({}): {}",
                path.display(),
                out.status,
                excerpt(&help)
            );
        }
        Ok(Promtool {
            path: path.to_path_buf(),
            max_block_duration: help.contains("--max-block-duration"),
            version: version_of(path),
        })
    }

    /// Refuses shards with quoted names when this promtool is older than the first that reads
    /// them; `shards` names the directory in the message. A promtool that does not say its
    /// version is given the benefit of the doubt.
    pub fn check_quoted_names(&self, q: Option<&QuotedNames>, shards: &Path) -> Result<()> {
        let (Some(q), Some(v)) = (q, self.version) else {
            return Ok(());
        };
        let (major, minor) = QUOTED_NAMES_SINCE;
        if q.series == 0 || (v.0, v.1) >= (major, minor) {
            return Ok(());
        }
        bail!(
            "{}: {} series have metric or label names outside [a-zA-Z_:][a-zA-Z0-9_:]* (e.g. \
             {}), written in the quoted form {{\"name\", ...}} that only promtool {major}.{minor} \
             or newer imports; {} is version {}.{}.{}. Import with a newer promtool \
             (--promtool=PATH), or convert again leaving those series or labels out (--match, \
             --drop-label)",
            shards.display(),
            q.series,
            q.examples.join(", "),
            self.path.display(),
            v.0,
            v.1,
            v.2
        )
    }
}

/// The version `promtool --version` prints on its first line: `promtool, version 2.42.0+ds (...)`.
fn version_of(path: &Path) -> Option<(u32, u32, u32)> {
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    parse_version(&text)
}

fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = &text[text.find("version ")? + "version ".len()..];
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let mut next = || parts.next()?.parse::<u32>().ok();
    Some((next()?, next()?, next()?))
}

impl Promtool {
    /// Backfills the OpenMetrics file `input` into blocks under `out_dir`, promtool's temporary
    /// head under `tmp`. `Ok(Err(reason))` when promtool fails, with its own message.
    pub fn create_blocks(
        &self,
        input: &Path,
        out_dir: &Path,
        tmp: &Path,
        block_duration_ms: i64,
    ) -> Result<Result<(), String>> {
        let mut cmd = Command::new(&self.path);
        cmd.args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"]);
        if self.max_block_duration && block_duration_ms > 0 {
            cmd.arg(format!(
                "--max-block-duration={}",
                go_duration(block_duration_ms)
            ));
        }
        die_with_parent(&mut cmd);
        let out = cmd
            .arg(input)
            .arg(out_dir)
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.path.display()))?;
        if out.status.success() {
            return Ok(Ok(()));
        }
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        Ok(Err(format!(
            "promtool failed ({}): {}",
            out.status,
            excerpt(&text)
        )))
    }
}

/// A promtool outliving a killed `import` would write into a staging dir the next run cleans:
/// on Linux the kernel kills it with its parent.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// A millisecond count as a Prometheus duration (`2h`, `1h30m`, `1500ms`).
pub fn go_duration(ms: i64) -> String {
    let mut s = String::new();
    let mut rest = ms;
    for (unit, len) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if rest >= len {
            s.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    if rest > 0 || s.is_empty() {
        s.push_str(&format!("{rest}ms"));
    }
    s
}

/// The end of a tool's error output, on one line: enough to see why, short enough for a summary.
pub fn excerpt(text: &str) -> String {
    const MAX: usize = 400;
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.len() <= MAX {
        return one_line;
    }
    let mut cut = one_line.len() - MAX;
    while !one_line.is_char_boundary(cut) {
        cut += 1;
    }
    format!("...{}", &one_line[cut..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_promtool_prints_them() {
        let debian = "promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)\n";
        assert_eq!(parse_version(debian), Some((2, 42, 0)));
        assert_eq!(
            parse_version("promtool, version 3.5.0 (branch: HEAD)"),
            Some((3, 5, 0))
        );
        assert_eq!(parse_version("usage: promtool"), None);
    }

    #[test]
    fn durations_in_prometheus_syntax() {
        assert_eq!(go_duration(7_200_000), "2h");
        assert_eq!(go_duration(86_400_000), "1d");
        assert_eq!(go_duration(5_400_000), "1h30m");
        assert_eq!(go_duration(1500), "1s500ms");
        assert_eq!(go_duration(0), "0ms");
    }

    #[test]
    fn excerpt_keeps_the_end_on_one_line() {
        assert_eq!(excerpt("a\n  b\n"), "a b");
        let long = format!("{}tail", "x ".repeat(500));
        let e = excerpt(&long);
        assert!(e.starts_with("...") && e.ends_with("tail") && e.len() <= 403);
    }
}
