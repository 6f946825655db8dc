//! Writing a ledger checkpoint (see `checkpoint`), then removing what it covers.
//!
//! A session writes one after a write of its own when the entries folded since the
//! checkpoint it started from reach [`every`] (50,000) or the number of letters,
//! whichever is more: the ledger then holds about a checkpoint and as many entries again, so its
//! size grows with the letters, and a checkpoint's cost is spread over at least as
//! many entries as it holds. Several sessions crossing the mark at once each write
//! one; that costs space until the next cut, never correctness (a checkpoint is a
//! function of the log before its `upto`). A checkpoint that fails is left; the next
//! is tried after as many entries again.

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;

use super::checkpoint::{self, Head};
use super::ledger::KafkaLedger;
use super::{KafkaBackendError, Quiet};
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

/// The topic settings of a ledger and of its checkpoint topic: kept until a checkpoint
/// removes records (no time or size retention), so DeleteRecords is allowed.
pub const TOPIC_CONFIG: [(&str, &str); 3] = [
    ("cleanup.policy", "delete"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

/// Ledger records before a checkpoint's `upto` that its cut keeps.
const MARGIN: i64 = 4;

impl KafkaLedger {
    /// Writes a checkpoint when enough was folded since the last one.
    pub(super) async fn maybe_checkpoint(&self) {
        let due = self
            .view
            .lock()
            .map(|v| v.since >= every().max(v.fold.len() as u64))
            .unwrap_or(false);
        if !due {
            return;
        }
        match self.checkpoint().await {
            Ok(h) => tracing::info!(
                "ledger '{}': checkpoint of {} letters up to offset {}",
                self.topic(),
                h.letters,
                h.upto
            ),
            Err(e) => tracing::warn!("ledger '{}': no checkpoint written: {e}", self.topic()),
        }
    }

    /// Writes a checkpoint of everything folded now, then removes what it covers.
    pub async fn checkpoint(&self) -> Result<Head, LedgerError> {
        let (upto, letters, parts) = self
            .caught_up(|v| {
                v.since = 0;
                let parts = v.checkpoint_parts()?;
                Ok((v.next, v.fold.len() as u64, parts))
            })
            .await?;
        let topic = checkpoint::topic_of(self.topic());
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
        let at = self.put(&topic, &format!("h/{}", head.id), &bytes).await?;
        fault::pause("checkpoint-head").await;
        let keys: Vec<String> = (0..parts.len())
            .map(|i| format!("p/{}/{i}", head.id))
            .collect();
        let sent =
            futures::future::join_all(keys.iter().zip(&parts).map(|(k, p)| self.put(&topic, k, p)))
                .await;
        for s in sent {
            s?;
        }
        fault::pause("checkpoint-parts").await;
        // Complete and acknowledged: what it covers can go, but for the last few
        // records, so that a session a little behind still reads on instead of
        // starting again from the checkpoint.
        self.cut(self.topic(), upto - MARGIN).await;
        self.cut(&topic, at).await;
        Ok(head)
    }

    /// Appends one record to partition 0 of `topic`; its offset once acknowledged.
    async fn put(&self, topic: &str, key: &str, value: &[u8]) -> Result<i64, LedgerError> {
        let p = self.producer()?;
        let rec: FutureRecord<'_, str, [u8]> =
            FutureRecord::to(topic).partition(0).key(key).payload(value);
        match p.send(rec, Duration::from_secs(30)).await {
            Ok(d) => Ok(d.offset),
            Err((e, _)) => Err(LedgerError::Unreachable(format!(
                "writing checkpoint to '{topic}': {e}"
            ))),
        }
    }

    /// Removes the records of `topic` before `offset`. A topic whose policy does not
    /// allow it (a ledger created by an older morgue, `compact`) is set to the ledger's
    /// settings once; if that is refused too, records stay (readers skip them anyway).
    async fn cut(&self, topic: &str, offset: i64) {
        if offset <= 0 {
            return;
        }
        let admin = match self.admin() {
            Ok(a) => a,
            Err(e) => return tracing::warn!("ledger '{topic}': not cut: {e}"),
        };
        let mut tpl = TopicPartitionList::new();
        if let Err(e) = tpl.add_partition_offset(topic, 0, rdkafka::Offset::Offset(offset)) {
            return tracing::warn!("ledger '{topic}': not cut: {e}");
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let mut res = admin.delete_records(&tpl, &opts).await;
        if is_policy(&res) {
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
            for (k, v) in TOPIC_CONFIG {
                alter = alter.set(k, v);
            }
            match admin.alter_configs([&alter], &opts).await {
                Ok(_) => res = admin.delete_records(&tpl, &opts).await,
                Err(e) => tracing::warn!("ledger '{topic}': settings not changed: {e}"),
            }
        }
        match res.map(|t| t.elements().iter().map(|e| e.error()).collect::<Vec<_>>()) {
            Ok(errs) if errs.iter().all(Result::is_ok) => {
                tracing::debug!("'{topic}' cut before offset {offset}")
            }
            Ok(errs) => tracing::warn!(
                "'{topic}' not cut before offset {offset} ({errs:?}): readers skip those \
                 records, which still take space"
            ),
            Err(e) => tracing::warn!("'{topic}' not cut before offset {offset}: {e}"),
        }
    }

    fn admin(&self) -> Result<AdminClient<Quiet>, KafkaBackendError> {
        self.cfg
            .client_config(&[])
            .create_with_context(Quiet)
            .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))
    }

    /// Creates `topic` (one partition, [`TOPIC_CONFIG`]) unless it exists.
    pub(super) async fn ensure(&self, topic: &str) -> Result<(), KafkaBackendError> {
        let admin = self.admin()?;
        let mut new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
        for (k, v) in TOPIC_CONFIG {
            new = new.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let res = admin
            .create_topics([&new], &opts)
            .await
            .map_err(|e| self.cfg.error(format!("creating '{topic}'"), e))?;
        for r in res {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(self
                        .cfg
                        .error(format!("creating '{t}'"), KafkaError::AdminOp(code)));
                }
            }
        }
        Ok(())
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
