//! The closed loop inside the [`Store`]: replayed letters are watched (see
//! [`outcome`](crate::engine::read::outcome)) and their rows move to `failed-again` as new
//! failures arrive, or to `confirmed` when the clock passes their window.

use super::Store;
use crate::engine::model::letter::{DeadLetter, LetterId};
use crate::engine::read::index::NO_TIME;
use crate::engine::read::outcome::Watch;

impl Store {
    /// Watches `l` when it was replayed, and moves the letters it shows failing again.
    pub(super) fn follow_up(&mut self, l: &DeadLetter) {
        if let Some(id) = l.id.as_ref().filter(|_| !l.history.is_empty()) {
            self.watch.register(id, l.key.as_deref(), &l.history);
            self.settle_row(id);
        }
        for x in self.watch.observe(l) {
            self.settle_row(&x);
        }
    }

    /// Sets the state of watched letter `id`'s row from its replay's outcome.
    fn settle_row(&mut self, id: &LetterId) {
        let Some(o) = self.watch.outcome(id, self.now_ms) else {
            return;
        };
        if let Some(r) = self.find(id).and_then(|pos| self.rows.get(pos)) {
            let state = crate::engine::read::outcome::shown_state(r.state, &o);
            if state != r.state {
                self.set_state(id, state);
            }
        }
    }

    /// Sets the watch window (before the first letter) to `window_ms`.
    pub fn set_confirm_after(&mut self, window_ms: i64) {
        self.watch = Watch::new(window_ms);
    }

    /// Moves the clock to `now_ms`: replayed letters whose window has ended without a
    /// new failure become `confirmed`.
    pub fn tick(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        for id in self.watch.confirmed_by(now_ms) {
            self.settle_row(&id);
        }
    }

    /// Looks for letters that show a watched letter failing again by key and topic,
    /// over every row (once caught up: a partition read before another can hold the
    /// new failure of a letter registered later).
    pub fn rescan_failures(&mut self) {
        if self.watch.is_empty() {
            return;
        }
        let mut hits = Vec::new();
        for pos in 0..self.rows.len() {
            let Some(r) = self.rows.get(pos) else {
                continue;
            };
            let (Some(topic), Some((key, _))) = (self.topics.get(r.topic), self.key(r)) else {
                continue;
            };
            if r.dlq_ts_ms != NO_TIME
                && self.watch.watches_key(&key, topic)
                && let Some(id) = self.id(pos)
            {
                hits.extend(self.watch.key_match(&key, topic, r.dlq_ts_ms, &id));
            }
        }
        for x in hits {
            self.settle_row(&x);
        }
    }

    /// Watches letter `id` (key `key`), which this session has just replayed to `topic`
    /// as `replay_id`, at once: its row moves to `failed-again` or `confirmed` as in a
    /// session that reads its history from the ledger.
    pub fn replayed(&mut self, id: &LetterId, key: Option<&[u8]>, replay_id: &str, topic: &str) {
        // Only the id, the topic and the time matter to the watch.
        let record = crate::engine::model::letter::ReplayRecord {
            replay_id: replay_id.to_string(),
            topic: topic.to_string(),
            partition: -1,
            offset: -1,
            by: String::new(),
            at_ms: self.now_ms,
            edited: false,
            key: None,
            transform: None,
        };
        self.watch.register(id, key, std::slice::from_ref(&record));
        self.settle_row(id);
    }

    /// Registers a freshly fetched letter's history and sets its outcome and state.
    pub fn settle(&mut self, l: &mut DeadLetter) {
        if let Some(id) = l.id.as_ref().filter(|_| !l.history.is_empty()) {
            self.watch.register(id, l.key.as_deref(), &l.history);
        }
        self.watch.settle(l, self.now_ms);
    }
}
