//! Work planning for `fetch`: the units of work (one selector over one time window), sized so a
//! response stays well inside the server's limits, and the checkpoint file that records finished
//! units so an interrupted fetch resumes where it stopped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// A label matcher as the HTTP APIs take it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Match {
    pub name: String,
    pub op: Op,
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Eq,
    Ne,
    Re,
    Nre,
}

impl Match {
    pub fn new(name: &str, op: Op, value: &str) -> Match {
        Match {
            name: name.to_string(),
            op,
            value: value.to_string(),
        }
    }
}

impl From<&crate::select::selector::Matcher> for Match {
    fn from(m: &crate::select::selector::Matcher) -> Match {
        use crate::select::selector::MatchOp;
        let op = match m.op {
            MatchOp::Equal => Op::Eq,
            MatchOp::NotEqual => Op::Ne,
            MatchOp::RegexMatch => Op::Re,
            MatchOp::RegexNoMatch => Op::Nre,
        };
        Match::new(&m.name, op, &m.value)
    }
}

/// Renders matchers as a PromQL series selector, `{a="x",b=~"y"}`. Values are quoted as JSON
/// strings, whose escapes PromQL's double-quoted strings accept.
pub fn promql_selector(ms: &[Match]) -> String {
    let mut s = String::from("{");
    for (i, m) in ms.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&m.name);
        s.push_str(match m.op {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::Nre => "!~",
        });
        s.push_str(&serde_json::to_string(&m.value).expect("strings serialize"));
    }
    s.push('}');
    s
}

/// RE2 syntax for a literal string.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How samples are pulled from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// `POST /api/v1/read`, streamed XOR chunks (raw samples, exact bits).
    RemoteRead,
    /// Instant queries of `{sel}[W]`: raw samples through PromQL.
    Raw,
    /// `query_range` at a step: resampled values.
    Range,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::RemoteRead => "remote-read",
            Method::Raw => "raw",
            Method::Range => "range",
        }
    }
}

/// One request's worth of work: a selector over the inclusive time range `[start_ms, end_ms]`.
/// For `Range`, the range's ends are evaluation times on the step grid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub matchers: Vec<Match>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Estimated samples, for the progress bar.
    pub est_samples: u64,
}

/// A selector and how many series it matched at discovery.
#[derive(Clone, Debug)]
pub struct Group {
    pub matchers: Vec<Match>,
    pub series: u64,
}

/// Sizing of the work units.
#[derive(Clone, Copy, Debug)]
pub struct Sizing {
    /// Smallest scrape interval the server is configured with: the densest data to expect.
    pub interval_ms: i64,
    /// Samples one request may return (an estimate; well under `query.max-samples`).
    pub samples_per_request: u64,
    /// For `Range`: the step.
    pub step_ms: i64,
    /// Points per series `query_range` allows (11,000 in Prometheus).
    pub max_points: i64,
}

/// Block-aligned window length for remote read: chunks never straddle 2h boundaries, so
/// windows on multiples of 2h never fetch a chunk twice.
const ALIGN_MS: i64 = 2 * 3600 * 1000;

/// Splits every group over `[start, end]` (inclusive) into units.
pub fn plan(method: Method, groups: &[Group], start: i64, end: i64, s: &Sizing) -> Vec<Unit> {
    let mut units = Vec::new();
    for g in groups {
        let series = g.series.max(1);
        let per_ms = series as f64 / s.interval_ms.max(1) as f64;
        let windows = match method {
            Method::RemoteRead => {
                let w = (s.samples_per_request as f64 / per_ms) as i64;
                let w = (w / ALIGN_MS).max(1) * ALIGN_MS;
                aligned_windows(start, end, w)
            }
            Method::Raw => {
                let w = ((s.samples_per_request as f64 / per_ms) as i64).max(1000);
                aligned_windows(start, end, w)
            }
            Method::Range => range_windows(start, end, s.step_ms, s.max_points, series, s),
        };
        for (a, b) in windows {
            let est = match method {
                Method::Range => ((b - a) / s.step_ms.max(1) + 1) as u64 * series,
                _ => ((b - a + 1) as f64 * per_ms) as u64,
            };
            units.push(Unit {
                matchers: g.matchers.clone(),
                start_ms: a,
                end_ms: b,
                est_samples: est,
            });
        }
    }
    units
}

/// Inclusive windows covering `[start, end]`, cut at multiples of `w` since the epoch.
fn aligned_windows(start: i64, end: i64, w: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut a = start;
    while a <= end {
        let next = (a.div_euclid(w) + 1) * w;
        let b = (next - 1).min(end);
        out.push((a, b));
        a = b + 1;
    }
    out
}

/// Evaluation-time windows on the grid `start + k*step`, each at most `max_points` points and
/// at most about `samples_per_request` points over all series.
fn range_windows(
    start: i64,
    end: i64,
    step: i64,
    max_points: i64,
    series: u64,
    s: &Sizing,
) -> Vec<(i64, i64)> {
    let step = step.max(1);
    let by_samples = (s.samples_per_request / series.max(1)) as i64;
    let points = max_points.min(by_samples).max(1);
    let total = (end - start) / step + 1;
    let mut out = Vec::new();
    let mut k = 0;
    while k < total {
        let last = (k + points - 1).min(total - 1);
        out.push((start + k * step, start + last * step));
        k = last + 1;
    }
    out
}

/// The checkpoint: the plan and its fingerprint (written once), then one line per finished
/// unit with the spool length at that point. A torn last line is ignored.
pub struct Checkpoint {
    file: File,
}

#[derive(Serialize, Deserialize)]
struct Header {
    version: u32,
    fingerprint: String,
    method: Method,
    start_ms: i64,
    end_ms: i64,
    units: Vec<Unit>,
}

/// What a checkpoint says about an interrupted fetch.
pub struct Resumed {
    pub method: Method,
    pub start_ms: i64,
    pub end_ms: i64,
    pub units: Vec<Unit>,
    pub done: Vec<bool>,
    pub spool_len: u64,
}

pub const CHECKPOINT_FILE: &str = "checkpoint.jsonl";
/// The checkpoint and spool format: 2 since the spool carries native histograms.
const VERSION: u32 = 2;

impl Checkpoint {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(CHECKPOINT_FILE)
    }

    /// Starts a new checkpoint holding the plan.
    pub fn create(
        dir: &Path,
        fingerprint: &str,
        method: Method,
        units: &[Unit],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Self> {
        let path = Self::path(dir);
        let mut file = File::create(&path)
            .with_context(|| format!("creating checkpoint {}", path.display()))?;
        let h = Header {
            version: VERSION,
            fingerprint: fingerprint.to_string(),
            method,
            start_ms,
            end_ms,
            units: units.to_vec(),
        };
        serde_json::to_writer(&mut file, &h)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        Ok(Checkpoint { file })
    }

    /// Reads an existing checkpoint; fails if it belongs to a fetch with other options.
    pub fn resume(dir: &Path, fingerprint: &str) -> Result<(Self, Resumed)> {
        let path = Self::path(dir);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        // Only newline-terminated lines count: a line cut by a crash is ignored.
        let mut lines = text.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        let first = lines
            .next()
            .with_context(|| format!("{} is empty", path.display()))?;
        let h: Header = serde_json::from_str(first)
            .with_context(|| format!("{}: not a prom2om fetch checkpoint", path.display()))?;
        if h.version != VERSION {
            return Err(crate::bad_input!(
                "{} was written by another version of prom2om (checkpoint format {}, this one \
                 reads {VERSION}); use --force to start over",
                path.display(),
                h.version
            ));
        }
        if h.fingerprint != fingerprint {
            return Err(crate::bad_input!(
                "{} was written by a fetch with other options; rerun with the same URL, \
                 --match, time range and --method, or use --force to start over",
                path.display()
            ));
        }
        let mut done = vec![false; h.units.len()];
        let mut spool_len = 0;
        let mut good_bytes = first.len() as u64;
        for line in lines {
            let mut it = line.trim_end().split(' ');
            let (Some("done"), Some(i), Some(len), None) =
                (it.next(), it.next(), it.next(), it.next())
            else {
                break;
            };
            let (Ok(i), Ok(len)) = (i.parse::<usize>(), len.parse::<u64>()) else {
                break;
            };
            if i >= done.len() {
                break;
            }
            done[i] = true;
            spool_len = len;
            good_bytes += line.len() as u64;
        }
        let mut file = OpenOptions::new().write(true).open(&path)?;
        // Drop a torn last line so new lines start clean.
        file.set_len(good_bytes)?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0))?;
        let r = Resumed {
            method: h.method,
            start_ms: h.start_ms,
            end_ms: h.end_ms,
            units: h.units,
            done,
            spool_len,
        };
        Ok((Checkpoint { file }, r))
    }

    /// Records unit `i` as finished, the spool being `spool_len` bytes long with its samples.
    pub fn done(&mut self, i: usize, spool_len: u64) -> Result<()> {
        writeln!(self.file, "done {i} {spool_len}")?;
        self.file.sync_data().context("writing the checkpoint")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing() -> Sizing {
        Sizing {
            interval_ms: 15_000,
            samples_per_request: 1_000_000,
            step_ms: 15_000,
            max_points: 11_000,
        }
    }

    fn group(series: u64) -> Group {
        Group {
            matchers: vec![Match::new("__name__", Op::Eq, "m")],
            series,
        }
    }

    fn assert_tiles(units: &[Unit], start: i64, end: i64) {
        assert_eq!(units[0].start_ms, start);
        assert_eq!(units.last().unwrap().end_ms, end);
        for w in units.windows(2) {
            assert_eq!(w[0].end_ms + 1, w[1].start_ms);
        }
    }

    #[test]
    fn remote_read_windows_are_block_aligned_and_tile() {
        let start = 1_700_000_123_456;
        let end = start + 3 * 86_400_000;
        // 2000 series at 15s: 1M samples is 2h05m -> 2h windows.
        let units = plan(Method::RemoteRead, &[group(2000)], start, end, &sizing());
        assert_tiles(&units, start, end);
        for u in &units[1..] {
            assert_eq!(u.start_ms % ALIGN_MS, 0);
        }
        assert_eq!(units.len(), 37);
        let one = plan(Method::RemoteRead, &[group(1)], start, end, &sizing());
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn raw_windows_respect_the_sample_budget() {
        let (start, end) = (0, 86_400_000 - 1);
        let units = plan(Method::Raw, &[group(10_000)], start, end, &sizing());
        assert_tiles(&units, start, end);
        for u in &units {
            assert!(u.est_samples <= 1_000_000, "{u:?}");
        }
    }

    #[test]
    fn range_windows_stay_under_11000_points() {
        let s = Sizing {
            step_ms: 1000,
            ..sizing()
        };
        let (start, end) = (5, 5 + 30_000 * 1000);
        let units = plan(Method::Range, &[group(3)], start, end, &s);
        assert_eq!(units.len(), 3);
        let mut pts = 0;
        for (i, u) in units.iter().enumerate() {
            let p = (u.end_ms - u.start_ms) / 1000 + 1;
            assert!(p <= 11_000);
            assert_eq!((u.start_ms - start) % 1000, 0);
            if i > 0 {
                assert_eq!(units[i - 1].end_ms + 1000, u.start_ms);
            }
            pts += p;
        }
        assert_eq!(pts, 30_001);
    }

    #[test]
    fn selector_rendering_and_escaping() {
        let ms = vec![
            Match::new("__name__", Op::Eq, "m"),
            Match::new("path", Op::Ne, "a\"b\\c\nd"),
            Match::new("x", Op::Re, "a|b"),
            Match::new("y", Op::Nre, ""),
        ];
        assert_eq!(
            promql_selector(&ms),
            r#"{__name__="m",path!="a\"b\\c\nd",x=~"a|b",y!~""}"#
        );
        assert_eq!(regex_escape("a.b|c(d)"), r"a\.b\|c\(d\)");
    }

    #[test]
    fn checkpoint_roundtrip_ignores_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sizing {
            samples_per_request: 100,
            ..sizing()
        };
        let units = plan(Method::Raw, &[group(5)], 0, 10_000_000, &s);
        assert!(units.len() > 3);
        let mut c = Checkpoint::create(dir.path(), "fp", Method::Raw, &units, 0, 1).unwrap();
        c.done(0, 100).unwrap();
        c.done(2, 250).unwrap();
        drop(c);
        let path = Checkpoint::path(dir.path());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"done 1 9").unwrap();
        drop(f);
        let (mut c, r) = Checkpoint::resume(dir.path(), "fp").unwrap();
        assert_eq!(r.units, units);
        assert_eq!(r.spool_len, 250);
        assert!(r.done[0] && !r.done[1] && r.done[2]);
        c.done(1, 300).unwrap();
        drop(c);
        let (_, r) = Checkpoint::resume(dir.path(), "fp").unwrap();
        assert!(r.done[1]);
        assert_eq!(r.spool_len, 300);
        assert!(Checkpoint::resume(dir.path(), "other").is_err());
    }
}
