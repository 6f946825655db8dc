//! Ledger format 2 against the real broker: a ledger written by the format-1 code
//! (tests/fixtures/ledger_v1.jsonl, written by commit ac5da33) continued while two
//! sessions replay, one of them paced; a ledger holding a newer format refused.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};

use crate::common::procs::{json_lines, replay_ids, shown, stderr};
use crate::common::race::seed_on;
use crate::common::*;
use morgue::backends::kafka::KafkaConfig;
use morgue::engine::{
    DeadLetter, FailureContext, Headers, Reason, SourceCoords, model::conventions,
};

/// The key of fixture letter `0:i` (36 characters).
fn key(i: usize) -> String {
    format!("5f0c7d2e-9a41-4b6e-8c3d-0000000000{i:02}")
}

struct Fixture {
    dlq: TestTopic,
    to: TestTopic,
    audit: std::path::PathBuf,
}

impl Fixture {
    /// A one-partition DLQ whose letters `0:0`..`0:5` are the fixture's, then `extra`
    /// letters written in transactions (a commit marker after each); with `ledger`
    /// records written into its ledger topic, keys and values as given.
    async fn new(prefix: &str, extra: usize, ledger: &[(String, Vec<u8>)]) -> Fixture {
        let dlq = TestTopic::new(&format!("{prefix}-dlq"), 1).await;
        let to = TestTopic::new(&format!("{prefix}-to"), 3).await;
        let cfg = KafkaConfig::new(kafka_brokers());
        let producer = cfg.producer().unwrap();
        for i in 0..6 {
            let src = SourceCoords {
                topic: Some("orders-src".into()),
                partition: Some(1),
                offset: Some(i as i64),
                timestamp_ms: Some(1_765_000_000_000),
                consumer_group: Some("orders".into()),
            };
            let failure = FailureContext {
                exception_class: Some("com.acme.OrderRejected".into()),
                message: Some(format!("order {i} rejected")),
                reason: Reason::Failed,
                ..FailureContext::default()
            };
            let l = DeadLetter::from_record(
                None,
                None,
                Some(key(i).into_bytes()),
                Some(format!("{{\"n\":{i}}}").into_bytes()),
                Headers(conventions::encode(&src, &failure)),
            );
            cfg.write(&producer, &dlq.name, &l).await.unwrap();
        }
        seed_on(&kafka_brokers(), &dlq.name, "orders-src", extra, |i| {
            1000 + i as i64
        })
        .await;
        let ledger_topic = format!("{}.morgue-ledger", dlq.name);
        TestTopic::named(ledger_topic.clone(), 1, &[("cleanup.policy", "compact")]).await;
        for (k, v) in ledger {
            produce(&ledger_topic, Some(k.as_bytes()), v, &[], None).await;
        }
        let audit = std::env::temp_dir()
            .join(unique("audit"))
            .join("audit.jsonl");
        Fixture { dlq, to, audit }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = crate::common::procs::morgue_cmd();
        c.args(args)
            .args(["--kafka", &kafka_brokers(), "--topic", &self.dlq.name])
            .env("MORGUE_AUDIT_LOG", &self.audit)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn morgue(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Every letter's JSON line, by letter id.
    fn letters(&self) -> HashMap<String, serde_json::Value> {
        let out = self.morgue(&["list"]);
        assert!(out.status.success(), "{}", stderr(&out));
        json_lines(&out)
            .into_iter()
            .map(|l| (format!("{}:{}", l["partition"], l["offset"]), l))
            .collect()
    }

    /// The ledger topic's records: key and value.
    async fn ledger(&self) -> Vec<(String, Vec<u8>)> {
        read_all(&format!("{}.morgue-ledger", self.dlq.name))
            .await
            .into_iter()
            .map(|l| (String::from_utf8(l.key.unwrap()).unwrap(), l.value.unwrap()))
            .collect()
    }
}

/// The fixture's records: key and value bytes.
fn fixture() -> Vec<(String, Vec<u8>)> {
    include_str!("fixtures/ledger_v1.jsonl")
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let value = serde_json::to_vec(&v["value"]).unwrap();
            (v["key"].as_str().unwrap().to_string(), value)
        })
        .collect()
}

#[tokio::test]
async fn a_format_1_ledger_is_continued_in_format_2_while_two_sessions_replay() {
    const EXTRA: usize = 120;
    let f = Fixture::new("v1", EXTRA, &fixture()).await;
    let before = f.letters();
    assert_eq!(before.len(), 6 + EXTRA);
    // The format-1 records say what each fixture letter is.
    let state = |m: &HashMap<String, serde_json::Value>, id: &str| m[id]["state"].clone();
    for (id, s, h) in [
        ("0:0", "replayed", 1),
        ("0:1", "replayed", 2),
        ("0:2", "resolved", 0),
        ("0:3", "edited", 0),
        ("0:4", "replaying", 0),
        ("0:5", "replayed", 1),
    ] {
        assert_eq!(shown(&state(&before, id)), s, "{id}: {}", before[id]);
        assert_eq!(before[id]["history"].as_array().unwrap().len(), h, "{id}");
    }
    assert!(
        before["0:4"]["held_by"]
            .as_str()
            .unwrap()
            .starts_with("ann@jump-1 since ")
    );
    // A paced replay of the new letters runs while a second session replays the edited
    // letter and replays 0:0 again.
    let paced = f
        .command(&[
            "replay",
            "--filter",
            "state:new",
            "--to",
            &f.to.name,
            "--rate",
            "60",
            "--yes",
        ])
        .spawn()
        .unwrap();
    wait_until("the paced replay has sent some letters", 60, || {
        f.letters()
            .values()
            .filter(|l| l["state"] == "replayed")
            .count()
            > 10
    })
    .await;
    let edited = f.morgue(&[
        "replay",
        "--filter",
        "state:edited",
        "--to",
        &f.to.name,
        "--yes",
    ]);
    assert!(edited.status.success(), "{}", stderr(&edited));
    let again_filter = format!("key:{}", key(0));
    let again = f.morgue(&[
        "replay",
        "--filter",
        &again_filter,
        "--to",
        &f.to.name,
        "--force",
        "--yes",
    ]);
    assert!(again.status.success(), "{}", stderr(&again));
    let paced = paced.wait_with_output().unwrap();
    assert!(paced.status.success(), "{}", stderr(&paced));

    let after = f.letters();
    // Fixture letters keep their history; format-2 writes add to it.
    assert_eq!(replay_ids(&after["0:0"])[0], replay_ids(&before["0:0"])[0]);
    assert_eq!(replay_ids(&after["0:0"]).len(), 2);
    assert_eq!(replay_ids(&after["0:1"]), replay_ids(&before["0:1"]));
    assert_eq!(state(&after, "0:2"), "resolved");
    assert_eq!(shown(&state(&after, "0:3")), "replayed");
    let h3 = &after["0:3"]["history"][0];
    assert_eq!(h3["edited"], true, "{}", after["0:3"]);
    assert_eq!(state(&after, "0:4"), "replaying");
    assert_eq!(replay_ids(&after["0:5"]), replay_ids(&before["0:5"]));
    let replayed = after
        .values()
        .filter(|l| shown(&l["state"]) == "replayed")
        .count();
    assert_eq!(replayed, 4 + EXTRA, "every new letter replayed");
    // Exactly once in the target: each new letter's key once, 0:0 and 0:3 once each,
    // 0:3 with its edited value.
    let arrived = read_all(&f.to.name).await;
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for m in &arrived {
        by_key
            .entry(String::from_utf8(m.key.clone().unwrap()).unwrap())
            .or_default()
            .push(String::from_utf8(m.value.clone().unwrap()).unwrap());
    }
    assert_eq!(arrived.len(), EXTRA + 2);
    assert!(by_key.values().all(|v| v.len() == 1), "{by_key:?}");
    assert_eq!(
        by_key[&key(3)],
        vec![r#"{"n":33,"fixed":true}"#.to_string()]
    );
    // The fixture's 13 records, then format-2 records only, far fewer than letters.
    let records = f.ledger().await;
    let fixture_keys: Vec<String> = fixture().into_iter().map(|r| r.0).collect();
    let got_keys: Vec<String> = records.iter().take(13).map(|r| r.0.clone()).collect();
    assert_eq!(got_keys, fixture_keys);
    let new = &records[13..];
    assert!(
        new.iter()
            .all(|(k, v)| k.starts_with("w/") && v.starts_with(b"{\"format\":2,"))
    );
    assert!(
        new.len() < EXTRA + 2,
        "{} records for {} letters",
        new.len(),
        EXTRA + 2
    );
}

#[tokio::test]
async fn a_ledger_of_a_newer_format_is_read_but_never_written() {
    let mut records = fixture();
    records.push((
        "w/from-the-future".into(),
        br#"{"format":4,"by":"zoe@jump","entries":"opaque"}"#.to_vec(),
    ));
    let f = Fixture::new("v3", 4, &records).await;
    // Reading goes on: the letters and the states format 1 gave them.
    let letters = f.letters();
    assert_eq!(letters.len(), 10);
    assert_eq!(letters["0:2"]["state"], "resolved");
    // Every write is refused in one line that says why, and nothing is written.
    for args in [
        vec![
            "replay",
            "--filter",
            "state:new",
            "--to",
            &f.to.name,
            "--yes",
        ],
        vec!["resolve", "0:3", "--yes"],
    ] {
        let out = f.morgue(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {err}");
        assert!(
            err.contains("holds records of format 4, written by a newer morgue"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(f.ledger().await.len(), records.len());
    assert!(read_all(&f.to.name).await.is_empty());
}
