//! The HTTP/1.1 client of `route --http`: one endpoint, its keep-alive connections
//! pooled (one per request in flight, kept for the next), over TCP or TLS (rustls, the
//! built-in roots or the endpoint's own CA, and a client certificate when asked).
//! Requests run as futures on the router's runtime (hyper's connection API), so a
//! message costs no thread hand-off. A request that fails on a pooled connection the
//! endpoint had already closed is sent once more on a new one. The endpoint's host is
//! resolved at most every [`RESOLVE_EVERY`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, HOST, HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::engine::decoders::schemas::RegistryTls;
use crate::engine::model::urls;

/// How long a resolved address of the endpoint is used before resolving it again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);
/// How much of a response's body is kept (the rest is read and dropped).
pub const BODY_KEEP: usize = 64 * 1024;
/// Idle connections kept at most.
const MAX_IDLE: usize = 256;

/// A pooled connection's sending half.
type Sender = SendRequest<Full<Bytes>>;

/// What the endpoint answered.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<String>,
    /// The body's first [`BODY_KEEP`] bytes.
    pub body: Vec<u8>,
}

/// Why no answer came.
#[derive(Debug, PartialEq)]
pub enum Failed {
    /// No answer within the timeout.
    Timeout,
    /// No connection, or it broke: the line says where and why.
    Unreachable(String),
}

/// Where requests go.
#[derive(Debug)]
struct Target {
    /// The URL as given, for messages (without its user info).
    shown: String,
    https: bool,
    /// The host, without an IPv6 literal's brackets.
    host: String,
    port: u16,
    /// The `Host` header.
    authority: HeaderValue,
    /// The request target: path and query.
    path: String,
    /// `Authorization: Basic …` from the URL's user info.
    basic: Option<HeaderValue>,
}

/// POSTs to one URL over pooled keep-alive connections.
pub struct Client {
    target: Target,
    tls: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Vec<Sender>>,
    resolved: Mutex<Option<(Instant, Vec<SocketAddr>)>>,
}

impl Client {
    /// A client of `url` (`http://` or `https://`, user info for basic auth); `tls`
    /// for https. The error quotes the bad URL or names the bad file.
    pub fn new(url: &str, tls: &RegistryTls) -> Result<Client, String> {
        let target = target(url)?;
        let tls = if target.https {
            Some(tokio_rustls::TlsConnector::from(Arc::new(rustls_config(
                tls,
                "--http endpoint",
            )?)))
        } else {
            None
        };
        Ok(Client {
            target,
            tls,
            idle: Mutex::default(),
            resolved: Mutex::default(),
        })
    }

    /// The URL requests go to, as shown in messages.
    pub fn url(&self) -> &str {
        &self.target.shown
    }

    /// POSTs `body` with `headers` (names and values already valid), giving up after
    /// `timeout`.
    pub async fn post(
        &self,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, Failed> {
        match tokio::time::timeout(timeout, self.exchange(headers, body)).await {
            Ok(answer) => answer,
            Err(_) => Err(Failed::Timeout),
        }
    }

    async fn exchange(&self, headers: &[(String, String)], body: Bytes) -> Result<Answer, Failed> {
        loop {
            let (mut sender, pooled) = match self.pooled().await {
                Some(s) => (s, true),
                None => (self.connect().await?, false),
            };
            let resp = match sender
                .send_request(self.request(headers, body.clone())?)
                .await
            {
                Ok(r) => r,
                // A pooled connection the endpoint had closed while it was idle: the
                // request goes once more on a new one (at least once, as any retry).
                Err(e) if pooled && (e.is_canceled() || e.is_incomplete_message()) => continue,
                Err(e) => return Err(self.unreachable(&e)),
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut stream = resp.into_body();
            let mut kept = Vec::new();
            let mut whole = true;
            while let Some(frame) = stream.frame().await {
                let Ok(frame) = frame else {
                    whole = false;
                    break;
                };
                if let Ok(data) = frame.into_data() {
                    let room = BODY_KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            if whole {
                self.give_back(sender);
            }
            return Ok(Answer {
                status,
                retry_after,
                body: kept,
            });
        }
    }

    /// The request for `headers` and `body`.
    fn request(
        &self,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, Failed> {
        let t = &self.target;
        let mut req = Request::post(t.path.as_str()).header(HOST, t.authority.clone());
        if let Some(auth) = &t.basic {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes());
            let value = HeaderValue::from_str(v);
            if let (Ok(name), Ok(value)) = (name, value) {
                req = req.header(name, value);
            }
        }
        req.body(Full::new(body))
            .map_err(|e| Failed::Unreachable(format!("POST {}: {e}", t.shown)))
    }

    /// An idle connection that is still open, if any.
    async fn pooled(&self) -> Option<Sender> {
        loop {
            let mut s = self.idle.lock().ok()?.pop()?;
            if !s.is_closed() && s.ready().await.is_ok() {
                return Some(s);
            }
        }
    }

    fn give_back(&self, sender: Sender) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(sender);
        }
    }

    /// A new connection (TLS for https), its driving task spawned.
    async fn connect(&self) -> Result<Sender, Failed> {
        let t = &self.target;
        let mut last = None;
        let mut tcp = None;
        for addr in self.resolve().await? {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(format!("connect {addr}: {e}")),
            }
        }
        let Some(tcp) = tcp else {
            let why = last.unwrap_or_else(|| format!("{}: no address", t.host));
            return Err(Failed::Unreachable(format!("POST {}: {why}", t.shown)));
        };
        // Nagle left on only adds latency to a request; the connection still works.
        let _ = tcp.set_nodelay(true);
        let handshaken = match &self.tls {
            None => handshake(tcp).await,
            Some(tls) => {
                let name = ServerName::try_from(t.host.clone()).map_err(|e| {
                    Failed::Unreachable(format!("POST {}: host '{}': {e}", t.shown, t.host))
                })?;
                let stream = tls.connect(name, tcp).await.map_err(|e| {
                    Failed::Unreachable(format!("POST {}: TLS handshake: {e}", t.shown))
                })?;
                handshake(stream).await
            }
        };
        handshaken.map_err(|e| self.unreachable(&e))
    }

    /// The endpoint's addresses, resolved again after [`RESOLVE_EVERY`].
    async fn resolve(&self) -> Result<Vec<SocketAddr>, Failed> {
        if let Ok(last) = self.resolved.lock()
            && let Some((at, addrs)) = last.as_ref()
            && at.elapsed() < RESOLVE_EVERY
        {
            return Ok(addrs.clone());
        }
        let t = &self.target;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| Failed::Unreachable(format!("POST {}: resolve {}: {e}", t.shown, t.host)))?
            .collect();
        if let Ok(mut last) = self.resolved.lock() {
            *last = Some((Instant::now(), addrs.clone()));
        }
        Ok(addrs)
    }

    fn unreachable(&self, e: &hyper::Error) -> Failed {
        let cause = std::error::Error::source(e).map(|s| format!(": {s}"));
        Failed::Unreachable(format!(
            "POST {}: {e}{}",
            self.target.shown,
            cause.unwrap_or_default()
        ))
    }
}

/// An HTTP/1.1 connection over `io`, its driving task spawned.
async fn handshake<S>(io: S) -> hyper::Result<Sender>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        // A broken connection surfaces as the error of the request sent on it.
        let _ = conn.await;
    });
    Ok(sender)
}

/// The target of `url`; the error quotes it.
fn target(url: &str) -> Result<Target, String> {
    parse_url(url).map_err(|e| format!("--http {e}"))
}

/// Checks that `url` is an `http://` or `https://` URL with a host (user info
/// allowed); the error quotes the URL (its password hidden): `'ftp://h/': not an
/// http:// or https:// URL`.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    parse_url(url).map(|_| ())
}

fn parse_url(url: &str) -> Result<Target, String> {
    let parsed = urls::parse_http(url)?;
    let bad = |why: &str| format!("'{}': {why}", urls::redact(url));
    let https = parsed.scheme() == "https";
    let raw_host = parsed.host_str().unwrap_or_default();
    let hostport = match parsed.port() {
        Some(port) => format!("{raw_host}:{port}"),
        None => raw_host.to_string(),
    };
    let host = raw_host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let basic = urls::basic_auth(&parsed).map(|b| HeaderValue::from_str(&b));
    let basic = basic.transpose().map_err(|_| bad("bad user info"))?;
    let path = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let scheme = parsed.scheme();
    Ok(Target {
        shown: format!("{scheme}://{hostport}{path}"),
        https,
        host: host.to_string(),
        port,
        authority: HeaderValue::from_str(&hostport).map_err(|_| bad("bad host"))?,
        path,
        basic,
    })
}

/// The rustls settings of `tls` for a client of `who`; the error names `who` and the
/// file.
pub fn rustls_config(tls: &RegistryTls, who: &str) -> Result<rustls::ClientConfig, String> {
    let read = |what: &str, p: &std::path::Path| {
        std::fs::read(p).map_err(|e| format!("{who} {what} '{}': {e}", p.display()))
    };
    let certs = |what: &str, p: &std::path::Path| -> Result<Vec<CertificateDer<'static>>, String> {
        let all: Vec<_> = CertificateDer::pem_slice_iter(&read(what, p)?)
            .filter_map(Result::ok)
            .collect();
        if all.is_empty() {
            return Err(format!(
                "{who} {what} '{}': no PEM certificate in it",
                p.display()
            ));
        }
        Ok(all)
    };
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca {
        Some(ca) => {
            for c in certs("CA", ca)? {
                roots
                    .add(c)
                    .map_err(|e| format!("{who} CA '{}': {e}", ca.display()))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{who}: {e}"))?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = certs("certificate", cert)?;
            let k = PrivateKeyDer::from_pem_slice(&read("key", key)?)
                .map_err(|e| format!("{who} key '{}': {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, k)
                .map_err(|e| format!("{who} certificate '{}': {e}", cert.display()))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(format!(
                "a {who} client certificate needs both its certificate and its key"
            ));
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
#[path = "http_client_tests.rs"]
mod tests;
