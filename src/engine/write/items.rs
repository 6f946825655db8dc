//! The claim entry and outgoing message of each letter of a replay: a fresh claim of
//! a letter nobody holds, or a takeover of a claim left `replaying` (same replay id,
//! same target, same start for a transform), each planned under the writer's policy.

use super::transformed::{Compiled, transformed};
use super::{
    Item, NotDone, Outgoing, ReplayTarget, Writer, id_of, new_id, stored_edit, target_not_done,
};
use crate::engine::model::encoding::EncodedBytes;
use crate::engine::model::error::EngineError;
use crate::engine::model::ledger::{EntryState, LedgerEntry, PendingReplay, source_key};
use crate::engine::model::letter::DeadLetter;
use crate::engine::transform::Jq;
use crate::engine::write::plan::plan;
use crate::engine::write::verdict::Reason;

impl Writer {
    /// The claim entry and message for a letter nobody holds.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fresh_item(
        &self,
        l: &DeadLetter,
        prev: Option<&LedgerEntry>,
        target: Option<&str>,
        force: bool,
        t: &dyn ReplayTarget,
        token: &str,
        jq: Option<&Jq>,
    ) -> Result<Item, NotDone> {
        let id = id_of(l);
        let edited = stored_edit(prev);
        let forbidden = |e: EngineError| NotDone::new(Reason::Forbidden, e.to_string());
        let p = match jq {
            None => plan(l, target, edited, &self.policy, new_id(), true).map_err(forbidden)?,
            Some(jq) => {
                let made = transformed(jq, l, edited.as_deref(), &self.decoders)?;
                let mut p =
                    plan(&made, target, None, &self.policy, new_id(), true).map_err(forbidden)?;
                // Where it started: a takeover starts from the same place.
                p.edited = edited.is_some();
                p
            }
        };
        let (partition, from_offset) = t
            .place(&p.topic, p.key.as_deref(), l.source.partition)
            .await
            .map_err(|e| target_not_done(&e))?;
        let mut entry = self.next(&id, EntryState::Replaying, prev);
        entry.source = source_key(l);
        entry.force = force;
        entry.pending = Some(PendingReplay {
            replay_id: p.replay_id.clone(),
            topic: p.topic.clone(),
            partition,
            from_offset,
            edited: p.edited,
            key: p.key.as_deref().map(EncodedBytes::of),
            txn: token.to_string(),
            earlier: Vec::new(),
            transform: jq.map(|j| j.spec().to_ledger()),
        });
        Ok(Item {
            id,
            entry,
            out: Outgoing { plan: p, partition },
            takes_over: false,
            unsendable: None,
        })
    }

    /// The takeover entry and message for a letter left `replaying`: the same replay id
    /// and target, claimed under this run's token.
    pub(super) fn takeover_item(
        &self,
        l: &DeadLetter,
        e: &LedgerEntry,
        token: &str,
        compiled: &mut Compiled<'_>,
    ) -> Result<Item, NotDone> {
        let id = id_of(l);
        let mut p = e.pending.clone().ok_or_else(|| {
            NotDone::new(
                Reason::Forbidden,
                format!("{id} is replaying but its entry names no target"),
            )
        })?;
        let value = if p.edited { stored_edit(Some(e)) } else { None };
        let old = std::mem::replace(&mut p.txn, token.to_string());
        p.earlier.push(old);
        let mut entry = self.next(&id, EntryState::Replaying, Some(e));
        entry.pending = Some(p.clone());
        entry.force = e.force;
        let forbidden = |e: EngineError| NotDone::new(Reason::Forbidden, e.to_string());
        let rid = p.replay_id.clone();
        // The kept transform, made again from the same start. When it cannot be (its
        // schema unreachable now), the claim is still taken over, so the message is
        // looked for (sent already: confirmed); not found, it stays `replaying` with its
        // expression for the next run, never sent otherwise.
        let made = p.transform.as_ref().map(|text| {
            let jq = compiled
                .kept(text)
                .map_err(|why| NotDone::new(Reason::TransformFailed, why))?;
            transformed(&jq, l, value.as_deref(), &self.decoders)
        });
        let (out, unsendable) = match made {
            None => (
                plan(l, Some(&p.topic), value, &self.policy, rid, true).map_err(forbidden)?,
                None,
            ),
            Some(Ok(made)) => {
                let mut out = plan(&made, Some(&p.topic), None, &self.policy, rid, true)
                    .map_err(forbidden)?;
                out.edited = p.edited;
                (out, None)
            }
            Some(Err(why)) => (
                plan(l, Some(&p.topic), value, &self.policy, rid, true).map_err(forbidden)?,
                Some(why),
            ),
        };
        Ok(Item {
            id,
            entry,
            out: Outgoing {
                plan: out,
                partition: p.partition,
            },
            takes_over: true,
            unsendable,
        })
    }
}
