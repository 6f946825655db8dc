//! Where the router puts dead letters: any backend that can store one durably.

use async_trait::async_trait;

use crate::engine::model::error::BackendError;
use crate::engine::model::letter::{DeadLetter, LetterId};

/// A write that the DLQ did not acknowledge: its kind, its line and the backend's error (see [`BackendError`]).
pub type SinkError = BackendError;

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

/// Where failing messages wait for their next attempt (the retry topics of
/// `route --retry-topics`).
#[async_trait]
pub trait RetrySink: Send + Sync {
    /// Stores `letter` in `topic` and returns its id once the server acknowledged it.
    async fn write(&self, topic: &str, letter: &DeadLetter) -> Result<LetterId, SinkError>;
}
