//! A failed seek is never ignored: when a DLQ that refused a letter takes it at last,
//! the router seeks the stalled partition on to the message after it and resumes it.
//! If that seek fails (`MORGUE_TEST_DROP=seek` fails the first one), the partition
//! stays paused, the failure is logged, and the seek is made again before the
//! partition is resumed: nothing is read past or lost.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use crate::common::*;

#[tokio::test]
async fn a_failed_seek_keeps_the_partition_paused_until_it_is_sought() {
    let source = TestTopic::new("seek-src", 1).await;
    // The DLQ refuses anything over 64 bytes until it is raised below.
    let dlq = TestTopic::with_config("seek-dlq", 1, &[("max.message.bytes", "64")]).await;
    let group = unique("seek-group");
    let values = ["m0", "poison-m1", "m2", "m3", "m4"];
    for (i, v) in values.iter().enumerate() {
        let key = format!("{i:08}-0000-4000-8000-{i:012}");
        produce(&source.name, Some(key.as_bytes()), v.as_bytes(), &[], None).await;
    }
    let dir = std::env::temp_dir().join(unique("seek"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("seen.log");
    let exec = format!(
        "v=$(cat); echo \"$v\" >> {}; case \"$v\" in *poison*) exit 65;; esac",
        log.display()
    );
    let mut child = Spawned::new(
        crate::common::procs::morgue_cmd()
            .args(["route", "--kafka", &kafka_brokers(), "--topic", &dlq.name])
            .args(["--source", &source.name, "--group", &group, "--exec", &exec])
            .args(["--max-attempts", "1", "--dlq-attempts", "2"])
            .env("MORGUE_TEST_DROP", "seek")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let tap = Tap::stderr(&mut child);
    tap.wait_for("partition paused", 60);
    // The DLQ takes letters again: the stall ends with a seek, which fails once.
    alter_topic(&dlq.name, "max.message.bytes", "1048576").await;
    tap.wait_for(
        "failed (MORGUE_TEST_DROP=seek); the partition stays paused",
        60,
    );
    tap.wait_for("sought back to offset 2; partition resumed", 60);
    let (g, t) = (group.clone(), source.name.clone());
    wait_until("the router to commit every message", 60, move || {
        committed(&g, &t, 1) == [5]
    })
    .await;
    let child = child.take();
    crate::common::sigterm(&child);
    child.wait_with_output().unwrap();
    let seen = std::fs::read_to_string(&log).unwrap();
    for v in values {
        assert!(
            seen.lines().any(|l| l == v),
            "{v} was never processed:\n{seen}"
        );
    }
    let letters = read_all(&dlq.name).await;
    assert_eq!(letters.len(), 1, "{}", tap.text());
    assert_eq!(letters[0].value.as_deref(), Some(&b"poison-m1"[..]));
}
