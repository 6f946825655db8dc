//! What a replay did with each letter, typed: [`ReplayOutcome`], and for a letter it
//! did not replay a [`Reason`] code that scripts and front ends match on, who holds or
//! replayed the letter and since when, and one line of prose that quotes the letter.

use std::fmt;

use crate::engine::model::ledger::{Conflict, EntryState, LedgerEntry};

/// The machine-readable reason a letter was skipped or failed (`reason` in `replay`'s JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Another session holds an unconfirmed replay of it, younger than `--takeover-after`.
    Held,
    /// It was replayed already (`--force` sends it again).
    ReplayedBefore,
    /// It is a copy of a source message that another letter holds or replayed.
    Copy,
    /// Another session delivered it while this run was trying to (this run sent nothing).
    TakenOver,
    /// Another session changed its state meanwhile (resolved, edited).
    Changed,
    /// The profile is read-only.
    ReadOnly,
    /// The policy refuses the target (the DLQ itself, a retry or internal topic), or
    /// the letter has no target.
    Forbidden,
    /// There is no cluster to replay to (a MongoDB DLQ without `--kafka`).
    NoTarget,
    /// The ledger or the target did not answer; nothing was sent.
    Unreachable,
    /// The target or the ledger refused the write (missing topic, authorisation, size).
    Refused,
    /// The letter carries no id.
    NoId,
    /// `--transform` failed for it (an error, no value, several values, or a result
    /// its schema refuses): not sent.
    TransformFailed,
}

impl Reason {
    /// The code printed for it: `held`, `replayed-before`, `copy`, `taken-over`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Held => "held",
            Reason::ReplayedBefore => "replayed-before",
            Reason::Copy => "copy",
            Reason::TakenOver => "taken-over",
            Reason::Changed => "changed",
            Reason::ReadOnly => "read-only",
            Reason::Forbidden => "forbidden",
            Reason::NoTarget => "no-target",
            Reason::Unreachable => "unreachable",
            Reason::Refused => "refused",
            Reason::NoId => "no-id",
            Reason::TransformFailed => "transform-failed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A letter that a run did not replay: why, by whom and since when, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDone {
    /// The code.
    pub reason: Reason,
    /// Who holds, replayed or took over the letter (`user@host`), when another session did.
    pub by: Option<String>,
    /// Since when (epoch milliseconds), with `by`.
    pub since_ms: Option<i64>,
    /// One line for people, naming the letter.
    pub message: String,
}

impl NotDone {
    /// A reason with its prose and no other session involved.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        NotDone {
            reason,
            by: None,
            since_ms: None,
            message: message.into(),
        }
    }

    /// A reason involving the session that wrote `entry`.
    pub fn by(reason: Reason, entry: &LedgerEntry, message: impl Into<String>) -> Self {
        NotDone {
            reason,
            by: Some(entry.by.clone()),
            since_ms: Some(entry.at_ms),
            message: message.into(),
        }
    }

    /// Why a conditional write of letter `id` lost to `c`. `tried`: this run had already
    /// tried to send it (a conflict then means another session took it over).
    pub fn lost(id: &str, c: &Conflict, tried: bool) -> Self {
        match c {
            Conflict::Changed(e) if e.state == EntryState::Replaying => NotDone::by(
                Reason::Held,
                e,
                format!("{id} is being replayed by {}", e.holder()),
            ),
            Conflict::Changed(e) if !e.history.is_empty() && tried => NotDone::by(
                Reason::TakenOver,
                e,
                format!("{id} was taken over and replayed by {}", e.holder()),
            ),
            Conflict::Changed(e) if !e.history.is_empty() => NotDone::by(
                Reason::ReplayedBefore,
                e,
                format!("{id} was replayed by {}", e.holder()),
            ),
            Conflict::Changed(e) => NotDone::by(
                Reason::Changed,
                e,
                format!(
                    "{id} was changed by {} (now {})",
                    e.holder(),
                    e.shown_state().as_str()
                ),
            ),
            Conflict::Copy(e) => NotDone::by(
                Reason::Copy,
                e,
                format!(
                    "{id} is a copy of {} (same source message), held by {}",
                    e.id,
                    e.holder()
                ),
            ),
        }
    }
}

impl fmt::Display for NotDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What happened to one letter of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Sent and recorded (or found sent by an interrupted earlier run, `recovered`).
    Replayed {
        /// Target topic.
        topic: String,
        /// Target partition.
        partition: i32,
        /// Target offset.
        offset: i64,
        /// The `morgue-replay-id` stamped on it.
        replay_id: String,
        /// True when an edited value was sent.
        edited: bool,
        /// True when this run only confirmed what an earlier run had sent.
        recovered: bool,
    },
    /// Not sent by this run, and why (already replayed, held by someone else, a copy).
    Skipped(NotDone),
    /// Sent (the broker acknowledged it) but not recorded: the next run confirms it.
    SentUnconfirmed {
        /// Target topic.
        topic: String,
        /// Target partition.
        partition: i32,
        /// Target offset.
        offset: i64,
        /// The `morgue-replay-id` stamped on it.
        replay_id: String,
        /// Why it is not recorded.
        why: String,
    },
    /// Not sent, and why.
    Failed(NotDone),
}

impl ReplayOutcome {
    /// The status word printed for it (`replayed`, `recovered`, `skipped`, `sent-unconfirmed`, `failed`).
    pub fn status(&self) -> &'static str {
        match self {
            ReplayOutcome::Replayed {
                recovered: true, ..
            } => "recovered",
            ReplayOutcome::Replayed { .. } => "replayed",
            ReplayOutcome::Skipped(_) => "skipped",
            ReplayOutcome::SentUnconfirmed { .. } => "sent-unconfirmed",
            ReplayOutcome::Failed(_) => "failed",
        }
    }

    /// Why nothing was sent, for a skipped or failed letter.
    pub fn not_done(&self) -> Option<&NotDone> {
        match self {
            ReplayOutcome::Skipped(n) | ReplayOutcome::Failed(n) => Some(n),
            _ => None,
        }
    }
}
