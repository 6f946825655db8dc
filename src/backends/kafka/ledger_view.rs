//! A session's view of a Kafka ledger: one long-lived reader (`ledger_tail`) tails the
//! ledger topic from the latest checkpoint (`checkpoint_view`) and folds its records
//! (see `ledger_codec`: a format-2 record holds a write's entries, a format-1 record
//! one entry), in log order, into a compact [`Fold`] (the ledger's compare-and-set; see
//! `engine::ledger_fold`). The fold's verdict on recent records is kept (a byte per
//! offset, a byte per entry of recent format-2 records) for writers to look up. Whole
//! entries are kept in memory only for the latest records; every record read goes to
//! the session's spill file (see `spill`) as it came, where a decision or a letter
//! that needs an entry reads it back. Memory grows by a slot per letter changed since
//! the checkpoint (about 50 bytes) and 16 bytes per letter of the checkpoint.

use std::collections::{HashMap, VecDeque};

use super::ledger_codec;
use super::spill::{Recent, Spill};
use super::{Browser, KafkaConfig};
use crate::engine::DeadLetter;
use crate::engine::model::ledger::{LedgerEntry, LedgerError, LedgerState, source_key};
use crate::engine::model::ledger_base::BASE_AT;
use crate::engine::model::ledger_fold::{Fold, Record};

/// How many recent offsets keep their verdict (a byte each).
const VERDICTS: usize = 1 << 22;
/// How many recent format-2 records keep their entries' verdicts.
const BATCHES: usize = 1 << 10;
/// The verdict byte of an offset whose record holds several entries (see `batches`).
const BATCH: u8 = 3;
/// How many of the latest applied entries are kept whole (a bulk replay's window
/// confirms what it claimed without reading it back).
pub(super) const RECENT: usize = 8192;
/// How many of the latest format-2 records a catch-up reads whole (their entries then
/// stay in memory among the latest); older ones are read for the fold only.
pub(super) const WHOLE_RECORDS: i64 = 16;
/// The mark of a place that is entry `i` of the `n`th format-2 record read:
/// `IN_RECORD | n << 16 | i` (spill places stay below it, checkpoint places above).
const IN_RECORD: u64 = 1 << 62;
/// How many times a catch-up starts again from a checkpoint when the ledger is cut
/// under it.
pub(super) const CUT_TRIES: u32 = 5;

/// The tailing reader and what it has read.
pub struct View {
    pub(super) cfg: KafkaConfig,
    pub(super) topic: String,
    /// The tail reader, kept from the first catch-up on (even while the ledger topic
    /// does not exist yet: a client costs a connection and ~100 ms to set up and tear down).
    pub(super) consumer: Option<Browser>,
    /// Where to read on from is known (the latest checkpoint was looked for and loaded).
    pub(super) started: bool,
    /// The offset the ledger's partition is assigned to `consumer` from, while it is
    /// (only during a catch-up, or after one that read nothing: see `ledger_tail`).
    pub(super) assigned_at: Option<i64>,
    /// Every applied entry's bytes, opened on the first one.
    pub(super) spill: Option<Spill>,
    /// Whether whole entries are kept at all (a view that only counts states keeps none).
    pub(super) keep: bool,
    /// The next offset to read.
    pub next: i64,
    /// The letters' slots as folded so far.
    pub fold: Fold,
    /// The fold's verdict on offsets `verdicts_from..`: 0 no record, 1 applied, 2 refused,
    /// [`BATCH`] a format-2 record (its entries' verdicts are in `batches`).
    pub(super) verdicts: VecDeque<u8>,
    verdicts_from: i64,
    /// The verdicts on the entries of recent format-2 records, by ascending offset.
    pub(super) batches: VecDeque<(i64, Vec<bool>)>,
    /// The newest format of a record this view could not fold (a newer morgue wrote it).
    pub newer: Option<u64>,
    /// The latest applied entries, by ascending place in the spill file.
    pub(super) recent: Recent,
    /// Where each format-2 record read is in the spill file (its entries' places say
    /// which record and which entry), and the entries of the one read back last.
    pub(super) records: Vec<u64>,
    pub(super) record_cache: Option<(usize, Vec<LedgerEntry>)>,
    /// Where the entry applied last was put.
    last_at: u64,
    /// The loaded checkpoint's parts: where each one's entries are in the spill file,
    /// and the place in the checkpoint of each one's first letter.
    pub(super) parts: Vec<u64>,
    pub(super) part_starts: Vec<u32>,
    /// The entries of the part read back last.
    pub(super) part_cache: Option<(usize, super::checkpoint::Entries)>,
    /// The ledger offset the loaded checkpoint covers up to (0: none loaded).
    pub base: i64,
    /// Entries folded since `base`.
    pub since: u64,
    /// The checkpoint topic was cut while the last bootstrap read it.
    pub(super) scan_cut: bool,
    /// The ledger was cut past `next` while it was read: read from a checkpoint again.
    pub(super) cut: bool,
}

impl Drop for View {
    fn drop(&mut self) {
        // Tearing a client down waits for its threads; a command ending need not.
        if let Some(c) = self.consumer.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

impl View {
    /// The view of ledger topic `topic`; nothing is read yet.
    pub fn new(cfg: KafkaConfig, topic: &str) -> Self {
        View {
            cfg,
            topic: topic.to_string(),
            consumer: None,
            started: false,
            assigned_at: None,
            spill: None,
            keep: true,
            next: 0,
            fold: Fold::default(),
            verdicts: VecDeque::new(),
            verdicts_from: 0,
            batches: VecDeque::new(),
            newer: None,
            recent: Recent::new(RECENT),
            records: Vec::new(),
            record_cache: None,
            last_at: 0,
            parts: Vec::new(),
            part_starts: Vec::new(),
            part_cache: None,
            base: 0,
            since: 0,
            cut: false,
            scan_cut: false,
        }
    }

    /// A view that folds but keeps no whole entry: enough for counting states.
    pub fn counting(cfg: KafkaConfig, topic: &str) -> Self {
        let mut v = View::new(cfg, topic);
        v.keep = false;
        v
    }

    /// Folds record `r` (read as `bytes`) at `offset`; true when it was applied.
    /// `whole` is the full entry, when the caller parsed it, to keep among the recent ones.
    pub(super) fn fold(
        &mut self,
        offset: i64,
        bytes: &[u8],
        r: &Record<'_>,
        whole: Option<LedgerEntry>,
    ) -> Result<bool, LedgerError> {
        let applied = self.apply_entry(offset, bytes, r, whole)?;
        self.note(offset, if applied { 1 } else { 2 });
        Ok(applied)
    }

    /// Folds the entries of the format-2 record at `offset` (`lean`: their judged
    /// fields), in order; their verdicts. The record is kept whole in the spill file;
    /// with `whole`, its entries are also kept in memory among the latest.
    pub(super) fn fold_record(
        &mut self,
        offset: i64,
        bytes: &[u8],
        lean: &[Record<'_>],
        whole: bool,
    ) -> Result<Vec<bool>, LedgerError> {
        let n = self.records.len() as u64;
        let place = self.keep_bytes(bytes).map_err(|e| self.spill_error(&e))?;
        self.records.push(place.unwrap_or(0));
        let entries = match (whole && self.keep).then(|| ledger_codec::entries(bytes)) {
            Some(Ok(es)) => Some(es),
            Some(Err(e)) => {
                // Folded all the same (every reader folds it): said once here, and again
                // by whoever reads one of its entries back.
                tracing::warn!(
                    "ledger '{}' record at offset {offset} cannot be read whole: {e}",
                    self.topic
                );
                None
            }
            None => None,
        };
        let mut verdicts = Vec::with_capacity(lean.len());
        for (i, r) in lean.iter().enumerate() {
            let at = IN_RECORD | n << 16 | i as u64;
            let applied = self.fold.accept(r, || at);
            self.since += 1;
            if applied && let Some(e) = entries.as_ref().and_then(|es| es.get(i)) {
                self.recent.push(at, e.clone());
            }
            verdicts.push(applied);
        }
        self.note(offset, BATCH);
        self.batches.push_back((offset, verdicts.clone()));
        while self.batches.len() > BATCHES {
            self.batches.pop_front();
        }
        Ok(verdicts)
    }

    /// The entry at `at` when it is an entry of a format-2 record (None: it is not).
    fn record_entry(&mut self, at: u64) -> Result<Option<LedgerEntry>, LedgerError> {
        if at & IN_RECORD == 0 || at & BASE_AT != 0 {
            return Ok(None);
        }
        let (n, i) = (((at & !IN_RECORD) >> 16) as usize, (at & 0xffff) as usize);
        if self.record_cache.as_ref().is_none_or(|c| c.0 != n) {
            let place = *self.records.get(n).ok_or_else(|| self.unread(at))?;
            let bytes = match self.spill.as_mut().map(|s| s.read(place)) {
                Some(Ok(b)) => b,
                Some(Err(e)) => return Err(self.spill_error(&e)),
                None => return Ok(None),
            };
            let entries = ledger_codec::entries(&bytes).map_err(|e| {
                LedgerError::Other(format!("ledger '{}': a kept record: {e}", self.topic))
            })?;
            self.record_cache = Some((n, entries));
        }
        match self.record_cache.as_ref().and_then(|c| c.1.get(i)) {
            Some(e) => Ok(Some(e.clone())),
            None => Err(self.unread(at)),
        }
    }

    fn unread(&self, at: u64) -> LedgerError {
        LedgerError::Other(format!(
            "ledger '{}': an entry kept at {at:#x} cannot be read back",
            self.topic
        ))
    }

    /// Appends `bytes` to the spill file, opened on first use; where they were put (None:
    /// this view keeps nothing whole).
    pub(super) fn keep_bytes(&mut self, bytes: &[u8]) -> std::io::Result<Option<u64>> {
        if !self.keep {
            return Ok(None);
        }
        let spill = match &mut self.spill {
            Some(s) => s,
            none => none.insert(Spill::new()?),
        };
        spill.append(bytes).map(Some)
    }

    /// Applies one entry to the fold (and the spill file); true when applied.
    fn apply_entry(
        &mut self,
        offset: i64,
        bytes: &[u8],
        r: &Record<'_>,
        whole: Option<LedgerEntry>,
    ) -> Result<bool, LedgerError> {
        let at = match self.keep_bytes(bytes) {
            Ok(Some(at)) => at,
            Ok(None) => u64::try_from(offset).unwrap_or(0),
            Err(e) => return Err(self.spill_error(&e)),
        };
        let applied = self.fold.accept(r, || at);
        self.last_at = at;
        self.since += 1;
        if applied
            && self.keep
            && let Some(e) = whole
        {
            self.keep_recent(e);
        }
        Ok(applied)
    }

    /// Keeps `e`, just applied, among the latest entries held whole.
    fn keep_recent(&mut self, e: LedgerEntry) {
        self.recent.push(self.last_at, e);
    }

    /// Records the verdict byte of the record at `offset`.
    fn note(&mut self, offset: i64, verdict: u8) {
        if self.verdicts.is_empty() {
            self.verdicts_from = offset;
        }
        while self.verdicts_from + (self.verdicts.len() as i64) < offset {
            self.verdicts.push_back(0);
        }
        self.verdicts.push_back(verdict);
        while self.verdicts.len() > VERDICTS {
            self.verdicts.pop_front();
            self.verdicts_from += 1;
        }
    }

    fn spill_error(&self, e: &std::io::Error) -> LedgerError {
        LedgerError::Other(format!(
            "ledger '{}': the session's spill file in {}: {e}",
            self.topic,
            std::env::temp_dir().display()
        ))
    }

    /// Whether each entry of the record at `offset` was applied, in order (None: not
    /// read, or too old to know).
    pub fn verdicts(&self, offset: i64) -> Option<Vec<bool>> {
        let i = usize::try_from(offset - self.verdicts_from).ok()?;
        match self.verdicts.get(i) {
            Some(1) => Some(vec![true]),
            Some(2) => Some(vec![false]),
            Some(&BATCH) => {
                let j = self.batches.binary_search_by_key(&offset, |b| b.0).ok()?;
                Some(self.batches[j].1.clone())
            }
            _ => None,
        }
    }

    /// The latest entries of letters `ids` and of the letters holding `sources`, each
    /// checked to be the one asked for (ids and sources are kept by hash).
    pub fn subset(
        &mut self,
        ids: &[String],
        sources: &[String],
    ) -> Result<LedgerState, LedgerError> {
        let mut state = LedgerState::default();
        if self.fold.is_empty() {
            return Ok(state);
        }
        let of_ids: Vec<(&String, u64)> = ids
            .iter()
            .filter_map(|id| Some((id, self.fold.slot(id)?.at)))
            .collect();
        let of_sources: Vec<(&String, u64)> = sources
            .iter()
            .filter_map(|s| Some((s, self.fold.source_holder(s)?.at)))
            .collect();
        let places: Vec<u64> = of_ids.iter().chain(&of_sources).map(|w| w.1).collect();
        let mut got = self.entries(&places)?;
        for (id, o) in of_ids {
            let e = self.take(&mut got, o)?;
            if &e.id != id {
                return Err(self.clash(id, &e));
            }
            state.insert(e);
        }
        for (src, o) in of_sources {
            let e = self.take(&mut got, o)?;
            if e.source.as_ref() != Some(src) {
                return Err(self.clash(src, &e));
            }
            state.insert(e);
        }
        Ok(state)
    }

    /// Every letter's latest entry, read back whole (the closed-loop watch needs their
    /// histories; memory grows with the ledger here).
    pub fn everything(&mut self) -> Result<LedgerState, LedgerError> {
        let places: Vec<u64> = self.fold.slots().map(|s| s.at).collect();
        let mut state = LedgerState::default();
        for (_, e) in self.entries(&places)? {
            state.insert(e);
        }
        Ok(state)
    }

    /// Sets each letter's state, history, holder and copy link from its entry.
    pub fn apply(&mut self, letters: &mut [DeadLetter]) -> Result<(), LedgerError> {
        if self.fold.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::new();
        let mut sources = Vec::new();
        for l in letters.iter() {
            let Some(id) = l.id.as_ref().map(ToString::to_string) else {
                continue;
            };
            if self.fold.slot(&id).is_some() {
                ids.push(id.clone());
            }
            if let Some(k) = source_key(l).filter(|k| self.fold.holder(k, &id).is_some()) {
                sources.push(k);
            }
        }
        if ids.is_empty() && sources.is_empty() {
            return Ok(());
        }
        let state = self.subset(&ids, &sources)?;
        for l in letters.iter_mut() {
            state.apply(l);
        }
        Ok(())
    }

    fn take(
        &self,
        got: &mut HashMap<u64, LedgerEntry>,
        at: u64,
    ) -> Result<LedgerEntry, LedgerError> {
        got.get(&at).cloned().ok_or_else(|| {
            LedgerError::Other(format!(
                "ledger '{}': an entry kept at {at} cannot be read back",
                self.topic
            ))
        })
    }

    fn clash(&self, wanted: &str, e: &LedgerEntry) -> LedgerError {
        LedgerError::Other(format!(
            "ledger '{}': '{wanted}' and letter '{}' share a hash; nothing written for them",
            self.topic, e.id
        ))
    }

    /// The entries kept at `places`: the recent ones from memory, the others read back
    /// from the spill file.
    pub(super) fn entries(
        &mut self,
        places: &[u64],
    ) -> Result<HashMap<u64, LedgerEntry>, LedgerError> {
        let mut out = HashMap::new();
        // In order of place: the entries of one checkpoint part are read together.
        let mut places = places.to_vec();
        places.sort_unstable();
        for at in places {
            if out.contains_key(&at) {
                continue;
            }
            if let Some(e) = self.recent.get(at) {
                out.insert(at, e.clone());
                continue;
            }
            if let Some(e) = self.record_entry(at)? {
                out.insert(at, e);
                continue;
            }
            if let Some(e) = self.part_entry(at)? {
                out.insert(at, e);
                continue;
            }
            let bytes = match self.spill.as_mut().map(|s| s.read(at)) {
                Some(Ok(b)) => b,
                Some(Err(e)) => return Err(self.spill_error(&e)),
                None => continue,
            };
            match serde_json::from_slice(&bytes) {
                Ok(e) => {
                    out.insert(at, e);
                }
                Err(e) => {
                    tracing::warn!("ledger '{}': a kept entry is unreadable: {e}", self.topic)
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "ledger_view_tests.rs"]
mod tests;
