//! A DLQ's failure fingerprints over a sliding time window, for `morgue exporter`: the
//! largest groups and the fingerprints that first appeared recently. It keeps one row
//! per letter (its DLQ time and fingerprint, 12 bytes) and one label per fingerprint,
//! never a payload; rows older than the window are dropped, and at most
//! [`MAX_ROWS`] rows are kept (the oldest go first).

use std::collections::{HashMap, VecDeque};

use crate::engine::DeadLetter;
use crate::engine::read::fingerprint;

/// Most rows one window keeps; beyond it the groups count the newest letters only.
pub const MAX_ROWS: usize = 2_000_000;

/// Most labels kept; a fingerprint seen after that shows with its id only.
pub const MAX_LABELS: usize = 10_000;

/// Longest label (error class and normalised message) exported.
pub const LABEL_CHARS: usize = 120;

/// One fingerprint's figures inside the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintGroup {
    /// The fingerprint (`fingerprint:ID` filters on it).
    pub fingerprint: String,
    /// Error class and normalised message, shortened.
    pub label: String,
    /// Letters in the window with this fingerprint.
    pub count: u64,
    /// DLQ time of its oldest letter in the window, epoch ms.
    pub first_ms: i64,
}

/// The rows of one DLQ inside `window_ms`.
#[derive(Debug, Default)]
pub struct FingerprintWindow {
    window_ms: i64,
    rows: VecDeque<(i64, u32)>,
    labels: HashMap<u32, String>,
}

impl FingerprintWindow {
    /// An empty window covering the last `window_ms`.
    pub fn new(window_ms: i64) -> Self {
        FingerprintWindow {
            window_ms,
            ..Default::default()
        }
    }

    /// Where a reader of this DLQ starts: the window's beginning at `now_ms`.
    pub fn start_ms(&self, now_ms: i64) -> i64 {
        now_ms - self.window_ms
    }

    /// Counts `letter` (at its DLQ time, or `now_ms` when it has none).
    pub fn add(&mut self, letter: &DeadLetter, now_ms: i64) {
        let fp = fingerprint::of_letter(letter);
        let id = u32::from_str_radix(&fp, 16).unwrap_or_default();
        if !self.labels.contains_key(&id) && self.labels.len() < MAX_LABELS {
            self.labels.insert(id, label(letter));
        }
        if self.rows.len() >= MAX_ROWS {
            self.rows.pop_front();
        }
        self.rows
            .push_back((letter.dlq_timestamp_ms.unwrap_or(now_ms), id));
    }

    /// Letters counted now.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no letter is counted.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Drops the rows older than the window at `now_ms` (arrival order, so the front).
    pub fn expire(&mut self, now_ms: i64) {
        let start = self.start_ms(now_ms);
        // Timestamps are nearly ordered; one out of order stops the sweep until later.
        while self.rows.front().is_some_and(|r| r.0 < start) {
            self.rows.pop_front();
        }
    }

    /// Every fingerprint in the window, largest first (ties: the newest first seen).
    pub fn groups(&self) -> Vec<FingerprintGroup> {
        let mut by: HashMap<u32, (u64, i64)> = HashMap::new();
        for &(ts, id) in &self.rows {
            let e = by.entry(id).or_insert((0, ts));
            e.0 += 1;
            e.1 = e.1.min(ts);
        }
        let mut out: Vec<FingerprintGroup> = by
            .into_iter()
            .map(|(id, (count, first_ms))| FingerprintGroup {
                fingerprint: format!("{id:08x}"),
                label: self.labels.get(&id).cloned().unwrap_or_default(),
                count,
                first_ms,
            })
            .collect();
        out.sort_by(|a, b| {
            (b.count, b.first_ms, &a.fingerprint).cmp(&(a.count, a.first_ms, &b.fingerprint))
        });
        out
    }
}

/// `Class: normalised message` (or whichever the letter has), at most [`LABEL_CHARS`].
fn label(l: &DeadLetter) -> String {
    let f = &l.failure;
    let message = f.message.as_deref().map(fingerprint::normalize);
    let text = match (f.exception_class.as_deref(), message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        (None, Some(m)) => m,
        (None, None) => "(no error recorded)".to_string(),
    };
    text.chars().take(LABEL_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(class: &str, message: &str, ts: i64) -> DeadLetter {
        let mut l = DeadLetter {
            dlq_timestamp_ms: Some(ts),
            ..Default::default()
        };
        l.failure.exception_class = Some(class.into());
        l.failure.message = Some(message.into());
        l
    }

    #[test]
    fn groups_count_by_fingerprint_and_expire_with_the_window() {
        let mut w = FingerprintWindow::new(10_000);
        for (i, order) in ["1", "22", "333"].iter().enumerate() {
            w.add(
                &letter(
                    "PriceError",
                    &format!("order {order}: 42 > 10"),
                    1_000 + i as i64,
                ),
                0,
            );
        }
        w.add(&letter("Timeout", "after 30 s", 5_000), 0);
        let g = w.groups();
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!((g[0].count, g[0].first_ms), (3, 1_000));
        assert_eq!(g[0].label, "PriceError: order #: # > #");
        assert_eq!(
            g[0].fingerprint,
            fingerprint::of_letter(&letter("PriceError", "order 9: 1 > 2", 0))
        );
        assert_eq!((g[1].count, g[1].label.as_str()), (1, "Timeout: after # s"));
        w.expire(12_000);
        let g = w.groups();
        assert_eq!((g.len(), g[0].count), (1, 1), "{g:?}");
        w.expire(16_000);
        assert!(w.is_empty());
    }

    #[test]
    fn a_letter_without_a_time_counts_now_and_long_labels_are_cut() {
        let mut w = FingerprintWindow::new(1_000);
        let mut l = letter("E", &"x".repeat(500), 0);
        l.dlq_timestamp_ms = None;
        w.add(&l, 7_000);
        let g = w.groups();
        assert_eq!(g[0].first_ms, 7_000);
        assert_eq!(g[0].label.chars().count(), LABEL_CHARS);
    }
}
