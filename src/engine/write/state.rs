//! The writes that change a letter's state without sending it: resolve, keep an
//! edit, discard an edit. Each first reconciles a pending replay of the letter, so a
//! replay that was announced and perhaps sent is never forgotten.

use super::{ATTEMPTS, WriteError, Writer, backoff, id_of};
use crate::engine::model::encoding::EncodedBytes;
use crate::engine::model::ledger::{EntryState, LedgerEntry, PendingReplay};
use crate::engine::model::letter::{DeadLetter, ReplayRecord};
use crate::engine::write::fault;

impl Writer {
    /// Marks `letter` handled without replaying it.
    pub async fn resolve(&self, letter: &DeadLetter) -> Result<LedgerEntry, WriteError> {
        self.set_state(letter, "resolve", EntryState::Resolved, |_| {})
            .await
    }

    /// Keeps an edited value with `letter` (state `edited`) until it is replayed or discarded.
    pub async fn save_edit(
        &self,
        letter: &DeadLetter,
        value: Vec<u8>,
    ) -> Result<LedgerEntry, WriteError> {
        self.set_state(letter, "edit", EntryState::Edited, |e| {
            e.edited_value = Some(EncodedBytes::of(&value));
        })
        .await
    }

    /// Drops the edited value kept with `letter`; it shows as it was before the edit.
    pub async fn discard_edit(&self, letter: &DeadLetter) -> Result<LedgerEntry, WriteError> {
        self.set_state(letter, "discard-edit", EntryState::New, |e| {
            e.edited_value = None;
        })
        .await
    }

    /// Reads the letter's entry fresh, reconciles a pending replay, then writes
    /// `state` conditionally on what was read; retried when someone else wrote first.
    async fn set_state(
        &self,
        letter: &DeadLetter,
        action: &str,
        state: EntryState,
        change: impl Fn(&mut LedgerEntry),
    ) -> Result<LedgerEntry, WriteError> {
        let id = id_of(letter);
        self.policy.check_writable(&format!("{action} of {id}"))?;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let cur = self.ledger.current(std::slice::from_ref(&id), &[]).await?;
            let prev = cur.get(&id).cloned();
            if let Some(e) = prev.as_ref().filter(|e| e.state == EntryState::Replaying) {
                self.reconcile(e).await?;
                continue;
            }
            let mut e = self.next(&id, state, prev.as_ref());
            change(&mut e);
            let written = self.ledger.write(vec![e.clone()]).await?;
            if matches!(written.first(), Some(Ok(()))) {
                self.audit(action, &id).await.map_err(WriteError::Audit)?;
                return Ok(e);
            }
        }
        Err(WriteError::Pending(format!(
            "{action} of {id} gave up: the ledger kept changing under it"
        )))
    }

    /// Settles a pending replay: take it over, fence its old holder, look for its
    /// message; confirm it if found, clear it if not (it was provably not sent).
    async fn reconcile(&self, e: &LedgerEntry) -> Result<(), WriteError> {
        let id = e.id.clone();
        let Some(p) = e.pending.clone() else {
            // A pending state without a target: nothing can have been sent.
            let clear = self.next(&id, EntryState::New, Some(e));
            self.ledger.write(vec![clear]).await?;
            return Ok(());
        };
        let Some(t) = self.target.clone() else {
            return Err(WriteError::Pending(format!(
                "{id} has an unconfirmed replay to '{}' by {}; verifying it needs --kafka BROKERS",
                p.topic,
                e.holder()
            )));
        };
        // Claimed over under a token of this session's (never used to send), so the
        // old holder's sender, fenced below, cannot be mistaken for ours.
        let mut mine = self.next(&id, EntryState::Replaying, Some(e));
        let mut earlier = p.earlier.clone();
        earlier.push(p.txn.clone());
        mine.pending = Some(PendingReplay {
            txn: super::new_id(),
            earlier,
            ..p.clone()
        });
        let took = self.ledger.write(vec![mine.clone()]).await?;
        if !matches!(took.first(), Some(Ok(()))) {
            return Ok(()); // someone else moved it; the caller reads it again
        }
        let pending_err = |e: crate::engine::write::TargetError| {
            WriteError::Pending(format!(
                "{id} has an unconfirmed replay to '{}' that could not be verified: {e}",
                p.topic
            ))
        };
        t.fence(&p.txn).await.map_err(pending_err)?;
        for old in &p.earlier {
            t.fence(old).await.map_err(pending_err)?;
        }
        let found = t
            .find(std::slice::from_ref(&p))
            .await
            .map_err(pending_err)?;
        fault::pause("reconciled").await;
        let next = match found.first().copied().flatten() {
            Some(offset) => {
                let mut done = self.next(&id, EntryState::Replayed, Some(&mine));
                done.history.push(ReplayRecord {
                    replay_id: p.replay_id.clone(),
                    topic: p.topic.clone(),
                    partition: p.partition,
                    offset,
                    by: self.who.clone(),
                    at_ms: done.at_ms,
                    edited: p.edited,
                    key: p.key.clone(),
                    transform: p.transform.clone(),
                });
                done.edited_value = None;
                done
            }
            None => {
                let state = if mine.edited_value.is_some() {
                    EntryState::Edited
                } else {
                    EntryState::New
                };
                self.next(&id, state, Some(&mine))
            }
        };
        let confirmed = next.state == EntryState::Replayed;
        self.ledger.write(vec![next]).await?;
        let action = if confirmed {
            "replay-confirmed"
        } else {
            "replay-cleared"
        };
        self.audit(action, &id).await.map_err(WriteError::Audit)
    }
}
