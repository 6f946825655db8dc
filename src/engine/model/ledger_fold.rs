//! The ledger's compare-and-set, as a fold over a ledger log in log order: a record is
//! applied only if it is valid where it stands (its version follows the letter's, and
//! a `replaying` record's source message is not held by another letter), so every
//! reader of one log reaches the same state and a writer learns whether its record won
//! by reading up to it.
//!
//! The fold keeps what judging the next record needs and no more: per letter a
//! 16-byte [`Slot`] (version, state, whether it has a history, and where the reader
//! keeps its latest entry, to read it back whole on demand), per held source message
//! the letter holding it. Letters and sources are keyed by a 64-bit hash of their id.
//! What a checkpoint gave sits in a compact [`Base`] (12 bytes a letter, see
//! `ledger_base`); what was folded since, in hash maps in front of it (about 50 bytes
//! a letter). Whoever reads a full entry back
//! checks that it is the letter asked for, so two ids sharing a hash (odds about 3 in
//! 10^8 at a million letters) make a write fail or be refused, never succeed twice.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::engine::model::ledger::{EntryState, LedgerEntry};
use crate::engine::model::ledger_base::Base;
pub use crate::engine::model::ledger_base::{Slot, key};

/// The fields of a ledger record the fold judges, read without the rest of the entry
/// (a catch-up of a long ledger parses little and allocates less).
#[derive(Debug, Deserialize)]
pub struct Record<'a> {
    /// The letter id.
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    /// The state written.
    pub state: EntryState,
    /// The version written.
    #[serde(default)]
    pub version: u64,
    /// The source message's key, if known.
    #[serde(default, borrow)]
    pub source: Option<std::borrow::Cow<'a, str>>,
    /// Written with `--force`: copies are not checked.
    #[serde(default)]
    pub force: bool,
    /// The completed replays (only their number matters here).
    #[serde(default)]
    pub history: Vec<IgnoredAny>,
    /// Set on records of format 2 and later, which are not one entry (see the Kafka
    /// ledger's codec): a record that has it is not read as one.
    #[serde(default)]
    pub format: Option<u64>,
}

impl<'a> Record<'a> {
    /// The judged fields of a whole entry.
    pub fn of(e: &'a LedgerEntry) -> Self {
        Record {
            id: e.id.as_str().into(),
            state: e.state,
            version: e.version,
            source: e.source.as_deref().map(Into::into),
            force: e.force,
            history: if e.history.is_empty() {
                Vec::new()
            } else {
                vec![IgnoredAny]
            },
            format: None,
        }
    }
}

/// Every letter's slot and every held source's holder, as folded so far: what a
/// checkpoint gave (a compact [`Base`]), and in front of it what was folded since.
#[derive(Debug, Default, Clone)]
pub struct Fold {
    base: Base,
    slots: HashMap<u64, Slot>,
    /// Sources whose holder changed since the base: the new holder, or None (released).
    by_source: HashMap<u64, Option<u64>>,
    /// How many base letters also have a slot in `slots`.
    shadowed: usize,
}

impl Fold {
    /// A fold that starts from a checkpoint's letters.
    pub fn from_base(base: Base) -> Self {
        Fold {
            base,
            ..Fold::default()
        }
    }

    /// The slot of the letter with key `id`.
    fn get(&self, id: u64) -> Option<Slot> {
        match self.slots.get(&id) {
            Some(s) => Some(*s),
            None => self.base.find(id).map(|i| self.base.slot(i)),
        }
    }

    /// The key of the letter source `src` is indexed as held by.
    fn holder_key(&self, src: u64) -> Option<u64> {
        match self.by_source.get(&src) {
            Some(h) => *h,
            None => self.base.holder(src),
        }
    }

    /// Applies record `r` if it is valid where it stands; true when applied. `at` says
    /// where the reader keeps the whole entry. A letter the fold has not seen takes any
    /// version (compaction of an older ledger may have removed its earlier entries).
    pub fn accept(&mut self, r: &Record<'_>, at: impl FnOnce() -> u64) -> bool {
        let id = key(&r.id);
        let follows = match self.get(id) {
            Some(s) => u64::from(s.version) + 1 == r.version,
            None => true,
        };
        if !follows {
            return false;
        }
        let src = r.source.as_deref().map(key);
        if r.state == EntryState::Replaying
            && !r.force
            && src.is_some_and(|s| self.copy_holder(s, id).is_some())
        {
            return false;
        }
        let slot = Slot {
            at: at(),
            version: u32::try_from(r.version).unwrap_or(u32::MAX),
            state: r.state,
            history: !r.history.is_empty(),
        };
        if let Some(s) = src {
            let held = self.holder_key(s);
            if slot.holds_source() {
                if held.is_none() {
                    self.by_source.insert(s, Some(id));
                }
            } else if held == Some(id) {
                self.by_source.insert(s, None);
            }
        }
        if self.slots.insert(id, slot).is_none() && self.base.find(id).is_some() {
            self.shadowed += 1;
        }
        true
    }

    /// Whether letter `id` is the one source `source` is indexed as held by (what a
    /// checkpoint must say for a reader to rebuild the same index).
    pub fn indexed(&self, source: &str, id: &str) -> bool {
        self.holder_key(key(source)) == Some(key(id))
    }

    /// The slot of letter `id`.
    pub fn slot(&self, id: &str) -> Option<Slot> {
        self.get(key(id))
    }

    /// The slot of another letter than `id` holding source `source` (replaying or replayed).
    pub fn holder(&self, source: &str, id: &str) -> Option<Slot> {
        self.copy_holder(key(source), key(id))
    }

    /// The slot of the letter holding source `source` (replaying or replayed).
    pub fn source_holder(&self, source: &str) -> Option<Slot> {
        let id = self.holder_key(key(source))?;
        self.get(id).filter(|s| s.holds_source())
    }

    fn copy_holder(&self, source: u64, id: u64) -> Option<Slot> {
        let other = self.holder_key(source).filter(|&o| o != id)?;
        self.get(other).filter(|s| s.holds_source())
    }

    /// Every held source's key and its holder's key, as the index says, in no order.
    pub fn sources(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let base = self
            .base
            .sources()
            .filter(|(s, _)| !self.by_source.contains_key(s));
        let front = self.by_source.iter().filter_map(|(s, h)| Some((*s, (*h)?)));
        base.chain(front)
    }

    /// Every letter's key and slot, in no order.
    pub fn keyed_slots(&self) -> impl Iterator<Item = (u64, Slot)> + '_ {
        let base = (0..self.base.len())
            .map(|i| (self.base.key_at(i), i))
            .filter(|(k, _)| !self.slots.contains_key(k))
            .map(|(k, i)| (k, self.base.slot(i)));
        base.chain(self.slots.iter().map(|(k, s)| (*k, *s)))
    }

    /// Every letter's slot, in no order.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.keyed_slots().map(|(_, s)| s)
    }

    /// How many letters are in each shown state (`replayed`, …).
    pub fn states(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for s in self.slots() {
            *out.entry(s.shown_state().as_str()).or_insert(0) += 1;
        }
        out
    }

    /// How many letters have an entry.
    pub fn len(&self) -> usize {
        self.base.len() + self.slots.len() - self.shadowed
    }

    /// True when no letter has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::letter::LetterState;

    fn rec(id: &str, version: u64, state: EntryState, source: Option<&str>) -> Record<'static> {
        Record {
            id: id.to_string().into(),
            state,
            version,
            source: source.map(|s| s.to_string().into()),
            force: false,
            history: Vec::new(),
            format: None,
        }
    }

    #[test]
    fn the_first_of_two_writes_of_one_version_wins() {
        let mut f = Fold::default();
        let a = rec("0:1", 1, EntryState::Replaying, Some("orders/0/7"));
        assert!(f.accept(&a, || 10));
        // The same version again, later in the log: refused, for every reader.
        assert!(!f.accept(&a, || 11));
        assert_eq!(f.slot("0:1").map(|s| s.at), Some(10));
        // A copy of the same source message cannot claim it while `0:1` holds it…
        let copy = rec("1:9", 1, EntryState::Replaying, Some("orders/0/7"));
        assert!(!f.accept(&copy, || 12));
        assert_eq!(f.holder("orders/0/7", "1:9").map(|s| s.at), Some(10));
        // …unless forced.
        let forced = Record {
            force: true,
            ..rec("1:9", 1, EntryState::Replaying, Some("orders/0/7"))
        };
        assert!(f.accept(&forced, || 13));
        // The next version follows; a release frees the source.
        let released = rec("0:1", 2, EntryState::New, Some("orders/0/7"));
        assert!(f.accept(&released, || 14));
        assert!(f.holder("orders/0/7", "2:2").is_none());
        let other = rec("2:2", 1, EntryState::Replaying, Some("orders/0/7"));
        assert!(f.accept(&other, || 15));
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn a_letter_first_seen_at_a_later_version_is_taken() {
        // Compaction of an older ledger keeps only a letter's latest entry.
        let mut f = Fold::default();
        let mut r = rec("0:1", 3, EntryState::Replayed, None);
        r.history = vec![IgnoredAny];
        assert!(f.accept(&r, || 5));
        assert!(!f.accept(&r, || 6));
        assert_eq!(
            f.slot("0:1").map(Slot::shown_state),
            Some(LetterState::Replayed)
        );
        assert_eq!(f.states().get("replayed"), Some(&1));
    }

    #[test]
    fn keys_are_fixed_for_good() {
        // Checkpoints store these: a change here makes every stored checkpoint unreadable.
        assert_eq!(key("0:1"), 0x5dac_37b7_387b_6eaf);
        assert_eq!(key("orders/3/17"), 0x9dac_009a_498b_99b6);
        assert_ne!(key("0:1"), key("1:0"));
    }

    #[test]
    fn records_parse_without_the_rest_of_the_entry() {
        let json = r#"{"id":"0:4","state":"replayed","by":"a@b","at_ms":1,"version":2,
            "source":"o/0/1","history":[{"replay_id":"r","topic":"o","partition":0,
            "offset":1,"by":"a@b","at_ms":1,"edited":false}]}"#;
        let r: Record<'_> = serde_json::from_str(json).unwrap();
        assert_eq!((r.id.as_ref(), r.version, r.history.len()), ("0:4", 2, 1));
        assert_eq!(r.source.as_deref(), Some("o/0/1"));
    }
}
