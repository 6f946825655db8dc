//! Replaying Kafka dead letters exactly once, with the shared ledger.
//!
//! Each replay is announced in the ledger (`replaying`, with the target partition
//! and its end offset) before the message is produced, and confirmed (`replayed`,
//! with the offset) after the broker acknowledges it. A run killed in between leaves
//! a `replaying` entry; the next run looks for the stamped `morgue-replay-id` in the
//! target partition from the announced offset and either confirms what it finds or
//! sends it then — so every letter is replayed once, however the run ends.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use thiserror::Error;

use super::partitioner::choose;
use super::{Browser, KafkaBackendError, KafkaConfig, METADATA_TIMEOUT, Producer, Quiet};
use crate::engine::audit::{AuditLog, AuditRecord, now_rfc3339};
use crate::engine::conventions::MORGUE_REPLAY_ID;
use crate::engine::encoding::EncodedBytes;
use crate::engine::ledger::{EntryState, LEDGER_SUFFIX, LedgerEntry, LedgerState, PendingReplay};
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
    /// The ledger holds something that is not a ledger entry.
    #[error("ledger '{topic}' entry for {id} is unreadable: {why}")]
    BadLedger {
        /// Ledger topic.
        topic: String,
        /// Letter id.
        id: String,
        /// The parse error.
        why: String,
    },
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

/// Replays and resolves letters of one Kafka DLQ topic.
pub struct KafkaReplayer {
    cfg: KafkaConfig,
    dlq: String,
    ledger_topic: String,
    policy: ReplayPolicy,
    producer: Producer,
    browse: Browser,
    ledger: LedgerState,
    audit: AuditLog,
    who: String,
}

impl KafkaReplayer {
    /// Opens the DLQ `dlq` and loads its ledger (`<dlq>.morgue-ledger`, created
    /// compacted on first use unless the profile is read-only).
    pub async fn open(
        cfg: KafkaConfig,
        dlq: &str,
        policy: ReplayPolicy,
        audit: AuditLog,
    ) -> Result<Self, ReplayError> {
        let browse = cfg.browse_consumer()?;
        cfg.partitions(&browse, dlq)?;
        let ledger_topic = format!("{dlq}{LEDGER_SUFFIX}");
        let mut me = KafkaReplayer {
            producer: cfg.producer()?,
            cfg,
            dlq: dlq.to_string(),
            ledger_topic,
            policy,
            browse,
            ledger: LedgerState::default(),
            audit,
            who: whoami(),
        };
        me.ledger = load_ledger(&me.cfg, &me.ledger_topic).await?;
        Ok(me)
    }

    /// The ledger as loaded (and updated by this replayer's own writes).
    pub fn ledger(&self) -> &LedgerState {
        &self.ledger
    }

    /// The DLQ topic.
    pub fn dlq(&self) -> &str {
        &self.dlq
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
        let id = new_replay_id();
        Ok(plan(&l, target, edited, &self.policy, id, force)?)
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

    /// Writes `entry` to the ledger topic (creating it on first use) and waits for the ack.
    async fn record(&mut self, entry: LedgerEntry) -> Result<(), ReplayError> {
        self.policy
            .check_writable(&format!("ledger write for {}", entry.id))?;
        ensure_ledger_topic(&self.cfg, &self.browse, &self.ledger_topic).await?;
        let json = serde_json::to_vec(&entry).map_err(|e| ReplayError::Audit(e.to_string()))?;
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.ledger_topic)
            .key(entry.id.as_str())
            .payload(json.as_slice())
            .partition(0);
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| {
                self.cfg
                    .error(format!("writing ledger '{}'", self.ledger_topic), e)
            })?;
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
        let dlq = format!("kafka://{}/{}", self.cfg.brokers, self.dlq);
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

/// Reads the ledger topic into the latest entry per letter; a missing topic is an empty ledger.
pub async fn load_ledger(cfg: &KafkaConfig, topic: &str) -> Result<LedgerState, ReplayError> {
    let cfg = cfg.clone();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let mut state = LedgerState::default();
        let mut bad = None;
        let res = cfg.read_to_end(&topic, |l| {
            let Some(v) = l.value.as_deref() else { return };
            match serde_json::from_slice::<LedgerEntry>(v) {
                Ok(e) => state.insert(e),
                Err(e) => {
                    let id = l.id.map(|i| i.to_string()).unwrap_or_default();
                    bad.get_or_insert(ReplayError::BadLedger {
                        topic: topic.clone(),
                        id,
                        why: e.to_string(),
                    });
                }
            }
        });
        match res {
            Ok(_) => {}
            Err(KafkaBackendError::TopicNotFound { .. }) => return Ok(state),
            Err(e) => return Err(e.into()),
        }
        match bad {
            Some(e) => Err(e),
            None => Ok(state),
        }
    })
    .await
    .map_err(|e| KafkaBackendError::Task(e.to_string()))?
}

async fn ensure_ledger_topic(
    cfg: &KafkaConfig,
    browse: &Browser,
    topic: &str,
) -> Result<(), KafkaBackendError> {
    match cfg.partitions(browse, topic) {
        Ok(_) => return Ok(()),
        Err(KafkaBackendError::TopicNotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let admin: AdminClient<Quiet> = cfg
        .client_config(&[])
        .create_with_context(Quiet)
        .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))?;
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    let res = admin
        .create_topics(
            [&new],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .map_err(|e| cfg.error(format!("creating ledger topic '{topic}'"), e))?;
    for r in res {
        match r {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(cfg.error(
                    format!("creating ledger topic '{t}'"),
                    rdkafka::error::KafkaError::AdminOp(code),
                ));
            }
        }
    }
    Ok(())
}
