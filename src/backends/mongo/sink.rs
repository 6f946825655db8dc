//! A MongoDB collection as the router's [`DeadLetterSink`], idempotent without
//! touching the team's indexes: a dead letter morgue writes gets a deterministic
//! `_id` from where its message was consumed (Kafka cluster id, topic, partition,
//! offset and record time), so a retried write finds the first one by its key, and two
//! failures of one message written by the team's own code never stall morgue.
//! Readers accept any `_id`. A write the server refuses is one line that says why.

use async_trait::async_trait;
use mongodb::bson::Bson;

use super::dlq::{MongoDlq, id_from_bson};
use super::doc::doc_from_letter;
use super::errors::{is_duplicate, kind, short};
use crate::engine::route::sink::{DeadLetterSink, SinkError};
use crate::engine::{DeadLetter, LetterId};

/// The `_id` morgue gives the dead letter of a consumed message:
/// `m.<cluster>.<topic>.<partition>.<offset>.<timestamp>` (the timestamp tells a
/// recreated topic's message from the old one at the same offset).
pub fn letter_key(cluster: &str, l: &DeadLetter) -> Option<String> {
    let s = &l.source;
    Some(format!(
        "m.{cluster}.{}.{}.{}.{}",
        s.topic.as_deref()?,
        s.partition?,
        s.offset?,
        s.timestamp_ms
            .map_or_else(|| "-".to_string(), |t| t.to_string())
    ))
}

impl super::dlq::MongoDlq {
    /// Inserts `l` as a document with `_id` `id`; false when that `_id` exists.
    pub async fn insert_with_id(
        &self,
        id: &str,
        l: &DeadLetter,
        now_ms: i64,
    ) -> anyhow::Result<bool> {
        let mut d = super::doc::doc_from_letter(l, &self.map, now_ms);
        d.insert("_id", id);
        match self.coll.insert_one(d).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(anyhow::anyhow!("inserting '{id}': {}", short(&e))),
        }
    }
}

#[async_trait]
impl DeadLetterSink for MongoDlq {
    async fn write(&self, letter: &DeadLetter) -> Result<LetterId, SinkError> {
        let mut d = doc_from_letter(letter, &self.map, chrono::Utc::now().timestamp_millis());
        let key = letter_key(self.origin.as_deref().unwrap_or("kafka"), letter);
        if let Some(k) = &key {
            d.insert("_id", Bson::String(k.clone()));
        }
        // Acknowledged only once journaled: the offset is committed on this ack, so a
        // server crash right after it must not lose the letter.
        let durable = mongodb::options::WriteConcern::builder()
            .journal(true)
            .build();
        match self.coll.insert_one(d).write_concern(durable).await {
            Ok(r) => Ok(id_from_bson(&r.inserted_id)),
            // A retry of a write whose ack was lost: the letter is already there.
            Err(e) if is_duplicate(&e) && key.is_some() => {
                Ok(LetterId::Mongo(key.unwrap_or_default()))
            }
            Err(e) => Err(SinkError::caused(
                kind(&e),
                format!("writing to {}: {}", self.describe(), short(&e)),
                e,
            )),
        }
    }

    fn describe(&self) -> String {
        MongoDlq::describe(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Headers;

    #[test]
    fn the_key_names_cluster_topic_partition_offset_and_time() {
        let mut l = DeadLetter::from_record(None, None, None, None, Headers::default());
        assert_eq!(
            letter_key("c1", &l),
            None,
            "no source: the server picks the _id"
        );
        l.source.topic = Some("trades.v2".into());
        l.source.partition = Some(3);
        l.source.offset = Some(42);
        assert_eq!(letter_key("c1", &l).unwrap(), "m.c1.trades.v2.3.42.-");
        l.source.timestamp_ms = Some(1_732_700_000_000);
        let k = letter_key("c1", &l).unwrap();
        assert_eq!(k, "m.c1.trades.v2.3.42.1732700000000");
        assert!(k.parse::<LetterId>().is_ok(), "usable as a letter id");
        assert_ne!(letter_key("c2", &l), Some(k));
    }
}
