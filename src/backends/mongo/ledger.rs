//! The ledger of a MongoDB DLQ lives in the letters' own documents, under
//! `morgue.ledger` (the whole entry), `morgue.state`, `morgue.replays` and
//! `morgue.edited_value`; the original value is never touched.
//!
//! Every write is a conditional update on `morgue.ledger.version`, so of two
//! operators writing from the same version exactly one matches; the other is told
//! what the document holds now. Copies of one source message are arbitrated by a
//! unique `_id` in morgue's own collection `<collection>.morgue-sources`
//! (`{_id: "topic/partition/offset", letter: id}`): inserting it, or moving it from a
//! letter that no longer holds the source, is the server's decision.

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};

use super::dlq::MongoDlq;
use super::doc::{get, id_candidates, text_or_binary};
use super::errors::is_duplicate;
use crate::engine::LetterId;
use crate::engine::model::error::FailureKind;
use crate::engine::model::ledger::{Conflict, LedgerEntry, LedgerError, LedgerState, LedgerStore};

impl MongoDlq {
    /// morgue's own collection of source claims, next to the DLQ collection.
    fn sources(&self) -> Collection<Document> {
        let ns = self.coll.namespace();
        self.coll
            .client()
            .database(&ns.db)
            .collection(&format!("{}.morgue-sources", ns.coll))
    }

    fn fail(&self, what: &str, e: &mongodb::error::Error) -> LedgerError {
        let msg = format!("{what} {}: {e}", self.describe());
        match super::errors::kind(e) {
            FailureKind::Unreachable => LedgerError::Unreachable(msg),
            FailureKind::Refused => LedgerError::Refused(msg),
            _ => LedgerError::Other(msg),
        }
    }

    /// The ledger entries of the documents matching `filter`.
    async fn entries(&self, filter: Document) -> Result<Vec<LedgerEntry>, LedgerError> {
        let mut cursor = self
            .coll
            .find(filter)
            .projection(doc! { "morgue.ledger": 1 })
            .await
            .map_err(|e| self.fail("reading ledger of", &e))?;
        let mut out = Vec::new();
        while let Some(d) = cursor
            .try_next()
            .await
            .map_err(|e| self.fail("reading ledger of", &e))?
        {
            if let Some(Bson::Document(e)) = get(&d, "morgue.ledger") {
                match mongodb::bson::from_document::<LedgerEntry>(e.clone()) {
                    Ok(entry) => out.push(entry),
                    Err(e) => tracing::warn!(
                        "ledger entry of document {} in {} is unreadable, skipped: {e}",
                        d.get("_id").map(ToString::to_string).unwrap_or_default(),
                        self.describe()
                    ),
                }
            }
        }
        Ok(out)
    }

    async fn entry(&self, id: &str) -> Result<Option<LedgerEntry>, LedgerError> {
        let filter = doc! { "_id": { "$in": id_candidates(id) } };
        Ok(self.entries(filter).await?.into_iter().next())
    }

    /// Claims source `src` for letter `id`; the holder's entry when another letter holds it.
    async fn claim_source(&self, src: &str, id: &str) -> Result<Option<LedgerEntry>, LedgerError> {
        let claims = self.sources();
        for _ in 0..4 {
            let durable = mongodb::options::WriteConcern::builder()
                .journal(true)
                .build();
            let claim = claims
                .insert_one(doc! { "_id": src, "letter": id })
                .write_concern(durable);
            match claim.await {
                Ok(_) => return Ok(None),
                Err(e) if !is_duplicate(&e) => return Err(self.fail("claiming a source in", &e)),
                Err(_) => {}
            }
            let holder = claims
                .find_one(doc! { "_id": src })
                .await
                .map_err(|e| self.fail("reading source claims of", &e))?
                .and_then(|d| d.get_str("letter").ok().map(str::to_string));
            let Some(holder) = holder else { continue };
            if holder == id {
                return Ok(None);
            }
            if let Some(e) = self.entry(&holder).await?.filter(LedgerEntry::holds_source) {
                return Ok(Some(e));
            }
            // The holder let go (its replay was cleared): move the claim, if nobody else did.
            let moved = claims
                .update_one(
                    doc! { "_id": src, "letter": &holder },
                    doc! { "$set": { "letter": id } },
                )
                .await
                .map_err(|e| self.fail("moving a source claim in", &e))?;
            if moved.matched_count == 1 {
                return Ok(None);
            }
        }
        Err(LedgerError::Other(format!(
            "source claim '{src}' in {} kept changing",
            self.describe()
        )))
    }

    /// One conditional write.
    async fn write_one(&self, entry: &LedgerEntry) -> Result<Result<(), Conflict>, LedgerError> {
        if entry.state == crate::engine::model::ledger::EntryState::Replaying
            && !entry.force
            && let Some(src) = &entry.source
            && let Some(holder) = self.claim_source(src, &entry.id).await?
        {
            return Ok(Err(Conflict::Copy(Box::new(holder))));
        }
        let mut filter =
            Self::id_filter(&LetterId::Mongo(entry.id.clone())).map_err(LedgerError::Other)?;
        if entry.version <= 1 {
            filter.insert("morgue.ledger.version", doc! { "$exists": false });
        } else {
            let prev = i64::try_from(entry.version - 1).unwrap_or(i64::MAX);
            filter.insert("morgue.ledger.version", prev);
        }
        let bad = |e: mongodb::bson::ser::Error| LedgerError::Other(e.to_string());
        let edited = entry
            .edited_value
            .as_ref()
            .and_then(|v| v.to_bytes().ok())
            .map_or(Bson::Null, |b| text_or_binary(&b));
        let update = doc! { "$set": {
            "morgue.ledger": mongodb::bson::to_bson(entry).map_err(bad)?,
            "morgue.state": mongodb::bson::to_bson(&entry.state).map_err(bad)?,
            "morgue.replays": mongodb::bson::to_bson(&entry.history).map_err(bad)?,
            "morgue.edited_value": edited,
        } };
        // Journaled before acknowledged: a replay is sent on the strength of this write.
        let durable = mongodb::options::WriteConcern::builder()
            .journal(true)
            .build();
        let r = self
            .coll
            .update_one(filter, update)
            .write_concern(durable)
            .await
            .map_err(|e| self.fail("recording state in", &e))?;
        if r.matched_count == 1 {
            return Ok(Ok(()));
        }
        match self.entry(&entry.id).await? {
            Some(now) => Ok(Err(Conflict::Changed(Box::new(now)))),
            None => {
                let exists = self
                    .coll
                    .count_documents(doc! { "_id": { "$in": id_candidates(&entry.id) } })
                    .await
                    .map_err(|e| self.fail("reading", &e))?;
                if exists == 0 {
                    return Err(LedgerError::NotFound(format!(
                        "no letter {} in {}",
                        entry.id,
                        self.describe()
                    )));
                }
                // An entry without a version was written by an older morgue: version 0.
                Ok(Err(Conflict::Changed(Box::new(LedgerEntry {
                    version: 0,
                    ..entry.clone()
                }))))
            }
        }
    }
}

#[async_trait]
impl LedgerStore for MongoDlq {
    async fn load(&self) -> Result<LedgerState, LedgerError> {
        let mut state = LedgerState::default();
        for e in self
            .entries(doc! { "morgue.ledger": { "$exists": true } })
            .await?
        {
            state.insert(e);
        }
        Ok(state)
    }

    async fn current(
        &self,
        ids: &[String],
        sources: &[String],
    ) -> Result<LedgerState, LedgerError> {
        let mut state = LedgerState::default();
        let mut wanted: Vec<Bson> = ids.iter().flat_map(|i| id_candidates(i)).collect();
        if !sources.is_empty() {
            let mut cursor = self
                .sources()
                .find(doc! { "_id": { "$in": sources } })
                .await
                .map_err(|e| self.fail("reading source claims of", &e))?;
            while let Some(d) = cursor
                .try_next()
                .await
                .map_err(|e| self.fail("reading source claims of", &e))?
            {
                if let Ok(l) = d.get_str("letter") {
                    wanted.extend(id_candidates(l));
                }
            }
        }
        if wanted.is_empty() {
            return Ok(state);
        }
        for e in self.entries(doc! { "_id": { "$in": wanted } }).await? {
            state.insert(e);
        }
        Ok(state)
    }

    async fn write(
        &self,
        entries: Vec<LedgerEntry>,
    ) -> Result<Vec<Result<(), Conflict>>, LedgerError> {
        let mut out = Vec::with_capacity(entries.len());
        for e in &entries {
            out.push(self.write_one(e).await?);
        }
        Ok(out)
    }

    fn dlq(&self) -> String {
        self.describe()
    }
}
