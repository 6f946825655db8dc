//! The TUI's transform prompt on a group of N letters (default 5,000; ~500-byte JSON,
//! as `benches/seed.py` writes them); prints figures, asserts nothing.
//!
//!   cargo bench --bench transform -- [N]
//!
//! An expression is typed a character at a time; each prefix that compiles is
//! compiled and previewed over all N letters, as the prompt does off the UI thread.
//! Prints the time per keystroke: p50, p99, max. The allocator is the binary's.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Times the transform prompt's preview per keystroke on `n` letters.
fn transform_preview(n: usize) {
    use morgue::engine::transform::preview::preview;
    use morgue::engine::transform::{Jq, Spec};
    let pad = "x".repeat(220);
    let letters: Vec<_> = (0..n)
        .map(|i| {
            let price = if i % 997 == 5 { -1.5 } else { 100.0 + (i % 97) as f64 };
            let value = format!(
                r#"{{"trade_id": "T-{i:09}", "symbol": "ACME", "side": "BUY", "qty": {}, "price": {price}, "venue": "XNYS", "ts": {}, "note": "{pad}"}}"#,
                100 + i % 50,
                1_732_700_000_000u64 + i as u64
            );
            let mut l = morgue::engine::DeadLetter::from_record(
                Some(morgue::engine::LetterId::Kafka { partition: 0, offset: i as i64 }),
                None,
                Some(format!("{:036}", i).into_bytes()),
                Some(value.clone().into_bytes()),
                Default::default(),
            );
            l.source.topic = Some("trades".into());
            (l, Some(value.into_bytes()))
        })
        .collect();
    let reg = morgue::engine::decoders::builtin();
    let expr = r#".price |= (if . < 0 then -. else . end) | .venue = "XLON""#;
    let mut times = Vec::new();
    for end in 1..=expr.len() {
        let t0 = Instant::now();
        let spec = Spec {
            expr: expr[..end].to_string(),
            envelope: false,
        };
        if let Ok(jq) = Jq::compile(spec) {
            let p = preview(&jq, &letters, &reg, 3);
            std::hint::black_box(p);
            times.push(t0.elapsed());
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "transform preview over {n} letters, {} keystrokes that compile: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3
    );
}

fn main() {
    let n = std::env::args()
        .skip(1)
        .find(|a| a != "--bench")
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    transform_preview(n);
}
