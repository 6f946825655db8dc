//! The router's Kafka loop: consume source topics in a consumer group, hand each
//! message to the engine's [`Router`], and store its offset for commit only when the
//! outcome says it is processed or its dead letter is acknowledged. A DLQ that stays
//! down pauses that partition only and is retried until it answers or shutdown comes.
//! After a broker went away, the dead letters not yet seen to outlive such a loss are
//! looked up in the DLQ, and a lost one is written again ([`super::recheck`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use tokio::sync::watch;

use super::recheck::{RouteConsumer, RouterContext};
use super::route_state::{Loop, REWIND_AGAIN};
use super::seek::pause;
use super::{KafkaBackendError, KafkaConfig, letter_from_message};
use crate::engine::route::flight::Part;
use crate::engine::route::metrics::RouterMetrics;
use crate::engine::route::router::{Incoming, Processor, Routed, Router};
use crate::engine::route::sink::DeadLetterSink;
use crate::engine::route::stats::RouterStats;

/// Wait between DLQ writes while a partition is paused on an unreachable DLQ.
pub(super) const STALLED_RETRY: Duration = Duration::from_secs(2);

/// How long after the start a router with no partition says why it may have none.
const JOIN_HINT: Duration = Duration::from_secs(20);

/// How often the consumer is polled while a command runs (group liveness, rebalances).
const KEEP_POLLING: Duration = Duration::from_millis(200);

/// Runs the router over `sources` in consumer group `router.config().group` until
/// `shutdown` turns true, then commits what was stored and returns the counts.
///
/// Up to `concurrency` messages are in flight ([`Flight`](crate::engine::route::flight::Flight)): messages with the same key
/// never overlap and start in offset order, and a partition's offset is stored only
/// past a contiguous prefix of finished messages. While the flight is full for longer
/// than [`KEEP_POLLING`], every assigned partition is paused and the consumer keeps
/// being polled, so the group never takes a slow command for a dead member. A
/// partition whose dead letter the DLQ refuses is paused on its own and retried in the
/// background; the other partitions keep flowing. A message whose partition was
/// revoked while it ran is not committed. A fatal consumer error (fenced by another
/// router with the same `--instance-id`) ends the run with that error.
pub async fn run<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    sources: &[String],
    router: &Router<P, S>,
    mut shutdown: watch::Receiver<bool>,
    concurrency: usize,
    metrics: Arc<RouterMetrics>,
) -> Result<RouterStats, KafkaBackendError> {
    let group = router.config().group.clone();
    let consumer = subscribe(cfg, sources, router, &metrics)?;
    let topics: Vec<&str> = sources.iter().map(String::as_str).collect();
    let concurrency = concurrency.max(1);
    let mut r = Loop::new(cfg, &consumer, router);
    let mut running = FuturesUnordered::new();
    let mut retry = tokio::time::interval(STALLED_RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rewind_check = tokio::time::interval(REWIND_AGAIN);
    rewind_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_check = tokio::time::Instant::now();
    let mut full = Full::default();
    let join_hint = tokio::time::sleep(JOIN_HINT);
    tokio::pin!(join_hint);
    let mut hinted = false;
    loop {
        let due = r.recheck.due(consumer.context());
        if due && tokio::time::Instant::now() >= next_check {
            // A broker still away can hold the check for the connect timeout; a stop
            // does not wait for it, and the consumer is polled between two tries.
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                res = r.recheck_written() => res?,
            }
            next_check = tokio::time::Instant::now() + STALLED_RETRY;
            continue;
        }
        let is_full = r.flight.len() >= concurrency;
        let msg = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            _ = tokio::time::sleep_until(next_check), if due => continue,
            _ = rewind_check.tick(), if r.rewinding() => {
                r.reapply_rewinds();
                None
            }
            _ = retry.tick(), if !r.stalled.is_empty() || !r.unsought.is_empty() => {
                r.seek_again()?;
                for m in r.retry_stalled().await? {
                    running.push(work(router, &metrics, m));
                }
                None
            }
            _ = sleep_until_some(r.next_due()), if !r.delayed.is_empty() => {
                for m in r.release_due()? {
                    if let Some(m) = r.flight.admit(m) {
                        running.push(work(router, &metrics, m));
                    }
                }
                None
            }
            Some((msg, outcome, took, retries)) = running.next() => {
                metrics.record(&msg.topic, &outcome, took, chrono::Utc::now().timestamp_millis());
                r.stats.retried += retries;
                if let Some(m) = r.finished(msg, outcome)? {
                    running.push(work(router, &metrics, m));
                }
                None
            }
            _ = sleep_until_some(full.since.map(|t| t + KEEP_POLLING)), if is_full && full.paused.is_none() => {
                full.pause_all(cfg, &consumer)?;
                None
            }
            m = consumer.recv(), if !is_full || full.paused.is_some() => Some(m),
            _ = &mut join_hint, if !hinted => {
                hinted = true;
                if metrics.assigned() == 0 {
                    tracing::warn!(
                        "no partition of {topics:?} assigned after {}s: group '{group}' is rebalancing (it waits for a member that died until the broker expires it, session.timeout.ms; --instance-id avoids that on a restart) or has more routers than partitions",
                        JOIN_HINT.as_secs()
                    );
                }
                None
            }
        };
        if let Some(msg) = msg {
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    fatal(cfg, router, &topics, e)?;
                    continue;
                }
            };
            metrics.set_brokers_down(false);
            if let Some(m) = admit(cfg, &consumer, router, &mut r, &mut full, concurrency, msg)? {
                running.push(work(router, &metrics, m));
            }
        }
        metrics.set_in_flight(r.flight.len());
        full.settle(&mut r, concurrency)?;
    }
    // Stopping: what waits behind a key never starts; what runs finishes or is
    // abandoned by the router (within the grace), and finished work is stored.
    r.stats.abandoned += r.flight.drop_waiting() as u64;
    while let Some((msg, outcome, took, retries)) = running.next().await {
        metrics.record(
            &msg.topic,
            &outcome,
            took,
            chrono::Utc::now().timestamp_millis(),
        );
        r.stats.retried += retries;
        // Stopping: the next message with its key is not started (it is consumed again).
        // Errors still propagate (?); only the next same-key message is dropped, as said above.
        let _ = r.finished(msg, outcome)?;
    }
    let stats = r.into_stats();
    final_commit(cfg, consumer).await?;
    Ok(stats)
}

/// The router's consumer in its group, subscribed to `sources` (each checked to exist).
fn subscribe<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    sources: &[String],
    router: &Router<P, S>,
    metrics: &Arc<RouterMetrics>,
) -> Result<RouteConsumer, KafkaBackendError> {
    let group = router.config().group.as_str();
    let mut props = vec![("group.id", group)];
    if let Some(id) = &router.config().instance {
        props.push(("group.instance.id", id.as_str()));
    }
    props.extend([
        ("enable.auto.commit", "true"),
        ("enable.auto.offset.store", "false"),
        // What is stored is committed within 100 ms (Kafka Streams' interval under
        // exactly-once): little is processed twice after a crash, and a burst is
        // committed soon after its last message. A commit is sent only when an
        // offset moved.
        ("auto.commit.interval.ms", "100"),
        // Prefetch a few thousand messages, not librdkafka's 64 MB: memory stays
        // small, and a caught-up consumer of a broker that answers fetches at once
        // (noida-db ignores fetch.wait.max.ms) does not spin while a full queue is
        // being worked off. Below the threshold it fetches again within 20 ms.
        ("queued.min.messages", "5000"),
        ("queued.max.messages.kbytes", "8192"),
        ("fetch.queue.backoff.ms", "20"),
        ("auto.offset.reset", "earliest"),
        // For the lag and broker states in the metrics.
        ("statistics.interval.ms", "5000"),
        // A subscribed topic the broker lost and got back (a retry topic created
        // just before a crash) is assigned within seconds, not the default 5 min.
        ("topic.metadata.refresh.interval.ms", "5000"),
    ]);
    let consumer: RouteConsumer = cfg
        .client_config(&props)
        .create_with_context(RouterContext::new(metrics.clone()))
        .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))?;
    for t in sources {
        cfg.partitions_via(consumer.client(), t)?;
    }
    let topics: Vec<&str> = sources.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| cfg.error(format!("subscribing to {topics:?}"), e))?;
    Ok(consumer)
}

/// A consumer error: fatal ones (fenced by another router with the same
/// `--instance-id`) end the run; others are logged and consuming goes on.
fn fatal<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    router: &Router<P, S>,
    topics: &[&str],
    e: KafkaError,
) -> Result<(), KafkaBackendError> {
    let group = &router.config().group;
    match e {
        KafkaError::MessageConsumptionFatal(code) => {
            // Fenced (another router took this --instance-id) or another fatal
            // state: this consumer can commit nothing more, and what it holds
            // is consumed again by the group.
            let what = match (code, &router.config().instance) {
                (RDKafkaErrorCode::FencedInstanceId, Some(id)) => format!(
                    "another router joined group '{group}' with --instance-id '{id}'; this one stops consuming {topics:?}"
                ),
                _ => format!("consuming {topics:?} in group '{group}' stopped for good"),
            };
            Err(cfg.error(what, KafkaError::MessageConsumptionFatal(code)))
        }
        e => {
            tracing::warn!("consuming {topics:?}: {e}");
            Ok(())
        }
    }
}

/// A fetched message: the one to start now, or None when it is read again later
/// (its partition held back, behind a rewind, or the flight full), delayed until due,
/// or waiting behind its key.
fn admit<P: Processor, S: DeadLetterSink>(
    cfg: &KafkaConfig,
    consumer: &RouteConsumer,
    router: &Router<P, S>,
    r: &mut Loop<'_, P, S>,
    full: &mut Full,
    concurrency: usize,
    msg: BorrowedMessage<'_>,
) -> Result<Option<Incoming>, KafkaBackendError> {
    let part = (msg.topic().to_string(), msg.partition());
    r.note_read(&part, msg.offset());
    if r.holds_back(&part) || full.held_back.contains(&part) {
        // Fetched before the pause took hold; read again from there on resume.
        return Ok(None);
    }
    if r.past_rewind(&part, msg.offset()) {
        return Ok(None);
    }
    if r.flight.len() >= concurrency {
        // Full and paused: this partition (perhaps newly assigned) is read
        // again from this message once there is room.
        let o = msg.offset();
        drop(msg);
        pause(cfg, consumer, &part.0, part.1, true)?;
        r.send_back(&part, o);
        full.held_back.insert(part);
        return Ok(None);
    }
    let l = letter_from_message(&msg);
    let incoming = Incoming {
        topic: part.0,
        partition: part.1,
        offset: msg.offset(),
        timestamp_ms: l.dlq_timestamp_ms,
        key: l.key,
        value: l.value,
        headers: l.headers,
    };
    drop(msg);
    if let Some(due) = router.due_ms(&incoming)
        && due > chrono::Utc::now().timestamp_millis()
    {
        r.delay(incoming, due)?;
        return Ok(None);
    }
    Ok(r.flight.admit(incoming))
}

/// A full flight: since when, and once every partition is paused, what was paused and
/// which partitions were sought back while it was.
#[derive(Default)]
struct Full {
    since: Option<tokio::time::Instant>,
    paused: Option<TopicPartitionList>,
    held_back: HashSet<Part>,
}

impl Full {
    /// Pauses every assigned partition (the flight stayed full for [`KEEP_POLLING`]).
    fn pause_all(
        &mut self,
        cfg: &KafkaConfig,
        consumer: &RouteConsumer,
    ) -> Result<(), KafkaBackendError> {
        let held = consumer
            .assignment()
            .map_err(|e| cfg.error("reading the assignment", e))?;
        consumer
            .pause(&held)
            .map_err(|e| cfg.error("pausing while processing", e))?;
        self.paused = Some(held);
        Ok(())
    }

    /// After each step: notes since when the flight is full, or resumes what was paused
    /// once there is room.
    fn settle<P: Processor, S: DeadLetterSink>(
        &mut self,
        r: &mut Loop<'_, P, S>,
        concurrency: usize,
    ) -> Result<(), KafkaBackendError> {
        if r.flight.len() >= concurrency {
            self.since.get_or_insert_with(tokio::time::Instant::now);
        } else {
            self.since = None;
            if let Some(held) = self.paused.take() {
                r.resume(&held)?;
                self.held_back.clear();
            }
        }
        Ok(())
    }
}

/// One message handled by the router, with the message back, how long it took and
/// how many times it was retried in place (each retry served as it starts).
async fn work<P: Processor, S: DeadLetterSink>(
    router: &Router<P, S>,
    metrics: &RouterMetrics,
    msg: Incoming,
) -> (Incoming, Routed, Duration, u64) {
    let start = std::time::Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    let retries = AtomicU64::new(0);
    let retrying = || {
        retries.fetch_add(1, Ordering::Relaxed);
        metrics.retried(&msg.topic);
    };
    let outcome = router.handle_observed(&msg, now, &retrying).await;
    (msg, outcome, start.elapsed(), retries.into_inner())
}

/// Sleeps until `at`; forever when there is no `at`.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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
