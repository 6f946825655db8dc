//! The replay ledger: the latest state of every letter that someone acted on,
//! keyed by letter id and shared by everyone inspecting the same DLQ. A Kafka DLQ
//! keeps it in a compacted companion topic; each entry carries the letter's whole
//! replay history, so compaction (which keeps only the latest entry) loses nothing.

use std::collections::HashMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::encoding::EncodedBytes;
use super::letter::{DeadLetter, LetterState, ReplayRecord};

/// A ledger that could not be read or written, worded by the backend.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

/// Where a DLQ keeps its ledger: a compacted topic next to a Kafka DLQ, the documents
/// themselves in MongoDB.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Every letter's latest entry.
    async fn load(&self) -> Result<LedgerState, LedgerError>;

    /// Stores `entry` durably (acknowledged by the server) as the letter's latest state.
    async fn record(&self, entry: &LedgerEntry) -> Result<(), LedgerError>;

    /// The DLQ this ledger belongs to, for the audit log (`kafka://brokers/topic`).
    fn dlq(&self) -> String;
}

/// Suffix of the ledger topic next to a Kafka DLQ topic.
pub const LEDGER_SUFFIX: &str = ".morgue-ledger";

/// What the latest ledger entry says about a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Nothing pending (an edit was discarded); the history still counts.
    New,
    /// A replay was started and may or may not have reached the target: verify before resending.
    Replaying,
    /// Replayed; see the history.
    Replayed,
    /// Marked handled without a replay.
    Resolved,
    /// An edited value is kept, not yet replayed.
    Edited,
}

/// One ledger record: the full current state of one letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The letter id (`partition:offset` or `_id`).
    pub id: String,
    /// Current state.
    pub state: EntryState,
    /// Who wrote this entry, `user@host`.
    pub by: String,
    /// When, epoch milliseconds.
    pub at_ms: i64,
    /// The replay in progress (state `replaying`): its id, target and where to look for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingReplay>,
    /// Every completed replay, oldest first.
    #[serde(default)]
    pub history: Vec<ReplayRecord>,
    /// The edited value, kept until replayed or discarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_value: Option<EncodedBytes>,
}

/// A replay that was announced but not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReplay {
    /// The `morgue-replay-id` stamped on the message.
    pub replay_id: String,
    /// Target topic.
    pub topic: String,
    /// Target partition.
    pub partition: i32,
    /// An offset at or before where the message would land (the partition's end when announced).
    pub from_offset: i64,
    /// True when the value sent is an edited one.
    pub edited: bool,
}

/// The latest entry per letter, as read from the ledger.
#[derive(Debug, Clone, Default)]
pub struct LedgerState {
    entries: HashMap<String, LedgerEntry>,
}

impl LedgerState {
    /// Applies an entry read from the ledger (later entries replace earlier ones).
    pub fn insert(&mut self, entry: LedgerEntry) {
        self.entries.insert(entry.id.clone(), entry);
    }

    /// The latest entry for letter `id`.
    pub fn get(&self, id: &str) -> Option<&LedgerEntry> {
        self.entries.get(id)
    }

    /// Number of letters with an entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nobody has acted on any letter.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `letter`'s state and history from its entry, if it has one.
    pub fn apply(&self, letter: &mut DeadLetter) {
        if self.entries.is_empty() {
            return;
        }
        let Some(id) = letter.id.as_ref().map(ToString::to_string) else {
            return;
        };
        let Some(e) = self.entries.get(&id) else {
            return;
        };
        letter.history = e.history.clone();
        letter.state = match e.state {
            EntryState::Replayed => LetterState::Replayed,
            EntryState::Resolved => LetterState::Resolved,
            EntryState::Edited => LetterState::Edited,
            EntryState::New | EntryState::Replaying if e.history.is_empty() => LetterState::New,
            EntryState::New | EntryState::Replaying => LetterState::Replayed,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Headers, LetterId};

    fn entry(state: EntryState, history: usize) -> LedgerEntry {
        LedgerEntry {
            id: "0:1".into(),
            state,
            by: "ann@jump".into(),
            at_ms: 1,
            pending: None,
            history: (0..history)
                .map(|i| ReplayRecord {
                    replay_id: format!("r{i}"),
                    topic: "orders".into(),
                    partition: 0,
                    offset: i as i64,
                    by: "ann@jump".into(),
                    at_ms: 1,
                    edited: false,
                })
                .collect(),
            edited_value: None,
        }
    }

    #[test]
    fn the_latest_entry_sets_state_and_history() {
        let mut s = LedgerState::default();
        s.insert(entry(EntryState::Replaying, 0));
        let mut l = DeadLetter::from_record(
            Some(LetterId::Kafka {
                partition: 0,
                offset: 1,
            }),
            None,
            None,
            None,
            Headers::default(),
        );
        s.apply(&mut l);
        assert_eq!(l.state, LetterState::New);
        s.insert(entry(EntryState::Replayed, 2));
        s.apply(&mut l);
        assert_eq!(l.state, LetterState::Replayed);
        assert_eq!(l.history.len(), 2);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn entries_round_trip_as_json() {
        let mut e = entry(EntryState::Replaying, 1);
        e.pending = Some(PendingReplay {
            replay_id: "r".into(),
            topic: "orders".into(),
            partition: 2,
            from_offset: 10,
            edited: true,
        });
        e.edited_value = Some(EncodedBytes::of(&[0xff]));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<LedgerEntry>(&json).unwrap(), e);
    }
}
