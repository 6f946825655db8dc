//! `morgue route --http URL`: each message is POSTed to an endpoint. The value is the
//! body; the key, topic, partition, offset, timestamp, attempt and headers go in
//! request headers (`morgue-key`, `morgue-topic`, …, `morgue-header-NAME`; a value
//! that is not printable ASCII is sent base64 under `…-base64`). 2xx is processed;
//! 408, 429, 5xx, a timeout or a connection error are retried (after `Retry-After`
//! when the endpoint sends one, at most [`MAX_RETRY_AFTER`]); any other status is bad
//! data, dead-lettered at once. Connections are kept alive and pooled, and an `https`
//! URL can use its own CA and a client certificate (see `engine::http`).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;

use super::exec::split_error;
use crate::engine::http::TlsFiles;
use crate::engine::http::{Answer, Client, Failed};
use crate::engine::route::router::{Incoming, ProcessError, Processor};

/// The longest `Retry-After` honoured before a retry.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// POSTs each message to one URL.
pub struct HttpProcessor {
    client: Client,
    timeout: Duration,
}

impl HttpProcessor {
    /// A processor for `url`, giving up on a request after `timeout`; `tls` for https.
    pub fn new(url: &str, timeout: Duration, tls: &TlsFiles) -> Result<Self, String> {
        Ok(HttpProcessor {
            client: Client::new(url, tls, "--http")?,
            timeout,
        })
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

/// What one answer means: processed, or a failure with how long to wait first.
fn outcome(url: &str, answer: Answer) -> Result<(), (ProcessError, Option<Duration>)> {
    let status = answer.status;
    if (200..300).contains(&status) {
        return Ok(());
    }
    let retry_after = answer
        .retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
    let text = String::from_utf8_lossy(&answer.body);
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
        let body = bytes::Bytes::from(msg.value.clone().unwrap_or_default());
        let headers = request_headers(msg, attempt);
        let url = self.client.url();
        let answer = match self.client.post(&headers, body, self.timeout).await {
            Ok(a) => a,
            Err(Failed::Timeout) => {
                let why = format!("POST {url}: no answer in {:?}", self.timeout);
                return Err(ProcessError::new("http: timeout", why, None, true));
            }
            Err(Failed::Unreachable(why)) => {
                return Err(ProcessError::new("http: unreachable", why, None, true));
            }
        };
        match outcome(url, answer) {
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
