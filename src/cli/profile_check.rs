//! A profile's values checked as the flags they stand for are: a config file with a
//! mistake is refused (or, by `morgue config check`, listed) with the profile, the key
//! and why.

use super::profile::Profile;

/// The mistakes in one profile's values: (profile, key, why). The DLQ's names and
/// addresses follow the rules of the flags that stand for them (`values`).
pub fn check(name: &str, p: &Profile) -> Vec<(String, &'static str, String)> {
    let mut out = Vec::new();
    let mut bad = |key, why: String| out.push((name.to_string(), key, why));
    type Rule = fn(&str) -> Result<String, String>;
    let named: [(&'static str, &Option<String>, Rule); 7] = [
        ("kafka", &p.kafka, super::values::brokers),
        ("topic", &p.topic, super::values::topic),
        ("mongo", &p.mongo, super::values::mongo_uri),
        ("db", &p.db, super::values::database),
        ("collection", &p.collection, super::values::collection),
        ("group", &p.group, super::values::name),
        ("schema_registry", &p.schema_registry, super::values::url),
    ];
    for (key, value, rule) in named {
        if let Some(Err(why)) = value.as_deref().map(rule) {
            bad(key, why);
        }
    }
    if let Some(d) = &p.confirm_after
        && let Err(e) = crate::engine::model::duration::parse_duration(d)
    {
        bad("confirm_after", e.to_string());
    }
    if let Some(r) = &p.redact
        && let Err(e) = crate::engine::export::redact::Redaction::parse(r)
    {
        bad("redact", e);
    }
    if let Some(v) = &p.schema_version
        && v != "same"
        && v != "latest"
    {
        bad(
            "schema_version",
            format!("'{v}' is neither 'same' nor 'latest'"),
        );
    }
    if let Err(e) = super::values::field_map(&p.fields) {
        bad("fields", e.0);
    }
    for (key, why) in super::security::check(p) {
        bad(key, why);
    }
    if p.mongo.is_some() && p.db.is_none() {
        bad("db", "a profile with mongo needs db".into());
    }
    if p.topic.is_some() && p.kafka.is_none() {
        bad("topic", "a topic needs kafka (the brokers)".into());
    }
    if let Some(super::profile::SchemasSetting::Map(m)) = &p.schemas {
        for (glob, file) in m {
            if let Err(e) = crate::engine::decoders::schemas::Mapping::parse(glob, file, None) {
                bad("schemas", e);
            }
        }
    }
    for g in &p.dlq_patterns {
        if g.trim().is_empty() {
            bad("dlq_patterns", "an empty pattern".into());
        }
    }
    out
}
