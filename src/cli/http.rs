//! `morgue route --http URL`: each message is POSTed to an endpoint. The value is the
//! body; the key, topic, partition, offset, timestamp, attempt and headers go in
//! request headers (`morgue-key`, `morgue-topic`, …, `morgue-header-NAME`; a value
//! that is not printable ASCII is sent base64 under `…-base64`). 2xx is processed;
//! 408, 429, 5xx, a timeout or a connection error are retried (after `Retry-After`
//! when the endpoint sends one, at most [`MAX_RETRY_AFTER`]); any other status is bad
//! data, dead-lettered at once. Connections are kept alive and pooled; an `https` URL
//! can use its own CA and a client certificate. The endpoint's host is resolved at most
//! every [`RESOLVE_EVERY`]: ureq's resolver starts a thread per request when a timeout
//! is set, which cost more CPU than the request itself.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;

use super::exec::split_error;
use crate::engine::decoders::schemas::RegistryTls;
use crate::engine::route::router::{Incoming, ProcessError, Processor};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// The longest `Retry-After` honoured before a retry.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// How long a resolved address of the endpoint is used before resolving it again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(30);
/// How much of an error response's body is kept.
const BODY_KEEP: u64 = 64 * 1024;

/// POSTs each message to one URL.
pub struct HttpProcessor {
    url: String,
    agent: ureq::Agent,
}

impl HttpProcessor {
    /// A processor for `url`, giving up on a request after `timeout`; `tls` for https.
    pub fn new(url: &str, timeout: Duration, tls: &RegistryTls) -> Result<Self, String> {
        let tls = tls.config_for("--http endpoint")?;
        let agent = ureq::Agent::with_parts(
            ureq::Agent::config_builder()
                .tls_config(tls)
                .timeout_global(Some(timeout))
                .http_status_as_error(false)
                .max_idle_connections_per_host(64)
                .build(),
            DefaultConnector::new(),
            CachedResolver::default(),
        );
        Ok(HttpProcessor {
            url: url.to_string(),
            agent,
        })
    }
}

/// The last addresses resolved, with their `scheme://authority` and when.
type Resolved = Option<(String, Instant, ResolvedSocketAddrs)>;

/// ureq's resolver, asked at most every [`RESOLVE_EVERY`] per endpoint.
#[derive(Debug, Default)]
struct CachedResolver {
    last: Mutex<Resolved>,
}

impl Resolver for CachedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or_default(),
            uri.authority().map(|a| a.as_str()).unwrap_or_default()
        );
        if let Ok(last) = self.last.lock()
            && let Some((k, at, addrs)) = last.as_ref()
            && *k == key
            && at.elapsed() < RESOLVE_EVERY
        {
            return Ok(addrs.clone());
        }
        let addrs = DefaultResolver::default().resolve(uri, config, timeout)?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((key, Instant::now(), addrs.clone()));
        }
        Ok(addrs)
    }
}

/// A header value as sent: as it is when printable ASCII, else None (send it base64).
fn printable(v: &[u8]) -> Option<&str> {
    std::str::from_utf8(v)
        .ok()
        .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)))
}

/// `morgue-header-` + the name lower-cased, anything but letters, digits and `-` as `-`.
fn header_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("morgue-header-{clean}")
}

/// The request headers for `msg` at `attempt`.
fn request_headers(msg: &Incoming, attempt: u32) -> Vec<(String, String)> {
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let mut out = vec![
        ("morgue-topic".to_string(), msg.topic.clone()),
        ("morgue-partition".into(), msg.partition.to_string()),
        ("morgue-offset".into(), msg.offset.to_string()),
        ("morgue-attempt".into(), attempt.to_string()),
    ];
    if let Some(ts) = msg.timestamp_ms {
        out.push(("morgue-timestamp-ms".into(), ts.to_string()));
    }
    let mut put = |name: String, v: &[u8]| match printable(v) {
        Some(s) => out.push((name, s.to_string())),
        None => out.push((format!("{name}-base64"), b64(v))),
    };
    if let Some(k) = &msg.key {
        put("morgue-key".into(), k);
    }
    for h in msg.headers.iter() {
        if let Some(v) = &h.value {
            put(header_name(&h.name), v);
        }
    }
    out
}

/// What one request came to: processed, or a failure with how long to wait first.
type Sent = Result<(), (ProcessError, Option<Duration>)>;

fn send(agent: &ureq::Agent, url: &str, msg: &Incoming, attempt: u32) -> Sent {
    let mut req = agent.post(url);
    for (k, v) in request_headers(msg, attempt) {
        req = req.header(k, v);
    }
    let body = msg.value.clone().unwrap_or_default();
    let mut resp = match req.send(&body[..]) {
        Ok(r) => r,
        Err(e) => {
            let class = match e {
                ureq::Error::Timeout(_) => "http: timeout",
                _ => "http: unreachable",
            };
            return Err((
                ProcessError::new(class, format!("POST {url}: {e}"), None, true),
                None,
            ));
        }
    };
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        // Read to its end, so the connection goes back to the pool.
        let _ = resp.body_mut().with_config().limit(BODY_KEEP).read_to_vec();
        return Ok(());
    }
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
    let text = resp
        .body_mut()
        .with_config()
        .limit(BODY_KEEP)
        .read_to_string()
        .unwrap_or_default();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let (named, said) = split_error(first);
    let class = named.map_or_else(|| format!("http: {status}"), str::to_string);
    let message = if said.is_empty() {
        format!("POST {url} answered {status}")
    } else {
        format!(
            "{} (HTTP {status})",
            said.chars().take(500).collect::<String>()
        )
    };
    let retryable = matches!(status, 408 | 429) || status >= 500;
    let stack = (!text.trim().is_empty()).then(|| super::exec::tail(&text, 4096));
    Err((
        ProcessError::new(class, message, stack, retryable),
        retry_after,
    ))
}

#[async_trait]
impl Processor for HttpProcessor {
    async fn process(&self, msg: &Incoming, attempt: u32) -> Result<(), ProcessError> {
        let (agent, url, m) = (self.agent.clone(), self.url.clone(), msg.clone());
        let sent = tokio::task::spawn_blocking(move || send(&agent, &url, &m, attempt))
            .await
            .map_err(|e| ProcessError::new("http: task", e.to_string(), None, true))?;
        match sent {
            Ok(()) => Ok(()),
            Err((e, Some(wait))) if e.retryable => {
                // The endpoint said when to come back: wait that long before the
                // router's own backoff (the stop still interrupts it).
                tokio::time::sleep(wait).await;
                Err(e)
            }
            Err((e, _)) => Err(e),
        }
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
