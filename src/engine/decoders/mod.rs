//! The decoder registry: every binary payload format morgue reads, tried in order on a
//! payload before the plain readings of [`decode`](crate::engine::read::decode) (JSON, XML, text,
//! base64, hex):
//!
//! 1. Confluent's wire format (`0x00`, a 4-byte schema id, the body): Avro, JSON Schema
//!    and Protobuf, with the schema from a registry or a local `<id>.avsc` /
//!    `<id>.json` / `<id>.proto` ([`confluent`], [`protobuf`]).
//! 2. Unframed Avro and Protobuf, by a schema the profile maps to the letter's source
//!    topic ([`mapped`]).
//! 3. gzip, zstd, snappy and lz4 by their magic bytes, then decoded again ([`compress`]).
//! 4. CBOR and MessagePack maps and arrays that fill the payload ([`selfdescribing`]).
//!
//! A decoder is a synchronous `decode` over what is cached, plus an optional
//! asynchronous step ([`Registry::prepare`]) that fetches the schemas a payload needs,
//! which the TUI runs off the UI task and `list` before printing. A decoder that
//! recognises a payload but cannot decode it says why (`schema 17 not found at …: 404`),
//! and the bytes are shown as hex with that reason. Adding a format is one module and
//! one line in [`Registry::new`].

pub mod avro;
pub mod compress;
pub mod confluent;
pub mod encode;
pub mod json_schema;
pub mod mapped;
pub mod protobuf;
pub mod schemas;
pub mod selfdescribing;

use std::sync::Arc;

pub use schemas::{SchemaSource, SchemaStore};

/// A payload decoded into a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Structured {
    /// What it was: `Avro (schema 17, subject trades-value)`, `MessagePack`, `gzip, then JSON`…
    pub format: String,
    /// The schema id, when the wire format names one.
    pub schema_id: Option<u32>,
    /// The subject, when the registry says.
    pub subject: Option<String>,
    /// The value, as JSON.
    pub value: serde_json::Value,
}

/// What a decoder makes of some bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// Decoded.
    Decoded(Structured),
    /// Not this format.
    NotMine,
    /// This format, but it cannot be decoded: why, on one line.
    Failed(DecodeError),
}

/// What went wrong with a payload of a recognised format, for the caller to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeKind {
    /// The bytes are not a valid payload of their format (cut short, a bad varint, a
    /// union branch that does not exist, not JSON, …).
    Malformed,
    /// The schema the payload needs is not at hand: not fetched yet, unknown to the
    /// registry, the registry unreachable, or no registry or directory given.
    NoSchema,
    /// The schema is at hand but does not compile, or a mapping names a bad file.
    BadSchema,
    /// An edited value does not fit the schema it is written back under.
    Mismatch,
}

/// Why a payload could not be decoded (or an edit encoded): its kind and one line
/// that quotes what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeKind,
    /// Why, on one line.
    pub message: String,
}

impl DecodeError {
    /// A payload whose bytes do not decode.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::of(DecodeKind::Malformed, message)
    }

    /// A schema not at hand.
    pub fn no_schema(message: impl Into<String>) -> Self {
        Self::of(DecodeKind::NoSchema, message)
    }

    /// A schema that does not compile.
    pub fn bad_schema(message: impl Into<String>) -> Self {
        Self::of(DecodeKind::BadSchema, message)
    }

    /// An edit that does not fit its schema.
    pub fn mismatch(message: impl Into<String>) -> Self {
        Self::of(DecodeKind::Mismatch, message)
    }

    fn of(kind: DecodeKind, message: impl Into<String>) -> Self {
        DecodeError {
            kind,
            message: message.into(),
        }
    }

    /// The same error, its line rewritten by `f` (context added).
    pub fn context(self, f: impl FnOnce(&str) -> String) -> Self {
        let message = f(&self.message);
        DecodeError { message, ..self }
    }
}

/// One payload format.
pub trait Decoder: Send + Sync {
    /// Decodes `bytes`, a payload of a letter from source `topic`, from what `reg` has
    /// cached; never waits on the network.
    fn decode(&self, bytes: &[u8], reg: &Registry, topic: Option<&str>) -> Attempt;

    /// The schema id `bytes` needs fetched before [`Decoder::decode`] can succeed.
    fn needs(&self, _bytes: &[u8]) -> Option<u32> {
        None
    }
}

/// The decoders in the order they are tried, and the schemas they share.
pub struct Registry {
    decoders: Vec<Box<dyn Decoder>>,
    /// The topic-mapped schemas (tried first, see [`mapped`]).
    mapped: mapped::Mapped,
    /// Schemas by id: from a registry or a directory, cached for the session.
    pub schemas: SchemaStore,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("decoders", &self.decoders.len())
            .finish()
    }
}

impl Registry {
    /// Every built-in decoder, reading schemas from `source`.
    pub fn new(source: SchemaSource) -> Self {
        Registry {
            decoders: vec![
                Box::new(confluent::Confluent),
                Box::new(compress::Compressed),
                Box::new(selfdescribing::Cbor),
                Box::new(selfdescribing::MessagePack),
            ],
            mapped: mapped::Mapped::new(&source.mapped),
            schemas: SchemaStore::new(source),
        }
    }

    /// The first decoder's answer that is not [`Attempt::NotMine`], for a payload of a
    /// letter from source `topic` (None: unknown, or a key).
    pub fn decode(&self, bytes: &[u8], topic: Option<&str>) -> Attempt {
        // A mapped schema first; when it does not fit, the others may still read the
        // payload, and its reason stands only when none does.
        let mapped = self.mapped.decode(bytes, self, topic);
        if let Attempt::Decoded(_) = mapped {
            return mapped;
        }
        for d in &self.decoders {
            match d.decode(bytes, self, topic) {
                Attempt::NotMine => continue,
                other => return other,
            }
        }
        mapped
    }

    /// Fetches what `bytes` needs (a schema by id) into the cache; errors are cached
    /// too and reported by [`Registry::decode`].
    pub async fn prepare(&self, bytes: Option<&[u8]>) {
        let Some(bytes) = bytes else {
            return;
        };
        let mut current = std::borrow::Cow::Borrowed(bytes);
        // A compressed payload may hold a framed one: look inside once.
        if let Some(inner) = compress::decompress(&current).and_then(Result::ok) {
            current = std::borrow::Cow::Owned(inner);
        }
        for d in &self.decoders {
            if let Some(id) = d.needs(&current) {
                self.schemas.fetch(id).await;
                // An edit may be encoded under the subject's latest version: have it too.
                if self.schemas.wants_latest()
                    && let Some(Ok(s)) = self.schemas.get(id)
                    && let Some(subject) = &s.subject
                {
                    self.schemas.fetch_latest(subject).await;
                }
            }
        }
    }
}

/// Fetches what the values and keys of `letters` need into `reg`, and compiles the
/// schemas mapped to their topics (off the async threads).
pub async fn prepare_letters(reg: &Arc<Registry>, letters: &[crate::engine::DeadLetter]) {
    if !reg.mapped.is_empty() {
        let topics: std::collections::BTreeSet<String> = letters
            .iter()
            .filter_map(|l| l.source.topic.clone())
            .collect();
        let r = reg.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            for t in &topics {
                r.mapped.prepare(t);
            }
        })
        .await;
        // Only a panic while compiling fails the join; decoding then compiles on demand.
        if let Err(e) = compiled {
            tracing::warn!("compiling the mapped schemas failed: {e}");
        }
    }
    if reg.schemas.is_unconfigured() {
        return;
    }
    for l in letters {
        reg.prepare(l.value.as_deref()).await;
        reg.prepare(l.key.as_deref()).await;
    }
}

static BUILTIN: std::sync::OnceLock<Arc<Registry>> = std::sync::OnceLock::new();

/// The built-in decoders without schemas (no registry, no mapped schema, no descriptor
/// set): what reads a payload where no profile's registry was passed in. Never changes.
pub fn builtin() -> Arc<Registry> {
    BUILTIN
        .get_or_init(|| Arc::new(Registry::new(SchemaSource::default())))
        .clone()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "edit_tests.rs"]
mod edit_tests;
