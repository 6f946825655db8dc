//! The router's messages in flight (`--concurrency N`): which may start now, which
//! wait behind a message with the same key, and how far each partition's committed
//! offset may move. Messages with the same key (per topic) never overlap and start in
//! offset order; a partition's offset only ever moves past a contiguous prefix of
//! finished messages, so a crash loses nothing that was not finished. Null keys are
//! independent of each other. A message still running when its partition is forgotten
//! (revoked, or rewound) is *stale*: it is read again, and its own outcome must neither
//! store an offset nor hold its partition back. Pure bookkeeping: no I/O.

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
    /// Messages still running whose partition was forgotten, by partition and offset
    /// (a count: a message can be forgotten while running twice).
    stale: HashMap<(Part, i64), usize>,
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
    /// of it waiting behind a key; those still running become stale (see
    /// [`Flight::take_stale`]). Returns how many were dropped unfinished.
    pub fn forget(&mut self, part: &Part) -> usize {
        let (mut open, mut unfinished) = (0, 0);
        let mut running = Vec::new();
        for (o, s) in self.offsets.remove(part).into_iter().flatten() {
            open += usize::from(s == State::Open);
            unfinished += usize::from(s != State::Done);
            if s == State::Open {
                running.push(o);
            }
        }
        for queue in self.keys.values_mut() {
            queue.retain(|m| {
                let waits = m.topic == part.0 && m.partition == part.1;
                if waits {
                    running.retain(|o| *o != m.offset);
                }
                !waits
            });
        }
        for o in running {
            *self.stale.entry((part.clone(), o)).or_default() += 1;
        }
        self.open = self.open.saturating_sub(open);
        unfinished
    }

    /// True (once per forgetting) when `msg` finished after its partition was
    /// forgotten: it will be read again, so its outcome stores nothing and holds
    /// nothing back; [`Flight::release_key`] starts what waits behind its key.
    pub fn take_stale(&mut self, msg: &Incoming) -> bool {
        let at = ((msg.topic.clone(), msg.partition), msg.offset);
        let Some(n) = self.stale.get_mut(&at) else {
            return false;
        };
        *n -= 1;
        if *n == 0 {
            self.stale.remove(&at);
        }
        true
    }

    /// The message waiting behind finished `msg`'s key, to start now (the key is
    /// free when none waits).
    pub fn release_key(&mut self, msg: &Incoming) -> Option<Incoming> {
        self.next_of(msg)
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
