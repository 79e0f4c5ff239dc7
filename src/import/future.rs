//! Samples later than now in a shard directory (a customer host whose clock ran ahead): found
//! from the manifest before anything is imported, and refused unless allowed, since a home
//! Prometheus counts retention back from its newest sample and refuses anything older.

use anyhow::Result;

use crate::format::shard_dir::ShardDir;
use crate::timeparse::format_time;

/// The part of a shard directory that lies after `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ahead {
    /// The latest sample or staleness marker.
    pub latest_ms: i64,
    /// Manifest indices of the shards reaching past now (by their own or their sidecars' time
    /// range).
    pub shards: Vec<usize>,
}

/// Milliseconds since the epoch by this host's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What of `dir` lies after `now_ms`, by the manifest's time ranges (each shard's are checked
/// against its samples when it is read); `None` when nothing does.
pub fn ahead(dir: &ShardDir, now_ms: i64) -> Option<Ahead> {
    let mut out = Ahead {
        latest_ms: i64::MIN,
        shards: Vec::new(),
    };
    for (i, e) in dir.manifest().shards.iter().enumerate() {
        let side = e.sidecars.iter().filter(|s| s.samples > 0);
        let latest = side
            .map(|s| s.max_ts_ms)
            .chain((e.samples > 0).then_some(e.max_ts_ms))
            .max();
        if let Some(t) = latest.filter(|&t| t > now_ms) {
            out.latest_ms = out.latest_ms.max(t);
            out.shards.push(i);
        }
    }
    (!out.shards.is_empty()).then_some(out)
}

/// Reads the shards of `a` and counts their samples and staleness markers later than `now_ms`.
pub fn count(dir: &ShardDir, a: &Ahead, now_ms: i64) -> Result<u64> {
    let mut n = 0;
    for &i in &a.shards {
        let r = dir.shard(i).points(|p| {
            n += u64::from(p.ts_ms > now_ms);
            Ok(())
        });
        if !r.is_ok() {
            return Err(crate::bad_input!(
                "{}: {}",
                dir.path().join(&r.file).display(),
                r.problems.join("; ")
            ));
        }
    }
    Ok(n)
}

/// The refusal (bad input, exit 2) of `dir`, with `samples` of it later than `now_ms`: what
/// that would do to the receiving Prometheus, and what to do.
pub fn refusal(
    dir: &ShardDir,
    a: &Ahead,
    samples: u64,
    now_ms: i64,
    remote: bool,
) -> anyhow::Error {
    let m = dir.manifest();
    let mut files: Vec<&str> = a
        .shards
        .iter()
        .take(3)
        .map(|&i| m.shards[i].file.as_str())
        .collect();
    if a.shards.len() > 3 {
        files.push("...");
    }
    let harm = if remote {
        "a Prometheus receiver would then answer \"out of bounds\" to every current sample \
         written to it (and Prometheus 3 refuses samples more than 10 minutes ahead)"
    } else {
        "a Prometheus on that data dir would count its retention back from them, deleting the \
         blocks that end more than --storage.tsdb.retention.time before them, and refuse every \
         scraped or written sample older than them (\"out of bounds\") until its clock passes them"
    };
    crate::bad_input!(
        "{}: {samples} sample{} later than now, the latest at {} ({} ahead of this host's clock), \
         in {} shard(s) ({}): the clock of the host they came from was probably ahead. Imported, \
         {harm}. Check that host's clock (and this one's); pass --allow-future to import them \
         anyway",
        dir.path().display(),
        if samples == 1 { "" } else { "s" },
        format_time(a.latest_ms),
        span(a.latest_ms - now_ms),
        a.shards.len(),
        files.join(", ")
    )
}

/// A time span for messages: `29d 23h`, `3h 5m`, `42s`.
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(span(42_000), "42s");
        assert_eq!(span(125_000), "2m 5s");
        assert_eq!(span(3 * 3_600_000 + 5 * 60_000), "3h 5m");
        assert_eq!(span(30 * 86_400_000 - 3_600_000), "29d 23h");
        assert_eq!(span(-5), "0s");
    }
}
