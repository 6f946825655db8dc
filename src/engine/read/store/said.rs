//! Error messages as they were said, kept small: a letter's message is stored as its
//! shape (interned, shared by letters failing the same way; one shape is one
//! normalised form) and the parts the mask hid (usually a few digits), in an arena of
//! 1 MiB chunks. A row's `message` is the offset of its entry; 0 means none. The list
//! shows the real message; the triage board groups by the normalised one.

use crate::engine::model::text::clip_bytes;
use crate::engine::read::fingerprint;
use crate::engine::read::index::Interner;

/// Bytes per arena chunk; an entry never spans two.
const CHUNK: usize = 1 << 20;
/// Longest masked part kept, in bytes (a long quoted value is cut and marked `…`).
const MAX_PART: usize = 256;

/// The arena of said messages.
#[derive(Debug)]
pub(super) struct Said {
    chunks: Vec<Vec<u8>>,
    shapes: Interner,
    /// Shape id − 1 → the normalised message's id.
    message_of: Vec<u32>,
}

impl Default for Said {
    fn default() -> Self {
        // Offset 0 is taken, so that 0 means "no message".
        Said {
            chunks: vec![vec![0]],
            shapes: Interner::default(),
            message_of: Vec::new(),
        }
    }
}

impl Said {
    /// Stores a message: `message` is its normalised form's id, `shape` and `parts`
    /// come from [`fingerprint::shape`]. Returns its offset (0 when shapes are full).
    pub(super) fn put(&mut self, message: u32, shape: &str, parts: &[&str], max: usize) -> u32 {
        let shape = match self.shapes.find(shape) {
            Some(id) => id,
            None if self.shapes.len() < max => {
                self.message_of.push(message);
                self.shapes.intern(Some(shape))
            }
            None => return 0,
        };
        let mut entry = Vec::with_capacity(8 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
        varint(&mut entry, shape);
        for p in parts {
            let p = clip_bytes(p, MAX_PART);
            varint(&mut entry, u32::try_from(p.len()).unwrap_or(0));
            entry.extend_from_slice(p.as_bytes());
        }
        if entry.len() > CHUNK {
            return 0;
        }
        let last = self.chunks.len() - 1;
        if self.chunks[last].len() + entry.len() > CHUNK {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let i = self.chunks.len() - 1;
        let chunk = &mut self.chunks[i];
        if chunk.capacity() < CHUNK {
            chunk.reserve_exact(CHUNK - chunk.len());
        }
        let at = i * CHUNK + chunk.len();
        chunk.extend_from_slice(&entry);
        u32::try_from(at).unwrap_or(0)
    }

    /// The entry at `at`: its bytes from there on in its chunk.
    fn entry(&self, at: u32) -> Option<&[u8]> {
        let at = usize::try_from(at).ok().filter(|a| *a != 0)?;
        self.chunks.get(at / CHUNK)?.get(at % CHUNK..)
    }

    /// The normalised message's id of the entry at `at` (0: none).
    pub(super) fn message_id(&self, at: u32) -> u32 {
        self.entry(at)
            .and_then(|mut e| read_varint(&mut e))
            .and_then(|shape| {
                self.message_of
                    .get(usize::try_from(shape).ok()?.checked_sub(1)?)
            })
            .copied()
            .unwrap_or(0)
    }

    /// The message as said, of the entry at `at`.
    pub(super) fn said(&self, at: u32) -> Option<String> {
        let mut e = self.entry(at)?;
        let shape = self.shapes.get(read_varint(&mut e)?)?;
        let holes = shape.matches(fingerprint::HOLE).count();
        let mut parts = Vec::with_capacity(holes);
        for _ in 0..holes {
            let n = usize::try_from(read_varint(&mut e)?).ok()?;
            let (p, rest) = e.split_at_checked(n)?;
            parts.push(std::str::from_utf8(p).ok()?);
            e = rest;
        }
        Some(fingerprint::fill(shape, parts))
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum::<usize>()
            + self.shapes.heap_bytes()
            + self.message_of.capacity() * 4
    }
}

fn varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(e: &mut &[u8]) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let (&b, rest) = e.split_first()?;
        *e = rest;
        v |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_back_as_said_and_share_their_shape() {
        let mut s = Said::default();
        let mut at = Vec::new();
        for raw in [
            "order 17 of 3 failed",
            "order 99812 of 12 failed",
            "object 65f0c0ffee0000000000abcd not found.",
        ] {
            let (_, shape, parts) = fingerprint::shape(raw);
            at.push((raw, s.put(300, &shape, &parts, 10)));
        }
        for (raw, at) in &at {
            assert_ne!(*at, 0);
            assert_eq!(s.said(*at).as_deref(), Some(*raw));
            assert_eq!(s.message_id(*at), 300);
        }
        assert_eq!(s.shapes.len(), 2, "the two orders share a shape");
        assert_eq!((s.said(0), s.message_id(0)), (None, 0));
    }

    #[test]
    fn a_long_part_is_cut_and_full_shapes_give_no_entry() {
        let mut s = Said::default();
        let long = format!("bad value '{}'", "é".repeat(400));
        let (_, shape, parts) = fingerprint::shape(&long);
        let at = s.put(1, &shape, &parts, 1);
        let back = s.said(at).unwrap();
        assert!(
            back.starts_with("bad value 'éé") && back.ends_with('…'),
            "{back}"
        );
        assert!(back.len() < 300);
        let (_, other, parts) = fingerprint::shape("another shape 1");
        assert_eq!(s.put(2, &other, &parts, 1), 0, "at most 1 shape");
    }
}
