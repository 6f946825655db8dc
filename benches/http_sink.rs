//! The endpoint of `scripts/bench_router.sh`'s `--http` runs: answers every POST with
//! 200 at once, keeping connections alive, on one thread (tokio's current-thread
//! runtime), so that the benchmark measures the router and its peer rather than the
//! endpoint. Every 1000th request it appends `count unix-seconds` to the marks file.
//!   http_sink PORT MARKS_FILE

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";

static SEEN: AtomicU64 = AtomicU64::new(0);

/// The length of the first whole request in `buf`, if it holds one.
fn whole_request(buf: &[u8]) -> Option<usize> {
    let end = memchr::memmem::find(buf, b"\r\n\r\n")?;
    let mut length = 0;
    for line in buf[..end].split(|b| *b == b'\n') {
        let line = std::str::from_utf8(line).unwrap_or("").trim();
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    (buf.len() >= end + 4 + length).then_some(end + 4 + length)
}

fn mark(path: &str, n: u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{n} {now:.4}");
    }
}

async fn serve(mut sock: tokio::net::TcpStream, marks: &'static str) {
    let _ = sock.set_nodelay(true);
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut answers = 0;
        while let Some(len) = whole_request(&buf) {
            buf.drain(..len);
            answers += 1;
            let n = SEEN.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(1000) {
                mark(marks, n);
            }
        }
        if answers > 0 && sock.write_all(&OK.repeat(answers)).await.is_err() {
            return;
        }
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(port), Some(marks)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: http_sink PORT MARKS_FILE");
        std::process::exit(2);
    };
    let marks: &'static str = Box::leak(marks.clone().into_boxed_str());
    let addr = format!("127.0.0.1:{port}");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            loop {
                let (sock, _) = listener.accept().await?;
                tokio::spawn(serve(sock, marks));
            }
        })
}
