//! Reading and writing the failure headers that DLQ frameworks put on dead letters.
//!
//! Each framework (Spring, Kafka Connect, Kafka Streams, Karafka, SmallRye, Watermill,
//! morgue itself) has its own header names; [`decode`] maps all of them onto one
//! [`SourceCoords`] + [`FailureContext`]. Numbers come as UTF-8 text or big-endian
//! binary and are decoded by content and width. When a header repeats, the last one
//! wins; when two frameworks disagree, the one earlier in [`CONVENTIONS`] wins.
//! [`encode`] writes morgue's own set: Spring's DLT names plus `morgue-*`.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::DateTime;

use crate::engine::model::letter::{
    DeadLetter, FailureContext, Header, Headers, LetterId, LetterState, Reason, SourceCoords,
};

/// A piece of failure context that a header can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Original topic.
    Topic,
    /// Original partition (number).
    Partition,
    /// Original offset (number).
    Offset,
    /// Original timestamp (epoch ms or RFC 3339).
    Timestamp,
    /// Consumer group that failed.
    Group,
    /// Exception class.
    ExClass,
    /// Root-cause class.
    CauseClass,
    /// Error message.
    Message,
    /// Root-cause message.
    CauseMessage,
    /// Stack trace.
    Stack,
    /// Exception class of a key failure.
    KeyExClass,
    /// Message of a key failure.
    KeyMessage,
    /// Stack trace of a key failure.
    KeyStack,
    /// Attempt count (number).
    Attempts,
    /// What processed it (host, connector, handler).
    Processor,
    /// morgue's failure reason.
    FailReason,
}

use Field::*;

/// Header name of the morgue attempt count.
pub const MORGUE_ATTEMPTS: &str = "morgue-attempts";
/// Header name of the morgue failure reason.
pub const MORGUE_REASON: &str = "morgue-reason";
/// Header name of the host that processed (and failed) the message.
pub const MORGUE_HOST: &str = "morgue-host";
/// Header stamped on a replayed message: the replay's unique id.
pub const MORGUE_REPLAY_ID: &str = "morgue-replay-id";
/// Header stamped on a replayed message: how many times this letter has been replayed.
pub const MORGUE_REPLAY_COUNT: &str = "morgue-replay-count";

/// Every recognised convention, highest priority first: a name and its header map.
pub const CONVENTIONS: &[(&str, &[(&str, Field)])] = &[
    (
        "morgue",
        &[
            (MORGUE_ATTEMPTS, Attempts),
            (MORGUE_REASON, FailReason),
            (MORGUE_HOST, Processor),
        ],
    ),
    (
        "spring-dlt",
        &[
            ("kafka_dlt-original-topic", Topic),
            ("kafka_dlt-original-partition", Partition),
            ("kafka_dlt-original-offset", Offset),
            ("kafka_dlt-original-timestamp", Timestamp),
            ("kafka_dlt-original-consumer-group", Group),
            ("kafka_dlt-exception-fqcn", ExClass),
            ("kafka_dlt-exception-cause-fqcn", CauseClass),
            ("kafka_dlt-exception-message", Message),
            ("kafka_dlt-exception-stacktrace", Stack),
            ("kafka_dlt-key-exception-fqcn", KeyExClass),
            ("kafka_dlt-key-exception-message", KeyMessage),
            ("kafka_dlt-key-exception-stacktrace", KeyStack),
        ],
    ),
    (
        "spring",
        &[
            ("kafka_original-topic", Topic),
            ("kafka_original-partition", Partition),
            ("kafka_original-offset", Offset),
            ("kafka_original-timestamp", Timestamp),
            ("kafka_original-consumer-group", Group),
            ("kafka_exception-fqcn", ExClass),
            ("kafka_exception-cause-fqcn", CauseClass),
            ("kafka_exception-message", Message),
            ("kafka_exception-stacktrace", Stack),
        ],
    ),
    (
        "spring-retry",
        &[
            ("retry_topic-attempts", Attempts),
            ("retry_topic-original-timestamp", Timestamp),
        ],
    ),
    (
        "kafka-connect",
        &[
            ("__connect.errors.topic", Topic),
            ("__connect.errors.partition", Partition),
            ("__connect.errors.offset", Offset),
            ("__connect.errors.connector.name", Processor),
            ("__connect.errors.exception.class.name", ExClass),
            ("__connect.errors.exception.message", Message),
            ("__connect.errors.exception.stacktrace", Stack),
        ],
    ),
    (
        "kafka-streams",
        &[
            ("__streams.errors.topic", Topic),
            ("__streams.errors.partition", Partition),
            ("__streams.errors.offset", Offset),
            ("__streams.errors.exception", ExClass),
            ("__streams.errors.message", Message),
            ("__streams.errors.stacktrace", Stack),
        ],
    ),
    (
        "spring-cloud-stream",
        &[
            ("x-original-topic", Topic),
            ("x-original-partition", Partition),
            ("x-original-offset", Offset),
            ("x-original-timestamp", Timestamp),
            ("x-exception-fqcn", ExClass),
            ("x-exception-message", Message),
            ("x-exception-stacktrace", Stack),
        ],
    ),
    (
        "karafka",
        &[
            ("source_topic", Topic),
            ("source_partition", Partition),
            ("source_offset", Offset),
            ("source_consumer_group", Group),
            ("source_attempts", Attempts),
        ],
    ),
    (
        "karafka-legacy",
        &[
            ("original_topic", Topic),
            ("original_partition", Partition),
            ("original_offset", Offset),
            ("original_consumer_group", Group),
            ("original_attempts", Attempts),
        ],
    ),
    (
        "smallrye",
        &[
            ("dead-letter-topic", Topic),
            ("dead-letter-partition", Partition),
            ("dead-letter-offset", Offset),
            ("dead-letter-exception-class-name", ExClass),
            ("dead-letter-cause-class-name", CauseClass),
            ("dead-letter-reason", Message),
            ("dead-letter-cause", CauseMessage),
        ],
    ),
    (
        "watermill",
        &[
            ("topic_poisoned", Topic),
            ("handler_poisoned", Processor),
            ("reason_poisoned", Message),
        ],
    ),
];

/// Header-name prefixes that carry failure, tracing or replication context; a replay
/// strips these by default.
const CONTEXT_PREFIXES: &[&str] = &[
    "kafka_dlt-",
    "kafka_original-",
    "kafka_exception-",
    "retry_topic-",
    "__connect.errors.",
    "__streams.errors.",
    "x-original-",
    "x-exception-",
    "dead-letter-",
    "morgue-",
    "x-death",
    "x-first-death-",
    "source_trace_id",
];

/// The convention a header name belongs to, if any (e.g. `kafka_dlt-original-topic` → `spring-dlt`).
pub fn convention_of(name: &str) -> Option<&'static str> {
    CONVENTIONS
        .iter()
        .find(|(_, map)| map.iter().any(|(n, _)| *n == name))
        .map(|(c, _)| *c)
        .or_else(|| {
            CONTEXT_PREFIXES
                .iter()
                .any(|p| name.starts_with(p))
                .then_some("dlq")
        })
}

/// True for headers that describe the failure rather than the message (stripped on replay).
pub fn is_failure_header(name: &str) -> bool {
    convention_of(name).is_some() || name.ends_with("_poisoned")
}

/// Known header name → (index in [`CONVENTIONS`], index in that convention's map).
fn header_table() -> &'static HashMap<&'static str, (usize, usize)> {
    static TABLE: OnceLock<HashMap<&'static str, (usize, usize)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = HashMap::new();
        for (c, (_, map)) in CONVENTIONS.iter().enumerate() {
            for (j, (name, _)) in map.iter().enumerate() {
                t.entry(*name).or_insert((c, j));
            }
        }
        t
    })
}

/// Decodes every known convention in `headers` into source coordinates and failure context.
pub fn decode(headers: &Headers) -> (SourceCoords, FailureContext) {
    let mut src = SourceCoords::default();
    let mut ctx = FailureContext::default();
    let mut key = (None, None, None);
    let mut reason = None;
    // One pass over the headers: the last value of each known name, by (convention, entry).
    let mut found: Vec<(usize, usize, Option<&[u8]>)> = Vec::new();
    for h in headers.iter() {
        if let Some(&(c, j)) = header_table().get(h.name.as_str()) {
            match found.iter_mut().find(|f| f.0 == c && f.1 == j) {
                Some(f) => f.2 = h.value.as_deref(),
                None => found.push((c, j, h.value.as_deref())),
            }
        }
    }
    found.sort_unstable_by_key(|f| (f.0, f.1));
    for (c, (name, map)) in CONVENTIONS.iter().enumerate() {
        let mut seen = false;
        for &(_, j, raw) in found.iter().filter(|f| f.0 == c) {
            let Some(raw) = raw else { continue };
            let (header, field) = &map[j];
            seen = true;
            let mut d = Raw {
                header,
                raw,
                notes: &mut ctx.notes,
            };
            match field {
                Topic => fill(&mut src.topic, || d.text()),
                Group => fill(&mut src.consumer_group, || d.text()),
                ExClass => fill(&mut ctx.exception_class, || d.text()),
                CauseClass => fill(&mut ctx.cause_class, || d.text()),
                Message => fill(&mut ctx.message, || d.text()),
                CauseMessage => fill(&mut ctx.cause_message, || d.text()),
                Stack => fill(&mut ctx.stack_trace, || d.text()),
                Processor => fill(&mut ctx.processor, || d.text()),
                KeyExClass => fill(&mut key.0, || d.text()),
                KeyMessage => fill(&mut key.1, || d.text()),
                KeyStack => fill(&mut key.2, || d.text()),
                Partition => fill(&mut src.partition, || d.number().and_then(|n| d.narrow(n))),
                Offset => fill(&mut src.offset, || d.number()),
                Timestamp => fill(&mut src.timestamp_ms, || d.timestamp()),
                Attempts => fill(&mut ctx.attempts, || d.number().and_then(|n| d.narrow(n))),
                FailReason => fill(&mut reason, || d.reason()),
            }
        }
        if seen {
            ctx.conventions.push(*name);
        }
    }
    if ctx.exception_class.is_none() && ctx.message.is_none() && key.0.is_some() {
        ctx.key_failure = true;
        (ctx.exception_class, ctx.message, ctx.stack_trace) = key;
    }
    ctx.reason = reason.unwrap_or(if ctx.exception_class.is_some() || ctx.message.is_some() {
        Reason::Failed
    } else {
        Reason::Unknown
    });
    (src, ctx)
}

/// Writes morgue's header set for a failure: Spring DLT names (binary numbers, so JVM
/// tooling reads them) plus `morgue-attempts`, `morgue-reason` and `morgue-host`.
pub fn encode(src: &SourceCoords, ctx: &FailureContext) -> Vec<Header> {
    let mut out = Vec::new();
    let mut put = |name: &str, value: Option<Vec<u8>>| {
        if let Some(v) = value {
            out.push(Header::new(name, v));
        }
    };
    let text = |s: &Option<String>| s.as_ref().map(|s| s.as_bytes().to_vec());
    put("kafka_dlt-original-topic", text(&src.topic));
    put(
        "kafka_dlt-original-partition",
        src.partition.map(|p| p.to_be_bytes().to_vec()),
    );
    put(
        "kafka_dlt-original-offset",
        src.offset.map(|o| o.to_be_bytes().to_vec()),
    );
    put(
        "kafka_dlt-original-timestamp",
        src.timestamp_ms.map(|t| t.to_be_bytes().to_vec()),
    );
    put(
        "kafka_dlt-original-timestamp-type",
        src.timestamp_ms.map(|_| b"CreateTime".to_vec()),
    );
    put(
        "kafka_dlt-original-consumer-group",
        text(&src.consumer_group),
    );
    let prefix = if ctx.key_failure {
        "kafka_dlt-key-exception"
    } else {
        "kafka_dlt-exception"
    };
    put(&format!("{prefix}-fqcn"), text(&ctx.exception_class));
    if !ctx.key_failure {
        put("kafka_dlt-exception-cause-fqcn", text(&ctx.cause_class));
    }
    put(&format!("{prefix}-message"), text(&ctx.message));
    put(&format!("{prefix}-stacktrace"), text(&ctx.stack_trace));
    put(
        MORGUE_ATTEMPTS,
        ctx.attempts.map(|a| a.to_string().into_bytes()),
    );
    put(MORGUE_REASON, Some(ctx.reason.as_str().as_bytes().to_vec()));
    put(MORGUE_HOST, text(&ctx.processor));
    out
}

fn fill<T>(slot: &mut Option<T>, value: impl FnOnce() -> Option<T>) {
    if slot.is_none() {
        *slot = value();
    }
}

/// A short, quotable rendering of raw bytes for error notes.
pub fn quote_bytes(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => {
            let mut q: String = s.chars().take(40).collect();
            if q.len() < s.len() {
                q.push('…');
            }
            format!("'{q}'")
        }
        _ => {
            let shown = &raw[..raw.len().min(16)];
            let more = if raw.len() > 16 { " …" } else { "" };
            format!("0x{}{more} ({} bytes)", hex::encode(shown), raw.len())
        }
    }
}

/// One header's raw value being decoded, with the place to note what went wrong.
struct Raw<'a> {
    header: &'a str,
    raw: &'a [u8],
    notes: &'a mut Vec<String>,
}

impl Raw<'_> {
    fn note(&mut self, what: &str) {
        let q = quote_bytes(self.raw);
        self.notes
            .push(format!("header '{}' {what}: {q}", self.header));
    }

    /// UTF-8 text; invalid bytes are replaced and noted.
    fn text(&mut self) -> Option<String> {
        match std::str::from_utf8(self.raw) {
            Ok(s) => Some(s.to_string()),
            Err(_) => {
                self.note("is not UTF-8");
                Some(String::from_utf8_lossy(self.raw).into_owned())
            }
        }
    }

    /// An integer sent as decimal text or as a 4- or 8-byte big-endian binary.
    /// Text wins: a binary int whose bytes are all ASCII digits would exceed 800 million.
    fn number(&mut self) -> Option<i64> {
        let raw = self.raw;
        if let Some(n) = std::str::from_utf8(raw)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
        {
            return Some(n);
        }
        if let Ok(b) = <[u8; 4]>::try_from(raw) {
            return Some(i64::from(i32::from_be_bytes(b)));
        }
        if let Ok(b) = <[u8; 8]>::try_from(raw) {
            return Some(i64::from_be_bytes(b));
        }
        self.note("is not a number");
        None
    }

    fn narrow<T: TryFrom<i64>>(&mut self, n: i64) -> Option<T> {
        let v = T::try_from(n).ok();
        if v.is_none() {
            self.note(&format!("is out of range ({n})"));
        }
        v
    }

    /// Epoch milliseconds (text or binary) or RFC 3339 text.
    fn timestamp(&mut self) -> Option<i64> {
        if let Some(t) = std::str::from_utf8(self.raw)
            .ok()
            .and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok())
        {
            return Some(t.timestamp_millis());
        }
        self.number()
    }

    fn reason(&mut self) -> Option<Reason> {
        let r = std::str::from_utf8(self.raw).ok().and_then(Reason::parse);
        if r.is_none() {
            self.note("is not a known reason");
        }
        r
    }
}

/// A dead letter read from a record: its failure context decoded from the headers
/// by the conventions above.
impl DeadLetter {
    /// Builds a letter from raw record parts, decoding failure context from the headers.
    pub fn from_record(
        id: Option<LetterId>,
        dlq_timestamp_ms: Option<i64>,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Headers,
    ) -> Self {
        let (source, failure) = decode(&headers);
        DeadLetter {
            id,
            dlq_timestamp_ms,
            key,
            value,
            headers,
            source,
            failure,
            state: LetterState::New,
            history: Vec::new(),
            held_by: None,
            copy_of: None,
            outcome: None,
            consumed: None,
        }
    }
}

#[cfg(test)]
#[path = "conventions_tests.rs"]
mod tests;
