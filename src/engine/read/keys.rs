//! Letter keys in the index, whole, in 16 bytes of the row (plus two flag bits) and an
//! arena for the few that need it: keys of up to 15 bytes sit in the row with their
//! length, canonical UUIDs (36 characters, the commonest long key) are packed into 16
//! bytes, and other keys go to an append-only arena (up to [`MAX_KEPT`] bytes each),
//! the row holding where. So the list shows keys whole, `key:` filters are answered
//! from the index, and the row stays 56 bytes.

/// Bytes of a row's key cell.
pub const CELL: usize = 16;
/// Longest key kept whole in the arena; longer ones are cut there (shown with `…`,
/// and a `key:` filter compares their first [`MAX_KEPT`] bytes).
pub const MAX_KEPT: usize = 256;

/// How a cell is to be read (two bits of the row's flags).
pub type Kind = u8;
/// The key itself, its length in the last byte.
const INLINE: Kind = 0;
/// A lowercase UUID.
const UUID_LOWER: Kind = 1;
/// An uppercase UUID.
const UUID_UPPER: Kind = 2;
/// Position and length in the arena.
const IN_ARENA: Kind = 3;
/// Arena bytes per chunk (an entry never spans two).
const CHUNK: usize = 1 << 20;

/// Keys too long for their row, stored back to back in 1 MiB chunks.
#[derive(Debug, Default)]
pub struct KeyArena {
    chunks: Vec<Vec<u8>>,
}

impl KeyArena {
    /// Stores `key` (cut at [`MAX_KEPT`]) and returns its position.
    fn put(&mut self, key: &[u8]) -> u64 {
        let kept = &key[..key.len().min(MAX_KEPT)];
        if self
            .chunks
            .last()
            .is_none_or(|c| c.len() + kept.len() > CHUNK)
        {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let chunk = self.chunks.len() - 1;
        let Some(c) = self.chunks.last_mut() else {
            return 0;
        };
        let at = c.len();
        c.extend_from_slice(kept);
        (chunk * CHUNK + at) as u64
    }

    fn get(&self, pos: u64, len: usize) -> &[u8] {
        let (chunk, at) = (pos as usize / CHUNK, pos as usize % CHUNK);
        self.chunks
            .get(chunk)
            .and_then(|c| c.get(at..at + len))
            .unwrap_or_default()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }
}

/// The cell and its kind for `key`, storing it in `arena` when it fits neither the
/// row nor a UUID.
pub fn pack(key: &[u8], arena: &mut KeyArena) -> ([u8; CELL], Kind) {
    let mut cell = [0u8; CELL];
    if key.len() < CELL {
        cell[..key.len()].copy_from_slice(key);
        cell[CELL - 1] = key.len() as u8;
        return (cell, INLINE);
    }
    if let Some((bytes, upper)) = uuid_bytes(key) {
        cell.copy_from_slice(&bytes);
        return (cell, if upper { UUID_UPPER } else { UUID_LOWER });
    }
    let pos = arena.put(key);
    cell[..8].copy_from_slice(&pos.to_le_bytes());
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    cell[8..12].copy_from_slice(&len.to_le_bytes());
    (cell, IN_ARENA)
}

/// The key as stored, and whether it was cut.
pub fn unpack(cell: &[u8; CELL], kind: Kind, arena: &KeyArena) -> (Vec<u8>, bool) {
    match kind {
        INLINE => {
            let len = usize::from(cell[CELL - 1]).min(CELL - 1);
            (cell[..len].to_vec(), false)
        }
        tag @ (UUID_LOWER | UUID_UPPER) => {
            let u = uuid::Uuid::from_bytes(*cell);
            let s = u.hyphenated().to_string();
            let s = if tag == UUID_UPPER {
                s.to_uppercase()
            } else {
                s
            };
            (s.into_bytes(), false)
        }
        _ => {
            let mut pos = [0u8; 8];
            pos.copy_from_slice(&cell[..8]);
            let mut len = [0u8; 4];
            len.copy_from_slice(&cell[8..12]);
            let len = u32::from_le_bytes(len) as usize;
            let kept = len.min(MAX_KEPT);
            (
                arena.get(u64::from_le_bytes(pos), kept).to_vec(),
                len > kept,
            )
        }
    }
}

/// A canonical UUID (8-4-4-4-12 hex digits, one case) as 16 bytes, and its case.
fn uuid_bytes(key: &[u8]) -> Option<([u8; 16], bool)> {
    if key.len() != 36 {
        return None;
    }
    let s = std::str::from_utf8(key).ok()?;
    let u = uuid::Uuid::try_parse(s).ok()?;
    let canonical = u.hyphenated().to_string();
    if s == canonical {
        Some((*u.as_bytes(), false))
    } else if s == canonical.to_uppercase() {
        Some((*u.as_bytes(), true))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_back_whole() {
        let mut arena = KeyArena::default();
        let long = "order-".repeat(50);
        for key in [
            "",
            "ORD-ALPHA-1",
            "exactly-sixteen!",
            "fifteen-bytes!!",
            "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b",
            "6F1C2A9E-3B4D-4E5F-8A7B-9C0D1E2F3A4B",
            // Not canonical: mixed case, or a UUID-length string of something else.
            "6f1c2a9e-3B4D-4e5f-8a7b-9c0d1e2f3a4b",
            "customer:42/order:1234567/line:00001",
            "seventeen-bytes-!",
        ] {
            let (cell, kind) = pack(key.as_bytes(), &mut arena);
            assert_eq!(
                unpack(&cell, kind, &arena),
                (key.as_bytes().to_vec(), false),
                "{key}"
            );
        }
        let (cell, kind) = pack(long.as_bytes(), &mut arena);
        let (kept, cut) = unpack(&cell, kind, &arena);
        assert!(cut);
        assert_eq!(kept, &long.as_bytes()[..MAX_KEPT]);
        // Binary keys survive as bytes, trailing NULs included (a big-endian long).
        let bin = 256u64.to_be_bytes();
        let (cell, kind) = pack(&bin, &mut arena);
        assert_eq!(unpack(&cell, kind, &arena).0, bin);
    }

    #[test]
    fn only_keys_that_need_it_use_the_arena() {
        let mut arena = KeyArena::default();
        pack(b"6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b", &mut arena);
        pack(b"ORD-ALPHA-1", &mut arena);
        assert_eq!(arena.heap_bytes(), 0);
        pack(b"customer:42/order:1234567/line:00001", &mut arena);
        assert!(arena.heap_bytes() > 0);
    }
}
