//! The HTTP processor against a real local HTTP server (a few lines of tokio): what is
//! sent, and what each status means.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::HttpProcessor;
use crate::engine::Headers;
use crate::engine::http::TlsFiles;
use crate::engine::route::router::{Incoming, Processor};

/// Requests seen: head and body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Serves on a loopback port: `/ok` 200, `/bad` 400, `/busy` 503 with `Retry-After: 1`,
/// `/slow` after 3 s. Keeps each request's head and body.
async fn server() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let keep = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                while buf.len() < end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                keep.lock().unwrap().push((head, buf[end..].to_vec()));
                let (status, extra, body) = match path.as_str() {
                    "/ok" => ("200 OK", "", ""),
                    "/bad" => (
                        "400 Bad Request",
                        "",
                        "ValueError: price must be positive\n",
                    ),
                    "/busy" => (
                        "503 Service Unavailable",
                        "Retry-After: 1\r\n",
                        "overloaded",
                    ),
                    _ => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        ("200 OK", "", "")
                    }
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (base, seen)
}

fn msg() -> Incoming {
    let mut h = Headers::default();
    h.push("traceparent", "00-abc-01");
    h.0.push(crate::engine::Header {
        name: "binary id".into(),
        value: Some(vec![0, 1, 2]),
    });
    Incoming {
        topic: "trades".into(),
        partition: 2,
        offset: 41,
        timestamp_ms: Some(1_795_000_000_000),
        key: Some(b"6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b".to_vec()),
        value: Some(b"{\"price\":-1}".to_vec()),
        headers: h,
    }
}

fn processor(url: &str, timeout: Duration) -> HttpProcessor {
    HttpProcessor::new(url, timeout, &TlsFiles::default()).unwrap()
}

#[tokio::test]
async fn the_value_is_the_body_and_the_context_goes_in_headers() {
    let (base, seen) = server().await;
    let p = processor(&format!("{base}/ok"), Duration::from_secs(5));
    assert_eq!(p.process(&msg(), 2).await, Ok(()));
    let (head, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(body, b"{\"price\":-1}");
    let head = head.to_ascii_lowercase();
    for want in [
        "post /ok http/1.1",
        "morgue-topic: trades",
        "morgue-partition: 2",
        "morgue-offset: 41",
        "morgue-attempt: 2",
        "morgue-timestamp-ms: 1795000000000",
        "morgue-key: 6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b",
        "morgue-header-traceparent: 00-abc-01",
        "morgue-header-binary-id-base64: aaec",
    ] {
        assert!(head.contains(want), "{want} in {head}");
    }
}

#[tokio::test]
async fn statuses_decide_retrying_and_retry_after_is_honoured() {
    let (base, _) = server().await;
    let e = processor(&format!("{base}/bad"), Duration::from_secs(5))
        .process(&msg(), 1)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class.as_str(), e.retryable),
        ("ValueError", false),
        "{e:?}"
    );
    assert_eq!(e.message, "price must be positive (HTTP 400)");
    let started = Instant::now();
    let e = processor(&format!("{base}/busy"), Duration::from_secs(5))
        .process(&msg(), 1)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class.as_str(), e.retryable),
        ("http: 503", true),
        "{e:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for Retry-After"
    );
    let e = processor(&format!("{base}/slow"), Duration::from_millis(500))
        .process(&msg(), 1)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class.as_str(), e.retryable),
        ("http: timeout", true),
        "{e:?}"
    );
    let e = processor("http://127.0.0.1:1/ok", Duration::from_secs(2))
        .process(&msg(), 1)
        .await
        .unwrap_err();
    assert_eq!(
        (e.class.as_str(), e.retryable),
        ("http: unreachable", true),
        "{e:?}"
    );
    assert!(e.message.contains("127.0.0.1:1"), "{e:?}");
}
