//! Writes tests/fixtures/ledger_v1.jsonl with the ledger code of commit ac5da33 (format 1).
#![allow(clippy::unwrap_used)]

use crate::common::*;
use morgue::backends::kafka::KafkaConfig;
use morgue::backends::kafka::ledger::KafkaLedger;
use morgue::engine::model::encoding::EncodedBytes;
use morgue::engine::model::ledger::{EntryState, LedgerEntry, LedgerStore, PendingReplay};
use morgue::engine::model::letter::ReplayRecord;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

fn key(i: usize) -> String {
    format!("5f0c7d2e-9a41-4b6e-8c3d-0000000000{i:02}")
}

fn e(i: usize, v: u64, state: EntryState) -> LedgerEntry {
    LedgerEntry {
        id: format!("0:{i}"),
        state,
        by: "ann@jump-1".into(),
        at_ms: 1_765_000_000_000 + (i as i64) * 1000 + v as i64,
        version: v,
        session: "3b8c1a52-6f0e-4d1c-9a77-2c5e8f1d0b14".into(),
        source: Some(format!("orders-src/1/{i}")),
        force: false,
        pending: None,
        history: Vec::new(),
        edited_value: None,
    }
}

fn pending(i: usize, n: usize, txn: &str) -> PendingReplay {
    PendingReplay {
        replay_id: format!("0c9e4f3a-2b1d-4e8f-a6c5-{i:06}{n:06}"),
        topic: "orders-src".into(),
        partition: 1,
        from_offset: (i * 10 + n) as i64,
        edited: false,
        key: Some(EncodedBytes::of(key(i).as_bytes())),
        txn: txn.into(),
        earlier: Vec::new(),
    }
}

fn record(p: &PendingReplay, offset: i64) -> ReplayRecord {
    ReplayRecord {
        replay_id: p.replay_id.clone(),
        topic: p.topic.clone(),
        partition: p.partition,
        offset,
        by: "ann@jump-1".into(),
        at_ms: 1_765_000_500_000 + offset,
        edited: p.edited,
        key: p.key.clone(),
    }
}

#[tokio::test]
#[ignore = "writes the fixture; run by hand at a format-1 commit"]
async fn write_the_v1_fixture() {
    let dlq = unique("v1-fixture");
    let cfg = KafkaConfig::new(kafka_brokers());
    let l = KafkaLedger::new(cfg.clone(), &dlq);
    let t = "a1d2c3b4-0000-4000-8000-00000000feed";
    // 0:0 replayed once; 0:1 replayed twice; 0:2 resolved; 0:3 edited; 0:4 claimed and
    // never confirmed (its holder died); 0:5 replayed, then its pending cleared.
    let mut c0 = e(0, 1, EntryState::Replaying);
    c0.pending = Some(pending(0, 1, t));
    let mut c1 = e(1, 1, EntryState::Replaying);
    c1.pending = Some(pending(1, 1, t));
    let mut c5 = e(5, 1, EntryState::Replaying);
    c5.pending = Some(pending(5, 1, t));
    let claims = vec![c0.clone(), c1.clone(), c5.clone()];
    assert!(l.write(claims).await.unwrap().iter().all(Result::is_ok));
    let mut r0 = e(0, 2, EntryState::Replayed);
    r0.history = vec![record(c0.pending.as_ref().unwrap(), 100)];
    let mut r1 = e(1, 2, EntryState::Replayed);
    r1.history = vec![record(c1.pending.as_ref().unwrap(), 101)];
    let mut r5 = e(5, 2, EntryState::Replayed);
    r5.history = vec![record(c5.pending.as_ref().unwrap(), 102)];
    assert!(
        l.write(vec![r0, r1.clone(), r5.clone()])
            .await
            .unwrap()
            .iter()
            .all(Result::is_ok)
    );
    let mut again = e(1, 3, EntryState::Replaying);
    again.force = true;
    again.history = r1.history.clone();
    again.pending = Some(pending(1, 2, "a1d2c3b4-0000-4000-8000-00000000beef"));
    let mut twice = e(1, 4, EntryState::Replayed);
    twice.history = r1.history.clone();
    twice
        .history
        .push(record(again.pending.as_ref().unwrap(), 140));
    let mut resolved = e(2, 1, EntryState::Resolved);
    resolved.source = None;
    let mut edited = e(3, 1, EntryState::Edited);
    edited.edited_value = Some(EncodedBytes::of(br#"{"n":33,"fixed":true}"#));
    let mut held = e(4, 1, EntryState::Replaying);
    held.pending = Some(pending(4, 1, "a1d2c3b4-0000-4000-8000-0000000dead0"));
    let mut cleared = e(5, 3, EntryState::New);
    cleared.history = r5.history.clone();
    for w in [
        vec![again],
        vec![twice, resolved, edited],
        vec![held],
        vec![cleared],
    ] {
        assert!(l.write(w).await.unwrap().iter().all(Result::is_ok));
    }
    // A stale write, refused by the fold, is part of the log too.
    assert!(l.write(vec![e(2, 1, EntryState::Resolved)]).await.unwrap()[0].is_err());
    // Dump the ledger topic: key and value of each record, in log order.
    let c = cfg.browse_consumer().unwrap();
    let topic = l.topic().to_string();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let (_, hi) = c
        .fetch_watermarks(&topic, 0, std::time::Duration::from_secs(5))
        .unwrap();
    let mut out = String::new();
    let mut n = 0;
    while n < hi {
        let Some(Ok(m)) = c.poll(std::time::Duration::from_secs(5)) else {
            continue;
        };
        n = m.offset() + 1;
        let k = std::str::from_utf8(m.key().unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        out.push_str(&serde_json::json!({"key": k, "value": v}).to_string());
        out.push('\n');
    }
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ledger_v1.jsonl");
    std::fs::write(path, out).unwrap();
}
