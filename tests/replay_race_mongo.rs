//! Exactly-once replay from a MongoDB DLQ under company and crashes, against the real
//! MongoDB-protocol server and broker: three `morgue replay` processes and a TUI at
//! once, SIGKILLs at each step of the protocol, and a confirm that cannot be recorded.
//! State lives in the documents; sends go to Kafka. The scaffolding is the Kafka
//! races' (`common/race.rs`).
#![allow(clippy::unwrap_used)]

use std::process::Child;

use crate::common::procs::{finish, json_lines, kill_at, stderr, wait_marker};
use crate::common::race::{Race, tally, tui_on_triage, tui_replay_group, tui_sent};
use crate::common::*;
use mongodb::bson::doc;

/// The race's collection.
fn coll(r: &Race) -> &TestCollection {
    r.mongo.as_ref().unwrap()
}

/// How many documents the ledger shows replayed.
async fn replayed_docs(r: &Race) -> u64 {
    coll(r)
        .handle()
        .await
        .count_documents(doc! { "morgue.state": "replayed" })
        .await
        .unwrap()
}

/// How many lines of `out` have `status`.
fn count(out: &std::process::Output, status: &str) -> usize {
    tally(out).get(status).copied().unwrap_or(0)
}

#[tokio::test]
async fn three_processes_and_a_tui_replay_a_mongodb_dlq_exactly_once() {
    const N: usize = 200;
    let r = Race::mongo("race_mongo", N).await;
    let tui = tui_on_triage(&r);
    let procs: Vec<Child> = (0..3).map(|_| r.replay_all(&[]).spawn().unwrap()).collect();
    tui_replay_group(&tui);
    let mut sent = 0;
    for c in procs {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let (rep, skip, rec) = (
            count(&out, "replayed"),
            count(&out, "skipped"),
            count(&out, "recovered"),
        );
        assert_eq!(rep + skip + rec, N, "{}", stderr(&out));
        sent += rep;
    }
    let (tui_sent, screen) = tui_sent(&tui);
    assert_eq!(sent + tui_sent, N, "{screen}");
    r.assert_exactly_once().await;
    assert_eq!(replayed_docs(&r).await, N as u64);
}

#[tokio::test]
async fn sigkill_inside_the_window_on_a_mongodb_dlq_never_doubles() {
    const N: usize = 20;
    for (round, step) in ["announced", "opened", "produced", "sent"]
        .iter()
        .enumerate()
    {
        let r = Race::mongo(&format!("kill_mongo{round}"), N).await;
        let mut victim = r.replay_all(&[]);
        victim.env("MORGUE_TEST_PAUSE", format!("{step}:5000"));
        let survivor = kill_at(victim, &format!("morgue-test-pause: {step}"), || {
            r.replay_all(&[]).spawn().unwrap()
        })
        .unwrap_or_else(|| panic!("round {round}: never paused at {step}"));
        let out = survivor.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let out = r.replay_all(&["--takeover-after", "0s"]).output().unwrap();
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        r.assert_exactly_once().await;
        assert_eq!(replayed_docs(&r).await, N as u64, "round {round}");
    }
}

#[tokio::test]
async fn a_confirm_the_collection_refuses_is_sent_unconfirmed_then_confirmed() {
    let r = Race::mongo("unconfirmed_mongo", 1).await;
    let c = coll(&r);
    let h = c.handle().await;
    let id = h
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap()
        .get_object_id("_id")
        .unwrap()
        .to_hex();
    let mut cmd = r.command(&["replay", &id, "--yes"]);
    cmd.env("MORGUE_TEST_PAUSE", "sent:3000");
    let moved = format!("{}_away", c.name);
    let (child, err) = wait_marker(cmd.spawn().unwrap(), "morgue-test-pause: sent", 3);
    // The collection goes away between the send and the confirm.
    let admin = mongodb::Client::with_uri_str(mongo_uri()).await.unwrap();
    admin
        .database("admin")
        .run_command(doc! {
            "renameCollection": format!("{}.{}", c.db, c.name),
            "to": format!("{}.{moved}", c.db),
        })
        .await
        .unwrap();
    let out = finish(child, err);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], "sent-unconfirmed");
    // The failed confirm may have left an empty collection under the old name.
    h.drop().await.unwrap();
    admin
        .database("admin")
        .run_command(doc! {
            "renameCollection": format!("{}.{moved}", c.db),
            "to": format!("{}.{}", c.db, c.name),
        })
        .await
        .unwrap();
    let out = r
        .command(&["replay", &id, "--yes", "--takeover-after", "0s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], "recovered");
    r.assert_exactly_once().await;
    assert_eq!(replayed_docs(&r).await, 1);
}
