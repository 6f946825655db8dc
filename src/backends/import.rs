//! Importing exported letters into a DLQ, idempotently: each letter carries an import
//! id (`morgue-import-id`: the exporting DLQ and the letter's id there), and a letter
//! whose id is already in the target is not written again — importing a file twice
//! writes its letters once. Keys, values and headers are written as exported.
//!
//! - Kafka: under the target's shared `transactional.id` (`morgue-import.<topic>`):
//!   initialising it fences any other import into the topic, then the topic is read
//!   (committed records only) for the ids present, and the missing letters are written
//!   in one transaction. Two imports at once: the fenced one fails to commit and writes
//!   nothing; run again, it finds the other's letters (`tests/bundle.rs` pauses one
//!   import between its read and its write while another runs).
//! - MongoDB: each letter's document `_id` is its import id; a duplicate is skipped by
//!   the server's unique `_id`.

use std::collections::HashSet;

use crate::backends::kafka::KafkaConfig;
use crate::backends::kafka::partitioner::choose;
use crate::backends::kafka::txn::{Txn, TxnRecord};
use crate::backends::mongo::dlq::MongoDlq;
use crate::engine::DeadLetter;

/// The header that names an imported letter's origin.
pub const IMPORT_ID: &str = "morgue-import-id";

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Imported {
    /// The import ids of the letters written.
    pub written: Vec<String>,
    /// Letters already in the target (imported before).
    pub present: u64,
}

/// The import id of a letter exported from `dlq` with id `id`.
pub fn import_id(dlq: &str, id: &str) -> String {
    format!("{dlq}#{id}")
}

/// Writes the letters (with their import ids) that `topic` does not hold yet.
pub async fn into_kafka(
    cfg: &KafkaConfig,
    topic: &str,
    letters: Vec<(String, DeadLetter)>,
) -> anyhow::Result<Imported> {
    let txn = Txn::new(cfg.clone(), format!("morgue-import.{topic}"));
    let mut slot = txn.lock().await;
    txn.ensure(&mut slot).await?;
    let (c, t) = (cfg.clone(), topic.to_string());
    let (present, partitions) = tokio::task::spawn_blocking(move || {
        let mut ids = HashSet::new();
        c.read_to_end(&t, |l| {
            if let Some(v) = l.headers.last(IMPORT_ID) {
                ids.insert(String::from_utf8_lossy(v).into_owned());
            }
        })?;
        let consumer = c.browse_consumer()?;
        let n = c.partitions(&consumer, &t)?.len();
        Ok::<_, anyhow::Error>((ids, i32::try_from(n).unwrap_or(1)))
    })
    .await??;
    // Tests stop here, between reading what is present and writing the rest.
    crate::engine::write::fault::pause("import-read").await;
    let mut out = Imported::default();
    let mut todo = Vec::new();
    for (iid, mut l) in letters {
        if present.contains(&iid) {
            out.present += 1;
            continue;
        }
        l.headers.0.retain(|h| h.name != IMPORT_ID);
        l.headers.push(IMPORT_ID, iid.clone().into_bytes());
        todo.push(l);
        out.written.push(iid);
    }
    let records: Vec<TxnRecord<'_>> = todo
        .iter()
        .map(|l| TxnRecord {
            topic,
            partition: choose(
                l.key.as_deref(),
                partitions,
                l.id.as_ref().and_then(partition_of),
            ),
            key: l.key.as_deref(),
            value: l.value.as_deref(),
            headers: Some(&l.headers),
        })
        .collect();
    if !records.is_empty()
        && let Err(e) = txn.run(&mut slot, &records).await
    {
        let e = e.to_string();
        if e.to_lowercase().contains("fenced") {
            anyhow::bail!(
                "another import into '{topic}' took over while this one ran, so this one wrote nothing; run it again to import what is still missing ({e})"
            );
        }
        anyhow::bail!(e);
    }
    Ok(out)
}

fn partition_of(id: &crate::engine::LetterId) -> Option<i32> {
    match id {
        crate::engine::LetterId::Kafka { partition, .. } => Some(*partition),
        crate::engine::LetterId::Mongo(_) => None,
    }
}

/// Inserts each letter as a document whose `_id` is its import id; duplicates skipped.
pub async fn into_mongo(
    dlq: &MongoDlq,
    letters: Vec<(String, DeadLetter)>,
) -> anyhow::Result<Imported> {
    let mut out = Imported::default();
    let now = chrono::Utc::now().timestamp_millis();
    for (iid, l) in letters {
        if dlq.insert_with_id(&iid, &l, now).await? {
            out.written.push(iid);
        } else {
            out.present += 1;
        }
    }
    Ok(out)
}
