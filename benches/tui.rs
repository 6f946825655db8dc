//! TUI benchmarks with a million letters loaded; prints figures, asserts nothing.
//!
//!   cargo bench --bench tui -- [LETTERS]
//!
//! Frames are rendered into ratatui's TestBackend (200×50), so the figures cover
//! building the frame and diffing it, not writing it to a terminal.
#![allow(clippy::unwrap_used)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use morgue::engine::{DeadLetter, Headers, LetterId};
use morgue::tui::app::{Action, App, Event};
use morgue::tui::view::{Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn letter(i: u64) -> DeadLetter {
    let mut h = Headers::default();
    h.push(
        "kafka_dlt-original-topic",
        ["trades", "orders", "payments"][(i % 3) as usize],
    );
    h.push(
        "kafka_dlt-exception-fqcn",
        ["x.Validation", "x.Timeout", "x.Parse", "x.Auth"][(i % 4) as usize],
    );
    let batch = i / 500;
    DeadLetter::from_record(
        Some(LetterId::Kafka {
            partition: (batch % 8) as i32,
            offset: ((batch / 8) * 500 + i % 500) as i64,
        }),
        Some(1_795_000_000_000 + i as i64),
        Some(format!("T-{i:09}").into_bytes()),
        Some(format!("{{\"trade_id\":\"T-{i:09}\",\"price\":{}}}", i % 500).into_bytes()),
        h,
    )
}

fn rss() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0)
        * 4096.0
        / 1e6
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let theme = Theme {
        color: true,
        palette: None,
    };
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let before = rss();
    let mut app = App::new("kafka://bench/dlq".into(), false, false);
    app.start();
    app.update(Event::Resize(47, 200));
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let batch: Vec<DeadLetter> = (i..(i + 512).min(n)).map(letter).collect();
        i += batch.len() as u64;
        app.update(Event::Letters {
            generation: 1,
            letters: batch,
        });
    }
    app.update(Event::CaughtUp { generation: 1 });
    println!(
        "tui: {n} letters loaded in {:.2}s; RSS {before:.1} MB -> {:.1} MB ({:.1} bytes per letter)",
        start.elapsed().as_secs_f64(),
        rss(),
        (rss() - before) * 1e6 / n as f64
    );

    let mut frames = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        term.draw(|f| draw(f, &app, theme)).unwrap();
        frames.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "frame: p50 {:.3} ms, p99 {:.3} ms",
        pct(&mut frames, 0.5),
        pct(&mut frames, 0.99)
    );

    let mut keys = Vec::new();
    for k in 0..1000 {
        let t = Instant::now();
        app.update(if k % 50 < 25 {
            Action::Down
        } else {
            Action::PageDown
        });
        term.draw(|f| draw(f, &app, theme)).unwrap();
        keys.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "keypress -> frame: p50 {:.3} ms, p99 {:.3} ms",
        pct(&mut keys, 0.5),
        pct(&mut keys, 0.99)
    );

    // Letters keep arriving (a scan or the live tail) while frames are drawn.
    let mut busy = Vec::new();
    for b in 0..200u64 {
        let batch: Vec<DeadLetter> = (0..512).map(|j| letter(n + b * 512 + j)).collect();
        let t = Instant::now();
        app.update(Event::Letters {
            generation: 1,
            letters: batch,
        });
        term.draw(|f| draw(f, &app, theme)).unwrap();
        busy.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "512-letter batch + frame while loading: p50 {:.3} ms, p99 {:.3} ms",
        pct(&mut busy, 0.5),
        pct(&mut busy, 0.99)
    );

    let t = Instant::now();
    app.update(Action::Triage);
    term.draw(|f| draw(f, &app, theme)).unwrap();
    println!(
        "triage board over {} letters: {:.1} ms",
        app.store.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
}
