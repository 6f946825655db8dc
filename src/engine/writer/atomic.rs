//! Replay in one step: where the ledger and the target live on one Kafka cluster, the
//! messages and their `replayed` ledger entries commit in one transaction, so a letter
//! is either sent and recorded or neither. Nothing is announced and nothing is held:
//! a slow, stopped or killed session leaves no claim for others to wait on or take
//! over, and an interrupted transaction is invisible to everyone who reads committed.

use async_trait::async_trait;

use super::{
    Conflict, Item, LedgerEntry, NotDone, Outgoing, Reason, ReplayOutcome, TargetError, Writer,
    backoff, fail_items, target_not_done,
};
use crate::engine::fault;

/// How many transactions a window is tried in: more than a plain write, since two
/// sessions working at once fence each other's open transactions until one commits.
const ATTEMPTS: u32 = 20;

/// A ledger that sends replays and records them in one transaction.
#[async_trait]
pub trait AtomicReplay: Send + Sync {
    /// Checks each entry against the committed ledger as [`LedgerStore::write`] does,
    /// then, in one transaction, sends the message of every entry that passed and writes
    /// the entry, whose last history record is this send's (the backend sets its offset
    /// from the broker's acknowledgement). Per entry: the target offset, or the conflict.
    /// `NotSent`: nothing was committed; `Unknown`: the commit may have happened, which
    /// the next call's conflicts tell (the entry then holds this send's replay id).
    ///
    /// [`LedgerStore::write`]: crate::engine::ledger::LedgerStore::write
    async fn send_recorded(
        &self,
        batch: &[(LedgerEntry, Outgoing)],
    ) -> Result<Vec<Result<i64, Conflict>>, TargetError>;
}

impl Writer {
    /// Sends and records `items` in one transaction, trying again while the servers do
    /// not answer or another session's transaction fenced this one.
    pub(super) async fn deliver_atomic(
        &self,
        a: &dyn AtomicReplay,
        mut items: Vec<Item>,
    ) -> Vec<(String, ReplayOutcome)> {
        let mut out = Vec::new();
        if items.is_empty() {
            return out;
        }
        let mut tried = false;
        let mut last = NotDone::new(Reason::Unreachable, "no attempt was made");
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let batch: Vec<(LedgerEntry, Outgoing)> = items
                .iter()
                .map(|i| (i.entry.clone(), i.out.clone()))
                .collect();
            let t = std::time::Instant::now();
            let res = a.send_recorded(&batch).await;
            tracing::debug!("{} sent and recorded in {:?}", batch.len(), t.elapsed());
            drop(batch);
            match res {
                Ok(results) => {
                    let mut sent = Vec::new();
                    for (item, r) in items.drain(..).zip(results) {
                        match r {
                            Ok(offset) => sent.push((item, offset, false)),
                            Err(Conflict::Changed(cur)) => {
                                // An earlier attempt whose commit was reported unknown
                                // did commit: the entry holds this send's replay id.
                                let rid = &item.out.plan.replay_id;
                                match cur.history.iter().find(|h| &h.replay_id == rid) {
                                    Some(h) => {
                                        let offset = h.offset;
                                        sent.push((item, offset, false));
                                    }
                                    None => {
                                        let c = Conflict::Changed(cur);
                                        let why = NotDone::lost(&item.id, &c, tried);
                                        out.push((item.id, ReplayOutcome::Skipped(why)));
                                    }
                                }
                            }
                            Err(c) => {
                                let why = NotDone::lost(&item.id, &c, tried);
                                out.push((item.id, ReplayOutcome::Skipped(why)));
                            }
                        }
                    }
                    fault::pause("committed").await;
                    let recorded = sent.iter().map(|_| Ok(())).collect();
                    out.extend(self.audited(sent, recorded));
                    return out;
                }
                Err(e @ TargetError::Refused(_)) => {
                    out.extend(fail_items(items, &target_not_done(&e)));
                    return out;
                }
                Err(e) => {
                    tracing::debug!("replay transaction not committed: {e}");
                    tried = true;
                    last = target_not_done(&e);
                }
            }
        }
        out.extend(fail_items(items, &last));
        out
    }
}
