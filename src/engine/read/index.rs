//! The compact index row kept in memory for every dead letter (56 bytes), and the
//! pieces that keep it small: interned topic and error-class names, and chunked
//! storage that never doubles its allocation. Payloads are not kept here; they are
//! fetched on demand (see `store`).

use std::collections::HashMap;

use crate::engine::model::letter::{DeadLetter, LetterId, LetterState, Reason};
use crate::engine::read::keys::{self, KeyArena};

/// A letter's id packed in 12 bytes: Kafka `partition:offset`, a 12-byte ObjectId, or
/// an index into the store's table of other ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId {
    /// Kafka partition; ObjectId bytes 0..4; `u32::MAX` for other ids.
    pub hi: u32,
    /// Kafka offset; ObjectId bytes 4..12; index into the other-id table.
    pub lo: u64,
}

/// Bit in [`IndexRow::flags`]: the key is null.
pub const FLAG_NULL_KEY: u8 = 1;
/// Bit in [`IndexRow::flags`]: the value is null.
pub const FLAG_NULL_VALUE: u8 = 2;
/// Bit in [`IndexRow::flags`]: the id is a Kafka `partition:offset`.
pub const FLAG_KAFKA_ID: u8 = 4;
/// Bit in [`IndexRow::flags`]: the id is a MongoDB ObjectId.
pub const FLAG_OBJECT_ID: u8 = 8;
/// Bit in [`IndexRow::flags`]: the value is not valid UTF-8.
pub const FLAG_BINARY_VALUE: u8 = 16;
/// Shift of the two bits in [`IndexRow::flags`] that say how the key cell is read.
pub const KEY_KIND_SHIFT: u8 = 5;

/// Sentinel for an unknown time.
pub const NO_TIME: i64 = i64::MIN;

/// What the list, the filters on index fields and the triage board need about one letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexRow {
    /// Packed id, low part (see [`RowId`]).
    pub id_lo: u64,
    /// DLQ timestamp, epoch ms ([`NO_TIME`] when unknown).
    pub dlq_ts_ms: i64,
    /// The key, whole (see [`keys`]: inline, a packed UUID, or the arena).
    pub key: [u8; keys::CELL],
    /// The error message: its entry in the store's said messages (0 = none; see
    /// `Store::message` and `Store::said`).
    pub message: u32,
    /// Bytes of key + value + headers.
    pub size: u32,
    /// Packed id, high part (see [`RowId`]).
    pub id_hi: u32,
    /// Interned source topic (0 = unknown).
    pub topic: u32,
    /// Interned error class, or message when there is no class (0 = none).
    pub error: u32,
    /// Current state.
    pub state: LetterState,
    /// Failure reason.
    pub reason: Reason,
    /// Attempts, saturated at 255.
    pub attempts: u8,
    /// `FLAG_*` bits.
    pub flags: u8,
}

impl IndexRow {
    /// The packed id.
    pub fn id(&self) -> RowId {
        RowId {
            hi: self.id_hi,
            lo: self.id_lo,
        }
    }
}

/// Strings stored once and referred to by number; id 0 means "none".
#[derive(Debug, Default)]
pub struct Interner {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    /// The id of `s`, adding it when new; `None` gives 0.
    pub fn intern(&mut self, s: Option<&str>) -> u32 {
        let Some(s) = s else { return 0 };
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        self.names.push(s.into());
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ids.insert(s.into(), id);
        id
    }

    /// The string for `id` (`None` for 0 or an unknown id).
    pub fn get(&self, id: u32) -> Option<&str> {
        let i = usize::try_from(id).ok()?.checked_sub(1)?;
        self.names.get(i).map(|s| &**s)
    }

    /// The id of `s` if it was interned.
    pub fn find(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    /// Number of distinct strings.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Approximate heap bytes (each string is stored twice: list and map).
    pub fn heap_bytes(&self) -> usize {
        self.names.iter().map(|s| 2 * s.len() + 48).sum()
    }

    /// True when nothing was interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Bytes per chunk of [`Chunked`]: 1 MiB, which allocators hand out without rounding
/// up (a 56-byte row in an 8192-row chunk wasted a tenth of each chunk to size classes).
const CHUNK_BYTES: usize = 1 << 20;

/// An append-only vector stored in fixed chunks, so growing never copies nor
/// reserves twice the memory.
#[derive(Debug)]
pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    /// Elements per chunk.
    const PER_CHUNK: usize = if CHUNK_BYTES / std::mem::size_of::<T>() > 0 {
        CHUNK_BYTES / std::mem::size_of::<T>()
    } else {
        1
    };

    /// Appends `v` and returns its position.
    pub fn push(&mut self, v: T) -> usize {
        if self
            .chunks
            .last()
            .is_none_or(|c| c.len() == Self::PER_CHUNK)
        {
            self.chunks.push(Vec::with_capacity(Self::PER_CHUNK));
        }
        if let Some(c) = self.chunks.last_mut() {
            c.push(v);
        }
        self.len += 1;
        self.len - 1
    }

    /// The element at `i`.
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks
            .get(i / Self::PER_CHUNK)?
            .get(i % Self::PER_CHUNK)
    }

    /// The element at `i`, mutably.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(i / Self::PER_CHUNK)?
            .get_mut(i % Self::PER_CHUNK)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements the allocated chunks can hold.
    pub fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    /// Iterates in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

/// Packs a letter id; other (non-ObjectId) Mongo ids go to `others`.
pub fn pack_id(id: Option<&LetterId>, others: &mut Vec<String>) -> (RowId, u8) {
    match id {
        Some(LetterId::Kafka { partition, offset }) => (
            RowId {
                hi: u32::from_ne_bytes(partition.to_ne_bytes()),
                lo: u64::from_ne_bytes(offset.to_ne_bytes()),
            },
            FLAG_KAFKA_ID,
        ),
        Some(LetterId::Mongo(s)) => match hex::decode(s).ok().filter(|b| b.len() == 12) {
            Some(b) => (
                RowId {
                    hi: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    lo: u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]),
                },
                FLAG_OBJECT_ID,
            ),
            None => {
                others.push(s.clone());
                (
                    RowId {
                        hi: u32::MAX,
                        lo: (others.len() - 1) as u64,
                    },
                    0,
                )
            }
        },
        None => {
            others.push(String::new());
            (
                RowId {
                    hi: u32::MAX,
                    lo: (others.len() - 1) as u64,
                },
                0,
            )
        }
    }
}

/// Unpacks a row's id.
pub fn unpack_id(row: &IndexRow, others: &[String]) -> LetterId {
    let id = row.id();
    if row.flags & FLAG_KAFKA_ID != 0 {
        LetterId::Kafka {
            partition: i32::from_ne_bytes(id.hi.to_ne_bytes()),
            offset: i64::from_ne_bytes(id.lo.to_ne_bytes()),
        }
    } else if row.flags & FLAG_OBJECT_ID != 0 {
        let mut b = id.hi.to_be_bytes().to_vec();
        b.extend_from_slice(&id.lo.to_be_bytes());
        LetterId::Mongo(hex::encode(b))
    } else {
        let i = usize::try_from(id.lo).unwrap_or(usize::MAX);
        LetterId::Mongo(others.get(i).cloned().unwrap_or_default())
    }
}

/// Builds the index row of `l`, interning its topic and error class.
pub fn row_of(
    l: &DeadLetter,
    topics: &mut Interner,
    errors: &mut Interner,
    others: &mut Vec<String>,
    arena: &mut KeyArena,
) -> IndexRow {
    let (id, mut flags) = pack_id(l.id.as_ref(), others);
    let key = match &l.key {
        Some(k) => {
            let (cell, kind) = keys::pack(k, arena);
            flags |= kind << KEY_KIND_SHIFT;
            cell
        }
        None => {
            flags |= FLAG_NULL_KEY;
            [0u8; keys::CELL]
        }
    };
    match &l.value {
        None => flags |= FLAG_NULL_VALUE,
        Some(v) if std::str::from_utf8(v).is_err() => flags |= FLAG_BINARY_VALUE,
        Some(_) => {}
    }
    let error = l
        .failure
        .exception_class
        .as_deref()
        .or(l.failure.message.as_deref());
    IndexRow {
        id_lo: id.lo,
        id_hi: id.hi,
        dlq_ts_ms: l.dlq_timestamp_ms.unwrap_or(NO_TIME),
        key,
        message: 0,
        size: u32::try_from(l.size()).unwrap_or(u32::MAX),
        topic: topics.intern(l.source.topic.as_deref()),
        error: errors.intern(error),
        state: l.state,
        reason: l.failure.reason,
        attempts: l
            .failure
            .attempts
            .map_or(0, |a| u8::try_from(a).unwrap_or(u8::MAX)),
        flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Headers;

    #[test]
    fn a_row_stays_within_56_bytes() {
        assert_eq!(std::mem::size_of::<IndexRow>(), 56);
    }

    #[test]
    fn ids_pack_and_unpack() {
        let mut others = Vec::new();
        for id in [
            LetterId::Kafka {
                partition: 7,
                offset: 1_234_567_890_123,
            },
            LetterId::Mongo("65f0c0ffee0000000000abcd".into()),
            LetterId::Mongo("order-42".into()),
        ] {
            let mut topics = Interner::default();
            let mut errors = Interner::default();
            let l = DeadLetter::from_record(Some(id.clone()), None, None, None, Headers::default());
            let row = row_of(
                &l,
                &mut topics,
                &mut errors,
                &mut others,
                &mut KeyArena::default(),
            );
            assert_eq!(unpack_id(&row, &others), id);
        }
    }

    #[test]
    fn interning_reuses_ids() {
        let mut i = Interner::default();
        assert_eq!(i.intern(None), 0);
        let a = i.intern(Some("trades"));
        assert_eq!(i.intern(Some("trades")), a);
        assert_ne!(i.intern(Some("orders")), a);
        assert_eq!(i.get(a), Some("trades"));
        assert_eq!(i.get(0), None);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn chunked_storage_indexes_across_chunks() {
        let mut c = Chunked::default();
        let per = Chunked::<usize>::PER_CHUNK;
        for i in 0..(per * 2 + 5) {
            assert_eq!(c.push(i), i);
        }
        assert_eq!(c.get(per + 3), Some(&(per + 3)));
        assert_eq!(c.len(), per * 2 + 5);
        assert_eq!(c.iter().count(), c.len());
        *c.get_mut(0).unwrap() = 99;
        assert_eq!(c.get(0), Some(&99));
        assert_eq!(c.get(c.len()), None);
    }
}
