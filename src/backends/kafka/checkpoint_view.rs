//! The ledger view's side of checkpoints (see `checkpoint`): loading the latest
//! complete one before reading the ledger after it, reading a letter's entry back
//! from a loaded part, and gathering the view's state into a new one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::checkpoint::{self, Head, Letter, PART_BYTES, PART_LETTERS};
use super::ledger_view::View;
use super::{KafkaBackendError, METADATA_TIMEOUT};
use crate::engine::model::ledger::{LedgerEntry, LedgerError};
use crate::engine::model::ledger_base::{BASE_AT, Base, BaseBuilder};
use crate::engine::model::ledger_fold::{Fold, Slot, key};

/// The largest fetch response a ledger or checkpoint reader takes (librdkafka's limit).
pub(super) const RECEIVE_MAX: &str = "1073741824";

/// A checkpoint being read: its head, its letters so far, where each part's entries
/// went in the spill file and the place of its first letter. Parts are read in order.
pub(super) struct Candidate {
    pub(super) head: Head,
    pub(super) base: BaseBuilder,
    pub(super) parts: Vec<u64>,
    pub(super) starts: Vec<u32>,
}

impl Candidate {
    /// A checkpoint with `head`, nothing read yet.
    pub(super) fn new(head: Head) -> Self {
        let n = usize::try_from(head.letters).unwrap_or(0);
        Candidate {
            head,
            base: BaseBuilder::with_capacity(n),
            parts: Vec::new(),
            starts: Vec::new(),
        }
    }

    fn complete(&self) -> bool {
        self.parts.len() == self.head.parts as usize
    }

    /// The checkpoint, complete, checked as loaded: as many letters as its head says,
    /// no two sharing a key, every held source's holder among them.
    pub(super) fn ready(self) -> Result<Ready, String> {
        let n = self.base.len();
        if n as u64 != self.head.letters {
            return Err(format!(
                "{n} letters where the head says {}",
                self.head.letters
            ));
        }
        Ok(Ready {
            base: self.base.finish()?,
            head: self.head,
            parts: self.parts,
            starts: self.starts,
        })
    }
}

/// A complete checkpoint, checked, ready to be the view's state.
pub(super) struct Ready {
    head: Head,
    base: Base,
    parts: Vec<u64>,
    starts: Vec<u32>,
}

impl View {
    /// Loads the latest complete checkpoint of this ledger into the view; the ledger
    /// offset to read on from (0: there is none).
    pub(super) fn bootstrap(&mut self) -> Result<i64, LedgerError> {
        let topic = checkpoint::topic_of(&self.topic);
        for _ in 0..3 {
            if let Some(best) = self.best_checkpoint(&topic)? {
                let upto = best.head.upto;
                self.install(best);
                return Ok(upto);
            }
            // None: no checkpoint, or the topic was cut while it was read.
            if !self.scan_cut {
                return Ok(0);
            }
        }
        Err(LedgerError::Unreachable(format!(
            "reading checkpoints '{topic}': cut again and again while read"
        )))
    }

    /// The complete checkpoint covering most in `topic`, checked (None: there is none,
    /// or the topic was cut while it was read: `scan_cut` says which).
    fn best_checkpoint(&mut self, topic: &str) -> Result<Option<Ready>, LedgerError> {
        let mut open: HashMap<String, Candidate> = HashMap::new();
        let mut best: Option<Ready> = None;
        let cfg = self.cfg.clone();
        let whole = scan(&cfg, topic, |offset, key, bytes| {
            let done = if let Some(id) = key.strip_prefix("h/") {
                match checkpoint::decode_head(bytes) {
                    Ok(Ok(head)) if head.upto >= 0 => {
                        let cand = Candidate::new(head);
                        if cand.complete() {
                            Some(cand)
                        } else {
                            open.insert(id.to_string(), cand);
                            None
                        }
                    }
                    Ok(Ok(_)) => {
                        tracing::warn!("checkpoint head at {offset} skipped: upto < 0");
                        None
                    }
                    Ok(Err(format)) => {
                        self.newer = self.newer.max(Some(format));
                        None
                    }
                    Err(e) => {
                        tracing::warn!("checkpoint head at {offset} skipped: {e}");
                        None
                    }
                }
            } else if let Some((id, i)) = key.strip_prefix("p/").and_then(|k| k.rsplit_once('/')) {
                let cand = open.get_mut(id)?;
                let loaded = i
                    .parse::<usize>()
                    .map_err(|e| e.to_string())
                    .and_then(|i| self.load_part(cand, i, bytes));
                match loaded {
                    Err(e) => {
                        tracing::warn!("checkpoint '{id}' skipped: part at {offset}: {e}");
                        open.remove(id);
                        None
                    }
                    Ok(()) if cand.complete() => open.remove(id),
                    Ok(()) => None,
                }
            } else {
                tracing::warn!("'{topic}': a record at {offset} with key '{key}' skipped");
                None
            };
            if let Some(cand) = done {
                let upto = cand.head.upto;
                match cand.ready() {
                    Ok(r) => best = pick(best.take(), r),
                    Err(e) => tracing::warn!("checkpoint up to {upto} skipped: {e}"),
                }
            }
            Some(())
        })?;
        self.scan_cut = !whole;
        Ok(if whole { best } else { None })
    }

    /// Makes a complete checkpoint the view's state.
    pub(super) fn install(&mut self, best: Ready) {
        tracing::debug!(
            "ledger '{}': checkpoint of {} letters up to offset {}",
            self.topic,
            best.base.len(),
            best.head.upto
        );
        self.fold = Fold::from_base(best.base);
        self.parts = best.parts;
        self.part_starts = best.starts;
        self.part_cache = None;
        self.base = best.head.upto;
        self.since = 0;
        self.next = best.head.upto;
    }

    /// Adds part `i` of `cand` (the next one) to its letters, and keeps its entries
    /// (still compressed) in the spill file.
    pub(super) fn load_part(
        &mut self,
        cand: &mut Candidate,
        i: usize,
        bytes: &[u8],
    ) -> Result<(), String> {
        if i != cand.parts.len() {
            return Err(format!(
                "part {i} came where part {} was due",
                cand.parts.len()
            ));
        }
        let part = checkpoint::decode_part(bytes)?;
        let place = self
            .keep_bytes(part.blob)
            .map_err(|e| format!("spill file: {e}"))?
            .unwrap_or(0);
        let start = u32::try_from(cand.base.len()).map_err(|e| e.to_string())?;
        for (j, l) in part.letters.iter().enumerate() {
            let slot = Slot {
                at: 0,
                version: u32::try_from(l.version).map_err(|e| format!("letter {j}: {e}"))?,
                state: l.state,
                history: l.history,
            };
            cand.base
                .push_key(l.key, slot, format_args!("{j} of part {i}"))?;
        }
        for &(j, src) in &part.held {
            // `decode_part` refused a `j` outside the part.
            let at = start.checked_add(j).ok_or("too many letters")?;
            cand.base.push_source(src, at);
        }
        cand.parts.push(place);
        cand.starts.push(start);
        Ok(())
    }

    /// The entry kept at `at` when it is in a loaded checkpoint part (None: it is not).
    pub(super) fn part_entry(&mut self, at: u64) -> Result<Option<LedgerEntry>, LedgerError> {
        if at & BASE_AT == 0 {
            return Ok(None);
        }
        let n = u32::try_from(at & !BASE_AT).map_err(|_| self.lost(at))?;
        let part = self.part_starts.partition_point(|&s| s <= n);
        let Some(part) = part.checked_sub(1) else {
            return Err(self.lost(at));
        };
        let i = (n - self.part_starts[part]) as usize;
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
    /// fold columns, the fold's source index and every whole entry, read back in the
    /// order they are kept (each kept record or part is decoded once). Checked the way
    /// a reader loads it before anything is written.
    pub fn checkpoint_parts(&mut self) -> Result<Vec<Vec<u8>>, LedgerError> {
        let mut slots: Vec<(u64, Slot)> = self.fold.keyed_slots().collect();
        slots.sort_unstable_by_key(|s| s.1.at);
        let mut held: Vec<(u64, u64)> = self.fold.sources().map(|(s, h)| (h, s)).collect();
        held.sort_unstable();
        let mut check = BaseBuilder::with_capacity(slots.len());
        let mut out = Vec::new();
        let mut part = PartBuilder::default();
        for chunk in slots.chunks(PART_LETTERS) {
            let places: Vec<u64> = chunk.iter().map(|s| s.1.at).collect();
            let got = self.entries(&places)?;
            for (k, slot) in chunk {
                let e = got.get(&slot.at).ok_or_else(|| self.lost(slot.at))?;
                if key(&e.id) != *k {
                    return Err(self.refused(&format!("letter '{}' shares a hash", e.id)));
                }
                check.push(&e.id, *slot).map_err(|e| self.refused(&e))?;
                let place =
                    u32::try_from(check.len() - 1).map_err(|e| self.refused(&e.to_string()))?;
                let from = held.partition_point(|h| h.0 < *k);
                let sources = held[from..].iter().take_while(|h| h.0 == *k).map(|h| h.1);
                for s in sources.clone() {
                    check.push_source(s, place);
                }
                part.push(e, *slot, sources).map_err(|e| self.refused(&e))?;
                if part.full() {
                    out.push(part.finish().map_err(|e| self.refused(&e))?);
                }
            }
        }
        if !part.letters.is_empty() {
            out.push(part.finish().map_err(|e| self.refused(&e))?);
        }
        check.finish().map_err(|e| self.refused(&e))?;
        Ok(out)
    }

    fn refused(&self, why: &str) -> LedgerError {
        LedgerError::Other(format!(
            "ledger '{}': no checkpoint written: {why}",
            self.topic
        ))
    }
}

/// The part being built by [`View::checkpoint_parts`].
#[derive(Default)]
struct PartBuilder {
    letters: Vec<Letter>,
    held: Vec<(u32, u64)>,
    lines: Vec<u8>,
}

impl PartBuilder {
    fn push(
        &mut self,
        e: &LedgerEntry,
        slot: Slot,
        sources: impl Iterator<Item = u64>,
    ) -> Result<(), String> {
        let j = u32::try_from(self.letters.len()).map_err(|e| e.to_string())?;
        self.held.extend(sources.map(|s| (j, s)));
        self.letters.push(Letter {
            id: e.id.clone(),
            version: u64::from(slot.version),
            state: slot.state,
            history: slot.history,
        });
        serde_json::to_writer(&mut self.lines, e).map_err(|err| err.to_string())?;
        self.lines.push(b'\n');
        Ok(())
    }

    fn full(&self) -> bool {
        self.letters.len() >= PART_LETTERS || self.lines.len() >= PART_BYTES
    }

    fn finish(&mut self) -> Result<Vec<u8>, String> {
        let p = std::mem::take(self);
        checkpoint::encode_part(&p.letters, &p.held, &p.lines)
    }
}

/// The better of two complete checkpoints: the one covering more of the ledger.
fn pick(best: Option<Ready>, c: Ready) -> Option<Ready> {
    match best {
        Some(b) if b.head.upto > c.head.upto => Some(b),
        _ => Some(c),
    }
}

/// Reads checkpoint topic `topic` from its start to its end now, giving each record's
/// offset, key and value to `each` (a missing topic has none); false when records were
/// removed under the read (another session cut the topic): what was given is then not
/// the whole topic.
pub(super) fn scan(
    cfg: &super::KafkaConfig,
    topic: &str,
    mut each: impl FnMut(i64, &str, &[u8]) -> Option<()>,
) -> Result<bool, LedgerError> {
    let c: super::Browser = cfg
        .client_config(&[
            ("group.id", "morgue-checkpoint"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("fetch.max.bytes", "8388608"),
            // Records removed under the read are an error, never a jump past them.
            ("auto.offset.reset", "error"),
            // A broker that answers a fetch with more than asked (noida-db sends the
            // whole partition) is read rather than refused ("bad message format").
            ("receive.message.max.bytes", RECEIVE_MAX),
        ])
        .create_with_context(super::Quiet)
        .map_err(|e| LedgerError::Other(format!("bad Kafka property: {e}")))?;
    // Tearing a client down waits for its threads; the caller need not.
    let done = |c| {
        std::thread::spawn(move || drop(c));
    };
    match cfg.partitions(&c, topic) {
        Ok(_) => {}
        Err(KafkaBackendError::TopicNotFound { .. }) => {
            done(c);
            return Ok(true);
        }
        Err(e) => return Err(e.into()),
    }
    let unreachable =
        |e: KafkaError| LedgerError::Unreachable(format!("reading checkpoints '{topic}': {e}"));
    let (lo, hi) = c
        .fetch_watermarks(topic, 0, METADATA_TIMEOUT)
        .map_err(unreachable)?;
    if hi > lo {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(lo))
            .map_err(|e| LedgerError::Other(e.to_string()))?;
        c.assign(&tpl)
            .map_err(|e| LedgerError::Other(format!("assigning '{topic}': {e}")))?;
        let mut next = lo;
        let mut deadline = Instant::now() + METADATA_TIMEOUT;
        while next < hi {
            if Instant::now() > deadline {
                return Err(LedgerError::Unreachable(format!(
                    "reading checkpoints '{topic}': stuck at offset {next} of {hi}"
                )));
            }
            let msg = match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => m,
                Some(Err(KafkaError::PartitionEOF(_))) | None => continue,
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                    done(c);
                    return Ok(false);
                }
                Some(Err(e)) => return Err(unreachable(e)),
            };
            next = msg.offset() + 1;
            // The deadline is for progress, not for the whole read.
            deadline = Instant::now() + METADATA_TIMEOUT;
            let key = String::from_utf8_lossy(msg.key().unwrap_or_default());
            // `each` answers an Option only to return early with `?`; nothing to act on.
            let _ = each(msg.offset(), &key, msg.payload().unwrap_or_default());
        }
    }
    done(c);
    Ok(true)
}

#[cfg(test)]
#[path = "checkpoint_view_tests.rs"]
mod tests;
