//! Staleness markers against a real Prometheus: samples pushed with remote write keep their
//! exact bits in the TSDB; remote read hands `fetch` the marker (0x7ff0000000000002) with its
//! exact bits (for the sink to carry, drop or keep) beside a real NaN; raw PromQL skips markers
//! itself.

mod common;
mod fetch_support;

use common::Prom;
use fetch_support::*;
use prom2om::fetch::plan::{Match, Method, Op};
use prom2om::fetch::remote_read::{Label, Sample, TimeSeries};
use prost::Message;

#[derive(Clone, PartialEq, Message)]
struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    timeseries: Vec<TimeSeries>,
}

const STALE: u64 = 0x7ff0_0000_0000_0002;

#[test]
fn stale_markers_are_told_apart_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // External labels: remote read adds them to every series, PromQL does not; fetch takes them
    // off so every method exports the same label sets.
    let config = "global:\n  scrape_interval: 15s\n  external_labels:\n    cluster: eu-1\n    replica: \"a b\"\n";
    let prom = Prom::start_config(&data, config, &["--web.enable-remote-write-receiver"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t = now - 600_000;
    let values = [
        1.0f64.to_bits(),
        STALE,
        0x7ff8_0000_0000_0001, // a real NaN
        2.0f64.to_bits(),
        STALE,
        3.0f64.to_bits(),
    ];
    let ts = TimeSeries {
        labels: vec![
            Label {
                name: "__name__".into(),
                value: "fx_stale".into(),
            },
            Label {
                name: "job".into(),
                value: "w".into(),
            },
        ],
        samples: values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                value: f64::from_bits(*v),
                timestamp: t + i as i64 * 15_000,
            })
            .collect(),
        histograms: Vec::new(),
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(
            &WriteRequest {
                timeseries: vec![ts],
            }
            .encode_to_vec(),
        )
        .unwrap();
    let resp = ureq::post(format!("{}/api/v1/write", prom.url()))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .send(&body[..])
        .unwrap();
    assert!(resp.status().is_success());

    let sel = vec![vec![Match::new("__name__", Op::Eq, "fx_stale")]];
    let (start, end) = (t - 1000, t + 120_000);
    for m in [Method::RemoteRead, Method::Raw] {
        let (got, st) = run(&options(&prom.url(), sel.clone(), start, end, Some(m))).unwrap();
        let s: Vec<(i64, u64)> = got
            .values()
            .next()
            .unwrap()
            .iter()
            .map(|(a, b)| (*a, *b))
            .collect();
        let ts: Vec<i64> = s.iter().map(|x| x.0).collect();
        if m == Method::RemoteRead {
            // Every stored sample with its stored bits, markers included.
            let want: Vec<(i64, u64)> = (0..6)
                .map(|i| (t + i * 15_000, values[i as usize]))
                .collect();
            assert_eq!(s, want);
            assert_eq!(st.stale_markers, 2);
            continue;
        }
        assert_eq!(ts, [t, t + 30_000, t + 45_000, t + 75_000], "{m:?}");
        assert!(f64::from_bits(s[1].1).is_nan() && s[1].1 != STALE, "{m:?}");
        assert_eq!(s[2].1, 2.0f64.to_bits());
    }
}
