//! `convert DIR --dry-run`: what an export of a data dir will write, from the blocks' indexes and
//! chunk headers alone (no chunk decoded, nothing written), so its cost is known before it runs.

use std::io::Write;

use anyhow::Result;

use super::common::{count, human_bytes};
use crate::pipeline::datadir::{self, Estimate, ReadOptions};
use crate::pipeline::sink::{SinkOptions, DEFAULT_SHARD_BYTES};
use crate::select::filter::Filter;
use crate::timeparse::format_time;

/// Samples a second `convert DIR -o DIR` wrote on the 2-core machine of `benches/scale.sh`
/// (gzip level 1 by igzip, default shards; 6.3 to 7.5 M under a load of 4): the time printed is
/// this rate's, not this host's.
const REFERENCE_RATE: f64 = 7.0e6;

/// Prints the estimate of reading `dirs` (data or block directories) with `filter` into shards
/// as `sink` says.
pub fn run(dirs: &[std::path::PathBuf], filter: &Filter, sink: &SinkOptions) -> Result<()> {
    let opts = ReadOptions {
        filter: filter.clone(),
        keep_stale: true,
        skip_invalid: true,
    };
    let mut out = std::io::stdout().lock();
    for dir in dirs {
        let opened = datadir::open(dir)?;
        let est = datadir::estimate(&opened.blocks, &opts, sink.block_duration_ms)?;
        report(&mut out, dir, &est, sink, opened.head_dir.is_some())?;
    }
    Ok(())
}

fn report(
    out: &mut impl Write,
    dir: &std::path::Path,
    est: &Estimate,
    sink: &SinkOptions,
    head: bool,
) -> Result<()> {
    let target = sink.target_shard_bytes.max(1);
    let shards_of = |bytes: u64| match sink.shards {
        Some(n) => u64::from(n),
        None => bytes.div_ceil(target).max(1),
    };
    writeln!(
        out,
        "{}: {} in the time range, {} selected series ({} summed over the blocks), {} \
         (indexes and chunk headers only; nothing decoded or written)",
        dir.display(),
        count(est.blocks, "block"),
        est.series,
        est.block_series,
        count(est.chunks, "chunk"),
    )?;
    writeln!(
        out,
        "window start              series    samples     text  shards"
    )?;
    for (&start, w) in &est.windows {
        writeln!(
            out,
            "{:<24} {:>7} {:>10} {:>8} {:>7}",
            format_time(start),
            w.series,
            w.samples,
            human_bytes(w.text_bytes),
            shards_of(w.text_bytes)
        )?;
    }
    let shards: u64 = est.windows.values().map(|w| shards_of(w.text_bytes)).sum();
    let samples = est.samples();
    writeln!(
        out,
        "total: {} in {}, {} of OpenMetrics text ({} per shard at most by default); gzip level 1 \
         writes about a tenth of that",
        count(samples, "sample"),
        count(shards, "shard"),
        human_bytes(est.text_bytes()),
        human_bytes(DEFAULT_SHARD_BYTES),
    )?;
    writeln!(
        out,
        "time: about {:.1} s at the {:.0} M samples/s benches/scale.sh measured on 2 cores; \
         memory: within --memory-limit ({})",
        samples as f64 / REFERENCE_RATE,
        REFERENCE_RATE / 1e6,
        human_bytes(sink.memory_limit)
    )?;
    if head {
        writeln!(
            out,
            "not counted: the head (wal/, chunks_head/), usually the last 2 to 3 hours; samples in \
             overlapping blocks count once per block"
        )?;
    }
    Ok(())
}
