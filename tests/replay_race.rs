//! Exactly-once replay under company and crashes, against the real broker: several
//! `morgue replay` processes and a TUI on one DLQ at once, SIGKILLs at each step of
//! the replay protocol, a pending replay left by an older morgue resolved,
//! copies of one source message, a ledger that refuses the record. Every DLQ is written transactionally (a commit
//! marker after each letter) with 36-character keys.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Output};
use std::time::Duration;

use crate::common::procs::{json_lines, kill_at, stderr};
use crate::common::race::{Race, seed, tally, tui_on_triage, tui_replay_group, tui_sent};
use crate::common::tmux::Tmux;
use crate::common::*;
use morgue::engine::model::conventions;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::test]
async fn three_processes_and_a_tui_replay_each_key_exactly_once() {
    const N: usize = 200;
    let r = Race::new("race", N).await;
    // The TUI: triage board, replay the whole group.
    let tui = tui_on_triage(&r);
    // Windows of 16 letters, two at once: each process has claims in flight side by side.
    let procs: Vec<Child> = (0..3)
        .map(|_| {
            r.replay_all(&[])
                .env("MORGUE_TEST_WINDOW", "16")
                .spawn()
                .unwrap()
        })
        .collect();
    tui_replay_group(&tui);
    let outs: Vec<Output> = procs
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let (tui_sent, screen) = tui_sent(&tui);
    let mut sent_by_cli = 0;
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
        let t = tally(out);
        let replayed = t.get("replayed").copied().unwrap_or(0);
        let skipped = t.get("skipped").copied().unwrap_or(0);
        let recovered = t.get("recovered").copied().unwrap_or(0);
        assert_eq!(replayed + skipped + recovered, N, "{t:?}\n{}", stderr(out));
        sent_by_cli += replayed;
    }
    // The TUI's own count closes the books: everything was sent once, by someone.
    assert_eq!(sent_by_cli + tui_sent, N, "{screen}");
    r.assert_exactly_once().await;
    assert_eq!(r.states().get("replayed"), Some(&N));
}

#[tokio::test]
async fn sigkill_at_each_step_of_the_protocol_never_doubles() {
    const N: usize = 40;
    // After the claim, after the claim's sender was opened, inside the open transaction,
    // after the commit (before the confirm).
    for (round, step) in ["announced", "opened", "produced", "sent"]
        .iter()
        .enumerate()
    {
        let r = Race::new(&format!("kill{round}"), N).await;
        // The victim is killed inside a window while a survivor replays alongside; in
        // windows of 8 letters, two at once, so two windows are in flight when it dies.
        let mut victim = r.replay_all(&[]);
        victim
            .env("MORGUE_TEST_PAUSE", format!("{step}:5000"))
            .env("MORGUE_TEST_WINDOW", "8");
        let survivor = kill_at(victim, &format!("morgue-test-pause: {step}"), || {
            r.replay_all(&[])
                .env("MORGUE_TEST_WINDOW", "8")
                .spawn()
                .unwrap()
        });
        let survivor = survivor.unwrap_or_else(|| panic!("round {round}: never paused at {step}"));
        let out = survivor.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        // Whatever the victim left `replaying` is finished by the next run.
        let out = r.replay_all(&["--takeover-after", "0s"]).output().unwrap();
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        r.assert_exactly_once().await;
        assert_eq!(r.states().get("replayed"), Some(&N), "round {round}");
    }
}

/// A `replaying` ledger entry as a morgue of the three-step protocol left it when it
/// was killed between its announce and its confirm; `sent`: its message reached the target.
async fn left_replaying(r: &Race, id: &str, key: &str, sent: bool) {
    let ledger = format!("{}.morgue-ledger", r.dlq.name);
    let replay_id = uuid::Uuid::new_v4().to_string();
    let partition = morgue::backends::kafka::partitioner::choose(Some(key.as_bytes()), 3, Some(0));
    let from = high_watermarks(&r.source.name, 3)[partition as usize];
    if sent {
        let hs: &[(&str, &[u8])] = &[(conventions::MORGUE_REPLAY_ID, replay_id.as_bytes())];
        produce_to(&r.source.name, partition, key, hs).await;
    }
    let entry = serde_json::json!({
        "id": id, "state": "replaying", "by": "old@host", "at_ms": 1_732_700_000_000i64,
        "version": 1, "session": "killed", "source": null,
        "pending": {"replay_id": replay_id, "topic": r.source.name, "partition": partition,
                    "from_offset": from, "edited": false},
        "history": [],
    });
    produce(
        &ledger,
        Some(id.as_bytes()),
        entry.to_string().as_bytes(),
        &[],
        None,
    )
    .await;
}

/// Produces `key` to one partition with headers `hs`.
async fn produce_to(topic: &str, partition: i32, key: &str, hs: &[(&str, &[u8])]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    let mut headers = OwnedHeaders::new();
    for (k, v) in hs {
        headers = headers.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    p.send(
        FutureRecord::to(topic)
            .partition(partition)
            .key(key)
            .payload("{}")
            .headers(headers),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_pending_replay_left_by_an_older_morgue_is_reconciled_before_a_resolve() {
    let r = Race::new("pending", 2).await;
    let listed = json_lines(&r.morgue(&["list"]));
    let ledger = format!("{}.morgue-ledger", r.dlq.name);
    let _ledger = TestTopic::named(ledger, 1, &[("cleanup.policy", "compact")]).await;
    for (l, sent) in listed.iter().zip([true, false]) {
        let id = l["id"].as_str().unwrap();
        left_replaying(&r, id, l["key"]["data"].as_str().unwrap(), sent).await;
        let shown = &json_lines(&r.morgue(&["show", id]))[0];
        assert_eq!(shown["state"], "replaying", "{shown}");
        assert!(
            shown["held_by"]
                .as_str()
                .unwrap()
                .starts_with("old@host since "),
            "{shown}"
        );
        let out = r.morgue(&["resolve", id, "--yes"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = &json_lines(&r.morgue(&["show", id]))[0];
        assert_eq!(shown["state"], "resolved");
        // Sent before the kill: the resolve found and recorded it.
        let history = shown["history"].as_array().unwrap().len();
        assert_eq!(history, usize::from(sent), "{shown}");
        // A replay afterwards sends only what never went out.
        let out = r.morgue(&["replay", id, "--yes"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let line = &json_lines(&out)[0];
        let (status, reason) = if sent {
            ("skipped", "replayed-before")
        } else {
            ("replayed", "")
        };
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["reason"].as_str().unwrap_or(""), reason, "{line}");
    }
    r.assert_exactly_once().await;
    let audit = std::fs::read_to_string(&r.audit).unwrap();
    assert!(audit.contains("\"replay-confirmed\""), "{audit}");
    assert!(audit.contains("\"replay-cleared\""), "{audit}");
}

#[tokio::test]
async fn copies_of_one_source_message_replay_once() {
    let source = TestTopic::new("copies-src", 1).await;
    let dlq = TestTopic::new("copies-dlq", 1).await;
    // Letters 0 and 1 are one source message (offset 17) dead-lettered twice.
    seed(&dlq.name, &source.name, 3, |i| if i < 2 { 17 } else { 18 }).await;
    let r = Race {
        mongo: None,
        brokers: kafka_brokers(),
        keys: Vec::new(),
        audit: std::env::temp_dir()
            .join(unique("copies"))
            .join("audit.jsonl"),
        dlq,
        source,
    };
    let out = r.replay_all(&[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let t = tally(&out);
    assert_eq!(
        (t.get("replayed"), t.get("skipped")),
        (Some(&2), Some(&1)),
        "{t:?}"
    );
    assert!(stderr(&out).contains("is a copy of"), "{}", stderr(&out));
    assert_eq!(read_all(&r.source.name).await.len(), 2);
    let listed = json_lines(&r.morgue(&["list"]));
    let copy = listed.iter().find(|l| !l["copy_of"].is_null()).unwrap();
    assert_eq!(copy["state"], "replayed");
    // --force sends the copy anyway.
    let id = copy["id"].as_str().unwrap();
    let out = r.morgue(&["replay", id, "--yes", "--force"]);
    assert_eq!(
        json_lines(&out)[0]["status"],
        "replayed",
        "{}",
        stderr(&out)
    );
    assert_eq!(read_all(&r.source.name).await.len(), 3);
}

#[tokio::test]
async fn a_ledger_that_refuses_the_record_sends_nothing_and_the_next_run_replays_once() {
    let r = Race::new("refused", 1).await;
    let id = json_lines(&r.morgue(&["list"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ledger = format!("{}.morgue-ledger", r.dlq.name);
    let _ledger = TestTopic::named(ledger.clone(), 1, &[("cleanup.policy", "compact")]).await;
    // The ledger refuses every entry: the message and its entry share one transaction,
    // so the message is not delivered either.
    alter_topic(&ledger, "max.message.bytes", "64").await;
    let out = r.morgue(&["replay", &id, "--yes"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], "failed", "{line}");
    assert!(line["error"].as_str().unwrap().contains(&ledger), "{line}");
    assert!(r.arrived().await.is_empty(), "{:?}", r.arrived().await);
    assert_eq!(r.states().get("new"), Some(&1));

    alter_topic(&ledger, "max.message.bytes", "1048588").await;
    let out = r.morgue(&["replay", &id, "--yes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], "replayed");
    r.assert_exactly_once().await;
    assert_eq!(r.states().get("replayed"), Some(&1));
}

#[tokio::test]
async fn the_tui_refuses_a_letter_another_operator_replayed_a_second_ago() {
    let r = Race::new("tui-late", 1).await;
    let id = json_lines(&r.morgue(&["list"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tui = Tmux::start(&format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} --kafka {} --topic {}; sleep 60",
        r.audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        kafka_brokers(),
        r.dlq.name
    ));
    tui.wait_for(&r.keys[0][..8]);
    // The dialog is open in the TUI when the other operator replays the letter.
    tui.keys(&["r"]);
    // A long name wraps in the dialog: the label, then the name.
    tui.wait_for("to topic:");
    tui.wait_for(&r.source.name);
    let out = r.morgue(&["replay", &id, "--yes"]);
    assert_eq!(
        json_lines(&out)[0]["status"],
        "replayed",
        "{}",
        stderr(&out)
    );
    // The TUI reads the ledger afresh before it writes: no wait is needed.
    tui.keys(&["Enter"]);
    let who = morgue::engine::model::names::whoami();
    let screen = tui.wait_for("already replayed");
    assert!(screen.contains(&format!("by {who}")), "{screen}");
    r.assert_exactly_once().await;
}
