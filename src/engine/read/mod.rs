//! The read wing: everything the TUI and `list` need to show a DLQ — the
//! [`source::DeadLetterSource`] trait, the store of letters with its compact index and
//! keys, the filter language and its JSONPath, the triage board and error
//! fingerprints (with their sliding window for the exporter, [`groups`]), the closed
//! loop after a replay ([`outcome`]), the overview's model, and payload decoding for
//! display.

pub mod counted;
pub mod decode;
pub mod filter;
mod filter_parse;
pub mod fingerprint;
pub mod groups;
pub mod index;
pub mod jsonpath;
pub mod keys;
pub mod outcome;
pub mod overview;
pub mod source;
pub mod store;
pub mod triage;
