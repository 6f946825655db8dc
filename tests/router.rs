//! `morgue route` end to end against the real broker: failures reach the DLQ with the
//! right reasons and headers, successes do not, and offsets are committed only past
//! messages that are processed or safely dead-lettered.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use crate::common::*;
use morgue::engine::{DeadLetter, Reason};

/// Poison → exit 65 (failed); "flaky" fails once; "down" always fails (retried).
const SCRIPT: &str = r#"v=$(cat | tr -d '\000'); case "$v" in
  *poison*) echo "poison pill: $v" >&2; exit 65;;
  *flaky*) [ "$MORGUE_ATTEMPT" -ge 2 ] || { echo "downstream timeout" >&2; exit 1; };;
  *down*) echo "downstream unavailable" >&2; exit 1;;
esac"#;

fn route(source: &str, dlq: &str, group: &str, extra: &[&str]) -> Spawned {
    let brokers = kafka_brokers();
    let mut args = vec![
        "route",
        "--kafka",
        &brokers,
        "--topic",
        dlq,
        "--source",
        source,
        "--group",
        group,
        "--exec",
        SCRIPT,
        "--max-attempts",
        "3",
        "--backoff",
        "10ms",
        "--max-age",
        "1h",
    ];
    args.extend_from_slice(extra);
    Spawned::new(
        crate::common::procs::morgue_cmd()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn stop(child: Spawned) -> (serde_json::Value, String) {
    let child = child.take();
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "route failed: {stderr}");
    let stats = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (stats, stderr)
}

fn find<'a>(letters: &'a [DeadLetter], value: &[u8]) -> &'a DeadLetter {
    letters
        .iter()
        .find(|l| l.value.as_deref() == Some(value))
        .unwrap()
}

#[tokio::test]
async fn failures_reach_the_dlq_with_reasons_and_offsets_are_committed() {
    let source = TestTopic::new("route-src", 2).await;
    let dlq = TestTopic::new("route-dlq", 1).await;
    let group = unique("route-group");
    let now = chrono::Utc::now().timestamp_millis();
    let down_binary: &[u8] = &[0xff, 0xfe, b'd', b'o', b'w', b'n'];
    let trace: (&str, &[u8]) = ("traceparent", b"00-abc-def-01");
    produce(&source.name, Some(b"ok-1"), b"{\"px\":1}", &[], None).await;
    produce(
        &source.name,
        Some(b"poison"),
        b"{\"poison\":true}",
        &[trace],
        None,
    )
    .await;
    produce(&source.name, Some(b"flaky"), b"flaky", &[], None).await;
    produce(&source.name, None, down_binary, &[], None).await;
    produce(
        &source.name,
        Some(b"old"),
        b"{\"px\":2}",
        &[],
        Some(now - 2 * 3600 * 1000),
    )
    .await;
    produce(&source.name, Some(b"ok-2"), b"{\"px\":3}", &[], None).await;

    let child = route(&source.name, &dlq.name, &group, &[]);
    let letters = wait_for_letters(&dlq.name, 3, 60).await;
    let marks = high_watermarks(&source.name, 2);
    // Wait for the commit of everything, then stop.
    wait_until("committed(&group, &source.name, 2) == marks", 30, || {
        committed(&group, &source.name, 2) == marks
    })
    .await;
    let (stats, stderr) = stop(child);
    assert_eq!(letters.len(), 3, "{letters:#?}\n{stderr}");
    assert_eq!(
        read_all(&dlq.name).await.len(),
        3,
        "no letter may arrive late or twice"
    );

    let poison = find(&letters, b"{\"poison\":true}");
    assert_eq!(poison.failure.reason, Reason::Failed);
    assert_eq!(poison.failure.attempts, Some(1));
    assert_eq!(
        poison.failure.exception_class.as_deref(),
        Some("exec: exit 65")
    );
    assert_eq!(
        poison.failure.message.as_deref(),
        Some("poison pill: {\"poison\":true}")
    );
    assert_eq!(poison.key.as_deref(), Some(&b"poison"[..]));
    assert_eq!(
        poison.headers.last("traceparent"),
        Some(&b"00-abc-def-01"[..])
    );
    assert_eq!(poison.source.topic.as_deref(), Some(source.name.as_str()));
    assert_eq!(
        poison.source.consumer_group.as_deref(),
        Some(group.as_str())
    );
    assert!(
        poison
            .headers
            .last("kafka_dlt-original-offset")
            .unwrap()
            .len()
            == 8
    );

    let down = find(&letters, down_binary);
    assert_eq!(down.failure.reason, Reason::MaxAttemptsExceeded);
    assert_eq!(down.failure.attempts, Some(3));
    assert_eq!(down.key, None);
    assert_eq!(
        down.failure.message.as_deref(),
        Some("downstream unavailable")
    );

    let old = find(&letters, b"{\"px\":2}");
    assert_eq!(old.failure.reason, Reason::Expired);
    assert_eq!(old.failure.attempts, Some(0));
    assert_eq!(old.source.timestamp_ms, Some(now - 2 * 3600 * 1000));

    assert_eq!(stats["processed"], 3, "{stats}");
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["max_attempts_exceeded"], 1);
    assert_eq!(stats["expired"], 1);
    assert_eq!(committed(&group, &source.name, 2), marks);
}

#[tokio::test]
async fn a_dlq_write_failure_commits_nothing_past_it_and_loses_nothing() {
    let source = TestTopic::new("route-stall-src", 1).await;
    // The DLQ refuses anything over 64 bytes until it is raised below.
    let dlq = TestTopic::with_config("route-stall-dlq", 1, &[("max.message.bytes", "64")]).await;
    let group = unique("route-stall-group");
    produce(&source.name, Some(b"ok"), b"fine", &[], None).await;
    produce(&source.name, Some(b"p"), b"poison-1", &[], None).await;
    produce(&source.name, Some(b"ok2"), b"fine-too", &[], None).await;

    let mut child = route(&source.name, &dlq.name, &group, &["--dlq-attempts", "2"]);
    let tap = Tap::stderr(&mut child);
    // The first message is committed; the poison one (offset 1) is not, once the
    // router has given up writing it and paused its partition.
    wait_until("committed(&group, &source.name, 1) == [1]", 30, || {
        committed(&group, &source.name, 1) == [1]
    })
    .await;
    tap.wait_for("partition paused", 60);
    assert_eq!(committed(&group, &source.name, 1), [1]);
    assert!(read_all(&dlq.name).await.is_empty());

    // The DLQ recovers: the stalled letter is written, then the rest is processed.
    alter_topic(&dlq.name, "max.message.bytes", "1048576").await;
    let letters = wait_for_letters(&dlq.name, 1, 30).await;
    wait_until("committed(&group, &source.name, 1) == [3]", 30, || {
        committed(&group, &source.name, 1) == [3]
    })
    .await;
    let (stats, _) = stop(child);
    let stderr = tap.text();
    assert_eq!(letters.len(), 1, "{stderr}");
    assert_eq!(letters[0].value.as_deref(), Some(&b"poison-1"[..]));
    assert_eq!(stats["dlq_stalls"], 1, "{stats}");
    assert_eq!(stats["processed"], 2);
    assert_eq!(committed(&group, &source.name, 1), [3]);
}

#[tokio::test]
async fn shutdown_during_a_stall_commits_nothing_and_a_restart_delivers() {
    let source = TestTopic::new("route-restart-src", 1).await;
    let bad = TestTopic::with_config("route-restart-bad", 1, &[("max.message.bytes", "64")]).await;
    let good = TestTopic::new("route-restart-good", 1).await;
    let group = unique("route-restart-group");
    produce(&source.name, Some(b"p"), b"poison-2", &[], None).await;

    let mut child = route(&source.name, &bad.name, &group, &["--dlq-attempts", "1"]);
    // Stopped during the stall: once the DLQ has refused the letter.
    Tap::stderr(&mut child).wait_for("partition paused", 60);
    let (stats, _) = stop(child);
    assert_eq!(stats["abandoned"], 1, "{stats}");
    assert_eq!(committed(&group, &source.name, 1), [-1]);

    let child = route(&source.name, &good.name, &group, &[]);
    let letters = wait_for_letters(&good.name, 1, 30).await;
    wait_until("committed(&group, &source.name, 1) == [1]", 30, || {
        committed(&group, &source.name, 1) == [1]
    })
    .await;
    stop(child);
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].value.as_deref(), Some(&b"poison-2"[..]));
    assert_eq!(committed(&group, &source.name, 1), [1]);
}
