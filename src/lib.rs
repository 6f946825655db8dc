//! morgue: read, triage and replay dead letters from Kafka topics and MongoDB
//! collections. `engine` is the terminal-free core (model, header conventions, router,
//! replay planning, ledger, filter, index); `backends` talk to Kafka and MongoDB; `cli`
//! is the command line; `tui` will draw (so far it holds the terminal guard).

pub mod backends;
pub mod cli;
pub mod engine;
pub mod tui;
