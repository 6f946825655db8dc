//! The DLQ collections of a MongoDB database at a glance ([`DlqSummary`]): each
//! collection whose name the patterns select, with its estimated document count (from
//! the collection's metadata), arrivals in each of the last 24 hours and the oldest
//! letter (counts and one sorted read on the mapped `error_time` field, which an index
//! on it answers without a collection scan), its TTL index as retention, and the
//! letters by state from the documents' `morgue` field and the claim pattern's
//! `processed` (`claimed`).

use std::collections::BTreeMap;

use futures::future::join_all;
use mongodb::Database;
use mongodb::bson::{Bson, DateTime, Document, doc};

use super::dlq::MongoDlq;
use super::doc::FieldMap;
use super::{MongoBackendError, MongoConfig};
use crate::engine::LetterState;
use crate::engine::model::ledger::LedgerStore;
use crate::engine::read::overview::{DlqNames, DlqSummary, HOURS, is_morgue_topic};

const HOUR_MS: i64 = 3_600_000;

/// The DLQ collections of `cfg.db` that `names` selects, by name (`cfg.collection` is
/// not used).
pub async fn overview(
    cfg: &MongoConfig,
    map: &FieldMap,
    names: &DlqNames,
) -> Result<Vec<DlqSummary>, MongoBackendError> {
    let db = cfg.database().await?;
    let mut colls: Vec<String> = db
        .list_collection_names()
        .await
        .map_err(|e| {
            MongoBackendError::Request(format!("listing collections of '{}': {e}", cfg.db))
        })?
        .into_iter()
        .filter(|c| !is_morgue_topic(c) && names.matches(c, &[]))
        .collect();
    colls.sort();
    let now = chrono::Utc::now().timestamp_millis();
    let each = colls.iter().map(|c| summary(&db, cfg, map, c, now));
    Ok(join_all(each).await)
}

/// One collection's figures; a figure that cannot be read stays empty (logged).
async fn summary(
    db: &Database,
    cfg: &MongoConfig,
    map: &FieldMap,
    name: &str,
    now: i64,
) -> DlqSummary {
    let coll = db.collection::<Document>(name);
    let time = map.error_time.as_str();
    let warn = |what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!("{what} of collection '{name}': {e}");
    };
    let mut s = DlqSummary {
        name: name.to_string(),
        kind: "mongo",
        hourly: vec![0; HOURS],
        ..DlqSummary::default()
    };
    match coll.estimated_document_count().await {
        Ok(n) => s.letters = n,
        Err(e) => warn("count", &e),
    }
    let hours = (0..HOURS).map(|h| {
        let from = now - (HOURS - h) as i64 * HOUR_MS;
        let to = from + HOUR_MS;
        let filter = doc! { time: {
            "$gte": DateTime::from_millis(from),
            "$lt": DateTime::from_millis(to),
        } };
        let coll = coll.clone();
        async move { coll.count_documents(filter).await }
    });
    for (slot, got) in s.hourly.iter_mut().zip(join_all(hours).await) {
        match got {
            Ok(n) => *slot = n,
            Err(e) => warn("arrivals", &e),
        }
    }
    let oldest = coll
        .find_one(doc! { time: { "$type": "date" } })
        .sort(doc! { time: 1 })
        .projection(doc! { time: 1 })
        .await;
    match oldest {
        Ok(d) => {
            s.oldest_ms = d.and_then(|d| d.get_datetime(time).ok().map(|t| t.timestamp_millis()))
        }
        Err(e) => warn("oldest letter", &e),
    }
    s.retention_ms = ttl_ms(&coll, time).await;
    let cfg = MongoConfig {
        collection: name.to_string(),
        ..cfg.clone()
    };
    match MongoDlq::open(cfg, map.clone()).await {
        Ok(dlq) => match states(&dlq).await {
            Ok(states) => s.states = states,
            Err(e) => warn("letters by state", &e),
        },
        Err(e) => warn("letters by state", &e),
    }
    s
}

/// Letters by state as `list` shows them: the ledger's, plus `claimed` for the
/// documents a processor claimed (the mapped `processed` is `true`) that morgue holds
/// no other state for (no `morgue.state`, or `new` without a replay); those among them
/// with a `new` ledger entry move from `new` to `claimed`. Two counts on the server.
async fn states(dlq: &MongoDlq) -> Result<BTreeMap<&'static str, u64>, String> {
    let mut states = dlq.load().await.map_err(|e| e.to_string())?.states();
    let claimed = doc! {
        dlq.map.processed.as_str(): true,
        "morgue.state": { "$in": [Bson::Null, "new"] },
        "morgue.replays.0": { "$exists": false },
    };
    let mut with_entry = claimed.clone();
    with_entry.insert("morgue.ledger", doc! { "$exists": true });
    let (all, with_entry) = tokio::join!(
        dlq.coll.count_documents(claimed),
        dlq.coll.count_documents(with_entry)
    );
    let (all, with_entry) = (
        all.map_err(|e| e.to_string())?,
        with_entry.map_err(|e| e.to_string())?,
    );
    if with_entry > 0
        && let Some(new) = states.get_mut(LetterState::New.as_str())
    {
        *new = new.saturating_sub(with_entry);
        if *new == 0 {
            states.remove(LetterState::New.as_str());
        }
    }
    if all > 0 {
        *states.entry(LetterState::Claimed.as_str()).or_insert(0) += all;
    }
    Ok(states)
}

/// The TTL of an index on `time` (`expireAfterSeconds`), in ms: how long a letter is kept.
async fn ttl_ms(coll: &mongodb::Collection<Document>, time: &str) -> Option<i64> {
    use futures::TryStreamExt;
    let indexes: Vec<_> = coll.list_indexes().await.ok()?.try_collect().await.ok()?;
    indexes.iter().find_map(|ix| {
        let on_time = ix.keys.len() == 1 && ix.keys.contains_key(time);
        let ttl = ix.options.as_ref()?.expire_after?;
        on_time.then(|| i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
    })
}
