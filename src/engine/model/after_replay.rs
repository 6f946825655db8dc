//! What became of a replayed letter, as the closed loop (`read::outcome`) derives it:
//! watched, confirmed, or failed again; and whether the source consumer group has
//! read past the replayed message.

use serde::Serialize;

/// What became of a letter's latest replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum AfterReplay {
    /// No new failure yet; watched until `until` (RFC 3339).
    Watching {
        /// End of the window, epoch ms.
        until_ms: i64,
    },
    /// No new failure within the window.
    Confirmed {
        /// End of the window, epoch ms.
        since_ms: i64,
    },
    /// The message failed again after the latest replay; `letters` are every new
    /// letter of it since its first replay, oldest first.
    FailedAgain {
        /// Ids of the new letters.
        letters: Vec<String>,
    },
}

impl AfterReplay {
    /// One line for the detail view and the list: `watching until 14:05`, `confirmed`,
    /// `failed again ×2 (latest 0:17)`.
    pub fn text(&self) -> String {
        let hm = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%H:%M:%S UTC").to_string())
                .unwrap_or_default()
        };
        match self {
            AfterReplay::Watching { until_ms } => {
                format!("watching for a new failure until {}", hm(*until_ms))
            }
            AfterReplay::Confirmed { since_ms } => {
                format!("confirmed: no new failure by {}", hm(*since_ms))
            }
            AfterReplay::FailedAgain { letters } => format!(
                "failed again ×{} (latest {})",
                letters.len(),
                letters.last().map_or("?", String::as_str)
            ),
        }
    }
}

/// Whether the source consumer group has read past the replayed message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumed {
    /// The consumer group.
    pub group: String,
    /// Its committed offset on the replay's partition (None: nothing committed).
    pub committed: Option<i64>,
    /// The replayed message's offset.
    pub offset: i64,
    /// True when the committed offset is past the message: the group has processed it.
    pub passed: bool,
}

impl Consumed {
    /// The group's position against the replayed message at `offset`.
    pub fn new(group: String, committed: Option<i64>, offset: i64) -> Self {
        let passed = committed.is_some_and(|c| c > offset);
        Consumed {
            group,
            committed,
            offset,
            passed,
        }
    }

    /// One line: `group 'billing' has consumed it (committed 1235, message at 1234)`.
    pub fn text(&self) -> String {
        let at = match self.committed {
            Some(c) => format!("committed {c}, message at {}", self.offset),
            None => format!("nothing committed, message at {}", self.offset),
        };
        let verb = if self.passed {
            "has consumed it"
        } else {
            "has not consumed it yet"
        };
        format!("group '{}' {verb} ({at})", self.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumption_is_judged_by_the_committed_offset() {
        assert!(Consumed::new("billing".into(), Some(8), 7).passed);
        let c = Consumed::new("billing".into(), Some(7), 7);
        assert!(!c.passed);
        assert_eq!(
            c.text(),
            "group 'billing' has not consumed it yet (committed 7, message at 7)"
        );
        assert!(!Consumed::new("billing".into(), None, 7).passed);
    }
}
