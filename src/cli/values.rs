//! The rules for flag values, one per kind (durations, rates, counts, letter ids,
//! names, URIs, addresses, files), used as clap value parsers so that a bad value is
//! refused while the command line is read: before anything is contacted or written.
//! Each error quotes the value (a password in it hidden) and says what was expected;
//! `usage` puts the flag's name in front and prints it on one line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::LetterId;
use crate::engine::model::duration::parse_duration;

/// A wait that may be skipped (`--grace`, `--backoff`, `--takeover-after`, retry
/// delays, `--confirm-after`): 0 or more, at most 100 years.
pub fn wait(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// A timeout, interval or age (`--connect-timeout`, `--timeout`, `--interval`,
/// `--max-age`): more than 0, at most 100 years.
pub fn timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!(
            "expected a duration above 0 (e.g. 500ms, 5s, 15m), got '{s}'"
        )),
        d => Ok(d),
    }
}

/// The slowest `--rate` taken: one letter every 1000 s.
const MIN_RATE: f64 = 0.001;

/// `--rate`: letters per second, a finite number from [`MIN_RATE`] (0, negative
/// numbers, NaN and infinity are refused, not read as "no limit").
pub fn rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= MIN_RATE => Ok(r),
        _ => Err(format!(
            "expected a positive number of letters per second (at least {MIN_RATE}), got '{s}'"
        )),
    }
}

/// A count of at least 1 (`--max-attempts`, `--dlq-attempts`).
pub fn count(s: &str) -> Result<u32, String> {
    whole(s, 1, u32::MAX)
}

/// The most messages in flight `--concurrency` takes.
pub const MAX_CONCURRENCY: u32 = 4096;

/// `--concurrency`: 1 to [`MAX_CONCURRENCY`].
pub fn concurrency(s: &str) -> Result<u32, String> {
    whole(s, 1, MAX_CONCURRENCY)
}

fn whole(s: &str, min: u32, max: u32) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("expected a whole number from {min} to {max}, got '{s}'"))
}

/// A letter id: `PARTITION:OFFSET` (both 0 or more) or a MongoDB `_id` (no colon, no
/// space). Whether it fits the DLQ's kind is checked once the DLQ is known.
pub fn letter_id(s: &str) -> Result<String, String> {
    s.parse::<LetterId>()
        .map(|_| s.to_string())
        .map_err(|_| format!("expected PARTITION:OFFSET (Kafka) or a MongoDB _id, got '{s}'"))
}

/// A Kafka topic name: 1 to 249 of `a-z A-Z 0-9 . _ -`, not `.` or `..`.
pub fn topic(s: &str) -> Result<String, String> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.is_empty() || s.len() > 249 || s == "." || s == ".." || !s.chars().all(legal) {
        return Err(format!(
            "expected a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -), got '{s}'"
        ));
    }
    Ok(s.to_string())
}

/// A name that must say something (a consumer group, an instance id, a header, a glob).
pub fn name(s: &str) -> Result<String, String> {
    if s.trim().is_empty() || s.chars().any(char::is_control) {
        return Err(format!("expected a non-empty name, got '{s}'"));
    }
    Ok(s.to_string())
}

/// A shell command (`--exec`, `--pipe`): not empty.
pub fn command(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(format!("expected a command to run, got '{s}'"));
    }
    Ok(s.to_string())
}

/// Kafka bootstrap servers: `HOST[:PORT]` (or `[IPv6]:PORT`, optionally after
/// `PROTOCOL://`), comma-separated, none empty, ports from 1 to 65535.
pub fn brokers(s: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "expected Kafka brokers as HOST:PORT[,HOST:PORT...] (e.g. 127.0.0.1:9092), got '{s}'"
        )
    };
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|p| p > 0);
    for b in s.split(',').map(str::trim) {
        let hostport = b.split_once("://").map_or(b, |(_, rest)| rest);
        let ok = match hostport.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((h, "")) => !h.is_empty(),
                Some((h, rest)) => !h.is_empty() && rest.strip_prefix(':').is_some_and(port_ok),
                None => false,
            },
            None => match hostport.split(':').collect::<Vec<_>>()[..] {
                [h] => !h.is_empty(),
                [h, p] => !h.is_empty() && port_ok(p),
                // A bare IPv6 address (hex groups), librdkafka's to judge; not `host:1:x`.
                ref groups => groups
                    .iter()
                    .all(|g| g.chars().all(|c| c.is_ascii_hexdigit())),
            },
        };
        if !ok || hostport.chars().any(char::is_whitespace) {
            return Err(bad());
        }
    }
    Ok(s.to_string())
}

/// A MongoDB connection string (`mongodb://` or `mongodb+srv://`, read by the
/// driver without contacting anything); the error hides the password.
pub fn mongo_uri(s: &str) -> Result<String, String> {
    match mongodb::options::ConnectionString::parse(s) {
        Ok(_) => Ok(s.to_string()),
        Err(e) => {
            let why = match *e.kind {
                mongodb::error::ErrorKind::InvalidArgument { message, .. } => message,
                other => other.to_string(),
            };
            Err(format!(
                "expected a MongoDB URI (mongodb://HOST[:PORT]/...), got '{}': {why}",
                crate::engine::model::urls::redact(s)
            ))
        }
    }
}

/// A MongoDB database name: 1 to 63 bytes, none of `/ \ . " $` or a space.
pub fn database(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 63 || s.contains(['/', '\\', '.', '"', '$', ' ', '\0']) {
        return Err(format!(
            "expected a MongoDB database name (1 to 63 bytes, none of / \\ . \" $ or a space), got '{s}'"
        ));
    }
    Ok(s.to_string())
}

/// A MongoDB collection name: not empty, no `$`, not a `system.` collection.
pub fn collection(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(['$', '\0']) || s.starts_with("system.") {
        return Err(format!(
            "expected a MongoDB collection name (not empty, no $, not system.*), got '{s}'"
        ));
    }
    Ok(s.to_string())
}

/// An `http://` or `https://` URL with a host (`--http`, `--schema-registry`).
pub fn url(s: &str) -> Result<String, String> {
    crate::engine::http::check_url(s).map(|()| s.to_string())
}

/// An address to listen on (`--metrics`, `--listen`): `HOST:PORT` or `:PORT`.
pub fn listen(s: &str) -> Result<String, String> {
    super::serve::listen_addr(s).map(|_| s.to_string())
}

/// `KEY=VALUE` with a key; the error quotes the input.
pub fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// `-X KEY=VALUE`: a librdkafka property it knows, with a value it takes (asked of
/// librdkafka's configuration, which contacts nothing). The value of a password or
/// secret is not repeated in the error.
pub fn property(s: &str) -> Result<(String, String), String> {
    let (k, v) = pair(s)?;
    // Also when misspelt: `sasl.pasword` is where a typo would show a password.
    let lower = k.to_lowercase();
    let secret = ["pass", "pasw", "word", "pwd", "secret", "token"]
        .iter()
        .any(|w| lower.contains(w));
    let shown = if secret {
        format!("{k}=***")
    } else {
        s.to_string()
    };
    let mut cfg = rdkafka::ClientConfig::new();
    cfg.set(&k, &v);
    match cfg.create_native_config() {
        Ok(_) => Ok((k, v)),
        Err(rdkafka::error::KafkaError::ClientConfig(_, why, _, _)) => {
            Err(format!("'{shown}': {why}"))
        }
        Err(e) => Err(format!("'{shown}': {e}")),
    }
}

/// `--field NAME=PATH`: a MongoDB field morgue knows and a path that is not empty.
pub fn field(s: &str) -> Result<(String, String), String> {
    let (k, v) = pair(s).map_err(|_| format!("expected NAME=PATH, got '{s}'"))?;
    if v.trim().is_empty() {
        return Err(format!("expected NAME=PATH with a path, got '{s}'"));
    }
    let one = std::collections::BTreeMap::from([(k.clone(), v.clone())]);
    field_map(&one).map_err(|e| format!("'{s}': {}", e.0))?;
    Ok((k, v))
}

/// `--schema-map GLOB=FILE[:MESSAGE]`: a glob and a `.avsc` or `.proto` file.
pub fn schema_map(s: &str) -> Result<(String, String), String> {
    let bad = || format!("expected GLOB=FILE.avsc or GLOB=FILE.proto[:MESSAGE], got '{s}'");
    let (glob, file) = pair(s).map_err(|_| bad())?;
    crate::engine::decoders::schemas::Mapping::parse(&glob, &file, None).map_err(|_| bad())?;
    Ok((glob, file))
}

/// A file that exists (certificates and keys).
pub fn file(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    match std::fs::metadata(&p) {
        Ok(m) if m.is_file() => Ok(p),
        Ok(_) => Err(format!("'{s}' is not a file")),
        Err(e) => Err(format!("'{s}': {e}")),
    }
}

/// A file to append to (the audit log): anything but a directory.
pub fn log_file(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if s.is_empty() || p.is_dir() {
        return Err(format!("expected a file to append to, got '{s}'"));
    }
    Ok(p)
}

/// `--schemas DIR`: a directory whose schemas (`<id>.avsc`, `<id>.json`,
/// `<id>.proto`) all read, each as the decoders will read it.
pub fn schema_dir(s: &str) -> Result<PathBuf, String> {
    use crate::engine::decoders::schemas::{SchemaSource, SchemaStore};
    let dir = PathBuf::from(s);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(_) if dir.exists() => return Err(format!("'{s}' is not a directory")),
        Err(e) => return Err(format!("'{s}': {e}")),
    };
    let mut ids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            let ext = path.extension()?.to_str()?;
            let id = path.file_stem()?.to_str()?.parse::<u32>().ok()?;
            ["avsc", "json", "proto"].contains(&ext).then_some(id)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let store = SchemaStore::new(SchemaSource {
        dir: Some(dir.clone()),
        ..SchemaSource::default()
    });
    for id in ids {
        store.fetch_blocking(id);
        if let Some(Err(why)) = store.get(id) {
            let why = why.message.replace('\n', " ");
            return Err(format!("'{s}' holds a schema that does not read: {why}"));
        }
    }
    Ok(dir)
}

/// The MongoDB field map of a profile's `fields` (only the fields that differ).
pub fn field_map(
    fields: &BTreeMap<String, String>,
) -> Result<crate::backends::mongo::doc::FieldMap, super::UsageError> {
    let mut value = serde_json::to_value(crate::backends::mongo::doc::FieldMap::default())
        .map_err(|e| super::UsageError(e.to_string()))?;
    for (k, v) in fields {
        match value.get_mut(k) {
            Some(slot) => *slot = serde_json::Value::String(v.clone()),
            None => {
                let known = serde_json::to_value(crate::backends::mongo::doc::FieldMap::default())
                    .ok()
                    .and_then(|v| {
                        v.as_object()
                            .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                    })
                    .unwrap_or_default();
                return Err(super::UsageError(format!(
                    "unknown MongoDB field '{k}' (fields: {known})"
                )));
            }
        }
    }
    serde_json::from_value(value).map_err(|e| super::UsageError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_url_is_quoted_without_its_password() {
        // Unencoded '/' in the password: refused, and quoted with the password hidden.
        let e = mongo_uri("mongodb://ops:p/w@db:27017/").unwrap_err();
        assert!(!e.contains("p/w") && e.contains("ops:***@db:27017"), "{e}");
        let e = url("http://ops:p/w@h:8081/").unwrap_err();
        assert!(!e.contains("p/w") && e.contains("ops:***@h:8081"), "{e}");
        let e = mongo_uri("mongodb://ops:p@ss@db-1,db-2/?replicaSet=").unwrap_err();
        assert!(!e.contains("p@ss") && !e.contains("ss@"), "{e}");
    }
}
