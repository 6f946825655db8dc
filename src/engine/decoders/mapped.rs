//! Unframed Avro and Protobuf payloads, by the topic a letter came from: the profile's
//! `[profiles.X.schemas] "trades*" = "Trade.proto:acme.Trade"` (or `--schema-map`)
//! names a local `.avsc`, or a `.proto` file and a message type (the file's first
//! message when none is named), for the source topics a glob matches. A `.proto` file
//! is compiled at run time by protox with its directory as the import path. Each file
//! is read and compiled once, on a blocking thread when letters of its topics arrive
//! (see `prepare_letters`), before anything draws them.
//!
//! A payload that is Confluent-framed and whose schema id is known is left to the
//! [`confluent`](super::confluent) decoder; one that does not fit its mapped schema
//! falls through to the other decoders (and says why when none reads it).

use std::path::Path;
use std::sync::OnceLock;

use prost_reflect::{DynamicMessage, MessageDescriptor};

use super::schemas::Mapping;
use super::{Attempt, DecodeError, Decoder, Registry, Structured};

/// A mapped schema, compiled.
enum Compiled {
    Avro(apache_avro::Schema),
    Proto(MessageDescriptor),
}

/// The topic-mapped decoder.
pub struct Mapped {
    maps: Vec<(Mapping, OnceLock<Result<Compiled, DecodeError>>)>,
}

impl Mapped {
    /// A decoder for `maps`, tried in order.
    pub fn new(maps: &[Mapping]) -> Self {
        Mapped {
            maps: maps.iter().map(|m| (m.clone(), OnceLock::new())).collect(),
        }
    }

    /// True when no topic has a mapped schema.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Compiles the schema mapped to `topic`, if any and not yet done. Blocking (it
    /// reads and compiles files): callers on an async runtime use a blocking thread, so
    /// that decoding, which drawing calls, finds it ready.
    pub fn prepare(&self, topic: &str) {
        // Only for its side effect: the compiled schema (or its error) is cached in the cell and shown when decoding.
        let _ = self.schema(topic);
    }

    /// The mapping for `topic` and its compiled schema.
    fn schema(&self, topic: &str) -> Option<(&Mapping, &Result<Compiled, DecodeError>)> {
        let (m, cell) = self.maps.iter().find(|(m, _)| {
            crate::engine::model::names::matches_any(topic, std::slice::from_ref(&m.glob))
        })?;
        Some((m, cell.get_or_init(|| compile(m))))
    }
}

fn compile(m: &Mapping) -> Result<Compiled, DecodeError> {
    compile_file(m).map_err(DecodeError::bad_schema)
}

fn compile_file(m: &Mapping) -> Result<Compiled, String> {
    let shown = m.file.display();
    if m.file.extension().is_some_and(|e| e == "avsc") {
        let text = std::fs::read_to_string(&m.file).map_err(|e| format!("'{shown}': {e}"))?;
        return apache_avro::Schema::parse_str(&text)
            .map(Compiled::Avro)
            .map_err(|e| format!("'{shown}': {e}"));
    }
    let dir = m.file.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let name = m.file.file_name().unwrap_or_default();
    // protox's errors run to several lines: the first says what is wrong.
    let first = |e: String| format!("'{shown}': {}", e.lines().next().unwrap_or(""));
    let set = protox::compile([name], [dir]).map_err(|e| first(e.to_string()))?;
    let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(set)
        .map_err(|e| first(e.to_string()))?;
    let file = pool
        .files()
        .find(|f| Path::new(f.name()) == Path::new(name));
    let desc = match &m.message {
        Some(full) => pool.get_message_by_name(full),
        None => file.and_then(|f| f.messages().next()),
    };
    desc.map(Compiled::Proto).ok_or_else(|| match &m.message {
        Some(full) => format!("'{shown}' has no message {full}"),
        None => format!("'{shown}' has no message"),
    })
}

impl Decoder for Mapped {
    fn decode(&self, bytes: &[u8], reg: &Registry, topic: Option<&str>) -> Attempt {
        let Some((m, compiled)) = topic.and_then(|t| self.schema(t)) else {
            return Attempt::NotMine;
        };
        // A frame whose schema is known is the framed decoder's.
        let framed = super::confluent::frame(bytes)
            .is_some_and(|(id, _)| matches!(reg.schemas.get(id), Some(Ok(_))));
        // Compressed payloads are decoded again once expanded; text is read as text.
        if framed || super::compress::kind(bytes).is_some() {
            return Attempt::NotMine;
        }
        let compiled = match compiled {
            Ok(c) => c,
            Err(why) => {
                let why = why.clone();
                return Attempt::Failed(
                    why.context(|w| format!("schema mapped to '{}': {w}", m.glob)),
                );
            }
        };
        let read = match compiled {
            Compiled::Avro(schema) => super::avro::decode(bytes, schema, &[])
                .map(|v| (format!("Avro ({}, unframed)", schema_name(schema)), v)),
            Compiled::Proto(desc) => {
                proto(bytes, desc).map(|v| (format!("Protobuf {} (unframed)", desc.full_name()), v))
            }
        };
        let (format, value) = match read {
            Ok(got) => got,
            Err(_) if std::str::from_utf8(bytes).is_ok() => return Attempt::NotMine,
            Err(why) => {
                return Attempt::Failed(why.context(|w| format!("{w} (mapped to '{}')", m.glob)));
            }
        };
        Attempt::Decoded(Structured {
            format,
            schema_id: None,
            subject: None,
            value,
        })
    }
}

fn schema_name(s: &apache_avro::Schema) -> String {
    match s {
        apache_avro::Schema::Record(r) => r.name.fullname(None),
        other => format!("{:?}", apache_avro::schema::SchemaKind::from(other)).to_lowercase(),
    }
}

fn proto(bytes: &[u8], desc: &MessageDescriptor) -> Result<serde_json::Value, DecodeError> {
    let m = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| {
        DecodeError::malformed(format!("not an unframed {} message: {e}", desc.full_name()))
    })?;
    serde_json::to_value(&m).map_err(|e| DecodeError::malformed(e.to_string()))
}

/// The bytes of `edited` under the schema mapped to `topic` (None: no mapping).
pub fn encode(
    reg: &Registry,
    topic: Option<&str>,
    edited: &serde_json::Value,
) -> Option<Result<Vec<u8>, DecodeError>> {
    let (_, compiled) = reg.mapped.schema(topic?)?;
    Some(match compiled {
        Err(why) => Err(why.clone()),
        Ok(Compiled::Avro(schema)) => super::avro::encode(schema, &[], edited),
        Ok(Compiled::Proto(desc)) => {
            use prost::Message as _;
            DynamicMessage::deserialize(desc.clone(), edited)
                .map(|m| m.encode_to_vec())
                .map_err(|e| DecodeError::mismatch(format!("$: not a {}: {e}", desc.full_name())))
        }
    })
}
