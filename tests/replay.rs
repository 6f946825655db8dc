//! Replay end to end with the real binary and broker: what reaches the source topic,
//! what the ledger and audit log say, what is refused, and exactly-once across SIGKILL.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;
use morgue::backends::kafka::KafkaConfig;
use morgue::engine::{
    DeadLetter, FailureContext, Headers, Reason, SourceCoords, model::conventions,
};

struct Dlq {
    dlq: TestTopic,
    source: TestTopic,
    audit: std::path::PathBuf,
}

impl Dlq {
    async fn new(prefix: &str, letters: usize) -> Dlq {
        let source = TestTopic::new(&format!("{prefix}-src"), 3).await;
        let dlq = TestTopic::new(&format!("{prefix}-dlq"), 2).await;
        let cfg = KafkaConfig::new(kafka_brokers());
        let producer = cfg.producer().unwrap();
        for i in 0..letters {
            let src = SourceCoords {
                topic: Some(source.name.clone()),
                partition: Some(1),
                offset: Some(i as i64),
                timestamp_ms: Some(1_732_700_000_000),
                consumer_group: Some("app".into()),
            };
            let failure = FailureContext {
                exception_class: Some("trade.ValidationError".into()),
                message: Some(format!("bad trade {i}")),
                reason: if i % 2 == 0 {
                    Reason::Failed
                } else {
                    Reason::MaxAttemptsExceeded
                },
                attempts: Some(1),
                ..FailureContext::default()
            };
            let mut h = Headers(conventions::encode(&src, &failure));
            h.push("traceparent", "00-abc-def-01");
            h.push("tenant", "acme");
            let l = DeadLetter::from_record(
                None,
                None,
                Some(format!("T-{i}").into_bytes()),
                Some(format!("{{\"n\":{i}}}").into_bytes()),
                h,
            );
            cfg.write(&producer, &dlq.name, &l).await.unwrap();
        }
        let audit = std::env::temp_dir()
            .join(unique("audit"))
            .join("audit.jsonl");
        Dlq { dlq, source, audit }
    }

    fn morgue(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let brokers = kafka_brokers();
        let mut c = crate::common::procs::morgue_cmd();
        c.args(args)
            .args(["--kafka", &brokers, "--topic", &self.dlq.name])
            .env("MORGUE_AUDIT_LOG", &self.audit)
            .stdin(Stdio::null());
        c
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn replay_sends_to_the_source_records_and_refuses_a_second_time() {
    let d = Dlq::new("replay-e2e", 4).await;
    let listed = json_lines(&d.morgue(&["list"]));
    assert_eq!(listed.len(), 4);
    let id = listed[0]["id"].as_str().unwrap().to_string();

    // Dry run: the exact message, nothing written.
    let out = d.morgue(&["replay", &id, "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = &json_lines(&out)[0];
    assert_eq!(plan["status"], "dry-run");
    assert_eq!(plan["topic"], d.source.name.as_str());
    let sent_names: Vec<&str> = plan["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent_names,
        ["tenant", "morgue-replay-id", "morgue-replay-count"]
    );
    assert!(read_all(&d.source.name).await.is_empty());
    assert!(d.audit_lines().is_empty());

    // No terminal and no --yes: refused, exit 2.
    let out = d.morgue(&["replay", &id]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pass --yes"));

    let out = d.morgue(&["replay", &id, "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &json_lines(&out)[0];
    assert_eq!(r["status"], "replayed");
    let sent = read_all(&d.source.name).await;
    assert_eq!(sent.len(), 1);
    let m = &sent[0];
    assert_eq!(m.value.as_deref(), Some(&b"{\"n\":0}"[..]));
    assert_eq!(m.key.as_deref(), Some(&b"T-0"[..]));
    assert_eq!(
        m.headers.last("morgue-replay-id").unwrap(),
        r["replay_id"].as_str().unwrap().as_bytes()
    );
    assert_eq!(m.headers.last("morgue-replay-count"), Some(&b"1"[..]));
    assert_eq!(m.headers.last("tenant"), Some(&b"acme"[..]));
    assert!(m.headers.last("kafka_dlt-original-topic").is_none());
    assert!(m.headers.last("traceparent").is_none());
    assert_eq!(
        m.id.as_ref().unwrap().to_string(),
        format!("{}:{}", r["partition"], r["offset"])
    );

    // The ledger tells everyone; the audit log has the write.
    let shown = &json_lines(&d.morgue(&["show", &id]))[0];
    assert_eq!(shown["state"], "replayed");
    assert_eq!(shown["history"][0]["topic"], d.source.name.as_str());
    assert_eq!(shown["history"][0]["offset"], r["offset"]);
    let audit = d.audit_lines();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["action"], "replay");
    assert_eq!(audit[0]["id"], id.as_str());

    // A second replay is skipped without --force; with it, the count goes up.
    let out = d.morgue(&["replay", &id, "--yes"]);
    assert!(out.status.success());
    assert_eq!(json_lines(&out)[0]["status"], "skipped");
    assert!(
        stderr(&out).contains("already replayed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_all(&d.source.name).await.len(), 1);
    let out = d.morgue(&["replay", &id, "--yes", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = read_all(&d.source.name).await;
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .any(|m| m.headers.last("morgue-replay-count") == Some(&b"2"[..]))
    );

    // Resolve another one; its state is shared through the ledger.
    let other = listed[1]["id"].as_str().unwrap();
    let out = d.morgue(&["resolve", other, "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let states: Vec<String> = json_lines(&d.morgue(&["list"]))
        .iter()
        .map(|l| l["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states.iter().filter(|s| *s == "replayed").count(), 1);
    assert_eq!(states.iter().filter(|s| *s == "resolved").count(), 1);
    assert_eq!(d.audit_lines().len(), 3);
}

#[tokio::test]
async fn refusals_send_nothing() {
    let d = Dlq::new("replay-refuse", 1).await;
    let id = "0:0";
    let id = if d.morgue(&["show", id]).status.success() {
        id
    } else {
        "1:0"
    };

    let out = d.morgue(&["--read-only", "replay", id, "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));

    let out = d.morgue(&["replay", id, "--yes", "--to", &d.dlq.name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("refused to replay into topic '{}'", d.dlq.name)),
        "{}",
        stderr(&out)
    );

    let out = d.morgue(&["replay", id, "--yes", "--to", "orders.DLT"]);
    assert!(
        stderr(&out).contains("dead-letter topic"),
        "{}",
        stderr(&out)
    );

    let missing = unique("no-such-target");
    let out = d.morgue(&["replay", id, "--yes", "--to", &missing]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("topic '{missing}' not found")),
        "{}",
        stderr(&out)
    );
    let out = d.morgue(&["list", "--topic", &missing]);
    assert!(
        !out.status.success(),
        "the missing target must not have been created"
    );

    let out = d.morgue(&["replay", "7:99", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no letter 7:99"), "{}", stderr(&out));

    assert!(read_all(&d.source.name).await.is_empty());
    assert!(d.audit_lines().is_empty());
}

#[tokio::test]
async fn sigkill_mid_bulk_replay_then_resume_replays_each_letter_once() {
    const N: usize = 30;
    let d = Dlq::new("replay-kill", N).await;
    let filter = format!("topic:{}", d.source.name);
    let mut child = d
        .command(&["replay", "--filter", &filter, "--yes", "--rate", "15"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some but not all letters are out.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = read_all(&d.source.name).await.len();
        if n >= 5 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = read_all(&d.source.name).await.len();
    assert!(before > 0 && before < N, "killed after {before} of {N}");

    // The killed run may have left letters `replaying`; the operator who killed
    // it takes them over at once instead of waiting out the default 10 s.
    let out = d.morgue(&[
        "replay",
        "--filter",
        &filter,
        "--yes",
        "--takeover-after",
        "0s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sent = read_all(&d.source.name).await;
    assert_eq!(sent.len(), N, "every letter exactly once");
    let mut values: Vec<_> = sent.iter().map(|m| m.value.clone().unwrap()).collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), N);
    let states: Vec<String> = json_lines(&d.morgue(&["list"]))
        .iter()
        .map(|l| l["state"].to_string())
        .collect();
    assert!(states.iter().all(|s| s == "\"replayed\""), "{states:?}");

    // A third run finds nothing left to do.
    let out = d.morgue(&["replay", "--filter", &filter, "--yes"]);
    assert!(json_lines(&out).iter().all(|r| r["status"] == "skipped"));
    assert_eq!(read_all(&d.source.name).await.len(), N);
}

/// A ledger entry of letter `0:i` (36-character source key) at `version`.
fn ledger_entry(i: usize, version: u64) -> morgue::engine::model::ledger::LedgerEntry {
    use morgue::engine::model::ledger::{EntryState, LedgerEntry};
    LedgerEntry {
        id: format!("0:{i}"),
        state: if version == 1 {
            EntryState::Replaying
        } else {
            EntryState::Replayed
        },
        by: "ann@jump".into(),
        at_ms: 1_732_700_000_000,
        version,
        session: "s".into(),
        source: Some(format!("orders/0/{i}")),
        force: false,
        pending: None,
        history: (1..version)
            .map(|_| morgue::engine::ReplayRecord {
                replay_id: uuid::Uuid::new_v4().to_string(),
                topic: "orders".into(),
                partition: 0,
                offset: i as i64,
                by: "ann@jump".into(),
                at_ms: 1_732_700_000_000,
                edited: false,
                key: None,
                transform: None,
            })
            .collect(),
        edited_value: None,
    }
}

#[tokio::test]
async fn a_long_ledger_is_folded_small_and_old_entries_are_read_back() {
    use morgue::backends::kafka::ledger::KafkaLedger;
    use morgue::engine::model::ledger::{Conflict, LedgerStore};
    // More letters than a session keeps whole: their entries are read back on demand.
    const N: usize = 9_000;
    let dlq = unique("long-dlq");
    let cfg = KafkaConfig::new(kafka_brokers());
    let writer = KafkaLedger::new(cfg.clone(), &dlq);
    for version in [1, 2] {
        for chunk in (0..N).collect::<Vec<_>>().chunks(3_000) {
            let entries = chunk.iter().map(|&i| ledger_entry(i, version)).collect();
            let got = writer.write(entries).await.unwrap();
            assert!(got.iter().all(Result::is_ok));
        }
    }
    // A new session folds 18,000 records.
    let reader = KafkaLedger::new(cfg, &dlq);
    assert_eq!(reader.count().await.unwrap(), N);
    assert_eq!(
        reader.states().await.unwrap().get("replayed"),
        Some(&(N as u64))
    );
    let ids = vec!["0:0".to_string(), "0:8999".into(), "0:77".into()];
    let now = reader.current(&ids, &["orders/0/5".into()]).await.unwrap();
    for id in &ids {
        let e = now.get(id).unwrap();
        assert_eq!((e.version, e.history.len()), (2, 1), "{id}");
    }
    assert_eq!(
        now.copy_holder("orders/0/5", "1:5").map(|e| e.id.as_str()),
        Some("0:5")
    );
    // A stale write and a copy are refused with the entries that won, read back.
    let mut copy = ledger_entry(5, 1);
    copy.id = "1:5".into();
    let got = reader.write(vec![ledger_entry(1, 2), copy]).await.unwrap();
    match &got[0] {
        Err(Conflict::Changed(e)) => assert_eq!((e.version, e.history.len()), (2, 1)),
        other => panic!("{other:?}"),
    }
    match &got[1] {
        Err(Conflict::Copy(e)) => assert_eq!(e.id, "0:5"),
        other => panic!("{other:?}"),
    }
    // Letters read from the DLQ take their state and history from old entries.
    let mut letters: Vec<DeadLetter> = [3, 8_998]
        .iter()
        .map(|&o| {
            DeadLetter::from_record(
                Some(morgue::engine::LetterId::Kafka {
                    partition: 0,
                    offset: o,
                }),
                None,
                None,
                None,
                Headers::default(),
            )
        })
        .collect();
    let r2 = std::sync::Arc::new(reader);
    let r3 = r2.clone();
    let letters = tokio::task::spawn_blocking(move || {
        r3.apply(&mut letters).unwrap();
        letters
    })
    .await
    .unwrap();
    for l in &letters {
        assert_eq!(l.state, morgue::engine::LetterState::Replayed);
        assert_eq!(l.history.len(), 1);
    }
}
