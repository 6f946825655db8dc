//! The letters a ledger checkpoint gives a fold, kept in flat arrays sorted by key:
//! 16 bytes a letter (its id's hash; version, state and history packed in 32 bits;
//! its place in the checkpoint) and 12 bytes a held source (its hash, and the holder).
//! A million letters take about 28 MB, against about 85 MB in hash maps; lookups are
//! binary searches. What changes after the checkpoint goes to the fold's maps, in front.
//! A letter's [`Slot`] and the fixed hash [`key`] are defined here, under the fold.

use crate::engine::model::ledger::EntryState;
use crate::engine::model::letter::LetterState;

/// What the fold keeps of one letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Where the reader keeps the letter's latest applied entry (the Kafka view: its
    /// place in a local spill file).
    pub at: u64,
    /// That entry's version.
    pub version: u32,
    /// That entry's state.
    pub state: EntryState,
    /// The entry lists at least one completed replay.
    pub history: bool,
}

impl Slot {
    /// Whether the letter holds its source message against copies (replaying or replayed).
    pub(crate) fn holds_source(self) -> bool {
        self.state == EntryState::Replaying || self.history
    }

    /// The state a letter with this entry shows (see [`LedgerEntry::shown_state`]).
    pub fn shown_state(self) -> LetterState {
        self.state.shown(self.history)
    }
}

/// The hash a letter id or a source key is kept under: FNV-1a with a final mix, fixed
/// for good (checkpoints store these hashes, so they must not change between builds).
pub fn key(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The mark of a slot place that is a letter's place in the loaded checkpoint
/// (`BASE_AT | n`: the checkpoint's `n`th letter).
pub const BASE_AT: u64 = 1 << 63;

/// A checkpoint's letters, by ascending key.
#[derive(Debug, Default, Clone)]
pub struct Base {
    keys: Vec<u64>,
    /// `version << 4 | history << 3 | state code`.
    meta: Vec<u32>,
    /// Each letter's place in the checkpoint.
    pos: Vec<u32>,
    src_keys: Vec<u64>,
    /// Each held source's holder, as an index into `keys`.
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

    /// Letter `i`'s slot; its place is [`BASE_AT`] `|` its place in the checkpoint.
    pub fn slot(&self, i: usize) -> Slot {
        let m = self.meta[i];
        Slot {
            at: BASE_AT | u64::from(self.pos[i]),
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

    /// Every held source's key and its holder's key.
    pub fn sources(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.src_keys
            .iter()
            .zip(&self.src_holders)
            .map(|(s, &h)| (*s, self.keys[h as usize]))
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

/// Builds a [`Base`] from a checkpoint's letters and held sources, in any order.
#[derive(Debug, Default)]
pub struct BaseBuilder {
    base: Base,
    /// Source key and its holder's place.
    sources: Vec<(u64, u32)>,
}

impl BaseBuilder {
    /// A builder with room for `letters` (at most 4M reserved ahead).
    pub fn with_capacity(letters: usize) -> Self {
        let n = letters.min(1 << 22);
        let mut b = BaseBuilder::default();
        b.base.keys.reserve_exact(n);
        b.base.meta.reserve_exact(n);
        b.base.pos.reserve_exact(n);
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

    /// Adds letter `id` with its slot (its place is the number of letters before it).
    pub fn push(&mut self, id: &str, slot: Slot) -> Result<(), String> {
        self.push_key(key(id), slot, format_args!("'{id}'"))
    }

    /// Adds the letter whose id hashes to `k` (`what` names it in an error).
    pub fn push_key(
        &mut self,
        k: u64,
        slot: Slot,
        what: std::fmt::Arguments<'_>,
    ) -> Result<(), String> {
        if slot.version >= 1 << 28 {
            return Err(format!(
                "letter {what}: version {} is too high",
                slot.version
            ));
        }
        let pos = u32::try_from(self.base.keys.len()).map_err(|e| e.to_string())?;
        self.base.keys.push(k);
        self.base
            .meta
            .push(slot.version << 4 | u32::from(slot.history) << 3 | u32::from(slot.state.code()));
        self.base.pos.push(pos);
        Ok(())
    }

    /// Records that source `src` (its key) is held by the letter pushed at place
    /// `holder` (the number of letters pushed before it).
    pub fn push_source(&mut self, src: u64, holder: u32) {
        self.sources.push((src, holder));
    }

    /// The base: letters sorted by key, every source's holder found; refused when two
    /// letters share a key or a source's holder is not among the letters. Linear but
    /// for two sorts (1M letters: sorted as (key, place) pairs, and each holder found
    /// through the inverse of that order, not by a search per source).
    pub fn finish(self) -> Result<Base, String> {
        let BaseBuilder { base, mut sources } = self;
        let mut order: Vec<(u64, u32)> = base.keys.iter().copied().zip(0u32..).collect();
        order.sort_unstable();
        if let Some(w) = order.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("two letters share the key {:#x}", w[0].0));
        }
        let keys: Vec<u64> = order.iter().map(|o| o.0).collect();
        let meta: Vec<u32> = order.iter().map(|o| base.meta[o.1 as usize]).collect();
        let pos: Vec<u32> = order.iter().map(|o| base.pos[o.1 as usize]).collect();
        // Where each place went in the sorted order.
        let mut sorted_at = vec![0u32; order.len()];
        for (i, o) in (0u32..).zip(&order) {
            sorted_at[o.1 as usize] = i;
        }
        drop(order);
        sources.sort_unstable();
        sources.dedup_by_key(|s| s.0);
        let mut src_keys = Vec::with_capacity(sources.len());
        let mut src_holders = Vec::with_capacity(sources.len());
        for (s, h) in sources {
            let i = sorted_at.get(h as usize).ok_or_else(|| {
                format!("source {s:#x} is held by no letter of the checkpoint (place {h})")
            })?;
            src_keys.push(s);
            src_holders.push(*i);
        }
        Ok(Base {
            keys,
            meta,
            pos,
            src_keys,
            src_holders,
        })
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
        let ids: Vec<String> = (0..500).map(|i| format!("0:{i}")).collect();
        let mut b = BaseBuilder::with_capacity(ids.len());
        for (n, id) in ids.iter().enumerate() {
            let state = EntryState::ALL[n % 5];
            b.push(id, slot(n as u32, state, n % 2 == 0)).unwrap();
            if n % 3 == 0 {
                b.push_source(key(&format!("orders/0/{n}")), n as u32);
            }
        }
        assert!(
            b.push("0:9", slot(1 << 28, EntryState::New, false))
                .is_err()
        );
        let base = b.finish().unwrap();
        assert_eq!(base.len(), 500);
        for (n, id) in ids.iter().enumerate() {
            let s = base.slot(base.find(key(id)).unwrap());
            assert_eq!(
                (s.version, s.state, s.history),
                (n as u32, EntryState::ALL[n % 5], n % 2 == 0)
            );
            // Its place is where it came in the checkpoint.
            assert_eq!(s.at, BASE_AT | n as u64);
            let held = base.holder(key(&format!("orders/0/{n}")));
            assert_eq!(held, (n % 3 == 0).then(|| key(id)), "{id}");
        }
        assert_eq!(base.sources().count(), 167);
        assert_eq!(base.find(key("9:9")), None);
    }

    #[test]
    fn a_base_with_twins_or_a_source_without_holder_is_refused() {
        let mut b = BaseBuilder::default();
        b.push("0:1", slot(1, EntryState::New, false)).unwrap();
        b.push("0:1", slot(2, EntryState::New, false)).unwrap();
        assert!(b.finish().unwrap_err().contains("share the key"));
        let mut b = BaseBuilder::default();
        b.push("0:1", slot(1, EntryState::New, false)).unwrap();
        b.push_source(key("orders/0/1"), 1);
        assert!(b.finish().unwrap_err().contains("held by no letter"));
    }

    #[test]
    fn every_state_has_its_code() {
        for s in EntryState::ALL {
            assert_eq!(EntryState::from_code(s.code()), Some(s));
        }
        assert_eq!(EntryState::from_code(5), None);
    }
}
