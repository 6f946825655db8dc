//! morgue's one HTTP/1.1 client, for `route --http` (POSTs to one endpoint) and the
//! schema registry (GETs of JSON under its base URL): one server, its keep-alive
//! connections pooled (one per request in flight, kept for the next), over TCP or TLS
//! with the one TLS builder ([`rustls_config`]: rustls, the built-in roots or the
//! server's own CA, and a client certificate when asked, from [`TlsFiles`]). Basic auth
//! comes from the URL's user info, percent-decoded (`urls`). The URL given is the
//! server's: proxy variables are not read and redirects not followed (a 3xx says so),
//! as librdkafka reaches the brokers. Requests run as futures
//! on the caller's runtime (hyper's connection API), so a message costs no thread
//! hand-off. A request that fails on a pooled connection the server had already
//! closed is sent once more on a new one. The host is resolved at most every
//! [`RESOLVE_EVERY`].

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

use crate::engine::model::urls;

/// PEM files for an `https` server: the schema registry (`--schema-registry-ca` …) or
/// the `--http` endpoint (`--http-ca` …).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// The CA certificates to trust instead of the built-in roots.
    pub ca: Option<std::path::PathBuf>,
    /// A client certificate (chain), when the server asks for one.
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's private key.
    pub key: Option<std::path::PathBuf>,
}

/// How long a resolved address of the endpoint is used before resolving it again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);
/// How much of an endpoint's answer to a POST is kept (the rest is read and dropped).
pub const BODY_KEEP: usize = 64 * 1024;
/// How much of an answer to a GET is read at most (a schema with its references).
const GET_MAX: usize = 16 << 20;
/// Idle connections kept at most.
const MAX_IDLE: usize = 256;

/// A connection: its sending half, and the task driving it (whose error says why a
/// connection broke, a TLS alert after the handshake for one: the request's own error
/// says only that it was cancelled).
struct Sender {
    send: SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<hyper::Result<()>>,
}

/// What the endpoint answered.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<String>,
    /// The body's first [`BODY_KEEP`] bytes (a GET's: up to 16 MiB).
    pub body: Vec<u8>,
    /// The body was longer than what was kept.
    pub cut: bool,
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
    /// The URL GETs are under, for messages (no user info, query or trailing `/`).
    base_shown: String,
    https: bool,
    /// The host, without an IPv6 literal's brackets.
    host: String,
    port: u16,
    /// The `Host` header.
    authority: HeaderValue,
    /// The request target of a POST: path and query.
    path: String,
    /// The path GETs are under (no trailing `/`).
    base: String,
    /// `Authorization: Basic …` from the URL's user info.
    basic: Option<HeaderValue>,
}

/// Requests to one server over pooled keep-alive connections.
pub struct Client {
    target: Target,
    tls: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<Vec<Sender>>,
    resolved: Mutex<Option<(Instant, Vec<SocketAddr>)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.target.shown)
            .finish()
    }
}

impl Client {
    /// A client of `url` (`http://` or `https://`, user info for basic auth); `tls`
    /// for https. The error starts with `who` (`--http`, `schema registry`) and quotes
    /// the bad URL or names the bad file.
    pub fn new(url: &str, tls: &TlsFiles, who: &str) -> Result<Client, String> {
        let target = parse_url(url).map_err(|e| format!("{who} {e}"))?;
        let tls = if target.https {
            Some(tokio_rustls::TlsConnector::from(Arc::new(rustls_config(
                tls, who,
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

    /// The URL GETs are under, as shown in messages (no query or trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.target.base_shown
    }

    /// POSTs `body` with `headers` (names and values already valid) to the URL,
    /// giving up after `timeout`; keeps the answer's first [`BODY_KEEP`] bytes.
    pub async fn post(
        &self,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, Failed> {
        let t = &self.target;
        let label = format!("POST {}", t.shown);
        let make = || {
            let req = Request::post(t.path.as_str());
            self.request(req, &label, headers, body.clone())
        };
        match tokio::time::timeout(timeout, self.exchange(make, BODY_KEEP, &label)).await {
            Ok(answer) => answer,
            Err(_) => Err(Failed::Timeout),
        }
    }

    /// GETs `path` under the URL's path as JSON (`accept` its media types), giving up
    /// after `timeout`. The error names the URL (never a password) and the status.
    pub async fn get_json(
        &self,
        path: &str,
        accept: &str,
        timeout: Duration,
    ) -> Result<serde_json::Value, String> {
        let full = format!("{}{path}", self.target.base);
        let shown = format!("{}{path}", self.target.base_shown);
        let label = format!("GET {shown}");
        let headers = [("Accept".to_string(), accept.to_string())];
        let make = || {
            let req = Request::get(full.as_str());
            self.request(req, &label, &headers, Bytes::new())
        };
        let answer = match tokio::time::timeout(timeout, self.exchange(make, GET_MAX, &label)).await
        {
            Ok(Ok(a)) => a,
            Ok(Err(Failed::Unreachable(why))) => return Err(why),
            Ok(Err(Failed::Timeout)) | Err(_) => {
                return Err(format!("{shown}: no answer within {}s", timeout.as_secs()));
            }
        };
        match answer.status {
            200..=299 if answer.cut => Err(format!(
                "{shown}: the answer is larger than {} MiB",
                GET_MAX >> 20
            )),
            200..=299 => serde_json::from_slice(&answer.body).map_err(|e| format!("{shown}: {e}")),
            // Redirects are not followed (nor proxies used): the URL given is the server's.
            300..=399 => Err(format!(
                "{shown}: {} (a redirect; give the URL it points to)",
                answer.status
            )),
            status => Err(format!("{shown}: {status}")),
        }
    }

    /// Sends the request `make` builds (again on a new connection when a pooled one
    /// turns out closed), keeping the answer's first `keep` bytes; failures start with
    /// `label` (`POST http://…`).
    async fn exchange(
        &self,
        make: impl Fn() -> Result<Request<Full<Bytes>>, Failed>,
        keep: usize,
        label: &str,
    ) -> Result<Answer, Failed> {
        loop {
            let (mut sender, pooled) = match self.pooled().await {
                Some(s) => (s, true),
                None => (self.connect(label).await?, false),
            };
            let resp = match sender.send.send_request(make()?).await {
                Ok(r) => r,
                // A pooled connection the endpoint had closed while it was idle: the
                // request goes once more on a new one (at least once, as any retry).
                Err(e) if pooled && (e.is_canceled() || e.is_incomplete_message()) => continue,
                Err(e) => return Err(broken(label, &e, sender.task).await),
            };
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut stream = resp.into_body();
            let mut kept = Vec::new();
            let (mut whole, mut cut) = (true, false);
            while let Some(frame) = stream.frame().await {
                let Ok(frame) = frame else {
                    whole = false;
                    break;
                };
                if let Ok(data) = frame.into_data() {
                    let room = keep.saturating_sub(kept.len());
                    cut |= data.len() > room;
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
                cut,
            });
        }
    }

    /// `req` with the host, basic auth, `headers` and `body`; an error starts with `label`.
    fn request(
        &self,
        req: hyper::http::request::Builder,
        label: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, Failed> {
        let t = &self.target;
        let mut req = req.header(HOST, t.authority.clone());
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
            .map_err(|e| Failed::Unreachable(format!("{label}: {e}")))
    }

    /// An idle connection that is still open, if any.
    async fn pooled(&self) -> Option<Sender> {
        loop {
            let mut s = self.idle.lock().ok()?.pop()?;
            if !s.send.is_closed() && s.send.ready().await.is_ok() {
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
    async fn connect(&self, label: &str) -> Result<Sender, Failed> {
        let t = &self.target;
        let mut last = None;
        let mut tcp = None;
        for addr in self.resolve(label).await? {
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
            return Err(Failed::Unreachable(format!("{label}: {why}")));
        };
        // Nagle left on only adds latency to a request; the connection still works.
        let _ = tcp.set_nodelay(true);
        let handshaken = match &self.tls {
            None => handshake(tcp).await,
            Some(tls) => {
                let name = ServerName::try_from(t.host.clone())
                    .map_err(|e| Failed::Unreachable(format!("{label}: host '{}': {e}", t.host)))?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|e| Failed::Unreachable(format!("{label}: TLS handshake: {e}")))?;
                handshake(stream).await
            }
        };
        handshaken.map_err(|e| unreachable(label, &e))
    }

    /// The endpoint's addresses, resolved again after [`RESOLVE_EVERY`].
    async fn resolve(&self, label: &str) -> Result<Vec<SocketAddr>, Failed> {
        if let Ok(last) = self.resolved.lock()
            && let Some((at, addrs)) = last.as_ref()
            && at.elapsed() < RESOLVE_EVERY
        {
            return Ok(addrs.clone());
        }
        let t = &self.target;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| Failed::Unreachable(format!("{label}: resolve {}: {e}", t.host)))?
            .collect();
        if let Ok(mut last) = self.resolved.lock() {
            *last = Some((Instant::now(), addrs.clone()));
        }
        Ok(addrs)
    }
}

/// A request that broke on its connection, as `label: why: cause: its cause…` (a
/// TLS alert sits at the end of that chain).
fn unreachable(label: &str, e: &hyper::Error) -> Failed {
    let mut line = format!("{label}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let said = c.to_string();
        if !line.contains(&said) {
            line.push_str(": ");
            line.push_str(&said);
        }
        cause = c.source();
    }
    Failed::Unreachable(line)
}

/// A request that broke (`e`), said with its connection's own error when the
/// connection's task ended with one: a server that refuses a TLS client after the
/// handshake (TLS 1.3 checks the client certificate then) is named by its alert.
async fn broken(
    label: &str,
    e: &hyper::Error,
    task: tokio::task::JoinHandle<hyper::Result<()>>,
) -> Failed {
    if e.is_canceled()
        && let Ok(Ok(Err(conn))) = tokio::time::timeout(Duration::from_secs(1), task).await
    {
        return unreachable(label, &conn);
    }
    unreachable(label, e)
}

/// An HTTP/1.1 connection over `io`, its driving task spawned.
async fn handshake<S>(io: S) -> hyper::Result<Sender>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // A broken connection surfaces as the error of the request sent on it (and this
    // task's result says why, see `broken`).
    let task = tokio::spawn(conn);
    Ok(Sender { send, task })
}

/// Checks that `url` is an `http://` or `https://` URL with a host (user info
/// allowed); the error quotes the URL (its password hidden): `'ftp://h/': not an
/// http:// or https:// URL`.
pub fn check_url(url: &str) -> Result<(), String> {
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
    let base = parsed.path().trim_end_matches('/').to_string();
    Ok(Target {
        shown: format!("{scheme}://{hostport}{path}"),
        base_shown: format!("{scheme}://{hostport}{base}"),
        base,
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
pub fn rustls_config(tls: &TlsFiles, who: &str) -> Result<rustls::ClientConfig, String> {
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
#[path = "http_tests.rs"]
mod tests;
