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

/// `user@host` of whoever runs this process, for the ledger and audit log.
pub fn whoami() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".to_string());
    format!("{user}@{}", hostname())
}

/// The name of this process's user from /etc/passwd (for sessions without `$USER`).
fn user_from_passwd() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)? == uid).then(|| name.to_string())
    })
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_user_is_found_without_environment() {
        let name = super::user_from_passwd().expect("this process's user is in /etc/passwd");
        assert!(!name.is_empty() && !name.contains(':'), "{name}");
    }
}
