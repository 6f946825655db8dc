//! Replay planning: refusals, header stripping and stamping.

use super::*;
use crate::engine::model::letter::{LetterId, ReplayRecord};

fn policy() -> ReplayPolicy {
    ReplayPolicy {
        read_only: false,
        dlq_topic: "orders.DLT".into(),
        keep_headers: vec!["TraceParent".into()],
    }
}

fn letter() -> DeadLetter {
    let mut h = Headers::default();
    h.push("content-type", "application/json");
    h.push("kafka_dlt-original-topic", "orders");
    h.push("kafka_dlt-exception-message", "boom");
    h.push("traceparent", "00-1-2-01");
    h.push("X-B3-TraceId", "abc");
    h.push("__replicator_id", "r1");
    h.push("morgue-replay-id", "old");
    h.push("tenant", "acme");
    DeadLetter::from_record(
        Some(LetterId::Kafka {
            partition: 0,
            offset: 5,
        }),
        None,
        Some(b"K".to_vec()),
        Some(b"{\"v\":1}".to_vec()),
        h,
    )
}

#[test]
fn plans_to_the_source_topic_with_context_stripped() {
    let p = plan(&letter(), None, None, &policy(), "r-1".into(), false).unwrap();
    assert_eq!(p.topic, "orders");
    assert_eq!(p.key.as_deref(), Some(&b"K"[..]));
    assert_eq!(p.value.as_deref(), Some(&b"{\"v\":1}"[..]));
    let names: Vec<_> = p.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "content-type",
            "traceparent",
            "tenant",
            "morgue-replay-id",
            "morgue-replay-count"
        ]
    );
    assert_eq!(p.headers.last("morgue-replay-id"), Some(&b"r-1"[..]));
    assert_eq!(p.headers.last("morgue-replay-count"), Some(&b"1"[..]));
    let stripped: Vec<_> = p
        .stripped
        .iter()
        .map(|(n, why)| format!("{n}:{why}"))
        .collect();
    assert_eq!(
        stripped,
        [
            "kafka_dlt-original-topic:failure",
            "kafka_dlt-exception-message:failure",
            "X-B3-TraceId:tracing",
            "__replicator_id:replication",
            "morgue-replay-id:failure"
        ]
    );
}

#[test]
fn an_edited_value_replaces_the_original_and_is_marked() {
    let p = plan(
        &letter(),
        Some("orders-v2"),
        Some(b"{\"v\":2}".to_vec()),
        &policy(),
        "r".into(),
        false,
    )
    .unwrap();
    assert_eq!(p.topic, "orders-v2");
    assert!(p.edited);
    assert_eq!(p.value.as_deref(), Some(&b"{\"v\":2}"[..]));
}

#[test]
fn dangerous_targets_are_refused_with_the_topic_quoted() {
    for (t, why) in [
        ("orders.DLT", "it is the DLQ being replayed from"),
        ("__consumer_offsets", "internal topic"),
        ("payments.DLT", "dead-letter topic"),
        ("payments-dlt", "dead-letter topic"),
        ("payments-retry-2", "retry topic"),
        ("payments-retry", "retry topic"),
        ("orders.DLT.morgue-ledger", "ledger"),
        ("orders.DLT.morgue-checkpoint", "ledger"),
    ] {
        let e = plan(&letter(), Some(t), None, &policy(), "r".into(), false).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("refused to replay into topic '{t}'")),
            "{msg}"
        );
        assert!(msg.contains(why), "{msg}");
    }
}

#[test]
fn read_only_refuses_before_anything_else() {
    let mut p = policy();
    p.read_only = true;
    let e = plan(&letter(), None, None, &p, "r".into(), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "refused replay of 0:5: the profile is read-only"
    );
}

#[test]
fn an_unknown_source_needs_a_named_target() {
    let l = DeadLetter::from_record(
        Some(LetterId::Kafka {
            partition: 1,
            offset: 2,
        }),
        None,
        None,
        None,
        Headers::default(),
    );
    let e = plan(&l, None, None, &policy(), "r".into(), false).unwrap_err();
    assert!(
        e.to_string()
            .contains("letter 1:2 has no known source topic"),
        "{e}"
    );
}

#[test]
fn a_replayed_letter_needs_force_and_counts_up() {
    let mut l = letter();
    l.state = LetterState::Replayed;
    l.history.push(ReplayRecord {
        replay_id: "a".into(),
        topic: "orders".into(),
        partition: 0,
        offset: 17,
        by: "ann@jump".into(),
        at_ms: 0,
        edited: false,
        key: None,
        transform: None,
    });
    let e = plan(&l, None, None, &policy(), "b".into(), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "letter 0:5 was already replayed to orders:0@17 by ann@jump; pass --force to replay it again"
    );
    let p = plan(&l, None, None, &policy(), "b".into(), true).unwrap();
    assert_eq!(p.replay_count, 2);
    assert_eq!(p.headers.last("morgue-replay-count"), Some(&b"2"[..]));
}
