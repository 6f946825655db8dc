//! Kafka security and secrets from a profile's keys, as kafkactl's `sasl:` and `tls:`
//! blocks: the profile's `sasl_*` and `tls*` keys become the backend's
//! [`KafkaSecurity`] (whose table says which librdkafka property each makes), and
//! `sasl.password` comes from `password_env` / `password_file`. The profile's own
//! `properties` and `-X` are applied after these, so either can still say anything
//! librdkafka takes.
//!
//! `OAUTHBEARER` takes its token settings as properties (`sasl.oauthbearer.config`, or
//! an OIDC `sasl.oauthbearer.method`); OIDC needs a librdkafka built with curl, which
//! this one is not (`morgue --version` lists the features).

use std::collections::BTreeMap;

use super::UsageError;
use super::profile::Profile;
use crate::backends::kafka::security::KafkaSecurity;

/// The SASL mechanisms librdkafka offers here.
pub use crate::backends::kafka::security::MECHANISMS;

/// `p`'s security keys as the Kafka backend's settings.
pub fn kafka_security(p: &Profile) -> KafkaSecurity {
    KafkaSecurity {
        sasl_mechanism: p.sasl_mechanism.clone(),
        sasl_username: p.sasl_username.clone(),
        username_property: p.properties.contains_key("sasl.username"),
        tls: p.tls,
        tls_ca: p.tls_ca.clone(),
        tls_cert: p.tls_cert.clone(),
        tls_key: p.tls_key.clone(),
    }
}

/// The librdkafka properties of `p`'s security keys (none when it has none).
pub fn properties(p: &Profile) -> BTreeMap<String, String> {
    kafka_security(p).properties()
}

/// Puts the profile's secret (`password_env`, `password_file`) where it is needed: the
/// MongoDB URI's and the schema registry URL's password (when they name a user without
/// one) and librdkafka's
/// `sasl.password` (when `sasl.username` is set without it). The secret itself is never
/// printed: errors name the variable or the file.
pub(super) fn with_secret(name: &str, p: &mut Profile) -> Result<(), UsageError> {
    let secret = match (&p.password_env, &p.password_file) {
        (Some(var), _) => std::env::var(var).map_err(|_| {
            UsageError(format!("profile '{name}': password_env '{var}' is not set"))
        })?,
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| {
                UsageError(format!(
                    "profile '{name}': password_file '{}': {}",
                    file.display(),
                    e.kind()
                ))
            })?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        (None, None) => return Ok(()),
    };
    use crate::engine::model::urls;
    if let Some(uri) = p
        .mongo
        .as_deref()
        .and_then(|u| urls::conn_with_password(u, &secret))
    {
        p.mongo = Some(uri);
    }
    let registry = p.schema_registry.as_deref();
    if let Some(url) = registry.and_then(|u| urls::http_with_password(u, &secret)) {
        p.schema_registry = Some(url);
    }
    let sasl_user = p.properties.contains_key("sasl.username") || p.sasl_username.is_some();
    if sasl_user && !p.properties.contains_key("sasl.password") {
        p.properties.insert("sasl.password".into(), secret);
    }
    Ok(())
}

/// The mistakes in `p`'s security keys: (key, why).
pub fn check(p: &Profile) -> Vec<(&'static str, String)> {
    kafka_security(p).check()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(p: &Profile) -> Vec<(String, String)> {
        properties(p).into_iter().collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = v
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn each_mechanism_and_tls_make_exactly_their_properties() {
        assert!(props(&Profile::default()).is_empty());
        for m in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let p = Profile {
                sasl_mechanism: Some(m.into()),
                sasl_username: Some("oncall".into()),
                ..Profile::default()
            };
            assert_eq!(
                props(&p),
                pairs(&[
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanisms", m),
                    ("sasl.username", "oncall"),
                ])
            );
        }
        let oauth = Profile {
            sasl_mechanism: Some("OAUTHBEARER".into()),
            tls: true,
            ..Profile::default()
        };
        assert_eq!(
            props(&oauth),
            pairs(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanisms", "OAUTHBEARER")
            ])
        );
        let mtls = Profile {
            tls_ca: Some("/etc/ca.pem".into()),
            tls_cert: Some("/etc/me.pem".into()),
            tls_key: Some("/etc/me.key".into()),
            ..Profile::default()
        };
        assert_eq!(
            props(&mtls),
            pairs(&[
                ("security.protocol", "SSL"),
                ("ssl.ca.location", "/etc/ca.pem"),
                ("ssl.certificate.location", "/etc/me.pem"),
                ("ssl.key.location", "/etc/me.key"),
            ])
        );
        let both = Profile {
            sasl_mechanism: Some("SCRAM-SHA-512".into()),
            sasl_username: Some("oncall".into()),
            tls_ca: Some("/etc/ca.pem".into()),
            ..Profile::default()
        };
        assert_eq!(properties(&both)["security.protocol"], "SASL_SSL");
    }

    #[test]
    fn the_secret_goes_to_the_uri_and_sasl_and_errors_name_only_the_source() {
        let dir = std::env::temp_dir().join(format!("morgue-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "p@ss word\n").unwrap();
        let mut p = Profile {
            mongo: Some("mongodb://ops@db:27017/?authSource=admin".into()),
            password_file: Some(dir.join("pw")),
            ..Profile::default()
        };
        p.properties.insert("sasl.username".into(), "ops".into());
        with_secret("x", &mut p).unwrap();
        assert_eq!(
            p.mongo.as_deref(),
            Some("mongodb://ops:p%40ss%20word@db:27017/?authSource=admin")
        );
        assert_eq!(p.properties["sasl.password"], "p@ss word");
        let mut missing = Profile {
            password_file: Some(dir.join("nope")),
            ..Profile::default()
        };
        let e = with_secret("x", &mut missing).unwrap_err().0;
        assert!(
            e.contains("password_file") && e.contains("nope") && !e.contains("p@ss"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_secret_goes_only_to_a_user_without_a_password() {
        let dir = std::env::temp_dir().join(format!("morgue-secret2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "p@ss:w/rd\n").unwrap();
        let mut p = Profile {
            mongo: Some("mongodb://db-1,db-2/?appName=a@b".into()),
            schema_registry: Some("https://o%40ps@reg:8081".into()),
            password_file: Some(dir.join("pw")),
            ..Profile::default()
        };
        with_secret("x", &mut p).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // An '@' among the options is no user.
        assert_eq!(p.mongo.as_deref(), Some("mongodb://db-1,db-2/?appName=a@b"));
        let url =
            crate::engine::model::urls::parse_http(p.schema_registry.as_deref().unwrap()).unwrap();
        let auth = crate::engine::model::urls::basic_auth(&url).unwrap();
        let token = auth.strip_prefix("Basic ").unwrap();
        use base64::Engine as _;
        let creds = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        assert_eq!(String::from_utf8(creds).unwrap(), "o@ps:p@ss:w/rd");
    }

    #[test]
    fn mistakes_are_named() {
        let bad = Profile {
            sasl_mechanism: Some("GSSAPI".into()),
            tls_cert: Some("/nonexistent/me.pem".into()),
            ..Profile::default()
        };
        let got: Vec<String> = check(&bad)
            .into_iter()
            .map(|(k, w)| format!("{k}: {w}"))
            .collect();
        assert_eq!(
            got,
            vec![
                "sasl_mechanism: 'GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER",
                "tls_cert: a client certificate needs both tls_cert and tls_key",
            ]
        );
        let no_user = Profile {
            sasl_mechanism: Some("PLAIN".into()),
            ..Profile::default()
        };
        assert_eq!(
            check(&no_user),
            vec![("sasl_mechanism", "PLAIN needs sasl_username".to_string())]
        );
    }
}

#[cfg(test)]
mod through_the_profile {
    use clap::Parser as _;

    use crate::backends::open::Dlq;

    /// The librdkafka properties the command line makes of a profile, in the order set.
    fn resolved(config: &str, extra: &[&str]) -> Vec<(String, String)> {
        let dir = std::env::temp_dir().join(format!("morgue-sec-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, config).unwrap();
        let mut args = vec![
            "morgue",
            "--config",
            path.to_str().unwrap(),
            "--profile",
            "p",
        ];
        args.extend(extra);
        let cli = crate::cli::Cli::try_parse_from(args).unwrap();
        let target = cli.backend.target().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        match target.dlq {
            Dlq::Kafka { cfg, .. } => cfg.properties,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_secret_the_keys_the_profile_properties_and_x_apply_in_that_order() {
        // The secret comes from a variable cargo sets for every test run (no test
        // changes the environment: that would need `unsafe` and race other tests).
        let secret = std::env::var("CARGO_PKG_NAME").expect("cargo sets CARGO_PKG_NAME");
        let got = resolved(
            "[profiles.p]\nkafka = \"b:9093\"\ntopic = \"t\"\nsasl_mechanism = \"SCRAM-SHA-512\"\n\
             sasl_username = \"oncall\"\npassword_env = \"CARGO_PKG_NAME\"\ntls = true\n\
             [profiles.p.properties]\n\"ssl.endpoint.identification.algorithm\" = \"none\"\n",
            &["-X", "sasl.username=breakglass"],
        );
        let last = |k: &str| {
            got.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(last("security.protocol"), Some("SASL_SSL"));
        assert_eq!(last("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(last("sasl.password"), Some(secret.as_str()));
        assert_eq!(last("ssl.endpoint.identification.algorithm"), Some("none"));
        assert_eq!(last("sasl.username"), Some("breakglass"), "-X comes last");
    }
}
