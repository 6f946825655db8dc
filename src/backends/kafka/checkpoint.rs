//! Ledger checkpoints: the state the ledger's log decides up to an offset, written so
//! that a new session reads it and the log after it, not the whole log, and so that
//! the log before it can be removed. Like a Raft snapshot, a checkpoint is a function
//! of a log prefix: two sessions that write one for the same offset write the same
//! state, so a checkpoint never changes a decision.
//!
//! They live in a topic of their own, `<dlq>.morgue-checkpoint` (one partition):
//! - a **head** record first, key `h/<uuid>`, JSON
//!   `{"format":3,"checkpoint":{"id","upto","parts","letters","by","at_ms"}}` (format 3
//!   since transformed replays: its entries may carry a transform's expression, which a
//!   format-2 morgue would drop; format-2 heads are still read): the ledger
//!   offset it covers up to (every record before `upto` is folded in), and how many
//!   parts and letters follow;
//! - then its **parts**, in order, key `p/<uuid>/<i>`, each up to [`PART_LETTERS`]
//!   letters and [`PART_BYTES`] of entries: `MCK2`, a 4-byte big-endian length, a zstd
//!   frame of the part's fold columns (JSON: ids, versions, state bytes, and the fold's
//!   source index for these letters as (letter, source hash) pairs — the index itself,
//!   not a letter's latest source, so a reader rebuilds it exactly), then a zstd frame
//!   of the letters' whole entries (format-1 JSON, a line each: what showing a letter's
//!   history needs, read back on demand). Hashes are `ledger_fold::key`, fixed for good.
//!
//! A checkpoint counts once its head and every part are acknowledged. Only then does
//! its writer remove the ledger records before `upto` (but the last few) and the
//! checkpoint records before its head, but never a head of a checkpoint that covers
//! more (Kafka DeleteRecords, on topics whose `cleanup.policy` is `delete`, retention
//! off). A reader takes the complete checkpoint with the highest `upto` and reads the
//! ledger from there; so the checkpoint covering most always survives, and the ledger
//! is never cut past it. A ledger cut past what a reader read (another checkpoint
//! meanwhile) sends it back to the checkpoint topic; a ledger that ends before the
//! checkpoint's `upto` (recreated) is refused (see `ledger_view`).

use std::io::Read;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::engine::model::ledger::{EntryState, LedgerEntry};
use crate::engine::model::ledger_fold::key;

/// Suffix of the checkpoint topic next to a Kafka DLQ topic.
pub const CHECKPOINT_SUFFIX: &str = ".morgue-checkpoint";
/// The checkpoint topic of ledger topic `ledger` (`<dlq>.morgue-ledger`).
pub fn topic_of(ledger: &str) -> String {
    let dlq = ledger
        .strip_suffix(crate::engine::model::ledger::LEDGER_SUFFIX)
        .unwrap_or(ledger);
    format!("{dlq}{CHECKPOINT_SUFFIX}")
}

/// Letters per part: a part is well under a broker's default 1 MiB record limit, and
/// reading one letter back decompresses one part (about 400 KB).
pub const PART_LETTERS: usize = 1024;
/// Bytes of entries (before compression) per part, at most, but for a single letter:
/// a part stays under a broker's default record limit however large the edits.
pub const PART_BYTES: usize = 512 << 10;
/// The first bytes of a part.
const MAGIC: &[u8; 4] = b"MCK2";

/// What a checkpoint's head says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    /// The checkpoint's id (its parts' keys carry it).
    pub id: String,
    /// Every ledger record before this offset is folded in.
    pub upto: i64,
    /// How many parts follow.
    pub parts: u32,
    /// How many letters it holds.
    pub letters: u64,
    /// Who wrote it, `user@host`.
    pub by: String,
    /// When, epoch milliseconds.
    pub at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct HeadRecord {
    format: u64,
    #[serde(default)]
    checkpoint: Option<Head>,
}

/// A head record's value.
pub fn encode_head(h: &Head) -> Result<Vec<u8>, String> {
    serde_json::to_vec(&HeadRecord {
        format: super::ledger_codec::FORMAT,
        checkpoint: Some(h.clone()),
    })
    .map_err(|e| e.to_string())
}

/// A head record read back: the head, or the newer format it was written in.
pub fn decode_head(bytes: &[u8]) -> Result<Result<Head, u64>, String> {
    let r: HeadRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if r.format > super::ledger_codec::FORMAT {
        return Ok(Err(r.format));
    }
    r.checkpoint
        .map(Ok)
        .ok_or_else(|| "a head without \"checkpoint\"".to_string())
}

/// One letter as a part's fold columns hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// The letter id.
    pub id: String,
    /// Its entry's version.
    pub version: u64,
    /// Its entry's state.
    pub state: EntryState,
    /// Its entry lists a completed replay.
    pub history: bool,
}

/// A part's fold columns.
#[derive(Serialize, Deserialize)]
struct Columns {
    ids: Vec<String>,
    versions: Vec<u64>,
    /// State code | 8 when it has a history.
    states: Vec<u8>,
    /// The fold's source index for these letters: (letter's place in the part, the
    /// source key's hash) for each source the index says the letter holds.
    held: Vec<(u32, u64)>,
}

/// A part's value, from its letters, the sources they hold, and their whole entries
/// (one format-1 JSON line each, same order).
pub fn encode_part(
    letters: &[Letter],
    held: &[(u32, u64)],
    lines: &[u8],
) -> Result<Vec<u8>, String> {
    let cols = Columns {
        ids: letters.iter().map(|l| l.id.clone()).collect(),
        versions: letters.iter().map(|l| l.version).collect(),
        states: letters
            .iter()
            .map(|l| l.state.code() | (u8::from(l.history) << 3))
            .collect(),
        held: held.to_vec(),
    };
    let json = serde_json::to_vec(&cols).map_err(|e| e.to_string())?;
    let fold = zstd::encode_all(json.as_slice(), 3).map_err(|e| e.to_string())?;
    let blob = zstd::encode_all(lines, 3).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(8 + fold.len() + blob.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(
        &u32::try_from(fold.len())
            .map_err(|e| e.to_string())?
            .to_be_bytes(),
    );
    out.extend_from_slice(&fold);
    out.extend_from_slice(&blob);
    Ok(out)
}

/// A letter as a reader loads it: its id's hash (`ledger_fold::key`), not the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// The hash of the letter id.
    pub key: u64,
    /// Its entry's version.
    pub version: u64,
    /// Its entry's state.
    pub state: EntryState,
    /// Its entry lists a completed replay.
    pub history: bool,
}

/// A part's fold columns as read: ids borrowed from the decompressed text, hashed
/// without being copied (a million letters load without a million allocations).
#[derive(Deserialize)]
struct ColumnsIn<'a> {
    #[serde(borrow)]
    ids: Vec<Cow<'a, str>>,
    versions: Vec<u64>,
    states: Vec<u8>,
    held: Vec<(u32, u64)>,
}

/// A part read back: its letters, the sources they hold, and the compressed entries
/// (kept as they are, read on demand).
pub struct Part<'a> {
    /// The letters, in order.
    pub letters: Vec<Loaded>,
    /// (letter's place in the part, source key's hash).
    pub held: Vec<(u32, u64)>,
    /// The entries, compressed.
    pub blob: &'a [u8],
}

/// Reads a part's value.
pub fn decode_part(bytes: &[u8]) -> Result<Part<'_>, String> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not a checkpoint part (no MCK2)")?;
    let (len, rest) = rest.split_at_checked(4).ok_or("a part cut short")?;
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (fold, blob) = rest.split_at_checked(len).ok_or("a part cut short")?;
    let json = zstd::decode_all(fold).map_err(|e| format!("fold columns: {e}"))?;
    let c: ColumnsIn<'_> =
        serde_json::from_slice(&json).map_err(|e| format!("fold columns: {e}"))?;
    let n = c.ids.len();
    if c.versions.len() != n || c.states.len() != n {
        return Err(format!("fold columns of unequal lengths ({n} ids)"));
    }
    if let Some((j, _)) = c.held.iter().find(|(j, _)| *j as usize >= n) {
        return Err(format!("a source held by letter {j} of {n}"));
    }
    let mut letters = Vec::with_capacity(n);
    for ((id, version), s) in c.ids.into_iter().zip(c.versions).zip(c.states) {
        let state = EntryState::from_code(s & 7)
            .ok_or_else(|| format!("letter '{id}': unknown state {}", s & 7))?;
        letters.push(Loaded {
            key: key(&id),
            version,
            state,
            history: s & 8 != 0,
        });
    }
    Ok(Part {
        letters,
        held: c.held,
        blob,
    })
}

/// A part's entries, decompressed: each parsed only when asked for.
pub struct Entries {
    text: Vec<u8>,
    /// Where each line starts, and the text's end.
    starts: Vec<usize>,
}

impl Entries {
    /// The entries of a part's blob.
    pub fn of(blob: &[u8]) -> Result<Entries, String> {
        let mut text = Vec::new();
        zstd::Decoder::new(blob)
            .and_then(|mut d| d.read_to_end(&mut text))
            .map_err(|e| format!("checkpoint entries: {e}"))?;
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', &text).map(|i| i + 1));
        if starts.last() != Some(&text.len()) {
            starts.push(text.len());
        }
        Ok(Entries { text, starts })
    }

    /// Entry `i`, parsed (None: there is no such entry).
    pub fn get(&self, i: usize) -> Option<Result<LedgerEntry, String>> {
        let (a, b) = (*self.starts.get(i)?, *self.starts.get(i + 1)?);
        let line = self.text[a..b]
            .strip_suffix(b"\n")
            .unwrap_or(&self.text[a..b]);
        Some(serde_json::from_slice(line).map_err(|e| format!("checkpoint entry {i}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> LedgerEntry {
        LedgerEntry {
            id: format!("0:{i}"),
            state: EntryState::Replayed,
            by: "ann@jump".into(),
            at_ms: 1,
            version: 2,
            session: "s".into(),
            source: Some(format!("orders/0/{i}")),
            force: false,
            pending: None,
            history: Vec::new(),
            edited_value: None,
        }
    }

    #[test]
    fn parts_and_heads_round_trip() {
        let entries: Vec<_> = (0..100).map(entry).collect();
        let letters: Vec<_> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| Letter {
                id: e.id.clone(),
                version: e.version,
                state: EntryState::ALL[i % 5],
                history: i % 3 == 0,
            })
            .collect();
        let held: Vec<(u32, u64)> = (0..100)
            .step_by(7)
            .map(|j| (j, u64::MAX - j as u64))
            .collect();
        let mut lines = Vec::new();
        for e in &entries {
            serde_json::to_writer(&mut lines, e).unwrap();
            lines.push(b'\n');
        }
        let bytes = encode_part(&letters, &held, &lines).unwrap();
        let part = decode_part(&bytes).unwrap();
        let loaded: Vec<Loaded> = letters
            .iter()
            .map(|l| Loaded {
                key: key(&l.id),
                version: l.version,
                state: l.state,
                history: l.history,
            })
            .collect();
        assert_eq!((&part.letters, &part.held), (&loaded, &held));
        let got = Entries::of(part.blob).unwrap();
        let back: Vec<_> = (0..entries.len())
            .map(|i| got.get(i).unwrap().unwrap())
            .collect();
        assert_eq!(back, entries);
        assert!(got.get(entries.len()).is_none());
        let h = Head {
            id: "c".into(),
            upto: 42,
            parts: 3,
            letters: 100,
            by: "ann@jump".into(),
            at_ms: 5,
        };
        assert_eq!(decode_head(&encode_head(&h).unwrap()).unwrap(), Ok(h));
        assert_eq!(decode_head(br#"{"format":4}"#).unwrap(), Err(4));
        // A source held by a letter the part does not have is refused.
        let bad = encode_part(&letters[..5], &[(5, 1)], b"").unwrap();
        assert!(
            decode_part(&bad)
                .err()
                .unwrap()
                .contains("held by letter 5 of 5")
        );
    }

    #[test]
    fn broken_parts_are_refused() {
        for (bytes, says) in [
            (&b"XXXX"[..], "no MCK2"),
            (b"MCK2\0\0", "cut short"),
            (b"MCK2\0\0\0\x09abc", "cut short"),
            (b"MCK2\0\0\0\x03abc", "fold columns"),
        ] {
            let err = decode_part(bytes).err().unwrap();
            assert!(err.contains(says), "{err}");
        }
    }
}
