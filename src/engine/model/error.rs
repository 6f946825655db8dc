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
