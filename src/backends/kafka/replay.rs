//! Replaying Kafka dead letters exactly once, with the shared ledger.
//!
//! Each replay is announced in the ledger (`replaying`, with the target partition
//! and its end offset) before the message is produced, and confirmed (`replayed`,
//! with the offset) after the broker acknowledges it. A run killed in between leaves
//! a `replaying` entry; the next run looks for the stamped `morgue-replay-id` in the
//! target partition from the announced offset and either confirms what it finds or
//! sends it then — so every letter is replayed once, however the run ends.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use thiserror::Error;

use super::partitioner::choose;
use super::{Browser, KafkaBackendError, KafkaConfig, METADATA_TIMEOUT, Producer};
use crate::engine::audit::{AuditLog, AuditRecord, now_rfc3339};
use crate::engine::conventions::MORGUE_REPLAY_ID;
use crate::engine::encoding::EncodedBytes;
use crate::engine::ledger::{
    EntryState, LedgerEntry, LedgerError, LedgerState, LedgerStore, PendingReplay,
};
use crate::engine::replay::{ReplayPlan, ReplayPolicy, plan};
use crate::engine::sink::whoami;
use crate::engine::{DeadLetter, EngineError, ReplayRecord};

/// Why a replay or resolve did not happen.
#[derive(Debug, Error)]
pub enum ReplayError {
    /// The engine refused it (read-only, forbidden target, already replayed…).
    #[error(transparent)]
    Refused(#[from] EngineError),
    /// The broker failed or the target topic does not exist.
    #[error(transparent)]
    Kafka(#[from] KafkaBackendError),
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The local audit log could not be written (the write itself is done and in the ledger).
    #[error("{0}")]
    Audit(String),
}

/// What a completed replay did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replayed {
    /// What was sent.
    pub plan: ReplayPlan,
    /// Target partition.
    pub partition: i32,
    /// Target offset.
    pub offset: i64,
    /// True when an interrupted earlier run had already sent it and this run only confirmed it.
    pub recovered: bool,
}

/// Replays letters of one DLQ (a Kafka topic or a MongoDB collection) to a Kafka
/// cluster, and resolves them, recording both in the DLQ's ledger.
pub struct KafkaReplayer {
    cfg: KafkaConfig,
    policy: ReplayPolicy,
    producer: Producer,
    browse: Browser,
    store: std::sync::Arc<dyn LedgerStore>,
    ledger: LedgerState,
    audit: AuditLog,
    who: String,
}

impl KafkaReplayer {
    /// A replayer that sends to the cluster `cfg` and keeps state in `store` (loaded now).
    pub async fn open(
        cfg: KafkaConfig,
        policy: ReplayPolicy,
        audit: AuditLog,
        store: std::sync::Arc<dyn LedgerStore>,
    ) -> Result<Self, ReplayError> {
        let ledger = store.load().await?;
        Ok(KafkaReplayer {
            browse: cfg.browse_consumer()?,
            producer: cfg.producer()?,
            cfg,
            policy,
            store,
            ledger,
            audit,
            who: whoami(),
        })
    }

    /// The ledger as loaded (and updated by this replayer's own writes).
    pub fn ledger(&self) -> &LedgerState {
        &self.ledger
    }

    /// The DLQ, as `kafka://brokers/topic` or `mongodb://host/db.collection`.
    pub fn dlq(&self) -> String {
        self.store.dlq()
    }

    /// Plans a replay without sending anything (for `--dry-run` and confirm dialogs).
    pub fn plan(
        &self,
        letter: &DeadLetter,
        target: Option<&str>,
        edited: Option<Vec<u8>>,
        force: bool,
    ) -> Result<ReplayPlan, ReplayError> {
        let mut l = letter.clone();
        self.ledger.apply(&mut l);
        let key = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
        let edited = edited.or_else(|| stored_edit(self.ledger.get(&key)));
        let id = new_replay_id();
        Ok(plan(&l, target, edited, &self.policy, id, force)?)
    }

    /// The edited value kept with `letter`, if any.
    pub fn edited_value(&self, letter: &DeadLetter) -> Option<Vec<u8>> {
        let key = letter
            .id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        stored_edit(self.ledger.get(&key))
    }

    /// Keeps an edited value with `letter` (state `edited`) until it is replayed or discarded.
    pub async fn save_edit(
        &mut self,
        letter: &DeadLetter,
        value: Vec<u8>,
    ) -> Result<(), ReplayError> {
        let id = letter
            .id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        self.policy.check_writable(&format!("edit of {id}"))?;
        let prev = self.ledger.get(&id).cloned();
        let mut e = self.entry(&id, EntryState::Edited, prev.as_ref());
        e.edited_value = Some(EncodedBytes::of(&value));
        self.record(e).await?;
        self.audit("edit", &id, None)
    }

    /// Drops the edited value kept with `letter`; its state goes back to what it was.
    pub async fn discard_edit(&mut self, letter: &DeadLetter) -> Result<(), ReplayError> {
        let id = letter
            .id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        self.policy
            .check_writable(&format!("discarding the edit of {id}"))?;
        let prev = self.ledger.get(&id).cloned();
        let mut e = self.entry(&id, EntryState::New, prev.as_ref());
        e.edited_value = None;
        self.record(e).await?;
        self.audit("discard-edit", &id, None)
    }

    /// Replays `letter` to `target` (default: its source topic), exactly once.
    pub async fn replay(
        &mut self,
        letter: &DeadLetter,
        target: Option<&str>,
        edited: Option<Vec<u8>>,
        force: bool,
    ) -> Result<Replayed, ReplayError> {
        let mut l = letter.clone();
        self.ledger.apply(&mut l);
        let id = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
        let entry = self.ledger.get(&id).cloned();
        let pending = entry
            .as_ref()
            .filter(|e| e.state == EntryState::Replaying)
            .and_then(|e| e.pending.clone());
        if let Some(p) = &pending {
            let cfg = self.cfg.clone();
            let p2 = p.clone();
            let found = tokio::task::spawn_blocking(move || {
                cfg.find_by_header(
                    &p2.topic,
                    p2.partition,
                    p2.from_offset,
                    MORGUE_REPLAY_ID,
                    p2.replay_id.as_bytes(),
                )
            })
            .await
            .map_err(|e| KafkaBackendError::Task(e.to_string()))??;
            if let Some(offset) = found {
                let replay_id = p.replay_id.clone();
                let plan = plan(&l, Some(&p.topic), edited, &self.policy, replay_id, true)?;
                self.confirm(&id, entry, p, offset).await?;
                return Ok(Replayed {
                    plan,
                    partition: p.partition,
                    offset,
                    recovered: true,
                });
            }
        }
        // An interrupted replay that never reached the target is sent now, under the same id.
        let (replay_id, force, target) = match &pending {
            Some(p) => (p.replay_id.clone(), true, Some(p.topic.as_str())),
            None => (new_replay_id(), force, target),
        };
        let edited = edited.or_else(|| stored_edit(entry.as_ref()));
        let plan = plan(&l, target, edited, &self.policy, replay_id, force)?;
        let partitions = self.cfg.partitions(&self.browse, &plan.topic)?;
        let n = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        let partition = choose(plan.key.as_deref(), n, l.source.partition);
        let (_, from_offset) = self
            .browse
            .fetch_watermarks(&plan.topic, partition, METADATA_TIMEOUT)
            .map_err(|e| {
                self.cfg.error(
                    format!("watermarks of '{}' partition {partition}", plan.topic),
                    e,
                )
            })?;
        let pending = PendingReplay {
            replay_id: plan.replay_id.clone(),
            topic: plan.topic.clone(),
            partition,
            from_offset,
            edited: plan.edited,
        };
        let mut announce = self.entry(&id, EntryState::Replaying, entry.as_ref());
        announce.pending = Some(pending.clone());
        self.record(announce).await?;
        let offset = self.send(&plan, partition).await?;
        self.confirm(&id, entry, &pending, offset).await?;
        Ok(Replayed {
            plan,
            partition,
            offset,
            recovered: false,
        })
    }

    /// Marks `letter` handled without replaying it.
    pub async fn resolve(&mut self, letter: &DeadLetter) -> Result<(), ReplayError> {
        let id = letter
            .id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        self.policy.check_writable(&format!("resolve of {id}"))?;
        let prev = self.ledger.get(&id).cloned();
        let e = self.entry(&id, EntryState::Resolved, prev.as_ref());
        self.record(e).await?;
        self.audit("resolve", &id, None)
    }

    async fn confirm(
        &mut self,
        id: &str,
        prev: Option<LedgerEntry>,
        p: &PendingReplay,
        offset: i64,
    ) -> Result<(), ReplayError> {
        let mut done = self.entry(id, EntryState::Replayed, prev.as_ref());
        let at_ms = done.at_ms;
        done.history.push(ReplayRecord {
            replay_id: p.replay_id.clone(),
            topic: p.topic.clone(),
            partition: p.partition,
            offset,
            by: self.who.clone(),
            at_ms,
            edited: p.edited,
        });
        done.edited_value = None;
        self.record(done).await?;
        self.audit("replay", id, Some((p, offset)))
    }

    fn entry(&self, id: &str, state: EntryState, prev: Option<&LedgerEntry>) -> LedgerEntry {
        LedgerEntry {
            id: id.to_string(),
            state,
            by: self.who.clone(),
            at_ms: chrono::Utc::now().timestamp_millis(),
            pending: None,
            history: prev.map(|p| p.history.clone()).unwrap_or_default(),
            edited_value: prev.and_then(|p| p.edited_value.clone()),
        }
    }

    /// Writes `entry` to the ledger and waits for the server's ack.
    async fn record(&mut self, entry: LedgerEntry) -> Result<(), ReplayError> {
        self.policy
            .check_writable(&format!("ledger write for {}", entry.id))?;
        self.store.record(&entry).await?;
        self.ledger.insert(entry);
        Ok(())
    }

    async fn send(&self, plan: &ReplayPlan, partition: i32) -> Result<i64, ReplayError> {
        let mut headers = OwnedHeaders::new_with_capacity(plan.headers.len());
        for h in plan.headers.iter() {
            headers = headers.insert(KHeader {
                key: &h.name,
                value: h.value.as_deref(),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&plan.topic)
            .partition(partition)
            .headers(headers);
        if let Some(k) = &plan.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &plan.value {
            record = record.payload(v.as_slice());
        }
        let d = self
            .producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| self.cfg.error(format!("replaying to '{}'", plan.topic), e))?;
        Ok(d.offset)
    }

    fn audit(
        &self,
        action: &str,
        id: &str,
        target: Option<(&PendingReplay, i64)>,
    ) -> Result<(), ReplayError> {
        let dlq = self.store.dlq();
        self.audit
            .append(&AuditRecord {
                at: now_rfc3339(),
                by: &self.who,
                action,
                dlq: &dlq,
                id,
                topic: target.map(|(p, _)| p.topic.as_str()),
                partition: target.map(|(p, _)| p.partition),
                offset: target.map(|(_, o)| o),
                replay_id: target.map(|(p, _)| p.replay_id.as_str()),
                edited: target.is_some_and(|(p, _)| p.edited),
            })
            .map_err(ReplayError::Audit)
    }
}

fn new_replay_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn stored_edit(entry: Option<&LedgerEntry>) -> Option<Vec<u8>> {
    entry
        .and_then(|e| e.edited_value.as_ref())
        .and_then(|v: &EncodedBytes| v.to_bytes().ok())
}
