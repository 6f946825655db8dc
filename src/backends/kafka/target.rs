//! A Kafka cluster as a [`ReplayTarget`]: partitions chosen as the Java client would
//! (murmur2 of the key), each claim's messages sent in one transaction under the
//! claim's own `transactional.id` (`morgue-replay.<dlq>.<token>`; `morgue-replay.<dlq>`
//! for claims of older versions), and pending replays looked up by their
//! `morgue-replay-id` header among committed messages only.
//!
//! A transactional id is used for one transaction: a producer id whose transaction was
//! aborted is never written with again, so no reader ever has to read past an aborted
//! transaction of a producer that writes on (some Kafka-protocol brokers then hide that
//! producer's later batches from `read_committed` readers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::partitioner::choose;
use super::txn::{Txn, TxnRecord};
use super::{Browser, KafkaConfig};
use crate::engine::model::conventions::MORGUE_REPLAY_ID;
use crate::engine::model::ledger::PendingReplay;
use crate::engine::write::{Outgoing, ReplayTarget, TargetError};

/// How long a partition count or end offset is reused before it is asked again.
const CACHE_FOR: Duration = Duration::from_secs(5);

/// Runs `f` on a blocking thread with a copy of `cfg`.
async fn blocking<T: Send + 'static>(
    cfg: &KafkaConfig,
    f: impl FnOnce(KafkaConfig) -> Result<T, String> + Send + 'static,
) -> Result<T, TargetError> {
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || f(cfg))
        .await
        .map_err(|e| TargetError::NotSent(format!("background task failed: {e}")))?
        .map_err(TargetError::NotSent)
}

/// The session's metadata client, created on first use.
fn metadata_client<'a>(
    cfg: &KafkaConfig,
    slot: &'a std::sync::OnceLock<Browser>,
) -> Result<&'a Browser, String> {
    if let Some(c) = slot.get() {
        return Ok(c);
    }
    let c = cfg.browse_consumer().map_err(|e| e.to_string())?;
    Ok(slot.get_or_init(|| c))
}

/// Replays to one Kafka cluster on behalf of one DLQ.
pub struct KafkaTarget {
    cfg: KafkaConfig,
    dlq: String,
    /// The opened senders, by claim token.
    senders: tokio::sync::Mutex<HashMap<String, Txn>>,
    /// One metadata client for the session (partition counts, end offsets).
    meta: Arc<std::sync::OnceLock<Browser>>,
    partitions: Mutex<HashMap<String, (i32, Instant)>>,
    ends: Mutex<HashMap<(String, i32), (i64, Instant)>>,
}

impl KafkaTarget {
    /// A target on `cfg` for replays from the DLQ named `dlq` (a topic, or `mongo.<db>.<coll>`).
    pub fn new(cfg: KafkaConfig, dlq: &str) -> Self {
        KafkaTarget {
            dlq: dlq.to_string(),
            senders: tokio::sync::Mutex::new(HashMap::new()),
            meta: Arc::new(std::sync::OnceLock::new()),
            cfg,
            partitions: Mutex::new(HashMap::new()),
            ends: Mutex::new(HashMap::new()),
        }
    }

    async fn partition_count(&self, topic: &str) -> Result<i32, TargetError> {
        if let Some((n, at)) = self.cached_partitions(topic)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(n);
        }
        let t = topic.to_string();
        let t2 = t.clone();
        let meta = self.meta.clone();
        let parts = blocking(&self.cfg, move |cfg| {
            let c = metadata_client(&cfg, &meta)?;
            cfg.partitions(c, &t2).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| TargetError::Refused(e.to_string()))?;
        let n = i32::try_from(parts.len()).unwrap_or(i32::MAX);
        if let Ok(mut m) = self.partitions.lock() {
            m.insert(t, (n, Instant::now()));
        }
        Ok(n)
    }

    fn cached_partitions(&self, topic: &str) -> Option<(i32, Instant)> {
        self.partitions.lock().ok()?.get(topic).copied()
    }

    /// The transactional id of claim `token`.
    fn txn_id(&self, token: &str) -> String {
        if token.is_empty() {
            format!("morgue-replay.{}", self.dlq)
        } else {
            format!("morgue-replay.{}.{token}", self.dlq)
        }
    }

    /// A sender for claim `token`, initialised (fencing every other sender of it).
    async fn initialised(&self, token: &str) -> Result<Txn, TargetError> {
        let txn = Txn::new(self.cfg.clone(), self.txn_id(token));
        {
            let mut slot = txn.lock().await;
            txn.ensure(&mut slot).await?;
        }
        Ok(txn)
    }
}

/// Drops a sender off the runtime's threads (a client's teardown waits for its threads).
fn retire(txn: Txn) {
    std::thread::spawn(move || drop(txn));
}

#[async_trait]
impl ReplayTarget for KafkaTarget {
    async fn place(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        source_partition: Option<i32>,
    ) -> Result<(i32, i64), TargetError> {
        let n = self.partition_count(topic).await?;
        let partition = choose(key, n, source_partition);
        let k = (topic.to_string(), partition);
        let cached = self.ends.lock().ok().and_then(|m| m.get(&k).copied());
        if let Some((end, at)) = cached {
            // Offsets only grow: an earlier end is still at or before where the message lands.
            if at.elapsed() < CACHE_FOR {
                return Ok((partition, end));
            }
        }
        let t = topic.to_string();
        let meta = self.meta.clone();
        let end = blocking(&self.cfg, move |cfg| {
            let c = metadata_client(&cfg, &meta)?;
            rdkafka::consumer::Consumer::fetch_watermarks(c, &t, partition, super::METADATA_TIMEOUT)
                .map(|(_, hi)| hi)
                .map_err(|e| format!("watermarks of '{t}' partition {partition}: {e}"))
        })
        .await?;
        if let Ok(mut m) = self.ends.lock() {
            m.insert(k, (end, Instant::now()));
        }
        Ok((partition, end))
    }

    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, TargetError> {
        let (group, topic) = (group.to_string(), topic.to_string());
        blocking(&self.cfg, move |cfg| {
            // Asking for a group's offsets does not join it: no rebalance for its members.
            let c: rdkafka::consumer::BaseConsumer<super::Quiet> = cfg
                .client_config(&[("group.id", &group), ("enable.auto.commit", "false")])
                .create_with_context(super::Quiet)
                .map_err(|e| e.to_string())?;
            let mut tpl = rdkafka::TopicPartitionList::new();
            tpl.add_partition(&topic, partition);
            let got = rdkafka::consumer::Consumer::committed_offsets(&c, tpl, cfg.connect_timeout)
                .map_err(|e| format!("offsets of group '{group}': {e}"))?;
            std::thread::spawn(move || drop(c));
            Ok(got
                .find_partition(&topic, partition)
                .and_then(|e| e.offset().to_raw())
                .filter(|o| *o >= 0))
        })
        .await
    }

    async fn open(&self, txn: &str) -> Result<(), TargetError> {
        let sender = self.initialised(txn).await?;
        if let Some(old) = self.senders.lock().await.insert(txn.to_string(), sender) {
            retire(old);
        }
        Ok(())
    }

    async fn close(&self, txn: &str) {
        if let Some(sender) = self.senders.lock().await.remove(txn) {
            retire(sender);
        }
    }

    async fn fence(&self, txn: &str) -> Result<(), TargetError> {
        retire(self.initialised(txn).await?);
        Ok(())
    }

    async fn find(&self, pending: &[PendingReplay]) -> Result<Vec<Option<i64>>, TargetError> {
        let mut groups: HashMap<(String, i32), Vec<usize>> = HashMap::new();
        for (i, p) in pending.iter().enumerate() {
            groups
                .entry((p.topic.clone(), p.partition))
                .or_default()
                .push(i);
        }
        let mut out = vec![None; pending.len()];
        for ((topic, partition), idx) in groups {
            let from = idx
                .iter()
                .map(|&i| pending[i].from_offset)
                .min()
                .unwrap_or(0);
            let wanted: Vec<Vec<u8>> = idx
                .iter()
                .map(|&i| pending[i].replay_id.as_bytes().to_vec())
                .collect();
            let found = blocking(&self.cfg, move |cfg| {
                cfg.find_headers(&topic, partition, from, MORGUE_REPLAY_ID, &wanted)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| TargetError::Unknown(e.to_string()))?;
            for (j, &i) in idx.iter().enumerate() {
                out[i] = found.get(j).copied().flatten();
            }
        }
        Ok(out)
    }

    async fn send(&self, txn: &str, msgs: &[Outgoing]) -> Result<Vec<i64>, TargetError> {
        let Some(sender) = self.senders.lock().await.remove(txn) else {
            return Err(TargetError::NotSent(format!(
                "no sender opened as '{}'",
                self.txn_id(txn)
            )));
        };
        let records: Vec<TxnRecord<'_>> = msgs
            .iter()
            .map(|m| TxnRecord {
                topic: &m.plan.topic,
                partition: m.partition,
                key: m.plan.key.as_deref(),
                value: m.plan.value.as_deref(),
                headers: Some(&m.plan.headers),
            })
            .collect();
        let mut slot = sender.lock().await;
        let res = sender.run(&mut slot, &records).await;
        drop(slot);
        drop(records);
        // One transaction per claim: the sender is not used again, whatever happened.
        retire(sender);
        res
    }
}
