//! Where the TUI and the headless commands read dead letters from: any backend that
//! can stream a DLQ from a position, keep following it, and fetch one letter by id.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::engine::model::error::{BackendError, FailureKind};
use crate::engine::model::ledger::{LedgerError, LedgerState};
use crate::engine::model::letter::{DeadLetter, LetterId};

/// A read failure: its kind, its line and the backend's error (see [`BackendError`]).
pub type SourceError = BackendError;

impl From<LedgerError> for SourceError {
    fn from(e: LedgerError) -> Self {
        let kind = match e {
            LedgerError::Unreachable(_) => FailureKind::Unreachable,
            LedgerError::Refused(_) => FailureKind::Refused,
            LedgerError::NotFound(_) => FailureKind::NotFound,
            LedgerError::Other(_) => FailureKind::Other,
        };
        SourceError::caused(kind, e.to_string(), e)
    }
}

/// How many batches a stream may read ahead of whoever consumes it (a full channel
/// makes the reader wait, so memory stays flat).
pub const AHEAD: usize = 8;

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest letter still kept.
    Beginning,
    /// Only letters arriving from now on.
    End,
    /// This offset in every partition (Kafka) / this many letters back is not meant.
    Offset(i64),
    /// The first letter at or after this time, epoch milliseconds.
    Time(i64),
}

impl StartAt {
    /// Parses `beginning`, `end`, an offset, an RFC 3339 time, or an age like `2h`
    /// counted back from `now_ms`; the error quotes the input.
    pub fn parse(s: &str, now_ms: i64) -> Result<StartAt, String> {
        match s {
            "beginning" | "start" | "oldest" => return Ok(StartAt::Beginning),
            "end" | "newest" => return Ok(StartAt::End),
            _ => {}
        }
        if let Ok(o) = s.parse::<i64>() {
            return Ok(StartAt::Offset(o));
        }
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(StartAt::Time(t.timestamp_millis()));
        }
        if let Ok(d) = crate::engine::model::duration::parse_duration(s) {
            return Ok(StartAt::Time(
                now_ms - i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            ));
        }
        Err(format!(
            "bad start '{s}': use beginning, end, an offset, an RFC 3339 time or an age like 2h"
        ))
    }
}

/// What a stream reports.
#[derive(Debug)]
pub enum SourceEvent {
    /// A batch of letters, in per-partition order.
    Letters(Vec<DeadLetter>),
    /// Everything present when the stream started has been delivered.
    CaughtUp {
        /// Letters delivered so far.
        delivered: u64,
    },
    /// Something the user should know about the stream (e.g. which live mode is active).
    Notice(String),
    /// The server stopped answering without closing the connection (a frozen broker,
    /// a network that drops packets): nothing was heard from it since `since_ms`.
    Silent {
        /// The server, as configured (`host:port`).
        server: String,
        /// When it last answered, epoch milliseconds.
        since_ms: i64,
    },
    /// The server answers again after a [`SourceEvent::Silent`].
    Answering {
        /// The server, as configured.
        server: String,
    },
}

/// A DLQ that can be read.
#[async_trait]
pub trait DeadLetterSource: Send + Sync {
    /// What is being read, for headers and messages (`topic 'x' on host:port`).
    fn describe(&self) -> String;

    /// How many letters the DLQ holds now (from watermarks or a count).
    async fn count(&self) -> Result<u64, SourceError>;

    /// Sends letters from `from` into `tx` in batches; with `follow`, keeps sending new
    /// ones until `tx` is closed. A full channel makes the reader wait (memory stays flat).
    async fn stream(
        &self,
        from: StartAt,
        follow: bool,
        tx: mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError>;

    /// The letter `id`, with its state.
    async fn fetch(&self, id: &LetterId) -> Result<DeadLetter, SourceError>;

    /// The ledger as the server holds it now (empty for a DLQ without one).
    async fn ledger(&self) -> Result<LedgerState, SourceError> {
        Ok(LedgerState::default())
    }

    /// How long the DLQ keeps a letter before deleting it (ms), when it does.
    async fn retention_ms(&self) -> Option<i64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        let now = 10_000_000;
        assert_eq!(StartAt::parse("beginning", now), Ok(StartAt::Beginning));
        assert_eq!(StartAt::parse("end", now), Ok(StartAt::End));
        assert_eq!(StartAt::parse("42", now), Ok(StartAt::Offset(42)));
        assert_eq!(
            StartAt::parse("1h", now),
            Ok(StartAt::Time(now - 3_600_000))
        );
        assert_eq!(
            StartAt::parse("2024-11-27T09:33:20Z", now),
            Ok(StartAt::Time(1_732_700_000_000))
        );
        assert!(
            StartAt::parse("yesterday", now)
                .unwrap_err()
                .contains("'yesterday'")
        );
    }
}
