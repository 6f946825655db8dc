//! The router's Kafka writers: a DLQ topic as its sink, and the retry topics of
//! `--retry-topics`. The DLQ topic must exist (it is never auto-created); missing
//! retry topics are created like their source (Spring does the same). A write counts
//! only once the broker has acknowledged it. An idempotent producer turns fatal when
//! the broker forgets its producer id (a broker restarted without that state); the
//! writer then starts a new producer, so the next retry can succeed.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaBackendError, KafkaConfig, Producer, Quiet};
use crate::engine::model::error::FailureKind;
use crate::engine::route::sink::{DeadLetterSink, RetrySink, SinkError};
use crate::engine::{DeadLetter, LetterId};

/// Writes records to any topic of one cluster with an idempotent producer.
pub struct TopicWriter {
    cfg: KafkaConfig,
    producer: std::sync::RwLock<Producer>,
}

/// Writes dead letters to one Kafka topic.
pub struct KafkaSink {
    out: TopicWriter,
    topic: String,
}

impl KafkaSink {
    /// Connects and checks that `topic` exists.
    pub fn new(cfg: KafkaConfig, topic: &str) -> Result<Self, KafkaBackendError> {
        let out = TopicWriter::new(cfg)?;
        if let Ok(p) = out.producer.read() {
            out.cfg
                .partitions_via(rdkafka::producer::Producer::client(&*p), topic)?;
        }
        Ok(KafkaSink {
            out,
            topic: topic.to_string(),
        })
    }
}

impl TopicWriter {
    /// A writer with its own producer.
    pub fn new(cfg: KafkaConfig) -> Result<Self, KafkaBackendError> {
        Ok(TopicWriter {
            producer: std::sync::RwLock::new(cfg.producer()?),
            cfg,
        })
    }

    /// Writes `letter` to `topic`; its id once acknowledged.
    pub async fn write(&self, topic: &str, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        let producer = self
            .producer
            .read()
            .map_err(|_| SinkError::new(FailureKind::Other, "producer lock poisoned"))?
            .clone();
        match self.cfg.write(&producer, topic, letter).await {
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
}

#[async_trait]
impl DeadLetterSink for KafkaSink {
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        self.out.write(&self.topic, letter).await
    }

    fn describe(&self) -> String {
        format!("topic '{}' on {}", self.topic, self.out.cfg.brokers)
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

#[async_trait]
impl RetrySink for TopicWriter {
    async fn write(&self, topic: &str, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        TopicWriter::write(self, topic, letter).await
    }
}

/// Creates each of `topics` that does not exist, with `partitions` partitions and the
/// broker's default replication; returns the names it created.
pub async fn ensure_topics(
    cfg: &KafkaConfig,
    topics: &[String],
    partitions: i32,
) -> Result<Vec<String>, KafkaBackendError> {
    let (c, names) = (cfg.clone(), topics.to_vec());
    let missing = tokio::task::spawn_blocking(move || {
        let browse = c.browse_consumer()?;
        let mut missing = Vec::new();
        for t in names {
            match c.partitions(&browse, &t) {
                Ok(_) => {}
                Err(KafkaBackendError::TopicNotFound { .. }) => missing.push(t),
                Err(e) => return Err(e),
            }
        }
        Ok(missing)
    })
    .await
    .map_err(|e| KafkaBackendError::Task(e.to_string()))??;
    if missing.is_empty() {
        return Ok(missing);
    }
    let admin: AdminClient<Quiet> = cfg
        .client_config(&[])
        .create_with_context(Quiet)
        .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))?;
    let new: Vec<NewTopic> = (missing.iter())
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let res = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| cfg.error(format!("creating retry topics {missing:?}"), e))?;
    for r in res {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(cfg.error(format!("creating topic '{t}'"), KafkaError::AdminOp(code)));
            }
        }
    }
    Ok(missing)
}
