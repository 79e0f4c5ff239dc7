//! Fetch-specific support, on top of `common` (which the including crate declares as `mod
//! common`): generated test data made into TSDB blocks, dumps parsed for sample-exact comparison,
//! small TCP proxies that inject faults or check credentials, and fetch options and runs.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prom2om::labels::Labels;
use prom2om::pipeline::feed::{Provenance, SampleSink, SeriesId};

/// Series -> (timestamp, value bits), ordered.
pub type Data = BTreeMap<Labels, BTreeMap<i64, u64>>;

/// First sample time of the test data: a 2h boundary.
pub const T0: i64 = 1_699_999_200_000;
pub const HOURS: i64 = 6;

const AWKWARD: [&str; 9] = [
    "a\"quote",
    "back\\slash",
    "new\nline",
    "ünïcødé ✓",
    "spaces, commas } and {braces}",
    "=equals",
    "# hash",
    "tab\there",
    "plain",
];

fn om_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A small deterministic generator (xorshift).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn special(i: u64) -> &'static str {
    ["NaN", "+Inf", "-Inf", "-0", "1e+300", "-2.5e-300", "0"][(i % 7) as usize]
}

/// OpenMetrics of `series` series over `hours` hours at ~`step_ms`, with ms timestamps, NaN,
/// infinities and awkward label values.
pub fn openmetrics(series: usize, hours: i64, step_ms: i64, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    let metrics = ["fx_gauge", "fx_counter_total", "fx_sparse", "fx_special"];
    for (mi, m) in metrics.iter().enumerate() {
        out.push_str(&format!("# TYPE {m} unknown\n"));
        let n = series / metrics.len();
        // Series within a family in label order does not matter to backfill; keep it simple.
        for k in 0..n {
            let labels = format!(
                "instance=\"i{k}\",path=\"{}\",Zeta=\"z{}\"",
                om_escape(AWKWARD[k % AWKWARD.len()]),
                k % 3
            );
            let offset = (k as i64 * 37) % 1000;
            let mut t = T0 + offset;
            let end = T0 + hours * 3_600_000;
            let mut acc = 0f64;
            let mut i = 0u64;
            while t < end {
                let r = rng.next();
                let keep = mi != 2 || r % 5 != 0;
                if keep {
                    let v = match mi {
                        0 => format!("{}", (r % 100_000) as f64 / 7.0),
                        1 => {
                            acc += (r % 1000) as f64;
                            format!("{acc}")
                        }
                        2 => format!("{}", r % 10),
                        _ => {
                            if r % 4 == 0 {
                                special(r / 4).to_string()
                            } else {
                                format!("{}", (r % 1000) as f64 * 0.001)
                            }
                        }
                    };
                    out.push_str(&format!(
                        "{m}{{{labels}}} {v} {}.{:03}\n",
                        t.div_euclid(1000),
                        t.rem_euclid(1000)
                    ));
                }
                i += 1;
                t += step_ms + if mi == 2 { (r % 3) as i64 * 1000 } else { 0 };
            }
            let _ = i;
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Blocks in `dir/data` made by promtool from generated OpenMetrics; returns the data dir.
pub fn make_blocks(dir: &Path, series: usize, hours: i64, step_ms: i64) -> PathBuf {
    let om = dir.join("input.om");
    std::fs::write(&om, openmetrics(series, hours, step_ms, 42)).unwrap();
    let data = dir.join("data");
    crate::common::backfill(&om, &data);
    data
}

/// `promtool tsdb dump --match SEL DIR`, parsed.
pub fn dump(data: &Path, selector: &str) -> Data {
    let out = crate::common::dump(data, Some(selector));
    let mut d = Data::new();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = std::str::from_utf8(line).unwrap();
        let (labels, rest) = parse_dump_labels(line);
        let mut it = rest.split(' ');
        let v = parse_value(it.next().unwrap());
        let t: i64 = it.next().unwrap().parse().unwrap();
        d.entry(labels).or_default().insert(t, v.to_bits());
    }
    d
}

pub fn parse_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or_else(|_| panic!("bad value {s:?}")),
    }
}

/// `{a="x", b="y"} rest` with Go-quoted values.
fn parse_dump_labels(line: &str) -> (Labels, &str) {
    let b = line.as_bytes();
    assert_eq!(b[0], b'{');
    let mut i = 1;
    let mut pairs = Vec::new();
    while b[i] != b'}' {
        let eq = i + line[i..].find('=').unwrap();
        let name = line[i..eq].to_string();
        i = eq + 2; // ="
        let mut val = Vec::new();
        while b[i] != b'"' {
            if b[i] == b'\\' {
                i += 1;
                match b[i] {
                    b'n' => val.push(b'\n'),
                    b't' => val.push(b'\t'),
                    b'r' => val.push(b'\r'),
                    c => val.push(c),
                }
            } else {
                val.push(b[i]);
            }
            i += 1;
        }
        i += 1;
        pairs.push((name, String::from_utf8(val).unwrap()));
        if b[i] == b',' {
            i += 2;
        }
    }
    (Labels::from_pairs(pairs), &line[i + 2..])
}

/// Equal as samples: same timestamps, values bit-equal or both NaN.
pub fn assert_same(got: &Data, want: &Data, what: &str) {
    let gk: Vec<_> = got.keys().collect();
    let wk: Vec<_> = want.keys().collect();
    if gk != wk {
        let missing: Vec<_> = want
            .keys()
            .filter(|k| !got.contains_key(*k))
            .take(3)
            .collect();
        let extra: Vec<_> = got
            .keys()
            .filter(|k| !want.contains_key(*k))
            .take(3)
            .collect();
        panic!(
            "{what}: series differ ({} vs {}); missing {missing:?}, extra {extra:?}",
            got.len(),
            want.len()
        );
    }
    for (l, ws) in want {
        let gs = &got[l];
        assert_eq!(gs.len(), ws.len(), "{what}: sample count of {l}");
        for ((gt, gv), (wt, wv)) in gs.iter().zip(ws) {
            assert_eq!(gt, wt, "{what}: timestamps of {l}");
            let (g, w) = (f64::from_bits(*gv), f64::from_bits(*wv));
            assert!(
                gv == wv || (g.is_nan() && w.is_nan()),
                "{what}: {l} at {gt}: {g} vs {w}"
            );
        }
    }
}

pub fn samples(d: &Data) -> usize {
    d.values().map(|s| s.len()).sum()
}

/// What the proxy does with one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    Pass,
    /// Close the connection without answering.
    Drop,
    /// Answer 503.
    Unavailable,
    /// Hold the connection, answer nothing, for this long.
    Stall(Duration),
    /// Forward only the first bytes of the answer.
    Truncate(usize),
    /// Wait, then pass the request on.
    Delay(Duration),
    /// Answer 401 unless the Authorization header is this.
    RequireAuth(&'static str),
    /// Answer 204 without passing the request on: a write the receiver never sees.
    Swallow,
    /// Answer 400 without passing the request on.
    BadRequest,
    /// Pass the request on, then answer the receiver's answer only after this long.
    SlowAnswer(Duration),
    /// Pass the request on, then answer 503 whatever the receiver said.
    StoredThen503,
    /// Pass the request on, then answer 400 whatever the receiver said.
    StoredThen400,
}

/// A one-request-per-connection HTTP proxy to `upstream` that applies `plan(n)` to request n
/// (with [`Proxy::start_writes`], to POST n, every other request passed on).
pub struct Proxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    pub requests: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(upstream: u16, plan: impl Fn(usize) -> Fault + Send + Sync + 'static) -> Proxy {
        Self::start_mode(upstream, false, plan)
    }

    /// A proxy whose `plan` numbers the POSTs (remote-write requests) only: queries pass.
    pub fn start_writes(
        upstream: u16,
        plan: impl Fn(usize) -> Fault + Send + Sync + 'static,
    ) -> Proxy {
        Self::start_mode(upstream, true, plan)
    }

    /// A proxy whose `plan` sees each request's head (method, path, headers) and the number
    /// of the POSTs so far (of every request, for a request that is not a POST).
    pub fn start_by(
        upstream: u16,
        plan: impl Fn(&str, usize) -> Fault + Send + Sync + 'static,
    ) -> Proxy {
        Self::start_plan(upstream, true, Arc::new(plan))
    }

    fn start_mode(
        upstream: u16,
        writes_only: bool,
        plan: impl Fn(usize) -> Fault + Send + Sync + 'static,
    ) -> Proxy {
        let plan: Arc<Plan> = Arc::new(move |head: &str, n| {
            if writes_only && !head.starts_with("POST ") {
                Fault::Pass
            } else {
                plan(n)
            }
        });
        Self::start_plan(upstream, writes_only, plan)
    }

    fn start_plan(upstream: u16, writes_only: bool, plan: Arc<Plan>) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (s2, r2) = (stop.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                if s2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (plan, r2) = (plan.clone(), r2.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, &*plan, writes_only, &r2);
                });
            }
        });
        Proxy {
            port,
            stop,
            requests,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn read_request(c: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if c.read(&mut byte)? == 0 {
            return Ok(None);
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

/// The fault for a request, from its head and number.
type Plan = dyn Fn(&str, usize) -> Fault + Send + Sync;

fn serve(
    mut c: TcpStream,
    upstream: u16,
    plan: &Plan,
    writes_only: bool,
    count: &AtomicUsize,
) -> std::io::Result<()> {
    // One request per connection, each to a fresh upstream connection.
    if let Some((head, body)) = read_request(&mut c)? {
        if head.starts_with("CONNECT ") {
            count.fetch_add(1, Ordering::Relaxed);
            return tunnel(c, upstream);
        }
        let counted = !writes_only || head.starts_with("POST ");
        let n = if counted {
            count.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let fault = plan(&head, n);
        match fault {
            Fault::Drop => {
                let _ = c.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::Unavailable => {
                c.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\nConnection: close\r\n\r\nunavailable")?;
                return Ok(());
            }
            Fault::Swallow => {
                c.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")?;
                return Ok(());
            }
            Fault::BadRequest => {
                c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 16\r\nConnection: close\r\n\r\nrefused by proxy")?;
                return Ok(());
            }
            Fault::Stall(d) => {
                std::thread::sleep(d);
                return Ok(());
            }
            Fault::RequireAuth(want) => {
                let ok = head.lines().any(|l| {
                    l.split_once(':').is_some_and(|(k, v)| {
                        k.eq_ignore_ascii_case("authorization") && v.trim() == want
                    })
                });
                if !ok {
                    c.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 26\r\nConnection: close\r\n\r\nUnauthorized: bad password")?;
                    return Ok(());
                }
            }
            Fault::Delay(d) => std::thread::sleep(d),
            Fault::Pass
            | Fault::Truncate(_)
            | Fault::SlowAnswer(_)
            | Fault::StoredThen503
            | Fault::StoredThen400 => {}
        }
        let mut head_lines: Vec<&str> = head
            .trim_end()
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        head_lines.push("Connection: close");
        let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
        up.write_all(format!("{}\r\n\r\n", head_lines.join("\r\n")).as_bytes())?;
        up.write_all(&body)?;
        let mut resp = Vec::new();
        up.read_to_end(&mut resp)?;
        match fault {
            Fault::Truncate(k) => {
                c.write_all(&resp[..k.min(resp.len())])?;
                let _ = c.shutdown(Shutdown::Both);
                return Ok(());
            }
            Fault::SlowAnswer(d) => std::thread::sleep(d),
            Fault::StoredThen503 => {
                c.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\nConnection: close\r\n\r\nunavailable")?;
                return Ok(());
            }
            Fault::StoredThen400 => {
                c.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 16\r\nConnection: close\r\n\r\nrefused by proxy")?;
                return Ok(());
            }
            _ => {}
        }
        // Close after each answer: the upstream answer may be close-delimited.
        c.write_all(&resp)?;
        let _ = c.shutdown(Shutdown::Both);
    }
    Ok(())
}

/// A forward proxy's CONNECT: a byte tunnel to the upstream, both ways.
fn tunnel(mut c: TcpStream, upstream: u16) -> std::io::Result<()> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    let (mut c2, mut up2) = (c.try_clone()?, up.try_clone()?);
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut up2);
        let _ = up2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up, &mut c);
    let _ = c.shutdown(Shutdown::Both);
    let _ = t.join();
    Ok(())
}

/// Collects fetched series: each batch as delivered, in order.
#[derive(Default)]
pub struct Collector(Vec<(Labels, Vec<(i64, u64)>)>);

impl SampleSink for Collector {
    fn series(&mut self, l: Labels, _: Provenance<'_>) -> anyhow::Result<SeriesId> {
        self.0.push((l, Vec::new()));
        Ok(self.0.len() as SeriesId - 1)
    }

    fn float(&mut self, id: SeriesId, t: i64, bits: u64) -> anyhow::Result<()> {
        self.0[id as usize].1.push((t, bits));
        Ok(())
    }
}

impl Collector {
    /// The batches in `Data`, a later sample replacing an earlier one at the same time.
    pub fn into_data(self) -> Data {
        let mut d = Data::new();
        for (l, s) in self.0 {
            d.entry(l).or_default().extend(s);
        }
        d
    }
}

use prom2om::fetch::http::ClientConfig;
use prom2om::fetch::plan::{Match, Method, Op};
use prom2om::fetch::{FetchOptions, MethodChoice};

/// Options for a fetch of `{__name__=~"fx_.*"}` (or `selectors`) over `[start, end]`.
pub fn options(
    url: &str,
    selectors: Vec<Vec<Match>>,
    start: i64,
    end: i64,
    method: Option<Method>,
) -> FetchOptions {
    FetchOptions {
        client: ClientConfig {
            url: url.to_string(),
            timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
            ..Default::default()
        },
        selectors: if selectors.is_empty() {
            vec![vec![Match::new("__name__", Op::Re, "fx_.*")]]
        } else {
            selectors
        },
        start_ms: start,
        end_ms: end,
        method: method.map_or(MethodChoice::Auto, MethodChoice::Use),
        step_ms: None,
        concurrency: 4,
        samples_per_request: 1_000_000,
        top_by: None,
        state_dir: None,
        resume: false,
        fingerprint: "test".into(),
        progress: false,
    }
}

/// Runs a fetch and collects what it delivers.
pub fn run(o: &FetchOptions) -> anyhow::Result<(Data, prom2om::fetch::FetchStats)> {
    let mut c = Collector::default();
    let stats = prom2om::fetch::fetch(o, &mut c)?;
    Ok((c.into_data(), stats))
}

/// `d` restricted to `[start, end]`.
pub fn window(d: &Data, start: i64, end: i64) -> Data {
    d.iter()
        .map(|(l, s)| {
            (
                l.clone(),
                s.range(start..=end)
                    .map(|(t, v)| (*t, *v))
                    .collect::<BTreeMap<_, _>>(),
            )
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}
