//! The HTTP client of `fetch`: authentication, TLS, proxy, timeouts, a request rate limit, and
//! retries with exponential backoff and jitter on the failures that pass (timeouts, dropped
//! connections, 429, 5xx). Credentials never appear in what it prints.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

/// How to reach and authenticate to the server.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://prom.example.com/prometheus`; `user:pass@` in it is basic auth.
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub bearer_token: Option<String>,
    /// Extra request headers, `(name, value)`.
    pub headers: Vec<(String, String)>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub proxy: Option<String>,
    /// Longest wait for a connection or for any data on it.
    pub timeout: Duration,
    /// Retries of one request after the first attempt.
    pub retries: u32,
    /// First backoff delay; doubles per retry up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Requests per second over all threads; `None`: unlimited.
    pub rate_limit: Option<f64>,
}

/// Counters shared by all threads.
#[derive(Default, Debug)]
pub struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub bytes: AtomicU64,
}

/// Why one attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try (network trouble, 429, 5xx, a truncated or corrupt body).
    Transient(anyhow::Error, Option<Duration>),
    /// Retrying cannot help (other 4xx, TLS, bad URL).
    Fatal(anyhow::Error),
}

impl Failure {
    pub fn transient(e: anyhow::Error) -> Failure {
        Failure::Transient(e, None)
    }
}

/// Context of an error that outlasted every retry: a transfer cut by trouble that may pass, the
/// kind of failure a `--resume` can continue after (a refusal of the server cannot).
#[derive(Debug)]
pub struct GaveUp {
    pub attempts: u32,
}

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "giving up after {} attempts", self.attempts)
    }
}

/// Whether `err` is a transfer that gave up after its retries (see [`GaveUp`]).
pub fn gave_up(err: &anyhow::Error) -> bool {
    // anyhow finds a context value at any depth of the context chain.
    err.downcast_ref::<GaveUp>().is_some()
}

/// The server cannot be talked to at all (nothing listens at its address on the first request,
/// or it speaks plain HTTP to an https:// URL): retrying would only make the user wait.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Whether `err` says the server cannot be reached at all.
pub fn unreachable(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<Unreachable>())
}

/// A non-2xx answer, kept as an error type so callers can look at the status.
#[derive(Debug)]
pub struct HttpStatus {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)?;
        if self.status == 401 || self.status == 403 {
            f.write_str(" (check --user/--password or --bearer-token)")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpStatus {}

/// What a 404 means: a query API path under a wrong base URL, or (the URL itself posted to, as
/// remote write does) a wrong endpoint.
fn not_found_hint(path: &str) -> &'static str {
    if path.is_empty() {
        " (check the URL: it must be the receiver's whole write endpoint, e.g. \
         http://host:9090/api/v1/write for Prometheus, http://host:8428/api/v1/write for \
         VictoriaMetrics, https://host/api/v1/push for Mimir)"
    } else {
        " (check --url: the base URL of Prometheus, e.g. https://host or \
         https://host/prometheus, without /api/v1)"
    }
}

/// How a host name failed to resolve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lookup {
    /// The resolver says the name does not exist (`EAI_NONAME`, `EAI_NODATA`).
    NoSuchName,
    /// It could not answer now (`EAI_AGAIN`) or failed otherwise: retrying may help.
    Other,
}

/// Whether `e` is a failed host-name lookup: std's resolver reports it as an I/O error whose
/// text is getaddrinfo's (it has no error kind of its own).
fn name_lookup_failure(e: &ureq::Error) -> Option<Lookup> {
    let ureq::Error::Io(io) = e else {
        return matches!(e, ureq::Error::HostNotFound).then_some(Lookup::NoSuchName);
    };
    let text = io.to_string();
    if !text.contains("failed to lookup address information") {
        return None;
    }
    let gone = [
        "Name or service not known",
        "No address associated",
        "nodename nor servname",
    ];
    Some(if gone.iter().any(|g| text.contains(g)) {
        Lookup::NoSuchName
    } else {
        Lookup::Other
    })
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// The base URL with credentials and query removed: safe to print.
    display: String,
    /// `--proxy`, masked the same way, when one is set.
    proxy: Option<String>,
    base_query: Vec<(String, String)>,
    auth: Option<String>,
    headers: Vec<(String, String)>,
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    limiter: Option<(Duration, Mutex<Instant>)>,
    /// Some request got an HTTP answer: from then on a refused connection is a restart, retried.
    reached: std::sync::atomic::AtomicBool,
    pub counters: Arc<Counters>,
}

pub type Response = ureq::http::Response<ureq::Body>;

impl Client {
    pub fn new(cfg: &ClientConfig) -> Result<Client> {
        let parsed = split_url(&cfg.url)?;
        let mut user = cfg.user.clone();
        let mut password = cfg.password.clone();
        if user.is_none() {
            if let Some((u, p)) = &parsed.userinfo {
                user = Some(u.clone());
                password = password.or_else(|| p.clone());
            }
        }
        let auth = match (&user, &cfg.bearer_token) {
            (Some(_), Some(_)) => {
                return Err(crate::bad_input!(
                    "give basic auth or a bearer token, not both"
                ))
            }
            (Some(u), None) => {
                let pw = password.unwrap_or_default();
                Some(format!("Basic {}", base64(format!("{u}:{pw}").as_bytes())))
            }
            (None, Some(t)) => Some(format!("Bearer {}", t.trim())),
            (None, None) => None,
        };
        let mut b = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(cfg.timeout))
            .timeout_per_read(Some(cfg.timeout))
            .timeout_per_write(Some(cfg.timeout))
            .max_idle_connections_per_host(64)
            .user_agent(concat!("prom2om/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls_config(cfg)?);
        if let Some(p) = &cfg.proxy {
            let proxy = ureq::Proxy::new(p)
                .map_err(|e| crate::bad_input!("--proxy {}: {e}", mask_url(p)))?;
            b = b.proxy(Some(proxy));
        }
        let limiter = match cfg.rate_limit {
            Some(r) if r > 0.0 => {
                Some((Duration::from_secs_f64(1.0 / r), Mutex::new(Instant::now())))
            }
            _ => None,
        };
        for (n, v) in &cfg.headers {
            ureq::http::HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| crate::bad_input!("--header: {n:?} is not a header name"))?;
            ureq::http::HeaderValue::from_str(v).map_err(|_| {
                crate::bad_input!("--header {n}: the value is not a valid header value")
            })?;
        }
        Ok(Client {
            agent: b.build().new_agent(),
            display: parsed.base.clone(),
            base: parsed.base,
            proxy: cfg.proxy.as_deref().map(mask_url),
            base_query: parsed.query,
            auth,
            headers: cfg.headers.clone(),
            retries: cfg.retries,
            backoff: cfg.backoff,
            max_backoff: cfg.max_backoff.max(cfg.backoff),
            limiter,
            reached: Default::default(),
            counters: Arc::new(Counters::default()),
        })
    }

    /// The base URL without credentials or query string, for messages and the manifest.
    pub fn display_url(&self) -> &str {
        &self.display
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn wait_turn(&self) {
        if let Some((gap, next)) = &self.limiter {
            let wait = {
                let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let at = (*next).max(now);
                *next = at + *gap;
                at - now
            };
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
    }

    /// `GET path?params` (or a form POST when the URL would be long); the whole body on 2xx.
    pub fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<u8>, Failure> {
        let mut all: Vec<(&str, &str)> = self
            .base_query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
        let form = form_encode(&all);
        let resp = if form.len() > 4000 {
            let req = self
                .with_headers(self.agent.post(self.url(path)))
                .header("Content-Type", "application/x-www-form-urlencoded");
            self.wait_turn();
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            req.send(form.as_bytes())
        } else {
            let req = self.with_headers(self.agent.get(format!("{}?{form}", self.url(path))));
            self.wait_turn();
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            req.call()
        };
        let resp = self.check(path, resp)?;
        let mut body = Vec::new();
        self.reader(resp).read_to_end(&mut body).map_err(|e| {
            Failure::transient(anyhow!(e).context(format!("reading the answer to {path}")))
        })?;
        Ok(body)
    }

    /// `POST path` with a binary body and extra headers; the 2xx response to stream from.
    pub fn post(
        &self,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<Response, Failure> {
        let mut url = self.url(path);
        if !self.base_query.is_empty() {
            let q: Vec<(&str, &str)> = self
                .base_query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            url = format!("{url}?{}", form_encode(&q));
        }
        let mut req = self.with_headers(self.agent.post(url));
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        self.wait_turn();
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let resp = req.send(body);
        self.check(path, resp)
    }

    fn with_headers<B>(&self, mut req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        req = req.header("Accept-Encoding", "gzip");
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a.as_str());
        }
        for (n, v) in &self.headers {
            req = req.header(n.as_str(), v.as_str());
        }
        req
    }

    /// Sorts an attempt's outcome into success, transient and fatal failure.
    fn check(&self, path: &str, r: Result<Response, ureq::Error>) -> Result<Response, Failure> {
        let what = format!("{}{path}", self.display);
        let resp = match r {
            Ok(resp) => resp,
            Err(e) => return Err(self.connection_failure(&what, e)),
        };
        self.reached.store(true, Ordering::Relaxed);
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get("Retry-After")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let mut text = Vec::new();
        let _ = self.reader(resp).take(64 << 10).read_to_end(&mut text);
        let mut message = server_message(&text);
        if status == 404 {
            message.push_str(not_found_hint(path));
        }
        let race = head_race(status, &message);
        let err = anyhow::Error::new(HttpStatus { status, message }).context(what);
        if status == 429 || status >= 500 || race {
            Err(Failure::Transient(err, retry_after))
        } else {
            Err(Failure::Fatal(err))
        }
    }

    /// Sorts a failure to get any HTTP answer: what retrying cannot change is fatal, and says what
    /// would help.
    fn connection_failure(&self, what: &str, e: ureq::Error) -> Failure {
        let first = !self.reached.load(Ordering::Relaxed);
        let refused =
            matches!(&e, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused);
        // With a proxy, every connection goes to the proxy: a refusal or an unknown host is its.
        let (whom, flag) = match &self.proxy {
            Some(p) => (format!("the proxy {p}"), "--proxy"),
            None => (self.display.clone(), "the URL"),
        };
        if let Some(lookup) = name_lookup_failure(&e) {
            // A name that does not exist will not exist in a minute; a resolver that could not
            // answer now may.
            if lookup == Lookup::NoSuchName {
                return Failure::Fatal(anyhow::Error::new(Unreachable(format!(
                    "{what}: {e}: the host name of {whom} does not resolve; check the host in {flag}"
                ))));
            }
        } else if first && (refused || matches!(e, ureq::Error::HostNotFound)) {
            let hint = if self.proxy.is_some() {
                format!("is the proxy running, and are the host and port of {flag} right?")
            } else {
                "is the server running there, and are the host and port in the URL right?".into()
            };
            return Failure::Fatal(anyhow::Error::new(Unreachable(format!(
                "{what}: {e}: nothing answers at {whom}; {hint}"
            ))));
        }
        let tls = matches!(e, ureq::Error::Tls(_) | ureq::Error::Rustls(_));
        if self.display.starts_with("https://") && plain_http_answer(&e) {
            return Failure::Fatal(anyhow::Error::new(Unreachable(format!(
                "{what}: {e}: the server answers in plain HTTP, not TLS: use http:// in --url"
            ))));
        }
        let fatal = tls
            || matches!(
                e,
                ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl | ureq::Error::Http(_)
            );
        let err = anyhow!("{what}: {e}");
        if fatal {
            Failure::Fatal(err)
        } else {
            Failure::transient(err)
        }
    }

    /// The response body, gunzipped when the server compressed it, counted into `bytes`.
    pub fn reader(&self, resp: Response) -> Box<dyn Read + Send> {
        let gzip = resp
            .headers()
            .get("Content-Encoding")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        let counted = Counted {
            inner: resp.into_body().into_reader(),
            counters: self.counters.clone(),
        };
        if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                counted,
            )))
        } else {
            Box::new(counted)
        }
    }

    /// Runs `attempt` until it succeeds, fails fatally, or the retries are used up, sleeping
    /// with exponential backoff and jitter between tries.
    pub fn retry<T>(&self, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T> {
        let mut tries = 0u32;
        loop {
            match attempt() {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(e, after)) => {
                    if tries >= self.retries {
                        return Err(e.context(GaveUp {
                            attempts: tries + 1,
                        }));
                    }
                    self.pause(tries, after);
                    tries += 1;
                }
            }
        }
    }

    /// Retries allowed after a first attempt (`--retries`).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Sleeps before retry number `tries + 1` (exponential backoff with jitter, at least
    /// `after`, a `Retry-After`), and counts it: for callers that run their own retry loop.
    pub fn pause(&self, tries: u32, after: Option<Duration>) {
        let exp = self.backoff.saturating_mul(1u32 << tries.min(20));
        let cap = exp.min(self.max_backoff);
        // "Equal jitter": half fixed, half random, so threads do not retry in step.
        let delay = cap / 2 + cap.mul_f64(jitter() / 2.0);
        let delay = after.map_or(delay, |a| a.max(delay));
        self.counters.retries.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(delay);
    }
}

struct Counted<R> {
    inner: R,
    counters: Arc<Counters>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Whether a failure is rustls meeting a plain HTTP answer (`HTTP/1.1 400 ...` is not a TLS
/// record); ureq passes rustls' complaint on as an I/O error, so only its words tell.
fn plain_http_answer(e: &ureq::Error) -> bool {
    let text = e.to_string();
    text.contains("InvalidContentType") || text.contains("corrupt message")
}

/// A uniform number in [0, 1) from a shared xorshift generator seeded by the clock.
fn jitter() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The error text of a Prometheus JSON error (`{"status":"error","error":"..."}`), or the start
/// of whatever else the server (or a proxy in front of it) answered.
fn server_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        error: Option<String>,
        #[serde(rename = "errorType")]
        error_type: Option<String>,
    }
    if let Ok(E {
        error: Some(e),
        error_type,
    }) = serde_json::from_slice::<E>(body)
    {
        return match error_type {
            Some(t) => format!("{t}: {e}"),
            None => e,
        };
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.starts_with('<') {
        // An error page of a web server or proxy: its title says enough, on one line.
        let title = text
            .find("<title>")
            .and_then(|i| text[i + 7..].split("</title>").next())
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "));
        return match title {
            Some(t) if !t.is_empty() => format!("an HTML page ({t:?})"),
            _ => "an HTML page".to_string(),
        };
    }
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = text.chars().take(300).collect();
    if s.len() < text.len() {
        s.push_str("...");
    }
    if s.is_empty() {
        s.push_str("(empty answer)");
    }
    s
}

struct SplitUrl {
    base: String,
    userinfo: Option<(String, Option<String>)>,
    query: Vec<(String, String)>,
}

/// Takes `user:pass@` and `?query` out of the base URL.
fn split_url(url: &str) -> Result<SplitUrl> {
    let url = url.trim();
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| *s == "http" || *s == "https")
        .ok_or_else(|| {
            crate::bad_input!(
                "--url {}: must start with http:// or https://",
                mask_url(url)
            )
        })?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((ui, h)) => {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
                None => (percent_decode(ui), None),
            };
            (Some((u, p)), h)
        }
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(crate::bad_input!("--url {}: no host", mask_url(url)));
    }
    let path = path.trim_end_matches('/');
    let query = query
        .map(|q| {
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (percent_decode(k), percent_decode(v)),
                    None => (percent_decode(kv), String::new()),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(SplitUrl {
        base: format!("{scheme}://{host}{path}"),
        userinfo,
        query,
    })
}

/// A URL with any `user:pass@` replaced by `***@` and any query string hidden.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let (rest, has_query) = match rest.split_once('?') {
        Some((r, _)) => (r, true),
        None => (rest, false),
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((_, h)) => format!("***@{h}"),
        None => authority.to_string(),
    };
    format!(
        "{scheme}{authority}{path}{}",
        if has_query { "?***" } else { "" }
    )
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `application/x-www-form-urlencoded` of the pairs.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        pct(k, &mut out);
        out.push('=');
        pct(v, &mut out);
    }
    out
}

fn pct(s: &str, out: &mut String) {
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-_.~".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn tls_config(cfg: &ClientConfig) -> Result<ureq::tls::TlsConfig> {
    use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
    let mut b = TlsConfig::builder().disable_verification(cfg.insecure_skip_verify);
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("--ca-file {}", ca.display()))?;
        let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        if certs.is_empty() {
            return Err(crate::bad_input!(
                "--ca-file {}: no PEM certificate in it",
                ca.display()
            ));
        }
        b = b.root_certs(RootCerts::new_with_certs(&certs));
    }
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(c), Some(k)) => {
            let pem = std::fs::read(c).with_context(|| format!("--cert-file {}", c.display()))?;
            let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if chain.is_empty() {
                return Err(crate::bad_input!(
                    "--cert-file {}: no PEM certificate in it",
                    c.display()
                ));
            }
            let kpem = std::fs::read(k).with_context(|| format!("--key-file {}", k.display()))?;
            let key = PrivateKey::from_pem(&kpem)
                .map_err(|e| crate::bad_input!("--key-file {}: {e}", k.display()))?;
            check_client_cert(&chain, &key)
                .map_err(|e| crate::bad_input!("--cert-file {}: {e}", c.display()))?;
            b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        (None, None) => {}
        _ => return Err(crate::bad_input!("--cert-file and --key-file go together")),
    }
    Ok(b.build())
}

/// What rustls will say of the certificate and key when a connection is made: ureq panics on
/// an error there, so it is asked first.
fn check_client_cert(
    chain: &[ureq::tls::Certificate<'static>],
    key: &ureq::tls::PrivateKey<'static>,
) -> Result<(), rustls::Error> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let key = PrivateKeyDer::try_from(key.der().to_vec())
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(certs, key)?;
    Ok(())
}

/// A query that met a head chunk as Prometheus m-mapped or truncated it answers 422 "cannot
/// populate chunk N from block 0000...: not found" (its head's read races its own chunk writer);
/// the same query a moment later answers. Any other 422 is a refusal of the query itself.
fn head_race(status: u16, message: &str) -> bool {
    status == 422 && message.contains("cannot populate chunk")
}

/// A `Retry-After` value: delay seconds, or an HTTP date (RFC 9110: IMF-fixdate, which RFC 2822
/// parsing covers). Capped at 5 minutes; a date in the past means now.
fn parse_retry_after(v: &str, now: std::time::SystemTime) -> Option<Duration> {
    const MAX: Duration = Duration::from_secs(300);
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let at = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(at.duration_since(now).unwrap_or_default().min(MAX))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_query_meeting_the_head_s_chunk_writer_is_tried_again() {
        let race = "execution: cannot populate chunk 285212672 from block \
                    00000000000000000000000000: not found";
        assert!(head_race(422, race));
        assert!(!head_race(
            422,
            "execution: query processing would load too many samples"
        ));
        assert!(!head_race(400, race));
    }
    use super::*;

    #[test]
    fn retry_after_seconds_or_http_date() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06T08:49:37Z
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("86400", now),
            Some(Duration::from_secs(300))
        );
        let date = "Sun, 06 Nov 1994 08:50:07 GMT";
        assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(30)));
        let past = "Sun, 06 Nov 1994 08:00:00 GMT";
        assert_eq!(parse_retry_after(past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn urls_lose_their_credentials() {
        let s = split_url("https://bob:s%40cret@prom.example.com:9090/prom/?token=abc").unwrap();
        assert_eq!(s.base, "https://prom.example.com:9090/prom");
        assert_eq!(s.userinfo, Some(("bob".into(), Some("s@cret".into()))));
        assert_eq!(s.query, vec![("token".into(), "abc".into())]);
        assert_eq!(
            mask_url("http://u:p@proxy:3128/x?k=v"),
            "http://***@proxy:3128/x?***"
        );
        assert_eq!(mask_url("http://host:1/"), "http://host:1/");
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("http://").is_err());
    }

    #[test]
    fn basic_auth_encoding() {
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn form_encoding_and_server_messages() {
        assert_eq!(
            form_encode(&[("match[]", "{a=\"b c\"}"), ("x", "1")]),
            "match%5B%5D=%7Ba%3D%22b%20c%22%7D&x=1"
        );
        assert_eq!(
            server_message(br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#),
            "bad_data: parse error"
        );
        assert_eq!(server_message(b"  Unauthorized\n"), "Unauthorized");
        assert_eq!(server_message(b""), "(empty answer)");
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
