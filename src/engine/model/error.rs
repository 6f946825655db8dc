//! Errors the engine reports; each message quotes the value that caused it.

use thiserror::Error;

/// An engine failure or refusal, worded for one line on stderr or a status bar.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A letter id that is neither `partition:offset` nor a document id.
    #[error("bad letter id '{0}': expected PARTITION:OFFSET (Kafka) or a document _id (MongoDB)")]
    BadLetterId(String),
    /// A write attempted under a read-only profile.
    #[error("refused {0}: the profile is read-only")]
    ReadOnly(String),
    /// A replay target that must never be written to.
    #[error("refused to replay into topic '{topic}': {why}")]
    RefusedTarget {
        /// The topic asked for.
        topic: String,
        /// Why it is refused.
        why: String,
    },
    /// A letter whose source topic is unknown, replayed without naming a target.
    #[error("letter {0} has no known source topic: name the target with --to TOPIC")]
    NoTarget(String),
    /// A letter that was replayed before, replayed again without force.
    #[error("letter {id} was already replayed{detail}; pass --force to replay it again")]
    AlreadyReplayed {
        /// The letter.
        id: String,
        /// Where and by whom, when known.
        detail: String,
    },
}

/// What kind of failure a DLQ backend reported, for front ends to act on without
/// reading the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The server did not answer in time or refused the connection.
    Unreachable,
    /// The topic, collection or letter does not exist.
    NotFound,
    /// The server refused the request (permissions, a rejected property…).
    Refused,
    /// What was read or written is not what it should be.
    BadData,
    /// Anything else, as the backend worded it.
    Other,
}

impl FailureKind {
    /// The kind's name, as JSON shows it (`unreachable`, `not-found`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unreachable => "unreachable",
            FailureKind::NotFound => "not-found",
            FailureKind::Refused => "refused",
            FailureKind::BadData => "bad-data",
            FailureKind::Other => "other",
        }
    }
}

/// A DLQ backend's failure as the engine sees it: its kind, one line worded by the
/// backend (it quotes the topic or collection), and the backend's own error as the
/// cause when there is one. Sources report it as `SourceError`, sinks as `SinkError`.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct BackendError {
    /// What kind of failure it is.
    pub kind: FailureKind,
    /// The line to show.
    pub message: String,
    /// The backend's error.
    #[source]
    pub cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A failure of `kind`, worded `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        BackendError {
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
        BackendError {
            kind,
            message: message.into(),
            cause: Some(Box::new(cause)),
        }
    }
}
