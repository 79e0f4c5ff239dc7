//! Samples per series of a finished shard directory, read back from the shards as written (after
//! deduplication and staleness handling), for summaries that must count exactly.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::Manifest;
use crate::format::openmetrics;
use crate::labels::Labels;

/// Every series of the shards in `dir` (as its manifest lists them) with its sample count.
pub fn samples_per_series(dir: &Path) -> Result<HashMap<Labels, u64>> {
    let manifest = Manifest::load(dir)?;
    let per_shard: Vec<HashMap<Labels, u64>> = manifest
        .shards
        .par_iter()
        .map(|e| {
            let path = dir.join(&e.file);
            let raw =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let mut text = Vec::new();
            let data = if manifest.compressed {
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_end(&mut text)
                    .with_context(|| format!("decompressing {}", path.display()))?;
                &text[..]
            } else {
                &raw[..]
            };
            shard_series(data).with_context(|| path.display().to_string())
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

fn shard_series(data: &[u8]) -> Result<HashMap<Labels, u64>> {
    let mut out: HashMap<Labels, u64> = HashMap::new();
    let mut current: Option<(Labels, u64)> = None;
    openmetrics::read(data, |s| {
        if s.new_series {
            if let Some((l, n)) = current.take() {
                *out.entry(l).or_default() += n;
            }
            current = Some((s.labels.clone(), 0));
        }
        if let Some((_, n)) = current.as_mut() {
            *n += 1;
        }
        Ok(())
    })?;
    if let Some((l, n)) = current {
        *out.entry(l).or_default() += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_series_of_a_shard() {
        let om = b"a{x=\"1\"} 1 1\na{x=\"1\"} 2 2\na{x=\"2\"} 1 1\nb 1 1\n# EOF\n";
        let m = shard_series(om).unwrap();
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        assert_eq!(m[&l(&[("__name__", "a"), ("x", "1")])], 2);
        assert_eq!(m[&l(&[("__name__", "a"), ("x", "2")])], 1);
        assert_eq!(m[&l(&[("__name__", "b")])], 1);
        assert_eq!(m.len(), 3);
    }
}
