//! The router's MongoDB sink on a team's collection, against the real server: it is
//! idempotent without creating any index, so documents the team's own writer stores
//! (repeats of one message included) never stall it, and the team's writer never
//! trips over morgue's.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use crate::common::*;
use futures::TryStreamExt;
use mongodb::bson::{DateTime, doc};

#[tokio::test]
async fn the_sink_creates_no_index_and_tolerates_the_teams_repeats() {
    let c = TestCollection::new("team");
    let source = TestTopic::new("team-src", 1).await;
    let coll = c.handle().await;
    // The team's writer stored one message twice (it failed twice), as pymongo code does.
    for _ in 0..2 {
        coll.insert_one(doc! { "key": "T-1", "value": "{}", "topic": &source.name, "partition": 0, "offset": 0i64, "error_time": DateTime::now() })
            .await
            .unwrap();
    }
    produce(&source.name, Some(b"T-1"), b"poison-a", &[], None).await;
    produce(&source.name, Some(b"T-2"), b"poison-b", &[], None).await;
    let group = unique("team-group");
    let child = crate::common::procs::morgue_cmd()
        .args([
            "route",
            "--kafka",
            &kafka_brokers(),
            "--source",
            &source.name,
        ])
        .args(["--group", &group, "--exec", "cat >/dev/null; exit 65"])
        .args(c.args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (g, t) = (group.clone(), source.name.clone());
    wait_until("committed(&g, &t, 1) == [2]", 60, move || {
        committed(&g, &t, 1) == [2]
    })
    .await;
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["failed"], 2, "{stats} {err}");
    assert_eq!(stats["dlq_stalls"], 0, "{stats} {err}");
    assert_eq!(coll.count_documents(doc! {}).await.unwrap(), 4);
    let names: Vec<String> = coll
        .list_index_names()
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n != "_id_")
        .collect();
    assert!(
        names.is_empty(),
        "morgue created indexes on the team's collection: {names:?}"
    );
    // The team's writer can still store a repeat of a message morgue dead-lettered.
    coll.insert_one(
        doc! { "key": "T-2", "value": "{}", "topic": &source.name, "partition": 0, "offset": 1i64 },
    )
    .await
    .unwrap();
    // morgue's documents carry its deterministic ids; readers take them as any other.
    let ids: Vec<String> = coll
        .find(doc! { "_id": { "$type": "string" } })
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .iter()
        .map(|d| d.get_str("_id").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let shown = crate::common::procs::morgue_cmd()
        .args(["show", &ids[0]])
        .args(c.args())
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
}
