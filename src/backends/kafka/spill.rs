//! A session's spill file: the ledger view appends each applied record's bytes here
//! and reads one back by where it was put, so whole entries cost disk, not memory,
//! and reading one back costs a local read, not a fetch from the broker. The file is
//! unlinked as soon as it is opened: it disappears with the process, however it ends.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

use crate::engine::model::ledger::LedgerEntry;

/// Bits of a place that hold the entry's length (the rest hold its position).
const LEN_BITS: u32 = 28;

/// An unlinked, append-only file of entries.
pub struct Spill {
    file: File,
    /// Bytes written to the file.
    flushed: u64,
    /// Bytes appended but not yet written.
    pending: Vec<u8>,
}

impl Spill {
    /// A new spill file in the temporary directory, already unlinked.
    pub fn new() -> io::Result<Spill> {
        let path = std::env::temp_dir().join(format!(
            "morgue-ledger-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(Spill {
            file,
            flushed: 0,
            pending: Vec::with_capacity(1 << 20),
        })
    }

    /// Appends `bytes`; the place to read them back from.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        let pos = self.flushed + self.pending.len() as u64;
        let len = bytes.len() as u64;
        // Places stay below 2^62: the two top bits mark places of other kinds.
        if len >= 1 << LEN_BITS || pos >= 1 << (62 - LEN_BITS) {
            return Err(io::Error::other(format!(
                "an entry of {len} bytes at {pos} does not fit the spill file"
            )));
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok((pos << LEN_BITS) | len)
    }

    /// The bytes appended at `at`.
    pub fn read(&mut self, at: u64) -> io::Result<Vec<u8>> {
        let (pos, len) = (at >> LEN_BITS, at & ((1 << LEN_BITS) - 1));
        if pos + len > self.flushed {
            self.flush()?;
        }
        let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
        self.file.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.write_all(&self.pending)?;
        self.flushed += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

/// The latest entries applied, kept whole in memory by their place (a bulk replay's
/// window confirms what it claimed without reading it back).
#[derive(Default)]
pub struct Recent {
    by_place: HashMap<u64, LedgerEntry>,
    order: VecDeque<u64>,
    cap: usize,
}

impl Recent {
    /// Keeps at most `cap` entries, dropping the oldest.
    pub fn new(cap: usize) -> Self {
        Recent {
            cap,
            ..Recent::default()
        }
    }

    /// Keeps `e`, kept at `at`.
    pub fn push(&mut self, at: u64, e: LedgerEntry) {
        if self.by_place.insert(at, e).is_none() {
            self.order.push_back(at);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.by_place.remove(&old);
            }
        }
    }

    /// The entry kept at `at`, if still held.
    pub fn get(&self, at: u64) -> Option<&LedgerEntry> {
        self.by_place.get(&at)
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.by_place.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_as_written_before_and_after_a_flush() {
        let mut s = Spill::new().unwrap();
        let a = s.append(b"first").unwrap();
        let big = vec![7u8; 3 << 20];
        let b = s.append(&big).unwrap();
        let c = s.append(b"").unwrap();
        let d = s.append(b"last").unwrap();
        assert_eq!(s.read(a).unwrap(), b"first");
        assert_eq!(s.read(b).unwrap(), big);
        assert_eq!(s.read(c).unwrap(), b"");
        assert_eq!(s.read(d).unwrap(), b"last");
    }
}
