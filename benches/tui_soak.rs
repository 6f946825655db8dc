//! The TUI following a DLQ that fills fast; prints figures, asserts nothing.
//!
//!   cargo bench --bench tui_soak -- BROKERS [RATE] [SECONDS]
//!
//! Creates a 4-partition DLQ topic and produces RATE letters/s (default 10,000) into
//! it for SECONDS (default 60): Spring DLT headers, 36-character keys, ~500-byte JSON.
//! Meanwhile the TUI's own loop (`tui::runner::run_on`) follows the topic live on a
//! 200×50 `TestBackend`, and a key (down / page down / filter-free moves) is pressed
//! every 100 ms. Prints, every 10 s and at the end: letters produced and loaded,
//! resident memory and its growth per loaded letter, and keypress→frame latency
//! (the key read by the loop → the next frame flushed), p50/p99/max.
#![allow(clippy::unwrap_used)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use morgue::backends::kafka::KafkaConfig;
use morgue::backends::open::{Dlq, Target};
use morgue::engine::write::audit::AuditLog;
use morgue::tui::console::Console;
use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tokio::sync::mpsc;

/// When each key was handed to the loop, and when each frame after it was flushed.
#[derive(Default)]
struct Clock {
    waiting: Option<Instant>,
    latencies: Vec<f64>,
    /// The top line of the last frame (the DLQ and its letter count).
    top: String,
}

/// TestBackend never fails; the loop wants `io::Error`.
fn ok<T>(r: Result<T, std::convert::Infallible>) -> std::io::Result<T> {
    Ok(r.unwrap_or_else(|e| match e {}))
}

/// A TestBackend that reports each flushed frame to the clock.
struct Timed {
    inner: TestBackend,
    clock: Arc<Mutex<Clock>>,
}

impl Backend for Timed {
    type Error = std::io::Error;
    fn draw<'a, I: Iterator<Item = (u16, u16, &'a Cell)>>(
        &mut self,
        c: I,
    ) -> Result<(), Self::Error> {
        ok(self.inner.draw(c))
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        ok(self.inner.hide_cursor())
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        ok(self.inner.show_cursor())
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        ok(self.inner.get_cursor_position())
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> Result<(), Self::Error> {
        ok(self.inner.set_cursor_position(p))
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        ok(self.inner.clear())
    }
    fn clear_region(&mut self, t: ClearType) -> Result<(), Self::Error> {
        ok(self.inner.clear_region(t))
    }
    fn size(&self) -> Result<Size, Self::Error> {
        ok(self.inner.size())
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        ok(self.inner.window_size())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        let mut c = self.clock.lock().unwrap();
        if let Some(t) = c.waiting.take() {
            c.latencies.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let b = self.inner.buffer();
        c.top = (0..b.area.width)
            .map(|x| b[(x, 0)].symbol())
            .collect::<String>()
            .trim_end()
            .to_string();
        ok(self.inner.flush())
    }
}

/// Keys come from a channel; each is stamped as the loop reads it.
struct Soak {
    keys: Option<mpsc::Receiver<Event>>,
    clock: Arc<Mutex<Clock>>,
}

impl Console for Soak {
    type Backend = Timed;
    type Input = futures::stream::BoxStream<'static, std::io::Result<Event>>;

    fn open(&mut self) -> anyhow::Result<(Terminal<Timed>, Self::Input)> {
        let backend = Timed {
            inner: TestBackend::new(200, 50),
            clock: self.clock.clone(),
        };
        let mut keys = self.keys.take().expect("opened once: the soak never edits");
        let clock = self.clock.clone();
        let input = async_stream(move || {
            let ev = keys.blocking_recv()?;
            clock.lock().unwrap().waiting.get_or_insert(Instant::now());
            Some(Ok(ev))
        });
        Ok((Terminal::new(backend)?, input))
    }

    fn edit(&mut self, _: &str, _: bool) -> anyhow::Result<Result<String, String>> {
        Ok(Err("no editor in the soak".into()))
    }
}

/// A stream over a blocking source, read on a blocking thread.
fn async_stream<T: Send + 'static>(
    mut next: impl FnMut() -> Option<T> + Send + 'static,
) -> futures::stream::BoxStream<'static, T> {
    let (tx, rx) = mpsc::channel(1);
    std::thread::spawn(move || {
        while let Some(v) = next() {
            if tx.blocking_send(v).is_err() {
                break;
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| (v, rx))
    }))
}

fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / 1e6
}

fn pcts(v: &[f64]) -> String {
    let mut v = v.to_vec();
    if v.is_empty() {
        return "no frames".into();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} keys)",
        at(0.5),
        at(0.99),
        v[v.len() - 1],
        v.len()
    )
}

/// Produces `rate` letters/s to `topic` for `secs` (run in a child process, so its
/// buffers stay out of the TUI's resident memory); prints how many.
fn produce(brokers: &str, topic: &str, rate: u64, secs: u64) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while i < due {
            let key = format!("{i:08}-0000-4000-8000-{i:012}");
            let value = format!(
                r#"{{"order_id":"{key}","customer":"c-{}","amount":{}.{:02},"currency":"EUR","items":[{{"sku":"SKU-{}","qty":{}}}],"note":"{}"}}"#,
                i % 9973,
                i % 5000,
                i % 100,
                i % 777,
                1 + i % 5,
                "x".repeat(300)
            );
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "kafka_dlt-original-topic",
                    value: Some("orders"),
                })
                .insert(Header {
                    key: "kafka_dlt-original-partition",
                    value: Some(&(i % 6).to_string()),
                })
                .insert(Header {
                    key: "kafka_dlt-original-offset",
                    value: Some(&i.to_string()),
                })
                .insert(Header {
                    key: "kafka_dlt-exception-fqcn",
                    value: Some("com.acme.ValidationException"),
                })
                .insert(Header {
                    key: "kafka_dlt-exception-message",
                    value: Some("amount must be positive"),
                })
                .insert(Header {
                    key: "kafka_dlt-original-timestamp",
                    value: Some("1795000000000"),
                });
            let rec = BaseRecord::to(topic)
                .key(&key)
                .payload(&value)
                .headers(headers);
            if p.send(rec).is_err() {
                break; // queue full: catch up next round
            }
            i += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    p.flush(Duration::from_secs(30)).unwrap();
    println!("{i}");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("produce") {
        let n = |i: usize| args[i].parse().unwrap();
        return produce(&args[1], &args[2], n(3), n(4));
    }
    let brokers = args
        .first()
        .cloned()
        .or_else(|| std::env::var("MORGUE_TEST_KAFKA").ok())
        .expect("usage: tui_soak BROKERS [RATE] [SECONDS]");
    let rate: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let topic = format!("soak-{}", std::process::id());
    rt.block_on(async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .unwrap();
        let t = NewTopic::new(&topic, 4, TopicReplication::Fixed(1));
        admin
            .create_topics([&t], &AdminOptions::new())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let audit = std::env::temp_dir().join(format!("soak-audit-{}.jsonl", std::process::id()));
    let target = Target {
        profile: None,
        dlq: Dlq::Kafka {
            cfg: KafkaConfig::new(&brokers),
            topic: topic.clone(),
        },
        read_only: true,
        production: false,
        audit: AuditLog::new(&audit),
        group: None,
        confirm_after_ms: morgue::engine::read::outcome::DEFAULT_CONFIRM_AFTER_MS,
        redact: None,
        decoders: morgue::engine::decoders::builtin(),
    };
    let clock = Arc::new(Mutex::new(Clock::default()));
    let (keys, rx) = mpsc::channel(16);
    let console = Soak {
        keys: Some(rx),
        clock: clock.clone(),
    };
    let before = rss_mb();
    let producer = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "produce",
            &brokers,
            &topic,
            &rate.to_string(),
            &secs.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    rt.block_on(async {
        let opened = target.dlq.open().await.unwrap();
        let ui = tokio::spawn({
            let target = target.clone();
            async move { morgue::tui::runner::run_on(&target, &opened, console, false, Default::default()).await }
        });
        let start = Instant::now();
        let mut k = 0u64;
        while start.elapsed() < Duration::from_secs(secs + 5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let code = match k % 40 {
                0..=18 => KeyCode::Down,
                19 => KeyCode::PageDown,
                20..=38 => KeyCode::Up,
                _ => KeyCode::Home,
            };
            k += 1;
            keys.send(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))).await.unwrap();
            if k.is_multiple_of(100) {
                let c = clock.lock().unwrap();
                println!(
                    "{:>3}s: RSS {:.0} MB; keypress -> frame {}; screen: {}",
                    start.elapsed().as_secs(),
                    rss_mb(),
                    pcts(&c.latencies),
                    c.top
                );
            }
        }
        // Let the last letters arrive before measuring, then quit.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after = rss_mb();
        keys.send(Event::Key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE)))
            .await
            .unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(10), ui).await;
        let out = producer.wait_with_output().unwrap();
        let n: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(1.0);
        let c = clock.lock().unwrap();
        println!(
            "tui soak: {n} letters produced at {rate}/s for {secs}s; RSS {before:.0} MB -> {after:.0} MB ({:.0} bytes per letter); keypress -> frame {}; screen: {}",
            (after - before) * 1e6 / n,
            pcts(&c.latencies),
            c.top
        );
    });
    let _ = std::fs::remove_file(audit);
}
