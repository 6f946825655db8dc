//! The dead-letter model through a real Kafka-protocol broker: bytes, headers and
//! decoded failure context survive a write and a read unchanged.
#![allow(clippy::unwrap_used)]

use crate::common::{TestTopic, kafka_brokers};
use morgue::backends::kafka::{KafkaBackendError, KafkaConfig};
use morgue::engine::model::conventions;
use morgue::engine::{DeadLetter, FailureContext, Headers, LetterId, Reason, SourceCoords};

fn spring_letter() -> DeadLetter {
    let src = SourceCoords {
        topic: Some("trades".into()),
        partition: Some(2),
        offset: Some(41),
        timestamp_ms: Some(1_732_700_000_000),
        consumer_group: Some("trade-processor".into()),
    };
    let ctx = FailureContext {
        exception_class: Some("trade.ValidationError".into()),
        message: Some("price must be positive: -3".into()),
        reason: Reason::MaxAttemptsExceeded,
        attempts: Some(3),
        processor: Some("worker-7".into()),
        ..FailureContext::default()
    };
    let mut headers = Headers(conventions::encode(&src, &ctx));
    headers.push(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    );
    DeadLetter::from_record(
        None,
        Some(1_732_700_001_000),
        Some(b"T-1001".to_vec()),
        Some(vec![0xff, 0xfe, 0x00, b'{']),
        headers,
    )
}

#[tokio::test]
async fn letters_round_trip_through_the_broker() {
    let topic = TestTopic::new("foundation-roundtrip", 2).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    let producer = cfg.producer().unwrap();

    let spring = spring_letter();
    let plain = DeadLetter::from_record(
        None,
        None,
        None,
        Some(b"{\"id\":7}".to_vec()),
        Headers::default(),
    );
    let empty = DeadLetter::from_record(None, None, Some(b"k".to_vec()), None, Headers::default());
    let mut ids = Vec::new();
    for l in [&spring, &plain, &empty] {
        ids.push(cfg.write(&producer, &topic.name, l).await.unwrap());
    }
    assert!(ids.iter().all(|id| matches!(id, LetterId::Kafka { .. })));

    let t = topic.name.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        let n = cfg.read_to_end(&t, |l| v.push(l)).unwrap();
        (n, v)
    })
    .await
    .unwrap();
    assert_eq!(read.0, 3);
    let by_id = |id: &LetterId| read.1.iter().find(|l| l.id.as_ref() == Some(id)).unwrap();

    let got = by_id(&ids[0]);
    assert_eq!(got.key, spring.key);
    assert_eq!(got.value, spring.value);
    assert_eq!(got.headers, spring.headers);
    assert_eq!(got.dlq_timestamp_ms, Some(1_732_700_001_000));
    assert_eq!(got.source, spring.source);
    assert_eq!(got.failure, spring.failure);
    assert_eq!(got.failure.reason, Reason::MaxAttemptsExceeded);

    let got = by_id(&ids[1]);
    assert_eq!(got.key, None);
    assert_eq!(got.value.as_deref(), Some(&b"{\"id\":7}"[..]));
    assert!(got.source.is_unknown());
    assert_eq!(got.failure.reason, Reason::Unknown);

    let got = by_id(&ids[2]);
    assert_eq!(got.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(got.value, None);
}

#[tokio::test]
async fn a_missing_topic_is_named_with_the_brokers() {
    let cfg = KafkaConfig::new(kafka_brokers());
    let err = tokio::task::spawn_blocking(move || cfg.read_to_end("no-such-topic-morgue", |_| {}))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, KafkaBackendError::TopicNotFound { .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "topic 'no-such-topic-morgue' not found on {}",
            kafka_brokers()
        )
    );
}

#[tokio::test]
async fn a_bad_property_is_refused_with_its_name() {
    let mut cfg = KafkaConfig::new(kafka_brokers());
    cfg.properties.push(("no.such.property".into(), "1".into()));
    let Err(err) = cfg.browse_consumer() else {
        panic!("an unknown property was accepted");
    };
    assert!(err.to_string().contains("no.such.property"), "{err}");
}
