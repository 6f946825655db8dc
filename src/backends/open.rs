//! A DLQ resolved to where it is ([`Dlq`]) and what may be done with it ([`Target`]),
//! opened into a source, a ledger and a replay target ([`Opened`]) for any front end;
//! and the places whose DLQs the overview lists ([`Clusters`]). The CLI resolves
//! these from flags and profiles (`cli::backend`).

use std::sync::Arc;

use super::kafka::KafkaConfig;
use super::kafka::ledger::KafkaLedger;
use super::kafka::source::KafkaSource;
use super::kafka::target::KafkaTarget;
use super::mongo::MongoConfig;
use super::mongo::dlq::MongoDlq;
use super::mongo::doc::FieldMap;
use crate::engine::model::ledger::LedgerStore;
use crate::engine::read::overview::{DlqNames, DlqSummary};
use crate::engine::read::source::DeadLetterSource;
use crate::engine::write::audit::AuditLog;
use crate::engine::write::plan::ReplayPolicy;
use crate::engine::write::{ReplayTarget, Writer};

/// A DLQ, resolved from flags and profile.
#[derive(Debug, Clone)]
pub enum Dlq {
    /// A Kafka topic.
    Kafka {
        /// The cluster.
        cfg: KafkaConfig,
        /// The DLQ topic.
        topic: String,
    },
    /// A MongoDB collection.
    Mongo {
        /// Where it is.
        cfg: MongoConfig,
        /// How its documents are shaped.
        map: Box<FieldMap>,
        /// Where its letters are replayed.
        kafka: Option<KafkaConfig>,
    },
    /// An exported file (`morgue open`): read-only.
    File {
        /// The file.
        path: std::path::PathBuf,
    },
}

/// Everything a command needs to know about its DLQ.
#[derive(Debug, Clone)]
pub struct Target {
    /// The DLQ.
    pub dlq: Dlq,
    /// Writes are refused.
    pub read_only: bool,
    /// A production DLQ.
    pub production: bool,
    /// Where writes are audited.
    pub audit: AuditLog,
    /// The source consumer group given by flag or profile.
    pub group: Option<String>,
    /// How long a replayed letter is watched for failing again, ms.
    pub confirm_after_ms: i64,
    /// A redaction that every letter leaving through this target must get (profile
    /// `redact`): exports and the TUI's copy.
    pub redact: Option<String>,
    /// The profile it was made from (shown as current in the TUI's profile picker).
    pub profile: Option<String>,
    /// The decoders, with the schemas of the flags or profile (a registry of its own
    /// cluster): what reads this DLQ's payloads, for filters, display and export.
    pub decoders: Arc<crate::engine::decoders::Registry>,
}

/// A DLQ opened for reading and for recording state.
pub struct Opened {
    /// Reads letters.
    pub source: Arc<dyn DeadLetterSource>,
    /// Keeps state.
    pub ledger: Arc<dyn LedgerStore>,
    /// Where replays go (None: a MongoDB DLQ without `--kafka`).
    pub target: Option<Arc<dyn ReplayTarget>>,
    /// The collection, for MongoDB-only operations (claim/release).
    pub mongo: Option<MongoDlq>,
}

/// What the overview lists: a Kafka cluster's DLQ topics and a MongoDB database's DLQ
/// collections, by name.
#[derive(Debug, Clone)]
pub struct Clusters {
    /// The Kafka cluster, when given.
    pub kafka: Option<KafkaConfig>,
    /// The MongoDB database (its `collection` unused) and the field map, when given
    /// without a collection.
    pub mongo: Option<(MongoConfig, FieldMap)>,
    /// Which names are DLQs.
    pub names: DlqNames,
}

impl Clusters {
    /// `kafka://BROKERS`, `mongodb://HOST/DB`, or both joined by ` + `.
    pub fn label(&self) -> String {
        let kafka = self
            .kafka
            .as_ref()
            .map(|k| format!("kafka://{}", k.brokers));
        let mongo = self.mongo.as_ref().map(|(m, _)| {
            let uri = crate::backends::mongo::redact(&m.uri);
            let base = uri
                .split('?')
                .next()
                .unwrap_or(&uri)
                .trim_end_matches('/')
                .to_string();
            format!("{base}/{}", m.db)
        });
        [kafka, mongo]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" + ")
    }

    /// Every DLQ of both, Kafka topics first, each by name.
    pub async fn overview(&self) -> anyhow::Result<Vec<DlqSummary>> {
        let mut out = match &self.kafka {
            Some(k) => crate::backends::kafka::overview::overview(k, &self.names).await?,
            None => Vec::new(),
        };
        if let Some((m, map)) = &self.mongo {
            out.extend(crate::backends::mongo::overview::overview(m, map, &self.names).await?);
        }
        Ok(out)
    }
}

impl Target {
    /// The one writer for this DLQ's letters: the policy of this target, the ledger and
    /// replay target of `opened`, this target's audit log.
    pub fn writer(&self, opened: &Opened, keep_headers: Vec<String>) -> Writer {
        let policy = ReplayPolicy {
            read_only: self.read_only,
            dlq_topic: self.dlq.topic(),
            keep_headers,
        };
        Writer::new(
            policy,
            opened.ledger.clone(),
            opened.target.clone(),
            self.audit.clone(),
        )
        .with_decoders(self.decoders.clone())
    }
}

impl Dlq {
    /// The DLQ topic (Kafka) or an empty name (MongoDB), for the replay refusals.
    pub fn topic(&self) -> String {
        match self {
            Dlq::Kafka { topic, .. } => topic.clone(),
            Dlq::Mongo { .. } | Dlq::File { .. } => String::new(),
        }
    }

    /// The cluster replays go to: the DLQ's own, or `--kafka` for a MongoDB DLQ.
    pub fn replay_cluster(&self) -> Result<KafkaConfig, String> {
        match self {
            Dlq::Kafka { cfg, .. } => Ok(cfg.clone()),
            Dlq::Mongo { kafka: Some(cfg), .. } => Ok(cfg.clone()),
            Dlq::File { .. } => Err("an exported file is read-only: import it to replay".into()),
            Dlq::Mongo { .. } => Err(
                "replaying MongoDB letters needs --kafka BROKERS: the cluster of their source topics".into(),
            ),
        }
    }

    /// Connects: a source to read letters and a ledger to record state. A Kafka topic
    /// or MongoDB collection that does not exist is an error (naming it and where it
    /// was looked for), and is not created.
    pub async fn open(&self) -> anyhow::Result<Opened> {
        self.open_with(true).await
    }

    /// Connects as [`Dlq::open`] does, except that a MongoDB collection that does not
    /// exist yet is no error: the first write creates it (`import`).
    pub async fn open_to_fill(&self) -> anyhow::Result<Opened> {
        self.open_with(false).await
    }

    async fn open_with(&self, existing: bool) -> anyhow::Result<Opened> {
        match self {
            Dlq::Kafka { cfg, topic } => {
                // The topic is checked (a clear error when missing) while the
                // ledger's reader connects and reads: each costs a round of connections.
                let ledger = Arc::new(KafkaLedger::new(cfg.clone(), topic));
                let (source, read) = tokio::join!(
                    KafkaSource::open(cfg.clone(), topic, ledger.clone()),
                    ledger.catch_up()
                );
                let source = source?;
                // A ledger that cannot be read now is reported by the first use.
                if let Err(e) = read {
                    tracing::debug!("ledger of '{topic}' not read at open: {e}");
                }
                Ok(Opened {
                    source: Arc::new(source),
                    ledger,
                    target: Some(Arc::new(KafkaTarget::new(cfg.clone(), topic))),
                    mongo: None,
                })
            }
            Dlq::File { path } => {
                let file = super::file::FileDlq::open(path).map_err(anyhow::Error::msg)?;
                Ok(Opened {
                    source: Arc::new(file.clone()),
                    ledger: Arc::new(file),
                    target: None,
                    mongo: None,
                })
            }
            Dlq::Mongo { cfg, map, kafka } => {
                let dlq = if existing {
                    MongoDlq::open_existing(cfg.clone(), (**map).clone()).await?
                } else {
                    MongoDlq::open(cfg.clone(), (**map).clone()).await?
                };
                let name = format!("mongo.{}.{}", cfg.db, cfg.collection);
                Ok(Opened {
                    source: Arc::new(dlq.clone()),
                    ledger: Arc::new(dlq.clone()),
                    target: kafka.as_ref().map(|k| {
                        Arc::new(KafkaTarget::new(k.clone(), &name)) as Arc<dyn ReplayTarget>
                    }),
                    mongo: Some(dlq),
                })
            }
        }
    }
}
