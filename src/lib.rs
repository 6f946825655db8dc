//! morgue: read, triage and replay dead letters from Kafka topics and MongoDB
//! collections. `engine` is the terminal-free core (model, conventions, reading,
//! replay); `backends` talk to Kafka and MongoDB; `tui` draws; `cli` is the edge.

pub mod backends;
pub mod cli;
pub mod engine;
pub mod tui;
