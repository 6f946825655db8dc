//! The send and confirm half of a replay: deliver claimed letters (fencing old holders
//! and looking their messages up first when taking over, reading the ledger again once
//! the claim's sender is initialised), then record them as replayed and audit them,
//! a window at a time.

use std::collections::BTreeSet;

use super::{
    Conflict, EntryState, Item, LedgerEntry, NotDone, Outgoing, PendingReplay, Reason,
    ReplayOutcome, ReplayRecord, ReplayTarget, TargetError, Writer, fail_items, settled,
    target_not_done,
};
use crate::engine::write::audit::{AuditRecord, now_rfc3339};
use crate::engine::write::fault;

impl Writer {
    /// Sends claimed items under the claim `token` (its sender `opened`, or why not) and
    /// confirms them. Items taken over from another holder first fence that holder's
    /// sender and look for its messages.
    pub(super) async fn deliver(
        &self,
        t: &dyn ReplayTarget,
        items: Vec<Item>,
        token: &str,
        opened: Result<(), TargetError>,
    ) -> Vec<(String, ReplayOutcome)> {
        let mut out = Vec::new();
        let mut sent: Vec<(Item, i64, bool)> = Vec::new();
        let (taken, mut items): (Vec<Item>, Vec<Item>) =
            items.into_iter().partition(|i| i.takes_over);
        if !taken.is_empty() {
            match self.recover(t, taken).await {
                Ok((found, rest)) => {
                    sent.extend(found);
                    for item in rest {
                        match item.unsendable.clone() {
                            // Not sent, and what to send cannot be made now: the claim
                            // stays, with its expression, for a run that can.
                            Some(why) => out.extend(fail_items(vec![item], &why)),
                            None => items.push(item),
                        }
                    }
                }
                Err((rest, why)) => out.extend(fail_items(rest, &why)),
            }
        }
        if items.is_empty() {
            t.close(token).await;
        } else {
            out.extend(self.send_claimed(t, items, token, opened, &mut sent).await);
        }
        fault::pause("sent").await;
        let t = std::time::Instant::now();
        let n = sent.len();
        out.extend(self.confirm(sent).await);
        tracing::debug!("{n} sent, confirmed in {:?}", t.elapsed());
        out
    }

    /// Fences the senders of the claims `taken` took over, then looks for their
    /// messages: found ones are sent already (`recovered`), the others still to send.
    /// On failure they stay `replaying` under this run's claim; the next run verifies.
    #[allow(clippy::type_complexity)]
    async fn recover(
        &self,
        t: &dyn ReplayTarget,
        taken: Vec<Item>,
    ) -> Result<(Vec<(Item, i64, bool)>, Vec<Item>), (Vec<Item>, NotDone)> {
        let old: BTreeSet<String> = taken
            .iter()
            .filter_map(|i| i.entry.pending.as_ref())
            .flat_map(|p| p.earlier.iter().cloned())
            .collect();
        for txn in old {
            if let Err(e) = t.fence(&txn).await {
                return Err((taken, target_not_done(&e)));
            }
        }
        let pending: Vec<PendingReplay> = taken
            .iter()
            .filter_map(|i| i.entry.pending.clone())
            .collect();
        let found = match t.find(&pending).await {
            Ok(f) => f,
            Err(e) => return Err((taken, target_not_done(&e))),
        };
        let (mut sent, mut rest) = (Vec::new(), Vec::new());
        for (item, f) in taken.into_iter().zip(found) {
            match f {
                Some(offset) => sent.push((item, offset, true)),
                None => rest.push(item),
            }
        }
        Ok((sent, rest))
    }

    /// With the claim's sender opened, keeps what is still this run's and sends it in
    /// one transaction; sent items go to `sent`, the others are reported.
    async fn send_claimed(
        &self,
        t: &dyn ReplayTarget,
        items: Vec<Item>,
        token: &str,
        opened: Result<(), TargetError>,
        sent: &mut Vec<(Item, i64, bool)>,
    ) -> Vec<(String, ReplayOutcome)> {
        let mut out = Vec::new();
        let t0 = std::time::Instant::now();
        if let Err(e) = opened {
            out.extend(self.clear(items, &target_not_done(&e)).await);
            return out;
        }
        // Anyone who took a letter over before the sender was opened is seen now; anyone
        // after it has fenced the sender.
        let items = match self.still_ours(items, &mut out).await {
            Ok(rest) => rest,
            Err((rest, e)) => {
                t.close(token).await;
                let why = NotDone::new(Reason::Unreachable, e);
                out.extend(self.clear(rest, &why).await);
                return out;
            }
        };
        if items.is_empty() {
            t.close(token).await;
            return out;
        }
        tracing::debug!("sender opened and claims read again in {:?}", t0.elapsed());
        fault::pause("opened").await;
        let msgs: Vec<Outgoing> = items.iter().map(|i| i.out.clone()).collect();
        let ts = std::time::Instant::now();
        let res = t.send(token, &msgs).await;
        tracing::debug!("{} messages sent in {:?}", msgs.len(), ts.elapsed());
        drop(msgs);
        match res {
            Ok(offsets) => sent.extend(items.into_iter().zip(offsets).map(|(i, o)| (i, o, false))),
            Err(e @ (TargetError::NotSent(_) | TargetError::Refused(_))) => {
                // Nothing was sent. Letters taken over meanwhile were fenced away.
                let mut taken = Vec::new();
                let rest = match self.still_ours(items, &mut taken).await {
                    Ok(rest) => rest,
                    Err((rest, _)) => rest,
                };
                out.extend(taken);
                out.extend(self.clear(rest, &target_not_done(&e)).await);
            }
            Err(e @ TargetError::Unknown(_)) => {
                // Perhaps sent: left `replaying`, the next run looks for it.
                let why = NotDone::new(
                    Reason::Unreachable,
                    format!("{e}; the next replay looks for it before sending"),
                );
                out.extend(fail_items(items, &why));
            }
        }
        out
    }

    /// Keeps the items whose ledger entry is still the one this session wrote; the
    /// others are reported (taken over, or confirmed by whoever took them over).
    async fn still_ours(
        &self,
        items: Vec<Item>,
        out: &mut Vec<(String, ReplayOutcome)>,
    ) -> Result<Vec<Item>, (Vec<Item>, String)> {
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        let state = match self.ledger.current(&ids, &[]).await {
            Ok(s) => s,
            Err(e) => return Err((items, e.to_string())),
        };
        let mut rest = Vec::new();
        for item in items {
            match state.get(&item.id) {
                Some(e) if e.version == item.entry.version && e.session == item.entry.session => {
                    rest.push(item)
                }
                Some(e) => out.push((item.id.clone(), settled(&item, e))),
                None => out.push((
                    item.id.clone(),
                    ReplayOutcome::Failed(NotDone::new(
                        Reason::Changed,
                        format!("{}: its ledger entry is gone", item.id),
                    )),
                )),
            }
        }
        Ok(rest)
    }

    /// Clears the pending replay of items that were provably not sent.
    async fn clear(&self, items: Vec<Item>, why: &NotDone) -> Vec<(String, ReplayOutcome)> {
        let entries = items
            .iter()
            .map(|i| {
                let back = if i.entry.edited_value.is_some() {
                    EntryState::Edited
                } else {
                    EntryState::New
                };
                self.next(&i.id, back, Some(&i.entry))
            })
            .collect();
        // The items fail either way, but a failed clear leaves them pending in the ledger.
        if let Err(e) = self.ledger.write(entries).await {
            let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
            tracing::warn!(
                ?ids,
                "could not clear the pending replay of unsent letters: {e}"
            );
        }
        fail_items(items, why)
    }

    /// Records sent messages as replayed, then audits them.
    async fn confirm(&self, sent: Vec<(Item, i64, bool)>) -> Vec<(String, ReplayOutcome)> {
        if sent.is_empty() {
            return Vec::new();
        }
        let entries: Vec<LedgerEntry> = sent
            .iter()
            .map(|(item, offset, _)| self.confirmed(item, *offset))
            .collect();
        let results = self.ledger.write(entries).await;
        let recorded: Vec<Result<(), String>> = sent
            .iter()
            .enumerate()
            .map(|(i, (item, _, _))| match &results {
                Err(e) => Err(format!("the ledger could not record it: {e}")),
                Ok(r) => match r.get(i) {
                    Some(Ok(())) => Ok(()),
                    Some(Err(Conflict::Changed(cur)))
                        if cur
                            .history
                            .iter()
                            .any(|h| h.replay_id == item.out.plan.replay_id) =>
                    {
                        Ok(())
                    }
                    Some(Err(c)) => Err(format!(
                        "the ledger changed meanwhile: {}",
                        NotDone::lost(&item.id, c, true)
                    )),
                    None => Err("the ledger gave no answer".into()),
                },
            })
            .collect();
        self.audited(sent, recorded).await
    }

    /// Audits sent messages (one write and one sync for the whole window) and reports
    /// each as replayed, or sent-unconfirmed when it was not `recorded` or not audited.
    pub(super) async fn audited(
        &self,
        sent: Vec<(Item, i64, bool)>,
        recorded: Vec<Result<(), String>>,
    ) -> Vec<(String, ReplayOutcome)> {
        let (at, dlq) = (now_rfc3339(), self.ledger.dlq());
        let records: Vec<AuditRecord<'_>> = sent
            .iter()
            .zip(&recorded)
            .map(|((item, offset, _), r)| AuditRecord {
                at: at.clone(),
                by: &self.who,
                action: if r.is_ok() {
                    "replay"
                } else {
                    "replay-unconfirmed"
                },
                dlq: &dlq,
                id: &item.id,
                topic: Some(item.out.plan.topic.as_str()),
                partition: Some(item.out.partition),
                offset: Some(*offset),
                replay_id: Some(item.out.plan.replay_id.as_str()),
                edited: item.out.plan.edited,
                transform: item
                    .entry
                    .pending
                    .as_ref()
                    .and_then(|p| p.transform.as_deref()),
            })
            .collect();
        let audited = if records.is_empty() {
            Ok(())
        } else {
            self.audit.append_all(&records).await
        };
        drop(records);
        let mut out = Vec::with_capacity(sent.len());
        for ((item, offset, recovered), r) in sent.into_iter().zip(recorded) {
            let p = &item.out.plan;
            let unconfirmed = |why: String| ReplayOutcome::SentUnconfirmed {
                topic: p.topic.clone(),
                partition: item.out.partition,
                offset,
                replay_id: p.replay_id.clone(),
                why,
            };
            let outcome = match (r, &audited) {
                (Ok(()), Ok(())) => ReplayOutcome::Replayed {
                    topic: p.topic.clone(),
                    partition: item.out.partition,
                    offset,
                    replay_id: p.replay_id.clone(),
                    edited: p.edited,
                    recovered,
                },
                (Err(e), _) => unconfirmed(e),
                (Ok(()), Err(e)) => unconfirmed(format!(
                    "recorded in the ledger, but the audit log could not be written: {e}"
                )),
            };
            out.push((item.id.clone(), outcome));
        }
        out
    }

    fn confirmed(&self, item: &Item, offset: i64) -> LedgerEntry {
        let mut e = self.next(&item.id, EntryState::Replayed, Some(&item.entry));
        let p = &item.out.plan;
        e.history.push(ReplayRecord {
            replay_id: p.replay_id.clone(),
            topic: p.topic.clone(),
            partition: item.out.partition,
            offset,
            by: self.who.clone(),
            at_ms: e.at_ms,
            edited: p.edited,
            // The key the claim recorded: what was sent, also when a takeover found it.
            key: item
                .entry
                .pending
                .as_ref()
                .and_then(|p| p.key.clone())
                .or_else(|| {
                    p.key
                        .as_deref()
                        .map(crate::engine::model::encoding::EncodedBytes::of)
                }),
            transform: item
                .entry
                .pending
                .as_ref()
                .and_then(|p| p.transform.clone()),
        });
        e.edited_value = None;
        e
    }
}
