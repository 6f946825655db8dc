//! Every write to a DLQ goes through the [`Writer`]: replay, resolve, keep or discard
//! an edit. It owns the policy (read-only profiles, forbidden targets), the ledger
//! protocol and the audit log, so the CLI, the TUI and library users get the same
//! guarantees. Backends supply a [`LedgerStore`] (conditional writes), a
//! [`ReplayTarget`] (fenced sends and look-ups) and, where the ledger and the target
//! share one cluster, an [`AtomicReplay`] (send and record in one transaction).
//!
//! # Exactly once, and its failure model
//! The model: any number of operators (CLI, TUI, hosts) on one DLQ at once; a
//! SIGKILL between any two writes; a holder that is alive but slow (paced over
//! minutes, stopped with ctrl-z, asleep); a broker frozen or restarted. Safety comes
//! from the servers only; no timer decides whether a message is sent.
//!
//! **One step** (a Kafka DLQ, replayed to its own cluster, see [`atomic`]): the
//! messages and their `replayed` ledger entries are produced in one Kafka transaction
//! under the `transactional.id` that every session of this DLQ shares for its ledger.
//! The ledger is read, and each entry's version checked, after this session's
//! producer was initialised; the commit succeeds only if nobody initialised since, so
//! the check held at commit. A holder that is slow, stopped or killed holds nothing:
//! another session's initialisation aborts its open transaction and fences its
//! producer; when it wakes it re-reads the ledger and reports `taken-over`.
//!
//! **Three steps** (a MongoDB DLQ, or a letter left `replaying` by an older morgue):
//! **announce** (a conditional ledger write moves the letter to `replaying` with a
//! replay id, target partition and that partition's end offset), **send** (one Kafka
//! transaction under `morgue-replay.<dlq>`, shared by everyone replaying from this
//! DLQ), **confirm** (a conditional write to `replayed`, with the offset).
//! - Two operators: the announce is a compare-and-set on the letter's version (and on
//!   its source message, for copies), decided by the server; the loser reports
//!   `skipped` with who holds the letter and since when.
//! - A crash anywhere: the letter stays `replaying`. Whoever acts on it after
//!   `takeover_after` takes it over with a conditional write, then re-initialises the
//!   shared `transactional.id` (which aborts any transaction the old holder still had
//!   open: KIP-98 fencing), and only then looks for the replay id in the target
//!   partition (committed messages only). Found: confirmed, nothing sent. Not found: it
//!   was provably not sent, and never will be by the old holder, whose producer is
//!   fenced and who re-reads the ledger after every re-initialisation before sending.
//! - A send acknowledged whose confirm or audit write then fails is `sent-unconfirmed`:
//!   the letter stays `replaying` and the next run confirms it without sending.
//!
//! Announces are made a window at a time, just before the window's send, so a paced
//! replay holds only the letters it is sending now.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use super::audit::{AuditLog, AuditRecord, now_rfc3339};
use super::encoding::EncodedBytes;
use super::error::EngineError;
use super::fault;
use super::ledger::{
    Conflict, EntryState, LedgerEntry, LedgerError, LedgerState, LedgerStore, PendingReplay,
    source_key,
};
use super::letter::{DeadLetter, LetterId, ReplayRecord};
use super::outcome::Consumed;
use super::replay::{ReplayPlan, ReplayPolicy, plan};
use super::sink::whoami;
pub use atomic::AtomicReplay;

/// How many times a send or a conditional write is tried before giving up.
const ATTEMPTS: u32 = 8;

/// One message to send: the plan and the partition announced for it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// What to send.
    pub plan: ReplayPlan,
    /// Where.
    pub partition: i32,
}

/// A send that did not complete.
#[derive(Debug, Error)]
pub enum TargetError {
    /// Nothing reached the target (the transaction was aborted or never begun): safe to retry.
    #[error("{0}")]
    NotSent(String),
    /// The outcome is unknown: look for the replay ids before sending again.
    #[error("{0}")]
    Unknown(String),
    /// The target refuses (missing topic, authorisation): retrying will not help.
    #[error("{0}")]
    Refused(String),
}

/// Where replays go: a Kafka cluster, written with a fenced transactional producer.
#[async_trait]
pub trait ReplayTarget: Send + Sync {
    /// The partition a message with `key` goes to in `topic`, and that partition's end offset now.
    async fn place(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        source_partition: Option<i32>,
    ) -> Result<(i32, i64), TargetError>;

    /// The current epoch of this session's producer, initialising one if needed.
    async fn epoch(&self) -> Result<u64, TargetError>;

    /// Re-initialises the shared `transactional.id`, fencing every other holder; the new epoch.
    async fn fence(&self) -> Result<u64, TargetError>;

    /// For each pending replay, the offset of its message if it was committed to its target.
    async fn find(&self, pending: &[PendingReplay]) -> Result<Vec<Option<i64>>, TargetError>;

    /// The offset `group` has committed on `topic` partition `partition` (None: nothing).
    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, TargetError>;

    /// Sends `msgs` in one transaction if the producer is still at `epoch`; their offsets.
    async fn send(&self, epoch: u64, msgs: &[Outgoing]) -> Result<Vec<i64>, TargetError>;
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
    atomic: Option<Arc<dyn AtomicReplay>>,
    audit: AuditLog,
    who: String,
    session: String,
    takeover_after: Duration,
}

/// A letter taken through announce, send and confirm.
struct Item {
    id: String,
    entry: LedgerEntry,
    out: Outgoing,
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
            atomic: None,
            audit,
            who: whoami(),
            session: uuid::Uuid::new_v4().to_string(),
            takeover_after: Duration::from_secs(10),
        }
    }

    /// Sends and records replays in one transaction through `atomic` (the ledger and
    /// the target on one cluster) instead of announce, send and confirm.
    pub fn with_atomic(mut self, atomic: Option<Arc<dyn AtomicReplay>>) -> Self {
        self.atomic = atomic;
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
        let mut l = letter.clone();
        let state = self.refresh(std::slice::from_mut(&mut l)).await?;
        let edited = stored_edit(state.get(&id_of(&l)));
        if let Some(why) = self.skip_reason(&l, &state, force) {
            return Err(WriteError::Pending(why.message));
        }
        Ok(plan(&l, target, edited, &self.policy, new_id(), true)?)
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
        let ids: Vec<String> = letters.iter().map(id_of).collect();
        let done = self.replay_by_id(letters, &ids, target, force).await;
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
            Err(e) => return fail_all(NotDone::new(Reason::Unreachable, e.to_string())),
        };
        tracing::debug!("replay of {}: ledger read in {:?}", ids.len(), t0.elapsed());
        let mut done: Vec<(String, ReplayOutcome)> = Vec::new();
        let (mut fresh, mut taken) = (Vec::new(), Vec::new());
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
                Some(e) => self.takeover_item(&l, e).map(|i| (i, true)),
                None => self
                    .fresh_item(&l, prev, target, force, &*t)
                    .await
                    .map(|i| (i, false)),
            };
            match item {
                Ok((item, true)) => taken.push(item),
                Ok((item, false)) => fresh.push(item),
                Err(why) => done.push((id, ReplayOutcome::Failed(why))),
            }
        }
        if let Some(a) = self.atomic.clone() {
            // Sent and recorded in one transaction: nothing to announce.
            done.extend(self.deliver_atomic(&*a, fresh).await);
            fresh = Vec::new();
        }
        done.extend(self.announced(&*t, fresh, taken).await);
        done
    }

    /// Announces `fresh` and `taken` letters in one ledger write (just before their
    /// send), then delivers and confirms those still ours.
    async fn announced(
        &self,
        t: &dyn ReplayTarget,
        fresh: Vec<Item>,
        taken: Vec<Item>,
    ) -> Vec<(String, ReplayOutcome)> {
        let mut done = Vec::new();
        if fresh.is_empty() && taken.is_empty() {
            return done;
        }
        let epoch = match t.epoch().await {
            Ok(e) => e,
            Err(e) => {
                let why = target_not_done(&e);
                return fail_items(fresh.into_iter().chain(taken).collect(), &why);
            }
        };
        let n_fresh = fresh.len();
        let entries: Vec<LedgerEntry> = fresh
            .iter()
            .chain(&taken)
            .map(|i| i.entry.clone())
            .collect();
        match self.ledger.write(entries).await {
            Ok(results) => {
                let all: Vec<Item> = fresh.into_iter().chain(taken).collect();
                let (mut fresh, mut taken) = (Vec::new(), Vec::new());
                for (i, (item, r)) in all.into_iter().zip(results).enumerate() {
                    match r {
                        Ok(()) if i < n_fresh => fresh.push(item),
                        Ok(()) => taken.push(item),
                        Err(c) => {
                            let why = NotDone::lost(&item.id, &c, false);
                            done.push((item.id.clone(), ReplayOutcome::Skipped(why)));
                        }
                    }
                }
                fault::pause("announced").await;
                done.extend(self.deliver(t, fresh, Some(epoch)).await);
                done.extend(self.deliver(t, taken, None).await);
            }
            Err(e) => {
                let why = NotDone::new(ledger_reason(&e), e.to_string());
                done.extend(fail_items(fresh.into_iter().chain(taken).collect(), &why));
            }
        }
        done
    }

    /// The entry and message for a letter nobody holds: `replaying` to announce it, or
    /// `replayed` (offset filled in by the backend) when it is sent in one step.
    async fn fresh_item(
        &self,
        l: &DeadLetter,
        prev: Option<&LedgerEntry>,
        target: Option<&str>,
        force: bool,
        t: &dyn ReplayTarget,
    ) -> Result<Item, NotDone> {
        let id = id_of(l);
        let edited = stored_edit(prev);
        let p = plan(l, target, edited, &self.policy, new_id(), true)
            .map_err(|e| NotDone::new(Reason::Forbidden, e.to_string()))?;
        let (partition, from_offset) = t
            .place(&p.topic, p.key.as_deref(), l.source.partition)
            .await
            .map_err(|e| target_not_done(&e))?;
        let mut entry = if self.atomic.is_some() {
            let mut e = self.next(&id, EntryState::Replayed, prev);
            e.history.push(ReplayRecord {
                replay_id: p.replay_id.clone(),
                topic: p.topic.clone(),
                partition,
                offset: -1,
                by: self.who.clone(),
                at_ms: e.at_ms,
                edited: p.edited,
                key: p.key.as_deref().map(EncodedBytes::of),
            });
            e.edited_value = None;
            e
        } else {
            let mut e = self.next(&id, EntryState::Replaying, prev);
            e.pending = Some(PendingReplay {
                replay_id: p.replay_id.clone(),
                topic: p.topic.clone(),
                partition,
                from_offset,
                edited: p.edited,
                key: p.key.as_deref().map(EncodedBytes::of),
            });
            e
        };
        entry.source = source_key(l);
        entry.force = force;
        Ok(Item {
            id,
            entry,
            out: Outgoing { plan: p, partition },
        })
    }

    /// The takeover entry and message for a letter left `replaying` (same replay id and target).
    fn takeover_item(&self, l: &DeadLetter, e: &LedgerEntry) -> Result<Item, NotDone> {
        let id = id_of(l);
        let p = e.pending.clone().ok_or_else(|| {
            NotDone::new(
                Reason::Forbidden,
                format!("{id} is replaying but its entry names no target"),
            )
        })?;
        let value = match &e.pending {
            Some(pp) if pp.edited => stored_edit(Some(e)),
            _ => None,
        };
        let mut entry = self.next(&id, EntryState::Replaying, Some(e));
        entry.pending = Some(p.clone());
        entry.force = e.force;
        let out = plan(
            l,
            Some(&p.topic),
            value,
            &self.policy,
            p.replay_id.clone(),
            true,
        )
        .map_err(|e| NotDone::new(Reason::Forbidden, e.to_string()))?;
        Ok(Item {
            id,
            entry,
            out: Outgoing {
                plan: out,
                partition: p.partition,
            },
        })
    }

    /// Audits a write that sent nothing (resolve, edit, a reconciled replay).
    fn audit(&self, action: &str, id: &str) -> Result<(), String> {
        let dlq = self.ledger.dlq();
        self.audit.append(&AuditRecord {
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
        })
    }
}

mod atomic;
mod send;
mod state;
mod verdict;

pub use verdict::{NotDone, Reason};

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

/// What became of an item someone else took over.
fn settled(item: &Item, e: &LedgerEntry) -> ReplayOutcome {
    let rid = &item.out.plan.replay_id;
    match e.history.iter().find(|h| &h.replay_id == rid) {
        Some(h) => ReplayOutcome::Replayed {
            topic: h.topic.clone(),
            partition: h.partition,
            offset: h.offset,
            replay_id: rid.clone(),
            edited: h.edited,
            recovered: true,
        },
        None => ReplayOutcome::Skipped(NotDone::by(
            Reason::TakenOver,
            e,
            format!("{} was taken over by {}", item.id, e.holder()),
        )),
    }
}
