//! morgue: read, triage and replay dead letters from Kafka topics and MongoDB
//! collections. `engine` is the terminal-free core (model, header conventions, router,
//! replay planning and the one write path with its exactly-once protocol, ledger,
//! filter, index, payload decoding); `backends` talk to Kafka
//! and MongoDB; `cli` is the command line; `tui` is the terminal UI.

// No `unsafe` anywhere in morgue's own code: signals, user names and the rest go
// through safe wrappers (nix), and tests never change the environment.
#![forbid(unsafe_code)]

pub mod backends;
pub mod cli;
pub mod engine;
pub mod tui;
