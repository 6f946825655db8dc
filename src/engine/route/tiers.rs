//! Non-blocking retries (`morgue route --retry-topics 30s,5m,1h`): a message whose
//! processing fails is written to the next retry topic instead of being retried in
//! place, so its source partition goes on. The same router group consumes the retry
//! topics and processes each message once its delay has passed; after the last tier it
//! goes to the DLQ as before.
//!
//! Names and headers are Spring Kafka's `@RetryableTopic` ones, index-suffixed:
//! `<source>-retry-0`, `<source>-retry-1`, … with `retry_topic-attempts` (the attempt
//! the next delivery makes, 4-byte big-endian), `retry_topic-backoff-timestamp` (when
//! it is due, epoch ms, 8-byte big-endian) and `retry_topic-original-timestamp`, plus
//! the `kafka_dlt-original-*` coordinates of the first failure and the exception. A
//! retried message keeps those original coordinates all the way to the DLQ, so a
//! replay goes to the source topic, never to a retry topic.

use std::time::Duration;

use crate::engine::model::conventions;
use crate::engine::model::letter::{Header, Headers, SourceCoords};

/// Spring's header: the attempt number of the next delivery.
pub const ATTEMPTS: &str = "retry_topic-attempts";
/// Spring's header: when the message is due again, epoch ms.
pub const BACKOFF_TIMESTAMP: &str = "retry_topic-backoff-timestamp";
/// Spring's header: the timestamp of the first record.
pub const ORIGINAL_TIMESTAMP: &str = "retry_topic-original-timestamp";

/// The retry tiers: one delay per retry topic, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryTiers {
    /// Delay of tier `i`, whose topic is `<source>-retry-i`.
    pub delays: Vec<Duration>,
}

/// Where a consumed topic sits in the tiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier<'a> {
    /// The source topic the message was first consumed from.
    pub source: &'a str,
    /// 0 for the source topic itself, `i + 1` for `<source>-retry-i`.
    pub level: usize,
}

impl RetryTiers {
    /// True when retries stay in place (no retry topics).
    pub fn is_empty(&self) -> bool {
        self.delays.is_empty()
    }

    /// The retry topic of tier `i` for `source`.
    pub fn topic(source: &str, i: usize) -> String {
        format!("{source}-retry-{i}")
    }

    /// Every retry topic of `source`, in order.
    pub fn topics_of(&self, source: &str) -> Vec<String> {
        (0..self.delays.len())
            .map(|i| Self::topic(source, i))
            .collect()
    }

    /// Where `topic` sits among `sources` and their retry topics; None when it is
    /// neither (then it is treated as a source).
    pub fn tier_of<'a>(&self, sources: &'a [String], topic: &str) -> Option<Tier<'a>> {
        for s in sources {
            if s == topic {
                return Some(Tier {
                    source: s,
                    level: 0,
                });
            }
            let Some(rest) = topic
                .strip_prefix(s.as_str())
                .and_then(|r| r.strip_prefix("-retry-"))
            else {
                continue;
            };
            if let Ok(i) = rest.parse::<usize>()
                && i < self.delays.len()
                && rest == i.to_string()
            {
                return Some(Tier {
                    source: s,
                    level: i + 1,
                });
            }
        }
        None
    }
}

/// When a record from a retry topic is due, epoch ms (from its backoff header).
pub fn due_ms(headers: &Headers) -> Option<i64> {
    let raw = headers.last(BACKOFF_TIMESTAMP)?;
    let b = <[u8; 8]>::try_from(raw).ok()?;
    Some(i64::from_be_bytes(b))
}

/// The timestamp of the message's first record (Spring's original-timestamp header).
pub fn original_ms(headers: &Headers) -> Option<i64> {
    let raw = headers.last(ORIGINAL_TIMESTAMP)?;
    <[u8; 8]>::try_from(raw).ok().map(i64::from_be_bytes)
}

/// The coordinates of the message's first consumption, from the headers a retry
/// topic record carries; None when they are not all there.
pub fn origin_of(headers: &Headers) -> Option<SourceCoords> {
    let (src, _) = conventions::decode(headers);
    (src.topic.is_some() && src.partition.is_some() && src.offset.is_some()).then_some(src)
}

/// The message's own headers: those of a retry record without what the router added
/// (`kafka_dlt-*`, `retry_topic-*` and `morgue-*`).
pub fn own_headers(headers: &Headers) -> Headers {
    let added = |n: &str| {
        n.starts_with("kafka_dlt-") || n.starts_with("retry_topic-") || n.starts_with("morgue-")
    };
    Headers(
        headers
            .iter()
            .filter(|h| !added(&h.name))
            .cloned()
            .collect(),
    )
}

/// Spring's retry headers for a record whose next delivery is attempt `next_attempt`,
/// due at `due_ms`, first written at `original_ms`.
pub fn retry_headers(next_attempt: u32, due_ms: i64, original_ms: Option<i64>) -> Vec<Header> {
    let attempts = i32::try_from(next_attempt).unwrap_or(i32::MAX);
    let mut out = vec![
        Header::new(ATTEMPTS, attempts.to_be_bytes().to_vec()),
        Header::new(BACKOFF_TIMESTAMP, due_ms.to_be_bytes().to_vec()),
    ];
    if let Some(t) = original_ms {
        out.push(Header::new(ORIGINAL_TIMESTAMP, t.to_be_bytes().to_vec()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers(n: usize) -> RetryTiers {
        RetryTiers {
            delays: vec![Duration::from_secs(1); n],
        }
    }

    #[test]
    fn a_topic_is_placed_by_its_source_and_index() {
        let sources = vec!["orders".to_string(), "orders-retry".to_string()];
        let t = tiers(2);
        assert_eq!(t.topics_of("orders"), ["orders-retry-0", "orders-retry-1"]);
        let at = |topic: &str| t.tier_of(&sources, topic).map(|t| (t.source, t.level));
        assert_eq!(at("orders"), Some(("orders", 0)));
        assert_eq!(at("orders-retry-0"), Some(("orders", 1)));
        assert_eq!(at("orders-retry-1"), Some(("orders", 2)));
        // Beyond the tiers, or not an index: not a retry topic of ours.
        assert_eq!(at("orders-retry-2"), None);
        assert_eq!(at("orders-retry-01"), None);
        assert_eq!(at("orders-retry"), Some(("orders-retry", 0)));
        assert_eq!(at("payments"), None);
    }

    #[test]
    fn retry_headers_read_back_as_spring_wrote_them() {
        let mut h = Headers::default();
        h.push("traceparent", "00-abc");
        h.push("kafka_dlt-original-topic", "orders");
        h.push("kafka_dlt-original-partition", 3i32.to_be_bytes().to_vec());
        h.push("kafka_dlt-original-offset", 42i64.to_be_bytes().to_vec());
        h.push("morgue-reason", "failed");
        h.0.extend(retry_headers(2, 1_700_000_005_000, Some(1_700_000_000_000)));
        assert_eq!(due_ms(&h), Some(1_700_000_005_000));
        let o = origin_of(&h).expect("origin");
        assert_eq!(
            (o.topic.as_deref(), o.partition, o.offset),
            (Some("orders"), Some(3), Some(42))
        );
        let (_, ctx) = conventions::decode(&h);
        assert_eq!(
            ctx.attempts,
            Some(2),
            "retry_topic-attempts read as attempts"
        );
        let own = own_headers(&h);
        assert_eq!(own.len(), 1);
        assert_eq!(own.last("traceparent"), Some(&b"00-abc"[..]));
        assert_eq!(origin_of(&own), None);
        assert_eq!(due_ms(&own), None);
    }
}
