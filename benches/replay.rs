//! Ledger operation latency against a real broker; prints figures, asserts nothing.
//!
//!   cargo bench --bench replay -- ledger-ops BROKERS DLQ TARGET N
//!
//! Opens the DLQ as a session does (one tailing ledger reader, one writer), then times:
//! loading every entry of the ledger whole (`KafkaLedger::load`, not the view's
//! catch-up: see `catch-up`), opening a letter (fetch + its fresh state) N times, and
//! replaying one letter (`--force`, to TARGET) N times. scripts/bench.sh
//! runs it on a DLQ whose ledger holds 100k entries and on one whose ledger is empty.
//!
//!   cargo bench --bench replay -- record BROKERS DLQ N
//!
//! Writes to DLQ's ledger what replaying N letters writes (windows of 2,000: claims,
//! then confirms; 36-character keys and source keys; checkpoints as a session writes
//! them), for letters `9:0`.. that need not exist, and prints how long it took.
//!
//!   cargo bench --bench replay -- catch-up BROKERS DLQ
//!
//! A new session's first catch-up of DLQ's ledger: time, and the heap it holds after
//! (morgue's own allocations; librdkafka's buffers are not counted).
//!
//!   cargo bench --bench replay -- checkpoint BROKERS DLQ
//!
//! Writes a checkpoint of DLQ's ledger now, as a session does when one is due.
//!
//!   cargo bench --bench replay -- fold N
//!
//! Folds N ledger records of N letters (36-character source keys, one replay each)
//! as a session's ledger view does, and prints the heap the fold holds and its speed.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// mimalloc, counting the bytes held now.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HELD.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to mimalloc.
        unsafe { mimalloc::MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HELD.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to mimalloc.
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

use std::sync::Arc;
use std::time::Instant;

use morgue::backends::kafka::KafkaConfig;
use morgue::backends::kafka::ledger::KafkaLedger;
use morgue::backends::kafka::source::KafkaSource;
use morgue::backends::kafka::target::KafkaTarget;
use morgue::engine::LetterId;
use morgue::engine::model::ledger::LedgerStore;
use morgue::engine::read::source::DeadLetterSource;
use morgue::engine::write::audit::AuditLog;
use morgue::engine::write::plan::ReplayPolicy;
use morgue::engine::write::{ReplayOutcome, Writer};

fn pcts(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!("p50 {:.2} ms  p99 {:.2} ms", at(0.5), at(0.99))
}

async fn ledger_ops(brokers: &str, dlq: &str, target: &str, n: usize) {
    let cfg = KafkaConfig::new(brokers);
    let ledger = Arc::new(KafkaLedger::new(cfg.clone(), dlq));
    let source = KafkaSource::with_ledger(cfg.clone(), dlq, ledger.clone());
    let t0 = Instant::now();
    let entries = ledger.load().await.unwrap().len();
    let first = t0.elapsed().as_secs_f64() * 1e3;
    let audit = std::env::temp_dir().join(format!("bench-audit-{}.jsonl", std::process::id()));
    let writer = Writer::new(
        ReplayPolicy {
            dlq_topic: dlq.to_string(),
            ..ReplayPolicy::default()
        },
        ledger.clone(),
        Some(Arc::new(KafkaTarget::new(cfg.clone(), dlq))),
        AuditLog::new(&audit),
    );
    let ids: Vec<LetterId> = (0..n)
        .map(|i| LetterId::Kafka {
            partition: (i % 4) as i32,
            offset: (i * 3) as i64,
        })
        .collect();
    let mut open = Vec::new();
    for id in &ids {
        let t = Instant::now();
        source.fetch(id).await.unwrap();
        open.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut replay = Vec::new();
    for id in &ids {
        let l = source.fetch(id).await.unwrap();
        let t = Instant::now();
        let out = writer
            .replay(std::slice::from_ref(&l), Some(target), true)
            .await;
        replay.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(
            matches!(out[0].1, ReplayOutcome::Replayed { .. }),
            "{out:?}"
        );
    }
    println!(
        "ledger of {entries:>6} entries: every entry loaded whole in {first:.0} ms; open a letter {}; replay one {}",
        pcts(open),
        pcts(replay)
    );
    let _ = std::fs::remove_file(audit);
}

/// Writes the ledger records of `n` replayed letters, a window at a time.
async fn record(brokers: &str, dlq: &str, n: usize) {
    use morgue::engine::model::encoding::EncodedBytes;
    use morgue::engine::model::ledger::{EntryState, LedgerEntry, PendingReplay};
    use morgue::engine::model::letter::ReplayRecord;
    let ledger = KafkaLedger::new(KafkaConfig::new(brokers), dlq);
    let session = uuid::Uuid::new_v4().to_string();
    let t0 = Instant::now();
    for start in (0..n).step_by(2000) {
        let token = uuid::Uuid::new_v4().to_string();
        let base = |i: usize, state, version| LedgerEntry {
            id: format!("9:{i}"),
            state,
            by: "ann@jump-01".into(),
            at_ms: 1_765_000_000_000 + i as i64,
            version,
            session: session.clone(),
            source: Some(format!("orders/3/{i}")),
            force: false,
            pending: None,
            history: Vec::new(),
            edited_value: None,
        };
        let claims: Vec<LedgerEntry> = (start..n.min(start + 2000))
            .map(|i| LedgerEntry {
                pending: Some(PendingReplay {
                    replay_id: uuid::Uuid::new_v4().to_string(),
                    topic: "orders".into(),
                    partition: (i % 6) as i32,
                    from_offset: (i / 6) as i64,
                    edited: false,
                    key: Some(EncodedBytes::of(
                        uuid::Uuid::new_v4().to_string().as_bytes(),
                    )),
                    txn: token.clone(),
                    earlier: Vec::new(),
                    transform: None,
                }),
                ..base(i, EntryState::Replaying, 1)
            })
            .collect();
        let confirms: Vec<LedgerEntry> = claims
            .iter()
            .map(|c| {
                let p = c.pending.clone().unwrap();
                LedgerEntry {
                    history: vec![ReplayRecord {
                        replay_id: p.replay_id,
                        topic: p.topic,
                        partition: p.partition,
                        offset: p.from_offset,
                        by: c.by.clone(),
                        at_ms: c.at_ms,
                        edited: false,
                        key: p.key,
                        transform: None,
                    }],
                    ..base(c.id[2..].parse().unwrap(), EntryState::Replayed, 2)
                }
            })
            .collect();
        for w in [claims, confirms] {
            let got = ledger.write(w).await.unwrap();
            assert!(got.iter().all(Result::is_ok));
        }
    }
    ledger.settle().await;
    println!(
        "recorded {n} replayed letters in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// A new session's first catch-up: time and heap held.
async fn catch_up(brokers: &str, dlq: &str) {
    let mut times = Vec::new();
    let mut held = 0;
    let mut letters = 0;
    for _ in 0..5 {
        let before = HELD.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let ledger = KafkaLedger::new(KafkaConfig::new(brokers), dlq);
        letters = ledger.count().await.unwrap();
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        held = HELD.load(Ordering::Relaxed).saturating_sub(before);
        drop(ledger);
    }
    println!(
        "first catch-up of a ledger of {letters} letters: {}; {:.1} MiB held after",
        pcts(times),
        held as f64 / 1048576.0
    );
}

/// Folds `n` records as JSON off the wire, as the view does; prints held bytes and speed.
fn fold(n: usize) {
    use morgue::engine::model::ledger_fold::{Fold, Record};
    let records: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"{}:{}","state":"replayed","by":"ann@jump-01","at_ms":1764700000000,"version":2,"session":"{}","source":"orders-{:08}-aaaa-bbbb-cccc-ddddeeeeffff/3/{i}","history":[{{"replay_id":"{}","topic":"orders","partition":3,"offset":{i},"by":"ann@jump-01","at_ms":1764700000000,"edited":false}}]}}"#,
                i % 4,
                i / 4,
                uuid::Uuid::new_v4(),
                i % 1000,
                uuid::Uuid::new_v4()
            )
        })
        .collect();
    let before = HELD.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mut f = Fold::default();
    for (o, r) in records.iter().enumerate() {
        let rec: Record<'_> = serde_json::from_str(r).unwrap();
        f.accept(&rec, || o as u64);
    }
    let secs = t0.elapsed().as_secs_f64();
    let held = HELD.load(Ordering::Relaxed) - before;
    println!(
        "fold of {n} letters: {:.1} MiB held ({:.0} bytes/letter), {:.0} records/s",
        held as f64 / 1048576.0,
        held as f64 / n as f64,
        n as f64 / secs
    );
    assert_eq!(f.len(), n);
}

#[tokio::main]
async fn main() {
    // MORGUE_LOG=debug: the engine's step timings on stderr (as the binary's).
    if let Ok(f) = std::env::var("MORGUE_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["ledger-ops", b, dlq, target, n] => ledger_ops(b, dlq, target, n.parse().unwrap()).await,
        ["fold", n] => fold(n.parse().unwrap()),
        ["record", b, dlq, n] => record(b, dlq, n.parse().unwrap()).await,
        ["catch-up", b, dlq] => catch_up(b, dlq).await,
        ["checkpoint", b, dlq] => {
            let t0 = Instant::now();
            let l = KafkaLedger::new(KafkaConfig::new(*b), dlq);
            let h = l.checkpoint().await.unwrap();
            println!(
                "checkpoint of {} letters written in {:.1} s",
                h.letters,
                t0.elapsed().as_secs_f64()
            );
        }
        _ => {
            eprintln!(
                "usage: replay ledger-ops BROKERS DLQ TARGET N | record BROKERS DLQ N | \
                 catch-up BROKERS DLQ | checkpoint BROKERS DLQ | fold N"
            );
            std::process::exit(2);
        }
    }
}
