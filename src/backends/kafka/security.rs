//! Kafka security as librdkafka properties, as kafkactl's `sasl:` and `tls:` blocks say
//! it: SASL and TLS settings in, `security.protocol`, `sasl.*` and `ssl.*` out, and
//! the mistakes in them named. The command line fills [`KafkaSecurity`] from a profile
//! (`cli/security.rs`); the properties a user sets themselves are applied after these.
//!
//! | setting | librdkafka |
//! |---|---|
//! | `sasl_mechanism` | `sasl.mechanisms`, and `security.protocol` `SASL_PLAINTEXT` (`SASL_SSL` with TLS) |
//! | `sasl_username` | `sasl.username` |
//! | `tls`, or any `tls_*` | `security.protocol` `SSL` (`SASL_SSL` with SASL) |
//! | `tls_ca`, `tls_cert`, `tls_key` | `ssl.ca.location`, `ssl.certificate.location`, `ssl.key.location` |

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The SASL mechanisms librdkafka offers here.
pub const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// SASL and TLS settings for a Kafka cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaSecurity {
    /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or `OAUTHBEARER`.
    pub sasl_mechanism: Option<String>,
    /// The SASL user.
    pub sasl_username: Option<String>,
    /// The SASL user is set as a property (`sasl.username`) instead.
    pub username_property: bool,
    /// TLS without any file of its own.
    pub tls: bool,
    /// The CA that signed the brokers' certificates.
    pub tls_ca: Option<PathBuf>,
    /// The client certificate.
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's key.
    pub tls_key: Option<PathBuf>,
}

impl KafkaSecurity {
    /// The librdkafka properties these settings stand for (none when there are none).
    pub fn properties(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let tls =
            self.tls || self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some();
        let protocol = match (&self.sasl_mechanism, tls) {
            (Some(_), true) => Some("SASL_SSL"),
            (Some(_), false) => Some("SASL_PLAINTEXT"),
            (None, true) => Some("SSL"),
            (None, false) => None,
        };
        let mut set = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.insert(k.to_string(), v);
            }
        };
        set("security.protocol", protocol.map(str::to_string));
        set("sasl.mechanisms", self.sasl_mechanism.clone());
        set("sasl.username", self.sasl_username.clone());
        let path = |f: &Option<PathBuf>| f.as_ref().map(|f| f.display().to_string());
        set("ssl.ca.location", path(&self.tls_ca));
        set("ssl.certificate.location", path(&self.tls_cert));
        set("ssl.key.location", path(&self.tls_key));
        out
    }

    /// The mistakes in these settings: (setting, why). The files are not opened here
    /// (settings may be checked away from the host that has them); librdkafka names a
    /// missing one when it connects.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(m) = &self.sasl_mechanism {
            if !MECHANISMS.contains(&m.as_str()) {
                out.push((
                    "sasl_mechanism",
                    format!("'{m}' is not one of {}", MECHANISMS.join(", ")),
                ));
            } else if m != "OAUTHBEARER" && self.sasl_username.is_none() && !self.username_property
            {
                out.push(("sasl_mechanism", format!("{m} needs sasl_username")));
            }
        } else if self.sasl_username.is_some() {
            out.push(("sasl_username", "a SASL user needs sasl_mechanism".into()));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            let key = if self.tls_cert.is_some() {
                "tls_cert"
            } else {
                "tls_key"
            };
            out.push((
                key,
                "a client certificate needs both tls_cert and tls_key".into(),
            ));
        }
        out
    }
}
