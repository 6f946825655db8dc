//! Which DLQ a command works on: flags, or a named profile from the config file that
//! flags override. A profile can mark a DLQ read-only (every write refused by the
//! engine) or production, and map MongoDB field names.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::profile::{Profile, SchemasSetting, default_config_path, load_config};
use super::{UsageError, values};
use crate::backends::kafka::KafkaConfig;
use crate::backends::mongo::{DEFAULT_COLLECTION, MongoConfig};
pub use crate::backends::open::{Clusters, Dlq, Opened, Target};
use crate::engine::read::overview::DlqNames;
use crate::engine::write::audit::AuditLog;

/// Which DLQ to open.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// A profile from the config file (flags given as well override it).
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "MORGUE_PROFILE",
        value_name = "NAME",
        value_parser = values::name,
        help_heading = "DLQ"
    )]
    pub profile: Option<String>,
    /// The config file (default ~/.config/morgue/config.toml).
    #[arg(
        long,
        global = true,
        env = "MORGUE_CONFIG",
        value_name = "PATH",
        help_heading = "DLQ"
    )]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers, e.g. 127.0.0.1:9092 (for a MongoDB DLQ: where replays go).
    #[arg(
        long,
        global = true,
        env = "MORGUE_KAFKA",
        value_name = "BROKERS",
        value_parser = values::brokers,
        help_heading = "DLQ"
    )]
    pub kafka: Option<String>,
    /// The DLQ topic.
    #[arg(
        long,
        short = 't',
        global = true,
        value_name = "TOPIC",
        value_parser = values::topic,
        help_heading = "DLQ"
    )]
    pub topic: Option<String>,
    /// A MongoDB DLQ: connection string.
    #[arg(
        long,
        global = true,
        env = "MORGUE_MONGO",
        value_name = "URI",
        value_parser = values::mongo_uri,
        help_heading = "DLQ"
    )]
    pub mongo: Option<String>,
    /// The MongoDB database.
    #[arg(long, global = true, value_name = "NAME", value_parser = values::database, help_heading = "DLQ")]
    pub db: Option<String>,
    /// The MongoDB collection (default deadletter_messages).
    #[arg(long, global = true, value_name = "NAME", value_parser = values::collection, help_heading = "DLQ")]
    pub collection: Option<String>,
    /// Where a MongoDB field lives, e.g. `value=payload.body` (repeatable).
    #[arg(long = "field", global = true, value_name = "NAME=PATH", value_parser = values::field, help_heading = "DLQ")]
    pub fields: Vec<(String, String)>,
    /// Which topics are DLQs, for `dlqs` and the overview (a glob, repeatable: exactly
    /// what it matches; default: the profile's `dlq_patterns`, else `*.DLT`, `*-dlt`,
    /// `*.dlq`, `*-dlq`, `*_dlq`, `dlq.*`, `dlq_*`, `*deadletter*`, `*dead_letter*`, …, plus the
    /// DLQs Kafka Connect's connectors name).
    #[arg(
        long = "pattern",
        global = true,
        value_name = "GLOB",
        value_parser = values::name,
        help_heading = "DLQ"
    )]
    pub patterns: Vec<String>,
    /// The source consumer group, to show whether it has read a replayed message
    /// (default: the letter's `kafka_dlt-original-consumer-group` header, or the profile's `group`).
    #[arg(
        long,
        global = true,
        value_name = "GROUP",
        value_parser = values::name,
        help_heading = "Reading and filtering"
    )]
    pub group: Option<String>,
    /// How long a replayed letter is watched for failing again before it counts as
    /// `confirmed` (default: the profile's `confirm_after`, else 10m).
    #[arg(long, global = true, value_name = "DURATION", value_parser = values::wait,
        help_heading = "Reading and filtering"
    )]
    pub confirm_after: Option<std::time::Duration>,
    /// Refuse every write (replay, resolve, claim): for looking at production safely.
    #[arg(
        long,
        global = true,
        env = "MORGUE_READ_ONLY",
        help_heading = "Writing"
    )]
    pub read_only: bool,
    /// The local audit log of writes (default ~/.local/state/morgue/audit.jsonl).
    #[arg(
        long,
        global = true,
        env = "MORGUE_AUDIT_LOG",
        value_name = "PATH",
        value_parser = values::log_file,
        help_heading = "Writing"
    )]
    pub audit_log: Option<PathBuf>,
    /// A Confluent-compatible schema registry for framed Avro and JSON Schema payloads
    /// (`http://user:pass@host:8081`; default: the profile's `schema_registry`).
    #[arg(
        long,
        global = true,
        env = "MORGUE_SCHEMA_REGISTRY",
        value_name = "URL",
        value_parser = values::url,
        help_heading = "Schemas"
    )]
    pub schema_registry: Option<String>,
    /// CA certificates (PEM) to trust for an `https` schema registry (default: the
    /// profile's `schema_registry_ca`, else the built-in roots).
    #[arg(long, global = true, value_name = "FILE", value_parser = values::file, help_heading = "Schemas")]
    pub schema_registry_ca: Option<PathBuf>,
    /// A client certificate (PEM) for a schema registry that asks for one, with
    /// `--schema-registry-key` (default: the profile's `schema_registry_cert`).
    #[arg(long, global = true, value_name = "FILE", value_parser = values::file, help_heading = "Schemas")]
    pub schema_registry_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM; default: the profile's `schema_registry_key`).
    #[arg(long, global = true, value_name = "FILE", value_parser = values::file, help_heading = "Schemas")]
    pub schema_registry_key: Option<PathBuf>,
    /// Which schema an edited framed payload is encoded under: `same` (the id it was
    /// written with) or `latest` (its subject's latest version, checked compatible
    /// first; default: the profile's `schema_version`, else same).
    #[arg(long, global = true, value_name = "same|latest", value_parser = ["same", "latest"], help_heading = "Schemas")]
    pub schema_version: Option<String>,
    /// A directory of schemas by registry id (`17.avsc`, `17.json`), read before any
    /// registry, and of the files `--schema-map` names (default: the profile's `schema_dir`).
    #[arg(
        long,
        global = true,
        env = "MORGUE_SCHEMAS",
        value_name = "DIR",
        value_parser = values::schema_dir,
        help_heading = "Schemas"
    )]
    pub schemas: Option<PathBuf>,
    /// A schema for unframed Avro or Protobuf payloads from the source topics a glob
    /// matches (repeatable; before the profile's `[profiles.X.schemas]`):
    /// `trades*=Trade.avsc`, `quotes=Quote.proto:acme.Quote`.
    #[arg(long, global = true, value_name = "GLOB=FILE[:MESSAGE]", value_parser = values::schema_map, help_heading = "Schemas")]
    pub schema_map: Vec<(String, String)>,
    /// librdkafka property passed through as is (repeatable), as with kcat.
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE", value_parser = values::property, help_heading = "Connection")]
    pub property: Vec<(String, String)>,
    /// How long to wait for the broker or server before saying it cannot be reached.
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s",
        value_parser = values::timeout, help_heading = "Connection"
    )]
    pub connect_timeout: std::time::Duration,
    /// Open the Kafka topic even when a MongoDB is given (set by the overview).
    #[arg(skip)]
    pub kafka_only: bool,
}

impl BackendArgs {
    fn profile(&self) -> Result<Profile, UsageError> {
        let Some(name) = &self.profile else {
            return Ok(Profile::default());
        };
        let path = self.config.clone().unwrap_or_else(default_config_path);
        // Every mistake names the flag and the profile, before anything is contacted.
        let bad = |why: String| UsageError(format!("--profile '{name}': {why}"));
        let mut config = load_config(&path).map_err(|e| bad(e.0))?;
        let mut p = config.profiles.remove(name).ok_or_else(|| {
            let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            bad(format!(
                "no profile '{name}' in '{}' (profiles: {})",
                path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        if let Some((_, key, why)) = super::profile_check::check(name, &p).into_iter().next() {
            return Err(bad(format!(
                "config '{}' key '{key}': {why}",
                path.display()
            )));
        }
        super::security::with_secret(name, &mut p)?;
        Ok(p)
    }

    /// The Kafka cluster of the flags and profile (None when neither names one).
    fn kafka_config(&self, p: &Profile) -> Option<KafkaConfig> {
        self.kafka.clone().or(p.kafka.clone()).map(|brokers| {
            let mut cfg = KafkaConfig::new(brokers);
            cfg.connect_timeout = self.connect_timeout;
            // The security keys' properties, then the profile's own, then -X.
            cfg.properties = super::security::properties(p).into_iter().collect();
            cfg.properties.extend(p.properties.clone());
            cfg.properties.extend(self.property.iter().cloned());
            cfg
        })
    }

    /// These arguments for profile `name` (the TUI's `P`): the flags that name a DLQ
    /// or its cluster's schemas are dropped so the profile's apply; `--read-only`,
    /// `--config` and the audit log stay.
    pub fn for_profile(&self, name: &str) -> BackendArgs {
        BackendArgs {
            profile: Some(name.to_string()),
            kafka: None,
            topic: None,
            property: Vec::new(),
            mongo: None,
            db: None,
            collection: None,
            fields: Vec::new(),
            patterns: Vec::new(),
            group: None,
            schema_registry: None,
            schema_registry_ca: None,
            schema_registry_cert: None,
            schema_registry_key: None,
            schema_version: None,
            schemas: None,
            schema_map: Vec::new(),
            kafka_only: false,
            ..self.clone()
        }
    }

    /// Where the decoders find schemas: flags, else the profile. Mapped files are
    /// taken from the schema directory, else from the config file's (profile) or the
    /// working directory (`--schema-map`).
    pub fn schema_source(&self) -> Result<crate::engine::decoders::SchemaSource, UsageError> {
        use crate::engine::decoders::schemas::Mapping;
        let p = self.profile()?;
        let (profile_dir, profile_map) = match p.schemas {
            Some(SchemasSetting::Dir(d)) => (Some(d), BTreeMap::new()),
            Some(SchemasSetting::Map(m)) => (p.schema_dir, m),
            None => (p.schema_dir, BTreeMap::new()),
        };
        let dir = self.schemas.clone().or(profile_dir);
        if let Some(v) = p
            .schema_version
            .as_ref()
            .filter(|v| *v != "same" && *v != "latest")
        {
            return Err(UsageError(format!(
                "profile schema_version '{v}' is neither 'same' nor 'latest'"
            )));
        }
        let config_dir = self.config.clone().unwrap_or_else(default_config_path);
        let config_dir = config_dir.parent().map(std::path::Path::to_path_buf);
        let mut mapped = Vec::new();
        for (glob, file) in &self.schema_map {
            let m = Mapping::parse(glob, file, dir.as_deref()).map_err(UsageError)?;
            if !m.file.is_file() {
                return Err(UsageError(format!(
                    "--schema-map: '{glob}={file}': no file '{}'",
                    m.file.display()
                )));
            }
            mapped.push(m);
        }

        for (glob, file) in &profile_map {
            let base = dir.as_deref().or(config_dir.as_deref());
            mapped.push(Mapping::parse(glob, file, base).map_err(UsageError)?);
        }
        let tls = crate::engine::http::TlsFiles {
            ca: self.schema_registry_ca.clone().or(p.schema_registry_ca),
            cert: self.schema_registry_cert.clone().or(p.schema_registry_cert),
            key: self.schema_registry_key.clone().or(p.schema_registry_key),
        };
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(UsageError(
                "a schema registry client certificate needs both --schema-registry-cert and --schema-registry-key".into(),
            ));
        }
        Ok(crate::engine::decoders::SchemaSource {
            registry: self.schema_registry.clone().or(p.schema_registry),
            dir,
            mapped,
            latest: self.schema_version.as_ref().or(p.schema_version.as_ref())
                == Some(&"latest".to_string()),
            tls,
        })
    }

    /// True when a Kafka cluster or a MongoDB database is named but no DLQ in it (no
    /// topic, no collection): the TUI then opens the overview of their DLQs.
    pub fn wants_overview(&self) -> Result<bool, UsageError> {
        let p = self.profile()?;
        let kafka = self.kafka.is_some() || p.kafka.is_some();
        let mongo = self.mongo.is_some() || p.mongo.is_some();
        let dlq = self.topic.is_some()
            || p.topic.is_some()
            || self.collection.is_some()
            || p.collection.is_some();
        Ok((kafka || mongo) && !dlq)
    }

    /// Where the overview looks and which names it lists: the Kafka cluster's topics and
    /// the MongoDB database's collections (when no collection is named). `--pattern`
    /// lists exactly what it matches; the profile's `dlq_patterns` or the conventions'
    /// names also take the DLQs Kafka Connect's connectors name.
    pub fn clusters(&self) -> Result<Clusters, UsageError> {
        let patterns = &self.patterns;
        let p = self.profile()?;
        let kafka = self.kafka_config(&p);
        let collection = self.collection.is_some() || p.collection.is_some();
        let mongo = match (self.mongo.clone().or(p.mongo.clone()), collection) {
            (Some(uri), false) => {
                let db = self.db.clone().or(p.db.clone()).ok_or_else(|| {
                    UsageError(format!(
                        "--mongo '{}' needs --db NAME",
                        crate::backends::mongo::redact(&uri)
                    ))
                })?;
                let mut fields = p.fields.clone();
                fields.extend(self.fields.iter().cloned());
                let cfg = MongoConfig {
                    uri,
                    db,
                    collection: String::new(),
                    connect_timeout: self.connect_timeout,
                };
                Some((cfg, values::field_map(&fields)?))
            }
            _ => None,
        };
        if kafka.is_none() && mongo.is_none() {
            return Err(UsageError(
                "no cluster given: pass --kafka BROKERS, --mongo URI --db NAME, or --profile NAME"
                    .into(),
            ));
        }
        let globs = if !patterns.is_empty() {
            patterns.to_vec()
        } else if !p.dlq_patterns.is_empty() {
            p.dlq_patterns
        } else {
            crate::engine::read::overview::DEFAULT_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        let connect = patterns.is_empty();
        Ok(Clusters {
            kafka,
            mongo,
            names: DlqNames { globs, connect },
        })
    }

    /// The DLQ and its settings; a usage error names what is missing.
    pub fn target(&self) -> Result<Target, UsageError> {
        let p = self.profile()?;
        let kafka_cfg = self.kafka_config(&p);
        let mongo = self.mongo.clone().or(p.mongo).filter(|_| !self.kafka_only);
        let dlq = match (mongo, kafka_cfg) {
            (Some(uri), kafka) => {
                let db = self.db.clone().or(p.db).ok_or_else(|| {
                    UsageError(format!(
                        "--mongo '{}' needs --db NAME",
                        crate::backends::mongo::redact(&uri)
                    ))
                })?;
                let collection = self
                    .collection
                    .clone()
                    .or(p.collection)
                    .unwrap_or_else(|| DEFAULT_COLLECTION.to_string());
                let mut fields = p.fields;
                fields.extend(self.fields.iter().cloned());
                Dlq::Mongo {
                    cfg: MongoConfig {
                        uri,
                        db,
                        collection,
                        connect_timeout: self.connect_timeout,
                    },
                    map: Box::new(values::field_map(&fields)?),
                    kafka,
                }
            }
            (None, Some(cfg)) => {
                let topic = self.topic.clone().or(p.topic).ok_or_else(|| {
                    UsageError(format!("--kafka '{}' needs --topic TOPIC", cfg.brokers))
                })?;
                Dlq::Kafka { cfg, topic }
            }
            (None, None) => {
                return Err(UsageError(
                    "no DLQ given: pass --kafka BROKERS --topic TOPIC, --mongo URI --db NAME, or --profile NAME".into(),
                ));
            }
        };
        let confirm_after = match (self.confirm_after, &p.confirm_after) {
            (Some(d), _) => d,
            (None, Some(s)) => crate::engine::model::duration::parse_duration(s)
                .map_err(|e| UsageError(format!("profile confirm_after: {e}")))?,
            (None, None) => std::time::Duration::from_millis(
                crate::engine::read::outcome::DEFAULT_CONFIRM_AFTER_MS.unsigned_abs(),
            ),
        };
        Ok(Target {
            decoders: std::sync::Arc::new(crate::engine::decoders::Registry::new(
                self.schema_source()?,
            )),
            profile: self.profile.clone(),
            confirm_after_ms: i64::try_from(confirm_after.as_millis()).unwrap_or(i64::MAX),
            group: self.group.clone().or(p.group),
            redact: match p.redact {
                Some(r) => {
                    crate::engine::export::redact::Redaction::parse(&r)
                        .map_err(|e| UsageError(format!("profile redact: {e}")))?;
                    Some(r)
                }
                None => None,
            },
            dlq,
            read_only: self.read_only || p.read_only,
            production: p.production,
            audit: AuditLog::new(
                self.audit_log
                    .clone()
                    .unwrap_or_else(AuditLog::default_path),
            ),
        })
    }
}
