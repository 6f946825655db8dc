//! The `--http` client against real local servers (tokio, and tokio-rustls for TLS):
//! connections kept and reused, a pooled connection the server dropped, basic auth from
//! the URL, and TLS with the endpoint's own CA and a client certificate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Client, Failed};
use crate::engine::http::TlsFiles;

/// Reads one request (head and content-length body) from `sock`; None at its end.
async fn read_request<S: AsyncRead + Unpin>(sock: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                buf.drain(..end + 4 + len);
                return Some(head);
            }
        }
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Answers 200 on each connection, keeping it open; every `drop_after` requests on a
/// connection it closes it without a word (as an endpoint's idle timeout does). Counts
/// connections; keeps the heads.
async fn keep_alive_server(
    drop_after: usize,
) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://oncall:s3cret@{}/in?x=1",
        listener.local_addr().unwrap()
    );
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (count, keep) = (accepted.clone(), heads.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for _ in 0..drop_after {
                    let Some(head) = read_request(&mut sock, &mut buf).await else {
                        return;
                    };
                    keep.lock().unwrap().push(head);
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    sock.write_all(ok).await.unwrap();
                }
                // Closed once the client has sent its next request on it, unanswered.
                let _ = read_request(&mut sock, &mut buf).await;
            });
        }
    });
    (url, accepted, heads)
}

async fn post(c: &Client) -> Result<u16, Failed> {
    let headers = [("morgue-topic".to_string(), "trades".to_string())];
    let body = Bytes::from_static(b"{\"n\":1}");
    c.post(&headers, body, Duration::from_secs(5))
        .await
        .map(|a| a.status)
}

#[tokio::test]
async fn connections_are_kept_and_one_is_opened_per_request_in_flight() {
    let (url, accepted, heads) = keep_alive_server(usize::MAX).await;
    let c = Arc::new(Client::new(&url, &TlsFiles::default(), "--http").unwrap());
    for _ in 0..20 {
        assert_eq!(post(&c).await, Ok(200));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection, kept");
    for _ in 0..5 {
        let all: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { post(&c).await })
            })
            .collect();
        for h in all {
            assert_eq!(h.await.unwrap(), Ok(200));
        }
    }
    let n = accepted.load(Ordering::SeqCst);
    assert!(
        (2..=8).contains(&n),
        "at most one per request in flight: {n}"
    );
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    for want in [
        "post /in?x=1 http/1.1",
        "authorization: basic b25jywxsonmzy3jlda==",
        "morgue-topic: trades",
        "content-length: 7",
    ] {
        assert!(head.contains(want), "{want} in {head}");
    }
    assert_eq!(c.url(), url.replace("oncall:s3cret@", ""));
}

#[tokio::test]
async fn a_pooled_connection_the_server_dropped_is_replaced_without_a_failure() {
    let (url, accepted, heads) = keep_alive_server(3).await;
    let c = Client::new(&url, &TlsFiles::default(), "--http").unwrap();
    for i in 0..10 {
        assert_eq!(post(&c).await, Ok(200), "request {i}");
    }
    assert_eq!(heads.lock().unwrap().len(), 10, "each answered once");
    assert_eq!(accepted.load(Ordering::SeqCst), 4, "a new one every 3");
}

#[tokio::test]
async fn no_server_and_bad_urls_are_said_in_one_line() {
    let c = Client::new("http://127.0.0.1:1/x", &TlsFiles::default(), "--http").unwrap();
    match post(&c).await {
        Err(Failed::Unreachable(why)) => {
            assert!(
                why.starts_with("POST http://127.0.0.1:1/x: connect 127.0.0.1:1:"),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
    for (url, why) in [
        (
            "ftp://host/",
            "--http 'ftp://host/': not an http:// or https:// URL",
        ),
        ("http:///x", "--http 'http:///x': "),
    ] {
        let e = Client::new(url, &TlsFiles::default(), "--http")
            .err()
            .unwrap();
        assert!(e.starts_with(why), "{e}");
    }
    let tls = TlsFiles {
        ca: Some("/nonexistent/ca.pem".into()),
        ..TlsFiles::default()
    };
    let e = Client::new("https://127.0.0.1:1/", &tls, "--http")
        .err()
        .unwrap();
    assert!(e.starts_with("--http CA '/nonexistent/ca.pem': "), "{e}");
}

/// A TLS server on loopback with the test CA's server certificate that asks for a
/// client certificate signed by the same CA; answers 200 with the client's
/// certificate count.
async fn tls_server(dir: &std::path::Path) -> u16 {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = |f: &str| {
        CertificateDer::pem_file_iter(dir.join(f))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certs("ca.pem")[0].clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs("server.pem"), key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut buf = Vec::new();
                while read_request(&mut tls, &mut buf).await.is_some() {
                    answer(&mut tls).await;
                }
            });
        }
    });
    port
}

async fn answer<S: AsyncWrite + Unpin>(sock: &mut S) {
    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    sock.write_all(ok).await.unwrap();
}

#[tokio::test]
async fn https_uses_the_endpoints_ca_and_a_client_certificate() {
    let dir = std::env::temp_dir().join(format!("morgue-http-tls-{}", std::process::id()));
    let made = std::process::Command::new("bash")
        .arg("tests/fixtures/make_certs.sh")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let port = tls_server(&dir).await;
    let url = format!("https://127.0.0.1:{port}/");
    let with = TlsFiles {
        ca: Some(dir.join("ca.pem")),
        cert: Some(dir.join("client.pem")),
        key: Some(dir.join("client.key")),
    };
    let c = Client::new(&url, &with, "--http").unwrap();
    for _ in 0..3 {
        assert_eq!(post(&c).await, Ok(200));
    }
    let without_cert = TlsFiles {
        ca: Some(dir.join("ca.pem")),
        ..TlsFiles::default()
    };
    let c = Client::new(&url, &without_cert, "--http").unwrap();
    assert!(
        matches!(post(&c).await, Err(Failed::Unreachable(_))),
        "refused without a client certificate"
    );
    let c = Client::new(&url, &TlsFiles::default(), "--http").unwrap();
    match post(&c).await {
        Err(Failed::Unreachable(why)) => {
            assert!(
                why.contains("TLS handshake") && why.contains("certificate"),
                "{why}"
            );
        }
        other => panic!("the test CA is not among the built-in roots: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_info_is_percent_decoded_for_basic_auth_and_never_shown() {
    use base64::Engine as _;
    let creds = |url: &str| {
        let t = super::parse_url(url).unwrap();
        let basic = t.basic.unwrap();
        let token = basic.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        (
            String::from_utf8(bytes).unwrap(),
            t.shown,
            t.authority,
            t.host,
            t.port,
        )
    };
    let (sent, shown, authority, host, port) =
        creds("http://ops:p%40ss%3Aw%2Frd@127.0.0.1:9/x?y=1");
    assert_eq!(sent, "ops:p@ss:w/rd");
    assert_eq!(shown, "http://127.0.0.1:9/x?y=1");
    assert_eq!(authority, "127.0.0.1:9");
    assert_eq!((host.as_str(), port), ("127.0.0.1", 9));
    let (sent, shown, ..) = creds("https://o%40ps:p@ss@[::1]:9/");
    assert_eq!(sent, "o@ps:p@ss");
    assert_eq!(shown, "https://[::1]:9/");
    let (sent, ..) = creds("http://ops@h/");
    assert_eq!(sent, "ops:");
    assert!(super::parse_url("http://h/").unwrap().basic.is_none());
    let e = super::check_url("http://ops:p/w@h/").unwrap_err();
    assert!(!e.contains("p/w") && e.contains("ops:***@h"), "{e}");
}

#[test]
fn gets_go_under_the_base_path_and_the_password_is_never_shown() {
    use base64::Engine as _;
    let sent = |c: &Client| -> Option<String> {
        let v = c
            .target
            .basic
            .as_ref()?
            .to_str()
            .ok()?
            .strip_prefix("Basic ")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
        String::from_utf8(bytes).ok()
    };
    for (url, creds, base) in [
        (
            "http://ops:p@ss@reg:8081/",
            Some("ops:p@ss"),
            "http://reg:8081",
        ),
        (
            "https://ops:p%40ss%3A%2F@reg:8081/ccompat/",
            Some("ops:p@ss:/"),
            "https://reg:8081/ccompat",
        ),
        ("http://ops@reg:8081", Some("ops:"), "http://reg:8081"),
        ("http://reg:8081", None, "http://reg:8081"),
    ] {
        let c = Client::new(url, &TlsFiles::default(), "schema registry").expect(url);
        assert_eq!(sent(&c).as_deref(), creds, "{url}");
        assert_eq!(c.target.base_shown, base, "{url}");
        assert!(!c.url().contains("ss"), "{url}: {}", c.url());
    }
}

#[test]
fn a_url_without_a_scheme_is_refused_quoting_it() {
    let e = Client::new("reg:8081", &TlsFiles::default(), "--http").err();
    assert!(
        e.as_deref()
            .is_some_and(|e| e.starts_with("--http ") && e.contains("'reg:8081'")),
        "{e:?}"
    );
}
