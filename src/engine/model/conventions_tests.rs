//! Convention decoding tests built from the exact byte encodings each framework writes.

use super::*;
use crate::engine::model::letter::{DeadLetter, LetterState};

fn headers(pairs: &[(&str, &[u8])]) -> Headers {
    let mut h = Headers::default();
    for (n, v) in pairs {
        h.push(*n, v.to_vec());
    }
    h
}

const TS: i64 = 1_732_700_000_000;

#[test]
fn spring_dlt_with_binary_numbers() {
    let h = headers(&[
        ("kafka_dlt-original-topic", b"trades"),
        ("kafka_dlt-original-partition", &3i32.to_be_bytes()),
        ("kafka_dlt-original-offset", &42i64.to_be_bytes()),
        ("kafka_dlt-original-timestamp", &TS.to_be_bytes()),
        ("kafka_dlt-original-timestamp-type", b"CreateTime"),
        ("kafka_dlt-original-consumer-group", b"trade-processor"),
        (
            "kafka_dlt-exception-fqcn",
            b"org.springframework.kafka.listener.ListenerExecutionFailedException",
        ),
        (
            "kafka_dlt-exception-cause-fqcn",
            b"java.lang.NumberFormatException",
        ),
        ("kafka_dlt-exception-message", b"For input string: \"abc\""),
        (
            "kafka_dlt-exception-stacktrace",
            b"java.lang.NumberFormatException\n\tat x.Y.z(Y.java:1)",
        ),
    ]);
    let (src, ctx) = decode(&h);
    assert_eq!(src.topic.as_deref(), Some("trades"));
    assert_eq!(src.partition, Some(3));
    assert_eq!(src.offset, Some(42));
    assert_eq!(src.timestamp_ms, Some(TS));
    assert_eq!(src.consumer_group.as_deref(), Some("trade-processor"));
    assert_eq!(
        ctx.exception_class.as_deref(),
        Some("org.springframework.kafka.listener.ListenerExecutionFailedException")
    );
    assert_eq!(
        ctx.cause_class.as_deref(),
        Some("java.lang.NumberFormatException")
    );
    assert_eq!(ctx.message.as_deref(), Some("For input string: \"abc\""));
    assert!(ctx.stack_trace.as_deref().unwrap().contains("Y.java:1"));
    assert_eq!(ctx.reason, Reason::Failed);
    assert!(!ctx.key_failure);
    assert_eq!(ctx.conventions, vec!["spring-dlt"]);
    assert!(ctx.notes.is_empty(), "{:?}", ctx.notes);
}

#[test]
fn spring_key_exception_fills_in_when_the_value_did_not_fail() {
    let h = headers(&[
        ("kafka_dlt-original-topic", b"trades"),
        (
            "kafka_dlt-key-exception-fqcn",
            b"org.apache.kafka.common.errors.SerializationException",
        ),
        ("kafka_dlt-key-exception-message", b"bad key"),
        ("kafka_dlt-key-exception-stacktrace", b"trace"),
    ]);
    let (_, ctx) = decode(&h);
    assert!(ctx.key_failure);
    assert_eq!(
        ctx.exception_class.as_deref(),
        Some("org.apache.kafka.common.errors.SerializationException")
    );
    assert_eq!(ctx.message.as_deref(), Some("bad key"));
    assert_eq!(ctx.stack_trace.as_deref(), Some("trace"));
}

#[test]
fn spring_reroute_and_retry_topic_headers() {
    let h = headers(&[
        ("kafka_original-topic", b"orders"),
        ("kafka_original-partition", &0i32.to_be_bytes()),
        ("kafka_original-offset", &7i64.to_be_bytes()),
        ("kafka_exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_exception-message", b"boom"),
        ("retry_topic-attempts", &4i32.to_be_bytes()),
        ("retry_topic-original-timestamp", &TS.to_be_bytes()),
        ("retry_topic-backoff-timestamp", &(TS + 5000).to_be_bytes()),
    ]);
    let (src, ctx) = decode(&h);
    assert_eq!(src.topic.as_deref(), Some("orders"));
    assert_eq!((src.partition, src.offset), (Some(0), Some(7)));
    assert_eq!(src.timestamp_ms, Some(TS));
    assert_eq!(ctx.attempts, Some(4));
    assert_eq!(
        ctx.exception_class.as_deref(),
        Some("java.lang.IllegalStateException")
    );
    assert_eq!(ctx.conventions, vec!["spring", "spring-retry"]);
}

#[test]
fn spring_cloud_stream_binder() {
    let h = headers(&[
        ("x-original-topic", b"payments"),
        ("x-exception-message", b"Dispatcher has no subscribers"),
        (
            "x-exception-stacktrace",
            b"org.springframework.messaging.MessageDeliveryException",
        ),
    ]);
    let (src, ctx) = decode(&h);
    assert_eq!(src.topic.as_deref(), Some("payments"));
    assert_eq!(
        ctx.message.as_deref(),
        Some("Dispatcher has no subscribers")
    );
    assert!(ctx.stack_trace.is_some());
    assert_eq!(ctx.conventions, vec!["spring-cloud-stream"]);
}

#[test]
fn kafka_connect_text_headers() {
    let h = headers(&[
        ("__connect.errors.topic", b"inventory"),
        ("__connect.errors.partition", b"7"),
        ("__connect.errors.offset", b"1234"),
        ("__connect.errors.connector.name", b"jdbc-sink"),
        ("__connect.errors.task.id", b"0"),
        ("__connect.errors.stage", b"VALUE_CONVERTER"),
        (
            "__connect.errors.class.name",
            b"org.apache.kafka.connect.json.JsonConverter",
        ),
        (
            "__connect.errors.exception.class.name",
            b"org.apache.kafka.connect.errors.DataException",
        ),
        (
            "__connect.errors.exception.message",
            b"Converting byte[] to Kafka Connect data failed",
        ),
        (
            "__connect.errors.exception.stacktrace",
            b"org.apache.kafka.connect.errors.DataException: ...",
        ),
    ]);
    let (src, ctx) = decode(&h);
    // "1234" is four bytes: decimal text must win over a 4-byte binary reading.
    assert_eq!((src.partition, src.offset), (Some(7), Some(1234)));
    assert_eq!(src.topic.as_deref(), Some("inventory"));
    assert_eq!(ctx.processor.as_deref(), Some("jdbc-sink"));
    assert_eq!(
        ctx.exception_class.as_deref(),
        Some("org.apache.kafka.connect.errors.DataException")
    );
    assert_eq!(ctx.conventions, vec!["kafka-connect"]);
}

#[test]
fn kafka_streams_kip_1034() {
    let h = headers(&[
        (
            "__streams.errors.exception",
            b"org.apache.kafka.common.errors.SerializationException",
        ),
        (
            "__streams.errors.message",
            b"Size of data received is not 8",
        ),
        ("__streams.errors.stacktrace", b"at org.apache..."),
        ("__streams.errors.topic", b"clicks"),
        ("__streams.errors.partition", b"2"),
        ("__streams.errors.offset", b"99"),
    ]);
    let (src, ctx) = decode(&h);
    assert_eq!(src.topic.as_deref(), Some("clicks"));
    assert_eq!((src.partition, src.offset), (Some(2), Some(99)));
    assert_eq!(
        ctx.message.as_deref(),
        Some("Size of data received is not 8")
    );
    assert_eq!(ctx.conventions, vec!["kafka-streams"]);
}

#[test]
fn karafka_current_and_legacy_names() {
    let new = headers(&[
        ("source_topic", b"events"),
        ("source_partition", b"1"),
        ("source_offset", b"500"),
        ("source_consumer_group", b"app"),
        ("source_attempts", b"3"),
        ("source_trace_id", b"abc-123"),
    ]);
    let (src, ctx) = decode(&new);
    assert_eq!(src.topic.as_deref(), Some("events"));
    assert_eq!((src.partition, src.offset), (Some(1), Some(500)));
    assert_eq!(src.consumer_group.as_deref(), Some("app"));
    assert_eq!(ctx.attempts, Some(3));
    assert_eq!(ctx.reason, Reason::Unknown);
    assert_eq!(ctx.conventions, vec!["karafka"]);

    let old = headers(&[
        ("original_topic", b"events"),
        ("original_partition", b"0"),
        ("original_offset", b"12"),
        ("original_consumer_group", b"legacy"),
    ]);
    let (src, ctx) = decode(&old);
    assert_eq!((src.partition, src.offset), (Some(0), Some(12)));
    assert_eq!(src.consumer_group.as_deref(), Some("legacy"));
    assert_eq!(ctx.conventions, vec!["karafka-legacy"]);
}

#[test]
fn smallrye_dead_letter_headers() {
    let h = headers(&[
        ("dead-letter-reason", b"Invalid price"),
        ("dead-letter-cause", b"negative value"),
        (
            "dead-letter-exception-class-name",
            b"java.lang.IllegalArgumentException",
        ),
        (
            "dead-letter-cause-class-name",
            b"java.lang.ArithmeticException",
        ),
        ("dead-letter-topic", b"prices"),
        ("dead-letter-partition", b"4"),
        ("dead-letter-offset", b"77"),
    ]);
    let (src, ctx) = decode(&h);
    assert_eq!(src.topic.as_deref(), Some("prices"));
    assert_eq!((src.partition, src.offset), (Some(4), Some(77)));
    assert_eq!(ctx.message.as_deref(), Some("Invalid price"));
    assert_eq!(ctx.cause_message.as_deref(), Some("negative value"));
    assert_eq!(
        ctx.cause_class.as_deref(),
        Some("java.lang.ArithmeticException")
    );
    assert_eq!(ctx.conventions, vec!["smallrye"]);
}

#[test]
fn watermill_poison_headers() {
    let h = headers(&[
        ("reason_poisoned", b"cannot unmarshal"),
        ("topic_poisoned", b"orders"),
        ("handler_poisoned", b"order-handler"),
        ("subscriber_poisoned", b"kafka"),
    ]);
    let (src, ctx) = decode(&h);
    assert_eq!(src.topic.as_deref(), Some("orders"));
    assert_eq!(ctx.processor.as_deref(), Some("order-handler"));
    assert_eq!(ctx.message.as_deref(), Some("cannot unmarshal"));
    assert_eq!(ctx.reason, Reason::Failed);
}

#[test]
fn a_repeated_header_takes_its_last_value() {
    let h = headers(&[
        ("kafka_dlt-original-topic", b"first"),
        ("kafka_dlt-original-partition", &1i32.to_be_bytes()),
        ("kafka_dlt-original-topic", b"second"),
        ("kafka_dlt-original-partition", &2i32.to_be_bytes()),
    ]);
    let (src, _) = decode(&h);
    assert_eq!(src.topic.as_deref(), Some("second"));
    assert_eq!(src.partition, Some(2));
}

#[test]
fn earlier_conventions_win_over_later_ones() {
    let h = headers(&[
        ("x-original-topic", b"from-scst"),
        ("kafka_dlt-original-topic", b"from-spring"),
        ("__connect.errors.connector.name", b"connector"),
        (MORGUE_HOST, b"worker-1"),
    ]);
    let (src, ctx) = decode(&h);
    assert_eq!(src.topic.as_deref(), Some("from-spring"));
    assert_eq!(ctx.processor.as_deref(), Some("worker-1"));
    assert_eq!(
        ctx.conventions,
        vec![
            "morgue",
            "spring-dlt",
            "kafka-connect",
            "spring-cloud-stream"
        ]
    );
}

#[test]
fn no_headers_means_unknown_source_not_a_guess() {
    let l = DeadLetter::from_record(
        None,
        Some(TS),
        Some(b"k".to_vec()),
        Some(b"v".to_vec()),
        Headers::default(),
    );
    assert!(l.source.is_unknown());
    assert_eq!(l.source, SourceCoords::default());
    assert_eq!(l.failure.reason, Reason::Unknown);
    assert!(l.failure.conventions.is_empty());
    assert_eq!(l.state, LetterState::New);
}

#[test]
fn undecodable_values_are_noted_with_the_bad_bytes() {
    let h = headers(&[
        ("kafka_dlt-original-partition", &[0x01, 0x02, 0x03]),
        ("kafka_dlt-exception-message", &[0x66, 0xff, 0x6f]),
        ("retry_topic-attempts", &(-1i64).to_be_bytes()),
        (MORGUE_REASON, b"gremlins"),
    ]);
    let (src, ctx) = decode(&h);
    assert_eq!(src.partition, None);
    assert_eq!(ctx.message.as_deref(), Some("f\u{fffd}o"));
    assert_eq!(ctx.attempts, None);
    assert_eq!(ctx.reason, Reason::Failed);
    let notes = ctx.notes.join("\n");
    assert!(
        notes.contains("'kafka_dlt-original-partition' is not a number: 0x010203 (3 bytes)"),
        "{notes}"
    );
    assert!(
        notes.contains("'kafka_dlt-exception-message' is not UTF-8: 0x66ff6f"),
        "{notes}"
    );
    assert!(
        notes.contains("'retry_topic-attempts' is out of range (-1)"),
        "{notes}"
    );
    assert!(
        notes.contains("'morgue-reason' is not a known reason: 'gremlins'"),
        "{notes}"
    );
}

#[test]
fn unknown_headers_are_kept_in_order() {
    let h = headers(&[
        ("traceparent", b"00-abc-def-01"),
        ("kafka_dlt-original-topic", b"t"),
        ("x-custom", &[0xde, 0xad]),
    ]);
    let l = DeadLetter::from_record(None, None, None, None, h.clone());
    assert_eq!(l.headers, h);
    let names: Vec<_> = l.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["traceparent", "kafka_dlt-original-topic", "x-custom"]
    );
}

#[test]
fn rfc3339_timestamps_are_read() {
    let h = headers(&[("x-original-timestamp", b"2024-11-27T09:33:20Z")]);
    assert_eq!(decode(&h).0.timestamp_ms, Some(TS));
}

fn full_context(key_failure: bool) -> (SourceCoords, FailureContext) {
    let src = SourceCoords {
        topic: Some("trades".into()),
        partition: Some(5),
        offset: Some(1_000_000_007),
        timestamp_ms: Some(TS),
        consumer_group: Some("trade-processor".into()),
    };
    let ctx = FailureContext {
        exception_class: Some("morgue::ProcessError".into()),
        cause_class: (!key_failure).then(|| "serde_json::Error".into()),
        message: Some("expected value at line 1 column 1".into()),
        stack_trace: Some("0: processor::handle\n1: router::run".into()),
        key_failure,
        reason: Reason::MaxAttemptsExceeded,
        attempts: Some(5),
        processor: Some("host-a".into()),
        conventions: vec!["morgue", "spring-dlt"],
        ..FailureContext::default()
    };
    (src, ctx)
}

#[test]
fn morgue_headers_round_trip() {
    for key_failure in [false, true] {
        let (src, ctx) = full_context(key_failure);
        let written = Headers(encode(&src, &ctx));
        let (src2, ctx2) = decode(&written);
        assert_eq!(src2, src);
        assert_eq!(ctx2, ctx);
    }
}

#[test]
fn morgue_headers_use_spring_binary_widths() {
    let (src, ctx) = full_context(false);
    let h = Headers(encode(&src, &ctx));
    assert_eq!(
        h.last("kafka_dlt-original-partition"),
        Some(&5i32.to_be_bytes()[..])
    );
    assert_eq!(
        h.last("kafka_dlt-original-offset"),
        Some(&1_000_000_007i64.to_be_bytes()[..])
    );
    assert_eq!(
        h.last("kafka_dlt-original-timestamp"),
        Some(&TS.to_be_bytes()[..])
    );
    assert_eq!(
        h.last("kafka_dlt-original-timestamp-type"),
        Some(&b"CreateTime"[..])
    );
    assert_eq!(h.last(MORGUE_ATTEMPTS), Some(&b"5"[..]));
    assert_eq!(h.last(MORGUE_REASON), Some(&b"max-attempts-exceeded"[..]));
    assert_eq!(h.last(MORGUE_HOST), Some(&b"host-a"[..]));
}

#[test]
fn failure_headers_are_recognised_for_stripping() {
    for name in [
        "kafka_dlt-original-topic",
        "kafka_dlt-original-timestamp-type",
        "retry_topic-backoff-timestamp",
        "__connect.errors.stage",
        "morgue-replay-id",
        "subscriber_poisoned",
        "x-death",
        "source_trace_id",
    ] {
        assert!(is_failure_header(name), "{name}");
    }
    for name in ["traceparent", "content-type", "x-tenant"] {
        assert!(!is_failure_header(name), "{name}");
    }
}
