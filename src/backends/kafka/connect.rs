//! Kafka Connect's dead-letter topics, whatever they are called: each sink connector
//! names its DLQ in `errors.deadletterqueue.topic.name`, and a Connect cluster keeps
//! every connector's config in its config topic (`config.storage.topic`, by default
//! `connect-configs`), one record per connector keyed `connector-NAME` whose value is
//! `{"properties": {...}}` (a null value: the connector was deleted). That topic is
//! small, so the overview reads it whole to add those DLQs to the ones its name
//! patterns find.

use std::collections::BTreeMap;
use std::time::Instant;

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{Browser, KafkaConfig};

/// The property in which a sink connector names its DLQ topic.
pub const DLQ_PROPERTY: &str = "errors.deadletterqueue.topic.name";

/// Whether `topic` looks like a Connect cluster's config topic (`connect-configs`,
/// `prod-connect-configs`, `connect_cluster.config`, …).
pub fn is_config_topic(topic: &str) -> bool {
    let t = topic.to_ascii_lowercase();
    t.contains("connect") && (t.ends_with("configs") || t.ends_with("config"))
}

/// The DLQ topics named by the connectors whose configs `topics` hold (latest record
/// per connector; deleted connectors left out). A topic that cannot be read within the
/// connect timeout adds what was read of it, with a warning in the log.
pub fn dlq_names(cfg: &KafkaConfig, c: &Browser, topics: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for topic in topics {
        // Connector names are per Connect cluster: one map per config topic.
        let mut by_connector = BTreeMap::new();
        if let Err(e) = read(cfg, c, topic, &mut by_connector) {
            tracing::warn!("Connect config topic '{topic}' not read: {e}");
        }
        out.extend(by_connector.into_values().flatten());
    }
    out.sort();
    out.dedup();
    out
}

fn read(
    cfg: &KafkaConfig,
    c: &Browser,
    topic: &str,
    by_connector: &mut BTreeMap<Vec<u8>, Option<String>>,
) -> Result<(), String> {
    let marks = cfg.watermarks(c, topic).map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    let mut behind: Vec<(i32, i64)> = Vec::new();
    for (p, lo, hi) in marks {
        if hi > lo {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| e.to_string())?;
            behind.push((p, hi));
        }
    }
    if behind.is_empty() {
        return Ok(());
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + cfg.connect_timeout;
    while !behind.is_empty() && Instant::now() < deadline {
        let Some(msg) = c.poll(std::time::Duration::from_millis(100)) else {
            continue;
        };
        let Ok(msg) = msg else {
            continue; // end of a partition, or a transient error: the deadline bounds it
        };
        let (p, o) = (msg.partition(), msg.offset());
        behind.retain(|&(q, hi)| !(q == p && o + 1 >= hi));
        let Some(key) = msg.key().filter(|k| k.starts_with(b"connector-")) else {
            continue;
        };
        let dlq = msg.payload().map(|v| {
            serde_json::from_slice::<serde_json::Value>(v)
                .ok()
                .and_then(|j| j["properties"][DLQ_PROPERTY].as_str().map(str::to_string))
                .filter(|s| !s.trim().is_empty())
        });
        // A null value deletes the connector; a config without a DLQ names none.
        by_connector.insert(key.to_vec(), dlq.flatten());
    }
    // The consumer is dropped right after this check; a failed unassign changes nothing.
    let _ = c.unassign();
    if behind.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "not read to its end within {:?}",
            cfg.connect_timeout
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_topics_are_recognised_by_name() {
        assert!(is_config_topic("connect-configs"));
        assert!(is_config_topic("prod-connect-configs"));
        assert!(is_config_topic("Connect_Cluster.config"));
        assert!(!is_config_topic("connect-offsets"));
        assert!(!is_config_topic("orders.configs"));
    }
}
