//! Deciding what a replay sends: the target topic (checked against the refusal
//! rules), the key, the original or edited value, and the headers with failure,
//! tracing and replication context stripped and `morgue-replay-*` stamped. Nothing
//! here performs I/O; backends carry out a [`ReplayPlan`].

use serde::Serialize;

use crate::engine::model::conventions::{self, MORGUE_REPLAY_COUNT, MORGUE_REPLAY_ID};
use crate::engine::model::error::EngineError;
use crate::engine::model::letter::{DeadLetter, Header, Headers, LetterState};

/// Tracing headers, stripped on replay so the replay starts a fresh trace.
const TRACING: &[&str] = &[
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "uber-trace-id",
    "sw8",
    "sw8-correlation",
    "elastic-apm-traceparent",
];

/// Header-name prefixes of tracing systems (case-insensitive).
const TRACING_PREFIXES: &[&str] = &[
    "x-b3-",
    "x-datadog-",
    "x-amzn-trace",
    "uberctx-",
    "ot-tracer-",
];

/// Header-name prefixes written by replication tools (MirrorMaker, Replicator) and brokers.
const REPLICATION_PREFIXES: &[&str] = &["__", "_replicator", "mm2-", "x-mirror"];

/// What the engine allows when replaying, whoever asks (CLI, TUI or library).
#[derive(Debug, Clone, Default)]
pub struct ReplayPolicy {
    /// A read-only profile: every write is refused.
    pub read_only: bool,
    /// The DLQ being read; replaying into it is refused.
    pub dlq_topic: String,
    /// Header names kept even though they would be stripped (exact, case-insensitive).
    pub keep_headers: Vec<String>,
}

impl ReplayPolicy {
    /// Refuses any write when the profile is read-only.
    pub fn check_writable(&self, what: &str) -> Result<(), EngineError> {
        if self.read_only {
            return Err(EngineError::ReadOnly(what.to_string()));
        }
        Ok(())
    }

    /// Refuses targets a replay must never reach: the DLQ itself, internal `__` topics,
    /// and DLQ or retry topics (`*.DLT`, `*-dlt`, `*-retry*`, `*.morgue-ledger`, `*.morgue-checkpoint`).
    pub fn check_target(&self, topic: &str) -> Result<(), EngineError> {
        let refuse = |why: &str| {
            Err(EngineError::RefusedTarget {
                topic: topic.to_string(),
                why: why.to_string(),
            })
        };
        let lower = topic.to_ascii_lowercase();
        if topic.trim().is_empty() {
            return refuse("it is empty");
        }
        if topic == self.dlq_topic {
            return refuse("it is the DLQ being replayed from");
        }
        if topic.starts_with("__") {
            return refuse("it is an internal topic");
        }
        if lower.ends_with(".dlt")
            || lower.ends_with("-dlt")
            || lower.ends_with(".dlq")
            || lower.ends_with("-dlq")
        {
            return refuse("it is a dead-letter topic");
        }
        if lower.contains("-retry") || lower.contains(".retry") {
            return refuse("it is a retry topic");
        }
        if lower.ends_with(".morgue-ledger") || lower.ends_with(".morgue-checkpoint") {
            return refuse("it is a morgue ledger");
        }
        Ok(())
    }

    fn keeps(&self, name: &str) -> bool {
        self.keep_headers
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
    }

    /// Whether a header is stripped on replay, and why (`failure`, `tracing`, `replication`).
    pub fn strip_reason(&self, name: &str) -> Option<&'static str> {
        if self.keeps(name) {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        if conventions::is_failure_header(name) {
            Some("failure")
        } else if TRACING.contains(&lower.as_str())
            || TRACING_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            Some("tracing")
        } else if REPLICATION_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            Some("replication")
        } else {
            None
        }
    }
}

/// Exactly what one replay will send, and what it left out.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayPlan {
    /// The letter being replayed.
    pub letter_id: String,
    /// Target topic.
    pub topic: String,
    /// Key bytes as sent.
    #[serde(skip)]
    pub key: Option<Vec<u8>>,
    /// Value bytes as sent.
    #[serde(skip)]
    pub value: Option<Vec<u8>>,
    /// Headers as sent.
    #[serde(skip)]
    pub headers: Headers,
    /// Names of the headers left out, each with why.
    pub stripped: Vec<(String, &'static str)>,
    /// True when the value is an edited one.
    pub edited: bool,
    /// Stamped as `morgue-replay-id`.
    pub replay_id: String,
    /// Stamped as `morgue-replay-count`.
    pub replay_count: u32,
}

/// Plans the replay of `letter` to `target` (default: its source topic). `edited`
/// replaces the value; `replay_id` is stamped (kept across resumed runs); `force`
/// allows replaying a letter that was already replayed.
pub fn plan(
    letter: &DeadLetter,
    target: Option<&str>,
    edited: Option<Vec<u8>>,
    policy: &ReplayPolicy,
    replay_id: String,
    force: bool,
) -> Result<ReplayPlan, EngineError> {
    let id = letter
        .id
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    policy.check_writable(&format!("replay of {id}"))?;
    let topic = match target.or(letter.source.topic.as_deref()) {
        Some(t) => t.to_string(),
        None => return Err(EngineError::NoTarget(id)),
    };
    policy.check_target(&topic)?;
    if letter.state == LetterState::Replayed && !force {
        let last = letter.history.last();
        return Err(EngineError::AlreadyReplayed {
            id,
            detail: last.map_or_else(String::new, |r| {
                format!(" to {}:{}@{} by {}", r.topic, r.partition, r.offset, r.by)
            }),
        });
    }
    let mut headers = Headers::default();
    let mut stripped = Vec::new();
    for h in letter.headers.iter() {
        match policy.strip_reason(&h.name) {
            Some(why) => stripped.push((h.name.clone(), why)),
            None => headers.0.push(h.clone()),
        }
    }
    let replay_count = u32::try_from(letter.history.len())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    headers
        .0
        .push(Header::new(MORGUE_REPLAY_ID, replay_id.as_bytes()));
    headers
        .0
        .push(Header::new(MORGUE_REPLAY_COUNT, replay_count.to_string()));
    Ok(ReplayPlan {
        letter_id: id,
        topic,
        key: letter.key.clone(),
        edited: edited.is_some(),
        value: edited.or_else(|| letter.value.clone()),
        headers,
        stripped,
        replay_id,
        replay_count,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
