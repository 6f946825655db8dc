//! Edits of decoded payloads, encoded back into the payload's own format: a Confluent
//! frame keeps its schema id (and Protobuf its message indexes), the JSON is checked
//! against the schema first (Avro, Protobuf, JSON Schema), and a mismatch is refused
//! with the field's path and the reason (`$.legs.0.qty: expected int, got "three"`). MessagePack and CBOR are written
//! again from the JSON, unframed Avro and Protobuf under their topic's mapped schema
//! ([`mapped`](super::mapped)), and a compressed payload is encoded inside, then
//! compressed again with the same codec.

use serde_json::Value as Json;

use super::confluent::frame;
use std::sync::Arc;

use super::schemas::{Loaded, SchemaKind};
use super::{Attempt, DecodeError, Registry};

/// The bytes of `edited` in the format of `original` (which must decode with `reg`), a
/// payload of a letter from source `topic`. With `to_latest`, a framed payload is
/// encoded under its subject's latest version, once that version is found compatible
/// (readers of the original schema can read it).
pub fn reencode(
    original: &[u8],
    edited: &Json,
    reg: &Registry,
    topic: Option<&str>,
    to_latest: bool,
) -> Result<Vec<u8>, DecodeError> {
    let mismatch = |e: &dyn std::fmt::Display| DecodeError::mismatch(e.to_string());
    if let (Some(name), Some(Ok(inner))) = (
        super::compress::kind(original),
        super::compress::decompress(original),
    ) {
        let plain = match reg.decode(&inner, topic) {
            Attempt::Decoded(_) => reencode(&inner, edited, reg, topic, to_latest)?,
            _ if serde_json::from_slice::<Json>(&inner).is_ok() => {
                serde_json::to_vec(edited).map_err(|e| mismatch(&e))?
            }
            _ => match edited {
                Json::String(text) => text.clone().into_bytes(),
                _ => {
                    return Err(DecodeError::mismatch(format!(
                        "$: the {name} payload held text: expected a string"
                    )));
                }
            },
        };
        return super::compress::compress(name, &plain);
    }
    let Attempt::Decoded(s) = reg.decode(original, topic) else {
        return Err(DecodeError::mismatch(
            "the payload is not in a format that can be re-encoded",
        ));
    };
    if let Some((id, body)) = frame(original) {
        let original_schema = match reg.schemas.get(id) {
            Some(Ok(s)) => s,
            _ => return Err(DecodeError::no_schema(format!("schema {id} is not loaded"))),
        };
        let original_id = id;
        let (id, schema) = match to_latest {
            true => latest(reg, id, &original_schema, body)?,
            false => (id, original_schema.clone()),
        };
        let mut out = vec![0];
        out.extend(id.to_be_bytes());
        match schema.kind {
            SchemaKind::Avro => {
                let (main, refs) = (schema.avro.as_ref())
                    .ok_or_else(|| DecodeError::bad_schema("no Avro schema"))?;
                out.extend(super::avro::encode(main, refs, edited)?);
            }
            SchemaKind::Protobuf => {
                let p = (schema.proto.as_ref())
                    .ok_or_else(|| DecodeError::bad_schema("no Protobuf schema"))?;
                out.extend(p.encode(body, edited)?);
            }
            SchemaKind::Json => {
                // Valid under the schema it is framed with, and under the one its readers had.
                check_json(&schema, id, edited)?;
                check_json(&original_schema, original_id, edited)?;
                out.extend(serde_json::to_vec(edited).map_err(|e| mismatch(&e))?);
            }
        }
        return Ok(out);
    }
    match s.format.as_str() {
        "MessagePack" => {
            let mut out = Vec::new();
            rmpv::encode::write_value(&mut out, &to_msgpack(edited)).map_err(|e| mismatch(&e))?;
            Ok(out)
        }
        "CBOR" => {
            let mut out = Vec::new();
            ciborium::ser::into_writer(edited, &mut out).map_err(|e| mismatch(&e))?;
            Ok(out)
        }
        other => super::mapped::encode(reg, topic, edited).unwrap_or_else(|| {
            Err(DecodeError::mismatch(format!(
                "{other} payloads cannot be re-encoded yet"
            )))
        }),
    }
}

/// Checks `edited` against JSON Schema `id`; a schema that did not compile refuses.
fn check_json(schema: &Loaded, id: u32, edited: &Json) -> Result<(), DecodeError> {
    match &schema.json {
        Some(Ok(s)) => s.check(edited),
        Some(Err(e)) => Err(e
            .clone()
            .context(|m| format!("schema {id} cannot check the edit: {m}"))),
        None => Err(DecodeError::bad_schema(format!(
            "schema {id} is not a JSON Schema"
        ))),
    }
}

/// The latest version of the subject of schema `id`, checked: an Avro schema readers of
/// `id` can read, a Protobuf one with the same message at the same indexes.
fn latest(
    reg: &Registry,
    id: u32,
    original: &Loaded,
    body: &[u8],
) -> Result<(u32, Arc<Loaded>), DecodeError> {
    let subject = original.subject.as_deref().ok_or_else(|| {
        DecodeError::no_schema(format!(
            "schema {id} has no subject: its latest version cannot be found"
        ))
    })?;
    let (latest_id, latest) = match reg.schemas.latest(subject) {
        Some(got) => got?,
        None => {
            return Err(DecodeError::no_schema(format!(
                "the latest version of {subject} is not loaded"
            )));
        }
    };
    let refuse = |why: String| {
        DecodeError::mismatch(format!(
            "schema {latest_id} (latest of {subject}) does not fit readers of schema {id}: {why}"
        ))
    };
    match (&original.avro, &latest.avro, &original.proto, &latest.proto) {
        (Some((was, _)), Some((now, _)), _, _) => {
            apache_avro::schema_compatibility::SchemaCompatibility::can_read(now, was)
                .map_err(|e| refuse(e.to_string()))?;
        }
        (_, _, Some(was), Some(now)) => {
            let (a, b) = (
                was.message_name(body)?,
                now.message_name(body).map_err(|e| refuse(e.message))?,
            );
            if a != b {
                return Err(refuse(format!(
                    "its message at these indexes is {b}, not {a}"
                )));
            }
        }
        _ if original.kind != latest.kind => {
            return Err(refuse(format!(
                "{:?}, not {:?}",
                latest.kind, original.kind
            )));
        }
        _ => {}
    }
    Ok((latest_id, latest))
}

fn to_msgpack(v: &Json) -> rmpv::Value {
    match v {
        Json::Null => rmpv::Value::Nil,
        Json::Bool(b) => rmpv::Value::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => rmpv::Value::from(i),
            (None, Some(u)) => rmpv::Value::from(u),
            _ => rmpv::Value::F64(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => rmpv::Value::from(s.as_str()),
        Json::Array(a) => rmpv::Value::Array(a.iter().map(to_msgpack).collect()),
        Json::Object(o) => rmpv::Value::Map(
            o.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), to_msgpack(v)))
                .collect(),
        ),
    }
}
