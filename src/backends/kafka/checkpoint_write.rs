//! Writing a ledger checkpoint (see `checkpoint`), then removing what it covers.
//!
//! A session starts one, in the background, after a write of its own when the entries
//! folded since the checkpoint it started from reach [`every`] (50,000) or half the
//! number of letters, whichever is more: the ledger then holds about a checkpoint and
//! half as many entries again, so its size grows with the letters, and a checkpoint's
//! cost is spread over at least half as many entries as it holds. (100,000 was tried:
//! a 100k-letter replay then wrote two checkpoints, not four, but left half its letters'
//! records uncut: 156 B of ledger a letter, over the 100 B aimed at.) `replay` and
//! `resolve` wait for the one they started before they exit (`LedgerStore::settle`);
//! one interrupted elsewhere is left half-written (ignored) and redone by the next
//! session. Several sessions crossing the mark at once each write one; that costs
//! space until the next cut, never a decision (a checkpoint is a function of the log
//! before its `upto`). A checkpoint that fails is left; the next is tried after as
//! many entries again. Gathering one holds the session's ledger view, so this
//! session's own writes wait for that part (reading back every entry, compressing).

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::checkpoint::{self, Head};
use super::checkpoint_view;
use super::ledger::KafkaLedger;
use super::ledger_topics::{admin, ensure};
use super::ledger_view::View;
use super::{KafkaBackendError, KafkaConfig, Producer, Quiet};
use crate::engine::model::ledger::LedgerError;
use crate::engine::model::names::whoami;
use crate::engine::write::fault;

/// Entries folded since the last checkpoint before the next is written, at least.
/// Debug builds (the tests) take `MORGUE_TEST_CHECKPOINT_EVERY` instead, to write
/// checkpoints often.
pub fn every() -> u64 {
    const EVERY: u64 = 50_000;
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("MORGUE_TEST_CHECKPOINT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    EVERY
}

/// Ledger records before a checkpoint's `upto` that its cut keeps.
const MARGIN: i64 = 4;

impl KafkaLedger {
    /// Starts writing a checkpoint in the background when enough was folded since the
    /// last one and none is being written by this session.
    pub(super) fn maybe_checkpoint(&self) {
        let due = match self.view.lock() {
            Ok(v) => v.since >= every().max(v.fold.len() as u64 / 2),
            Err(_) => {
                // Every later read of the view says so too; no checkpoint from it.
                return tracing::warn!("ledger '{}': view poisoned, no checkpoint", self.topic());
            }
        };
        if !due || self.checkpointing.swap(true, Ordering::AcqRel) {
            return;
        }
        let c = match self.checkpointer() {
            Ok(c) => c,
            Err(e) => {
                self.checkpointing.store(false, Ordering::Release);
                return tracing::warn!("ledger '{}': no checkpoint written: {e}", self.topic());
            }
        };
        let busy = self.checkpointing.clone();
        tokio::spawn(async move {
            match c.run().await {
                Ok(h) => tracing::info!(
                    "ledger '{}': checkpoint of {} letters up to offset {}",
                    c.topic,
                    h.letters,
                    h.upto
                ),
                Err(e) => tracing::warn!("ledger '{}': no checkpoint written: {e}", c.topic),
            }
            busy.store(false, Ordering::Release);
        });
    }

    /// Writes a checkpoint of everything folded now and waits for it (then cuts).
    pub async fn checkpoint(&self) -> Result<Head, LedgerError> {
        self.checkpointer()?.run().await
    }

    /// Waits until the checkpoint this session is writing in the background, if any,
    /// is written (a command finishes it before it exits), at most `limit`.
    pub async fn settle_checkpoint(&self, limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        while self.checkpointing.load(Ordering::Acquire) && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn checkpointer(&self) -> Result<Checkpointer, LedgerError> {
        Ok(Checkpointer {
            cfg: self.cfg.clone(),
            topic: self.topic().to_string(),
            view: self.view.clone(),
            producer: self.producer()?,
        })
    }
}

/// What writing a checkpoint needs of a ledger, owned (it runs in the background).
struct Checkpointer {
    cfg: KafkaConfig,
    topic: String,
    view: Arc<Mutex<View>>,
    producer: Producer,
}

impl Checkpointer {
    /// Writes a checkpoint of everything folded now, then removes what it covers.
    async fn run(&self) -> Result<Head, LedgerError> {
        let view = self.view.clone();
        let (upto, letters, parts) = tokio::task::spawn_blocking(move || {
            let mut v = view
                .lock()
                .map_err(|_| LedgerError::Other("ledger view poisoned".into()))?;
            v.catch_up()?;
            if let Some(format) = v.newer {
                // Its records were not folded: a checkpoint would drop them for good.
                return Err(LedgerError::Refused(format!(
                    "the ledger holds records of format {format}, which this morgue does not read"
                )));
            }
            v.since = 0;
            let parts = v.checkpoint_parts()?;
            Ok::<_, LedgerError>((v.next, v.fold.len() as u64, parts))
        })
        .await
        .map_err(|e| LedgerError::Other(format!("background task failed: {e}")))??;
        fault::pause("checkpoint-snapshot").await;
        let topic = checkpoint::topic_of(&self.topic);
        self.ensure(&topic)
            .await
            .map_err(|e| LedgerError::Refused(e.to_string()))?;
        let head = Head {
            id: uuid::Uuid::new_v4().to_string(),
            upto,
            parts: u32::try_from(parts.len()).unwrap_or(u32::MAX),
            letters,
            by: whoami(),
            at_ms: chrono::Utc::now().timestamp_millis(),
        };
        let bytes = checkpoint::encode_head(&head).map_err(LedgerError::Other)?;
        let at = self
            .put(&topic, &[(format!("h/{}", head.id), bytes)])
            .await?[0];
        fault::pause("checkpoint-head").await;
        let parts: Vec<(String, Vec<u8>)> = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| (format!("p/{}/{i}", head.id), p))
            .collect();
        self.put(&topic, &parts).await?;
        fault::pause("checkpoint-parts").await;
        // Complete and acknowledged: what it covers can go, but for the last few
        // records, so that a session a little behind still reads on instead of
        // starting again from the checkpoint; and never a head of a checkpoint that
        // covers more than this one (another session's, perhaps not complete yet: it
        // may already have cut the ledger past this one's `upto`).
        let (cfg, scanned) = (self.cfg.clone(), topic.clone());
        let keep = tokio::task::spawn_blocking(move || {
            let mut keep = at;
            let whole = checkpoint_view::scan(&cfg, &scanned, |offset, key, bytes| {
                // A head this morgue cannot read (a newer format) is kept like one that
                // covers more: its writer may have cut the ledger past this one.
                let covered = matches!(checkpoint::decode_head(bytes), Ok(Ok(h)) if h.upto <= upto);
                if offset < keep && key.starts_with("h/") && !covered {
                    keep = offset;
                }
                Some(())
            })?;
            Ok::<_, LedgerError>(whole.then_some(keep))
        })
        .await
        .map_err(|e| LedgerError::Other(format!("background task failed: {e}")))??;
        let Some(keep) = keep else {
            // Another session cut the checkpoint topic meanwhile: its checkpoint covers
            // more, and this one removes nothing.
            return Ok(head);
        };
        self.cut(&self.topic, upto - MARGIN).await;
        self.cut(&topic, keep).await;
        Ok(head)
    }

    /// Appends `records` to partition 0 of `topic`, in order, all in flight at once;
    /// their offsets once acknowledged.
    async fn put(
        &self,
        topic: &str,
        records: &[(String, Vec<u8>)],
    ) -> Result<Vec<i64>, LedgerError> {
        let failed = |e: &KafkaError| {
            LedgerError::Unreachable(format!("writing checkpoint to '{topic}': {e}"))
        };
        let mut futures = Vec::with_capacity(records.len());
        for (key, value) in records {
            let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic)
                .partition(0)
                .key(key.as_str())
                .payload(value.as_slice());
            // Enqueued one after the other, so the log holds them in this order.
            let f = loop {
                match self.producer.send_result(rec) {
                    Ok(f) => break f,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        rec = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(failed(&e)),
                }
            };
            futures.push(f);
        }
        let mut out = Vec::with_capacity(futures.len());
        for f in futures {
            match f.await {
                Ok(Ok(d)) => out.push(d.offset),
                Ok(Err((e, _))) => return Err(failed(&e)),
                Err(_) => {
                    return Err(LedgerError::Unreachable(format!(
                        "writing checkpoint to '{topic}': no acknowledgement"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Removes the records of `topic` before `offset`. A topic whose policy does not
    /// allow it (a ledger created `compact` by an older morgue) keeps them: readers
    /// skip them anyway, and the warning says which setting would let them go.
    async fn cut(&self, topic: &str, offset: i64) {
        if offset <= 0 {
            return;
        }
        let admin = match self.admin() {
            Ok(a) => a,
            Err(e) => return tracing::warn!("'{topic}' not cut: {e}"),
        };
        let mut tpl = TopicPartitionList::new();
        if let Err(e) = tpl.add_partition_offset(topic, 0, rdkafka::Offset::Offset(offset)) {
            return tracing::warn!("'{topic}' not cut: {e}");
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let res = admin.delete_records(&tpl, &opts).await;
        let policy = is_policy(&res);
        match res.map(|t| t.elements().iter().map(|e| e.error()).collect::<Vec<_>>()) {
            Ok(errs) if errs.iter().all(Result::is_ok) => {
                tracing::debug!("'{topic}' cut before offset {offset}")
            }
            _ if policy => tracing::warn!(
                "'{topic}' not cut before offset {offset}: its cleanup.policy does not allow \
                 it (set cleanup.policy=delete and retention.ms=-1 on it to let records go; \
                 readers skip them meanwhile)"
            ),
            Ok(errs) => tracing::warn!("'{topic}' not cut before offset {offset}: {errs:?}"),
            Err(e) => tracing::warn!("'{topic}' not cut before offset {offset}: {e}"),
        }
    }

    fn admin(&self) -> Result<AdminClient<Quiet>, KafkaBackendError> {
        admin(&self.cfg)
    }

    async fn ensure(&self, topic: &str) -> Result<(), KafkaBackendError> {
        ensure(&self.cfg, topic).await
    }
}

/// Whether a DeleteRecords answer is the broker's refusal by topic policy.
fn is_policy(res: &Result<TopicPartitionList, KafkaError>) -> bool {
    let policy = |e: &KafkaError| e.rdkafka_error_code() == Some(RDKafkaErrorCode::PolicyViolation);
    match res {
        Ok(t) => t
            .elements()
            .iter()
            .any(|e| e.error().err().is_some_and(|x| policy(&x))),
        Err(e) => policy(e),
    }
}
