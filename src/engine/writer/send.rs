//! The send and confirm half of a replay: deliver announced letters (fencing and
//! looking up first when taking over, re-checking the ledger after every
//! re-initialisation), then record them as replayed and audit them, a window at a time.

use super::{
    ATTEMPTS, Conflict, EntryState, Item, LedgerEntry, NotDone, Outgoing, PendingReplay, Reason,
    ReplayOutcome, ReplayRecord, ReplayTarget, TargetError, Writer, backoff, fail_items, settled,
    target_not_done,
};
use crate::engine::audit::{AuditRecord, now_rfc3339};
use crate::engine::fault;

impl Writer {
    /// Sends announced items and confirms them. `announced_at`: the producer epoch
    /// before the announce; None for takeovers, which fence and search first.
    pub(super) async fn deliver(
        &self,
        t: &dyn ReplayTarget,
        mut items: Vec<Item>,
        announced_at: Option<u64>,
    ) -> Vec<(String, ReplayOutcome)> {
        let mut out = Vec::new();
        let mut sent: Vec<(Item, i64, bool)> = Vec::new();
        if items.is_empty() {
            return out;
        }
        let (mut checked, mut search) = (announced_at, false);
        if announced_at.is_none() {
            match t.fence().await {
                Ok(e) => (checked, search) = (Some(e), true),
                Err(e) => return fail_items(items, &target_not_done(&e)),
            }
        }
        let mut last = NotDone::new(Reason::Unreachable, "no attempt was made");
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let epoch = match t.epoch().await {
                Ok(e) => e,
                Err(e) => {
                    last = target_not_done(&e);
                    continue;
                }
            };
            if checked != Some(epoch) {
                // Re-initialised since the claim: send only what is still ours.
                match self.still_ours(items, &mut out).await {
                    Ok(rest) => items = rest,
                    Err((rest, e)) => {
                        items = rest;
                        last = NotDone::new(Reason::Unreachable, e);
                        continue;
                    }
                }
                checked = Some(epoch);
                search = true;
            }
            if search && !items.is_empty() {
                let pending: Vec<PendingReplay> = items
                    .iter()
                    .filter_map(|i| i.entry.pending.clone())
                    .collect();
                match t.find(&pending).await {
                    Ok(found) => {
                        let mut rest = Vec::new();
                        for (item, f) in items.into_iter().zip(found) {
                            match f {
                                Some(offset) => sent.push((item, offset, true)),
                                None => rest.push(item),
                            }
                        }
                        items = rest;
                        search = false;
                    }
                    Err(e) => {
                        last = target_not_done(&e);
                        continue;
                    }
                }
            }
            if items.is_empty() {
                break;
            }
            let msgs: Vec<Outgoing> = items.iter().map(|i| i.out.clone()).collect();
            let ts = std::time::Instant::now();
            let res = t.send(epoch, &msgs).await;
            tracing::debug!("{} messages sent in {:?}", msgs.len(), ts.elapsed());
            match res {
                Ok(offsets) => {
                    sent.extend(items.drain(..).zip(offsets).map(|(i, o)| (i, o, false)));
                    break;
                }
                Err(e @ TargetError::NotSent(_)) => last = target_not_done(&e),
                Err(e @ TargetError::Unknown(_)) => {
                    last = target_not_done(&e);
                    search = true;
                }
                Err(e @ TargetError::Refused(_)) => {
                    out.extend(self.clear(items, &target_not_done(&e)).await);
                    items = Vec::new();
                    break;
                }
            }
        }
        out.extend(fail_items(items, &last));
        fault::pause("sent").await;
        let t = std::time::Instant::now();
        let n = sent.len();
        out.extend(self.confirm(sent).await);
        tracing::debug!("{n} sent, confirmed in {:?}", t.elapsed());
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
                Some(e) if e.version == item.entry.version => rest.push(item),
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
            .map(|i| self.next(&i.id, EntryState::New, Some(&i.entry)))
            .collect();
        let _ = self.ledger.write(entries).await;
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
        self.audited(sent, recorded)
    }

    /// Audits sent messages (one write and one sync for the whole window) and reports
    /// each as replayed, or sent-unconfirmed when it was not `recorded` or not audited.
    pub(super) fn audited(
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
            })
            .collect();
        let audited = if records.is_empty() {
            Ok(())
        } else {
            self.audit.append_all(&records)
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
            key: p
                .key
                .as_deref()
                .map(crate::engine::encoding::EncodedBytes::of),
        });
        e.edited_value = None;
        e
    }
}
