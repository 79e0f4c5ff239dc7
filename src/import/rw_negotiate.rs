//! Who receives a push of native histograms, and what may be sent to it, decided before any
//! sample is: the protocol, remote write 2.0 negotiated as its spec says (an empty 2.0 request:
//! a 2.0 receiver answers with its `Written` headers, one that does not take 2.0 with 415 or
//! 400, a 1.0 receiver that ignores the content type with a bare 2xx), and what it is (a
//! Prometheus of a version from its buildinfo, VictoriaMetrics, another).
//!
//! Found with the real receivers: Prometheus 3.5.3 takes 2.0 and every kind of histogram;
//! 2.42 takes 1.0 only; VictoriaMetrics takes 1.0 only and keeps no native histogram: 1.79
//! drops them without a word, 1.145 turns each into series of its own buckets (`NAME_bucket`
//! with a `vmrange` label, `NAME_count`, `NAME_sum`: schema, spans, reset hints and the gauge
//! kind lost), and reads custom buckets (NHCB) as exponential ones, wrong buckets.

use anyhow::{bail, Result};

use super::home_version::{self, Version, FLOAT_HISTOGRAMS};
use super::rw_request::{Protocol, Request};
use crate::fetch::http::{Client, ClientConfig, Failure, HttpStatus};

/// What the receiver is, as far as it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Prometheus(Version),
    VictoriaMetrics,
    Other,
}

/// The receiver of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiver {
    pub protocol: Protocol,
    pub kind: Kind,
}

/// What a push of a directory with native histograms sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub protocol: Protocol,
    /// Histogram samples are sent (else left out, counted).
    pub histograms: bool,
    /// Histograms with custom buckets are sent (only over 2.0, as Prometheus's own sender:
    /// prometheus#17146).
    pub custom_buckets: bool,
    /// What to say before the push.
    pub notes: Vec<String>,
}

impl Plan {
    /// A push of floats only: remote write 1.0, as before native histograms.
    pub fn floats_only() -> Plan {
        Plan {
            protocol: Protocol::V1,
            histograms: false,
            custom_buckets: false,
            notes: Vec::new(),
        }
    }
}

/// The URL of the API under which `write_url` receives (`.../api/v1/write` less its path).
fn api_base(write_url: &str) -> Option<&str> {
    write_url.strip_suffix("/api/v1/write")
}

/// Asks the receiver of `cfg` which protocol it takes (an empty 2.0 request: nothing is
/// written) and what it is.
pub fn probe(client: &Client, cfg: &ClientConfig) -> Result<Receiver> {
    let empty = Request::new(Protocol::V2);
    let body = empty.body();
    let answer = client.retry(|| match client.post("", &body, &empty.headers()) {
        Ok(resp) => {
            let h = |name: &str| resp.headers().get(name).is_some();
            let v2 = h(crate::format::prompb::v2::SAMPLES_WRITTEN);
            let vm = h("X-Server-Hostname");
            let _ = std::io::Read::read_to_end(&mut client.reader(resp), &mut Vec::new());
            Ok((v2, vm))
        }
        Err(Failure::Fatal(e)) if refuses_v2(&e) => Ok((false, false)),
        Err(f) => Err(f),
    })?;
    let (v2, vm) = answer;
    let protocol = if v2 { Protocol::V2 } else { Protocol::V1 };
    let kind = match buildinfo(cfg) {
        Some(v) => Kind::Prometheus(v),
        None if vm => Kind::VictoriaMetrics,
        None => Kind::Other,
    };
    Ok(Receiver { protocol, kind })
}

/// 415, or the 400 a 1.x receiver may answer for a content type it does not take.
fn refuses_v2(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<HttpStatus>())
        .any(|s| s.status == 415 || s.status == 400)
}

/// The Prometheus version at the receiver's API, when it is a Prometheus.
fn buildinfo(cfg: &ClientConfig) -> Option<Version> {
    let base = api_base(&cfg.url)?;
    let cfg = ClientConfig {
        url: base.to_string(),
        retries: 0,
        ..cfg.clone()
    };
    let body = Client::new(&cfg)
        .ok()?
        .get("/api/v1/status/buildinfo", &[])
        .ok()?;
    home_version::from_buildinfo(&body)
}

/// What to send a receiver of native histograms: `histograms` samples in the shards (markers
/// included), `skip` when `--skip-histograms` was given. Refuses a receiver known to lose them.
pub fn plan(r: &Receiver, histograms: u64, skip: bool) -> Result<Plan> {
    let mut plan = Plan::floats_only();
    if histograms == 0 {
        return Ok(plan);
    }
    if skip {
        plan.notes.push(format!(
            "{histograms} native histogram samples in the shards are not pushed \
             (--skip-histograms)"
        ));
        return Ok(plan);
    }
    let leave_out = "pass --skip-histograms to push the floats only, the histogram samples \
                     left out (counted)";
    match &r.kind {
        Kind::VictoriaMetrics => bail!(
            "the receiver is VictoriaMetrics, which keeps no native histogram: the shards hold \
             {histograms} native histogram samples, which VictoriaMetrics 1.79 drops without a \
             word and 1.145 turns into series of its own buckets (NAME_bucket with a vmrange \
             label, NAME_count, NAME_sum: schema, spans, reset hints and the gauge kind lost, \
             custom buckets (NHCB) read as exponential ones, so wrong). Import into a \
             Prometheus (--tsdb, or its remote-write receiver), or {leave_out}"
        ),
        Kind::Prometheus(v) if *v < FLOAT_HISTOGRAMS => bail!(
            "the receiver is Prometheus {v}, which takes native histograms from {FLOAT_HISTOGRAMS} \
             (float histograms) on: the shards hold {histograms} native histogram samples. \
             Push into a newer Prometheus, or {leave_out}"
        ),
        _ => {}
    }
    plan.protocol = r.protocol;
    plan.histograms = true;
    plan.custom_buckets = r.protocol == Protocol::V2;
    let who = match &r.kind {
        Kind::Prometheus(v) => format!("Prometheus {v}"),
        _ => "the receiver".to_string(),
    };
    if r.protocol == Protocol::V1 {
        plan.notes.push(format!(
            "{who} takes remote write 1.0 only: native histograms go in 1.0's histograms \
             field, and those with custom buckets (NHCB), which need remote write 2.0 (2.54.0 \
             on), are left out and counted"
        ));
        if r.kind == Kind::Other {
            plan.notes.push(
                "the receiver does not say what it is: whether it stores native histograms \
                 (Mimir, Thanos and Prometheus do; VictoriaMetrics does not) is its own; \
                 compare with --verify-url"
                    .into(),
            );
        }
    }
    Ok(plan)
}

/// The advice for a receiver's refusal of histograms: a Prometheus 3.5 and older takes them
/// only with the feature flag on.
pub fn refusal_advice(e: &anyhow::Error) -> Option<&'static str> {
    let text = format!("{e:#}").to_ascii_lowercase();
    text.contains("native histograms are disabled").then_some(
        " (start the receiving Prometheus with --enable-feature=native-histograms: up to 3.8 it \
         takes native histograms only with it)",
    )
}

/// Why a push with this plan cannot take a series' histogram sample, if it cannot.
pub fn left_out(plan: &Plan, custom_buckets: bool) -> Option<&'static str> {
    if !plan.histograms {
        Some("histogram")
    } else if custom_buckets && !plan.custom_buckets {
        Some("custom buckets")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(protocol: Protocol, kind: Kind) -> Receiver {
        Receiver { protocol, kind }
    }

    #[test]
    fn plans_by_receiver() {
        let p = plan(&r(Protocol::V2, Kind::Other), 0, false).unwrap();
        assert_eq!(p, Plan::floats_only());
        let p35 = Kind::Prometheus(Version(3, 5, 3));
        let p = plan(&r(Protocol::V2, p35.clone()), 5, false).unwrap();
        assert!(p.histograms && p.custom_buckets && p.notes.is_empty());
        assert_eq!(p.protocol, Protocol::V2);
        let p = plan(
            &r(Protocol::V1, Kind::Prometheus(Version(2, 42, 0))),
            5,
            false,
        )
        .unwrap();
        assert!(p.histograms && !p.custom_buckets);
        assert!(p.notes[0].contains("Prometheus 2.42.0 takes remote write 1.0 only"));
        let e = plan(&r(Protocol::V1, Kind::VictoriaMetrics), 5, false).unwrap_err();
        assert!(e.to_string().contains("--skip-histograms"), "{e}");
        let e = plan(
            &r(Protocol::V1, Kind::Prometheus(Version(2, 41, 0))),
            5,
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("from 2.42.0"), "{e}");
        let p = plan(&r(Protocol::V1, Kind::VictoriaMetrics), 5, true).unwrap();
        assert!(!p.histograms && p.notes[0].contains("5 native histogram samples"));
        assert_eq!(left_out(&p, false), Some("histogram"));
        let p = plan(&r(Protocol::V1, Kind::Other), 5, false).unwrap();
        assert_eq!(p.notes.len(), 2);
        assert_eq!(left_out(&p, true), Some("custom buckets"));
        assert_eq!(left_out(&p, false), None);
    }

    #[test]
    fn the_api_base_of_a_write_url() {
        assert_eq!(
            api_base("http://h:9090/api/v1/write"),
            Some("http://h:9090")
        );
        assert_eq!(api_base("https://m/api/v1/push"), None);
    }
}
