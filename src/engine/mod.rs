//! The dead-letter engine. It knows dead letters, not terminals: nothing here imports
//! ratatui, crossterm, syntect or arboard. Five wings, each importing only from the
//! ones before it:
//!
//! - [`model`]: the ground — the letter, framework header conventions, the ledger's
//!   entries and its compare-and-set fold, encoded bytes, errors, durations.
//! - [`http`]: the one HTTP client and TLS builder (imports only the model): the
//!   schema registry's GETs and `route --http`'s POSTs.
//! - [`decoders`]: payload formats (Avro, Protobuf, JSON Schema, CBOR, …), decoded for
//!   reading and encoded again for edits.
//! - [`transform`]: jq expressions (jaq) over letters: a value decoded, transformed and
//!   written back in its own format, the variables, the diffs.
//! - [`read`]: what the TUI and `list` read — the `DeadLetterSource` trait, the store
//!   and its compact index, the filter language, triage and fingerprints, the closed
//!   loop after a replay, the overview, payload decoding for display.
//! - [`route`]: the router that retries and dead-letters, and the `DeadLetterSink` trait.
//! - [`write`](mod@write): every write to a DLQ, through one `Writer` (exactly-once replay,
//!   resolve, edits), with replay planning, the audit log and fault points.
//! - [`export`]: letters as JSON, redaction, and the export bundle's manifest.

pub mod decoders;
pub mod export;
pub mod http;
pub mod model;
pub mod read;
pub mod route;
pub mod transform;
pub mod write;

pub use model::error::EngineError;
pub use model::letter::{
    DeadLetter, FailureContext, Header, Headers, LetterId, LetterState, Reason, ReplayRecord,
    SourceCoords,
};
