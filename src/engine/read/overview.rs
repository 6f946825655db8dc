//! The overview of every DLQ: what `morgue dlqs` prints and the TUI's first screen
//! shows. Each figure comes from metadata, offsets, offsets-for-times, configs and the
//! ledger, never from a scan of the letters.

use std::collections::BTreeMap;

use crate::engine::model::names::matches_any;

/// Topic names that DLQ conventions produce (Spring `*.DLT` / `*-dlt`, `*.dlq`,
/// `*-dlq`, `dlq.*`, `deadletter*`, …); a profile's `dlq_patterns` replaces them.
pub const DEFAULT_PATTERNS: &[&str] = &[
    "*.DLT",
    "*-dlt",
    "*.dlt",
    "*-DLT",
    "*.dlq",
    "*-dlq",
    "*.DLQ",
    "*-DLQ",
    "*_dlq",
    "*_DLQ",
    "*_dlt",
    "dlq.*",
    "dlq-*",
    "dlq_*",
    "*deadletter*",
    "*dead_letter*",
    "*dead-letter*",
    "*DeadLetter*",
];

/// Which topics count as DLQs: names matching `globs`, and with `connect` also those
/// that Kafka Connect's sink connectors name as their dead letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqNames {
    /// Name patterns (`*` and `?`).
    pub globs: Vec<String>,
    /// Also the topics named by `errors.deadletterqueue.topic.name` in Connect's config topics.
    pub connect: bool,
}

impl DlqNames {
    /// Whether `topic` is a DLQ, given the DLQ names Connect's configuration gives.
    pub fn matches(&self, topic: &str, connect_dlqs: &[String]) -> bool {
        matches_any(topic, &self.globs) || (self.connect && connect_dlqs.iter().any(|d| d == topic))
    }
}

/// Hours of history in [`DlqSummary::hourly`].
pub const HOURS: usize = 24;

/// One DLQ at a glance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DlqSummary {
    /// Topic (or `db.collection`).
    pub name: String,
    /// `kafka` or `mongo`.
    pub kind: &'static str,
    /// Partitions (Kafka).
    pub partitions: usize,
    /// Letters held; for Kafka the offset span, an upper bound (`exact` false).
    pub letters: u64,
    /// `letters` is a count, not an offset span.
    pub exact: bool,
    /// Letters that arrived in each of the last [`HOURS`] hours, oldest first.
    pub hourly: Vec<u64>,
    /// When the oldest letter was written (epoch ms), if known.
    pub oldest_ms: Option<i64>,
    /// The topic's `retention.ms` (None: unknown; -1: forever).
    pub retention_ms: Option<i64>,
    /// Letters by state in the ledger (letters without an entry are `new`).
    pub states: BTreeMap<&'static str, u64>,
}

impl DlqSummary {
    /// The name as listed: the topic, or `mongo:COLLECTION`.
    pub fn label(&self) -> String {
        match self.kind {
            "mongo" => format!("mongo:{}", self.name),
            _ => self.name.clone(),
        }
    }

    /// Letters of the last hour.
    pub fn last_hour(&self) -> u64 {
        self.hourly.last().copied().unwrap_or(0)
    }

    /// Letters of the last day.
    pub fn last_day(&self) -> u64 {
        self.hourly.iter().sum()
    }

    /// Letters by state as text, `replayed 310, resolved 12` (`-` for none).
    pub fn states_text(&self) -> String {
        if self.states.is_empty() {
            return "-".into();
        }
        self.states
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Milliseconds until retention deletes the oldest letter (negative: due now).
    pub fn deleted_in_ms(&self, now_ms: i64) -> Option<i64> {
        match (self.oldest_ms, self.retention_ms) {
            (Some(oldest), Some(r)) if r >= 0 => Some(oldest + r - now_ms),
            _ => None,
        }
    }
}

/// 1204331 → "1,204,331".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `4d23h`, `5h`, `12m`, `40s`, as k9s shows ages; `now` for zero or less.
pub fn age(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        i64::MIN..=0 => "now".into(),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ if s % 86_400 < 3600 => format!("{}d", s / 86_400),
        _ => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Counts as a bar sparkline, one character each (blank for zero).
pub fn sparkline(counts: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                ' '
            } else {
                BARS[((c * 7) / max) as usize]
            }
        })
        .collect()
}

/// Topics morgue itself keeps next to a DLQ (ledger, its checkpoints, source claims):
/// never DLQs.
pub fn is_morgue_topic(name: &str) -> bool {
    name.ends_with(".morgue-ledger")
        || name.ends_with(".morgue-checkpoint")
        || name.ends_with(".morgue-sources")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions_match_and_others_do_not() {
        let p: Vec<String> = DEFAULT_PATTERNS.iter().map(|s| s.to_string()).collect();
        for dlq in [
            "orders.DLT",
            "payments-dlt",
            "dlq.trades",
            "deadletter-topic",
            "x-deadletter-y",
            "a.dlq",
            "payments_dlq",
            "dlq_orders",
            "orders_dead_letter",
            "deadletter_messages",
            "billingDeadLetters",
        ] {
            assert!(matches_any(dlq, &p), "{dlq}");
        }
        for other in [
            "orders",
            "dltx",
            "orders.DLT.morgue-ledger-x",
            "trades-retry-0",
        ] {
            assert!(!matches_any(other, &p), "{other}");
        }
        assert!(is_morgue_topic("orders.DLT.morgue-ledger"));
        assert!(is_morgue_topic("orders.DLT.morgue-checkpoint"));
    }

    #[test]
    fn figures_follow_from_offsets_and_retention() {
        let mut s = DlqSummary {
            hourly: vec![0; HOURS],
            oldest_ms: Some(1_000),
            retention_ms: Some(7_000),
            ..DlqSummary::default()
        };
        s.hourly[HOURS - 1] = 5;
        s.hourly[0] = 2;
        assert_eq!((s.last_hour(), s.last_day()), (5, 7));
        assert_eq!(s.deleted_in_ms(3_000), Some(5_000));
        s.retention_ms = Some(-1);
        assert_eq!(s.deleted_in_ms(3_000), None);
        assert_eq!(age(0), "now");
        assert_eq!(age(90_000), "1m");
        assert_eq!(age((4 * 86_400 + 23 * 3600) * 1000), "4d23h");
        assert_eq!(sparkline(&[0, 1, 7]), " ▂█");
    }
}
