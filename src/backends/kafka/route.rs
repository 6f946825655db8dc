//! The router's Kafka loop: consume source topics in a consumer group, hand each
//! message to the engine's [`Router`], and store its offset for commit only when the
//! outcome says it is processed or its dead letter is acknowledged. A DLQ that stays
//! down pauses that partition only and is retried until it answers or shutdown comes.
//! After a broker went away, the dead letters written since the last such check are
//! looked up in the DLQ, and a lost one is written again ([`super::recheck`]).

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::recheck::{Recheck, RouteConsumer, RouterContext, rewind};
use super::{KafkaBackendError, KafkaConfig, letter_from_message};
use crate::engine::Reason;
use crate::engine::route::router::{Incoming, Processor, Routed, Router};
use crate::engine::route::sink::DeadLetterSink;

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

/// How often the consumer is polled while a command runs (group liveness, rebalances).
const KEEP_POLLING: Duration = Duration::from_millis(200);

/// A partition held back because the DLQ refused its dead letter.
struct Stalled {
    msg: Incoming,
    letter: crate::engine::DeadLetter,
}

/// Runs the router over `sources` in consumer group `router.config().group` until
/// `shutdown` turns true, then commits what was stored and returns the counts.
///
/// One message is processed at a time. While it is, every assigned partition is
/// paused and the consumer keeps being polled, so the group never takes a slow
/// command for a dead member. A partition whose dead letter the DLQ refuses is paused
/// on its own and retried in the background; the other partitions keep flowing. A
/// message whose partition was revoked while it ran is not committed.
pub async fn run<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    sources: &[String],
    router: &Router<P, S>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<RouterStats, KafkaBackendError> {
    let group = router.config().group.clone();
    let consumer: RouteConsumer = cfg
        .client_config(&[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "true"),
            ("enable.auto.offset.store", "false"),
            ("auto.commit.interval.ms", "1000"),
            ("auto.offset.reset", "earliest"),
        ])
        .create_with_context(RouterContext::default())
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
    let mut stalled: HashMap<(String, i32), Stalled> = HashMap::new();
    let mut retry = tokio::time::interval(STALLED_RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let dlq = router.sink().kafka_topic().map(str::to_string);
    let mut recheck = Recheck::default();
    let mut next_check = tokio::time::Instant::now();
    loop {
        let due = dlq.is_some() && recheck.due(consumer.context());
        if let (true, Some(dlq)) = (due && tokio::time::Instant::now() >= next_check, &dlq) {
            // A broker still away can hold the check for the connect timeout; a stop
            // does not wait for it, and the consumer is polled between two tries.
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                r = recheck_dlq(cfg, &consumer, dlq, &mut recheck, &mut stalled) => r?,
            }
            next_check = tokio::time::Instant::now() + STALLED_RETRY;
            continue;
        }
        let msg = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            _ = tokio::time::sleep_until(next_check), if due => continue,
            _ = retry.tick(), if !stalled.is_empty() => {
                retry_stalled(cfg, &consumer, router, &mut stalled, &mut stats, &mut recheck).await?;
                continue;
            }
            m = consumer.recv() => m,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("consuming {topics:?}: {e}");
                continue;
            }
        };
        let key = (msg.topic().to_string(), msg.partition());
        if stalled.contains_key(&key) {
            // Fetched before the pause took hold; read again from the stalled offset on resume.
            continue;
        }
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
        drop(msg);
        let outcome = handle_polling(cfg, &consumer, router, &incoming, &stalled).await?;
        if !assigned(&consumer, &incoming.topic, incoming.partition) {
            tracing::warn!(
                "{}:{} was revoked while {} ran; not committed (its new owner consumes it)",
                incoming.topic,
                incoming.partition,
                incoming.offset
            );
            stats.abandoned += 1;
            continue;
        }
        match outcome {
            Routed::DlqUnavailable { letter, error } => {
                stats.dlq_stalls += 1;
                pause(cfg, &consumer, &incoming.topic, incoming.partition, true)?;
                tracing::error!(
                    "DLQ {} refused the dead letter of {}:{}:{} ({error}); partition paused, nothing committed past it; the other partitions go on",
                    router.sink().describe(),
                    incoming.topic,
                    incoming.partition,
                    incoming.offset
                );
                stalled.insert(
                    key,
                    Stalled {
                        msg: incoming,
                        letter: *letter,
                    },
                );
                continue;
            }
            Routed::Abandoned => {
                stats.abandoned += 1;
                break;
            }
            done => {
                if let Routed::DeadLettered { id, .. } = &done {
                    let n = consumer.context().went_away();
                    recheck.record(&incoming.topic, incoming.partition, incoming.offset, id, n);
                }
                count(&mut stats, &done)
            }
        }
        // rd_kafka_offset_store takes the processed offset; librdkafka commits offset + 1.
        consumer
            .store_offset(&incoming.topic, incoming.partition, incoming.offset)
            .map_err(|e| cfg.error("storing the consumed offset", e))?;
    }
    stats.abandoned += stalled.len() as u64;
    final_commit(cfg, consumer).await?;
    Ok(stats)
}

fn count(stats: &mut RouterStats, outcome: &Routed) {
    match outcome {
        Routed::Processed { .. } => stats.processed += 1,
        Routed::DeadLettered { reason, .. } => match reason {
            Reason::Expired => stats.expired += 1,
            Reason::MaxAttemptsExceeded => stats.max_attempts_exceeded += 1,
            _ => stats.failed += 1,
        },
        Routed::Abandoned | Routed::DlqUnavailable { .. } => stats.abandoned += 1,
    }
}

/// Handles one message; once it takes longer than [`KEEP_POLLING`], every assigned
/// partition is paused and the consumer keeps being polled; a message that still arrives (a partition assigned meanwhile)
/// is left for later by seeking back to it.
async fn handle_polling<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    consumer: &RouteConsumer,
    router: &Router<P, S>,
    msg: &Incoming,
    stalled: &HashMap<(String, i32), Stalled>,
) -> Result<Routed, KafkaBackendError> {
    let now = chrono::Utc::now().timestamp_millis();
    let work = router.handle(msg, now);
    tokio::pin!(work);
    // Most messages are done before the consumer needs polling.
    if let Ok(o) = tokio::time::timeout(KEEP_POLLING, &mut work).await {
        return Ok(o);
    }
    let held = consumer
        .assignment()
        .map_err(|e| cfg.error("reading the assignment", e))?;
    consumer
        .pause(&held)
        .map_err(|e| cfg.error("pausing while processing", e))?;
    let mut tick = tokio::time::interval(KEEP_POLLING);
    let outcome = loop {
        tokio::select! {
            o = &mut work => break o,
            _ = tick.tick() => {}
            m = consumer.recv() => {
                if let Ok(m) = m {
                    // A newly assigned partition: read this message again later.
                    let (t, p, o) = (m.topic().to_string(), m.partition(), m.offset());
                    drop(m);
                    pause(cfg, consumer, &t, p, true)?;
                    let _ = consumer.seek(&t, p, Offset::Offset(o), Duration::from_secs(5));
                }
            }
        }
    };
    // Resume what was and is assigned, except the partitions held back by a stalled DLQ.
    let now_held = consumer
        .assignment()
        .map_err(|e| cfg.error("reading the assignment", e))?;
    // (A pause outlives a rebalance in librdkafka: what was held before is resumed too,
    // or a partition lost and assigned back meanwhile would stay paused for good.)
    let mut resume = TopicPartitionList::new();
    for e in held.elements().iter().chain(now_held.elements().iter()) {
        let key = (e.topic().to_string(), e.partition());
        if !stalled.contains_key(&key) && resume.find_partition(&key.0, key.1).is_none() {
            resume.add_partition(e.topic(), e.partition());
        }
    }
    let _ = consumer.resume(&resume);
    Ok(outcome)
}

/// True when `topic`/`partition` is still assigned to this member.
fn assigned(consumer: &RouteConsumer, topic: &str, partition: i32) -> bool {
    consumer
        .assignment()
        .map(|a| a.find_partition(topic, partition).is_some())
        .unwrap_or(false)
}

fn pause(
    cfg: &KafkaConfig,
    consumer: &RouteConsumer,
    topic: &str,
    partition: i32,
    on: bool,
) -> Result<(), KafkaBackendError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let r = if on {
        consumer.pause(&tpl)
    } else {
        consumer.resume(&tpl)
    };
    r.map_err(|e| {
        cfg.error(
            format!("pausing/resuming '{topic}' partition {partition}"),
            e,
        )
    })
}

/// Tries each stalled dead letter again; a delivered one is committed and its
/// partition resumed from the next message.
async fn retry_stalled<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    consumer: &RouteConsumer,
    router: &Router<P, S>,
    stalled: &mut HashMap<(String, i32), Stalled>,
    stats: &mut RouterStats,
    recheck: &mut Recheck,
) -> Result<(), KafkaBackendError> {
    let keys: Vec<(String, i32)> = stalled.keys().cloned().collect();
    for key in keys {
        let Some(s) = stalled.get(&key) else { continue };
        let outcome = router.deliver(s.letter.clone()).await;
        if !outcome.committable() {
            continue;
        }
        let Some(s) = stalled.remove(&key) else {
            continue;
        };
        count(stats, &outcome);
        let (t, p, o) = (s.msg.topic, s.msg.partition, s.msg.offset);
        if let Routed::DeadLettered { id, .. } = &outcome {
            recheck.record(&t, p, o, id, consumer.context().went_away());
        }
        if !assigned(consumer, &t, p) {
            continue;
        }
        consumer
            .store_offset(&t, p, o)
            .map_err(|e| cfg.error("storing the consumed offset", e))?;
        let _ = consumer.seek(&t, p, Offset::Offset(o + 1), Duration::from_secs(5));
        pause(cfg, consumer, &t, p, false)?;
        tracing::warn!(
            "DLQ {} took the dead letter of {t}:{p}:{o}; partition resumed",
            router.sink().describe()
        );
    }
    Ok(())
}

/// After a broker went away: looks in the DLQ for every dead letter written since the
/// last look, and sends each source partition with a missing one back to it (see
/// [`super::recheck`]). A DLQ that cannot be read yet is tried again later.
async fn recheck_dlq(
    cfg: &KafkaConfig,
    consumer: &RouteConsumer,
    dlq: &str,
    recheck: &mut Recheck,
    stalled: &mut HashMap<(String, i32), Stalled>,
) -> Result<(), KafkaBackendError> {
    let went_away = consumer.context().went_away();
    let mut r = std::mem::take(recheck);
    let (c, t) = (cfg.clone(), dlq.to_string());
    let (r, res) = tokio::task::spawn_blocking(move || {
        let res = r.check(&c, &t, went_away);
        (r, res)
    })
    .await
    .map_err(|e| KafkaBackendError::Task(e.to_string()))?;
    *recheck = r;
    let lost = match res {
        Ok(lost) => lost,
        Err(e) => {
            tracing::warn!("a broker went away; the DLQ cannot be checked yet ({e}); trying again");
            return Ok(());
        }
    };
    for key in lost.keys() {
        // A stall after the lost letter is read again from the rewound offset.
        if stalled.remove(key).is_some() {
            let _ = pause(cfg, consumer, &key.0, key.1, false);
        }
    }
    if let Err(e) = rewind(cfg, consumer, &lost) {
        tracing::warn!("rewinding to dead letters the broker lost failed ({e}); trying again");
        recheck.retry(lost);
    }
    Ok(())
}

/// Commits what was stored; a broker that is gone must not hold the shutdown.
async fn final_commit(cfg: &KafkaConfig, consumer: RouteConsumer) -> Result<(), KafkaBackendError> {
    let commit = tokio::task::spawn_blocking(move || {
        let r = consumer.commit_consumer_state(CommitMode::Sync);
        drop(consumer);
        r
    });
    match tokio::time::timeout(SHUTDOWN_COMMIT, commit).await {
        Ok(Ok(Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => Ok(()),
        Ok(Ok(Err(e))) => Err(cfg.error("committing offsets at shutdown", e)),
        Ok(Err(e)) => Err(KafkaBackendError::Task(e.to_string())),
        Err(_) => {
            tracing::warn!(
                "could not commit the last offsets within {}s ({} unreachable?); those messages will be consumed again",
                SHUTDOWN_COMMIT.as_secs(),
                cfg.brokers
            );
            Ok(())
        }
    }
}

/// How long the last commit may take at shutdown.
const SHUTDOWN_COMMIT: Duration = Duration::from_secs(10);
