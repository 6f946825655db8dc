//! Errors the engine reports; each message quotes the value that caused it.

use thiserror::Error;

/// An engine failure, worded for a person reading one line on stderr or a status bar.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A letter id that is neither `partition:offset` nor a document id.
    #[error("bad letter id '{0}': expected PARTITION:OFFSET (Kafka) or a document _id (MongoDB)")]
    BadLetterId(String),
}
