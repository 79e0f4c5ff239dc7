//! Native histograms over remote write against the real receivers: which protocol each takes
//! (remote write 2.0 negotiated as its spec says) and what it is, and what each stores of every
//! kind of histogram: Prometheus 3.5.3 (2.0), Prometheus 2.42 (1.0), VictoriaMetrics 1.79 and
//! 1.145 (1.0, no native histograms).

mod common;
mod fetch_support;
mod rw_support;

use std::path::Path;
use std::time::Duration;

use common::{http_get, sid_tool, tool, Prom, PromVersion};
use prom2om::fetch::http::{Client, ClientConfig};
use prom2om::format::histogram::{CounterResetHint, Histogram, HistogramValue, Span};
use prom2om::format::prompb::Label;
use prom2om::import::home_version::Version;
use prom2om::import::rw_negotiate::{self as receiver, Kind};
use prom2om::import::rw_request::{Protocol, Request};
use rw_support::Vm;

/// Every series' names and sample counts under `match[]`, after a flush.
fn export(vm: &Vm, selector: &str) -> Vec<(String, usize)> {
    let _ = http_get(vm.port, "/internal/force_flush");
    std::thread::sleep(Duration::from_millis(500));
    let url = format!(
        "http://127.0.0.1:{}/api/v1/export?match[]={}",
        vm.port,
        common::url_encode(selector)
    );
    let body = ureq::get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let mut out: Vec<(String, usize)> = body
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["metric"].to_string(),
                v["timestamps"].as_array().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

fn config(url: String) -> ClientConfig {
    ClientConfig {
        url,
        timeout: Duration::from_secs(30),
        retries: 2,
        backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        ..Default::default()
    }
}

fn probe(write_url: String) -> receiver::Receiver {
    let cfg = config(write_url);
    receiver::probe(&Client::new(&cfg).unwrap(), &cfg).unwrap()
}

fn prometheus(version: PromVersion, tmp: &Path) -> Prom {
    Prom::start_version(
        version,
        &tmp.join(version.number()),
        &[
            "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms",
        ],
    )
}

/// The spec's negotiation, and the receiver's buildinfo, on each real receiver; the empty 2.0
/// request writes nothing.
#[test]
fn each_receiver_says_its_protocol_and_kind() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let p35 = prometheus(PromVersion::V3_5, tmp.path());
    let p242 = prometheus(PromVersion::V2_42, tmp.path());
    let vm79 = Vm::start_bin(&tool("victoria-metrics"), &[]);
    let vm145 = Vm::start_bin(&sid_tool("victoria-metrics"), &[]);
    let write = |port: u16| format!("http://127.0.0.1:{port}/api/v1/write");
    let r = probe(write(p35.port));
    assert_eq!(r.protocol, Protocol::V2);
    assert_eq!(r.kind, Kind::Prometheus(Version(3, 5, 3)));
    let r = probe(write(p242.port));
    assert_eq!(r.protocol, Protocol::V1);
    assert_eq!(r.kind, Kind::Prometheus(Version(2, 42, 0)));
    for vm in [&vm79, &vm145] {
        let r = probe(write(vm.port));
        assert_eq!((r.protocol, r.kind), (Protocol::V1, Kind::VictoriaMetrics));
        assert!(export(vm, r#"{__name__=~".+"}"#).is_empty());
    }
    let (_, body) = p35.get("/api/v1/query?query=count(%7B__name__%3D~%22.%2B%22%7D)");
    assert!(body.contains(r#""result":[]"#), "{body}");
}

fn label(name: &str, kind: &str) -> Vec<Label> {
    vec![
        Label {
            name: "__name__".into(),
            value: name.into(),
        },
        Label {
            name: "kind".into(),
            value: kind.into(),
        },
    ]
}

/// Five samples each of an exponential integer histogram, a float gauge histogram and an NHCB.
fn request(protocol: Protocol, start: i64) -> Request {
    let int = |k: u64, schema: i32, custom: Vec<u64>| Histogram {
        schema,
        count: 3 * k,
        sum: (k as f64 * 1.5).to_bits(),
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![k as i64, k as i64],
        custom_values: custom,
        ..Histogram::default()
    };
    let mut r = Request::new(protocol);
    for (kind, f) in [("exponential", 0), ("gauge", 1), ("custom", 2)] {
        r.series(label("rwh", kind));
        for i in 0..5u64 {
            let h = match f {
                0 => HistogramValue::Int(int(i + 1, 2, Vec::new())),
                1 => {
                    let mut g = int(i + 1, 1, Vec::new()).to_float();
                    g.hint = CounterResetHint::Gauge;
                    HistogramValue::Float(g)
                }
                _ => HistogramValue::Int(int(i + 1, -53, vec![0.5f64.to_bits()])),
            };
            r.histogram(&h, start + i as i64 * 1_000);
        }
    }
    r
}

fn send(url: String, r: &Request) -> ureq::http::Response<ureq::Body> {
    let mut req = ureq::post(url).config().http_status_as_error(false).build();
    for (n, v) in r.headers() {
        req = req.header(n, v);
    }
    req.send(&r.body()[..]).unwrap()
}

/// What each receiver makes of each kind: Prometheus 3.5.3 stores all three over 2.0 (and says
/// so in its Written headers); VictoriaMetrics 1.79 drops them, 1.145 turns them into bucket
/// series of its own. What `receiver::plan` says before a push rests on this.
#[test]
fn what_each_receiver_stores_of_each_kind() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let start = (promdir_now() - 600_000) / 1_000 * 1_000;
    let p35 = prometheus(PromVersion::V3_5, tmp.path());
    let r = request(Protocol::V2, start);
    let resp = send(format!("{}/api/v1/write", p35.url()), &r);
    assert!(resp.status().is_success(), "{}", resp.status());
    r.check_written(|n| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    })
    .unwrap();
    let (_, body) = p35.get(&format!(
        "/api/v1/query?query=count_over_time(rwh%5B1h%5D)&time={}",
        (start + 10_000) / 1_000
    ));
    for kind in ["exponential", "gauge", "custom"] {
        assert!(
            body.contains(&format!(
                r#""kind":"{kind}"}},"value":[{}"#,
                (start + 10_000) / 1_000
            )),
            "{body}"
        );
    }

    let vm79 = Vm::start_bin(&tool("victoria-metrics"), &[]);
    let vm145 = Vm::start_bin(&sid_tool("victoria-metrics"), &[]);
    for vm in [&vm79, &vm145] {
        let resp = send(
            format!("http://127.0.0.1:{}/api/v1/write", vm.port),
            &request(Protocol::V1, start),
        );
        assert!(resp.status().is_success());
    }
    assert_eq!(export(&vm79, r#"{__name__=~"rwh.*"}"#), []);
    let got = export(&vm145, r#"{__name__=~"rwh.*"}"#);
    let names: std::collections::BTreeSet<String> = got
        .iter()
        .map(|(m, _)| {
            let v: serde_json::Value = serde_json::from_str(m).unwrap();
            v["__name__"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["rwh_bucket", "rwh_count", "rwh_sum"],
        "{got:?}"
    );
    assert!(got.iter().any(|(m, _)| m.contains("vmrange")));
}

fn promdir_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
