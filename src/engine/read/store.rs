//! The in-memory store of a DLQ being inspected: one [`IndexRow`] per letter, a
//! per-partition position index for lookups by id, and a small LRU of full letters
//! fetched on demand. A million letters cost about 60 MB here; payloads cost only
//! what the cache holds. Replayed letters are watched for failing again in
//! `store/watching.rs`.

use std::collections::HashMap;

use crate::engine::model::letter::{DeadLetter, LetterId, LetterState};
use crate::engine::read::index::{
    Chunked, FLAG_OBJECT_ID, IndexRow, Interner, RowId, pack_id, row_of, unpack_id,
};
use crate::engine::read::keys::{self, KeyArena};
use crate::engine::read::outcome::Watch;

/// Offsets `first_offset + k * step` (`k < len`) of one partition, stored in rows
/// `first_row + k`. The step is 1 for plain topics and 2 for a DLQ written one
/// transaction per letter (a commit marker takes every other offset), so both cost
/// a few runs per batch rather than one per letter.
#[derive(Debug, Clone, Copy)]
struct Run {
    first_offset: i64,
    first_row: u32,
    len: u32,
    step: u32,
}

impl Run {
    /// The offset the next letter of this run would have.
    fn next(&self) -> i64 {
        self.first_offset + i64::from(self.len) * i64::from(self.step)
    }

    /// Whether a letter at `offset` in row `row` continues the run.
    fn continues(&self, offset: i64, row: u32) -> bool {
        if self.first_row + self.len != row || offset <= self.first_offset {
            return false;
        }
        if self.len == 1 {
            // The second letter sets the step (small gaps only: markers, not holes).
            return offset - self.first_offset <= 4;
        }
        offset == self.next()
    }

    /// The row of `offset`, when the run holds it.
    fn row(&self, offset: i64) -> Option<usize> {
        let d = offset - self.first_offset;
        let step = i64::from(self.step);
        let k = d / step;
        (d >= 0 && d % step == 0 && k < i64::from(self.len))
            .then(|| (i64::from(self.first_row) + k) as usize)
    }
}

/// Full letters kept at most (the selected one, its neighbours, recent searches).
const CACHE_LETTERS: usize = 256;
/// Distinct normalised messages kept; later new ones are not indexed (the letter
/// still has its message; only the list's ERROR column shows the class alone).
const MAX_MESSAGES: usize = 100_000;

/// Payload bytes kept at most in the cache.
const CACHE_BYTES: usize = 32 << 20;

/// Index rows, interned names and a payload cache.
#[derive(Debug, Default)]
pub struct Store {
    rows: Chunked<IndexRow>,
    topics: Interner,
    errors: Interner,
    others: Vec<String>,
    /// Kafka partition → runs of consecutive offsets stored in consecutive rows,
    /// sorted by offset. A partition is read in batches, so there are few runs.
    partitions: HashMap<i32, Vec<Run>>,
    /// Rows with document ids, sorted by packed id (ObjectIds mostly arrive in order,
    /// so this is mostly appended to): four bytes per letter.
    by_id: Vec<u32>,
    /// Keys too long for their row.
    keys: KeyArena,
    /// Characters of the widest key and source topic seen (for the list's columns).
    widest: (usize, usize),
    /// Normalised error messages (see `fingerprint`), at most [`MAX_MESSAGES`].
    messages: Interner,
    /// Each letter's message as said (a row's `message` is its offset there).
    said: said::Said,
    /// The oldest DLQ time stored (epoch ms).
    oldest_ms: Option<i64>,
    cache: HashMap<RowId, (DeadLetter, u64)>,
    cache_bytes: usize,
    tick: u64,
    /// Replayed letters watched for failing again (see [`outcome`](super::outcome)).
    watch: Watch,
    /// The clock as last given to [`Store::tick`] (epoch ms).
    now_ms: i64,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Store::default()
    }

    /// Adds `l` (or updates its row when the id is already known) and caches the
    /// full letter; returns the row position.
    pub fn insert(&mut self, l: &DeadLetter) -> usize {
        if let Some(pos) = l.id.as_ref().and_then(|id| self.find(id)) {
            if let Some(r) = self.rows.get_mut(pos) {
                r.state = l.state;
            }
            self.follow_up(l);
            return pos;
        }
        let pos = self.push(l);
        self.index_position(l, pos);
        self.follow_up(l);
        pos
    }

    /// Records where letter `l` (at row `pos`) is, for lookups by id.
    fn index_position(&mut self, l: &DeadLetter, pos: usize) {
        if let Some(LetterId::Kafka { partition, offset }) = &l.id {
            let row = u32::try_from(pos).unwrap_or(u32::MAX);
            let runs = self.partitions.entry(*partition).or_default();
            let at = runs.partition_point(|r| r.first_offset < *offset);
            // Extend the run just before when this letter continues it in both offset and row.
            if let Some(prev) = at.checked_sub(1).and_then(|i| runs.get_mut(i))
                && prev.continues(*offset, row)
            {
                if prev.len == 1 {
                    prev.step = u32::try_from(*offset - prev.first_offset).unwrap_or(1);
                }
                prev.len += 1;
            } else {
                runs.insert(
                    at,
                    Run {
                        first_offset: *offset,
                        first_row: row,
                        len: 1,
                        step: 1,
                    },
                );
            }
        } else if let Some(r) = self.rows.get(pos) {
            let key = r.id();
            let rows = &self.rows;
            let at = self.by_id.partition_point(|&p| row_key(rows, p) < key);
            self.by_id
                .insert(at, u32::try_from(pos).unwrap_or(u32::MAX));
        }
    }

    fn push(&mut self, l: &DeadLetter) -> usize {
        let key_w = l
            .key
            .as_deref()
            .map_or(6, |k| match std::str::from_utf8(k) {
                Ok(s) => s.chars().count(),
                Err(_) => 2 + 2 * k.len(),
            });
        let topic_w = l.source.topic.as_deref().map_or(1, |t| t.chars().count());
        if let Some(ts) = l.dlq_timestamp_ms {
            self.oldest_ms = Some(self.oldest_ms.map_or(ts, |o| o.min(ts)));
        }
        self.widest = (self.widest.0.max(key_w), self.widest.1.max(topic_w));
        let mut row = row_of(
            l,
            &mut self.topics,
            &mut self.errors,
            &mut self.others,
            &mut self.keys,
        );
        // With a class, the message is indexed apart (the class is the error).
        if let (Some(_), Some(m)) = (&l.failure.exception_class, &l.failure.message) {
            let (norm, shape, parts) = crate::engine::read::fingerprint::shape(m);
            let id = match self.messages.find(&norm) {
                Some(id) => id,
                None if self.messages.len() < MAX_MESSAGES => self.messages.intern(Some(&norm)),
                None => 0,
            };
            if id != 0 {
                row.message = self.said.put(id, &shape, &parts, MAX_MESSAGES);
            }
        }
        self.rows.push(row)
    }

    /// Number of letters.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row at `pos`.
    pub fn row(&self, pos: usize) -> Option<&IndexRow> {
        self.rows.get(pos)
    }

    /// All rows in arrival order.
    pub fn rows(&self) -> impl Iterator<Item = &IndexRow> {
        self.rows.iter()
    }

    /// The id of the row at `pos`.
    pub fn id(&self, pos: usize) -> Option<LetterId> {
        self.rows.get(pos).map(|r| unpack_id(r, &self.others))
    }

    /// The source topic name of `row`.
    pub fn topic(&self, row: &IndexRow) -> Option<&str> {
        self.topics.get(row.topic)
    }

    /// The key of `row` as stored (None for a null key), and whether it was cut.
    pub fn key(&self, row: &IndexRow) -> Option<(Vec<u8>, bool)> {
        let kind = (row.flags >> crate::engine::read::index::KEY_KIND_SHIFT) & 3;
        (row.flags & crate::engine::read::index::FLAG_NULL_KEY == 0)
            .then(|| keys::unpack(&row.key, kind, &self.keys))
    }

    /// The oldest DLQ time stored (epoch ms).
    pub fn oldest_ms(&self) -> Option<i64> {
        self.oldest_ms
    }

    /// Characters of the widest key and of the widest source topic stored so far.
    pub fn widest(&self) -> (usize, usize) {
        self.widest
    }

    /// The normalised error message of `row`, when it has a class and a message.
    pub fn message(&self, row: &IndexRow) -> Option<&str> {
        self.messages.get(self.message_id(row))
    }

    /// The id of `row`'s normalised message among [`Store::messages`] (0: none).
    pub fn message_id(&self, row: &IndexRow) -> u32 {
        self.said.message_id(row.message)
    }

    /// The error message of `row` as the letter said it (first line, at most
    /// `fingerprint::MAX_CHARS` characters), when it has a class and a message.
    pub fn said(&self, row: &IndexRow) -> Option<String> {
        self.said.said(row.message)
    }

    /// The failure's fingerprint (see `fingerprint::id`) of `row`.
    pub fn fingerprint(&self, row: &IndexRow) -> String {
        crate::engine::read::fingerprint::id(self.error(row), self.message(row))
    }

    /// The error class (or message) of `row`.
    pub fn error(&self, row: &IndexRow) -> Option<&str> {
        self.errors.get(row.error)
    }

    /// Interned source topics.
    pub fn topics(&self) -> &Interner {
        &self.topics
    }

    /// Interned error classes.
    pub fn errors(&self) -> &Interner {
        &self.errors
    }

    /// Interned normalised messages.
    pub fn messages(&self) -> &Interner {
        &self.messages
    }

    /// The row position of letter `id`.
    pub fn find(&self, id: &LetterId) -> Option<usize> {
        match id {
            LetterId::Kafka { partition, offset } => {
                let runs = self.partitions.get(partition)?;
                let at = runs.partition_point(|r| r.first_offset <= *offset);
                // The last run starting at or before it holds it; with steps, an earlier
                // one can (a letter arriving out of order inside a run's span).
                runs[..at].iter().rev().take(8).find_map(|r| r.row(*offset))
            }
            LetterId::Mongo(s) => {
                let want = match self.others.iter().position(|o| o == s) {
                    Some(i) => RowId {
                        hi: u32::MAX,
                        lo: i as u64,
                    },
                    None => {
                        let (want, flags) = pack_id(Some(id), &mut Vec::new());
                        if flags & FLAG_OBJECT_ID == 0 {
                            return None;
                        }
                        want
                    }
                };
                let at = self
                    .by_id
                    .partition_point(|&p| row_key(&self.rows, p) < want);
                let pos = *self.by_id.get(at)? as usize;
                (row_key(&self.rows, pos as u32) == want).then_some(pos)
            }
        }
    }

    /// Sets the state of letter `id` (and of its cached copy); false when unknown.
    pub fn set_state(&mut self, id: &LetterId, state: LetterState) -> bool {
        let Some(pos) = self.find(id) else {
            return false;
        };
        if let Some(r) = self.rows.get_mut(pos) {
            r.state = state;
            if let Some((l, _)) = self.cache.get_mut(&r.id()) {
                l.state = state;
            }
        }
        true
    }

    /// Keeps a fetched letter in the payload cache, evicting the least recently used.
    pub fn cache_put(&mut self, l: DeadLetter) {
        let Some(pos) = l.id.as_ref().and_then(|id| self.find(id)) else {
            return;
        };
        let Some(key) = self.rows.get(pos).map(IndexRow::id) else {
            return;
        };
        self.tick += 1;
        self.cache_bytes += l.size();
        if let Some((old, _)) = self.cache.insert(key, (l, self.tick)) {
            self.cache_bytes -= old.size();
        }
        while self.cache.len() > CACHE_LETTERS
            || (self.cache_bytes > CACHE_BYTES && self.cache.len() > 1)
        {
            let Some(oldest) = self
                .cache
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((old, _)) = self.cache.remove(&oldest) {
                self.cache_bytes -= old.size();
            }
        }
    }

    /// Drops letter `id` from the cache (a write changed its history: fetch it again).
    pub fn uncache(&mut self, id: &LetterId) {
        let Some(key) = self
            .find(id)
            .and_then(|pos| self.rows.get(pos))
            .map(IndexRow::id)
        else {
            return;
        };
        if let Some((old, _)) = self.cache.remove(&key) {
            self.cache_bytes -= old.size();
        }
    }

    /// The cached full letter at row `pos`, if fetched recently.
    pub fn cached(&mut self, pos: usize) -> Option<&DeadLetter> {
        let key = self.rows.get(pos)?.id();
        self.tick += 1;
        let tick = self.tick;
        let entry = self.cache.get_mut(&key)?;
        entry.1 = tick;
        Some(&entry.0)
    }

    /// Heap bytes held by the index (rows, per-partition positions, names), cache excluded.
    pub fn heap_bytes(&self) -> usize {
        let rows = self.rows.capacity() * std::mem::size_of::<IndexRow>();
        let positions: usize = self
            .partitions
            .values()
            .map(|v| v.capacity() * std::mem::size_of::<Run>())
            .sum();
        let names: usize = self.others.iter().map(|s| s.capacity() + 24).sum::<usize>()
            + self.by_id.capacity() * 4;
        rows + positions
            + names
            + self.topics.heap_bytes()
            + self.errors.heap_bytes()
            + self.messages.heap_bytes()
            + self.said.heap_bytes()
            + self.keys.heap_bytes()
    }

    /// Letters and payload bytes in the cache.
    pub fn cache_usage(&self) -> (usize, usize) {
        (self.cache.len(), self.cache_bytes)
    }
}

fn row_key(rows: &Chunked<IndexRow>, pos: u32) -> RowId {
    rows.get(pos as usize)
        .map_or(RowId { hi: 0, lo: 0 }, IndexRow::id)
}

mod said;
mod watching;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Headers;

    fn letter(p: i32, o: i64, value: usize) -> DeadLetter {
        DeadLetter::from_record(
            Some(LetterId::Kafka {
                partition: p,
                offset: o,
            }),
            None,
            None,
            Some(vec![b'x'; value]),
            Headers::default(),
        )
    }

    #[test]
    fn finds_by_id_whatever_the_arrival_order() {
        let mut s = Store::new();
        for (p, o) in [(0, 5), (1, 0), (0, 6), (0, 2), (1, 1)] {
            s.insert(&letter(p, o, 1));
        }
        assert_eq!(s.len(), 5);
        for (p, o) in [(0, 5), (1, 0), (0, 6), (0, 2), (1, 1)] {
            let id = LetterId::Kafka {
                partition: p,
                offset: o,
            };
            let pos = s.find(&id).unwrap();
            assert_eq!(s.id(pos), Some(id));
        }
        assert_eq!(
            s.find(&LetterId::Kafka {
                partition: 0,
                offset: 3
            }),
            None
        );
        assert_eq!(
            s.find(&LetterId::Kafka {
                partition: 9,
                offset: 0
            }),
            None
        );
        // Seen again (a rescan): updated, not duplicated.
        s.insert(&letter(0, 5, 1));
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn a_commit_marker_after_each_letter_costs_no_run_per_letter() {
        let mut s = Store::new();
        // One transaction per letter: letters at even offsets, markers between.
        for o in (0..2000).step_by(2) {
            s.insert(&letter(0, o, 1));
        }
        // Then transactions of three letters: a marker after every third.
        for k in 0..100 {
            for o in 0..3 {
                s.insert(&letter(0, 2000 + k * 4 + o, 1));
            }
        }
        assert!(s.partitions[&0].len() <= 101, "{}", s.partitions[&0].len());
        let find = |s: &Store, o: i64| {
            s.find(&LetterId::Kafka {
                partition: 0,
                offset: o,
            })
        };
        assert_eq!(find(&s, 0), Some(0));
        assert_eq!(find(&s, 1998), Some(999));
        assert_eq!(find(&s, 1), None, "a marker's offset");
        assert_eq!(find(&s, 2000), Some(1000));
        assert_eq!(find(&s, 2002), Some(1002));
        assert_eq!(find(&s, 2003), None);
        assert_eq!(find(&s, 2399), None);
        assert_eq!(find(&s, 2398), Some(1299));
        // A letter inside a run's span, arriving late, is still found.
        let late = s.insert(&letter(0, 7, 1));
        assert_eq!(find(&s, 7), Some(late));
        assert_eq!(find(&s, 8), Some(4));
    }

    #[test]
    fn runs_survive_gaps_interleaving_and_rescans() {
        let mut s = Store::new();
        let mut expect = Vec::new();
        // Two partitions in interleaved batches, offsets with gaps (compaction), then a rescan.
        for (p, offsets) in [(0, 0..5), (1, 0..3), (0, 5..8), (1, 10..12), (0, 20..22)] {
            for o in offsets {
                expect.push((p, o, s.insert(&letter(p, o, 1))));
            }
        }
        assert!(s.partitions[&0].len() <= 3, "{:?}", s.partitions[&0]);
        for o in 0..8 {
            s.insert(&letter(0, o, 1));
        }
        s.insert(&letter(0, 15, 1));
        assert_eq!(s.len(), expect.len() + 1);
        for (p, o, pos) in expect {
            assert_eq!(
                s.find(&LetterId::Kafka {
                    partition: p,
                    offset: o
                }),
                Some(pos)
            );
        }
        for missing in [8, 9, 14, 16, 19, 22] {
            assert_eq!(
                s.find(&LetterId::Kafka {
                    partition: 0,
                    offset: missing
                }),
                None,
                "{missing}"
            );
        }
        assert_eq!(
            s.find(&LetterId::Kafka {
                partition: 0,
                offset: 15
            }),
            Some(s.len() - 1)
        );
    }

    #[test]
    fn state_updates_reach_rows_and_cache() {
        let mut s = Store::new();
        let l = letter(0, 1, 3);
        let pos = s.insert(&l);
        s.cache_put(l.clone());
        assert!(s.set_state(&l.id.clone().unwrap(), LetterState::Replayed));
        assert_eq!(s.row(pos).unwrap().state, LetterState::Replayed);
        assert_eq!(s.cached(pos).unwrap().state, LetterState::Replayed);
        assert!(!s.set_state(
            &LetterId::Kafka {
                partition: 3,
                offset: 3
            },
            LetterState::Resolved
        ));
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut s = Store::new();
        for o in 0..(CACHE_LETTERS as i64 + 10) {
            let l = letter(0, o, 10);
            s.insert(&l);
            s.cache_put(l);
        }
        let (n, bytes) = s.cache_usage();
        assert_eq!(n, CACHE_LETTERS);
        assert_eq!(bytes, CACHE_LETTERS * 10);
        assert!(s.cached(0).is_none(), "the oldest was evicted");
        assert!(s.cached(CACHE_LETTERS + 9).is_some());
    }

    #[test]
    fn mongo_ids_are_found() {
        let mut s = Store::new();
        let a = LetterId::Mongo("65f0c0ffee0000000000abcd".into());
        let b = LetterId::Mongo("custom-id".into());
        for id in [&a, &b] {
            s.insert(&DeadLetter::from_record(
                Some(id.clone()),
                None,
                None,
                None,
                Headers::default(),
            ));
        }
        assert_eq!(s.find(&a), Some(0));
        assert_eq!(s.find(&b), Some(1));
        assert_eq!(s.find(&LetterId::Mongo("nope".into())), None);
    }
}
