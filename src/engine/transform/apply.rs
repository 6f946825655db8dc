//! A transform applied to one letter: its value decoded (the registry's formats, JSON,
//! or text), the expression run, the result written back in the value's own format
//! (under its schema for Avro, Protobuf and JSON Schema, as the TUI's edit does).

use serde_json::{Value as Json, json};

use super::vars::{bytes_json, headers_json, json_bytes, json_headers, letter_vars, short};
use super::{Jq, RunError};
use crate::engine::decoders::{Attempt, Registry};
use crate::engine::model::letter::{DeadLetter, Headers};

/// What a transform made of a letter.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The result equals what went in: the letter is sent as it is.
    Unchanged,
    /// What changes.
    Changed(Box<Change>),
    /// The letter is not sent: why, on one line.
    Failed(String),
}

/// A letter's new parts, and the JSON before and after for a diff.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The value's bytes as they will be sent (None: a null value).
    pub value: Option<Vec<u8>>,
    /// A new key, when the key changed (envelope mode).
    pub key: Option<Option<Vec<u8>>>,
    /// New headers, when they changed (envelope mode).
    pub headers: Option<Headers>,
    /// What the expression saw.
    pub before: Json,
    /// What it returned.
    pub after: Json,
}

impl Change {
    /// Puts the new value, and the key and headers when they changed, into `l`.
    pub fn apply_to(self, l: &mut DeadLetter) {
        l.value = self.value;
        if let Some(k) = self.key {
            l.key = k;
        }
        if let Some(h) = self.headers {
            l.headers = h;
        }
    }
}

/// How a value was read, hence how the result is written.
enum Form {
    /// A registry format (Avro, Protobuf, JSON Schema, CBOR, compressed…).
    Structured,
    /// JSON text.
    Json,
    /// UTF-8 text that is not JSON: a string.
    Text,
    /// A null value.
    Null,
}

/// Runs `jq` on `letter`, starting from `base` (its kept edit, else its value):
/// never from anything sent before, so a transform is applied once.
pub fn apply(jq: &Jq, letter: &DeadLetter, base: Option<&[u8]>, reg: &Registry) -> Applied {
    match try_apply(jq, letter, base, reg) {
        Ok(a) => a,
        Err(why) => Applied::Failed(why),
    }
}

fn try_apply(
    jq: &Jq,
    letter: &DeadLetter,
    base: Option<&[u8]>,
    reg: &Registry,
) -> Result<Applied, String> {
    let topic = letter.source.topic.as_deref();
    let (value, form) = read(base, reg, topic)?;
    let vars = letter_vars(letter);
    let run = |input: &Json| {
        jq.run(input, vars.clone())
            .map_err(|e: RunError| e.to_string())
    };
    let (before, after, key, headers) = if jq.spec().envelope {
        let input = json!({
            "key": bytes_json(letter.key.as_deref()),
            "value": value,
            "headers": headers_json(&letter.headers),
        });
        let out = run(&input)?;
        let Json::Object(o) = &out else {
            return Err(format!(
                "envelope mode: the result must be an object {{key, value, headers}}, got {}",
                short(&out)
            ));
        };
        let part = |name: &str| o.get(name).filter(|v| Some(*v) != input.get(name));
        let key = part("key").map(|k| json_bytes(k, "key")).transpose()?;
        let headers = part("headers").map(json_headers).transpose()?;
        let after = o.get("value").cloned().unwrap_or_else(|| value.clone());
        (value, after, key, headers)
    } else {
        let after = run(&value)?;
        (value, after, None, None)
    };
    if before == after && key.is_none() && headers.is_none() {
        return Ok(Applied::Unchanged);
    }
    let value = if before == after {
        base.map(<[u8]>::to_vec)
    } else {
        write(&after, form, base, reg, topic)?
    };
    Ok(Applied::Changed(Box::new(Change {
        value,
        key,
        headers,
        before,
        after,
    })))
}

/// A value as an expression sees it: decoded by the registry (Avro, Protobuf, …),
/// JSON, text as a string, null; binary that no decoder reads is an error.
pub fn value_json(
    base: Option<&[u8]>,
    reg: &Registry,
    topic: Option<&str>,
) -> Result<Json, String> {
    read(base, reg, topic).map(|(v, _)| v)
}

/// The value as JSON, and how it was read.
fn read(base: Option<&[u8]>, reg: &Registry, topic: Option<&str>) -> Result<(Json, Form), String> {
    let Some(bytes) = base else {
        return Ok((Json::Null, Form::Null));
    };
    match reg.decode(bytes, topic) {
        Attempt::Decoded(s) => return Ok((s.value, Form::Structured)),
        Attempt::Failed(why) => return Err(format!("the value does not decode: {}", why.message)),
        Attempt::NotMine => {}
    }
    if let Ok(v) = serde_json::from_slice::<Json>(bytes) {
        return Ok((v, Form::Json));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((Json::String(text.to_string()), Form::Text)),
        Err(_) => Err(format!(
            "the value is {} bytes of binary that no decoder reads",
            bytes.len()
        )),
    }
}

/// The result's bytes in the value's own form.
fn write(
    after: &Json,
    form: Form,
    base: Option<&[u8]>,
    reg: &Registry,
    topic: Option<&str>,
) -> Result<Option<Vec<u8>>, String> {
    match (form, after) {
        (Form::Structured, _) => {
            let original = base.unwrap_or_default();
            crate::engine::decoders::encode::reencode(
                original,
                after,
                reg,
                topic,
                reg.schemas.wants_latest(),
            )
            .map(Some)
            .map_err(|e| format!("the result does not fit the value's schema: {}", e.message))
        }
        // A null value is a tombstone: sent only where the value was null already
        // (`.payload` on a letter without one must not delete the key downstream).
        (Form::Null, Json::Null) => Ok(None),
        (_, Json::Null) => Err("the result is null: a replay would send a tombstone".into()),
        (Form::Text, Json::String(s)) => Ok(Some(s.clone().into_bytes())),
        _ => serde_json::to_vec(after)
            .map(Some)
            .map_err(|e| format!("the result cannot be written as JSON: {e}")),
    }
}
