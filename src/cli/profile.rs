//! The config file's schema: `[profiles.NAME]` tables (a DLQ, its connection and
//! security settings, read-only or production, field and schema mappings, theme and
//! keys), where the file is, and reading it with errors that name the line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::UsageError;

/// One `[profiles.NAME]` table of the config file.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Kafka bootstrap servers.
    pub kafka: Option<String>,
    /// Kafka DLQ topic.
    pub topic: Option<String>,
    /// librdkafka properties (over those the keys below make).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// SASL: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER` (see [`security`](super::security)).
    pub sasl_mechanism: Option<String>,
    /// The SASL user; the password comes from `password_env` or `password_file`.
    pub sasl_username: Option<String>,
    /// TLS to the brokers (implied by any `tls_*` file).
    #[serde(default)]
    pub tls: bool,
    /// CA certificates (PEM) to trust for the brokers.
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM), with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// MongoDB connection string.
    pub mongo: Option<String>,
    /// MongoDB database.
    pub db: Option<String>,
    /// MongoDB collection.
    pub collection: Option<String>,
    /// MongoDB field mapping (only the fields that differ from the default shape).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Refuse every write.
    #[serde(default)]
    pub read_only: bool,
    /// A production DLQ: the TUI asks to type the topic name to confirm a replay.
    #[serde(default)]
    pub production: bool,
    /// Which topics `morgue dlqs` and the overview list (globs; default: the
    /// conventions' names, `*.DLT`, `*-dlq`, `dlq.*`, `deadletter*`, …).
    #[serde(default)]
    pub dlq_patterns: Vec<String>,
    /// The source consumer group (see `--group`).
    pub group: Option<String>,
    /// How long a replayed letter is watched for failing again, e.g. `10m` (see `--confirm-after`).
    pub confirm_after: Option<String>,
    /// The schema registry (see `--schema-registry`).
    pub schema_registry: Option<String>,
    /// `same` or `latest` (see `--schema-version`).
    pub schema_version: Option<String>,
    /// The registry's CA certificates (see `--schema-registry-ca`).
    pub schema_registry_ca: Option<PathBuf>,
    /// The registry client certificate (see `--schema-registry-cert`).
    pub schema_registry_cert: Option<PathBuf>,
    /// The registry client key (see `--schema-registry-key`).
    pub schema_registry_key: Option<PathBuf>,
    /// The schema directory (see `--schemas`).
    pub schema_dir: Option<PathBuf>,
    /// Schemas for unframed payloads by source topic glob (a table:
    /// `"trades*" = "Trade.proto:acme.Trade"`, files relative to `schema_dir`, else to
    /// the config file), or the schema directory (a string, as `schema_dir`).
    pub schemas: Option<SchemasSetting>,
    /// A redaction made mandatory for exports and copies (`pii`, see `export --redact`).
    pub redact: Option<String>,
    /// An environment variable holding the password (MongoDB URI user, `sasl.username`).
    pub password_env: Option<String>,
    /// A file holding the password (its first line), as mounted secrets are.
    pub password_file: Option<PathBuf>,
}

/// A profile's `schemas`: a directory, or schemas mapped to source topic globs.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum SchemasSetting {
    /// The schema directory (as `schema_dir`).
    Dir(PathBuf),
    /// `"GLOB" = "FILE[:MESSAGE]"`.
    Map(BTreeMap<String, String>),
}

/// The config file: profiles by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The TUI's colours: `"dark"`, `"light"`, or a `[theme]` table (see `assets/themes/`).
    pub theme: Option<crate::tui::theme::ThemeSetting>,
    /// Key overrides by action (see `assets/keymap.toml`).
    #[serde(default)]
    pub keys: BTreeMap<String, crate::tui::keymap::KeyList>,
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// `$XDG_CONFIG_HOME/morgue/config.toml`, else `~/.config/morgue/config.toml`.
pub fn default_config_path() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("morgue")
        .join("config.toml")
}

/// Reads and parses a config file; the error names the file and the line.
pub fn load_config(path: &std::path::Path) -> Result<Config, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read config '{}': {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        let msg = e.message().replace('\n', " ");
        UsageError(format!("config '{}' line {line}: {msg}", path.display()))
    })
}
