//! The HTTP client options `fetch` and `import --remote-write` share: authentication, TLS,
//! proxy, timeout and retries, turned into the one [`ClientConfig`] both hand to the client.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::fetch::http::ClientConfig;

#[derive(Args, Debug, Clone)]
pub struct HttpArgs {
    /// Longest wait for a connection, or for any data on it, before retrying.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub timeout: String,

    /// Retries of a request after timeouts, connection errors, 429 and 5xx answers, with
    /// exponential backoff and jitter. Other 4xx answers fail at once.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub retries: u32,

    /// Basic auth user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// Basic auth password (visible in the process list: prefer --password-file).
    #[arg(long, value_name = "PASSWORD", conflicts_with = "password_file")]
    pub password: Option<String>,

    /// File holding the basic auth password.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,

    /// Bearer token (visible in the process list: prefer --bearer-token-file).
    #[arg(long, value_name = "TOKEN", conflicts_with_all = ["bearer_token_file", "user"])]
    pub bearer_token: Option<String>,

    /// File holding the bearer token.
    #[arg(long, value_name = "FILE", conflicts_with = "user")]
    pub bearer_token_file: Option<PathBuf>,

    /// Extra request header, 'Name: value' (repeatable), e.g. 'X-Scope-OrgID: tenant-1'.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,

    /// PEM file of the CA(s) that signed the server's certificate.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate (with --key-file) for mutual TLS.
    #[arg(long, value_name = "FILE", requires = "key_file")]
    pub cert_file: Option<PathBuf>,

    /// PEM private key of --cert-file.
    #[arg(long, value_name = "FILE", requires = "cert_file")]
    pub key_file: Option<PathBuf>,

    /// Do not verify the server's TLS certificate.
    #[arg(long)]
    pub insecure_skip_verify: bool,

    /// HTTP(S) or SOCKS5 proxy, e.g. http://user:pass@proxy:3128 [default: from HTTPS_PROXY].
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
}

impl HttpArgs {
    /// The client configuration for `url`; secrets read from their files.
    pub fn client_config(&self, url: &str) -> Result<ClientConfig> {
        let a = self;
        let read_secret = |p: &PathBuf, what: &str| -> Result<String> {
            let s = std::fs::read_to_string(p)
                .with_context(|| format!("{what} {}", p.display()))
                .map_err(|e| crate::bad_input!("{e:#}"))?;
            Ok(s.trim_end_matches(['\r', '\n']).to_string())
        };
        let password = match (&a.password, &a.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(read_secret(f, "--password-file")?),
            (None, None) => None,
        };
        let bearer = match (&a.bearer_token, &a.bearer_token_file) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(f)) => Some(read_secret(f, "--bearer-token-file")?),
            (None, None) => None,
        };
        if password.is_some() && a.user.is_none() && !url.contains('@') {
            return Err(crate::bad_input!("--password needs --user"));
        }
        let mut headers = Vec::new();
        for h in &a.headers {
            let Some((n, v)) = h.split_once(':') else {
                return Err(crate::bad_input!(
                    "--header {:?}: expected 'Name: value'",
                    n_only(h)
                ));
            };
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        Ok(ClientConfig {
            url: url.to_string(),
            user: a.user.clone(),
            password,
            bearer_token: bearer,
            headers,
            ca_file: a.ca_file.clone(),
            cert_file: a.cert_file.clone(),
            key_file: a.key_file.clone(),
            insecure_skip_verify: a.insecure_skip_verify,
            proxy: a.proxy.clone(),
            timeout: Duration::from_millis(parse_duration(&a.timeout)? as u64),
            retries: a.retries,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            rate_limit: None,
        })
    }
}

/// A header as far as its name: the value may be a secret.
fn n_only(h: &str) -> &str {
    h.split([' ', '=']).next().unwrap_or("")
}

pub fn parse_duration(s: &str) -> Result<i64> {
    match crate::fetch::api::parse_duration(s) {
        Some(ms) if ms > 0 => Ok(ms),
        _ => Err(crate::bad_input!(
            "{s:?} is not a positive duration like 15s, 1m30s, 500ms"
        )),
    }
}
