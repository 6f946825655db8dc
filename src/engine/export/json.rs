//! The JSON-lines schema of the headless commands: one object per dead letter,
//! bytes as UTF-8 text when valid and base64 otherwise, never lossy.

use serde::Serialize;

use crate::engine::decoders::{Attempt, Registry};
use crate::engine::model::after_replay::{AfterReplay, Consumed};
use crate::engine::model::encoding::BytesRef;
use crate::engine::model::letter::{
    DeadLetter, FailureContext, Headers, LetterId, LetterState, ReplayRecord, SourceCoords,
};

/// A header as printed: its name and its value (null for a null header).
#[derive(Debug, Serialize)]
pub struct HeaderJson<'a> {
    /// Header name.
    pub name: &'a str,
    /// Value, UTF-8 or base64.
    pub value: Option<BytesRef<'a>>,
}

/// The headers, printed in order without copying them.
#[derive(Debug)]
pub struct HeadersJson<'a>(pub &'a Headers);

impl Serialize for HeadersJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|h| HeaderJson {
            name: &h.name,
            value: h.value.as_deref().map(BytesRef),
        }))
    }
}

/// One dead letter as printed by `morgue list` / `morgue show`.
#[derive(Debug, Serialize)]
pub struct LetterJson<'a> {
    /// `partition:offset` or the document `_id`.
    pub id: Option<String>,
    /// DLQ partition (Kafka only).
    pub partition: Option<i32>,
    /// DLQ offset (Kafka only).
    pub offset: Option<i64>,
    /// DLQ timestamp as RFC 3339 UTC.
    pub timestamp: Option<String>,
    /// Key bytes.
    pub key: Option<BytesRef<'a>>,
    /// Value bytes.
    pub value: Option<BytesRef<'a>>,
    /// Size of key, value and headers in bytes.
    pub size: usize,
    /// Headers in order.
    pub headers: HeadersJson<'a>,
    /// Where the message came from (all null when unknown).
    pub source: &'a SourceCoords,
    /// Why it failed.
    pub failure: &'a FailureContext,
    /// new / claimed / edited / replaying / replayed / resolved.
    pub state: LetterState,
    /// While `replaying`: who holds the replay and since when (`user@host since …`).
    pub held_by: Option<&'a str>,
    /// The letter of the same source message whose replay counts for this one.
    pub copy_of: Option<&'a str>,
    /// Replays so far.
    pub history: &'a [ReplayRecord],
    /// What became of the latest replay: `watching` (with `until_ms`), `confirmed` or
    /// `failed-again` (with the new letters' ids); absent when never replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'a AfterReplay>,
    /// Whether the source consumer group has read past the latest replay (`show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed: Option<&'a Consumed>,
    /// The value of a binary format (Avro, CBOR, MessagePack, compressed…), decoded:
    /// `{format, schema_id, subject, value}`; absent for plain bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded: Option<DecodedJson>,
    /// The key, decoded the same way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded_key: Option<DecodedJson>,
    /// Why a value in a recognised format could not be decoded (e.g. a schema not found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_error: Option<String>,
}

/// A binary payload decoded by the decoder registry.
#[derive(Debug, Serialize)]
pub struct DecodedJson {
    /// `Avro (schema 17, subject trades-value)`, `CBOR`, `gzip, then JSON`, …
    pub format: String,
    /// The schema id of the wire format, when it names one.
    pub schema_id: Option<u32>,
    /// The registry subject, when known.
    pub subject: Option<String>,
    /// The value.
    pub value: serde_json::Value,
}

/// The decoded form of `bytes` (a binary format) of a letter from source `topic`, or
/// why a recognised format failed.
pub fn decode_bytes(
    decoders: &Registry,
    bytes: Option<&[u8]>,
    topic: Option<&str>,
) -> (Option<DecodedJson>, Option<String>) {
    match bytes.map(|b| decoders.decode(b, topic)) {
        Some(Attempt::Decoded(s)) => (
            Some(DecodedJson {
                format: s.format,
                schema_id: s.schema_id,
                subject: s.subject,
                value: s.value,
            }),
            None,
        ),
        Some(Attempt::Failed(why)) => (None, Some(why.message)),
        _ => (None, None),
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

impl<'a> LetterJson<'a> {
    /// The printable form of `l`.
    pub fn of(l: &'a DeadLetter, decoders: &Registry) -> Self {
        let (partition, offset) = match l.id {
            Some(LetterId::Kafka { partition, offset }) => (Some(partition), Some(offset)),
            _ => (None, None),
        };
        let (decoded, decode_error) =
            decode_bytes(decoders, l.value.as_deref(), l.source.topic.as_deref());
        let (decoded_key, _) = decode_bytes(decoders, l.key.as_deref(), None);
        LetterJson {
            decoded,
            decoded_key,
            decode_error,
            id: l.id.as_ref().map(ToString::to_string),
            partition,
            offset,
            timestamp: l.dlq_timestamp_ms.and_then(rfc3339),
            key: l.key.as_deref().map(BytesRef),
            value: l.value.as_deref().map(BytesRef),
            size: l.size(),
            headers: HeadersJson(&l.headers),
            source: &l.source,
            failure: &l.failure,
            state: l.state,
            held_by: l.held_by.as_deref(),
            copy_of: l.copy_of.as_deref(),
            history: &l.history,
            outcome: l.outcome.as_ref(),
            consumed: l.consumed.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_text_render_without_loss() {
        let mut h = Headers::default();
        h.push("kafka_dlt-original-partition", 3i32.to_be_bytes());
        let l = DeadLetter::from_record(
            Some(LetterId::Kafka {
                partition: 1,
                offset: 9,
            }),
            Some(1_732_700_000_000),
            None,
            Some(vec![0xc3, 0x28]),
            h,
        );
        let v =
            serde_json::to_value(LetterJson::of(&l, &crate::engine::decoders::builtin())).unwrap();
        assert_eq!(v["id"], "1:9");
        assert_eq!(v["partition"], 1);
        assert_eq!(v["timestamp"], "2024-11-27T09:33:20.000Z");
        assert_eq!(v["key"], serde_json::Value::Null);
        assert_eq!(v["value"]["encoding"], "base64");
        assert_eq!(v["value"]["data"], "wyg=");
        // NUL bytes are valid UTF-8: kept as text, escaped by JSON, not lost.
        assert_eq!(v["headers"][0]["value"]["data"], "\u{0}\u{0}\u{0}\u{3}");
        assert_eq!(v["source"]["partition"], 3);
        assert_eq!(v["source"]["topic"], serde_json::Value::Null);
        assert_eq!(v["failure"]["reason"], "unknown");
        assert_eq!(v["state"], "new");
    }
}
