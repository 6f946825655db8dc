//! The model at the engine's ground: what a dead letter is, how frameworks write its
//! failure context into headers, what the replay ledger records and the fold that is a
//! log ledger's compare-and-set (with the compact base a checkpoint gives it), bytes
//! that may not be text, text cut short, errors,
//! durations and URLs with credentials.
//! Nothing here imports another wing.

pub mod after_replay;
pub mod conventions;
pub mod duration;
pub mod encoding;
pub mod error;
pub mod glob;
pub mod json_text;
pub mod ledger;
pub mod ledger_base;
pub mod ledger_fold;
pub mod letter;
pub mod names;
pub mod text;
pub mod urls;
