//! `fetch` through proxies in front of a real Prometheus: dropped connections, 503s, stalls and
//! cut answers are retried and the export is still exact; a fetch that dies half-way resumes
//! from its checkpoint to the same result; credentials are checked and never printed.

mod common;
mod fetch_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::Prom;
use fetch_support::*;
use prom2om::fetch::plan::Method;

#[test]
fn faults_resume_and_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let data = make_blocks(tmp.path(), 120, 4, 15_000);
    let all = dump(&data, r#"{__name__=~"fx_.*"}"#);
    let prom = Prom::start(&data);
    let (start, end) = (T0, T0 + 4 * 3_600_000 - 1);

    // Every kind of fault, one request in two.
    let faulty = Proxy::start(prom.port, |n| match n % 10 {
        1 => Fault::Drop,
        3 => Fault::Unavailable,
        5 => Fault::Stall(Duration::from_millis(1500)),
        7 => Fault::Truncate(300),
        9 => Fault::Truncate(40),
        _ => Fault::Pass,
    });
    for m in [Method::RemoteRead, Method::Raw] {
        let mut o = options(&faulty.url(), vec![], start, end, Some(m));
        o.client.timeout = Duration::from_millis(700);
        o.client.retries = 8;
        o.samples_per_request = 20_000;
        let (got, st) = run(&o).unwrap_or_else(|e| panic!("{m:?} through faults: {e:#}"));
        assert!(st.retries >= 4, "{m:?}: only {} retries", st.retries);
        assert_same(&got, &all, &format!("{m:?} through faults"));
    }

    // A proxy that stops answering after 6 requests: the fetch fails, then resumes directly.
    let dying = Proxy::start(prom.port, |n| if n < 6 { Fault::Pass } else { Fault::Drop });
    let out = tempfile::tempdir().unwrap();
    let state = out.path().join(".prom2om-fetch");
    let mut o = options(&dying.url(), vec![], start, end, Some(Method::RemoteRead));
    o.client.retries = 1;
    o.concurrency = 1;
    o.samples_per_request = 10_000;
    o.state_dir = Some(state.clone());
    let err = run(&o).unwrap_err();
    assert!(format!("{err:#}").contains("giving up"), "{err:#}");
    let mut o2 = o.clone();
    o2.client.url = prom.url();
    o2.resume = true;
    let (got, st) = run(&o2).unwrap();
    assert!(
        st.units_resumed >= 2,
        "resumed {} of {} units",
        st.units_resumed,
        st.units
    );
    assert!(st.units_resumed < st.units);
    assert!(st.samples_resumed > 0);
    assert_same(&got, &all, "resumed");
    // A different fetch cannot resume this checkpoint.
    let mut other = o2.clone();
    other.fingerprint = "something else".into();
    assert!(run(&other).is_err());

    // Basic auth and bearer token through a proxy that checks them.
    let basic = Proxy::start(prom.port, |_| Fault::RequireAuth("Basic dXNlcjpzM2NyZXQ="));
    let mut o = options(&basic.url(), vec![], start, end, Some(Method::RemoteRead));
    o.client.user = Some("user".into());
    o.client.password = Some("s3cret".into());
    let (got, _) = run(&o).unwrap();
    assert_same(&got, &all, "basic auth");
    o.client.password = Some("wrong-pw".into());
    let before = basic.requests.load(Ordering::Relaxed);
    let err = format!("{:#}", run(&o).unwrap_err());
    assert!(err.contains("401") && err.contains("Unauthorized"), "{err}");
    assert!(!err.contains("wrong-pw"), "{err}");
    // A 401 is not retried.
    assert!(basic.requests.load(Ordering::Relaxed) - before <= 2);
    let url_creds = format!("http://user:s3cret@127.0.0.1:{}", basic.port);
    let o = options(&url_creds, vec![], start, end, Some(Method::Raw));
    let (got, _) = run(&o).unwrap();
    assert_same(&got, &all, "credentials in the URL");

    let bearer = Proxy::start(prom.port, |_| Fault::RequireAuth("Bearer t0ken"));
    let mut o = options(&bearer.url(), vec![], start, end, None);
    o.client.bearer_token = Some("t0ken".into());
    let (got, _) = run(&o).unwrap();
    assert_same(&got, &all, "bearer");
    o.client.bearer_token = Some("bad-t0ken".into());
    let err = format!("{:#}", run(&o).unwrap_err());
    assert!(err.contains("401") && !err.contains("bad-t0ken"), "{err}");

    // Extra headers, a forward proxy, and the rate limit.
    let hdr = Proxy::start(prom.port, |_| Fault::RequireAuth("Bearer from-header"));
    let mut o = options(&hdr.url(), vec![], start, end, Some(Method::RemoteRead));
    o.client.headers = vec![("Authorization".into(), "Bearer from-header".into())];
    let (got, _) = run(&o).unwrap();
    assert_same(&got, &all, "--header");
    let forward = Proxy::start(prom.port, |_| Fault::Pass);
    let mut o = options(&prom.url(), vec![], start, end, Some(Method::RemoteRead));
    o.client.proxy = Some(forward.url());
    let (got, _) = run(&o).unwrap();
    assert!(forward.requests.load(Ordering::Relaxed) >= 1);
    assert_same(&got, &all, "--proxy");
    let mut o = options(&prom.url(), vec![], start, end, Some(Method::Raw));
    o.client.rate_limit = Some(20.0);
    o.samples_per_request = 20_000;
    let (got, st) = run(&o).unwrap();
    assert!(st.requests >= 10, "{} requests", st.requests);
    let min = (st.requests - 1) as f64 / 20.0 * 0.9;
    assert!(
        st.elapsed.as_secs_f64() >= min,
        "{} requests in {:?}",
        st.requests,
        st.elapsed
    );
    assert_same(&got, &all, "rate limited");
}
