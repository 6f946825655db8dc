//! Backends put dead letters in and take them out of real servers: a Kafka topic
//! (`kafka`) or a MongoDB collection (`mongo`); and read an exported file (`file`). Backend-specific knobs stay here;
//! `open` turns a resolved DLQ into the engine's traits for any front end.

pub mod file;
pub mod import;
pub mod kafka;
pub mod mongo;
pub mod open;
