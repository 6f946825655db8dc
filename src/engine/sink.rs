//! Where the router puts dead letters: any backend that can store one durably.

use async_trait::async_trait;
use thiserror::Error;

use super::letter::{DeadLetter, LetterId};

/// A write that the DLQ did not acknowledge, worded by the backend.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A dead-letter queue that can be written to (a Kafka topic, a MongoDB collection).
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Stores `letter` and returns its id once the server has acknowledged it. Writing
    /// the same letter twice after a failed ack must not lose it (duplicates are allowed
    /// where the backend cannot detect them).
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError>;

    /// Where letters go, for messages (`topic 'x' on host:port`).
    fn describe(&self) -> String;
}

#[async_trait]
impl DeadLetterSink for Box<dyn DeadLetterSink> {
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        (**self).write(letter).await
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// `user@host` of whoever runs this process, for the ledger and audit log.
pub fn whoami() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("{user}@{}", hostname())
}

/// This machine's host name, or `unknown`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}
