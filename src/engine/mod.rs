//! The dead-letter engine: the model, header conventions, the router that writes
//! dead letters, and the replay side that reads them back and writes to them through
//! one [`writer::Writer`] (exactly-once replay, resolve, edits). It knows dead letters,
//! not terminals: nothing here imports ratatui, crossterm, syntect or arboard.

pub mod audit;
pub mod bundle;
pub mod conventions;
pub mod decode;
pub mod decoders;
pub mod duration;
pub mod encoding;
pub mod error;
pub mod fault;
pub mod filter;
pub mod fingerprint;
pub mod index;
pub mod json;
pub mod jsonpath;
pub mod keys;
pub mod ledger;
pub mod ledger_fold;
pub mod letter;
pub mod outcome;
pub mod overview;
pub mod redact;
pub mod replay;
pub mod router;
pub mod sink;
pub mod source;
pub mod store;
pub mod triage;
pub mod writer;

pub use error::EngineError;
pub use letter::{
    DeadLetter, FailureContext, Header, Headers, LetterId, LetterState, Reason, ReplayRecord,
    SourceCoords,
};
