//! Confluent's wire format: byte `0x00`, a 4-byte big-endian schema id, then the body —
//! Avro (a datum), JSON Schema (JSON text) or Protobuf (message-index varints, then
//! the message: [`protobuf`](super::protobuf)). The schema says which.

use super::schemas::SchemaKind;
use super::{Attempt, DecodeError, Decoder, Registry, Structured};

/// The Confluent-framed decoder.
pub struct Confluent;

/// The schema id and body of a framed payload.
pub fn frame(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let (&magic, rest) = bytes.split_first()?;
    if magic != 0 || rest.len() < 4 {
        return None;
    }
    let id = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    Some((id, &rest[4..]))
}

impl Decoder for Confluent {
    fn needs(&self, bytes: &[u8]) -> Option<u32> {
        frame(bytes).map(|(id, _)| id)
    }

    fn decode(&self, bytes: &[u8], reg: &Registry, _topic: Option<&str>) -> Attempt {
        let Some((id, body)) = frame(bytes) else {
            return Attempt::NotMine;
        };
        let schema = match reg.schemas.get(id) {
            Some(Ok(s)) => s,
            Some(Err(why)) => return Attempt::Failed(why),
            None if reg.schemas.is_unconfigured() => {
                // Without any schema source, say so rather than pretending to fetch.
                return Attempt::Failed(DecodeError::no_schema(format!(
                    "Confluent-framed payload with schema {id}: no schema registry (--schema-registry URL) or schema directory (--schemas DIR) given"
                )));
            }
            None => {
                return Attempt::Failed(DecodeError::no_schema(format!(
                    "schema {id} not fetched yet"
                )));
            }
        };
        let named = |kind: &str| match &schema.subject {
            Some(s) => format!("{kind} (schema {id}, subject {s})"),
            None => format!("{kind} (schema {id})"),
        };
        let value = match schema.kind {
            SchemaKind::Avro => match &schema.avro {
                Some((main, refs)) => {
                    super::avro::decode(body, main, refs).map(|v| (named("Avro"), v))
                }
                None => Err(DecodeError::bad_schema("no Avro schema")),
            },
            SchemaKind::Json => serde_json::from_slice(body)
                .map(|v| (named("JSON Schema"), v))
                .map_err(|e| {
                    DecodeError::malformed(format!(
                        "JSON Schema payload with schema {id}: not JSON: {e}"
                    ))
                }),
            SchemaKind::Protobuf => match &schema.proto {
                Some(p) => p
                    .decode(body)
                    .map(|(name, v)| (named(&format!("Protobuf {name}")), v))
                    .map_err(|e| e.context(|m| format!("Protobuf payload with schema {id}: {m}"))),
                None => Err(DecodeError::bad_schema(format!(
                    "schema {id}: no compiled Protobuf schema"
                ))),
            },
        };
        match value {
            Ok((format, value)) => Attempt::Decoded(Structured {
                format,
                schema_id: Some(id),
                subject: schema.subject.clone(),
                value,
            }),
            Err(why) => Attempt::Failed(why),
        }
    }
}
