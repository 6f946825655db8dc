//! The write wing. Every write to a DLQ goes through the [`Writer`]: replay, resolve,
//! keep or discard an edit (`items.rs` each letter's claim, fresh or taken over;
//! `transformed.rs` what a `--transform` makes of a letter first; `send.rs` claims'
//! takeover, send and confirm; `state.rs` resolve and edits; `target.rs` the
//! [`ReplayTarget`] trait; `verdict.rs` each letter's [`ReplayOutcome`]). Beside it: what a replay would send and why it is
//! refused ([`plan`](mod@plan)), the audit log ([`audit`]) and test-only pauses
//! ([`fault`]).
//!
//! The writer owns the policy (read-only profiles, forbidden targets), the ledger
//! protocol and the audit log, so the CLI, the TUI and library users get the same
//! guarantees. Backends supply only a [`LedgerStore`] (conditional writes) and a
//! [`ReplayTarget`] (fenced sends and look-ups).
//!
//! # Exactly once, and its failure model
//! The model: any number of operators (CLI, TUI, hosts) on one DLQ at once; a SIGKILL
//! between any two writes; a holder that is alive but slow (paced over minutes,
//! stopped with ctrl-z, asleep); a broker frozen or restarted. Safety comes from the
//! servers only; a timer decides who finishes a stalled replay, never whether a
//! message is sent twice.
//!
//! A replay of a window of letters is three steps:
//! 1. **claim**: a conditional ledger write per letter, the window's made at once
//!    (Kafka: one ledger record for the window), moves each to `replaying` with a
//!    replay id, its target partition and that partition's end offset, and the
//!    window's claim token. The ledger decides (MongoDB: a conditional update; Kafka:
//!    the order of the ledger log, see the Kafka ledger); the loser reports `skipped`
//!    with who holds the letter and since when.
//!
//! Decision (ledger format 2): the confirm is written after the transaction commits,
//! not inside it. A confirm inside the transaction would make a Kafka replay atomic,
//! but then a holder stopped inside its transaction (ctrl-z, asleep) would hold the
//! ledger's last stable offset, and every other session's read of the ledger would
//! wait until the holder is fenced. So `sent-unconfirmed` stays possible, and stays
//! safe: the next run finds the replay id among the target's committed messages.
//! 2. **send**: the window's messages in one Kafka transaction under the claim's own
//!    `transactional.id` (`morgue-replay.<dlq>.<token>`). After initialising it, and
//!    before producing, the sender reads the ledger again: a claim taken over in the
//!    meantime is not sent.
//! 3. **confirm**: a conditional write to `replayed`, with the offset, then the audit log.
//!
//! - A crash anywhere leaves the letter `replaying`. Whoever acts on it after
//!   `takeover_after` claims it over (a conditional write), then initialises the old
//!   claim's transactional id, which aborts the old sender's open transaction and
//!   refuses its later commits (KIP-98 fencing), and only then looks for the replay id
//!   among the target's committed messages. Found: confirmed, nothing sent. Not found:
//!   it was provably not sent and never will be by the old holder, so it is sent under
//!   the new claim.
//! - A slow holder (stopped inside its transaction, asleep) is fenced the same way
//!   when it is taken over; when it wakes its commit is refused and it reports
//!   `taken-over`. Claims are made a window at a time, just before that window's send,
//!   so a paced replay only ever holds the letters it is sending now.
//! - A claim's token is used for one transaction only: after a failed send the letters
//!   are released (or, when the outcome is unknown, left for the next run to verify).
//! - A send acknowledged whose confirm or audit write then fails is `sent-unconfirmed`:
//!   the letter stays `replaying` and the next run confirms it without sending.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::engine::decoders::Registry;
use crate::engine::model::after_replay::Consumed;
use crate::engine::model::encoding::EncodedBytes;
use crate::engine::model::error::EngineError;
use crate::engine::model::ledger::{
    Conflict, EntryState, LedgerEntry, LedgerError, LedgerState, LedgerStore, PendingReplay,
    source_key,
};
use crate::engine::model::letter::{DeadLetter, LetterId, ReplayRecord};
use crate::engine::model::names::whoami;
use crate::engine::transform::{Applied, Jq, apply};
use crate::engine::write::audit::{AuditLog, AuditRecord, now_rfc3339};
use crate::engine::write::plan::{ReplayPlan, ReplayPolicy, plan};
use crate::engine::write::transformed::Compiled;

/// How many times a send or a conditional write is tried before giving up.
const ATTEMPTS: u32 = 8;

/// A write other than a replay that did not happen.
#[derive(Debug, Error)]
pub enum WriteError {
    /// The engine refused it (read-only, forbidden target…).
    #[error(transparent)]
    Refused(#[from] EngineError),
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A pending replay could not be verified, so nothing else may touch the letter yet.
    #[error("{0}")]
    Pending(String),
    /// The audit log could not be written (the write itself is in the ledger).
    #[error("{0}")]
    Audit(String),
}

/// The one path for writes to a DLQ's letters, shared by every front end.
pub struct Writer {
    policy: ReplayPolicy,
    ledger: Arc<dyn LedgerStore>,
    target: Option<Arc<dyn ReplayTarget>>,
    audit: AuditLog,
    who: String,
    session: String,
    takeover_after: Duration,
    /// Reads and writes values for transforms (a claim taken over may carry one).
    decoders: Arc<Registry>,
}

/// A letter taken through claim, send and confirm.
struct Item {
    id: String,
    entry: LedgerEntry,
    out: Outgoing,
    /// Taken over from another claim: the earlier claims' senders are fenced, then the
    /// message is looked for, before anything is sent.
    takes_over: bool,
    /// Taken over, but what it must send cannot be made again (its transform fails
    /// now): confirmed if found, else left `replaying` unsent, failed with this reason.
    unsendable: Option<NotDone>,
}

impl Writer {
    /// A writer recording in `ledger`, replaying to `target` (None: replays are refused
    /// with a message naming what is missing), auditing to `audit`.
    pub fn new(
        policy: ReplayPolicy,
        ledger: Arc<dyn LedgerStore>,
        target: Option<Arc<dyn ReplayTarget>>,
        audit: AuditLog,
    ) -> Self {
        Writer {
            policy,
            ledger,
            target,
            audit,
            who: whoami(),
            session: uuid::Uuid::new_v4().to_string(),
            takeover_after: Duration::from_secs(10),
            decoders: crate::engine::decoders::builtin(),
        }
    }

    /// The profile's decoders, for transforms (default: the built-in ones).
    pub fn with_decoders(mut self, decoders: Arc<Registry>) -> Self {
        self.decoders = decoders;
        self
    }

    /// After how long another session's unconfirmed replay is taken over instead of skipped.
    pub fn with_takeover_after(mut self, d: Duration) -> Self {
        self.takeover_after = d;
        self
    }

    /// The DLQ, as `kafka://brokers/topic` or `mongodb://host/db.collection`.
    pub fn dlq(&self) -> String {
        self.ledger.dlq()
    }

    /// The policy writes are checked against.
    pub fn policy(&self) -> &ReplayPolicy {
        &self.policy
    }

    /// Makes the ledger ready for a first write while the caller reads (see
    /// [`LedgerStore::prepare`]); refused, with nothing made, in a read-only profile.
    pub async fn prepare(&self) -> Result<(), WriteError> {
        self.policy.check_writable("replay")?;
        Ok(self.ledger.prepare().await?)
    }

    /// Waits for the ledger's background upkeep (see [`LedgerStore::settle`]).
    pub async fn settle(&self) {
        self.ledger.settle().await;
    }

    /// The ledger entries of `letters`, read fresh, applied to them.
    pub async fn refresh(&self, letters: &mut [DeadLetter]) -> Result<LedgerState, LedgerError> {
        let ids: Vec<String> = letters.iter().map(id_of).collect();
        let sources: Vec<String> = letters.iter().filter_map(source_key).collect();
        let state = self.ledger.current(&ids, &sources).await?;
        for l in letters.iter_mut() {
            state.apply(l);
        }
        Ok(state)
    }

    /// Plans a replay without sending anything (for `--dry-run` and confirm dialogs).
    pub async fn plan(
        &self,
        letter: &DeadLetter,
        target: Option<&str>,
        force: bool,
    ) -> Result<ReplayPlan, WriteError> {
        let (l, edited) = self.plannable(letter, force).await?;
        Ok(plan(&l, target, edited, &self.policy, new_id(), true)?)
    }

    /// `letter` with its state read fresh, and its kept edit, when a replay may plan it.
    async fn plannable(
        &self,
        letter: &DeadLetter,
        force: bool,
    ) -> Result<(DeadLetter, Option<Vec<u8>>), WriteError> {
        let mut l = letter.clone();
        let state = self.refresh(std::slice::from_mut(&mut l)).await?;
        let edited = stored_edit(state.get(&id_of(&l)));
        if let Some(why) = self.skip_reason(&l, &state, force) {
            return Err(WriteError::Pending(why.message));
        }
        Ok((l, edited))
    }

    /// [`Writer::plan`] for a replay made by `jq`: the plan of what would be sent, and
    /// what the transform made of the letter (a failed one plans the letter as it is).
    pub async fn plan_with(
        &self,
        letter: &DeadLetter,
        target: Option<&str>,
        force: bool,
        jq: &Jq,
    ) -> Result<(ReplayPlan, Applied), WriteError> {
        let (l, edited) = self.plannable(letter, force).await?;
        let start = edited.as_deref().or(l.value.as_deref());
        let applied = apply(jq, &l, start, &self.decoders);
        // Applied once: the plan is of what it made.
        let made = transformed::made(jq, &l, edited.as_deref(), applied.clone());
        let mut p = match made {
            Ok(made) => plan(&made, target, None, &self.policy, new_id(), true)?,
            Err(_) => plan(&l, target, edited.clone(), &self.policy, new_id(), true)?,
        };
        p.edited = edited.is_some();
        Ok((p, applied))
    }

    /// Whether the source consumer group (`group`, else the letter's own) has read past
    /// `letter`'s latest replay; None when either is unknown or there is no target.
    pub async fn consumed(&self, letter: &DeadLetter, group: Option<&str>) -> Option<Consumed> {
        let last = letter.history.last()?;
        let group = group.or(letter.source.consumer_group.as_deref())?;
        let target = self.target.as_ref()?;
        match target.committed(group, &last.topic, last.partition).await {
            Ok(c) => Some(Consumed::new(group.to_string(), c, last.offset)),
            Err(e) => {
                tracing::warn!(
                    "committed offset of group '{group}' on '{}': {e}",
                    last.topic
                );
                None
            }
        }
    }

    /// The edited value kept with `letter`, read fresh from the ledger.
    pub async fn edited_value(&self, letter: &DeadLetter) -> Result<Option<Vec<u8>>, LedgerError> {
        let id = id_of(letter);
        let state = self.ledger.current(std::slice::from_ref(&id), &[]).await?;
        Ok(stored_edit(state.get(&id)))
    }

    /// Why `l` (with fresh state applied) is not replayed now, or None.
    fn skip_reason(&self, l: &DeadLetter, state: &LedgerState, force: bool) -> Option<NotDone> {
        let id = id_of(l);
        if let Some(e) = state.get(&id).filter(|e| e.state == EntryState::Replaying) {
            if !self.may_take_over(e) {
                return Some(NotDone::by(
                    Reason::Held,
                    e,
                    format!(
                        "{id} is being replayed by {}; taken over {}s after that (--takeover-after)",
                        e.holder(),
                        self.takeover_after.as_secs()
                    ),
                ));
            }
            return None;
        }
        if force {
            return None;
        }
        if let Some(r) = l.history.last() {
            return Some(NotDone {
                reason: Reason::ReplayedBefore,
                by: Some(r.by.clone()),
                since_ms: Some(r.at_ms),
                message: format!(
                    "{id} was already replayed to {}:{}@{} by {}; pass --force to replay it again",
                    r.topic, r.partition, r.offset, r.by
                ),
            });
        }
        let other = l.copy_of.as_deref()?;
        let entry = state.get(other);
        let holder = entry.map(LedgerEntry::holder).unwrap_or_default();
        let message = format!(
            "{id} is a copy of {other} (same source message), replayed by {holder}; pass --force to send it again"
        );
        Some(match entry {
            Some(e) => NotDone::by(Reason::Copy, e, message),
            None => NotDone::new(Reason::Copy, message),
        })
    }

    fn may_take_over(&self, e: &LedgerEntry) -> bool {
        let age = chrono::Utc::now().timestamp_millis() - e.at_ms;
        e.session == self.session
            || u128::try_from(age.max(0)).unwrap_or(0) >= self.takeover_after.as_millis()
    }

    /// A new entry for letter `id` following `prev`, written by this session.
    fn next(&self, id: &str, state: EntryState, prev: Option<&LedgerEntry>) -> LedgerEntry {
        LedgerEntry {
            id: id.to_string(),
            state,
            by: self.who.clone(),
            at_ms: chrono::Utc::now().timestamp_millis(),
            version: prev.map_or(1, |p| p.version + 1),
            session: self.session.clone(),
            source: prev.and_then(|p| p.source.clone()),
            force: false,
            pending: None,
            history: prev.map(|p| p.history.clone()).unwrap_or_default(),
            edited_value: prev.and_then(|p| p.edited_value.clone()),
        }
    }

    /// Replays `letters` to `target` (default: each one's source topic), exactly once
    /// each; one outcome per letter, in order. `force` sends letters already replayed.
    pub async fn replay(
        &self,
        letters: &[DeadLetter],
        target: Option<&str>,
        force: bool,
    ) -> Vec<(LetterId, ReplayOutcome)> {
        self.replay_with(letters, target, force, None).await
    }

    /// [`Writer::replay`], each letter's value made by `transform` first (from its
    /// kept edit, else its value as it arrived); a letter it fails for is skipped
    /// with [`Reason::TransformFailed`]. The ledger and the audit log keep the expression.
    pub async fn replay_with(
        &self,
        letters: &[DeadLetter],
        target: Option<&str>,
        force: bool,
        transform: Option<&Jq>,
    ) -> Vec<(LetterId, ReplayOutcome)> {
        let ids: Vec<String> = letters.iter().map(id_of).collect();
        let done = self
            .replay_by_id(letters, &ids, target, force, transform)
            .await;
        // Report in the order asked, under the letters' own ids.
        let mut by_id: std::collections::HashMap<String, ReplayOutcome> =
            done.into_iter().collect();
        letters
            .iter()
            .zip(ids)
            .filter_map(|(l, id)| {
                let o = by_id.remove(&id)?;
                let lid = l.id.clone().unwrap_or(LetterId::Mongo(String::new()));
                Some((lid, o))
            })
            .collect()
    }

    async fn replay_by_id(
        &self,
        letters: &[DeadLetter],
        ids: &[String],
        target: Option<&str>,
        force: bool,
        transform: Option<&Jq>,
    ) -> Vec<(String, ReplayOutcome)> {
        let fail_all = |why: NotDone| {
            ids.iter()
                .map(|id| (id.clone(), ReplayOutcome::Failed(why.clone())))
                .collect::<Vec<_>>()
        };
        if let Err(e) = self
            .policy
            .check_writable(&format!("replay of {} letter(s)", letters.len()))
        {
            return fail_all(NotDone::new(Reason::ReadOnly, e.to_string()));
        }
        let Some(t) = self.target.clone() else {
            return fail_all(NotDone::new(
                Reason::NoTarget,
                "replaying MongoDB letters needs --kafka BROKERS: the cluster of their source topics",
            ));
        };
        let sources: Vec<String> = letters.iter().filter_map(source_key).collect();
        let t0 = std::time::Instant::now();
        let state = match self.ledger.current(ids, &sources).await {
            Ok(s) => s,
            Err(e) => return fail_all(NotDone::new(ledger_reason(&e), e.to_string())),
        };
        tracing::debug!("replay of {}: ledger read in {:?}", ids.len(), t0.elapsed());
        // One claim token for the window: its sender's transactional id.
        let token = new_id();
        let mut done: Vec<(String, ReplayOutcome)> = Vec::new();
        let mut items = Vec::new();
        let mut compiled = Compiled::new(transform);
        for letter in letters {
            let mut l = letter.clone();
            state.apply(&mut l);
            let id = id_of(&l);
            if l.id.is_none() {
                let why = NotDone::new(Reason::NoId, "a letter without an id cannot be replayed");
                done.push((id, ReplayOutcome::Failed(why)));
                continue;
            }
            if let Some(why) = self.skip_reason(&l, &state, force) {
                done.push((id, ReplayOutcome::Skipped(why)));
                continue;
            }
            let prev = state.get(&id);
            let item = match prev.filter(|e| e.state == EntryState::Replaying) {
                Some(e) => self.takeover_item(&l, e, &token, &mut compiled),
                None => {
                    let jq = compiled.given();
                    self.fresh_item(&l, prev, target, force, &*t, &token, jq)
                        .await
                }
            };
            match item {
                Ok(item) => items.push(item),
                Err(why) if why.reason == Reason::TransformFailed => {
                    // A fresh claim whose transform fails: nothing was claimed or sent.
                    done.push((id, ReplayOutcome::Skipped(why)));
                }
                Err(why) => done.push((id, ReplayOutcome::Failed(why))),
            }
        }
        tracing::debug!("replay of {}: planned in {:?}", ids.len(), t0.elapsed());
        done.extend(self.claimed(&*t, items, &token).await);
        done
    }

    /// Claims `items` in one ledger write (just before their send), then delivers and
    /// confirms the ones this run won.
    async fn claimed(
        &self,
        t: &dyn ReplayTarget,
        items: Vec<Item>,
        token: &str,
    ) -> Vec<(String, ReplayOutcome)> {
        let mut done = Vec::new();
        if items.is_empty() {
            return done;
        }
        let entries: Vec<LedgerEntry> = items.iter().map(|i| i.entry.clone()).collect();
        let t0 = std::time::Instant::now();
        // The claim's sender is initialised while the claims are written: it sends only
        // after reading the ledger again, so a takeover is seen or fences it either way.
        let (written, opened) = tokio::join!(self.ledger.write(entries), t.open(token));
        tracing::debug!("{} claimed in {:?}", items.len(), t0.elapsed());
        match written {
            Ok(results) => {
                let mut won = Vec::new();
                for (item, r) in items.into_iter().zip(results) {
                    match r {
                        Ok(()) => won.push(item),
                        Err(c) => {
                            let why = NotDone::lost(&item.id, &c, false);
                            done.push((item.id.clone(), ReplayOutcome::Skipped(why)));
                        }
                    }
                }
                fault::pause("announced").await;
                done.extend(self.deliver(t, won, token, opened).await);
            }
            Err(e) => {
                // Claims the server may have taken are finished by the next run.
                t.close(token).await;
                let why = NotDone::new(ledger_reason(&e), e.to_string());
                done.extend(fail_items(items, &why));
            }
        }
        done
    }

    /// Audits a write that sent nothing (resolve, edit, a reconciled replay).
    async fn audit(&self, action: &str, id: &str) -> Result<(), String> {
        let dlq = self.ledger.dlq();
        self.audit
            .append(&AuditRecord {
                at: now_rfc3339(),
                by: &self.who,
                action,
                dlq: &dlq,
                id,
                topic: None,
                partition: None,
                offset: None,
                replay_id: None,
                edited: false,
                transform: None,
            })
            .await
    }
}

pub mod audit;
pub mod fault;
pub mod plan;

/// How many letters a bulk replay claims, sends and confirms together (the CLI's
/// filtered replays and the TUI's group replays alike): see [`window`].
pub const WINDOW: usize = 2000;

/// [`WINDOW`]; debug builds (the tests) take `MORGUE_TEST_WINDOW` instead, so that a
/// few dozen letters make several windows.
pub fn window() -> usize {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("MORGUE_TEST_WINDOW")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    WINDOW
}
/// Payload bytes a bulk replay holds at once, whatever the count.
pub const WINDOW_BYTES: usize = 64 << 20;
/// Batches a bulk replay's reader may hold ahead of the window being replayed.
pub const WINDOW_AHEAD: usize = 2;
mod items;
mod send;
mod state;
mod target;
mod transformed;
mod verdict;

pub use target::{Outgoing, ReplayTarget, TargetError};
pub use verdict::{NotDone, Reason, ReplayOutcome};

fn id_of(l: &DeadLetter) -> String {
    l.id.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn stored_edit(entry: Option<&LedgerEntry>) -> Option<Vec<u8>> {
    entry
        .and_then(|e| e.edited_value.as_ref())
        .and_then(|v: &EncodedBytes| v.to_bytes().ok())
}

fn fail_items(items: Vec<Item>, why: &NotDone) -> Vec<(String, ReplayOutcome)> {
    items
        .into_iter()
        .map(|i| (i.id, ReplayOutcome::Failed(why.clone())))
        .collect()
}

/// Why a send that did not complete sent nothing.
fn target_not_done(e: &TargetError) -> NotDone {
    let reason = match e {
        TargetError::Refused(_) => Reason::Refused,
        TargetError::NotSent(_) | TargetError::Unknown(_) => Reason::Unreachable,
    };
    NotDone::new(reason, e.to_string())
}

/// The reason for a ledger that could not be read or written.
fn ledger_reason(e: &LedgerError) -> Reason {
    match e {
        LedgerError::Refused(_) => Reason::Refused,
        _ => Reason::Unreachable,
    }
}

/// A short, growing, jittered pause between attempts (liveness only; correctness never waits on it).
fn backoff(attempt: u32) -> Duration {
    let base = 20u64 << attempt.min(6);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 255;
    Duration::from_millis(base / 2 + jitter)
}

/// What became of an item someone else took over: skipped, whether or not the other
/// session has delivered it yet (this run sent nothing).
fn settled(item: &Item, e: &LedgerEntry) -> ReplayOutcome {
    let rid = &item.out.plan.replay_id;
    let message = match e.history.iter().find(|h| &h.replay_id == rid) {
        Some(h) => format!(
            "{} was taken over and replayed to {}:{}@{} by {}",
            item.id, h.topic, h.partition, h.offset, h.by
        ),
        None => format!("{} was taken over by {}", item.id, e.holder()),
    };
    ReplayOutcome::Skipped(NotDone::by(Reason::TakenOver, e, message))
}
