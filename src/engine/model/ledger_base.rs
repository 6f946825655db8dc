//! The letters a ledger checkpoint gives a fold, kept in four flat arrays sorted by
//! key: 12 bytes a letter (its id's hash, and version, state and history packed in
//! 32 bits) and 12 bytes a held source (its hash, and the holder's place). A million
//! letters take about 24 MB, against about 85 MB in hash maps; lookups are binary
//! searches. What changes after the checkpoint goes to the fold's maps, in front.

use crate::engine::model::ledger::EntryState;
use crate::engine::model::ledger_fold::{Slot, key};

/// The mark of a slot place that is a base letter's index (see [`Base::slot`]).
pub const BASE_AT: u64 = 1 << 63;

/// A checkpoint's letters, by ascending key.
#[derive(Debug, Default, Clone)]
pub struct Base {
    keys: Vec<u64>,
    /// `version << 4 | history << 3 | state code`.
    meta: Vec<u32>,
    src_keys: Vec<u64>,
    src_holders: Vec<u32>,
}

impl Base {
    /// The index of the letter with key `k`.
    pub fn find(&self, k: u64) -> Option<usize> {
        self.keys.binary_search(&k).ok()
    }

    /// The key of letter `i`.
    pub fn key_at(&self, i: usize) -> u64 {
        self.keys[i]
    }

    /// Letter `i`'s slot; its place is [`BASE_AT`] `| i` (the reader maps it to where the
    /// letter's entry is in the checkpoint).
    pub fn slot(&self, i: usize) -> Slot {
        let m = self.meta[i];
        Slot {
            at: BASE_AT | i as u64,
            version: m >> 4,
            state: EntryState::from_code((m & 7) as u8).unwrap_or(EntryState::New),
            history: m & 8 != 0,
        }
    }

    /// The key of the letter that holds source `src` (its key), if any.
    pub fn holder(&self, src: u64) -> Option<u64> {
        let i = self.src_keys.binary_search(&src).ok()?;
        self.keys.get(self.src_holders[i] as usize).copied()
    }

    /// How many letters.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Builds a [`Base`] from a checkpoint's letters, given in ascending key order.
#[derive(Debug, Default)]
pub struct BaseBuilder {
    base: Base,
    sources: Vec<(u64, u32)>,
}

impl BaseBuilder {
    /// A builder with room for `letters`.
    pub fn with_capacity(letters: usize) -> Self {
        let mut b = BaseBuilder::default();
        b.base.keys.reserve_exact(letters);
        b.base.meta.reserve_exact(letters);
        b
    }

    /// How many letters so far.
    pub fn len(&self) -> usize {
        self.base.keys.len()
    }

    /// True when no letter was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.base.keys.is_empty()
    }

    /// Adds the next letter; refused when its key does not follow the last one's.
    /// `indexed`: its source is indexed as held by it.
    pub fn push(
        &mut self,
        id: &str,
        slot: Slot,
        source: Option<&str>,
        indexed: bool,
    ) -> Result<(), String> {
        let k = key(id);
        if self.base.keys.last().is_some_and(|&last| last >= k) {
            return Err(format!("letter '{id}' is out of order"));
        }
        if slot.version >= 1 << 28 {
            return Err(format!(
                "letter '{id}': version {} is too high",
                slot.version
            ));
        }
        let i = u32::try_from(self.base.keys.len()).map_err(|e| e.to_string())?;
        self.base.keys.push(k);
        self.base
            .meta
            .push(slot.version << 4 | u32::from(slot.history) << 3 | u32::from(slot.state.code()));
        if indexed && let Some(s) = source {
            self.sources.push((key(s), i));
        }
        Ok(())
    }

    /// The base, its sources sorted.
    pub fn finish(mut self) -> Base {
        self.sources.sort_unstable();
        self.sources.dedup_by_key(|s| s.0);
        self.base.src_keys = self.sources.iter().map(|s| s.0).collect();
        self.base.src_holders = self.sources.iter().map(|s| s.1).collect();
        self.base.keys.shrink_to_fit();
        self.base.meta.shrink_to_fit();
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(version: u32, state: EntryState, history: bool) -> Slot {
        Slot {
            at: 0,
            version,
            state,
            history,
        }
    }

    #[test]
    fn letters_and_sources_are_found_and_their_slots_unpacked() {
        let mut ids: Vec<String> = (0..500).map(|i| format!("0:{i}")).collect();
        ids.sort_by_key(|id| key(id));
        let mut b = BaseBuilder::with_capacity(ids.len());
        for (n, id) in ids.iter().enumerate() {
            let state = EntryState::ALL[n % 5];
            let src = format!("orders/0/{id}");
            b.push(
                id,
                slot(n as u32, state, n % 2 == 0),
                Some(&src),
                n % 3 == 0,
            )
            .unwrap();
        }
        assert!(
            b.push(&ids[0], slot(1, EntryState::New, false), None, false)
                .is_err()
        );
        let base = b.finish();
        assert_eq!(base.len(), 500);
        for (n, id) in ids.iter().enumerate() {
            let i = base.find(key(id)).unwrap();
            assert_eq!(i, n);
            let s = base.slot(i);
            assert_eq!(
                (s.version, s.state, s.history),
                (n as u32, EntryState::ALL[n % 5], n % 2 == 0)
            );
            assert_eq!(s.at, BASE_AT | n as u64);
            let held = base.holder(key(&format!("orders/0/{id}")));
            assert_eq!(held, (n % 3 == 0).then(|| key(id)), "{id}");
        }
        assert_eq!(base.find(key("9:9")), None);
    }

    #[test]
    fn every_state_has_its_code() {
        for s in EntryState::ALL {
            assert_eq!(EntryState::from_code(s.code()), Some(s));
        }
        assert_eq!(EntryState::from_code(5), None);
    }
}
