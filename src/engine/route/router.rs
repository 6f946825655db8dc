//! The consumer side: hand each message to a [`Processor`], retry failures with
//! backoff, and route what cannot be processed to a [`DeadLetterSink`] with the full
//! failure context. The router decides and writes; the backend's consumer loop
//! (`backends::kafka::route`) commits a source offset only after [`Router::handle`]
//! returns an outcome that says the message is processed or safely dead-lettered.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::engine::model::conventions;
use crate::engine::model::letter::{
    DeadLetter, FailureContext, Headers, LetterId, Reason, SourceCoords,
};
use crate::engine::route::sink::{DeadLetterSink, RetrySink, SinkError};
use crate::engine::route::tiers::{self, RetryTiers};

/// One message consumed from a source topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
    /// Record timestamp, epoch milliseconds.
    pub timestamp_ms: Option<i64>,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Headers,
}

/// Why a processor could not handle a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessError {
    /// Error type, e.g. `serde_json::Error` or `exec: exit 3`.
    pub class: String,
    /// Human message.
    pub message: String,
    /// Stack trace or captured output, when there is one.
    pub stack_trace: Option<String>,
    /// False when retrying cannot help (bad data): the letter goes to the DLQ at once.
    pub retryable: bool,
}

impl ProcessError {
    /// A failure of `class` saying `message`, with captured output as `stack`.
    pub fn new(
        class: impl Into<String>,
        message: impl Into<String>,
        stack: Option<String>,
        retryable: bool,
    ) -> Self {
        ProcessError {
            class: class.into(),
            message: message.into(),
            stack_trace: stack,
            retryable,
        }
    }
}

/// The user's message handler.
#[async_trait]
pub trait Processor: Send + Sync {
    /// Processes one message; `attempt` counts from 1.
    async fn process(&self, msg: &Incoming, attempt: u32) -> Result<(), ProcessError>;
}

#[async_trait]
impl Processor for Box<dyn Processor> {
    async fn process(&self, msg: &Incoming, attempt: u32) -> Result<(), ProcessError> {
        (**self).process(msg, attempt).await
    }
}

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Processing attempts before a letter is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub initial_backoff: Duration,
    /// Upper bound for the doubling wait.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): doubling from the initial wait, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Everything the router needs besides the processor and the sink.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Consumer group, recorded in each dead letter.
    pub group: String,
    /// Static group membership (Kafka `group.instance.id`): a router restarted under
    /// the same id takes its partitions back without a group rebalance.
    pub instance: Option<String>,
    /// Processing retries.
    pub retry: RetryPolicy,
    /// Messages older than this are dead-lettered as `expired` without processing.
    pub max_age: Option<Duration>,
    /// DLQ write attempts before the partition is paused and the failure reported.
    pub dlq_write_attempts: u32,
    /// Wait between DLQ write attempts.
    pub dlq_backoff: Duration,
    /// This processor's name (host), written as `morgue-host`.
    pub host: String,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Processed successfully after `attempts` tries; commit it.
    Processed {
        /// Tries it took.
        attempts: u32,
    },
    /// Failed and written to the retry topic `topic`, acknowledged as `id`; commit it.
    Retrying {
        /// The retry topic.
        topic: String,
        /// Id in that topic.
        id: LetterId,
    },
    /// Written to the DLQ and acknowledged; commit it.
    DeadLettered {
        /// Id in the DLQ.
        id: LetterId,
        /// Why.
        reason: Reason,
    },
    /// Processing failed and the DLQ (or the retry topic `into`) did not acknowledge
    /// the letter; do not commit. Pause the partition and keep calling
    /// [`Router::deliver`] with `letter` and `into`.
    DlqUnavailable {
        /// The letter still to be written.
        letter: Box<DeadLetter>,
        /// None for the DLQ, else the retry topic it goes to.
        into: Option<String>,
        /// The last write error.
        error: String,
    },
    /// Shutdown came first; do not commit, the message will be consumed again.
    Abandoned,
}

impl Routed {
    /// True when the source offset may be committed.
    pub fn committable(&self) -> bool {
        matches!(
            self,
            Routed::Processed { .. } | Routed::DeadLettered { .. } | Routed::Retrying { .. }
        )
    }
}

/// The retry topics a router writes failing messages to (see [`tiers`]).
struct RetryTopics {
    tiers: RetryTiers,
    sources: Vec<String>,
    out: Box<dyn RetrySink>,
}

/// Retries, expiry and dead-lettering around a processor.
pub struct Router<P, S> {
    cfg: RouterConfig,
    processor: P,
    sink: S,
    retry_topics: Option<RetryTopics>,
    shutdown: watch::Receiver<bool>,
    abort: watch::Receiver<bool>,
}

impl<P: Processor, S: DeadLetterSink> Router<P, S> {
    /// A router; when `shutdown` turns true, waits and in-flight work are abandoned.
    pub fn new(cfg: RouterConfig, processor: P, sink: S, shutdown: watch::Receiver<bool>) -> Self {
        Router {
            cfg,
            processor,
            sink,
            retry_topics: None,
            abort: shutdown.clone(),
            shutdown,
        }
    }

    /// Graceful shutdown: when `shutdown` turns true the running attempt may still
    /// finish (a success is committed; a failure is abandoned, never dead-lettered, and
    /// no retry starts); when `abort` turns true it is dropped at once.
    pub fn with_abort(mut self, abort: watch::Receiver<bool>) -> Self {
        self.abort = abort;
        self
    }

    /// Non-blocking retries: each of `sources` (and each of its retry topics) gets one
    /// attempt; a retryable failure goes to the next retry topic through `out`, and
    /// after the last tier to the DLQ as `max-attempts-exceeded`.
    pub fn with_retry_topics(
        mut self,
        tiers: RetryTiers,
        sources: Vec<String>,
        out: Box<dyn RetrySink>,
    ) -> Self {
        if !tiers.is_empty() {
            self.retry_topics = Some(RetryTopics {
                tiers,
                sources,
                out,
            });
        }
        self
    }

    /// 0 for a message from a source topic, `i + 1` for one from `<source>-retry-i`.
    pub fn level(&self, msg: &Incoming) -> usize {
        self.retry_topics.as_ref().map_or(0, |r| {
            r.tiers
                .tier_of(&r.sources, &msg.topic)
                .map_or(0, |t| t.level)
        })
    }

    /// When a message from a retry topic is due, epoch ms; None for any other.
    pub fn due_ms(&self, msg: &Incoming) -> Option<i64> {
        (self.level(msg) > 0)
            .then(|| tiers::due_ms(&msg.headers))
            .flatten()
    }

    /// Where the message was first consumed: its own coordinates, or for a message
    /// from a retry topic those its headers carry.
    pub fn origin(&self, msg: &Incoming) -> SourceCoords {
        let own = || SourceCoords {
            topic: Some(msg.topic.clone()),
            partition: Some(msg.partition),
            offset: Some(msg.offset),
            timestamp_ms: msg.timestamp_ms,
            consumer_group: Some(self.cfg.group.clone()),
        };
        if self.level(msg) == 0 {
            return own();
        }
        match tiers::origin_of(&msg.headers) {
            Some(mut o) => {
                o.timestamp_ms = tiers::original_ms(&msg.headers).or(o.timestamp_ms);
                o.consumer_group = Some(self.cfg.group.clone());
                o
            }
            None => own(),
        }
    }

    /// True once shutdown was asked for.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// The configuration in use.
    pub fn config(&self) -> &RouterConfig {
        &self.cfg
    }

    /// The sink, for messages.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Processes `msg` (consumed at `now_ms`) to an outcome.
    pub async fn handle(&self, msg: &Incoming, now_ms: i64) -> Routed {
        self.handle_observed(msg, now_ms, &|| {}).await
    }

    /// [`Router::handle`], calling `retrying` each time a failed attempt is retried in
    /// place (once its backoff is over, as the next attempt starts). A retry through a
    /// retry topic is the outcome [`Routed::Retrying`] instead.
    pub async fn handle_observed(
        &self,
        msg: &Incoming,
        now_ms: i64,
        retrying: &(dyn Fn() + Sync),
    ) -> Routed {
        let level = self.level(msg);
        let first_ts = if level == 0 {
            msg.timestamp_ms
        } else {
            self.origin(msg).timestamp_ms
        };
        if let (Some(max), Some(ts)) = (self.cfg.max_age, first_ts) {
            let age = now_ms.saturating_sub(ts);
            if age > i64::try_from(max.as_millis()).unwrap_or(i64::MAX) {
                let err = ProcessError {
                    class: "morgue::Expired".into(),
                    message: format!(
                        "message is {}s old, older than max age {}s",
                        age / 1000,
                        max.as_secs()
                    ),
                    stack_trace: None,
                    retryable: false,
                };
                return self.route(msg, &err, Reason::Expired, 0).await;
            }
        }
        // With retry topics each topic makes one attempt: the level's.
        let (mut attempt, max) = match &self.retry_topics {
            Some(_) => (level as u32 + 1, level as u32 + 1),
            None => (1, self.cfg.retry.max_attempts.max(1)),
        };
        loop {
            if self.stopping() {
                return Routed::Abandoned;
            }
            let mut abort = self.abort.clone();
            let result = tokio::select! {
                r = self.processor.process(msg, attempt) => r,
                _ = abort.wait_for(|s| *s) => return Routed::Abandoned,
            };
            let err = match result {
                Ok(()) => return Routed::Processed { attempts: attempt },
                // A failure while stopping may be the stop's doing: never dead-letter it.
                Err(_) if self.stopping() => return Routed::Abandoned,
                Err(e) => e,
            };
            if !err.retryable {
                return self.route(msg, &err, Reason::Failed, attempt).await;
            }
            if let Some(r) = &self.retry_topics
                && level < r.tiers.delays.len()
            {
                return self.retry_later(r, msg, &err, level, now_ms).await;
            }
            if attempt >= max {
                return self
                    .route(msg, &err, Reason::MaxAttemptsExceeded, attempt)
                    .await;
            }
            tracing::debug!(
                topic = %msg.topic, partition = msg.partition, offset = msg.offset, attempt,
                "processing failed, retrying: {}", err.message
            );
            if self.sleep(self.cfg.retry.backoff(attempt)).await {
                return Routed::Abandoned;
            }
            retrying();
            attempt += 1;
        }
    }

    /// Writes `msg` to the retry topic after `level`, due after that tier's delay.
    async fn retry_later(
        &self,
        r: &RetryTopics,
        msg: &Incoming,
        err: &ProcessError,
        level: usize,
        now_ms: i64,
    ) -> Routed {
        let attempt = level as u32 + 1;
        let mut letter = self.dead_letter(msg, err, Reason::Failed, attempt);
        let delay = r.tiers.delays[level];
        let due = now_ms.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        let source = letter.source.topic.clone().unwrap_or_default();
        let first_ts = letter.source.timestamp_ms;
        letter
            .headers
            .0
            .extend(tiers::retry_headers(attempt + 1, due, first_ts));
        tracing::debug!(
            topic = %msg.topic, partition = msg.partition, offset = msg.offset, attempt,
            "processing failed, to retry in {delay:?}: {}", err.message
        );
        self.deliver(letter, Some(&RetryTiers::topic(&source, level)))
            .await
    }

    /// Builds the dead letter for `msg`: original key, value and headers untouched,
    /// followed by the failure headers (Spring DLT names plus `morgue-*`). A message
    /// from a retry topic keeps the coordinates of its first consumption.
    pub fn dead_letter(
        &self,
        msg: &Incoming,
        err: &ProcessError,
        reason: Reason,
        attempts: u32,
    ) -> DeadLetter {
        let source = self.origin(msg);
        let failure = FailureContext {
            exception_class: Some(err.class.clone()),
            message: Some(err.message.clone()),
            stack_trace: err.stack_trace.clone(),
            reason,
            attempts: Some(attempts),
            processor: Some(self.cfg.host.clone()),
            ..FailureContext::default()
        };
        let mut headers = if self.level(msg) > 0 {
            tiers::own_headers(&msg.headers)
        } else {
            msg.headers.clone()
        };
        headers.0.extend(conventions::encode(&source, &failure));
        DeadLetter::from_record(None, None, msg.key.clone(), msg.value.clone(), headers)
    }

    async fn route(
        &self,
        msg: &Incoming,
        err: &ProcessError,
        reason: Reason,
        attempts: u32,
    ) -> Routed {
        let letter = self.dead_letter(msg, err, reason, attempts);
        self.deliver(letter, None).await
    }

    /// Writes `letter` to the DLQ (or, with `into`, to that retry topic), retrying up
    /// to the configured attempts.
    pub async fn deliver(&self, letter: DeadLetter, into: Option<&str>) -> Routed {
        let mut last: Option<SinkError> = None;
        for attempt in 1..=self.cfg.dlq_write_attempts.max(1) {
            if attempt > 1 && self.sleep(self.cfg.dlq_backoff).await {
                return Routed::Abandoned;
            }
            let written = match (into, &self.retry_topics) {
                (Some(topic), Some(r)) => r.out.write(topic, &letter).await,
                _ => self.sink.write(&letter).await,
            };
            match (written, into) {
                (Ok(id), Some(topic)) => {
                    return Routed::Retrying {
                        topic: topic.to_string(),
                        id,
                    };
                }
                (Ok(id), None) => {
                    return Routed::DeadLettered {
                        id,
                        reason: letter.failure.reason,
                    };
                }
                (Err(e), _) => {
                    let to = match into {
                        Some(t) => format!("retry topic '{t}'"),
                        None => self.sink.describe(),
                    };
                    tracing::warn!("dead-letter write to {to} failed: {e}");
                    last = Some(e);
                }
            }
        }
        Routed::DlqUnavailable {
            error: last.map(|e| e.to_string()).unwrap_or_default(),
            letter: Box::new(letter),
            into: into.map(str::to_string),
        }
    }

    /// Sleeps `d`; true when shutdown came first.
    pub async fn sleep(&self, d: Duration) -> bool {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            _ = shutdown.wait_for(|s| *s) => true,
        }
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
