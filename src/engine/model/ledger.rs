//! The replay ledger: the latest state of every letter that someone acted on,
//! keyed by letter id and shared by everyone inspecting the same DLQ. A Kafka DLQ
//! keeps it in a compacted companion topic; a MongoDB DLQ in the documents. Each
//! entry carries the letter's whole replay history (compaction keeps only the latest
//! entry) and a version: every write is conditional on the version it read, so two
//! operators can never both move a letter from the same state (see [`LedgerStore::write`]).

use std::collections::HashMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::model::encoding::EncodedBytes;
use crate::engine::model::letter::{DeadLetter, LetterState, ReplayRecord};

/// A ledger that could not be read or written.
#[derive(Debug, Error)]
pub enum LedgerError {
    /// The server could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// The server refused the read or write (permissions, a deleted topic…).
    #[error("{0}")]
    Refused(String),
    /// The letter is not in the DLQ.
    #[error("{0}")]
    NotFound(String),
    /// Anything else, worded by the backend.
    #[error("{0}")]
    Other(String),
}

/// Why a conditional ledger write was not made: what the ledger holds instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Someone wrote the letter since it was read; its entry now.
    Changed(Box<LedgerEntry>),
    /// Another letter with the same source message holds the replay; its entry.
    Copy(Box<LedgerEntry>),
}

/// Where a DLQ keeps its ledger: a compacted topic next to a Kafka DLQ, the documents
/// themselves in MongoDB.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// Every letter's latest entry, as the server holds it now.
    async fn load(&self) -> Result<LedgerState, LedgerError>;

    /// How many letters have an entry.
    async fn count(&self) -> Result<usize, LedgerError> {
        Ok(self.load().await?.len())
    }

    /// The latest entries of the letters `ids`, and of the letters holding the source
    /// messages `sources` (for copies), read fresh from the server.
    async fn current(&self, ids: &[String], sources: &[String])
    -> Result<LedgerState, LedgerError>;

    /// Writes each entry only if the letter's stored version is `entry.version - 1`
    /// (0: no entry yet) and, for a `replaying` entry with a source key, no other
    /// letter of that source is replaying or replayed (unless `entry.force`). The check
    /// and the write are one atomic step on the server. One result per entry, in order.
    async fn write(
        &self,
        entries: Vec<LedgerEntry>,
    ) -> Result<Vec<Result<(), Conflict>>, LedgerError>;

    /// The DLQ this ledger belongs to, for the audit log (`kafka://brokers/topic`).
    fn dlq(&self) -> String;

    /// Makes ready what the first write needs (a Kafka ledger's topic), so that a run
    /// can do it while it reads; a failure here is met again, and said, by that write.
    async fn prepare(&self) -> Result<(), LedgerError> {
        Ok(())
    }

    /// Waits for upkeep this session started in the background (a Kafka ledger's
    /// checkpoint) to be written, before a command exits.
    async fn settle(&self) {}
}

/// Suffix of the ledger topic next to a Kafka DLQ topic.
pub const LEDGER_SUFFIX: &str = ".morgue-ledger";

/// What the latest ledger entry says about a letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Nothing pending (an edit was discarded, a pending replay cleared); the history still counts.
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

impl EntryState {
    /// Every state, in the order of their codes.
    pub const ALL: [EntryState; 5] = [
        EntryState::New,
        EntryState::Replaying,
        EntryState::Replayed,
        EntryState::Resolved,
        EntryState::Edited,
    ];

    /// The state's code in compact ledger records (its place in [`EntryState::ALL`]).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The state of code `c`, if there is one.
    pub fn from_code(c: u8) -> Option<EntryState> {
        Self::ALL.get(usize::from(c)).copied()
    }

    /// The state a letter shows with an entry in this state (`replayed`: its history
    /// lists a completed replay; a `new` entry with history was replayed).
    pub fn shown(self, replayed: bool) -> LetterState {
        match self {
            EntryState::Replayed => LetterState::Replayed,
            EntryState::Resolved => LetterState::Resolved,
            EntryState::Edited => LetterState::Edited,
            EntryState::Replaying => LetterState::Replaying,
            EntryState::New if replayed => LetterState::Replayed,
            EntryState::New => LetterState::New,
        }
    }
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
    /// 1 for a letter's first entry, one more for each write after it.
    #[serde(default)]
    pub version: u64,
    /// The writer's session (one per process), to tell its own pending replays from others'.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
    /// The source message's key (`topic/partition/offset`), shared by copies of one message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Written with `--force`: copies are not checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
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

impl LedgerEntry {
    /// The state a letter with this entry shows (a `new` entry with history was replayed).
    pub fn shown_state(&self) -> LetterState {
        self.state.shown(!self.history.is_empty())
    }

    /// Whether this entry holds the source message against copies (replaying or replayed).
    pub fn holds_source(&self) -> bool {
        self.state == EntryState::Replaying || !self.history.is_empty()
    }

    /// `user@host since HH:MM:SS`, for messages about who holds a letter.
    pub fn holder(&self) -> String {
        let since = chrono::DateTime::from_timestamp_millis(self.at_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default();
        format!("{} since {since}", self.by)
    }
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
    /// The key sent (copied into the replay record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<EncodedBytes>,
    /// The claim's token: its sender's transactional id is `morgue-replay.<dlq>.<token>`
    /// (empty in entries of older versions, which sent as `morgue-replay.<dlq>`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub txn: String,
    /// Tokens of earlier claims of this replay (taken over): their senders are fenced
    /// before the message is looked for, and before anything is sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<String>,
    /// The transform the value was made with (`engine::transform::Spec::to_ledger`):
    /// whoever finishes the replay computes the same bytes from the same start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
}

/// The source key of a letter: `topic/partition/offset` of the original message, when all are known.
pub fn source_key(l: &DeadLetter) -> Option<String> {
    let s = &l.source;
    Some(format!(
        "{}/{}/{}",
        s.topic.as_deref()?,
        s.partition?,
        s.offset?
    ))
}

/// The latest entry per letter, as read from the ledger, with copies indexed by source.
#[derive(Debug, Clone, Default)]
pub struct LedgerState {
    entries: HashMap<String, LedgerEntry>,
    by_source: HashMap<String, String>,
}

impl LedgerState {
    /// Applies an entry read from the ledger (later entries replace earlier ones).
    pub fn insert(&mut self, entry: LedgerEntry) {
        if let Some(src) = &entry.source {
            if entry.holds_source() {
                self.by_source
                    .entry(src.clone())
                    .or_insert_with(|| entry.id.clone());
            } else if self.by_source.get(src) == Some(&entry.id) {
                self.by_source.remove(src);
            }
        }
        self.entries.insert(entry.id.clone(), entry);
    }

    /// Why `entry` could not be written over this state: the letter's entry, or the copy
    /// holding its source.
    pub fn conflict(&self, entry: &LedgerEntry) -> Conflict {
        if let Some(e) = self.entries.get(&entry.id) {
            return Conflict::Changed(Box::new(e.clone()));
        }
        if let Some(other) = entry
            .source
            .as_deref()
            .and_then(|k| self.copy_holder(k, &entry.id))
        {
            return Conflict::Copy(Box::new(other.clone()));
        }
        Conflict::Changed(Box::new(LedgerEntry {
            version: 0,
            ..entry.clone()
        }))
    }

    /// Every letter's latest entry, in no order.
    pub fn entries(&self) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.values()
    }

    /// The latest entry for letter `id`.
    pub fn get(&self, id: &str) -> Option<&LedgerEntry> {
        self.entries.get(id)
    }

    /// The entry of another letter that holds source `key` (replaying or replayed), if any.
    pub fn copy_holder(&self, key: &str, id: &str) -> Option<&LedgerEntry> {
        let other = self.by_source.get(key).filter(|o| o.as_str() != id)?;
        self.entries.get(other).filter(|e| e.holds_source())
    }

    /// The entries of `ids` and the holders of `sources`: what one decision needs.
    pub fn subset(&self, ids: &[String], sources: &[String]) -> LedgerState {
        let mut out = LedgerState::default();
        for id in ids {
            if let Some(e) = self.entries.get(id) {
                out.insert(e.clone());
            }
        }
        for src in sources {
            if let Some(e) = self.by_source.get(src).and_then(|id| self.entries.get(id)) {
                out.insert(e.clone());
            }
        }
        out
    }

    /// How many letters the ledger holds in each shown state (`replayed`, …).
    pub fn states(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let mut out = std::collections::BTreeMap::new();
        for e in self.entries.values() {
            *out.entry(e.shown_state().as_str()).or_insert(0) += 1;
        }
        out
    }

    /// Number of letters with an entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nobody has acted on any letter.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `letter`'s state, history, holder and copy link from its entry (or a copy's).
    pub fn apply(&self, letter: &mut DeadLetter) {
        if self.entries.is_empty() {
            return;
        }
        let Some(id) = letter.id.as_ref().map(ToString::to_string) else {
            return;
        };
        if let Some(e) = self.entries.get(&id) {
            letter.history = e.history.clone();
            letter.state = e.shown_state();
            letter.held_by = (e.state == EntryState::Replaying).then(|| e.holder());
        }
        if letter.history.is_empty()
            && letter.state != LetterState::Replaying
            && let Some(other) = source_key(letter).and_then(|k| self.copy_holder(&k, &id))
        {
            letter.copy_of = Some(other.id.clone());
            if matches!(letter.state, LetterState::New | LetterState::Edited) {
                letter.state = if other.state == EntryState::Replaying {
                    LetterState::Replaying
                } else {
                    LetterState::Replayed
                };
            }
        }
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
            version: 1,
            session: String::new(),
            source: None,
            force: false,
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
                    key: None,
                    transform: None,
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
        assert_eq!(l.state, LetterState::Replaying);
        assert!(l.held_by.as_deref().unwrap().starts_with("ann@jump since "));
        s.insert(entry(EntryState::Replayed, 2));
        s.apply(&mut l);
        assert_eq!(l.state, LetterState::Replayed);
        assert_eq!(l.history.len(), 2);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_letter_of_a_held_source_shows_as_a_copy() {
        let mut s = LedgerState::default();
        let mut first = entry(EntryState::Replaying, 0);
        first.source = Some("orders/1/17".into());
        s.insert(first.clone());
        let mut l = DeadLetter::from_record(
            Some(LetterId::Kafka {
                partition: 1,
                offset: 5,
            }),
            None,
            None,
            None,
            Headers::default(),
        );
        l.source.topic = Some("orders".into());
        l.source.partition = Some(1);
        l.source.offset = Some(17);
        s.apply(&mut l);
        assert_eq!(l.copy_of.as_deref(), Some("0:1"));
        assert_eq!(l.state, LetterState::Replaying);
        let mut copy = first.clone();
        copy.id = "1:5".into();
        assert!(matches!(s.conflict(&copy), Conflict::Copy(e) if e.id == "0:1"));
        // Cleared without a send: the source is free again.
        let mut cleared = first;
        cleared.version = 2;
        cleared.state = EntryState::New;
        s.insert(cleared);
        assert!(s.copy_holder("orders/1/17", "1:5").is_none());
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
            key: None,
            txn: "t".into(),
            earlier: vec!["s".into()],
            transform: None,
        });
        e.edited_value = Some(EncodedBytes::of(&[0xff]));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(serde_json::from_str::<LedgerEntry>(&json).unwrap(), e);
    }
}
