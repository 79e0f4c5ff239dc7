//! Generates a reproducible corpus of Elasticsearch-exporter-like series (see
//! `prom2om::corpus`), as `promtool tsdb dump` prints them, or as OpenMetrics to build a real TSDB
//! with `promtool tsdb create-blocks-from openmetrics`:
//!
//!   cargo run --release --example gencorpus -- --series 3000 --hours 24 > corpus.dump
//!   cargo run --release --example gencorpus -- --format openmetrics --hours 6 > corpus.om
//!
//! Flags: --series N, --hours H, --interval-ms MS, --start-ms MS, --seed N, --format dump|openmetrics,
//! --order sorted|head (series sorted by labels as a dump of persisted blocks prints them, the
//! default; or in creation order, as a dump of a head-only TSDB does).

use std::io::{self, BufWriter, Write};

use prom2om::corpus::{generate, CorpusSpec};

fn main() -> io::Result<()> {
    let mut spec = CorpusSpec::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let v = pair.get(1).map(String::as_str).unwrap_or_default();
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: bad value {v:?}", pair[0]),
            )
        };
        match pair[0].as_str() {
            "--series" => spec.series = v.parse().map_err(|_| bad())?,
            "--hours" => spec.hours = v.parse().map_err(|_| bad())?,
            "--interval-ms" => spec.interval_ms = v.parse().map_err(|_| bad())?,
            "--start-ms" => spec.start_ms = v.parse().map_err(|_| bad())?,
            "--seed" => spec.seed = v.parse().map_err(|_| bad())?,
            "--format" => spec.openmetrics = v == "openmetrics",
            "--order" => spec.head_order = v == "head",
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown flag {other}"),
                ))
            }
        }
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    generate(&spec, &mut out)?;
    out.flush()
}
