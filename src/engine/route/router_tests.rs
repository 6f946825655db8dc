//! Router decisions with an in-process processor and sink (the Kafka loop around it
//! is tested against the real broker in tests/router.rs).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// Fails the first `fail_first` attempts (retryable or not), then succeeds.
struct Flaky {
    fail_first: u32,
    retryable: bool,
    calls: AtomicU32,
}

#[async_trait]
impl Processor for Flaky {
    async fn process(&self, _msg: &Incoming, attempt: u32) -> Result<(), ProcessError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if attempt <= self.fail_first {
            return Err(ProcessError {
                class: "test::Boom".into(),
                message: format!("attempt {attempt} failed"),
                stack_trace: Some("at test".into()),
                retryable: self.retryable,
            });
        }
        Ok(())
    }
}

/// Keeps written letters; refuses the first `refuse_first` writes.
#[derive(Default)]
struct Memory {
    refuse_first: u32,
    tries: AtomicU32,
    letters: Mutex<Vec<DeadLetter>>,
}

#[async_trait]
impl DeadLetterSink for Memory {
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        if self.tries.fetch_add(1, Ordering::SeqCst) < self.refuse_first {
            return Err(SinkError::new(
                crate::engine::model::error::FailureKind::Unreachable,
                "broker down",
            ));
        }
        let mut v = self.letters.lock().unwrap();
        v.push(letter.clone());
        Ok(LetterId::Kafka {
            partition: 0,
            offset: v.len() as i64 - 1,
        })
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

fn config(max_attempts: u32) -> RouterConfig {
    RouterConfig {
        group: "g".into(),
        instance: None,
        retry: RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        },
        max_age: Some(Duration::from_secs(60)),
        dlq_write_attempts: 3,
        dlq_backoff: Duration::from_millis(1),
        host: "host-a".into(),
    }
}

fn flaky(fail_first: u32, retryable: bool) -> Flaky {
    Flaky {
        fail_first,
        retryable,
        calls: AtomicU32::new(0),
    }
}

fn msg(ts: i64) -> Incoming {
    let mut headers = Headers::default();
    headers.push("traceparent", "00-1-2-01");
    Incoming {
        topic: "trades".into(),
        partition: 2,
        offset: 40,
        timestamp_ms: Some(ts),
        key: Some(b"T-1".to_vec()),
        value: Some(vec![0xff, 0x00, b'{']),
        headers,
    }
}

const NOW: i64 = 1_800_000_000_000;

fn router<P: Processor>(p: P, sink: Memory, max: u32) -> (Router<P, Memory>, watch::Sender<bool>) {
    let (tx, rx) = watch::channel(false);
    (Router::new(config(max), p, sink, rx), tx)
}

#[tokio::test]
async fn success_after_retries_is_processed() {
    let (r, _tx) = router(flaky(2, true), Memory::default(), 3);
    assert_eq!(
        r.handle(&msg(NOW), NOW).await,
        Routed::Processed { attempts: 3 }
    );
    assert!(r.sink().letters.lock().unwrap().is_empty());
}

#[tokio::test]
async fn each_retry_in_place_is_observed_as_it_starts() {
    let (r, _tx) = router(flaky(99, true), Memory::default(), 3);
    let retries = AtomicU32::new(0);
    let count = || {
        retries.fetch_add(1, Ordering::SeqCst);
    };
    let out = r.handle_observed(&msg(NOW), NOW, &count).await;
    assert!(matches!(out, Routed::DeadLettered { .. }), "{out:?}");
    assert_eq!(retries.load(Ordering::SeqCst), 2, "attempts 2 and 3");
    let (r, _tx) = router(flaky(1, false), Memory::default(), 3);
    let out = r.handle_observed(&msg(NOW), NOW, &count).await;
    assert!(matches!(out, Routed::DeadLettered { .. }), "{out:?}");
    assert_eq!(retries.load(Ordering::SeqCst), 2, "bad data is not retried");
}

#[tokio::test]
async fn exhausted_retries_dead_letter_with_everything_kept() {
    let (r, _tx) = router(flaky(99, true), Memory::default(), 3);
    let out = r.handle(&msg(NOW - 5), NOW).await;
    assert!(
        matches!(
            out,
            Routed::DeadLettered {
                reason: Reason::MaxAttemptsExceeded,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(out.committable());
    assert_eq!(r.processor.calls.load(Ordering::SeqCst), 3);
    let letters = r.sink().letters.lock().unwrap();
    let l = &letters[0];
    assert_eq!(l.value.as_deref(), Some(&[0xff, 0x00, b'{'][..]));
    assert_eq!(l.key.as_deref(), Some(&b"T-1"[..]));
    assert_eq!(l.headers.0[0].name, "traceparent");
    assert_eq!(l.source.topic.as_deref(), Some("trades"));
    assert_eq!((l.source.partition, l.source.offset), (Some(2), Some(40)));
    assert_eq!(l.source.timestamp_ms, Some(NOW - 5));
    assert_eq!(l.source.consumer_group.as_deref(), Some("g"));
    assert_eq!(l.failure.attempts, Some(3));
    assert_eq!(l.failure.reason, Reason::MaxAttemptsExceeded);
    assert_eq!(l.failure.message.as_deref(), Some("attempt 3 failed"));
    assert_eq!(l.failure.processor.as_deref(), Some("host-a"));
}

#[tokio::test]
async fn a_non_retryable_error_goes_straight_to_the_dlq() {
    let (r, _tx) = router(flaky(99, false), Memory::default(), 5);
    let out = r.handle(&msg(NOW), NOW).await;
    assert!(
        matches!(
            out,
            Routed::DeadLettered {
                reason: Reason::Failed,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(r.processor.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_old_message_expires_without_processing() {
    let (r, _tx) = router(flaky(0, true), Memory::default(), 3);
    let out = r.handle(&msg(NOW - 61_000), NOW).await;
    assert!(
        matches!(
            out,
            Routed::DeadLettered {
                reason: Reason::Expired,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(r.processor.calls.load(Ordering::SeqCst), 0);
    let letters = r.sink().letters.lock().unwrap();
    assert_eq!(letters[0].failure.attempts, Some(0));
    assert!(
        letters[0]
            .failure
            .message
            .as_deref()
            .unwrap()
            .contains("61s old")
    );
}

#[tokio::test]
async fn a_dlq_that_recovers_within_the_attempts_gets_the_letter() {
    let sink = Memory {
        refuse_first: 2,
        ..Memory::default()
    };
    let (r, _tx) = router(flaky(99, false), sink, 1);
    let out = r.handle(&msg(NOW), NOW).await;
    assert!(matches!(out, Routed::DeadLettered { .. }), "{out:?}");
}

#[tokio::test]
async fn a_dlq_that_stays_down_is_not_committable() {
    let sink = Memory {
        refuse_first: 100,
        ..Memory::default()
    };
    let (r, _tx) = router(flaky(99, false), sink, 1);
    let out = r.handle(&msg(NOW), NOW).await;
    let Routed::DlqUnavailable {
        letter,
        error,
        into: None,
    } = &out
    else {
        panic!("{out:?}")
    };
    assert!(!out.committable());
    assert_eq!(error, "broker down");
    assert_eq!(letter.value.as_deref(), Some(&[0xff, 0x00, b'{'][..]));
    assert_eq!(r.sink().tries.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn shutdown_during_backoff_abandons() {
    let (mut r, tx) = router(flaky(99, true), Memory::default(), 10);
    r.cfg.retry.initial_backoff = Duration::from_secs(30);
    r.cfg.retry.max_backoff = Duration::from_secs(30);
    let m = msg(NOW);
    let handle = r.handle(&m, NOW);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(true).unwrap();
    };
    let (out, ()) = tokio::join!(handle, stop);
    assert_eq!(out, Routed::Abandoned);
    assert!(!out.committable());
    assert!(r.sink().letters.lock().unwrap().is_empty());
}

/// Keeps what is written to each retry topic.
#[derive(Default)]
struct Topics(Mutex<Vec<(String, DeadLetter)>>);

#[async_trait]
impl RetrySink for std::sync::Arc<Topics> {
    async fn write(&self, topic: &str, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        let mut v = self.0.lock().unwrap();
        v.push((topic.to_string(), letter.clone()));
        Ok(LetterId::Kafka {
            partition: 0,
            offset: v.len() as i64 - 1,
        })
    }
}

#[tokio::test]
async fn a_failure_walks_the_retry_topics_then_reaches_the_dlq_with_its_origin() {
    let topics = std::sync::Arc::new(Topics::default());
    let (mut r, _tx) = router(flaky(99, true), Memory::default(), 5);
    // The age counts from the first record: 330 s later is past 60 s.
    r.cfg.max_age = Some(Duration::from_secs(600));
    let tiers = RetryTiers {
        delays: vec![Duration::from_secs(30), Duration::from_secs(300)],
    };
    let r = r.with_retry_topics(tiers, vec!["trades".into()], Box::new(topics.clone()));
    let first = msg(NOW - 1000);
    // The source makes one attempt, then the message waits in trades-retry-0.
    let out = r.handle(&first, NOW).await;
    assert!(
        matches!(&out, Routed::Retrying { topic, .. } if topic == "trades-retry-0"),
        "{out:?}"
    );
    assert!(out.committable());
    let next = |level: usize, at: i64| {
        let (topic, letter) = topics.0.lock().unwrap()[level].clone();
        Incoming {
            topic,
            partition: 0,
            offset: level as i64,
            timestamp_ms: Some(at),
            key: letter.key,
            value: letter.value,
            headers: letter.headers,
        }
    };
    let retry0 = next(0, NOW);
    assert_eq!(r.level(&retry0), 1);
    assert_eq!(r.due_ms(&retry0), Some(NOW + 30_000));
    assert_eq!(
        retry0.headers.last(tiers::ATTEMPTS),
        Some(&2i32.to_be_bytes()[..])
    );
    assert_eq!(
        retry0.headers.last(tiers::ORIGINAL_TIMESTAMP),
        Some(&(NOW - 1000).to_be_bytes()[..])
    );
    let out = r.handle(&retry0, NOW + 30_000).await;
    assert!(
        matches!(&out, Routed::Retrying { topic, .. } if topic == "trades-retry-1"),
        "{out:?}"
    );
    let retry1 = next(1, NOW + 30_000);
    assert_eq!(r.due_ms(&retry1), Some(NOW + 330_000));
    // The last tier's failure is dead-lettered: 3 attempts, the first coordinates,
    // the message's own headers once, no retry headers.
    let out = r.handle(&retry1, NOW + 330_000).await;
    assert!(
        matches!(
            out,
            Routed::DeadLettered {
                reason: Reason::MaxAttemptsExceeded,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(r.processor.calls.load(Ordering::SeqCst), 3);
    let dead = r.sink().letters.lock().unwrap()[0].clone();
    assert_eq!(dead.source.topic.as_deref(), Some("trades"));
    assert_eq!(
        (dead.source.partition, dead.source.offset),
        (Some(2), Some(40))
    );
    assert_eq!(dead.source.timestamp_ms, Some(NOW - 1000));
    assert_eq!(dead.failure.attempts, Some(3));
    assert_eq!(dead.failure.message.as_deref(), Some("attempt 3 failed"));
    let names: Vec<&str> = dead.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names.iter().filter(|n| **n == "traceparent").count(), 1);
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "kafka_dlt-original-topic")
            .count(),
        1
    );
    assert!(
        !names.iter().any(|n| n.starts_with("retry_topic-")),
        "{names:?}"
    );
    assert_eq!(dead.value.as_deref(), Some(&[0xff, 0x00, b'{'][..]));
}

#[tokio::test]
async fn bad_data_skips_the_retry_topics() {
    let topics = std::sync::Arc::new(Topics::default());
    let (r, _tx) = router(flaky(99, false), Memory::default(), 5);
    let tiers = RetryTiers {
        delays: vec![Duration::from_secs(30)],
    };
    let r = r.with_retry_topics(tiers, vec!["trades".into()], Box::new(topics.clone()));
    let out = r.handle(&msg(NOW), NOW).await;
    assert!(
        matches!(
            out,
            Routed::DeadLettered {
                reason: Reason::Failed,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(topics.0.lock().unwrap().is_empty());
}

#[test]
fn backoff_doubles_and_caps() {
    let p = RetryPolicy {
        max_attempts: 10,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
    };
    let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
    assert_eq!(waits, [100, 200, 400, 500, 500]);
}
