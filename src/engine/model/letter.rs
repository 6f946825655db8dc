//! The dead-letter model every backend produces: identity, raw key/value/headers,
//! where the message came from, why it failed, and what has been done with it since.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::engine::model::after_replay::{AfterReplay, Consumed};
use crate::engine::model::encoding::EncodedBytes;
use crate::engine::model::error::EngineError;

/// Where a dead letter lives in its DLQ: a Kafka `partition:offset` or a MongoDB `_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LetterId {
    /// A record of a DLQ topic.
    Kafka {
        /// Partition of the DLQ topic.
        partition: i32,
        /// Offset within that partition.
        offset: i64,
    },
    /// A document of a DLQ collection, by its `_id` rendered as text (hex for an ObjectId).
    Mongo(String),
}

impl fmt::Display for LetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LetterId::Kafka { partition, offset } => write!(f, "{partition}:{offset}"),
            LetterId::Mongo(id) => f.write_str(id),
        }
    }
}

impl FromStr for LetterId {
    type Err = EngineError;

    /// `3:42` is a Kafka id; anything else without a colon is a MongoDB `_id`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EngineError::BadLetterId(s.to_string());
        match s.split_once(':') {
            Some((p, o)) => {
                let partition = p.parse::<i32>().map_err(|_| bad())?;
                let offset = o.parse::<i64>().map_err(|_| bad())?;
                if partition < 0 || offset < 0 {
                    return Err(bad());
                }
                Ok(LetterId::Kafka { partition, offset })
            }
            None if !s.is_empty() && !s.chars().any(char::is_whitespace) => {
                Ok(LetterId::Mongo(s.to_string()))
            }
            None => Err(bad()),
        }
    }
}

/// One message header: a name and a value that may be null or any bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name as sent (Kafka header names are UTF-8).
    pub name: String,
    /// Raw value; `None` for a null header.
    pub value: Option<Vec<u8>>,
}

impl Header {
    /// A header with a value.
    pub fn new(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// Headers in arrival order; a name may repeat, and readers take the last occurrence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// The value of the last header called `name` (null headers count as absent).
    pub fn last(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|h| h.name == name)
            .and_then(|h| h.value.as_deref())
    }

    /// Appends a header, keeping earlier ones with the same name.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.0.push(Header::new(name, value));
    }

    /// Iterates over the headers in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of headers, repeats included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where the failed message was originally consumed; every part may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCoords {
    /// Original topic.
    pub topic: Option<String>,
    /// Original partition.
    pub partition: Option<i32>,
    /// Original offset.
    pub offset: Option<i64>,
    /// Original record timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// Consumer group that failed to process it.
    pub consumer_group: Option<String>,
}

impl SourceCoords {
    /// True when not even the topic is known.
    pub fn is_unknown(&self) -> bool {
        self.topic.is_none()
    }
}

/// Why a message ended up in the DLQ.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Processing failed with an error that retrying would not fix.
    Failed,
    /// Processing kept failing until the retry budget ran out.
    MaxAttemptsExceeded,
    /// The message was older than the allowed age and was not processed.
    Expired,
    /// Nothing in the letter says why.
    #[default]
    Unknown,
}

impl Reason {
    /// The wire name written in the `morgue-reason` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Failed => "failed",
            Reason::MaxAttemptsExceeded => "max-attempts-exceeded",
            Reason::Expired => "expired",
            Reason::Unknown => "unknown",
        }
    }

    /// Parses a wire name; unknown text gives `None`.
    pub fn parse(s: &str) -> Option<Reason> {
        match s.trim() {
            "failed" => Some(Reason::Failed),
            "max-attempts-exceeded" => Some(Reason::MaxAttemptsExceeded),
            "expired" => Some(Reason::Expired),
            "unknown" => Some(Reason::Unknown),
            _ => None,
        }
    }
}

/// What went wrong, as far as the letter's headers or document say.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailureContext {
    /// Fully qualified exception class (or error type).
    pub exception_class: Option<String>,
    /// Class of the root cause, when different.
    pub cause_class: Option<String>,
    /// Error message.
    pub message: Option<String>,
    /// Message of the root cause, when given separately.
    pub cause_message: Option<String>,
    /// Stack trace as text.
    pub stack_trace: Option<String>,
    /// True when the failure was in the key rather than the value (Spring `key-exception`).
    pub key_failure: bool,
    /// Failure reason.
    pub reason: Reason,
    /// How many processing attempts were made.
    pub attempts: Option<u32>,
    /// What processed it: host, connector/task, handler.
    pub processor: Option<String>,
    /// Conventions recognised in the headers, in priority order (e.g. `spring-dlt`).
    pub conventions: Vec<&'static str>,
    /// One line per value that could not be decoded, quoting it.
    pub notes: Vec<String>,
}

/// What has been done with a letter since it arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LetterState {
    /// Nobody has acted on it.
    #[default]
    New,
    /// A processor claimed it (MongoDB `processed: true`) and may be working on it.
    Claimed,
    /// An edited payload is kept with it, not yet replayed.
    Edited,
    /// A replay was announced and not yet confirmed: see who holds it before acting.
    Replaying,
    /// Sent back to a topic at least once.
    Replayed,
    /// Marked handled without a replay.
    Resolved,
    /// Replayed, and no new failure of it arrived within the watch window.
    Confirmed,
    /// Replayed, and the same message arrived in the DLQ again (see [`AfterReplay`]).
    #[serde(rename = "failed-again")]
    FailedAgain,
}

impl LetterState {
    /// Lower-case name as shown and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            LetterState::New => "new",
            LetterState::Claimed => "claimed",
            LetterState::Edited => "edited",
            LetterState::Replaying => "replaying",
            LetterState::Replayed => "replayed",
            LetterState::Resolved => "resolved",
            LetterState::Confirmed => "confirmed",
            LetterState::FailedAgain => "failed-again",
        }
    }
}

/// One replay of a letter, as recorded in the ledger or the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRecord {
    /// Unique id stamped on the replayed message as `morgue-replay-id`.
    pub replay_id: String,
    /// Topic the message was sent to.
    pub topic: String,
    /// Partition the broker assigned.
    pub partition: i32,
    /// Offset the broker assigned.
    pub offset: i64,
    /// Who replayed it, as `user@host`.
    pub by: String,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// True when the payload sent was an edited one.
    pub edited: bool,
    /// The key sent, to recognise the message failing again (absent in old entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<EncodedBytes>,
    /// The transform the payload was made with (its expression), when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
}

/// A dead letter as read from any DLQ backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetter {
    /// Identity within the DLQ; `None` only before the letter is written.
    pub id: Option<LetterId>,
    /// When the DLQ received it, milliseconds since the Unix epoch.
    pub dlq_timestamp_ms: Option<i64>,
    /// Original key bytes (`None` for a null key).
    pub key: Option<Vec<u8>>,
    /// Original value bytes (`None` for a tombstone / null value).
    pub value: Option<Vec<u8>>,
    /// All headers, in order, unknown ones included.
    pub headers: Headers,
    /// Where the message came from.
    pub source: SourceCoords,
    /// Why it failed.
    pub failure: FailureContext,
    /// Current state.
    pub state: LetterState,
    /// Replays so far, oldest first.
    pub history: Vec<ReplayRecord>,
    /// Who holds it and since when, while a replay is announced and not yet confirmed.
    pub held_by: Option<String>,
    /// The letter (same source topic, partition and offset) whose replay counts for this one.
    pub copy_of: Option<String>,
    /// What became of the latest replay (see `read::outcome`), when replayed.
    pub outcome: Option<AfterReplay>,
    /// Whether the source consumer group has read past the latest replay (`show`, detail).
    pub consumed: Option<Consumed>,
}

impl DeadLetter {
    /// Size in bytes of key, value and headers together.
    pub fn size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len))
            .sum();
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len) + headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_ids_parse_and_print() {
        let k: LetterId = "3:42".parse().unwrap();
        assert_eq!(
            k,
            LetterId::Kafka {
                partition: 3,
                offset: 42
            }
        );
        assert_eq!(k.to_string(), "3:42");
        let m: LetterId = "65f0c0ffee00000000000001".parse().unwrap();
        assert_eq!(m, LetterId::Mongo("65f0c0ffee00000000000001".into()));
        for bad in ["", "3:", ":4", "-1:2", "a:b", "has space"] {
            let err = bad.parse::<LetterId>().unwrap_err();
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn last_header_wins_and_null_is_absent() {
        let mut h = Headers::default();
        h.push("a", "1");
        h.push("b", "x");
        h.push("a", "2");
        h.0.push(Header {
            name: "n".into(),
            value: None,
        });
        assert_eq!(h.last("a"), Some(&b"2"[..]));
        assert_eq!(h.last("n"), None);
        assert_eq!(h.last("zz"), None);
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn reason_round_trips_its_wire_name() {
        for r in [
            Reason::Failed,
            Reason::MaxAttemptsExceeded,
            Reason::Expired,
            Reason::Unknown,
        ] {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("bogus"), None);
    }

    #[test]
    fn size_counts_key_value_and_headers() {
        let mut h = Headers::default();
        h.push("ab", "cde");
        let l = DeadLetter::from_record(None, None, Some(b"k".to_vec()), Some(vec![0; 10]), h);
        assert_eq!(l.size(), 1 + 10 + 5);
    }
}
