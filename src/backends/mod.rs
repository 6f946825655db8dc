//! Backends put dead letters in and take them out of real servers: a Kafka topic
//! (`kafka`) or a MongoDB collection (`mongo`). Backend-specific knobs stay here.

pub mod kafka;
pub mod mongo;
