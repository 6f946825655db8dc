//! The router's messages in flight (`--concurrency N`): which may start now, which
//! wait behind a message with the same key, and how far each partition's committed
//! offset may move. Messages with the same key (per topic) never overlap and start in
//! offset order; a partition's offset only ever moves past a contiguous prefix of
//! finished messages, so a crash loses nothing that was not finished. Null keys are
//! independent of each other. Pure bookkeeping: no I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::engine::route::router::Incoming;

/// A partition: topic and number.
pub type Part = (String, i32);

/// Where an admitted message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Running, or waiting behind its key: counts against the concurrency.
    Open,
    /// Held back by a DLQ that refused its dead letter: not finished, not counted.
    Parked,
    /// Finished: its offset may be stored once those before it are.
    Done,
}

/// The bookkeeping of messages admitted and not yet stored.
#[derive(Debug, Default)]
pub struct Flight {
    /// Per partition: admitted offsets and where each is.
    offsets: HashMap<Part, BTreeMap<i64, State>>,
    /// Per (topic, key) with a message running: the messages waiting behind it.
    keys: HashMap<(String, Vec<u8>), VecDeque<Incoming>>,
    /// Messages running or waiting behind a key.
    open: usize,
}

impl Flight {
    /// Messages running or waiting behind a key (parked ones not counted).
    pub fn len(&self) -> usize {
        self.open
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// True when `part`'s offset `offset` is admitted and not yet stored.
    pub fn holds(&self, part: &Part, offset: i64) -> bool {
        self.offsets
            .get(part)
            .is_some_and(|m| m.contains_key(&offset))
    }

    /// Admits `msg`: returns it when it may start now, None when it waits behind a
    /// running message with the same key (it is handed out by [`Flight::finish`]).
    /// A message already held (delivered again after a rewind) is dropped: None.
    pub fn admit(&mut self, msg: Incoming) -> Option<Incoming> {
        let part = (msg.topic.clone(), msg.partition);
        if self.holds(&part, msg.offset) {
            return None;
        }
        self.offsets
            .entry(part)
            .or_default()
            .insert(msg.offset, State::Open);
        self.open += 1;
        let Some(key) = msg.key.clone() else {
            return Some(msg);
        };
        match self.keys.get_mut(&(msg.topic.clone(), key.clone())) {
            Some(queue) => {
                queue.push_back(msg);
                None
            }
            None => {
                self.keys.insert((msg.topic.clone(), key), VecDeque::new());
                Some(msg)
            }
        }
    }

    /// Marks `msg` finished; returns the next message with its key to start (if any)
    /// and the offset its partition may now be stored at (the end of the contiguous
    /// prefix of finished messages), if it moved.
    pub fn finish(&mut self, msg: &Incoming) -> (Option<Incoming>, Option<i64>) {
        let part = (msg.topic.clone(), msg.partition);
        let mut store = None;
        if let Some(m) = self.offsets.get_mut(&part) {
            if let Some(state) = m.get_mut(&msg.offset) {
                if *state == State::Open {
                    self.open = self.open.saturating_sub(1);
                }
                *state = State::Done;
            }
            while let Some((&o, &State::Done)) = m.first_key_value() {
                m.remove(&o);
                store = Some(o);
            }
            if m.is_empty() {
                self.offsets.remove(&part);
            }
        }
        (self.next_of(msg), store)
    }

    /// The message waiting behind `msg`'s key, which starts now; the key is free when
    /// none waits.
    fn next_of(&mut self, msg: &Incoming) -> Option<Incoming> {
        let key = (msg.topic.clone(), msg.key.clone()?);
        let queue = self.keys.get_mut(&key)?;
        match queue.pop_front() {
            Some(next) => Some(next),
            None => {
                self.keys.remove(&key);
                None
            }
        }
    }

    /// Parks `msg`: its dead letter waits for the DLQ. It stays unfinished (its
    /// partition's offset does not move past it) but no longer counts as in flight.
    pub fn park(&mut self, msg: &Incoming) {
        let part = (msg.topic.clone(), msg.partition);
        if let Some(state) = self
            .offsets
            .get_mut(&part)
            .and_then(|m| m.get_mut(&msg.offset))
            .filter(|s| **s == State::Open)
        {
            *state = State::Parked;
            self.open = self.open.saturating_sub(1);
        }
    }

    /// Forgets partition `part` (revoked, or rewound): its offsets, and the messages
    /// of it waiting behind a key. Returns how many were dropped unfinished.
    pub fn forget(&mut self, part: &Part) -> usize {
        let (mut open, mut unfinished) = (0, 0);
        for s in self
            .offsets
            .remove(part)
            .into_iter()
            .flat_map(|m| m.into_values())
        {
            open += usize::from(s == State::Open);
            unfinished += usize::from(s != State::Done);
        }
        for queue in self.keys.values_mut() {
            queue.retain(|m| !(m.topic == part.0 && m.partition == part.1));
        }
        self.open = self.open.saturating_sub(open);
        unfinished
    }

    /// Messages waiting behind a key, dropped at shutdown (never started, never
    /// committed). Returns how many.
    pub fn drop_waiting(&mut self) -> usize {
        let n: usize = self.keys.values().map(VecDeque::len).sum();
        self.keys.clear();
        n
    }
}

#[cfg(test)]
#[path = "flight_tests.rs"]
mod tests;
