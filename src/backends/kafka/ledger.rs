//! The ledger of a Kafka DLQ: a compacted topic `<dlq>.morgue-ledger`, one partition,
//! keyed by letter id, each value a JSON [`LedgerEntry`]. Created on the first write.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::OnceCell;

use super::{KafkaBackendError, KafkaConfig, Producer, Quiet};
use crate::engine::ledger::{LEDGER_SUFFIX, LedgerEntry, LedgerError, LedgerState, LedgerStore};

/// The ledger topic next to one DLQ topic.
pub struct KafkaLedger {
    cfg: KafkaConfig,
    dlq: String,
    topic: String,
    producer: OnceCell<Producer>,
}

impl KafkaLedger {
    /// The ledger of DLQ topic `dlq`; nothing is contacted yet.
    pub fn new(cfg: KafkaConfig, dlq: &str) -> Self {
        KafkaLedger {
            cfg,
            dlq: dlq.to_string(),
            topic: format!("{dlq}{LEDGER_SUFFIX}"),
            producer: OnceCell::new(),
        }
    }

    /// The ledger topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    async fn ensure_topic(&self) -> Result<(), KafkaBackendError> {
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
}

#[async_trait]
impl LedgerStore for KafkaLedger {
    /// Reads the topic into the latest entry per letter; a missing topic is an empty ledger.
    async fn load(&self) -> Result<LedgerState, LedgerError> {
        let (cfg, topic) = (self.cfg.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            let mut state = LedgerState::default();
            let mut bad = None;
            let res = cfg.read_to_end(&topic, |l| {
                let Some(v) = l.value.as_deref() else { return };
                match serde_json::from_slice::<LedgerEntry>(v) {
                    Ok(e) => state.insert(e),
                    Err(e) => {
                        let id = l.id.map(|i| i.to_string()).unwrap_or_default();
                        bad.get_or_insert(format!(
                            "ledger '{topic}' entry at {id} is unreadable: {e}"
                        ));
                    }
                }
            });
            match res {
                Ok(_) | Err(KafkaBackendError::TopicNotFound { .. }) => {}
                Err(e) => return Err(LedgerError(e.to_string())),
            }
            match bad {
                Some(e) => Err(LedgerError(e)),
                None => Ok(state),
            }
        })
        .await
        .map_err(|e| LedgerError(format!("background task failed: {e}")))?
    }

    async fn record(&self, entry: &LedgerEntry) -> Result<(), LedgerError> {
        self.ensure_topic()
            .await
            .map_err(|e| LedgerError(e.to_string()))?;
        let producer = self
            .producer
            .get_or_try_init(|| async { self.cfg.producer() })
            .await
            .map_err(|e| LedgerError(e.to_string()))?;
        let json = serde_json::to_vec(entry).map_err(|e| LedgerError(e.to_string()))?;
        let record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&self.topic)
            .key(entry.id.as_str())
            .payload(json.as_slice())
            .partition(0);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| {
                LedgerError(
                    self.cfg
                        .error(format!("writing ledger '{}'", self.topic), e)
                        .to_string(),
                )
            })?;
        Ok(())
    }

    fn dlq(&self) -> String {
        format!("kafka://{}/{}", self.cfg.brokers, self.dlq)
    }
}
