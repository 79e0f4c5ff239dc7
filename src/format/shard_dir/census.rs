//! Samples per series of a finished shard directory, read back from the shards as written (after
//! deduplication and staleness handling), for summaries that must count exactly.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use rayon::prelude::*;

use super::ShardDir;
use crate::labels::Labels;

/// Every series of the shards in `dir` (as its manifest lists them) with its sample count. A
/// shard that does not read back as its manifest says is an error naming it.
pub fn samples_per_series(dir: &Path) -> Result<HashMap<Labels, u64>> {
    let dir = ShardDir::open(dir)?;
    let per_shard: Vec<HashMap<Labels, u64>> = (0..dir.manifest().shards.len())
        .into_par_iter()
        .map(|i| {
            let mut counts = Counts::default();
            dir.read_samples(i, |p| {
                counts.sample(p.labels, p.new_series);
                Ok(())
            })?;
            Ok(counts.finish())
        })
        .collect::<Result<_>>()?;
    let mut all: HashMap<Labels, u64> = HashMap::new();
    for shard in per_shard {
        for (labels, n) in shard {
            *all.entry(labels).or_default() += n;
        }
    }
    Ok(all)
}

/// Samples per series of one shard, counted as they come.
#[derive(Default)]
struct Counts {
    out: HashMap<Labels, u64>,
    current: Option<(Labels, u64)>,
}

impl Counts {
    fn sample(&mut self, labels: &Labels, new_series: bool) {
        if new_series {
            if let Some((l, n)) = self.current.take() {
                *self.out.entry(l).or_default() += n;
            }
            self.current = Some((labels.clone(), 0));
        }
        if let Some((_, n)) = self.current.as_mut() {
            *n += 1;
        }
    }

    fn finish(mut self) -> HashMap<Labels, u64> {
        if let Some((l, n)) = self.current.take() {
            *self.out.entry(l).or_default() += n;
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_series_of_a_shard() {
        let om = b"a{x=\"1\"} 1 1\na{x=\"1\"} 2 2\na{x=\"2\"} 1 1\nb 1 1\n# EOF\n";
        let mut c = Counts::default();
        crate::format::openmetrics::read(om, |s| {
            c.sample(s.labels, s.new_series);
            Ok(())
        })
        .unwrap();
        let m = c.finish();
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        assert_eq!(m[&l(&[("__name__", "a"), ("x", "1")])], 2);
        assert_eq!(m[&l(&[("__name__", "a"), ("x", "2")])], 1);
        assert_eq!(m[&l(&[("__name__", "b")])], 1);
        assert_eq!(m.len(), 3);
    }
}
