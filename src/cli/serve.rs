//! A very small HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`: GET only,
//! one response per connection, no TLS (bind it to loopback or a private network).
//! Enough for Prometheus and a Kubernetes or systemd probe, without a web framework.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An answer: status, content type, body.
pub type Answer = (u16, &'static str, String);

/// The Prometheus text format's content type.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The address `addr` names (`127.0.0.1:9464`, `[::1]:9464`, `:9464` for every
/// interface; port 0 is refused: nobody could find the port chosen); the error quotes it.
pub fn listen_addr(addr: &str) -> Result<SocketAddr, String> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse::<SocketAddr>()
        .ok()
        .filter(|a| a.port() != 0)
        .ok_or_else(|| {
            format!(
                "expected an address to listen on (HOST:PORT or :PORT, port from 1), got '{addr}'"
            )
        })
}

/// Binds `addr` (see [`listen_addr`]) or says why not.
pub async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let parsed = listen_addr(addr).map_err(anyhow::Error::msg)?;
    TcpListener::bind(parsed)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on '{addr}': {e}"))
}

/// Serves `answer(path)` on `listener` until the task is dropped.
pub async fn serve<F, Fut>(listener: TcpListener, answer: F)
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Answer> + Send,
{
    let answer = Arc::new(answer);
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let answer = answer.clone();
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            let mut chunk = [0u8; 1024];
            // The request head, at most 8 KiB.
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf);
            let mut words = head.split_whitespace();
            let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let path = target.split('?').next().unwrap_or("").to_string();
            let (status, kind, body) = if method != "GET" && method != "HEAD" {
                (
                    405,
                    "text/plain",
                    format!("'{method}' is not allowed: GET only\n"),
                )
            } else {
                answer(path).await
            };
            let reason = match status {
                200 => "OK",
                404 => "Not Found",
                405 => "Method Not Allowed",
                503 => "Service Unavailable",
                _ => "",
            };
            let body = if method == "HEAD" {
                String::new()
            } else {
                body
            };
            let response = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            // The scraper hung up: there is no one left to answer.
            let _ = sock.write_all(response.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

/// The usual answer to a path nothing serves.
pub fn not_found(path: &str) -> Answer {
    (
        404,
        "text/plain",
        format!("'{path}': nothing here; try /metrics, /healthz, /readyz\n"),
    )
}
