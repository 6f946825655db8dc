//! The ledger of a Kafka DLQ: a compacted topic `<dlq>.morgue-ledger`, one partition,
//! keyed by letter id, each value a JSON [`LedgerEntry`]. Created on the first write.
//!
//! Reading: one long-lived `read_committed` consumer per session tails the topic into
//! a [`LedgerState`]; every read first catches up to the partition's end, so a
//! decision is always made on what is committed now, and costs only what is new.
//!
//! Writing (compare-and-set): every session of this DLQ writes under one shared
//! `transactional.id`, `morgue-ledger.<dlq>`. Initialising it fences the others, so
//! while a session's producer is live nobody else can commit to the ledger. After each
//! initialisation the session catches up; it then checks each entry's version (and
//! copies) against what it has read and commits the valid ones in one transaction. A
//! commit succeeds only if nobody initialised since, so the check was made on the
//! complete ledger. Aborted entries are invisible to `read_committed` readers and
//! dropped by compaction; a reader that reads uncommitted could see a losing entry,
//! so every morgue reader reads committed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::OnceCell;

use super::txn::{Slot, Txn, TxnRecord};
use super::{Browser, KafkaBackendError, KafkaConfig, METADATA_TIMEOUT, Quiet};
use crate::engine::fault;
use crate::engine::ledger::{
    Conflict, LEDGER_SUFFIX, LedgerEntry, LedgerError, LedgerState, LedgerStore,
};
use crate::engine::writer::{AtomicReplay, Outgoing, TargetError};

/// How many times a write is retried after losing the shared producer.
const WRITE_ATTEMPTS: u32 = 6;

/// The ledger topic next to one DLQ topic.
pub struct KafkaLedger {
    cfg: KafkaConfig,
    dlq: String,
    topic: String,
    txn: Txn,
    created: OnceCell<()>,
    view: Arc<Mutex<View>>,
}

impl std::fmt::Debug for KafkaLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaLedger({})", self.topic)
    }
}

/// The tailing reader and what it has read.
#[derive(Default)]
struct View {
    /// The tail reader, kept from the first catch-up on (even while the ledger topic
    /// does not exist yet: a client costs a connection and ~100 ms to set up and tear down).
    consumer: Option<Browser>,
    /// The ledger's partition is assigned to `consumer`.
    assigned: bool,
    /// The next offset to read.
    next: i64,
    state: LedgerState,
}

impl Drop for View {
    fn drop(&mut self) {
        // Tearing a client down waits for its threads; a command ending need not.
        if let Some(c) = self.consumer.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

impl KafkaLedger {
    /// The ledger of DLQ topic `dlq`; nothing is contacted yet.
    pub fn new(cfg: KafkaConfig, dlq: &str) -> Self {
        KafkaLedger {
            txn: Txn::new(cfg.clone(), format!("morgue-ledger.{dlq}")),
            cfg,
            dlq: dlq.to_string(),
            topic: format!("{dlq}{LEDGER_SUFFIX}"),
            created: OnceCell::new(),
            view: Arc::new(Mutex::new(View::default())),
        }
    }

    /// The ledger topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Reads what is new in the ledger, up to its end now.
    pub async fn catch_up(&self) -> Result<(), LedgerError> {
        self.caught_up(|_| ()).await
    }

    /// Sets `letter`'s state from the view as read so far (no I/O; waits only while a
    /// catch-up holds the view).
    pub fn apply(&self, letter: &mut crate::engine::DeadLetter) {
        if let Ok(v) = self.view.lock() {
            v.state.apply(letter);
        }
    }

    /// Reads what is new in the ledger, up to its end now, then runs `f` on the state.
    async fn caught_up<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LedgerState) -> T + Send + 'static,
    ) -> Result<T, LedgerError> {
        let (cfg, topic, view) = (self.cfg.clone(), self.topic.clone(), self.view.clone());
        tokio::task::spawn_blocking(move || {
            let mut v = view
                .lock()
                .map_err(|_| LedgerError::Other("ledger view poisoned".into()))?;
            catch_up(&cfg, &topic, &mut v)?;
            Ok(f(&v.state))
        })
        .await
        .map_err(|e| LedgerError::Other(format!("background task failed: {e}")))?
    }

    async fn ensure_topic(&self) -> Result<(), LedgerError> {
        self.created
            .get_or_try_init(|| async {
                self.create_topic()
                    .await
                    .map_err(|e| LedgerError::Refused(e.to_string()))
            })
            .await
            .map(|_| ())
    }

    async fn create_topic(&self) -> Result<(), KafkaBackendError> {
        let (cfg, topic) = (self.cfg.clone(), self.topic.clone());
        let exists = tokio::task::spawn_blocking(move || {
            match cfg.partitions(&cfg.browse_consumer()?, &topic) {
                Ok(_) => Ok(true),
                Err(KafkaBackendError::TopicNotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(|e| KafkaBackendError::Task(e.to_string()))??;
        if exists {
            return Ok(());
        }
        let admin: AdminClient<Quiet> = self
            .cfg
            .client_config(&[])
            .create_with_context(Quiet)
            .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))?;
        let new = NewTopic::new(&self.topic, 1, TopicReplication::Fixed(-1))
            .set("cleanup.policy", "compact");
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let res = admin.create_topics([&new], &opts).await.map_err(|e| {
            self.cfg
                .error(format!("creating ledger topic '{}'", self.topic), e)
        })?;
        for r in res {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(self.cfg.error(
                        format!("creating ledger topic '{t}'"),
                        KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        Ok(())
    }

    /// One attempt: check `entries` on the caught-up state, commit the valid ones.
    async fn try_write(
        &self,
        entries: &[LedgerEntry],
        retry: bool,
    ) -> Result<Vec<Result<(), Conflict>>, TargetError> {
        let mut slot = self.txn.lock().await;
        self.txn.ensure(&mut slot).await?;
        let batch = entries.to_vec();
        let checked = self.checked(&mut slot, batch, retry).await?;
        let mut json = Vec::new();
        for (e, r) in entries.iter().zip(&checked) {
            if matches!(r, Ok(true)) {
                let v = serde_json::to_vec(e)
                    .map_err(|err| TargetError::Refused(format!("ledger entry {}: {err}", e.id)))?;
                json.push((e, v));
            }
        }
        if !json.is_empty() {
            let records: Vec<TxnRecord<'_>> = json
                .iter()
                .map(|(e, v)| TxnRecord {
                    topic: &self.topic,
                    partition: 0,
                    key: Some(e.id.as_bytes()),
                    value: Some(v.as_slice()),
                    headers: None,
                })
                .collect();
            self.txn.run(&mut slot, &records).await?;
            if let Ok(mut v) = self.view.lock() {
                for (e, _) in &json {
                    v.state.insert((*e).clone());
                }
            }
        }
        Ok(checked.into_iter().map(|r| r.map(|_| ())).collect())
    }
}

impl KafkaLedger {
    /// Catches up and checks `batch` (see [`check_batch`]). A ledger that cannot be read
    /// to its end (another session stopped inside a transaction) drops the producer, so
    /// the next attempt's initialisation aborts that transaction and fences its holder.
    async fn checked(
        &self,
        slot: &mut Slot,
        batch: Vec<LedgerEntry>,
        retry: bool,
    ) -> Result<Vec<Result<bool, Conflict>>, TargetError> {
        match self
            .caught_up(move |state| check_batch(state, &batch, retry))
            .await
        {
            Ok(c) => Ok(c),
            Err(e) => {
                Txn::reset(slot);
                Err(TargetError::NotSent(e.to_string()))
            }
        }
    }

    /// The ledger record of `e`, as JSON.
    fn record_json(e: &LedgerEntry) -> Result<Vec<u8>, TargetError> {
        serde_json::to_vec(e)
            .map_err(|err| TargetError::Refused(format!("ledger entry {}: {err}", e.id)))
    }
}

#[async_trait]
impl AtomicReplay for KafkaLedger {
    async fn send_recorded(
        &self,
        batch: &[(LedgerEntry, Outgoing)],
    ) -> Result<Vec<Result<i64, Conflict>>, TargetError> {
        self.ensure_topic()
            .await
            .map_err(|e| TargetError::Refused(e.to_string()))?;
        let mut slot = self.txn.lock().await;
        self.txn.ensure(&mut slot).await?;
        let entries: Vec<LedgerEntry> = batch.iter().map(|(e, _)| e.clone()).collect();
        let checked = self.checked(&mut slot, entries, false).await?;
        fault::pause("checked").await;
        let pass: Vec<usize> = (0..batch.len())
            .filter(|&i| matches!(checked.get(i), Some(Ok(true))))
            .collect();
        let mut offsets = vec![-1; batch.len()];
        if !pass.is_empty() {
            let p = self.txn.begin(&mut slot)?;
            let msgs: Vec<TxnRecord<'_>> = pass
                .iter()
                .map(|&i| {
                    let m = &batch[i].1;
                    TxnRecord {
                        topic: &m.plan.topic,
                        partition: m.partition,
                        key: m.plan.key.as_deref(),
                        value: m.plan.value.as_deref(),
                        headers: Some(&m.plan.headers),
                    }
                })
                .collect();
            let sent = match self.txn.produce(&p, &msgs).await {
                Ok(o) => o,
                Err(e) => return Err(self.txn.abort(&mut slot, p, e).await),
            };
            drop(msgs);
            let mut written = Vec::with_capacity(pass.len());
            for (&i, offset) in pass.iter().zip(sent) {
                let mut e = batch[i].0.clone();
                if let Some(h) = e.history.last_mut() {
                    h.offset = offset;
                }
                offsets[i] = offset;
                let json = match Self::record_json(&e) {
                    Ok(j) => j,
                    Err(err) => return Err(self.txn.abort(&mut slot, p, err).await),
                };
                written.push((e, json));
            }
            let records: Vec<TxnRecord<'_>> = written
                .iter()
                .map(|(e, v)| TxnRecord {
                    topic: &self.topic,
                    partition: 0,
                    key: Some(e.id.as_bytes()),
                    value: Some(v.as_slice()),
                    headers: None,
                })
                .collect();
            if let Err(e) = self.txn.produce(&p, &records).await {
                return Err(self.txn.abort(&mut slot, p, e).await);
            }
            drop(records);
            fault::pause("produced").await;
            self.txn.commit(&mut slot, p).await?;
            if let Ok(mut v) = self.view.lock() {
                for (e, _) in written {
                    v.state.insert(e);
                }
            }
        }
        Ok(checked
            .into_iter()
            .zip(offsets)
            .map(|(r, o)| r.map(|_| o))
            .collect())
    }
}

/// Checks a batch against the state: Ok(true) to write, Ok(false) when an earlier
/// attempt already wrote exactly this entry, Err when it conflicts. Entries of one
/// batch see each other (two copies in one batch: the second conflicts).
fn check_batch(
    state: &LedgerState,
    entries: &[LedgerEntry],
    retry: bool,
) -> Vec<Result<bool, Conflict>> {
    let mut sources = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        if retry && state.get(&e.id) == Some(e) {
            out.push(Ok(false));
            continue;
        }
        let mut r = state.check(e).map(|()| true);
        if r.is_ok()
            && e.holds_source()
            && !e.force
            && let Some(src) = &e.source
            && !sources.insert(src.clone())
        {
            r = Err(Conflict::Copy(Box::new(e.clone())));
        }
        out.push(r);
    }
    out
}

/// The session's ledger reader: read committed, short fetch waits, and a small
/// prefetch queue (the ledger can hold millions of entries; what matters is the view).
fn tail_consumer(cfg: &KafkaConfig) -> Result<Browser, KafkaBackendError> {
    cfg.client_config(&[
        ("group.id", "morgue-ledger"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "true"),
        ("isolation.level", "read_committed"),
        ("fetch.wait.max.ms", "10"),
        ("queued.max.messages.kbytes", "4096"),
        ("fetch.max.bytes", "4194304"),
    ])
    .create_with_context(Quiet)
    .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))
}

/// Reads the ledger topic from where the view stopped up to its end now.
fn catch_up(cfg: &KafkaConfig, topic: &str, v: &mut View) -> Result<(), LedgerError> {
    let unreachable = |e: KafkaBackendError| match e {
        KafkaBackendError::Unreachable { .. } => LedgerError::Unreachable(e.to_string()),
        other => LedgerError::Other(other.to_string()),
    };
    if v.consumer.is_none() {
        v.consumer = Some(tail_consumer(cfg).map_err(unreachable)?);
    }
    let Some(c) = v.consumer.as_ref() else {
        return Ok(());
    };
    if !v.assigned {
        match cfg.partitions(c, topic) {
            Ok(_) => {}
            Err(KafkaBackendError::TopicNotFound { .. }) => return Ok(()),
            Err(e) => return Err(unreachable(e)),
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(|e| LedgerError::Other(e.to_string()))?;
        c.assign(&tpl)
            .map_err(|e| LedgerError::Other(format!("assigning '{topic}': {e}")))?;
        v.assigned = true;
    }
    let (_, hi) = c
        .fetch_watermarks(topic, 0, METADATA_TIMEOUT)
        .map_err(|e| LedgerError::Unreachable(format!("reading ledger '{topic}': {e}")))?;
    let deadline = Instant::now() + METADATA_TIMEOUT;
    while v.next < hi {
        if Instant::now() > deadline {
            return Err(LedgerError::Unreachable(format!(
                "reading ledger '{topic}': stuck at offset {} of {hi} (an open transaction?)",
                v.next
            )));
        }
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                v.next = msg.offset() + 1;
                let Some(bytes) = msg.payload() else { continue };
                match serde_json::from_slice::<LedgerEntry>(bytes) {
                    Ok(e) => v.state.insert(e),
                    Err(e) => {
                        tracing::warn!(
                            "ledger '{topic}' entry at offset {} is unreadable, skipped: {e}",
                            msg.offset()
                        );
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {
                // Control records (commit markers) and aborted entries have no message:
                // the position says how far the reader really got.
                let pos = c
                    .position()
                    .ok()
                    .and_then(|p| p.find_partition(topic, 0).and_then(|e| e.offset().to_raw()))
                    .unwrap_or(-1);
                if pos > v.next {
                    v.next = pos;
                }
            }
            Some(Err(e)) => {
                return Err(LedgerError::Unreachable(format!(
                    "reading ledger '{topic}': {e}"
                )));
            }
        }
    }
    Ok(())
}

#[async_trait]
impl LedgerStore for KafkaLedger {
    /// The whole ledger as committed now (a missing topic is an empty ledger).
    async fn load(&self) -> Result<LedgerState, LedgerError> {
        self.caught_up(LedgerState::clone).await
    }

    async fn count(&self) -> Result<usize, LedgerError> {
        self.caught_up(LedgerState::len).await
    }

    async fn current(
        &self,
        ids: &[String],
        sources: &[String],
    ) -> Result<LedgerState, LedgerError> {
        let (ids, sources) = (ids.to_vec(), sources.to_vec());
        self.caught_up(move |state| state.subset(&ids, &sources))
            .await
    }

    async fn write(
        &self,
        entries: Vec<LedgerEntry>,
    ) -> Result<Vec<Result<(), Conflict>>, LedgerError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_topic().await?;
        let mut last = String::new();
        for attempt in 0..WRITE_ATTEMPTS {
            match self.try_write(&entries, attempt > 0).await {
                Ok(r) => return Ok(r),
                Err(TargetError::Refused(e)) => return Err(LedgerError::Refused(e)),
                Err(TargetError::NotSent(e) | TargetError::Unknown(e)) => {
                    last = e;
                    let ms = 20u64 << attempt.min(5);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
            }
        }
        Err(LedgerError::Unreachable(format!(
            "writing ledger '{}': {last}",
            self.topic
        )))
    }

    fn dlq(&self) -> String {
        format!("kafka://{}/{}", self.cfg.brokers, self.dlq)
    }
}
