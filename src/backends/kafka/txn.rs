//! A transactional producer under one `transactional.id` (a replay claim's, an
//! import's). Initialising it fences every other holder of the id (KIP-98): the broker
//! aborts their open transaction and rejects their later commits. That fencing is what
//! a replay's "provably not sent" rests on. A fatal error (fenced, broken) drops the
//! producer; the next use initialises a new one.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::{Mutex, MutexGuard};

use super::{KafkaConfig, Producer, Quiet};
use crate::engine::Headers;
use crate::engine::write::TargetError;

/// How long a transaction may stay open on the broker before it aborts it.
const TXN_TIMEOUT_MS: &str = "60000";
/// How long init, commit and abort may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One record to produce inside a transaction.
pub struct TxnRecord<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Key bytes.
    pub key: Option<&'a [u8]>,
    /// Value bytes.
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: Option<&'a Headers>,
}

/// The producer slot: the producer, once initialised.
#[derive(Default)]
pub struct Slot {
    producer: Option<Producer>,
}

/// A `transactional.id` on one cluster.
pub struct Txn {
    cfg: KafkaConfig,
    id: String,
    slot: Mutex<Slot>,
}

impl Txn {
    /// A producer for `transactional_id` on `cfg`; nothing is contacted yet.
    pub fn new(cfg: KafkaConfig, transactional_id: String) -> Self {
        Txn {
            cfg,
            id: transactional_id,
            slot: Mutex::new(Slot::default()),
        }
    }

    /// Exclusive use of the slot (one transaction at a time per session).
    pub async fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().await
    }

    /// Makes sure the slot holds an initialised producer (initialising one fences every
    /// earlier holder of the id).
    pub async fn ensure(&self, slot: &mut Slot) -> Result<(), TargetError> {
        if slot.producer.is_some() {
            return Ok(());
        }
        let producer: Producer = self
            .cfg
            .client_config(&[
                ("transactional.id", self.id.as_str()),
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("transaction.timeout.ms", TXN_TIMEOUT_MS),
                ("message.timeout.ms", "30000"),
            ])
            .create_with_context(Quiet)
            .map_err(|e| TargetError::Refused(format!("bad Kafka property: {e}")))?;
        let p = producer.clone();
        let brokers = self.cfg.brokers.clone();
        let id = self.id.clone();
        tokio::task::spawn_blocking(move || {
            // Connected first: a coordinator asked for before any broker connection is
            // up is asked again only after librdkafka's retry interval (~0.5 s).
            // Only a warm-up: an unreachable cluster fails init_transactions just below, which is reported.
            let _ = p.client().fetch_metadata(None, CALL_TIMEOUT);
            p.init_transactions(CALL_TIMEOUT)
        })
        .await
        .map_err(|e| TargetError::NotSent(format!("background task failed: {e}")))?
        .map_err(|e| {
            TargetError::NotSent(format!(
                "cannot start transactions as '{id}' on {brokers}: {e}"
            ))
        })?;
        slot.producer = Some(producer);
        Ok(())
    }

    /// Drops the producer so the next [`Txn::ensure`] initialises a new one (fencing the others).
    pub fn reset(slot: &mut Slot) {
        slot.producer = None;
    }

    /// Produces `records` in one transaction and commits it; their offsets. On a
    /// failure the transaction is aborted (`NotSent`) or, when that is not certain,
    /// the producer is dropped and the outcome is `Unknown`.
    pub async fn run(
        &self,
        slot: &mut Slot,
        records: &[TxnRecord<'_>],
    ) -> Result<Vec<i64>, TargetError> {
        let p = self.begin(slot)?;
        let t0 = std::time::Instant::now();
        let produced = self.produce(&p, records).await;
        tracing::debug!(
            "'{}': {} produced in {:?}",
            self.id,
            records.len(),
            t0.elapsed()
        );
        match produced {
            Ok(offsets) => {
                crate::engine::write::fault::pause("produced").await;
                self.commit(slot, p).await?;
                Ok(offsets)
            }
            Err(e) => Err(self.abort(slot, p, e).await),
        }
    }

    /// Begins a transaction on the slot's producer; the producer, for [`Txn::produce`]
    /// and [`Txn::commit`] (or [`Txn::abort`] with the reason).
    pub fn begin(&self, slot: &mut Slot) -> Result<Producer, TargetError> {
        let Some(p) = slot.producer.clone() else {
            return Err(TargetError::NotSent("no initialised producer".into()));
        };
        if let Err(e) = p.begin_transaction() {
            Self::reset(slot);
            return Err(TargetError::NotSent(
                self.says("beginning a transaction", &e),
            ));
        }
        Ok(p)
    }

    /// Produces `records` inside the open transaction, all in flight at once; their
    /// offsets once every one is acknowledged, or why one was not: `Refused` when the
    /// broker will never take it (too large, not authorised, no such topic), else
    /// `NotSent`. Either way the caller aborts the transaction.
    pub async fn produce(
        &self,
        p: &Producer,
        records: &[TxnRecord<'_>],
    ) -> Result<Vec<i64>, TargetError> {
        let mut futures = Vec::with_capacity(records.len());
        let mut failed = None;
        let mut refused = false;
        for r in records {
            let mut rec: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(r.topic).partition(r.partition);
            if let Some(k) = r.key {
                rec = rec.key(k);
            }
            if let Some(v) = r.value {
                rec = rec.payload(v);
            }
            if let Some(hs) = r.headers {
                let mut headers = OwnedHeaders::new_with_capacity(hs.len());
                for h in hs.iter() {
                    headers = headers.insert(KHeader {
                        key: &h.name,
                        value: h.value.as_deref(),
                    });
                }
                rec = rec.headers(headers);
            }
            match send_waiting(p, rec).await {
                Ok(f) => futures.push((r.topic, f)),
                Err(e) => {
                    refused |= never_taken(&e);
                    failed = Some(self.says(&format!("producing to '{}'", r.topic), &e));
                    break;
                }
            }
        }
        let mut offsets = Vec::with_capacity(futures.len());
        for (topic, f) in futures {
            match f.await {
                Ok(Ok(d)) => offsets.push(d.offset),
                Ok(Err((e, _))) => {
                    refused |= never_taken(&e);
                    failed.get_or_insert_with(|| self.says(&format!("producing to '{topic}'"), &e));
                }
                Err(_) => {
                    failed.get_or_insert_with(|| "the producer went away".to_string());
                }
            }
        }
        let Some(why) = failed else {
            return Ok(offsets);
        };
        // A fenced producer's messages fail as "purged": say why they were.
        let why = match p.client().fatal_error() {
            Some((code, reason)) => format!(
                "producing as '{}' on {}: {reason} ({code:?})",
                self.id, self.cfg.brokers
            ),
            None => why,
        };
        Err(if refused {
            TargetError::Refused(why)
        } else {
            TargetError::NotSent(why)
        })
    }

    /// Commits the open transaction. `NotSent` when the broker aborted it (fenced by
    /// another session), `Unknown` when the outcome is not known (the producer is dropped).
    pub async fn commit(&self, slot: &mut Slot, p: Producer) -> Result<(), TargetError> {
        let mut tries = 0;
        loop {
            let c = p.clone();
            let res = tokio::task::spawn_blocking(move || c.commit_transaction(CALL_TIMEOUT))
                .await
                .map_err(|e| TargetError::Unknown(format!("background task failed: {e}")))?;
            match res {
                Ok(()) => return Ok(()),
                Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                    let why = TargetError::NotSent(format!("committing: {e}"));
                    return Err(self.abort(slot, p, why).await);
                }
                Err(KafkaError::Transaction(e)) if e.is_retriable() && tries < 3 => tries += 1,
                Err(e) if fenced(&e) => {
                    // Someone initialised this id since: the broker aborted the
                    // transaction before it let them in, so nothing was committed.
                    Self::reset(slot);
                    return Err(TargetError::NotSent(self.says("committing", &e)));
                }
                Err(e) => {
                    Self::reset(slot);
                    return Err(TargetError::Unknown(self.says("committing", &e)));
                }
            }
        }
    }

    /// Aborts the open transaction (dropping the producer if that fails); `why`, which
    /// holds either way: an aborted transaction never commits.
    pub async fn abort(&self, slot: &mut Slot, p: Producer, why: TargetError) -> TargetError {
        let res = tokio::task::spawn_blocking(move || p.abort_transaction(CALL_TIMEOUT)).await;
        if !matches!(res, Ok(Ok(()))) {
            // An abort that fails leaves the transaction to the broker's timeout or to the
            // next holder's fencing; either way it never commits.
            Self::reset(slot);
        }
        why
    }

    fn says(&self, what: &str, e: &KafkaError) -> String {
        format!("{what} as '{}' on {}: {e}", self.id, self.cfg.brokers)
    }
}

/// Whether `e` says another producer initialised the same transactional id.
fn fenced(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(C::Fenced | C::ProducerFenced | C::InvalidProducerEpoch)
    )
}

/// Whether the broker will never take a record that failed with `e`.
pub(super) fn never_taken(e: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::UnknownPartition
        )
    )
}

/// Queues `rec`, waiting for room when the producer's queue is full (a large window
/// produces faster than the broker acknowledges).
async fn send_waiting<'a>(
    p: &Producer,
    mut rec: FutureRecord<'a, [u8], [u8]>,
) -> Result<rdkafka::producer::DeliveryFuture, KafkaError> {
    loop {
        match p.send_result(rec) {
            Ok(f) => return Ok(f),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}
