//! Where the router puts dead letters: any backend that can store one durably.

use async_trait::async_trait;
use thiserror::Error;

use crate::engine::model::error::{Cause, FailureKind};
use crate::engine::model::letter::{DeadLetter, LetterId};

/// A write that the DLQ did not acknowledge: its kind, one line worded by the
/// backend, and the backend's own error when there is one.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct SinkError {
    /// What kind of failure it is.
    pub kind: FailureKind,
    /// The line to show.
    pub message: String,
    /// The backend's error.
    #[source]
    pub cause: Option<Cause>,
}

impl SinkError {
    /// A failure of `kind`, worded `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        SinkError {
            kind,
            message: message.into(),
            cause: None,
        }
    }

    /// A failure of `kind` worded `message`, caused by the backend's `cause`.
    pub fn caused(
        kind: FailureKind,
        message: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        SinkError {
            kind,
            message: message.into(),
            cause: Some(Box::new(cause)),
        }
    }
}

/// A dead-letter queue that can be written to (a Kafka topic, a MongoDB collection).
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Stores `letter` and returns its id once the server has acknowledged it. Writing
    /// the same letter twice after a failed ack must not lose it (duplicates are allowed
    /// where the backend cannot detect them).
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError>;

    /// Where letters go, for messages (`topic 'x' on host:port`).
    fn describe(&self) -> String;

    /// The Kafka topic letters go to when it is on the cluster the router consumes
    /// from: the router reads it again after a broker went away, to find letters the
    /// broker acknowledged and then lost. None for any other sink.
    fn kafka_topic(&self) -> Option<&str> {
        None
    }
}

#[async_trait]
impl DeadLetterSink for Box<dyn DeadLetterSink> {
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        (**self).write(letter).await
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn kafka_topic(&self) -> Option<&str> {
        (**self).kafka_topic()
    }
}
