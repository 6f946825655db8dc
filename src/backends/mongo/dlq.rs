//! A MongoDB DLQ collection as a sink (the router writes), a source (scan sorted by
//! `error_time`, live tail by change stream or polling), a ledger (state kept in the
//! document under `morgue.*`, never touching the original value), and the claim
//! pattern that processors use.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::options::FullDocumentType;
use tokio::sync::mpsc;

use super::doc::{FieldMap, id_candidates, letter_from_doc};
use super::{MongoConfig, redact};
use crate::engine::model::error::FailureKind;
use crate::engine::model::ledger::{LedgerState, LedgerStore};
use crate::engine::read::source::{DeadLetterSource, SourceError, SourceEvent, StartAt};
use crate::engine::{DeadLetter, LetterId};

/// Letters per batch sent to the channel.
const BATCH: usize = 512;
/// How often the polling tail asks for new documents.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How far behind the newest ObjectId a polled document's may be (lagging clocks).
const POLL_OVERLAP: Duration = Duration::from_secs(300);
/// Every this many polls, the polling tail lists every `_id` to catch what no window showed.
const SWEEP_EVERY: u64 = 30;

/// One DLQ collection.
#[derive(Clone)]
pub struct MongoDlq {
    cfg: MongoConfig,
    pub(super) coll: Collection<Document>,
    pub(super) map: FieldMap,
    /// The Kafka cluster the router consumes, part of the `_id`s it writes.
    pub(super) origin: Option<String>,
}

impl MongoDlq {
    /// Connects to the collection named by `cfg`, reading documents through `map`; the
    /// first write creates a collection that does not exist yet (the router's sink).
    pub async fn open(cfg: MongoConfig, map: FieldMap) -> Result<Self, super::MongoBackendError> {
        let coll = cfg.connect().await?;
        Ok(MongoDlq {
            cfg,
            coll,
            map,
            origin: None,
        })
    }

    /// Connects to the collection named by `cfg` if it exists (a DLQ to read): a
    /// missing one is an error, not created. [`MongoDlq::open`] is for writers.
    pub async fn open_existing(
        cfg: MongoConfig,
        map: FieldMap,
    ) -> Result<Self, super::MongoBackendError> {
        let coll = cfg.connect_existing().await?;
        Ok(MongoDlq {
            cfg,
            coll,
            map,
            origin: None,
        })
    }

    /// Names the Kafka cluster the router consumes (its cluster id), so that the
    /// `_id`s of dead letters from another cluster never collide.
    pub fn with_origin(mut self, cluster: impl Into<String>) -> Self {
        self.origin = Some(cluster.into());
        self
    }

    /// `mongodb://host/db.collection`, password hidden.
    pub fn describe(&self) -> String {
        let uri = redact(&self.cfg.uri);
        let base = uri.split('?').next().unwrap_or(&uri).trim_end_matches('/');
        format!("{base}/{}.{}", self.cfg.db, self.cfg.collection)
    }

    /// A read or write that the server failed: its kind, and one line saying what was
    /// being done.
    fn failed(&self, what: &str, e: mongodb::error::Error) -> SourceError {
        let line = format!(
            "{what} {}: {}",
            MongoDlq::describe(self),
            super::errors::short(&e)
        );
        SourceError::caused(super::errors::kind(&e), line, e)
    }

    pub(super) fn id_filter(id: &LetterId) -> Result<Document, String> {
        match id {
            LetterId::Mongo(s) => Ok(doc! { "_id": { "$in": id_candidates(s) } }),
            LetterId::Kafka { .. } => Err(format!(
                "'{id}' is a Kafka id; MongoDB letters are named by _id"
            )),
        }
    }

    /// Claims a letter as the processors do (`processed: true`, `process_time: now`);
    /// false when it was already claimed. The error has the server's kind
    /// (unreachable, refused, …) and names the letter and the collection.
    pub async fn claim(&self, id: &LetterId) -> Result<bool, SourceError> {
        let mut filter =
            Self::id_filter(id).map_err(|w| SourceError::new(FailureKind::NotFound, w))?;
        filter.insert(&self.map.processed, doc! { "$exists": false });
        let set =
            doc! { "$set": { &self.map.processed: true, &self.map.process_time: DateTime::now() } };
        let r = self.coll.update_one(filter, set).await;
        let r = r.map_err(|e| self.failed(&format!("claiming {id} in"), e))?;
        Ok(r.modified_count == 1)
    }

    /// Releases a claim so a processor picks the letter up again; false when it was not
    /// claimed. The error is typed as [`MongoDlq::claim`]'s.
    pub async fn release(&self, id: &LetterId) -> Result<bool, SourceError> {
        let mut filter =
            Self::id_filter(id).map_err(|w| SourceError::new(FailureKind::NotFound, w))?;
        filter.insert(&self.map.processed, doc! { "$exists": true });
        let unset = doc! { "$unset": { &self.map.processed: "", &self.map.process_time: "" } };
        let r = self.coll.update_one(filter, unset).await;
        let r = r.map_err(|e| self.failed(&format!("releasing {id} in"), e))?;
        Ok(r.modified_count == 1)
    }

    /// Sends every document from `from`, sorted by `error_time`, in batches.
    /// Returns the largest `_id` seen and how many letters were sent.
    async fn scan(
        &self,
        from: StartAt,
        tx: &mpsc::Sender<SourceEvent>,
    ) -> Result<(Option<Bson>, u64), mongodb::error::Error> {
        let mut filter = Document::new();
        if let StartAt::Time(t) = from {
            filter.insert(
                &self.map.error_time,
                doc! { "$gte": DateTime::from_millis(t) },
            );
        }
        let mut find = self
            .coll
            .find(filter)
            .sort(doc! { &self.map.error_time: 1, "_id": 1 });
        if let StartAt::Offset(n) = from {
            find = find.skip(u64::try_from(n).unwrap_or(0));
        }
        let mut cursor = find.await?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut last_id = None;
        let mut sent = 0u64;
        while let Some(d) = cursor.try_next().await? {
            sent += 1;
            if last_id
                .as_ref()
                .is_none_or(|l: &Bson| bson_gt(d.get("_id"), l))
            {
                last_id = d.get("_id").cloned();
            }
            batch.push(letter_from_doc(&d, &self.map));
            if batch.len() >= BATCH
                && tx
                    .send(SourceEvent::Letters(std::mem::take(&mut batch)))
                    .await
                    .is_err()
            {
                return Ok((last_id, sent));
            }
        }
        if !batch.is_empty() {
            // The reader hung up (the command or view ended): the last batch has no one to go to.
            let _ = tx.send(SourceEvent::Letters(batch)).await;
        }
        Ok((last_id, sent))
    }

    /// Polls for documents with a larger `_id` than the last seen (ObjectIds grow with time).
    /// Every `_id` in the collection now (the polling tail's memory of what exists).
    async fn all_ids(&self) -> Result<HashSet<String>, mongodb::error::Error> {
        let mut cursor = self
            .coll
            .find(doc! {})
            .projection(doc! { "_id": 1 })
            .await?;
        let mut ids = HashSet::new();
        while let Some(d) = cursor.try_next().await? {
            if let Some(id) = d.get("_id") {
                ids.insert(id.to_string());
            }
        }
        Ok(ids)
    }

    /// The live tail without change streams. Each second it reads the documents whose
    /// ObjectId is at most [`POLL_OVERLAP`] older than the newest seen (writers' clocks
    /// lag); when the collection holds more documents than it knows, and every
    /// [`SWEEP_EVERY`] polls anyway, it lists every `_id` and reads the ones it has not
    /// seen (string ids, far-lagging clocks). `known` holds every id seen so far.
    async fn poll_tail(
        &self,
        mut newest: Option<Bson>,
        mut known: HashSet<String>,
        tx: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), mongodb::error::Error> {
        for polls in 1u64.. {
            tokio::time::sleep(POLL_EVERY).await;
            if tx.is_closed() {
                return Ok(());
            }
            let mut fresh: Vec<Document> = Vec::new();
            if let Some(Bson::ObjectId(o)) = &newest {
                let since = o.timestamp().timestamp_millis() / 1000
                    - i64::try_from(POLL_OVERLAP.as_secs()).unwrap_or(0);
                let mut bytes = [0u8; 12];
                bytes[..4].copy_from_slice(&u32::try_from(since.max(0)).unwrap_or(0).to_be_bytes());
                let low = mongodb::bson::oid::ObjectId::from_bytes(bytes);
                let docs: Vec<Document> = self
                    .coll
                    .find(doc! { "_id": { "$gte": low } })
                    .await?
                    .try_collect()
                    .await?;
                fresh.extend(docs.into_iter().filter(|d| {
                    d.get("_id")
                        .is_some_and(|i| !known.contains(&i.to_string()))
                }));
            }
            let count = self.coll.count_documents(doc! {}).await?;
            let shown = known.len() as u64 + fresh.len() as u64;
            if count > shown || polls % SWEEP_EVERY == 0 {
                let pending: HashSet<String> = fresh
                    .iter()
                    .filter_map(|d| d.get("_id").map(ToString::to_string))
                    .collect();
                let unseen: Vec<Bson> = self
                    .coll
                    .find(doc! {})
                    .projection(doc! { "_id": 1 })
                    .await?
                    .try_collect::<Vec<Document>>()
                    .await?
                    .into_iter()
                    .filter_map(|d| d.get("_id").cloned())
                    .filter(|i| {
                        !known.contains(&i.to_string()) && !pending.contains(&i.to_string())
                    })
                    .collect();
                if !unseen.is_empty() {
                    let docs: Vec<Document> = self
                        .coll
                        .find(doc! { "_id": { "$in": unseen } })
                        .await?
                        .try_collect()
                        .await?;
                    fresh.extend(docs);
                }
            }
            if fresh.is_empty() {
                continue;
            }
            for d in &fresh {
                if let Some(id) = d.get("_id") {
                    known.insert(id.to_string());
                    if newest.as_ref().is_none_or(|n| bson_gt(Some(id), n)) {
                        newest = Some(id.clone());
                    }
                }
            }
            let letters = fresh
                .iter()
                .map(|d| letter_from_doc(d, &self.map))
                .collect();
            if tx.send(SourceEvent::Letters(letters)).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}

fn bson_gt(a: Option<&Bson>, b: &Bson) -> bool {
    match (a, b) {
        (Some(Bson::ObjectId(x)), Bson::ObjectId(y)) => x > y,
        _ => false,
    }
}

/// A document `_id` as a letter id.
pub(super) fn id_from_bson(b: &Bson) -> LetterId {
    match b {
        Bson::ObjectId(o) => LetterId::Mongo(o.to_hex()),
        Bson::String(s) => LetterId::Mongo(s.clone()),
        other => LetterId::Mongo(other.to_string()),
    }
}

#[async_trait]
impl DeadLetterSource for MongoDlq {
    fn describe(&self) -> String {
        MongoDlq::describe(self)
    }

    async fn count(&self) -> Result<u64, SourceError> {
        self.coll
            .count_documents(doc! {})
            .await
            .map_err(|e| self.failed("counting", e))
    }

    async fn stream(
        &self,
        from: StartAt,
        follow: bool,
        tx: mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        let fail = |e| self.failed("reading", e);
        // Open the change stream before scanning so nothing inserted meanwhile is missed
        // (a letter seen twice is merged by id downstream).
        let watch = if follow {
            Some(
                self.coll
                    .watch()
                    .pipeline([doc! { "$match": { "operationType": { "$in": ["insert", "update", "replace"] } } }])
                    .full_document(FullDocumentType::UpdateLookup)
                    .await,
            )
        } else {
            None
        };
        // Polling needs to know what exists, to tell what is new.
        let known = match &watch {
            Some(Err(_)) => Some(self.all_ids().await.map_err(fail)?),
            _ => None,
        };
        let (last, delivered) = if from == StartAt::End {
            let newest = self
                .coll
                .find_one(doc! {})
                .sort(doc! { "_id": -1 })
                .await
                .map_err(fail)?;
            (newest.and_then(|d| d.get("_id").cloned()), 0)
        } else {
            self.scan(from, &tx).await.map_err(fail)?
        };
        if tx.send(SourceEvent::CaughtUp { delivered }).await.is_err() {
            return Ok(());
        }
        // While following, a server that stops answering is reported (and its return).
        let _watchdog = follow.then(|| {
            let (client, server, tx) = (self.coll.client().clone(), self.cfg.servers(), tx.clone());
            super::liveness::Watchdog::start(client, server, tx)
        });
        match watch {
            None => Ok(()),
            Some(Ok(mut stream)) => {
                // A closed channel is seen by the next send of letters, which ends the stream.
                let _ = tx
                    .send(SourceEvent::Notice("live: change stream".into()))
                    .await;
                while let Some(ev) = stream.try_next().await.map_err(fail)? {
                    let Some(d) = ev.full_document else { continue };
                    let letter = letter_from_doc(&d, &self.map);
                    if tx.send(SourceEvent::Letters(vec![letter])).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(())
            }
            Some(Err(why)) => {
                let note = format!(
                    "live: polling every {}s (no change streams here: {})",
                    POLL_EVERY.as_secs(),
                    super::errors::short(&why)
                );
                // A closed channel is seen by the poll loop (tx.is_closed()), which then ends.
                let _ = tx.send(SourceEvent::Notice(note)).await;
                self.poll_tail(last, known.unwrap_or_default(), &tx)
                    .await
                    .map_err(fail)
            }
        }
    }

    async fn ledger(&self) -> Result<LedgerState, SourceError> {
        LedgerStore::load(self).await.map_err(SourceError::from)
    }

    async fn fetch(&self, id: &LetterId) -> Result<DeadLetter, SourceError> {
        let filter =
            Self::id_filter(id).map_err(|why| SourceError::new(FailureKind::NotFound, why))?;
        match self.coll.find_one(filter).await {
            Ok(Some(d)) => Ok(letter_from_doc(&d, &self.map)),
            Ok(None) => Err(SourceError::new(
                FailureKind::NotFound,
                format!("no letter {id} in {}", MongoDlq::describe(self)),
            )),
            Err(e) => Err(self.failed("reading", e)),
        }
    }
}
