//! What an import does, in one vocabulary for both destinations (blocks in a data dir, a
//! remote-write receiver): each shard's outcome, the run's summary, and the progress told on the way.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// What became of one shard.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Its blocks are in the data dir and hold exactly the manifest's samples, and the
    /// staleness markers and native histograms (their markers too) of its side files (none
    /// through promtool, which cannot).
    Imported {
        blocks: Vec<String>,
        samples: u64,
        markers: u64,
        histograms: u64,
        histogram_markers: u64,
        min_time_ms: Option<i64>,
        max_time_ms: Option<i64>,
    },
    /// The receiver holds every sample (and staleness marker of its sidecar), and every native
    /// histogram sample and marker of its side file but those the push left out.
    Pushed {
        samples: u64,
        requests: u64,
        markers: u64,
        /// Native histogram samples and histogram staleness markers pushed.
        histograms: u64,
        histogram_markers: u64,
        /// Native histogram samples and markers left out (`--skip-histograms`, or custom
        /// buckets a remote write 1.0 receiver cannot take).
        left_out: u64,
        /// Samples and markers an interrupted earlier run had delivered (not sent again).
        earlier: u64,
    },
    /// An earlier run imported it (same file name and checksum; pushed: to the same receiver).
    Skipped,
    /// An earlier run was interrupted while moving its blocks; this run finished the move.
    Recovered { blocks: Vec<String> },
    /// Nothing of it reached the data dir, or not all of it the receiver: why, in promtool's or
    /// the receiver's words when they refused it.
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct ShardResult {
    /// Position in the manifest.
    pub index: usize,
    pub file: String,
    pub expected_samples: u64,
    pub outcome: Outcome,
}

/// Where the shards went, and what only that destination counts.
#[derive(Clone, Debug)]
pub enum Destination {
    Blocks {
        /// The staging area: import state, and the work dirs of running jobs.
        staging: PathBuf,
        /// A shard failed because the disk (or quota) of the data dir was full.
        no_space: bool,
    },
    Receiver {
        /// Series that an `--add-label` gave a different value than they had.
        overridden: u64,
        requests: u64,
        retries: u64,
        bytes_sent: u64,
        /// Requests whose fate was unknown (an answer lost, a refusal for what the receiver
        /// holds, an interrupted run), asked about on the receiver's query API.
        checked: u64,
        /// Of those, found held whole: not sent again.
        found: u64,
        /// Requests sent again after an answer was lost, with no query API to check first.
        unchecked: u64,
        /// NaN samples of each shard this run read (manifest index), for `--verify-url`.
        nan: HashMap<usize, u64>,
        /// Histogram samples (markers not included) of each shard this run read that the
        /// receiver was sent, for `--verify-url`.
        histograms: HashMap<usize, u64>,
        /// What the receiver is sent (protocol, native histograms or not), and its notes to
        /// say (what the receiver is, what is left out).
        plan: crate::import::rw_negotiate::Plan,
    },
}

#[derive(Clone, Debug)]
pub struct Summary {
    /// One result per manifest shard: in manifest order into blocks, in push (time) order into
    /// a receiver.
    pub results: Vec<ShardResult>,
    /// Problems of the directory as a whole (totals, files the manifest does not list):
    /// reported, but no reason to refuse the shards.
    pub warnings: Vec<String>,
    pub destination: Destination,
    pub elapsed: Duration,
}

impl Summary {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    /// Shards imported or pushed by this run.
    pub fn done(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Imported { .. } | Outcome::Pushed { .. }))
    }

    /// Shards an earlier run imported or pushed (or began moving).
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped | Outcome::Recovered { .. }))
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    /// Samples this run imported or pushed.
    pub fn samples(&self) -> u64 {
        self.results
            .iter()
            .map(|r| match r.outcome {
                Outcome::Imported { samples, .. } | Outcome::Pushed { samples, .. } => samples,
                _ => 0,
            })
            .sum()
    }

    /// Staleness markers this run imported or pushed (not in [`Summary::samples`]).
    pub fn markers(&self) -> u64 {
        self.results
            .iter()
            .map(|r| match r.outcome {
                Outcome::Imported { markers, .. } | Outcome::Pushed { markers, .. } => markers,
                _ => 0,
            })
            .sum()
    }

    /// Native histogram samples, and their staleness markers, this run imported (in neither
    /// [`Summary::samples`] nor [`Summary::markers`]).
    pub fn histograms(&self) -> (u64, u64) {
        self.results
            .iter()
            .map(|r| match r.outcome {
                Outcome::Imported {
                    histograms,
                    histogram_markers,
                    ..
                } => (histograms, histogram_markers),
                _ => (0, 0),
            })
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// Blocks this run put into the data dir (imported now, or a killed run's finished moves).
    pub fn blocks(&self) -> usize {
        self.results
            .iter()
            .map(|r| match &r.outcome {
                Outcome::Imported { blocks, .. } | Outcome::Recovered { blocks } => blocks.len(),
                _ => 0,
            })
            .sum()
    }

    /// Earliest sample time imported by this run.
    pub fn min_time_ms(&self) -> Option<i64> {
        self.results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Imported { min_time_ms, .. } => *min_time_ms,
                _ => None,
            })
            .min()
    }
}

/// Told about the run as it goes, e.g. to draw a progress bar. Called from worker threads.
pub trait Progress: Sync {
    /// Before the directory is checked as a whole (each shard is verified in the read that
    /// imports it).
    fn verifying(&self, _shards: u64) {}
    /// Before the first shard: how many shards and samples are to be imported.
    fn planned(&self, _shards: u64, _samples: u64) {}
    /// `samples` more are through: accepted by the receiver, or in a shard that finished.
    fn samples_done(&self, _samples: u64) {}
    fn finished(&self, _result: &ShardResult) {}
    /// Something the user should know before the run ends (a check that could not be made).
    fn warn(&self, _text: &str) {}
}

/// No progress reporting.
pub struct Silent;
impl Progress for Silent {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_over_both_destinations() {
        let r = |outcome| ShardResult {
            index: 0,
            file: "f".into(),
            expected_samples: 5,
            outcome,
        };
        let s = Summary {
            results: vec![
                r(Outcome::Imported {
                    blocks: vec!["a".into()],
                    samples: 5,
                    markers: 2,
                    histograms: 4,
                    histogram_markers: 1,
                    min_time_ms: Some(3),
                    max_time_ms: Some(9),
                }),
                r(Outcome::Pushed {
                    samples: 7,
                    requests: 1,
                    markers: 1,
                    histograms: 4,
                    histogram_markers: 1,
                    left_out: 0,
                    earlier: 0,
                }),
                r(Outcome::Recovered {
                    blocks: vec!["b".into(), "c".into()],
                }),
                r(Outcome::Skipped),
                r(Outcome::Failed("no".into())),
            ],
            warnings: Vec::new(),
            destination: Destination::Blocks {
                staging: PathBuf::new(),
                no_space: false,
            },
            elapsed: Duration::ZERO,
        };
        assert_eq!((s.done(), s.skipped(), s.failed()), (2, 2, 1));
        assert_eq!((s.samples(), s.blocks(), s.min_time_ms()), (12, 3, Some(3)));
        assert_eq!(s.markers(), 3, "counted apart from the samples");
        assert_eq!(s.histograms(), (4, 1), "counted apart from the floats");
    }
}
