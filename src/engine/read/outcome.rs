//! The closed loop after a replay: did the replayed message fail again?
//!
//! A replayed letter is watched for a window (default 10 min, `--confirm-after`). A
//! new letter in the same DLQ counts as the same message failing again when it
//! carries one of the letter's `morgue-replay-id`s (Spring's recoverer and morgue's
//! router copy the original record's headers), or when it has the same key and comes
//! from the topic the letter was replayed to, within the window after the replay.
//! The replayed letter then shows `failed-again ×N` linked to the new letters;
//! without one by the end of the window it shows `confirmed`.
//!
//! The outcome is derived from what is in the DLQ and the ledger, never written:
//! every operator computes the same answer, read-only profiles included, and a
//! letter read later can never contradict it.

use std::collections::HashMap;

use tokio::sync::mpsc;

use crate::engine::model::after_replay::AfterReplay;
use crate::engine::model::conventions::MORGUE_REPLAY_ID;
use crate::engine::model::ledger::LedgerState;
use crate::engine::model::letter::{DeadLetter, LetterId, LetterState, ReplayRecord};
use crate::engine::read::source::{DeadLetterSource, SourceError, SourceEvent, StartAt};

/// How long a replayed letter is watched by default before it counts as confirmed.
pub const DEFAULT_CONFIRM_AFTER_MS: i64 = 10 * 60 * 1000;

/// One replayed letter being watched.
#[derive(Debug, Clone)]
struct Watched {
    /// Time of the latest replay, epoch ms.
    at_ms: i64,
    /// Its `morgue-replay-id`.
    replay_id: String,
    /// Where it was sent.
    topic: String,
    /// New letters of the same message: id, and the replay they followed.
    again: Vec<(LetterId, String)>,
}

/// Replayed letters and the new letters that show them failing again.
#[derive(Debug)]
pub struct Watch {
    window_ms: i64,
    watched: HashMap<LetterId, Watched>,
    /// Every replay id of a watched letter → that letter.
    by_replay: HashMap<String, LetterId>,
    /// (key, topic replayed to) → watched letters.
    by_key: HashMap<(Vec<u8>, String), Vec<LetterId>>,
    /// Letters seen carrying a `morgue-replay-id` (few: only replays that failed).
    tagged: HashMap<String, Vec<LetterId>>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch::new(DEFAULT_CONFIRM_AFTER_MS)
    }
}

impl Watch {
    /// An empty watch with a window of `window_ms`.
    pub fn new(window_ms: i64) -> Self {
        Watch {
            window_ms,
            watched: HashMap::new(),
            by_replay: HashMap::new(),
            by_key: HashMap::new(),
            tagged: HashMap::new(),
        }
    }

    /// The watch of every replayed letter in `ledger` (keys from the replay records).
    pub fn of_ledger(ledger: &LedgerState, window_ms: i64) -> Self {
        let mut w = Watch::new(window_ms);
        for e in ledger.entries() {
            if let Ok(id) = e.id.parse::<LetterId>() {
                let key = e
                    .history
                    .last()
                    .and_then(|r| r.key.as_ref()?.to_bytes().ok());
                w.register(&id, key.as_deref(), &e.history);
            }
        }
        w
    }

    /// The watch window in milliseconds.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// True when no letter is watched.
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }

    /// The earliest latest-replay time of the watched letters: where to start reading
    /// to see every new letter that matters.
    pub fn earliest_ms(&self) -> Option<i64> {
        self.watched.values().map(|w| w.at_ms).min()
    }

    /// Watches letter `id` (key `key`) from its latest replay in `history`; a newer
    /// history replaces the older one. Letters already seen with one of its replay ids
    /// count at once.
    pub fn register(&mut self, id: &LetterId, key: Option<&[u8]>, history: &[ReplayRecord]) {
        let Some(last) = history.last() else {
            return;
        };
        if self
            .watched
            .get(id)
            .is_some_and(|w| w.replay_id == last.replay_id)
        {
            return;
        }
        let again = self.watched.remove(id).map(|w| w.again).unwrap_or_default();
        let mut w = Watched {
            at_ms: last.at_ms,
            replay_id: last.replay_id.clone(),
            topic: last.topic.clone(),
            again,
        };
        for r in history {
            self.by_replay.insert(r.replay_id.clone(), id.clone());
            for y in self.tagged.get(&r.replay_id).into_iter().flatten() {
                if y != id && !w.again.iter().any(|(a, _)| a == y) {
                    w.again.push((y.clone(), r.replay_id.clone()));
                }
            }
        }
        if let Some(k) = key {
            let ids = self
                .by_key
                .entry((k.to_vec(), w.topic.clone()))
                .or_default();
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        self.watched.insert(id.clone(), w);
    }

    /// Looks at a letter of the DLQ; returns the watched letters it shows failing again.
    pub fn observe(&mut self, l: &DeadLetter) -> Vec<LetterId> {
        let Some(id) = &l.id else {
            return Vec::new();
        };
        if let Some(tag) = l.headers.last(MORGUE_REPLAY_ID) {
            let tag = String::from_utf8_lossy(tag).into_owned();
            let seen = self.tagged.entry(tag.clone()).or_default();
            if !seen.contains(id) {
                seen.push(id.clone());
            }
            if let Some(x) = self.by_replay.get(&tag).cloned() {
                return self.link(&x, id, &tag).into_iter().collect();
            }
        }
        let (Some(key), Some(topic), Some(ts)) = (&l.key, &l.source.topic, l.dlq_timestamp_ms)
        else {
            return Vec::new();
        };
        self.key_match(key, topic, ts, id)
    }

    /// The watched letters that a letter with this key, source topic and DLQ time shows
    /// failing again (within the window after their latest replay).
    pub fn key_match(&mut self, key: &[u8], topic: &str, ts: i64, id: &LetterId) -> Vec<LetterId> {
        let Some(xs) = self.by_key.get(&(key.to_vec(), topic.to_string())) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for x in xs.clone() {
            let Some(w) = self.watched.get(&x) else {
                continue;
            };
            if ts > w.at_ms && ts <= w.at_ms + self.window_ms {
                let replay = w.replay_id.clone();
                out.extend(self.link(&x, id, &replay));
            }
        }
        out
    }

    /// True when some watched letter was replayed with this key to this topic.
    pub fn watches_key(&self, key: &[u8], topic: &str) -> bool {
        !self.by_key.is_empty() && self.by_key.contains_key(&(key.to_vec(), topic.to_string()))
    }

    fn link(&mut self, x: &LetterId, y: &LetterId, replay: &str) -> Option<LetterId> {
        let w = self.watched.get_mut(x).filter(|_| x != y)?;
        if w.again.iter().any(|(a, _)| a == y) {
            return None;
        }
        w.again.push((y.clone(), replay.to_string()));
        w.again.sort();
        Some(x.clone())
    }

    /// What became of letter `id`'s latest replay, as of `now_ms`.
    pub fn outcome(&self, id: &LetterId, now_ms: i64) -> Option<AfterReplay> {
        let w = self.watched.get(id)?;
        let end = w.at_ms + self.window_ms;
        if w.again.iter().any(|(_, r)| *r == w.replay_id) {
            return Some(AfterReplay::FailedAgain {
                letters: w.again.iter().map(|(a, _)| a.to_string()).collect(),
            });
        }
        Some(if now_ms >= end {
            AfterReplay::Confirmed { since_ms: end }
        } else {
            AfterReplay::Watching { until_ms: end }
        })
    }

    /// The watched letters whose window has ended by `now_ms` without a new failure.
    pub fn confirmed_by(&self, now_ms: i64) -> Vec<LetterId> {
        self.watched
            .iter()
            .filter(|(id, _)| {
                matches!(
                    self.outcome(id, now_ms),
                    Some(AfterReplay::Confirmed { .. })
                )
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Sets `l`'s outcome, and its state when it shows as replayed.
    pub fn settle(&self, l: &mut DeadLetter, now_ms: i64) {
        let Some(o) = l.id.as_ref().and_then(|id| self.outcome(id, now_ms)) else {
            return;
        };
        l.state = shown_state(l.state, &o);
        l.outcome = Some(o);
    }
}

/// The state a letter in state `state` shows once its replay has outcome `o`: only a
/// replayed letter moves (an edited or replaying one keeps what is pending).
pub fn shown_state(state: LetterState, o: &AfterReplay) -> LetterState {
    let replayed = matches!(
        state,
        LetterState::Replayed | LetterState::Confirmed | LetterState::FailedAgain
    );
    match o {
        _ if !replayed => state,
        AfterReplay::Watching { .. } => LetterState::Replayed,
        AfterReplay::Confirmed { .. } => LetterState::Confirmed,
        AfterReplay::FailedAgain { .. } => LetterState::FailedAgain,
    }
}

/// The watch of `source`'s replayed letters, with every letter that arrived since the
/// earliest of their latest replays already looked at: a read of the DLQ's tail.
pub async fn prepare(source: &dyn DeadLetterSource, window_ms: i64) -> Result<Watch, SourceError> {
    let mut watch = Watch::of_ledger(&source.ledger().await?, window_ms);
    let Some(from) = watch.earliest_ms() else {
        return Ok(watch);
    };
    let (tx, mut rx) = mpsc::channel(crate::engine::read::source::AHEAD);
    let read = source.stream(StartAt::Time(from), false, tx);
    let look = async {
        while let Some(event) = rx.recv().await {
            if let SourceEvent::Letters(batch) = event {
                for l in &batch {
                    watch.observe(l);
                }
            }
        }
    };
    let (r, ()) = tokio::join!(read, look);
    r?;
    Ok(watch)
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
