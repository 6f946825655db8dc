//! The ledger's and its checkpoint topic's settings, and creating them: one partition
//! each, kept until a checkpoint removes records (see `checkpoint_write`).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaBackendError, KafkaConfig, Quiet};

/// The topic settings of a ledger and of its checkpoint topic: kept until a checkpoint
/// removes records (no time or size retention), so DeleteRecords is allowed.
pub const TOPIC_CONFIG: [(&str, &str); 3] = [
    ("cleanup.policy", "delete"),
    ("retention.ms", "-1"),
    ("retention.bytes", "-1"),
];

/// An admin client on `cfg`'s cluster.
pub(super) fn admin(cfg: &KafkaConfig) -> Result<AdminClient<Quiet>, KafkaBackendError> {
    cfg.client_config(&[])
        .create_with_context(Quiet)
        .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))
}

/// Creates `topic` (one partition, [`TOPIC_CONFIG`]) unless it exists.
pub(super) async fn ensure(cfg: &KafkaConfig, topic: &str) -> Result<(), KafkaBackendError> {
    let admin = admin(cfg)?;
    let mut new = NewTopic::new(topic, 1, TopicReplication::Fixed(-1));
    for (k, v) in TOPIC_CONFIG {
        new = new.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let res = admin
        .create_topics([&new], &opts)
        .await
        .map_err(|e| cfg.error(format!("creating '{topic}'"), e))?;
    for r in res {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                return Err(cfg.error(format!("creating '{t}'"), KafkaError::AdminOp(code)));
            }
        }
    }
    Ok(())
}
