//! A DLQ topic as the router's sink: the topic must exist (it is never auto-created),
//! and a write counts only once the broker has acknowledged it.

use async_trait::async_trait;

use super::{KafkaBackendError, KafkaConfig, Producer};
use crate::engine::sink::{DeadLetterSink, SinkError};
use crate::engine::{DeadLetter, LetterId};

/// Writes dead letters to one Kafka topic with an idempotent producer.
pub struct KafkaSink {
    cfg: KafkaConfig,
    producer: Producer,
    topic: String,
}

impl KafkaSink {
    /// Connects and checks that `topic` exists.
    pub fn new(cfg: KafkaConfig, topic: &str) -> Result<Self, KafkaBackendError> {
        cfg.partitions(&cfg.browse_consumer()?, topic)?;
        Ok(KafkaSink {
            producer: cfg.producer()?,
            cfg,
            topic: topic.to_string(),
        })
    }
}

#[async_trait]
impl DeadLetterSink for KafkaSink {
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        self.cfg
            .write(&self.producer, &self.topic, letter)
            .await
            .map_err(|e| SinkError(e.to_string()))
    }

    fn describe(&self) -> String {
        format!("topic '{}' on {}", self.topic, self.cfg.brokers)
    }
}
