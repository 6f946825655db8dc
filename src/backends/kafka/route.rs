//! The router's Kafka loop: consume source topics in a consumer group, hand each
//! message to the engine's [`Router`], and store its offset for commit only when the
//! outcome says it is processed or its dead letter is acknowledged. A DLQ that stays
//! down pauses the partition and is retried until it answers or shutdown comes.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::{KafkaBackendError, KafkaConfig, Quiet, letter_from_message};
use crate::engine::Reason;
use crate::engine::router::{Incoming, Outcome, Processor, Router};
use crate::engine::sink::DeadLetterSink;

/// Counts of what the router did, printed when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouterStats {
    /// Messages processed successfully.
    pub processed: u64,
    /// Dead letters written with reason `failed`.
    pub failed: u64,
    /// Dead letters written with reason `max-attempts-exceeded`.
    pub max_attempts_exceeded: u64,
    /// Dead letters written with reason `expired`.
    pub expired: u64,
    /// Times the DLQ refused a write after all attempts (the partition was paused).
    pub dlq_stalls: u64,
    /// Messages left uncommitted at shutdown (consumed again on restart).
    pub abandoned: u64,
}

/// Wait between DLQ writes while a partition is paused on an unreachable DLQ.
const STALLED_RETRY: Duration = Duration::from_secs(2);

/// Runs the router over `sources` in consumer group `router.config().group` until
/// `shutdown` turns true, then commits what was stored and returns the counts.
pub async fn run<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    sources: &[String],
    router: &Router<P, S>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RouterStats, KafkaBackendError> {
    let group = router.config().group.clone();
    let consumer: StreamConsumer<Quiet> = cfg
        .client_config(&[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "true"),
            ("enable.auto.offset.store", "false"),
            ("auto.commit.interval.ms", "1000"),
            ("auto.offset.reset", "earliest"),
        ])
        .create_with_context(Quiet)
        .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))?;
    {
        let browse = cfg.browse_consumer()?;
        for t in sources {
            cfg.partitions(&browse, t)?;
        }
    }
    let topics: Vec<&str> = sources.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| cfg.error(format!("subscribing to {topics:?}"), e))?;

    let mut stats = RouterStats::default();
    loop {
        let msg = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            m = consumer.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("consuming {topics:?}: {e}");
                continue;
            }
        };
        let l = letter_from_message(&msg);
        let incoming = Incoming {
            topic: msg.topic().to_string(),
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp_ms: l.dlq_timestamp_ms,
            key: l.key,
            value: l.value,
            headers: l.headers,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let mut outcome = router.handle(&incoming, now).await;
        if let Outcome::DlqUnavailable { letter, error } = outcome {
            stats.dlq_stalls += 1;
            outcome = stall(cfg, &consumer, router, &incoming, *letter, &error).await?;
        }
        match &outcome {
            Outcome::Processed { .. } => stats.processed += 1,
            Outcome::DeadLettered { reason, .. } => match reason {
                Reason::Expired => stats.expired += 1,
                Reason::MaxAttemptsExceeded => stats.max_attempts_exceeded += 1,
                _ => stats.failed += 1,
            },
            Outcome::Abandoned | Outcome::DlqUnavailable { .. } => {
                stats.abandoned += 1;
                break;
            }
        }
        // rd_kafka_offset_store takes the processed offset; librdkafka commits offset + 1.
        consumer
            .store_offset(&incoming.topic, incoming.partition, incoming.offset)
            .map_err(|e| cfg.error("storing the consumed offset", e))?;
    }
    // A broker that is gone must not hold the shutdown: commit on a thread, wait a while.
    let final_commit = tokio::task::spawn_blocking(move || {
        let r = consumer.commit_consumer_state(CommitMode::Sync);
        drop(consumer);
        r
    });
    match tokio::time::timeout(SHUTDOWN_COMMIT, final_commit).await {
        Ok(Ok(Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => {}
        Ok(Ok(Err(e))) => return Err(cfg.error("committing offsets at shutdown", e)),
        Ok(Err(e)) => return Err(KafkaBackendError::Task(e.to_string())),
        Err(_) => tracing::warn!(
            "could not commit the last offsets within {}s ({} unreachable?); those messages will be consumed again",
            SHUTDOWN_COMMIT.as_secs(),
            cfg.brokers
        ),
    }
    Ok(stats)
}

/// How long the last commit may take at shutdown.
const SHUTDOWN_COMMIT: Duration = Duration::from_secs(10);

/// Pauses the message's partition and retries the dead-letter write until it is
/// acknowledged or shutdown comes; resumes the partition afterwards.
async fn stall<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    consumer: &StreamConsumer<Quiet>,
    router: &Router<P, S>,
    msg: &Incoming,
    letter: crate::engine::DeadLetter,
    error: &str,
) -> Result<Outcome, KafkaBackendError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&msg.topic, msg.partition, Offset::Offset(msg.offset))
        .map_err(|e| cfg.error("pausing", e))?;
    consumer.pause(&tpl).map_err(|e| {
        cfg.error(
            format!("pausing '{}' partition {}", msg.topic, msg.partition),
            e,
        )
    })?;
    tracing::error!(
        "DLQ {} refused the dead letter of {}:{}:{} ({error}); partition paused, nothing committed past it",
        router.sink().describe(),
        msg.topic,
        msg.partition,
        msg.offset
    );
    let outcome = loop {
        if router.sleep(STALLED_RETRY).await {
            break Outcome::Abandoned;
        }
        match router.deliver(letter.clone()).await {
            Outcome::DlqUnavailable { .. } => continue,
            other => break other,
        }
    };
    consumer.resume(&tpl).map_err(|e| {
        cfg.error(
            format!("resuming '{}' partition {}", msg.topic, msg.partition),
            e,
        )
    })?;
    if outcome.committable() {
        tracing::warn!(
            "DLQ {} is writable again; partition resumed",
            router.sink().describe()
        );
    }
    Ok(outcome)
}
