//! MongoDB documents ⇄ dead letters. Reads the shape a pymongo consumer writes from a
//! confluent-kafka message (and its variants: every field optional, several types per
//! field), through a configurable field mapping; what cannot be read becomes a note
//! that quotes it. Writes the same shape plus morgue's own fields, binary-safe.

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use serde::{Deserialize, Serialize};

use crate::engine::model::ledger::LedgerEntry;
use crate::engine::{
    DeadLetter, FailureContext, Header, Headers, LetterId, LetterState, Reason, ReplayRecord,
};

/// Where each piece of a dead letter lives in a document (dotted paths allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FieldMap {
    /// Message key (Binary, string or absent).
    pub key: String,
    /// Message value (string, Binary or embedded document).
    pub value: String,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: String,
    /// Source offset.
    pub offset: String,
    /// Source timestamp (`[type, ms]`, ms, or a date).
    pub timestamp: String,
    /// When the failure was recorded (a date).
    pub error_time: String,
    /// Set by a processor that claimed the letter.
    pub processed: String,
    /// When it was claimed.
    pub process_time: String,
    /// Message headers, `[{name, value}]`.
    pub headers: String,
    /// Exception class.
    pub exception_class: String,
    /// Error message.
    pub error_message: String,
    /// Stack trace.
    pub stack_trace: String,
}

impl Default for FieldMap {
    fn default() -> Self {
        let s = str::to_string;
        FieldMap {
            key: s("key"),
            value: s("value"),
            topic: s("topic"),
            partition: s("partition"),
            offset: s("offset"),
            timestamp: s("timestamp"),
            error_time: s("error_time"),
            processed: s("processed"),
            process_time: s("process_time"),
            headers: s("headers"),
            exception_class: s("morgue.failure.exception_class"),
            error_message: s("morgue.failure.message"),
            stack_trace: s("morgue.failure.stack_trace"),
        }
    }
}

/// The value at a dotted path.
pub fn get<'a>(d: &'a Document, path: &str) -> Option<&'a Bson> {
    let mut parts = path.split('.');
    let mut cur = d.get(parts.next()?)?;
    for p in parts {
        cur = match cur {
            Bson::Document(inner) => inner.get(p)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A document `_id` as a letter id: an ObjectId as hex, a string as is, a number in decimal.
pub fn id_of(d: &Document) -> Option<LetterId> {
    let s = match d.get("_id")? {
        Bson::ObjectId(o) => o.to_hex(),
        Bson::String(s) => s.clone(),
        Bson::Int32(i) => i.to_string(),
        Bson::Int64(i) => i.to_string(),
        other => other.to_string(),
    };
    Some(LetterId::Mongo(s))
}

/// The `_id` values a letter id may stand for (an ObjectId, a string, a number).
pub fn id_candidates(id: &str) -> Vec<Bson> {
    let mut v = Vec::new();
    if let Ok(o) = mongodb::bson::oid::ObjectId::parse_str(id) {
        v.push(Bson::ObjectId(o));
    }
    v.push(Bson::String(id.to_string()));
    if let Ok(n) = id.parse::<i64>() {
        v.push(Bson::Int64(n));
        if let Ok(n) = i32::try_from(n) {
            v.push(Bson::Int32(n));
        }
    }
    v
}

fn type_name(b: &Bson) -> &'static str {
    match b {
        Bson::Double(_) => "a double",
        Bson::String(_) => "a string",
        Bson::Array(_) => "an array",
        Bson::Document(_) => "a document",
        Bson::Boolean(_) => "a boolean",
        Bson::Null => "null",
        Bson::Int32(_) | Bson::Int64(_) => "an integer",
        Bson::DateTime(_) => "a date",
        Bson::Binary(_) => "binary",
        Bson::ObjectId(_) => "an ObjectId",
        _ => "another type",
    }
}

fn quote(b: &Bson) -> String {
    let s = b.to_string();
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// Reads documents, noting each field it cannot use.
struct Reader<'a> {
    d: &'a Document,
    notes: Vec<String>,
}

impl Reader<'_> {
    fn wrong(&mut self, field: &str, b: &Bson, want: &str) {
        self.notes.push(format!(
            "field '{field}' is {} {}, expected {want}",
            type_name(b),
            quote(b)
        ));
    }

    fn bytes(&mut self, field: &str) -> Option<Vec<u8>> {
        match get(self.d, field)? {
            Bson::String(s) => Some(s.as_bytes().to_vec()),
            Bson::Binary(b) => Some(b.bytes.clone()),
            Bson::Null => None,
            Bson::Document(_) | Bson::Array(_) => {
                let b = get(self.d, field)?.clone();
                self.notes.push(format!(
                    "field '{field}' is {}; shown as JSON",
                    type_name(&b)
                ));
                Some(b.into_relaxed_extjson().to_string().into_bytes())
            }
            other => {
                let other = other.clone();
                self.notes.push(format!(
                    "field '{field}' is {} {}; shown as text",
                    type_name(&other),
                    quote(&other)
                ));
                Some(other.to_string().into_bytes())
            }
        }
    }

    fn text(&mut self, field: &str) -> Option<String> {
        match get(self.d, field)? {
            Bson::String(s) => Some(s.clone()),
            Bson::Null => None,
            Bson::Binary(b) => Some(String::from_utf8_lossy(&b.bytes).into_owned()),
            other => {
                let other = other.clone();
                self.wrong(field, &other, "a string");
                None
            }
        }
    }

    fn int(&mut self, field: &str) -> Option<i64> {
        match get(self.d, field)? {
            Bson::Int32(i) => Some(i64::from(*i)),
            Bson::Int64(i) => Some(*i),
            Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
            Bson::String(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
            Bson::Null => None,
            other => {
                let other = other.clone();
                self.wrong(field, &other, "an integer");
                None
            }
        }
    }

    /// `[type, ms]` (confluent-kafka's tuple), epoch ms, a date, or RFC 3339 text.
    fn time(&mut self, field: &str) -> Option<i64> {
        match get(self.d, field)? {
            Bson::DateTime(t) => Some(t.timestamp_millis()),
            Bson::Int64(i) => Some(*i),
            Bson::Int32(i) => Some(i64::from(*i)),
            Bson::Array(a) if a.len() == 2 => match &a[1] {
                Bson::Int64(i) => Some(*i),
                Bson::Int32(i) => Some(i64::from(*i)),
                other => {
                    let other = other.clone();
                    self.wrong(field, &other, "[type, milliseconds]");
                    None
                }
            },
            Bson::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.timestamp_millis()),
                Err(_) => {
                    let b = Bson::String(s.clone());
                    self.wrong(field, &b, "a time");
                    None
                }
            },
            Bson::Null => None,
            other => {
                let other = other.clone();
                self.wrong(field, &other, "a time");
                None
            }
        }
    }

    fn headers(&mut self, field: &str) -> Headers {
        let mut out = Headers::default();
        match get(self.d, field) {
            None | Some(Bson::Null) => {}
            Some(Bson::Array(items)) => {
                for item in items {
                    match item {
                        Bson::Document(h) => {
                            let Some(name) = h.get_str("name").ok() else {
                                continue;
                            };
                            let value = match h.get("value") {
                                Some(Bson::Binary(b)) => Some(b.bytes.clone()),
                                Some(Bson::String(s)) => Some(s.as_bytes().to_vec()),
                                _ => None,
                            };
                            out.0.push(Header {
                                name: name.to_string(),
                                value,
                            });
                        }
                        Bson::Array(pair) if pair.len() == 2 => {
                            if let Bson::String(name) = &pair[0] {
                                let value = match &pair[1] {
                                    Bson::Binary(b) => Some(b.bytes.clone()),
                                    Bson::String(s) => Some(s.as_bytes().to_vec()),
                                    _ => None,
                                };
                                out.0.push(Header {
                                    name: name.clone(),
                                    value,
                                });
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some(other) => {
                let other = other.clone();
                self.wrong(field, &other, "an array of {name, value}");
            }
        }
        out
    }
}

/// The dead letter in `d`: whatever can be read, and a note for each field that could not.
pub fn letter_from_doc(d: &Document, map: &FieldMap) -> DeadLetter {
    let mut r = Reader {
        d,
        notes: Vec::new(),
    };
    let key = r.bytes(&map.key);
    let value = r.bytes(&map.value);
    let headers = r.headers(&map.headers);
    let dlq_ts = r.time(&map.error_time).or_else(|| match d.get("_id") {
        Some(Bson::ObjectId(o)) => Some(o.timestamp().timestamp_millis()),
        _ => None,
    });
    let mut l = DeadLetter::from_record(id_of(d), dlq_ts, key, value, headers);
    let topic = r.text(&map.topic);
    let partition = r.int(&map.partition).and_then(|p| i32::try_from(p).ok());
    let offset = r.int(&map.offset);
    let timestamp = r.time(&map.timestamp);
    l.source.topic = topic.or(l.source.topic.take());
    l.source.partition = partition.or(l.source.partition);
    l.source.offset = offset.or(l.source.offset);
    l.source.timestamp_ms = timestamp.or(l.source.timestamp_ms);
    read_failure(&mut r, map, &mut l.failure);
    if let Some(g) = r.text("morgue.failure.consumer_group") {
        l.source.consumer_group = Some(g);
    }
    if let Some(Bson::Document(m)) = get(d, "morgue") {
        read_state(m, &mut l, &mut r.notes);
    }
    if l.state == LetterState::New && matches!(get(d, &map.processed), Some(Bson::Boolean(true))) {
        l.state = LetterState::Claimed;
    }
    l.failure.notes.extend(r.notes);
    l
}

fn read_failure(r: &mut Reader<'_>, map: &FieldMap, f: &mut FailureContext) {
    if let Some(c) = r.text(&map.exception_class) {
        f.exception_class = Some(c);
    }
    if let Some(m) = r.text(&map.error_message) {
        f.message = Some(m);
    }
    if let Some(s) = r.text(&map.stack_trace) {
        f.stack_trace = Some(s);
    }
    if let Some(c) = r.text("morgue.failure.cause_class") {
        f.cause_class = Some(c);
    }
    if let Some(a) = r
        .int("morgue.failure.attempts")
        .and_then(|a| u32::try_from(a).ok())
    {
        f.attempts = Some(a);
    }
    if let Some(p) = r.text("morgue.failure.processor") {
        f.processor = Some(p);
    }
    match r
        .text("morgue.failure.reason")
        .as_deref()
        .map(Reason::parse)
    {
        Some(Some(reason)) => f.reason = reason,
        Some(None) => r
            .notes
            .push("field 'morgue.failure.reason' is not a known reason".into()),
        None if f.exception_class.is_some() || f.message.is_some() => f.reason = Reason::Failed,
        None => {}
    }
}

fn read_state(m: &Document, l: &mut DeadLetter, notes: &mut Vec<String>) {
    l.state = match m.get_str("state") {
        Ok("replayed") => LetterState::Replayed,
        Ok("resolved") => LetterState::Resolved,
        Ok("edited") => LetterState::Edited,
        // A replay announced and not confirmed: whoever holds it, and since when.
        Ok("replaying") => {
            l.held_by = m
                .get_document("ledger")
                .ok()
                .and_then(|e| mongodb::bson::from_document::<LedgerEntry>(e.clone()).ok())
                .map(|e| e.holder());
            LetterState::Replaying
        }
        Ok("new") | Err(_) if m.get_array("replays").is_ok_and(|r| !r.is_empty()) => {
            LetterState::Replayed
        }
        Ok("new") | Err(_) => LetterState::New,
        Ok(other) => {
            notes.push(format!(
                "field 'morgue.state' is an unknown state '{other}'"
            ));
            LetterState::New
        }
    };
    if let Ok(replays) = m.get_array("replays") {
        for r in replays {
            match r
                .as_document()
                .map(|d| mongodb::bson::from_document::<ReplayRecord>(d.clone()))
            {
                Some(Ok(rec)) => l.history.push(rec),
                _ => notes.push(format!(
                    "an entry of 'morgue.replays' is unreadable: {}",
                    quote(r)
                )),
            }
        }
    }
}

/// Bytes as BSON the way pymongo stores them: UTF-8 text as a string, anything else as Binary.
pub fn text_or_binary(b: &[u8]) -> Bson {
    match std::str::from_utf8(b) {
        Ok(s) => Bson::String(s.to_string()),
        Err(_) => Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: b.to_vec(),
        }),
    }
}

/// The document for a new dead letter: the pymongo shape (key as Binary, value as text
/// or Binary, `[type, ms]` timestamp, `error_time`) plus `headers` and `morgue.failure`.
pub fn doc_from_letter(l: &DeadLetter, map: &FieldMap, now_ms: i64) -> Document {
    let mut d = Document::new();
    let mut set = |path: &str, v: Bson| set_path(&mut d, path, v);
    set(
        &map.key,
        match &l.key {
            Some(k) => Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: k.clone(),
            }),
            None => Bson::Null,
        },
    );
    set(
        &map.value,
        l.value.as_deref().map_or(Bson::Null, text_or_binary),
    );
    if let Some(t) = &l.source.topic {
        set(&map.topic, Bson::String(t.clone()));
    }
    if let Some(p) = l.source.partition {
        set(&map.partition, Bson::Int32(p));
    }
    if let Some(o) = l.source.offset {
        set(&map.offset, Bson::Int64(o));
    }
    if let Some(ts) = l.source.timestamp_ms {
        set(
            &map.timestamp,
            Bson::Array(vec![Bson::Int32(1), Bson::Int64(ts)]),
        );
    }
    set(
        &map.error_time,
        Bson::DateTime(DateTime::from_millis(l.dlq_timestamp_ms.unwrap_or(now_ms))),
    );
    let headers: Vec<Bson> = l
        .headers
        .iter()
        .map(|h| {
            let value = h.value.as_ref().map_or(Bson::Null, |v| {
                Bson::Binary(Binary {
                    subtype: BinarySubtype::Generic,
                    bytes: v.clone(),
                })
            });
            Bson::Document(doc! { "name": h.name.clone(), "value": value })
        })
        .collect();
    set(&map.headers, Bson::Array(headers));
    let f = &l.failure;
    let opt = |s: &Option<String>| s.clone().map_or(Bson::Null, Bson::String);
    set(&map.exception_class, opt(&f.exception_class));
    set(&map.error_message, opt(&f.message));
    set(&map.stack_trace, opt(&f.stack_trace));
    set("morgue.failure.cause_class", opt(&f.cause_class));
    set(
        "morgue.failure.reason",
        Bson::String(f.reason.as_str().to_string()),
    );
    set(
        "morgue.failure.attempts",
        f.attempts.map_or(Bson::Null, |a| Bson::Int64(i64::from(a))),
    );
    set("morgue.failure.processor", opt(&f.processor));
    set(
        "morgue.failure.consumer_group",
        opt(&l.source.consumer_group),
    );
    d
}

/// Sets `v` at a dotted path, creating sub-documents on the way.
pub fn set_path(d: &mut Document, path: &str, v: Bson) {
    match path.split_once('.') {
        None => {
            d.insert(path, v);
        }
        Some((head, rest)) => {
            if !matches!(d.get(head), Some(Bson::Document(_))) {
                d.insert(head, Document::new());
            }
            if let Some(Bson::Document(inner)) = d.get_mut(head) {
                set_path(inner, rest, v);
            }
        }
    }
}

#[cfg(test)]
#[path = "doc_tests.rs"]
mod tests;
