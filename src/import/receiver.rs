//! Which store answers at a receiver's query API, and what it keeps of what it is sent: a
//! Prometheus TSDB (Prometheus, Mimir, Thanos, Cortex) keeps NaN, VictoriaMetrics drops it.

use anyhow::{Context, Result};

use crate::fetch::api::{build_info, looks_like_html};
use crate::fetch::http::{Client, Failure, HttpStatus};

/// The store behind a query API, found by asking it (never guessed from a URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Receiver {
    /// VictoriaMetrics (single node or vmselect): it answers its own `/api/v1/export`. It drops
    /// every NaN sample but a staleness marker, and keeps a sample sent twice twice unless
    /// started with `-dedup.minScrapeInterval`.
    VictoriaMetrics,
    /// Prometheus, or a store built on its TSDB, named as its build info names it: it keeps
    /// every sample, NaN included, and a sample sent again once.
    Prometheus(String),
}

impl Receiver {
    /// Asks the query API at `client`: VictoriaMetrics answers `/api/v1/export` (its own
    /// endpoint, which Prometheus does not have); anything else is taken as a Prometheus TSDB
    /// and named from `/api/v1/status/buildinfo`, which VictoriaMetrics also answers, with a
    /// made-up Prometheus version.
    pub fn identify(client: &Client) -> Result<Receiver> {
        let what = || {
            format!(
                "finding out which store answers at {}",
                client.display_url()
            )
        };
        if answers_export(client).with_context(what)? {
            return Ok(Receiver::VictoriaMetrics);
        }
        let name = match build_info(client) {
            Ok(b) => {
                let app = b.application.unwrap_or_else(|| "Prometheus".into());
                match b.version.as_str() {
                    "" => app,
                    v => format!("{app} {v}"),
                }
            }
            // A store without build info is still asked as Prometheus is: NaN counted.
            Err(e) if status_of(&e) == Some(404) => {
                "a Prometheus-compatible store (no /api/v1/status/buildinfo)".into()
            }
            Err(e) => return Err(e).with_context(what),
        };
        Ok(Receiver::Prometheus(name))
    }

    /// Whether a NaN sample (not a staleness marker) sent to it can be found again.
    pub fn keeps_nan(&self) -> bool {
        matches!(self, Receiver::Prometheus(_))
    }

    /// Its name and what that means for the counts, for messages.
    pub fn describe(&self) -> String {
        match self {
            Receiver::VictoriaMetrics => "VictoriaMetrics, which keeps no NaN".into(),
            Receiver::Prometheus(name) => format!("{name}, which keeps NaN"),
        }
    }

    /// Extra query parameters: VictoriaMetrics would otherwise answer from a cache filled
    /// before the data arrived (Prometheus ignores the parameter).
    pub fn query_params(&self) -> Vec<(&'static str, String)> {
        match self {
            Receiver::VictoriaMetrics => vec![("nocache", "1".into())],
            Receiver::Prometheus(_) => Vec::new(),
        }
    }

    /// Makes what the receiver has taken searchable now, where it can be asked to: a single
    /// VictoriaMetrics shows new samples only after flushing them (seconds later, measured up
    /// to 10 s for new series) unless asked at `/internal/force_flush`. Whether that worked; a
    /// Prometheus shows what it took at once.
    pub fn flush(&self, client: &Client) -> bool {
        match self {
            // Trouble that passes is retried; a cluster's vmselect has no such path.
            Receiver::VictoriaMetrics => client
                .retry(|| client.get("/internal/force_flush", &[]))
                .is_ok(),
            Receiver::Prometheus(_) => true,
        }
    }
}

/// Whether `/api/v1/export` answers (VictoriaMetrics): asked for a series no one has, over one
/// millisecond of 1970, so the answer is empty.
fn answers_export(client: &Client) -> Result<bool> {
    let params = [
        (
            "match[]",
            "{__name__=\"prom2om_receiver_probe\"}".to_string(),
        ),
        ("start", "0".to_string()),
        ("end", "0.001".to_string()),
    ];
    client.retry(|| match client.get("/api/v1/export", &params) {
        Ok(body) => Ok(!looks_like_html(&body)),
        // Prometheus has no such path (404; a proxy may say 400 or 405). Refused credentials
        // are an error of their own.
        Err(Failure::Fatal(e))
            if status_of(&e).is_some_and(|s| (400..500).contains(&s) && s != 401 && s != 403) =>
        {
            Ok(false)
        }
        Err(f) => Err(f),
    })
}

fn status_of(e: &anyhow::Error) -> Option<u16> {
    e.chain()
        .find_map(|c| c.downcast_ref::<HttpStatus>())
        .map(|s| s.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_keeps() {
        assert!(!Receiver::VictoriaMetrics.keeps_nan());
        let p = Receiver::Prometheus("Prometheus 2.42.0".into());
        assert!(p.keeps_nan());
        assert_eq!(p.describe(), "Prometheus 2.42.0, which keeps NaN");
        assert_eq!(
            Receiver::VictoriaMetrics.query_params(),
            vec![("nocache", "1".to_string())]
        );
    }
}
