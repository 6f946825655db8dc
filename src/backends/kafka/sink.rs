//! A DLQ topic as the router's sink: the topic must exist (it is never auto-created),
//! and a write counts only once the broker has acknowledged it. An idempotent producer
//! turns fatal when the broker forgets its producer id (a broker restarted without that
//! state); the sink then starts a new producer, so the next retry can succeed.

use async_trait::async_trait;

use super::{KafkaBackendError, KafkaConfig, Producer};
use crate::engine::model::error::FailureKind;
use crate::engine::route::sink::{DeadLetterSink, SinkError};
use crate::engine::{DeadLetter, LetterId};

/// Writes dead letters to one Kafka topic with an idempotent producer.
pub struct KafkaSink {
    cfg: KafkaConfig,
    producer: std::sync::RwLock<Producer>,
    topic: String,
}

impl KafkaSink {
    /// Connects and checks that `topic` exists.
    pub fn new(cfg: KafkaConfig, topic: &str) -> Result<Self, KafkaBackendError> {
        cfg.partitions(&cfg.browse_consumer()?, topic)?;
        Ok(KafkaSink {
            producer: std::sync::RwLock::new(cfg.producer()?),
            cfg,
            topic: topic.to_string(),
        })
    }
}

#[async_trait]
impl DeadLetterSink for KafkaSink {
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        let producer = self
            .producer
            .read()
            .map_err(|_| SinkError::new(FailureKind::Other, "producer lock poisoned"))?
            .clone();
        match self.cfg.write(&producer, &self.topic, letter).await {
            Ok(id) => Ok(id),
            Err(e) => {
                if is_fatal(&e) {
                    tracing::warn!("the DLQ producer failed for good ({e}); starting a new one");
                    if let (Ok(fresh), Ok(mut slot)) = (self.cfg.producer(), self.producer.write())
                    {
                        *slot = fresh;
                    }
                }
                Err(SinkError::from(e))
            }
        }
    }

    fn describe(&self) -> String {
        format!("topic '{}' on {}", self.topic, self.cfg.brokers)
    }

    fn kafka_topic(&self) -> Option<&str> {
        Some(&self.topic)
    }
}

/// True when the producer that returned `e` can no longer be used.
fn is_fatal(e: &KafkaBackendError) -> bool {
    matches!(e, KafkaBackendError::Kafka { source, .. }
        if source.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Fatal))
}
