//! Which Prometheus reads what an import writes, and which one is at home: the first versions
//! that read native histogram chunks (from Prometheus's changelog and code), and the version of
//! the server holding the data dir, of the `prometheus` on PATH, or of a remote-write receiver.
//!
//! - Integer histogram chunks (encoding 2): 2.40.0, the first with native histograms.
//! - Float histogram chunks (encoding 3): 2.42.0 ("older versions do not support float
//!   histograms", its changelog; `chunkenc.EncFloatHistogram` first in its code).
//! - Custom buckets (schema -53, NHCB): 2.54.0, whose chunk layout first reads the custom bounds
//!   after the spans (prometheus#13706; 3.5 reads and writes that same layout). An older one
//!   reads the bounds' bytes as samples: wrong buckets, or a chunk it cannot decode.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::format::shard_dir::ShardDir;
use crate::format::tsdb::block_writer::HistogramStats;

/// A Prometheus version, major.minor.patch (build suffixes such as Debian's `+ds` ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl Version {
    /// `2.42.0`, `v3.5.3`, `2.42.0+ds`, `3.0.0-rc.1`: the three numbers at the start.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let mut parts = s.split(|c: char| !c.is_ascii_digit());
        let mut next = || parts.next()?.parse::<u32>().ok();
        Some(Version(next()?, next()?, next()?))
    }
}

/// The first Prometheus that reads integer native histograms.
pub const INTEGER_HISTOGRAMS: Version = Version(2, 40, 0);
/// The first that reads float histogram chunks (encoding 3).
pub const FLOAT_HISTOGRAMS: Version = Version(2, 42, 0);
/// The first that reads histograms with custom buckets (NHCB, schema -53) in chunks.
pub const CUSTOM_BUCKETS: Version = Version(2, 54, 0);

/// What the minimum versions mean, for messages.
pub const MINIMUMS: &str = "Prometheus reads native histograms from 2.40.0 (integer), 2.42.0 \
     (float histograms) and 2.54.0 (custom buckets, NHCB)";

/// The version a reader of these histograms needs, and why; `None` without histograms.
pub fn needed(h: &HistogramStats) -> Option<(Version, &'static str)> {
    if h.custom_buckets > 0 {
        Some((
            CUSTOM_BUCKETS,
            "native histograms with custom buckets (NHCB)",
        ))
    } else if h.float > 0 {
        Some((FLOAT_HISTOGRAMS, "float native histograms"))
    } else if h.samples > 0 {
        Some((INTEGER_HISTOGRAMS, "native histograms"))
    } else {
        None
    }
}

/// The native histograms of every shard of `dir` by kind, from their side files alone (damaged
/// ones as far as they read: each shard's own read reports them).
pub fn kinds(dir: &ShardDir) -> HistogramStats {
    let mut h = HistogramStats::default();
    for i in 0..dir.manifest().shards.len() {
        dir.each_histogram(i, |v| h.add(v));
    }
    h
}

/// Whether a Prometheus of version `v` reads every kind of native histogram prom2om writes.
pub fn reads_every_kind(v: Version) -> bool {
    v >= CUSTOM_BUCKETS
}

/// Why `home` cannot read the histograms `h` (of `whose`: "the shards", "its"), when it is too
/// old for them: how many need which version, and what to do.
pub fn refusal(home: &Home, h: &HistogramStats, whose: &str) -> Option<String> {
    let (need, what) = needed(h)?;
    if home.version >= need {
        return None;
    }
    let n = if h.custom_buckets > 0 {
        h.custom_buckets
    } else if h.float > 0 {
        h.float
    } else {
        h.samples
    };
    let path_note = if home.running {
        ""
    } else {
        " (the prometheus first on PATH is taken for the one that will serve the data dir: if \
         another will, put it first on PATH)"
    };
    Some(format!(
        "{whose} {} native histogram samples include {n} {what}, which Prometheus reads from \
         {need} on; {} is {}{path_note}. Serve the data dir with Prometheus {need} or newer, or \
         import with --promtool, which leaves the native histograms out",
        h.samples, home.what, home.version
    ))
}

/// The version in what `prometheus --version` prints: `prometheus, version 2.42.0+ds (branch:
/// ...`.
pub fn from_version_output(text: &str) -> Option<Version> {
    let line = text.lines().find(|l| l.starts_with("prometheus"))?;
    Version::parse(&line[line.find("version ")? + "version ".len()..])
}

/// The version of the Prometheus binary at `path` (`--version`), if it runs and says one.
pub fn of_binary(path: &Path) -> Option<Version> {
    let out = std::process::Command::new(path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    from_version_output(&text)
}

/// The version in a Prometheus's `/api/v1/status/buildinfo` answer. Only a Prometheus's counts:
/// it names its revision and Go version, where VictoriaMetrics answers a fixed `2.24.0` (or
/// nothing) for Grafana's sake.
pub fn from_buildinfo(body: &[u8]) -> Option<Version> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let data = &v["data"];
    data.get("revision")?;
    data.get("goVersion")?;
    Version::parse(data["version"].as_str()?)
}

/// The first `name` on PATH that is a file.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The Prometheus that will read a data dir, as far as can be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    pub version: Version,
    /// Where it was found: "the Prometheus running on DIR (pid N)", "prometheus on PATH (P)".
    pub what: String,
    /// A server holds the dir now: certain to be the reader.
    pub running: bool,
}

/// The Prometheus of the data dir `dir`: the process holding it (its executable asked for its
/// version), else the `prometheus` on PATH.
pub fn of_data_dir(dir: &Path) -> Option<Home> {
    if let Some((pid, name)) = super::lock::process_in(dir) {
        let exe = PathBuf::from(format!("/proc/{pid}/exe"));
        if let Some(version) = of_binary(&exe) {
            return Some(Home {
                version,
                what: format!("the {name} running on {} (pid {pid})", dir.display()),
                running: true,
            });
        }
    }
    let bin = on_path("prometheus")?;
    Some(Home {
        version: of_binary(&bin)?,
        what: format!("the prometheus on PATH ({})", bin.display()),
        running: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_what_prometheus_says() {
        assert_eq!(Version::parse("2.42.0+ds"), Some(Version(2, 42, 0)));
        assert_eq!(Version::parse("v3.5.3"), Some(Version(3, 5, 3)));
        assert_eq!(Version::parse("3.0.0-rc.1"), Some(Version(3, 0, 0)));
        assert_eq!(Version::parse("2.24"), None);
        let out = "prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)\n  \
                   build user: x\n  go version: go1.19.8\n";
        assert_eq!(from_version_output(out), Some(Version(2, 42, 0)));
        assert!(Version(2, 42, 0) < CUSTOM_BUCKETS && Version(3, 5, 3) > CUSTOM_BUCKETS);
    }

    #[test]
    fn buildinfo_of_prometheus_only() {
        let prom = br#"{"status":"success","data":{"version":"3.5.3+ds1","revision":"3.5.3+ds1-6","branch":"debian/sid","buildUser":"x","buildDate":"y","goVersion":"go1.27.1"}}"#;
        assert_eq!(from_buildinfo(prom), Some(Version(3, 5, 3)));
        // VictoriaMetrics 1.145 and 1.79.
        assert_eq!(
            from_buildinfo(br#"{"status":"success","data":{"version":"2.24.0"}}"#),
            None
        );
        assert_eq!(from_buildinfo(br#"{"status":"success","data":{}}"#), None);
        assert_eq!(from_buildinfo(b"<html>"), None);
    }

    #[test]
    fn refusals_say_what_needs_which_version() {
        let home = |v| Home {
            version: v,
            what: "the prometheus on PATH (/usr/bin/prometheus)".into(),
            running: false,
        };
        let h = HistogramStats {
            samples: 10,
            float: 4,
            custom_buckets: 3,
        };
        let why = refusal(&home(Version(2, 42, 0)), &h, "the shards'").unwrap();
        assert!(
            why.starts_with(
                "the shards' 10 native histogram samples include 3 native histograms with \
                 custom buckets (NHCB), which Prometheus reads from 2.54.0 on; the prometheus on \
                 PATH (/usr/bin/prometheus) is 2.42.0 (the prometheus first on PATH"
            ),
            "{why}"
        );
        assert!(why.contains("--promtool"), "{why}");
        assert_eq!(refusal(&home(Version(2, 54, 0)), &h, "its"), None);
        let floats = HistogramStats {
            custom_buckets: 0,
            ..h
        };
        assert_eq!(refusal(&home(Version(2, 42, 0)), &floats, "its"), None);
        let why = refusal(&home(Version(2, 41, 0)), &floats, "its").unwrap();
        assert!(why.contains("include 4 float native histograms"), "{why}");
        assert!(reads_every_kind(Version(3, 5, 3)) && !reads_every_kind(Version(2, 53, 1)));
    }

    #[test]
    fn what_each_kind_needs() {
        let h = |samples, float, custom_buckets| HistogramStats {
            samples,
            float,
            custom_buckets,
        };
        assert_eq!(needed(&h(0, 0, 0)), None);
        assert_eq!(needed(&h(3, 0, 0)).unwrap().0, INTEGER_HISTOGRAMS);
        assert_eq!(needed(&h(3, 1, 0)).unwrap().0, FLOAT_HISTOGRAMS);
        assert_eq!(needed(&h(3, 1, 1)).unwrap().0, CUSTOM_BUCKETS);
    }

    /// The real Prometheus binaries on this machine say their versions.
    #[test]
    fn the_installed_prometheus_says_its_version() {
        let bin = on_path("prometheus").expect("prometheus on PATH (Debian's 2.42)");
        let v = of_binary(&bin).expect("a version");
        assert!(v >= Version(2, 0, 0), "{v}");
    }
}
