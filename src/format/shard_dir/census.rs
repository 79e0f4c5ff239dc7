//! Samples per series of a finished shard directory, read back from the shards and their side
//! files as written (after deduplication and staleness handling), for summaries that must count
//! exactly: float samples and native histogram samples apart, markers of neither counted.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use rayon::prelude::*;

use super::{ShardDir, Value};
use crate::labels::Labels;

/// What one series holds in a shard directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesCounts {
    /// Float samples (staleness markers not included).
    pub samples: u64,
    /// Native histogram samples (their staleness markers not included).
    pub histogram_samples: u64,
}

impl SeriesCounts {
    fn add(&mut self, o: SeriesCounts) {
        self.samples += o.samples;
        self.histogram_samples += o.histogram_samples;
    }
}

/// Every series of the shards in `dir` (as its manifest lists them) with what it holds. A
/// shard that does not read back as its manifest says is an error naming it.
pub fn samples_per_series(dir: &Path) -> Result<HashMap<Labels, SeriesCounts>> {
    let dir = ShardDir::open(dir)?;
    let per_shard: Vec<HashMap<Labels, SeriesCounts>> = (0..dir.manifest().shards.len())
        .into_par_iter()
        .map(|i| {
            let mut counts = Counts::default();
            dir.read_points(i, |p| {
                counts.point(p.labels, p.new_series, p.value);
                Ok(())
            })?;
            Ok(counts.finish())
        })
        .collect::<Result<_>>()?;
    let mut all: HashMap<Labels, SeriesCounts> = HashMap::new();
    for shard in per_shard {
        for (labels, n) in shard {
            all.entry(labels).or_default().add(n);
        }
    }
    Ok(all)
}

/// What each series of one shard holds, counted as its points come.
#[derive(Default)]
struct Counts {
    out: HashMap<Labels, SeriesCounts>,
    current: Option<(Labels, SeriesCounts)>,
}

impl Counts {
    fn point(&mut self, labels: &Labels, new_series: bool, value: Value<'_>) {
        if new_series {
            if let Some((l, n)) = self.current.take() {
                self.out.entry(l).or_default().add(n);
            }
            self.current = Some((labels.clone(), SeriesCounts::default()));
        }
        if let Some((_, n)) = self.current.as_mut() {
            match value {
                Value::Float(_) => n.samples += 1,
                Value::Histogram(h) if !h.is_stale() => n.histogram_samples += 1,
                _ => {}
            }
        }
    }

    fn finish(mut self) -> HashMap<Labels, SeriesCounts> {
        if let Some((l, n)) = self.current.take() {
            self.out.entry(l).or_default().add(n);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::histogram::{Histogram, HistogramValue};

    #[test]
    fn counts_each_series_of_a_shard() {
        let om = b"a{x=\"1\"} 1 1\na{x=\"1\"} 2 2\na{x=\"2\"} 1 1\nb 1 1\n# EOF\n";
        let mut c = Counts::default();
        crate::format::openmetrics::read(om, |s| {
            c.point(s.labels, s.new_series, Value::Float(s.value));
            Ok(())
        })
        .unwrap();
        let (h, m) = (
            HistogramValue::Int(Histogram::default()),
            HistogramValue::Int(Histogram::stale()),
        );
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        let hist = l(&[("__name__", "h")]);
        c.point(&hist, true, Value::Histogram(&h));
        c.point(&hist, false, Value::Histogram(&m));
        c.point(&hist, false, Value::StaleMarker);
        let m = c.finish();
        let n = |samples, histogram_samples| SeriesCounts {
            samples,
            histogram_samples,
        };
        assert_eq!(m[&l(&[("__name__", "a"), ("x", "1")])], n(2, 0));
        assert_eq!(m[&l(&[("__name__", "a"), ("x", "2")])], n(1, 0));
        assert_eq!(m[&l(&[("__name__", "b")])], n(1, 0));
        assert_eq!(m[&hist], n(0, 1));
        assert_eq!(m.len(), 4);
    }
}
