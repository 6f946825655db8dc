//! The ledger of a Kafka DLQ: a topic `<dlq>.morgue-ledger`, one partition, kept until
//! a checkpoint removes what it covers (`cleanup.policy=delete`, no time or size
//! retention; see `checkpoint`). Each write appends one record holding all its
//! entries (a replay window's claims, later its confirms) in the compact format 2 of
//! `ledger_codec`, under a key of its own (`w/<uuid>`). Created on the first write.
//!
//! The log's order is the ledger's compare-and-set. Every reader folds the entries in
//! order, record by record and within a record, and applies one only if it is valid
//! where it stands (its version follows the letter's, no copy holds its source; see
//! `engine::ledger_fold`), so every session reaches the same state from the same log.
//! A write appends its record (an idempotent producer, acks from all replicas), then
//! reads the ledger up to it: the fold's verdict on each entry is the write's answer.
//! Two sessions that write the same version of a letter both append; the entry earlier
//! in the log wins, for everyone.
//!
//! A new session does not read the whole log: it loads the latest complete checkpoint
//! (`<dlq>.morgue-checkpoint`: the fold and every letter's entry up to an offset) and
//! reads the ledger from there. Sessions write checkpoints as the log grows (see
//! `checkpoint_write`), then remove the records they cover, so the ledger's size
//! follows the letters, not every operation ever made.
//!
//! No ledger write is transactional, so nothing in the ledger is ever aborted and no
//! reader ever waits on another session's open transaction (a holder stopped inside
//! one would otherwise stall every reader of the ledger until it is fenced). Records
//! of format 1 (older morgues: one entry per record, keyed `<id>/<uuid>`, or by letter
//! id in transactions of still older ones) fold the same way, in log order with the
//! new ones. A ledger holding a record of a newer format is read but never written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::OnceCell;

use super::ledger_codec;
use super::ledger_view::View;
use super::{KafkaBackendError, KafkaConfig, Producer, Quiet};
use crate::engine::model::ledger::{
    Conflict, LEDGER_SUFFIX, LedgerEntry, LedgerError, LedgerState, LedgerStore,
};

/// How many times a write reads the ledger again to find its own entries.
const READ_BACK_TRIES: u32 = 50;
/// How long an append may wait for its acknowledgement.
const APPEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The ledger topic next to one DLQ topic.
pub struct KafkaLedger {
    pub(super) cfg: KafkaConfig,
    dlq: String,
    topic: String,
    created: OnceCell<()>,
    /// A checkpoint is being written in the background.
    pub(super) checkpointing: Arc<std::sync::atomic::AtomicBool>,
    producer: Mutex<Option<Producer>>,
    pub(super) view: Arc<Mutex<View>>,
}

impl std::fmt::Debug for KafkaLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KafkaLedger({})", self.topic)
    }
}

impl Drop for KafkaLedger {
    fn drop(&mut self) {
        if let Some(p) = self.producer.get_mut().ok().and_then(Option::take) {
            std::thread::spawn(move || drop(p));
        }
    }
}

impl KafkaLedger {
    /// The ledger of DLQ topic `dlq`; nothing is contacted yet.
    pub fn new(cfg: KafkaConfig, dlq: &str) -> Self {
        let topic = format!("{dlq}{LEDGER_SUFFIX}");
        KafkaLedger {
            view: Arc::new(Mutex::new(View::new(cfg.clone(), &topic))),
            cfg,
            dlq: dlq.to_string(),
            topic,
            created: OnceCell::new(),
            checkpointing: Arc::default(),
            producer: Mutex::new(None),
        }
    }

    /// The ledger of DLQ topic `dlq` for counting states only: its reader keeps no
    /// whole entry (the overview reads many ledgers and needs only their states).
    pub fn counting(cfg: KafkaConfig, dlq: &str) -> Self {
        let me = KafkaLedger::new(cfg.clone(), dlq);
        if let Ok(mut v) = me.view.lock() {
            *v = View::counting(cfg, &me.topic);
        }
        me
    }

    /// The ledger topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Reads what is new in the ledger, up to its end now.
    pub async fn catch_up(&self) -> Result<(), LedgerError> {
        self.caught_up(|_| Ok(())).await
    }

    /// Sets the letters' state, history and holders from the view as read so far;
    /// reads back the entries it does not hold whole. Blocking: call it off the runtime.
    pub fn apply(&self, letters: &mut [crate::engine::DeadLetter]) -> Result<(), LedgerError> {
        self.view
            .lock()
            .map_err(|_| LedgerError::Other("ledger view poisoned".into()))?
            .apply(letters)
    }

    /// How many letters are in each shown state, as the ledger holds it now.
    pub async fn states(
        &self,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, LedgerError> {
        self.caught_up(|v| Ok(v.fold.states())).await
    }

    /// Reads what is new in the ledger, up to its end now, then runs `f` on the view.
    pub(super) async fn caught_up<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut View) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let view = self.view.clone();
        tokio::task::spawn_blocking(move || {
            let mut v = view
                .lock()
                .map_err(|_| LedgerError::Other("ledger view poisoned".into()))?;
            v.catch_up()?;
            f(&mut v)
        })
        .await
        .map_err(|e| LedgerError::Other(format!("background task failed: {e}")))?
    }

    /// The session's appending producer, created on first use.
    pub(super) fn producer(&self) -> Result<Producer, LedgerError> {
        let mut slot = self
            .producer
            .lock()
            .map_err(|_| LedgerError::Other("ledger producer poisoned".into()))?;
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let p: Producer = self
            .cfg
            .client_config(&[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "2"),
                ("message.timeout.ms", "30000"),
            ])
            .create_with_context(Quiet)
            .map_err(|e| LedgerError::Refused(format!("bad Kafka property: {e}")))?;
        *slot = Some(p.clone());
        Ok(p)
    }

    /// Appends `entries` as format-2 records (usually one), all in flight at once; the
    /// offset of each record and how many entries it holds, once all are acknowledged.
    async fn append(&self, entries: &[LedgerEntry]) -> Result<Vec<(i64, usize)>, LedgerError> {
        let p = self.producer()?;
        let records = ledger_codec::encode(entries).map_err(|err| {
            LedgerError::Other(format!("ledger '{}': encoding a write: {err}", self.topic))
        })?;
        let mut futures = Vec::with_capacity(records.len());
        for (bytes, n) in &records {
            // A key of its own per record: compaction removes nothing a reader folds.
            let key = format!("w/{}", uuid::Uuid::new_v4());
            let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic)
                .partition(0)
                .key(key.as_str())
                .payload(bytes.as_slice());
            let f = loop {
                match p.send_result(rec) {
                    Ok(f) => break f,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((err, _)) => return Err(self.append_error(&err)),
                }
            };
            futures.push((f, *n));
        }
        let mut offsets = Vec::with_capacity(futures.len());
        for (f, n) in futures {
            match tokio::time::timeout(APPEND_TIMEOUT, f).await {
                Ok(Ok(Ok(d))) => offsets.push((d.offset, n)),
                Ok(Ok(Err((err, _)))) => return Err(self.append_error(&err)),
                Ok(Err(_)) | Err(_) => {
                    return Err(LedgerError::Unreachable(format!(
                        "writing ledger '{}' on {}: no acknowledgement",
                        self.topic, self.cfg.brokers
                    )));
                }
            }
        }
        Ok(offsets)
    }

    /// Refuses to write a ledger that holds records of a newer format than this morgue's.
    fn refuse_newer(&self, v: &View) -> Result<(), LedgerError> {
        match v.newer {
            Some(format) => Err(LedgerError::Refused(format!(
                "ledger '{}' holds records of format {format}, written by a newer morgue; \
                 this one writes format {}: nothing written (upgrade morgue to act on this DLQ)",
                self.topic,
                ledger_codec::FORMAT
            ))),
            None => Ok(()),
        }
    }

    fn append_error(&self, e: &KafkaError) -> LedgerError {
        let why = format!(
            "writing ledger '{}' on {}: {e}",
            self.topic, self.cfg.brokers
        );
        if super::txn::never_taken(e) {
            LedgerError::Refused(why)
        } else {
            LedgerError::Unreachable(why)
        }
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
        super::ledger_topics::ensure(&self.cfg, &self.topic).await
    }
}

/// Whether entry `e`, whose verdict the view no longer holds, was applied, judged from
/// the letter's entry `now`: applied when `now` is `e` itself (nobody else writes the
/// same session, time and replay), refused when the letter is at `e`'s version or an
/// older one, or has no entry; None when a later write hides which (the write then
/// reports the ledger error, and the next run verifies what it left).
fn judged_late(e: &LedgerEntry, now: Option<&LedgerEntry>) -> Option<bool> {
    match now {
        Some(c) if c == e => Some(true),
        Some(c) if c.version <= e.version => Some(false),
        Some(_) => None,
        None => Some(false),
    }
}

/// Why `e` was refused: the letter's entry now, or the copy holding its source.
fn conflict(v: &mut View, e: &LedgerEntry) -> Result<Conflict, LedgerError> {
    let sources: Vec<String> = e.source.iter().cloned().collect();
    Ok(v.subset(std::slice::from_ref(&e.id), &sources)?.conflict(e))
}

#[async_trait]
impl LedgerStore for KafkaLedger {
    /// The whole ledger as committed now (a missing topic is an empty ledger).
    async fn load(&self) -> Result<LedgerState, LedgerError> {
        self.caught_up(View::everything).await
    }

    async fn count(&self) -> Result<usize, LedgerError> {
        self.caught_up(|v| Ok(v.fold.len())).await
    }

    async fn current(
        &self,
        ids: &[String],
        sources: &[String],
    ) -> Result<LedgerState, LedgerError> {
        let (ids, sources) = (ids.to_vec(), sources.to_vec());
        self.caught_up(move |v| v.subset(&ids, &sources)).await
    }

    async fn write(
        &self,
        entries: Vec<LedgerEntry>,
    ) -> Result<Vec<Result<(), Conflict>>, LedgerError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_topic().await?;
        // What this session read before deciding to write is what the check is made on.
        {
            let v = self
                .view
                .lock()
                .map_err(|_| LedgerError::Other("ledger view poisoned".into()))?;
            self.refuse_newer(&v)?;
        }
        let t0 = std::time::Instant::now();
        let records = self.append(&entries).await?;
        tracing::debug!("ledger '{}': appended in {:?}", self.topic, t0.elapsed());
        let last = records.iter().map(|r| r.0).max().unwrap_or(0);
        // Read up to them: the fold's verdict on each entry is the answer. A reader that
        // does not see a new ledger topic yet (metadata not yet spread) is asked again.
        let entries = Arc::new(entries);
        let me = Arc::new(self.topic.clone());
        for _ in 0..READ_BACK_TRIES {
            let (entries, records, topic) = (entries.clone(), records.clone(), me.clone());
            let got = self
                .caught_up(move |v| {
                    if v.next <= last {
                        return Ok(None);
                    }
                    let mut out = Vec::with_capacity(entries.len());
                    let mut todo = entries.iter();
                    for &(o, n) in &records {
                        let no_verdict = || {
                            LedgerError::Other(format!(
                                "ledger '{topic}': no verdict on the {n} entries written at offset {o}"
                            ))
                        };
                        match v.verdicts(o).filter(|vs| vs.len() == n) {
                            Some(verdicts) => {
                                for ok in verdicts {
                                    let Some(e) = todo.next() else { break };
                                    out.push(if ok { Ok(()) } else { Err(conflict(v, e)?) });
                                }
                            }
                            // Read, but its verdict is gone (a checkpoint this view started
                            // again from covers it, or too many records came since): judged
                            // from the state the view holds.
                            None if o < v.next => {
                                for e in todo.by_ref().take(n) {
                                    let now = v.subset(std::slice::from_ref(&e.id), &[])?;
                                    out.push(match judged_late(e, now.get(&e.id)) {
                                        Some(true) => Ok(()),
                                        Some(false) => Err(conflict(v, e)?),
                                        None => return Err(no_verdict()),
                                    });
                                }
                            }
                            None => return Err(no_verdict()),
                        }
                    }
                    Ok(Some(out))
                })
                .await?;
            if let Some(results) = got {
                tracing::debug!("ledger '{}': read back in {:?}", self.topic, t0.elapsed());
                self.maybe_checkpoint();
                return Ok(results);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(LedgerError::Unreachable(format!(
            "ledger '{}': the entries written at offsets up to {last} were not read back",
            self.topic
        )))
    }

    fn dlq(&self) -> String {
        format!("kafka://{}/{}", self.cfg.brokers, self.dlq)
    }

    /// Starts the appending producer (an idempotent producer's first send waits 0.5–1 s
    /// for its producer id: it is asked for now), creates the topic, reads the ledger.
    async fn prepare(&self) -> Result<(), LedgerError> {
        let t0 = std::time::Instant::now();
        // Kept by the ledger for its writes; this clone only starts it.
        let _started = self.producer()?;
        self.ensure_topic().await?;
        self.catch_up().await?;
        tracing::debug!("ledger '{}': ready in {:?}", self.topic, t0.elapsed());
        Ok(())
    }

    async fn settle(&self) {
        self.settle_checkpoint(Duration::from_secs(60)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::ledger::EntryState;

    fn entry(version: u64, session: &str) -> LedgerEntry {
        LedgerEntry {
            id: "0:1".into(),
            state: EntryState::Replaying,
            by: "ann@jump".into(),
            at_ms: 1,
            version,
            session: session.into(),
            source: None,
            force: false,
            pending: None,
            history: Vec::new(),
            edited_value: None,
        }
    }

    #[test]
    fn a_write_hidden_by_a_checkpoint_is_judged_from_the_state_it_left() {
        let mine = entry(3, "me");
        assert_eq!(judged_late(&mine, Some(&mine)), Some(true));
        // Another session's write of the same version won.
        assert_eq!(judged_late(&mine, Some(&entry(3, "them"))), Some(false));
        // The letter is still at an older version: mine was refused.
        assert_eq!(judged_late(&mine, Some(&entry(2, "them"))), Some(false));
        // A later write hides it: unknown, never guessed.
        assert_eq!(judged_late(&mine, Some(&entry(4, "me"))), None);
        // No entry at all: refused (a copy held its source).
        assert_eq!(judged_late(&mine, None), Some(false));
    }
}
