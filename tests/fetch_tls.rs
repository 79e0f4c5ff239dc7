//! `fetch` over TLS to a real Prometheus (its --web.config.file) that requires a client
//! certificate: --ca-file and --cert-file/--key-file work, an unknown CA fails at once unless
//! --insecure-skip-verify, and a missing client certificate fails.

mod common;
mod fetch_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Prom;
use fetch_support::*;
use prom2om::fetch::http::{Client, ClientConfig};
use prom2om::fetch::plan::Method;

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is required for the TLS test (Debian package `openssl`)");
    assert!(st.success(), "openssl {args:?}");
}

/// A CA; a server certificate for 127.0.0.1, a client certificate, and an X.509 v1 client
/// certificate (no extensions), all signed by the CA.
fn make_pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
        ],
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ext) in [
        ("server", Some("server.ext")),
        ("client", Some("client.ext")),
        ("v1", None),
    ] {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        let subj = format!("/CN={name}");
        openssl(
            dir,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
                &subj,
            ],
        );
        let mut a = vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
        ];
        if let Some(e) = ext {
            a.extend(["-extfile", e]);
        }
        openssl(dir, &a);
    }
}

#[test]
fn tls_with_client_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    std::fs::create_dir_all(&pki).unwrap();
    make_pki(&pki);
    let data = make_blocks(tmp.path(), 40, 2, 30_000);
    let all = dump(&data, r#"{__name__=~"fx_.*"}"#);
    let web = tmp.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {0}/ca.crt\n",
            pki.display()
        ),
    )
    .unwrap();
    // Started without the plain-HTTP readiness probe: it only speaks TLS; probed below.
    let web_flag = format!("--web.config.file={}", web.display());
    let server = Prom::spawn(Some(&data), common::PROM_CONFIG, &[&web_flag]);
    let url = format!("https://127.0.0.1:{}", server.port);
    let good = ClientConfig {
        url: url.clone(),
        ca_file: Some(pki.join("ca.crt")),
        cert_file: Some(pki.join("client.crt")),
        key_file: Some(pki.join("client.key")),
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let probe = Client::new(&good).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe.get("/-/ready", &[]).is_err() {
        assert!(
            Instant::now() < deadline,
            "prometheus (TLS) did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (start, end) = (T0, T0 + 2 * 3_600_000 - 1);

    let mut o = options(&url, vec![], start, end, Some(Method::RemoteRead));
    o.client = ClientConfig {
        retries: 3,
        ..good.clone()
    };
    let (got, _) = run(&o).unwrap();
    assert_same(&got, &all, "TLS with --ca-file and a client certificate");

    // The system roots do not know the test CA: a fatal error, not retried.
    let mut bad = o.clone();
    bad.client.ca_file = None;
    let t = Instant::now();
    let err = format!("{:#}", run(&bad).unwrap_err());
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("tls"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    let mut insecure = bad.clone();
    insecure.client.insecure_skip_verify = true;
    let (got, _) = run(&insecure).unwrap();
    assert_same(&got, &all, "--insecure-skip-verify");

    // Without a client certificate the server refuses.
    let mut nocert = o.clone();
    nocert.client.cert_file = None;
    nocert.client.key_file = None;
    assert!(run(&nocert).is_err());

    // A certificate rustls cannot use is a clear error (exit 2), not a crash.
    let mut v1 = good.clone();
    v1.cert_file = Some(pki.join("v1.crt"));
    v1.key_file = Some(pki.join("v1.key"));
    let err = Client::new(&v1).err().expect("a v1 certificate is refused");
    assert!(format!("{err:#}").contains("--cert-file"), "{err:#}");
    assert_eq!(prom2om::exit_codes::ExitCode::of(&err).code(), 2);
}
