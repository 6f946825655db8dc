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
use crate::engine::route::sink::{DeadLetterSink, SinkError};

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
    /// Written to the DLQ and acknowledged; commit it.
    DeadLettered {
        /// Id in the DLQ.
        id: LetterId,
        /// Why.
        reason: Reason,
    },
    /// Processing failed and the DLQ did not acknowledge the dead letter; do not
    /// commit. Pause the partition and keep calling [`Router::deliver`] with `letter`.
    DlqUnavailable {
        /// The letter still to be written.
        letter: Box<DeadLetter>,
        /// The last write error.
        error: String,
    },
    /// Shutdown came first; do not commit, the message will be consumed again.
    Abandoned,
}

impl Routed {
    /// True when the source offset may be committed.
    pub fn committable(&self) -> bool {
        matches!(self, Routed::Processed { .. } | Routed::DeadLettered { .. })
    }
}

/// Retries, expiry and dead-lettering around a processor.
pub struct Router<P, S> {
    cfg: RouterConfig,
    processor: P,
    sink: S,
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
        if let (Some(max), Some(ts)) = (self.cfg.max_age, msg.timestamp_ms) {
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
        let max = self.cfg.retry.max_attempts.max(1);
        let mut attempt = 1;
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
            attempt += 1;
        }
    }

    /// Builds the dead letter for `msg`: original key, value and headers untouched,
    /// followed by the failure headers (Spring DLT names plus `morgue-*`).
    pub fn dead_letter(
        &self,
        msg: &Incoming,
        err: &ProcessError,
        reason: Reason,
        attempts: u32,
    ) -> DeadLetter {
        let source = SourceCoords {
            topic: Some(msg.topic.clone()),
            partition: Some(msg.partition),
            offset: Some(msg.offset),
            timestamp_ms: msg.timestamp_ms,
            consumer_group: Some(self.cfg.group.clone()),
        };
        let failure = FailureContext {
            exception_class: Some(err.class.clone()),
            message: Some(err.message.clone()),
            stack_trace: err.stack_trace.clone(),
            reason,
            attempts: Some(attempts),
            processor: Some(self.cfg.host.clone()),
            ..FailureContext::default()
        };
        let mut headers = msg.headers.clone();
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
        self.deliver(letter).await
    }

    /// Writes `letter` to the DLQ, retrying up to the configured attempts.
    pub async fn deliver(&self, letter: DeadLetter) -> Routed {
        let mut last: Option<SinkError> = None;
        for attempt in 1..=self.cfg.dlq_write_attempts.max(1) {
            if attempt > 1 && self.sleep(self.cfg.dlq_backoff).await {
                return Routed::Abandoned;
            }
            match self.sink.write(&letter).await {
                Ok(id) => {
                    return Routed::DeadLettered {
                        id,
                        reason: letter.failure.reason,
                    };
                }
                Err(e) => {
                    tracing::warn!("dead-letter write to {} failed: {e}", self.sink.describe());
                    last = Some(e);
                }
            }
        }
        Routed::DlqUnavailable {
            error: last.map(|e| e.to_string()).unwrap_or_default(),
            letter: Box::new(letter),
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
