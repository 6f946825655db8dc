//! The Kafka ledger's record formats, and the one [`decode`] every reader uses.
//!
//! **Format 2** (written since this version): one record per ledger write, that is
//! one per window of a replay (its claims, then its confirms), not one per letter.
//! The value is JSON:
//!
//! ```text
//! {"format":2,"by":"ann@jump","session":"<uuid>","at_ms":1765000000000,
//!  "strings":["orders","<claim token>"],
//!  "entries":[[id, version, state, source, force, at_delta, pending, history, edited], …]}
//! pending = [replay_id, topic#, partition, from_offset, edited, key, txn#, [earlier#…]]
//! history = [[replay_id, topic#, partition, offset, by#, at_ms, edited, key], …]
//! ```
//!
//! What a window shares is written once: who, which session, when (each entry keeps
//! its difference in ms), and every repeated string (target topic, claim token,
//! operator) as an index (`#`) into `strings`. No field name is repeated per letter.
//! States are numbers (`0` new, `1` replaying, `2` replayed, `3` resolved, `4`
//! edited), booleans `0`/`1`, bytes a string when UTF-8 and `{"base64": …}` otherwise.
//! A record is at most [`MAX_RECORD`] bytes; a larger write is split, in order.
//!
//! **Format 3** is format 2 with one more field, written only by a record where a
//! replay was made by a transform (`replay --transform`):
//! `"transforms":[[replay_id, expression#], …]`, the expression of each such replay
//! (pending or in a history) named by its replay id. A morgue that reads format 2 only
//! refuses to write such a ledger: finishing a transformed replay without the
//! expression would send the untransformed value. Records without a transform stay
//! format 2.
//!
//! **Format 1** (morgue before this version): one JSON [`LedgerEntry`] per record. Such
//! records are still read, in log order with the others, so a ledger written by an
//! older morgue is continued with every letter's state and history.
//!
//! A record of a newer format (`"format"` above 2) is not folded: the reader notes it,
//! and a ledger holding one is not written by this morgue (see `KafkaLedger::write`).

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::engine::model::encoding::{EncodedBytes, Encoding};
use crate::engine::model::ledger::{EntryState, LedgerEntry, PendingReplay};
use crate::engine::model::ledger_fold::Record;
use crate::engine::model::letter::ReplayRecord;

/// The format this morgue writes.
pub const FORMAT: u64 = 3;
/// The format of records that carry no transform.
const PLAIN: u64 = 2;
/// The largest record a write makes (a broker's default limit is 1 MiB).
pub const MAX_RECORD: usize = 256 << 10;

/// A ledger record, as read.
pub enum Decoded<'a> {
    /// A format-1 record: one letter's entry (its judged fields; the bytes hold the rest).
    One(Record<'a>),
    /// A format-2 record: the judged fields of one write's entries, in order (the
    /// bytes hold the rest: [`entries`] reads them whole).
    Batch(Vec<Record<'a>>),
    /// A record of a newer format than [`FORMAT`]: not understood.
    Newer(u64),
}

/// Reads a record's value; a message quoting what is wrong when it is no ledger record.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, String> {
    if !bytes.starts_with(b"{\"format\":") {
        match serde_json::from_slice::<Record<'_>>(bytes) {
            Ok(r) if r.format.is_none() => return Ok(Decoded::One(r)),
            Ok(_) => {}
            Err(e) if !has_format(bytes) => return Err(e.to_string()),
            Err(_) => {}
        }
    }
    let format = serde_json::from_slice::<Head>(bytes)
        .map_err(|e| e.to_string())?
        .format
        .ok_or("no \"format\" and no \"id\": not a ledger record")?;
    if format > FORMAT {
        return Ok(Decoded::Newer(format));
    }
    let lean: Lean<'_> = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if lean.entries.len() > usize::from(u16::MAX) {
        return Err(format!("{} entries in one record", lean.entries.len()));
    }
    let strings = lean.strings.len();
    let known = |i: u32| -> Result<(), String> {
        match (i as usize) < strings {
            true => Ok(()),
            false => Err(format!("string #{i} is not in the record")),
        }
    };
    lean.entries
        .into_iter()
        .map(
            |LeanEntry(id, version, state, source, force, _, pending, history, _)| {
                let state = EntryState::from_code(state)
                    .ok_or_else(|| format!("entry '{id}': unknown state {state}"))?;
                if let Some(LeanPending(_, topic, _, _, _, _, txn, earlier)) = &pending {
                    for &i in [*topic, *txn].iter().chain(earlier) {
                        known(i)?;
                    }
                }
                for LeanHistory(_, topic, _, _, by, _, _, _) in &history {
                    known(*topic)?;
                    known(*by)?;
                }
                Ok(Record {
                    id,
                    state,
                    version,
                    source,
                    force: force != 0,
                    history: history.iter().map(|_| IgnoredAny).collect(),
                    format: Some(FORMAT),
                })
            },
        )
        .collect::<Result<_, String>>()
        .map(Decoded::Batch)
}

/// Whether `bytes` is a JSON object with a `format` field.
fn has_format(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Head>(bytes).is_ok_and(|h| h.format.is_some())
}

/// The whole entries of a format-2 record, in order.
pub fn entries(bytes: &[u8]) -> Result<Vec<LedgerEntry>, String> {
    let batch: Batch = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    batch.entries()
}

/// A format-2 record read for the fold only: what is not judged is skipped, not built,
/// but for the string indices, which are checked. A record whose other fields are
/// broken (no morgue writes one) is folded, and reported when read back whole.
#[derive(Deserialize)]
struct Lean<'a> {
    #[allow(dead_code)]
    by: IgnoredAny,
    #[allow(dead_code)]
    at_ms: IgnoredAny,
    #[serde(default)]
    strings: Vec<IgnoredAny>,
    #[serde(borrow)]
    entries: Vec<LeanEntry<'a>>,
}

/// An entry of a format-2 record, read for the fold only.
#[derive(Deserialize)]
struct LeanEntry<'a>(
    #[serde(borrow)] Cow<'a, str>,
    u64,
    u8,
    #[serde(borrow)] Option<Cow<'a, str>>,
    u8,
    IgnoredAny,
    Option<LeanPending>,
    Vec<LeanHistory>,
    IgnoredAny,
);

/// A pending replay, read for its string indices only.
#[derive(Deserialize)]
struct LeanPending(
    IgnoredAny,
    u32,
    IgnoredAny,
    IgnoredAny,
    IgnoredAny,
    IgnoredAny,
    u32,
    Vec<u32>,
);

/// A completed replay, read for its string indices only.
#[derive(Deserialize)]
struct LeanHistory(
    IgnoredAny,
    u32,
    IgnoredAny,
    IgnoredAny,
    u32,
    IgnoredAny,
    IgnoredAny,
    IgnoredAny,
);

/// The values of the records that write `entries`, in order, each with the number of
/// entries it holds. Entries written by another user or session start a new record.
pub fn encode(entries: &[LedgerEntry]) -> Result<Vec<(Vec<u8>, usize)>, String> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < entries.len() {
        let first = &entries[start];
        let mut b = Builder::new(first);
        let mut end = start;
        while end < entries.len() {
            let e = &entries[end];
            if e.by != first.by || e.session != first.session {
                break;
            }
            b.push(e);
            end += 1;
            // A place says which entry of its record with 16 bits (see `ledger_view`).
            if b.size > MAX_RECORD || b.batch.entries.len() == u16::MAX as usize {
                break;
            }
        }
        let bytes = serde_json::to_vec(&b.batch).map_err(|e| e.to_string())?;
        out.push((bytes, end - start));
        start = end;
    }
    Ok(out)
}

/// The `format` field alone, to tell the formats apart.
#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    format: Option<u64>,
}

/// A format-2 record.
#[derive(Serialize, Deserialize)]
struct Batch {
    format: u64,
    by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    session: String,
    at_ms: i64,
    #[serde(default)]
    strings: Vec<String>,
    entries: Vec<Entry>,
    /// Format 3: each transformed replay's expression, by replay id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    transforms: Vec<(String, u32)>,
}

/// One letter's entry in a format-2 record.
#[derive(Serialize, Deserialize)]
struct Entry(
    String,
    u64,
    u8,
    Option<String>,
    u8,
    i64,
    Option<Pending>,
    Vec<History>,
    Option<Bytes>,
);

/// A pending replay in a format-2 record.
#[derive(Serialize, Deserialize)]
struct Pending(String, u32, i32, i64, u8, Option<Bytes>, u32, Vec<u32>);

/// A completed replay in a format-2 record.
#[derive(Serialize, Deserialize)]
struct History(String, u32, i32, i64, u32, i64, u8, Option<Bytes>);

/// Bytes: text when UTF-8, base64 otherwise.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Bytes {
    Text(String),
    Base64 { base64: String },
}

impl From<&EncodedBytes> for Bytes {
    fn from(b: &EncodedBytes) -> Self {
        match b.encoding {
            Encoding::Utf8 => Bytes::Text(b.data.clone()),
            Encoding::Base64 => Bytes::Base64 {
                base64: b.data.clone(),
            },
        }
    }
}

impl From<Bytes> for EncodedBytes {
    fn from(b: Bytes) -> Self {
        match b {
            Bytes::Text(data) => EncodedBytes {
                encoding: Encoding::Utf8,
                data,
            },
            Bytes::Base64 { base64 } => EncodedBytes {
                encoding: Encoding::Base64,
                data: base64,
            },
        }
    }
}

/// Builds one format-2 record, entry by entry, keeping its size.
struct Builder {
    batch: Batch,
    size: usize,
}

impl Builder {
    fn new(first: &LedgerEntry) -> Self {
        Builder {
            batch: Batch {
                format: PLAIN,
                by: first.by.clone(),
                session: first.session.clone(),
                at_ms: first.at_ms,
                strings: Vec::new(),
                entries: Vec::new(),
                transforms: Vec::new(),
            },
            size: 128 + first.by.len() + first.session.len(),
        }
    }

    /// The index of `s` in the record's strings, added when new.
    fn string(&mut self, s: &str) -> u32 {
        let i = match self.batch.strings.iter().position(|x| x == s) {
            Some(i) => i,
            None => {
                self.size += s.len() + 3;
                self.batch.strings.push(s.to_string());
                self.batch.strings.len() - 1
            }
        };
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    /// Records the expression of replay `replay_id`, once: the record becomes format 3.
    fn transform(&mut self, replay_id: &str, expr: &str) {
        if self.batch.transforms.iter().any(|(r, _)| r == replay_id) {
            return;
        }
        let i = self.string(expr);
        self.size += replay_id.len() + 16;
        self.batch.transforms.push((replay_id.to_string(), i));
        self.batch.format = FORMAT;
    }

    fn push(&mut self, e: &LedgerEntry) {
        let pending = e.pending.iter().map(|p| (&p.replay_id, &p.transform));
        let history = e.history.iter().map(|h| (&h.replay_id, &h.transform));
        for (replay_id, t) in pending.chain(history) {
            if let Some(expr) = t {
                self.transform(replay_id, expr);
            }
        }
        let pending = e.pending.as_ref().map(|p| {
            let earlier = p.earlier.iter().map(|t| self.string(t)).collect();
            Pending(
                p.replay_id.clone(),
                self.string(&p.topic),
                p.partition,
                p.from_offset,
                u8::from(p.edited),
                p.key.as_ref().map(Bytes::from),
                self.string(&p.txn),
                earlier,
            )
        });
        let history = e
            .history
            .iter()
            .map(|h| {
                History(
                    h.replay_id.clone(),
                    self.string(&h.topic),
                    h.partition,
                    h.offset,
                    self.string(&h.by),
                    h.at_ms,
                    u8::from(h.edited),
                    h.key.as_ref().map(Bytes::from),
                )
            })
            .collect();
        let entry = Entry(
            e.id.clone(),
            e.version,
            e.state.code(),
            e.source.clone(),
            u8::from(e.force),
            e.at_ms - self.batch.at_ms,
            pending,
            history,
            e.edited_value.as_ref().map(Bytes::from),
        );
        self.size += serde_json::to_vec(&entry).map_or(MAX_RECORD, |v| v.len() + 1);
        self.batch.entries.push(entry);
    }
}

impl Batch {
    /// The record's entries, whole.
    fn entries(self) -> Result<Vec<LedgerEntry>, String> {
        let strings = self.strings;
        let s = |i: u32| -> Result<String, String> {
            strings
                .get(i as usize)
                .cloned()
                .ok_or_else(|| format!("string #{i} is not in the record"))
        };
        let mut transforms = std::collections::HashMap::new();
        for (replay_id, i) in &self.transforms {
            transforms.insert(replay_id.as_str(), s(*i)?);
        }
        let transform = |replay_id: &str| transforms.get(replay_id).cloned();
        let mut out = Vec::with_capacity(self.entries.len());
        for Entry(id, version, state, source, force, at_delta, pending, history, edited) in
            self.entries
        {
            let state = EntryState::from_code(state)
                .ok_or_else(|| format!("entry '{id}': unknown state {state}"))?;
            let pending = match pending {
                None => None,
                Some(Pending(replay_id, topic, partition, from, ed, key, txn, earlier)) => {
                    Some(PendingReplay {
                        topic: s(topic)?,
                        partition,
                        from_offset: from,
                        edited: ed != 0,
                        key: key.map(Into::into),
                        txn: s(txn)?,
                        earlier: earlier.into_iter().map(&s).collect::<Result<_, _>>()?,
                        transform: transform(&replay_id),
                        replay_id,
                    })
                }
            };
            let mut hs = Vec::with_capacity(history.len());
            for History(replay_id, topic, partition, offset, by, at_ms, ed, key) in history {
                hs.push(ReplayRecord {
                    transform: transform(&replay_id),
                    replay_id,
                    topic: s(topic)?,
                    partition,
                    offset,
                    by: s(by)?,
                    at_ms,
                    edited: ed != 0,
                    key: key.map(Into::into),
                });
            }
            out.push(LedgerEntry {
                id,
                state,
                by: self.by.clone(),
                at_ms: self.at_ms + at_delta,
                version,
                session: self.session.clone(),
                source,
                force: force != 0,
                pending,
                history: hs,
                edited_value: edited.map(Into::into),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "ledger_codec_tests.rs"]
mod tests;
