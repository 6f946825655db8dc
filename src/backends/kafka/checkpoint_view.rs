//! The ledger view's side of checkpoints (see `checkpoint`): loading the latest
//! complete one before reading the ledger after it, reading a letter's entry back
//! from a loaded part, and gathering the view's state into a new one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::checkpoint::{self, Head, Letter, PART_LETTERS};
use super::ledger_view::View;
use super::spill::Spill;
use super::{KafkaBackendError, METADATA_TIMEOUT};
use crate::engine::model::ledger::{LedgerEntry, LedgerError};
use crate::engine::model::ledger_base::{BASE_AT, BaseBuilder};
use crate::engine::model::ledger_fold::{Fold, Slot, key};

/// A checkpoint being read: its head, its letters so far, and where its parts' entries
/// went. Parts are read in order; each holds [`PART_LETTERS`] letters but the last, so
/// letter `n` of the checkpoint is entry `n % PART_LETTERS` of part `n / PART_LETTERS`.
struct Candidate {
    head: Head,
    base: BaseBuilder,
    parts: Vec<u64>,
}

impl View {
    /// Loads the latest complete checkpoint of this ledger into the view; the ledger
    /// offset to read on from (0: there is none).
    pub(super) fn bootstrap(&mut self) -> Result<i64, LedgerError> {
        let topic = checkpoint::topic_of(&self.topic);
        let c = self.cfg.browse_consumer().map_err(LedgerError::from)?;
        match self.cfg.partitions(&c, &topic) {
            Ok(_) => {}
            Err(KafkaBackendError::TopicNotFound { .. }) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
        let unreachable =
            |e: KafkaError| LedgerError::Unreachable(format!("reading checkpoints '{topic}': {e}"));
        let (lo, hi) = c
            .fetch_watermarks(&topic, 0, METADATA_TIMEOUT)
            .map_err(unreachable)?;
        if hi <= lo {
            std::thread::spawn(move || drop(c));
            return Ok(0);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(lo))
            .map_err(|e| LedgerError::Other(e.to_string()))?;
        c.assign(&tpl)
            .map_err(|e| LedgerError::Other(format!("assigning '{topic}': {e}")))?;
        let mut open: HashMap<String, Candidate> = HashMap::new();
        let mut best: Option<Candidate> = None;
        let mut next = lo;
        let deadline = Instant::now() + METADATA_TIMEOUT;
        while next < hi {
            if Instant::now() > deadline {
                return Err(LedgerError::Unreachable(format!(
                    "reading checkpoints '{topic}': stuck at offset {next} of {hi}"
                )));
            }
            let msg = match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => m,
                Some(Err(KafkaError::PartitionEOF(_))) | None => continue,
                Some(Err(e)) => return Err(unreachable(e)),
            };
            next = msg.offset() + 1;
            let (Some(key), Some(bytes)) = (msg.key(), msg.payload()) else {
                continue;
            };
            let key = String::from_utf8_lossy(key);
            if let Some(id) = key.strip_prefix("h/") {
                match checkpoint::decode_head(bytes) {
                    Ok(Ok(head)) => {
                        let base = BaseBuilder::with_capacity(
                            usize::try_from(head.letters).unwrap_or(0).min(1 << 26),
                        );
                        let cand = Candidate {
                            head,
                            base,
                            parts: Vec::new(),
                        };
                        open.insert(id.to_string(), cand);
                    }
                    Ok(Err(format)) => self.newer = self.newer.max(Some(format)),
                    Err(e) => tracing::warn!("checkpoint head '{key}' in '{topic}' skipped: {e}"),
                }
            } else if let Some((id, i)) = key.strip_prefix("p/").and_then(|k| k.rsplit_once('/')) {
                let Some(cand) = open.get_mut(id) else {
                    continue;
                };
                let Ok(i) = i.parse::<usize>() else {
                    continue;
                };
                if let Err(e) = self.load_part(cand, i, bytes) {
                    tracing::warn!("checkpoint '{id}' in '{topic}' skipped: part {i}: {e}");
                    open.remove(id);
                    continue;
                }
                if cand.parts.len() == cand.head.parts as usize
                    && let Some(done) = open.remove(id)
                    && best.as_ref().is_none_or(|b| b.head.upto <= done.head.upto)
                {
                    best = Some(done);
                }
            }
        }
        // Tearing a client down waits for its threads; the catch-up need not.
        std::thread::spawn(move || drop(c));
        let Some(best) = best else { return Ok(0) };
        Ok(self.install(best))
    }

    /// Makes a complete checkpoint the view's state; the ledger offset to read on from.
    fn install(&mut self, best: Candidate) -> i64 {
        tracing::debug!(
            "ledger '{}': checkpoint of {} letters up to offset {}",
            self.topic,
            best.head.letters,
            best.head.upto
        );
        self.fold = Fold::from_base(best.base.finish());
        self.parts = best.parts;
        self.part_cache = None;
        self.base = best.head.upto;
        self.since = 0;
        self.next = best.head.upto;
        best.head.upto
    }

    /// Adds part `i` of `cand` (the next one) to its letters, and keeps its entries
    /// (still compressed) in the spill file.
    fn load_part(&mut self, cand: &mut Candidate, i: usize, bytes: &[u8]) -> Result<(), String> {
        if i != cand.parts.len() {
            return Err(format!(
                "part {i} came where part {} was due",
                cand.parts.len()
            ));
        }
        let (letters, blob) = checkpoint::decode_part(bytes)?;
        let last = i + 1 == cand.head.parts as usize;
        if letters.len() != PART_LETTERS && !(last && letters.len() <= PART_LETTERS) {
            return Err(format!("{} letters in part {i}", letters.len()));
        }
        let place = if self.keep {
            if self.spill.is_none() {
                self.spill = Some(Spill::new().map_err(|e| e.to_string())?);
            }
            match self.spill.as_mut().map(|s| s.append(blob)) {
                Some(Ok(p)) => p,
                Some(Err(e)) => return Err(e.to_string()),
                None => 0,
            }
        } else {
            0
        };
        for l in &letters {
            let slot = Slot {
                at: 0,
                version: u32::try_from(l.version).unwrap_or(u32::MAX),
                state: l.state,
                history: l.history,
            };
            cand.base
                .push(&l.id, slot, l.source.as_deref(), l.indexed)?;
        }
        cand.parts.push(place);
        Ok(())
    }

    /// The entry kept at `at` when it is in a loaded checkpoint part (None: it is not).
    pub(super) fn part_entry(&mut self, at: u64) -> Result<Option<LedgerEntry>, LedgerError> {
        if at & BASE_AT == 0 {
            return Ok(None);
        }
        let n = usize::try_from(at & !BASE_AT).unwrap_or(usize::MAX);
        let (part, i) = (n / PART_LETTERS, n % PART_LETTERS);
        if self.part_cache.as_ref().is_none_or(|c| c.0 != part) {
            let place = *self.parts.get(part).ok_or_else(|| self.lost(at))?;
            let blob = match self.spill.as_mut().map(|s| s.read(place)) {
                Some(Ok(b)) => b,
                Some(Err(e)) => return Err(LedgerError::Other(format!("spill file: {e}"))),
                None => return Ok(None),
            };
            let entries = checkpoint::Entries::of(&blob).map_err(|e| {
                LedgerError::Other(format!("ledger '{}': part {part}: {e}", self.topic))
            })?;
            self.part_cache = Some((part, entries));
        }
        match self.part_cache.as_ref().and_then(|c| c.1.get(i)) {
            Some(Ok(e)) => Ok(Some(e)),
            Some(Err(e)) => Err(LedgerError::Other(format!(
                "ledger '{}': part {part}: {e}",
                self.topic
            ))),
            None => Err(self.lost(at)),
        }
    }

    fn lost(&self, at: u64) -> LedgerError {
        LedgerError::Other(format!(
            "ledger '{}': an entry kept at {at:#x} is in no loaded checkpoint part",
            self.topic
        ))
    }

    /// The parts of a checkpoint of everything this view has folded: each letter's
    /// fold columns and whole entry, by ascending key, [`PART_LETTERS`] at a time.
    pub fn checkpoint_parts(&mut self) -> Result<Vec<Vec<u8>>, LedgerError> {
        let mut slots: Vec<(u64, Slot)> = self.fold.keyed_slots().collect();
        slots.sort_unstable_by_key(|s| s.0);
        let mut out = Vec::new();
        for chunk in slots.chunks(PART_LETTERS) {
            let places: Vec<u64> = chunk.iter().map(|s| s.1.at).collect();
            let got = self.entries(&places)?;
            let mut letters = Vec::with_capacity(chunk.len());
            let mut entries = Vec::with_capacity(chunk.len());
            for (k, slot) in chunk {
                let e = got.get(&slot.at).ok_or_else(|| self.lost(slot.at))?;
                if key(&e.id) != *k {
                    return Err(LedgerError::Other(format!(
                        "ledger '{}': letter '{}' shares a hash with another; no checkpoint written",
                        self.topic, e.id
                    )));
                }
                letters.push(Letter {
                    id: e.id.clone(),
                    version: u64::from(slot.version),
                    state: slot.state,
                    history: slot.history,
                    source: e.source.clone(),
                    indexed: e
                        .source
                        .as_deref()
                        .is_some_and(|s| self.fold.indexed(s, &e.id)),
                });
                entries.push(e.clone());
            }
            out.push(
                checkpoint::encode_part(&letters, &entries)
                    .map_err(|e| LedgerError::Other(format!("encoding a checkpoint: {e}")))?,
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "checkpoint_view_tests.rs"]
mod tests;
