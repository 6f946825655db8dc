//! Kafka DLQ topics through rdkafka (bundled librdkafka): connect with a check that
//! the topic exists, write a dead letter and wait for the broker's ack, read a topic
//! partition by partition without joining a consumer group or committing anything;
//! the ledger topic and the replay target, both written under shared, fenced
//! `transactional.id`s (`ledger`, `target`, `txn`).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use thiserror::Error;

use crate::engine::model::error::{BackendError, FailureKind};
use crate::engine::model::ledger::LedgerError;
use crate::engine::{DeadLetter, LetterId};

mod checkpoint;
mod checkpoint_view;
mod checkpoint_write;
pub mod connect;
pub mod ledger;
mod ledger_codec;
mod ledger_tail;
mod ledger_topics;
mod ledger_view;
pub mod overview;
pub mod partitioner;
mod read;
pub mod recheck;
pub mod route;
mod route_state;
pub mod security;
mod seek;
pub mod sink;
pub mod source;
mod spill;
pub mod target;
pub mod txn;

/// How long a metadata or watermark request may take before the broker counts as unreachable.
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka backend failure, quoting the topic and brokers involved.
#[derive(Debug, Error)]
pub enum KafkaBackendError {
    /// The topic is not in the cluster's metadata.
    #[error("topic '{topic}' not found on {brokers}")]
    TopicNotFound {
        /// Topic asked for.
        topic: String,
        /// Bootstrap servers asked.
        brokers: String,
    },
    /// The cluster did not answer in time or refused the connection.
    #[error("cannot reach Kafka at '{brokers}': {source}")]
    Unreachable {
        /// Bootstrap servers asked.
        brokers: String,
        /// What librdkafka said.
        source: Box<KafkaError>,
    },
    /// A letter id that is not (or no longer) in the topic.
    #[error("no letter {id} in topic '{topic}': {why}")]
    NoSuchLetter {
        /// The id asked for.
        id: String,
        /// The DLQ topic.
        topic: String,
        /// Why not.
        why: String,
    },
    /// A background task failed (a panic or cancellation), with what it said.
    #[error("background task failed: {0}")]
    Task(String),
    /// A librdkafka property that it rejected (from `-X key=value`).
    #[error("bad Kafka property: {0}")]
    BadProperty(Box<KafkaError>),
    /// Any other broker or client error, with what was being done.
    #[error("{what} on {brokers}: {source}")]
    Kafka {
        /// What morgue was doing.
        what: String,
        /// Bootstrap servers.
        brokers: String,
        /// What librdkafka said.
        source: Box<KafkaError>,
    },
}

impl KafkaBackendError {
    /// What kind of failure this is, for the engine's typed errors.
    pub fn kind(&self) -> FailureKind {
        use RDKafkaErrorCode as C;
        match self {
            KafkaBackendError::TopicNotFound { .. } | KafkaBackendError::NoSuchLetter { .. } => {
                FailureKind::NotFound
            }
            KafkaBackendError::Unreachable { .. } => FailureKind::Unreachable,
            KafkaBackendError::BadProperty(_) => FailureKind::Refused,
            KafkaBackendError::Task(_) => FailureKind::Other,
            KafkaBackendError::Kafka { source, .. } => match source.rdkafka_error_code() {
                Some(
                    C::TopicAuthorizationFailed
                    | C::GroupAuthorizationFailed
                    | C::ClusterAuthorizationFailed
                    | C::TransactionalIdAuthorizationFailed
                    | C::SaslAuthenticationFailed,
                ) => FailureKind::Refused,
                Some(C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition) => {
                    FailureKind::NotFound
                }
                Some(C::MessageSizeTooLarge | C::InvalidMessageSize | C::InvalidRecord) => {
                    FailureKind::BadData
                }
                Some(
                    C::AllBrokersDown
                    | C::BrokerTransportFailure
                    | C::OperationTimedOut
                    | C::RequestTimedOut
                    | C::MessageTimedOut
                    | C::Resolve,
                ) => FailureKind::Unreachable,
                _ => FailureKind::Other,
            },
        }
    }
}

impl From<KafkaBackendError> for LedgerError {
    fn from(e: KafkaBackendError) -> Self {
        let why = e.to_string();
        match e.kind() {
            FailureKind::Unreachable => LedgerError::Unreachable(why),
            FailureKind::Refused => LedgerError::Refused(why),
            _ => LedgerError::Other(why),
        }
    }
}

impl From<KafkaBackendError> for BackendError {
    fn from(e: KafkaBackendError) -> Self {
        BackendError::caused(e.kind(), e.to_string(), e)
    }
}

/// librdkafka's callbacks routed to `tracing` under the target `librdkafka` (the log
/// file by default; see `cli::init_logging`), with the end-of-partition notices that
/// browsing produces left out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::warn!(target: "librdkafka", "librdkafka {fac}: {message}")
            }
            _ => tracing::debug!(target: "librdkafka", "librdkafka {fac}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
        );
        if !eof {
            tracing::warn!(target: "librdkafka", "librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for Quiet {}

/// A consumer for reading DLQs by hand-assigned partitions.
pub type Browser = BaseConsumer<Quiet>;
/// An idempotent producer for dead letters, replays and the ledger.
pub type Producer = FutureProducer<Quiet>;

/// Where a Kafka cluster is and how to talk to it.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// librdkafka properties passed through as given (`-X key=value`), applied last.
    pub properties: Vec<(String, String)>,
    /// How long the first contact (metadata, watermarks) may take before the cluster
    /// counts as unreachable (`--connect-timeout`, default 10 s).
    pub connect_timeout: Duration,
}

impl KafkaConfig {
    /// A config for `brokers` with no extra properties.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            properties: Vec::new(),
            connect_timeout: METADATA_TIMEOUT,
        }
    }

    /// The rdkafka client config: bootstrap servers, no topic auto-creation, then
    /// `defaults`, then the user's properties (which win). `reconnect.backoff.ms` is
    /// 10 (librdkafka: 100), because librdkafka waits half of it (at least 11 ms)
    /// before connecting to a partition leader: 50 ms of every command's start-up.
    /// Reconnects to a broker that is down still back off, doubling up to 10 s.
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("allow.auto.create.topics", "false")
            .set("reconnect.backoff.ms", "10")
            .set("log_level", "3");
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    pub(crate) fn error(&self, what: impl Into<String>, source: KafkaError) -> KafkaBackendError {
        KafkaBackendError::Kafka {
            what: what.into(),
            brokers: self.brokers.clone(),
            source: Box::new(source),
        }
    }

    /// A consumer for browsing: partitions are assigned by hand and nothing is committed,
    /// so the team's own DLQ consumer group keeps its offsets.
    pub fn browse_consumer(&self) -> Result<Browser, KafkaBackendError> {
        self.client_config(&[
            ("group.id", "morgue-browse"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "true"),
            ("isolation.level", "read_committed"),
            // Hands over new letters quickly when following.
            ("fetch.wait.max.ms", "20"),
            // Prefetches 16 MB at most, in responses of 8 MB (librdkafka's defaults are
            // 64 and 50), and fetches again soon after the reader has taken from a full queue.
            ("queued.max.messages.kbytes", "16384"),
            ("fetch.max.bytes", "8388608"),
            ("fetch.queue.backoff.ms", "20"),
            // And fetches again only when fewer than 10,000 fetched letters (all its
            // partitions together) wait to be read. With librdkafka's default, 100,000,
            // a reader that held a partition's whole rest kept fetching that partition's
            // end while it worked through it: a broker that answers an empty fetch at
            // once (noida-db) then spins with it. Below the threshold (the end of a
            // read, a caught-up follower) it still does; a real Kafka waits
            // `fetch.wait.max.ms`. 10,000 keeps ~100 ms of small letters in hand.
            ("queued.min.messages", "10000"),
        ])
        .create_with_context(Quiet)
        .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))
    }

    /// An idempotent producer that waits for all in-sync replicas.
    pub fn producer(&self) -> Result<Producer, KafkaBackendError> {
        self.client_config(&[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("message.timeout.ms", "30000"),
        ])
        .create_with_context(Quiet)
        .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))
    }

    /// The partition ids of `topic`, or a clear error when it does not exist or the cluster is down.
    pub fn partitions(
        &self,
        consumer: &Browser,
        topic: &str,
    ) -> Result<Vec<i32>, KafkaBackendError> {
        self.partitions_via(consumer.client(), topic)
    }

    /// [`Self::partitions`] asked through any client already open (a consumer or a
    /// producer): no client is started and closed for the question.
    pub fn partitions_via<C: ClientContext>(
        &self,
        client: &rdkafka::client::Client<C>,
        topic: &str,
    ) -> Result<Vec<i32>, KafkaBackendError> {
        let md = client
            .fetch_metadata(Some(topic), self.connect_timeout)
            .map_err(|source| KafkaBackendError::Unreachable {
                brokers: self.brokers.clone(),
                source: Box::new(source),
            })?;
        let not_found = || KafkaBackendError::TopicNotFound {
            topic: topic.to_string(),
            brokers: self.brokers.clone(),
        };
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(not_found)?;
        match t.error() {
            Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
                return Err(not_found());
            }
            Some(e) => {
                return Err(self.error(
                    format!("metadata for topic '{topic}'"),
                    KafkaError::MetadataFetch(e.into()),
                ));
            }
            None => {}
        }
        if t.partitions().is_empty() {
            return Err(not_found());
        }
        Ok(t.partitions().iter().map(|p| p.id()).collect())
    }

    /// The cluster's id, as the brokers report it (None from a cluster that has none).
    pub fn cluster_id(&self) -> Result<Option<String>, KafkaBackendError> {
        let c = self.browse_consumer()?;
        Ok(c.client().fetch_cluster_id(self.connect_timeout))
    }

    /// Low and high watermark of every partition of `topic`, in partition order.
    pub fn watermarks(
        &self,
        consumer: &Browser,
        topic: &str,
    ) -> Result<Vec<(i32, i64, i64)>, KafkaBackendError> {
        let mut out = Vec::new();
        for p in self.partitions(consumer, topic)? {
            let (lo, hi) = consumer
                .fetch_watermarks(topic, p, self.connect_timeout)
                .map_err(|e| self.error(format!("watermarks of '{topic}' partition {p}"), e))?;
            out.push((p, lo, hi));
        }
        Ok(out)
    }

    /// Writes `letter` to `topic` with its key, value and headers as they are; returns
    /// its id once the broker has acknowledged it.
    pub async fn write(
        &self,
        producer: &Producer,
        topic: &str,
        letter: &DeadLetter,
    ) -> Result<LetterId, KafkaBackendError> {
        let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len());
        for h in letter.headers.iter() {
            headers = headers.insert(KHeader {
                key: &h.name,
                value: h.value.as_deref(),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(k) = &letter.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &letter.value {
            record = record.payload(v.as_slice());
        }
        if let Some(ts) = letter.dlq_timestamp_ms {
            record = record.timestamp(ts);
        }
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(d) => Ok(LetterId::Kafka {
                partition: d.partition,
                offset: d.offset,
            }),
            Err((e, _)) => Err(self.error(format!("writing to topic '{topic}'"), e)),
        }
    }
}

pub use read::letter_from_message;
