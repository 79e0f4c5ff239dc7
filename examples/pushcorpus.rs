//! Pushes the corpus's series (`prom2om::corpus::series_labels`) to a Prometheus with remote write
//! 1.0, time slice after time slice as scrapes would arrive, so that its data dir ends up like a
//! live server's: persisted blocks, and the last hours in the head (WAL, checkpoint,
//! chunks_head). For benches/datadir.sh:
//!
//!   cargo run --release --example pushcorpus -- --url http://127.0.0.1:9090 --series 3000 --hours 6
//!
//! Flags: --url URL, --series N, --hours H, --interval-ms MS (15000), --end-ms MS (now), --seed N.
//! About 5% of the series get one staleness marker (a target restart).

use std::io;

use prom2om::corpus::Rng;
use prom2om::fetch::remote_read::{Label, Sample, TimeSeries};
use prost::Message;

#[derive(Clone, PartialEq, Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
/// Samples per series in one request: 30 scrapes.
const STEPS_PER_REQUEST: i64 = 30;

/// One series' labels, random stream and state.
struct Series {
    labels: Vec<Label>,
    rng: Rng,
    counter: bool,
    offset: i64,
    stale_at: i64,
    value: f64,
}

fn main() -> io::Result<()> {
    let mut url = String::new();
    let (mut series, mut hours, mut interval, mut seed) = (3000usize, 6.0f64, 15_000i64, 1u64);
    let mut end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let v = pair.get(1).map(String::as_str).unwrap_or_default();
        let bad = || io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {v:?}", pair[0]));
        match pair[0].as_str() {
            "--url" => url = v.trim_end_matches('/').to_string(),
            "--series" => series = v.parse().map_err(|_| bad())?,
            "--hours" => hours = v.parse().map_err(|_| bad())?,
            "--interval-ms" => interval = v.parse().map_err(|_| bad())?,
            "--end-ms" => end = v.parse().map_err(|_| bad())?,
            "--seed" => seed = v.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }
    }
    let steps = (hours * 3_600_000.0 / interval as f64) as i64;
    let start = end - steps * interval;
    let mut all: Vec<Series> = (0..series)
        .map(|i| new_series(i, seed, steps, interval))
        .collect();
    let mut step = 0;
    while step < steps {
        let last = (step + STEPS_PER_REQUEST).min(steps);
        let timeseries = all
            .iter_mut()
            .map(|s| TimeSeries {
                labels: s.labels.clone(),
                samples: (step..last)
                    .map(|k| sample(s, k, start + k * interval))
                    .collect(),
                histograms: Vec::new(),
            })
            .collect();
        let body = snap::raw::Encoder::new()
            .compress_vec(&WriteRequest { timeseries }.encode_to_vec())
            .map_err(io::Error::other)?;
        ureq::post(format!("{url}/api/v1/write"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .send(&body[..])
            .map_err(io::Error::other)?;
        step = last;
    }
    eprintln!(
        "pushed {series} series x {steps} samples, {start}..{} ms",
        start + steps * interval
    );
    Ok(())
}

fn new_series(i: usize, seed: u64, steps: i64, interval: i64) -> Series {
    let labels = prom2om::corpus::series_labels(i);
    let mut rng = Rng(seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let name = labels.metric_name().to_string();
    let labels: Vec<Label> = labels
        .iter()
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect();
    let offset = (rng.next_u64() % interval as u64) as i64;
    let stale_at = if rng.f() < 0.05 {
        (rng.next_u64() % steps.max(1) as u64) as i64
    } else {
        -1
    };
    let value = (rng.f() * 1e9).round();
    Series {
        labels,
        counter: name.ends_with("_total") || name.ends_with("_count"),
        rng,
        offset,
        stale_at,
        value,
    }
}

fn sample(s: &mut Series, k: i64, t: i64) -> Sample {
    let rng = &mut s.rng;
    let timestamp = t + s.offset + (rng.next_u64() % 7) as i64;
    let value = if k == s.stale_at {
        f64::from_bits(STALE_NAN)
    } else {
        s.value = if s.counter {
            s.value + (rng.f() * 1000.0).round()
        } else {
            (s.value * (0.98 + rng.f() * 0.04)).round() + (rng.f() * 100.0).round() / 100.0
        };
        s.value
    };
    Sample { value, timestamp }
}
