//! The router loop's state besides the tasks in flight (see [`super::route`]): what
//! becomes of a finished message (its offset stored as far as finished messages reach,
//! the next message with its key started), partitions stalled on a DLQ that refuses
//! writes, partitions of retry topics waiting for their next message to be due, and
//! the check for dead letters a broker lost, with the rewinds it makes until they
//! take effect.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::recheck::{Recheck, RouteConsumer, rewind};
use super::seek::{assigned, pause};
use super::{KafkaBackendError, KafkaConfig};
use crate::engine::route::flight::{Flight, Part};
use crate::engine::route::router::{Incoming, Processor, Routed, Router};
use crate::engine::route::sink::DeadLetterSink;
use crate::engine::route::stats::RouterStats;

/// A partition held back because the DLQ refused its dead letter.
pub(super) struct Stalled {
    pub(super) msg: Incoming,
    pub(super) letter: crate::engine::DeadLetter,
    /// None for the DLQ, else the retry topic the letter goes to.
    pub(super) into: Option<String>,
}

/// The loop's state.
pub(super) struct Loop<'a, P, S> {
    cfg: &'a KafkaConfig,
    consumer: &'a RouteConsumer,
    router: &'a Router<P, S>,
    /// What the router did so far.
    pub(super) stats: RouterStats,
    /// Partitions held back by a DLQ that refused their dead letter.
    pub(super) stalled: HashMap<Part, Stalled>,
    /// Messages admitted and not yet stored.
    pub(super) flight: Flight,
    /// Dead letters written since the last look for lost ones.
    pub(super) recheck: Recheck,
    /// Retry-topic partitions paused until their next message is due (epoch ms).
    pub(super) delayed: HashMap<Part, (Incoming, i64)>,
    /// Partitions sent back to a message whose letter the broker lost, until they read
    /// from there.
    rewinds: HashMap<Part, Rewind>,
    /// The DLQ topic when it is on the consumed cluster (checked after a reconnect).
    dlq: Option<String>,
    /// Paused partitions whose seek back failed, sought again until it takes.
    pub(super) unsought: super::seek::Unsought,
    /// Per partition: the first offset not known finished (all before it are stored,
    /// or were committed when the partition was assigned), and the rebalance count it
    /// holds for (a rebalance puts the partition back at the group's commit).
    frontier: HashMap<Part, (i64, u64)>,
}

/// How often rewinds not sought since the last rebalance (or seen read past) are
/// sought again.
pub(super) const REWIND_AGAIN: Duration = Duration::from_secs(1);

/// A partition sent back to `to`, not yet read from there.
#[derive(Debug, Clone, Copy)]
struct Rewind {
    to: i64,
    /// The rebalance count when it was last sought while assigned (a rebalance since
    /// may have put the partition back at the group's commit); None: to be sought.
    sought: Option<u64>,
}

impl<'a, P: Processor, S: DeadLetterSink> Loop<'a, P, S> {
    /// The state of a loop that starts now.
    pub(super) fn new(
        cfg: &'a KafkaConfig,
        consumer: &'a RouteConsumer,
        router: &'a Router<P, S>,
    ) -> Self {
        Loop {
            cfg,
            consumer,
            router,
            stats: RouterStats::default(),
            stalled: HashMap::new(),
            flight: Flight::default(),
            recheck: Recheck::default(),
            delayed: HashMap::new(),
            rewinds: HashMap::new(),
            dlq: router.sink().kafka_topic().map(str::to_string),
            frontier: HashMap::new(),
            unsought: super::seek::Unsought::default(),
        }
    }

    /// The counts at the end; stalled and delayed messages are abandoned (consumed again).
    pub(super) fn into_stats(mut self) -> RouterStats {
        self.stats.abandoned += (self.stalled.len() + self.delayed.len()) as u64;
        self.stats
    }

    /// True when `part` is held back (stalled on the DLQ, or waiting for a due time):
    /// what is fetched from it now is read again when it resumes.
    pub(super) fn holds_back(&self, part: &Part) -> bool {
        self.stalled.contains_key(part)
            || self.delayed.contains_key(part)
            || self.unsought.holds(part)
    }

    /// Sends `part` (paused) back to `offset`, to read from there when resumed; a
    /// failed seek keeps it paused and is tried again (see [`super::seek`]).
    pub(super) fn send_back(&mut self, part: &Part, offset: i64) -> bool {
        self.unsought.seek(self.consumer, part, offset)
    }

    /// Tries the failed seeks again, resuming the partitions they put back.
    pub(super) fn seek_again(&mut self) -> Result<(), KafkaBackendError> {
        let (stalled, delayed) = (&self.stalled, &self.delayed);
        self.unsought.again(self.cfg, self.consumer, |p| {
            stalled.contains_key(p) || delayed.contains_key(p)
        })
    }

    /// Holds `msg` from a retry topic until `due_ms`: its partition is paused.
    pub(super) fn delay(&mut self, msg: Incoming, due_ms: i64) -> Result<(), KafkaBackendError> {
        pause(self.cfg, self.consumer, &msg.topic, msg.partition, true)?;
        self.delayed
            .insert((msg.topic.clone(), msg.partition), (msg, due_ms));
        Ok(())
    }

    /// When the next delayed message is due, as a loop instant.
    pub(super) fn next_due(&self) -> Option<tokio::time::Instant> {
        let due = self.delayed.values().map(|(_, d)| *d).min()?;
        let wait = due.saturating_sub(chrono::Utc::now().timestamp_millis());
        let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
        Some(tokio::time::Instant::now() + wait)
    }

    /// The delayed messages due now, their partitions resumed after them; those of
    /// partitions no longer assigned are dropped (their new owner reads them).
    pub(super) fn release_due(&mut self) -> Result<Vec<Incoming>, KafkaBackendError> {
        let now = chrono::Utc::now().timestamp_millis();
        let due: Vec<Part> = (self.delayed.iter())
            .filter(|(_, (_, d))| *d <= now)
            .map(|(p, _)| p.clone())
            .collect();
        let mut out = Vec::new();
        for part in due {
            let Some((msg, _)) = self.delayed.remove(&part) else {
                continue;
            };
            if !assigned(self.consumer, &part.0, part.1) {
                continue;
            }
            // On from the message after it; resumed once sought there.
            if self.send_back(&part, msg.offset + 1) {
                pause(self.cfg, self.consumer, &part.0, part.1, false)?;
            }
            out.push(msg);
        }
        Ok(out)
    }

    /// Records what became of `msg`; stores its partition's offset as far as finished
    /// messages reach; returns the message with the same key to start next, if any.
    pub(super) fn finished(
        &mut self,
        msg: Incoming,
        outcome: Routed,
    ) -> Result<Option<Incoming>, KafkaBackendError> {
        let part = (msg.topic.clone(), msg.partition);
        if self.flight.take_stale(&msg) {
            // It ran across a rewind or a revocation of its partition, which reads it
            // again: what it did happened (counted, its letter remembered), but it
            // stores nothing and holds nothing back.
            if outcome.committable() {
                self.remember(&msg, &outcome);
                self.stats.count(&outcome);
            }
            return Ok(self
                .flight
                .release_key(&msg)
                .filter(|_| !self.router.stopping()));
        }
        if !assigned(self.consumer, &part.0, part.1) {
            tracing::warn!(
                "{}:{} was revoked while {} ran; not committed (its new owner consumes it)",
                part.0,
                part.1,
                msg.offset
            );
            let dropped = self.drop_partition(&part);
            // This one has finished: forget took it for one still running.
            self.flight.take_stale(&msg);
            self.stats.abandoned += 1 + dropped.saturating_sub(1) as u64;
            // Its key is free again: the same key (from this partition read again, or
            // another) must not wait behind a message that will never finish.
            let (next, _) = self.flight.finish(&msg);
            return Ok(next.filter(|_| !self.router.stopping()));
        }
        match outcome {
            Routed::DlqUnavailable {
                letter,
                error,
                into,
            } => {
                self.stats.dlq_stalls += 1;
                self.flight.park(&msg);
                pause(self.cfg, self.consumer, &part.0, part.1, true)?;
                let to = match &into {
                    Some(t) => format!("retry topic '{t}'"),
                    None => format!("DLQ {}", self.router.sink().describe()),
                };
                tracing::error!(
                    "{to} refused the letter of {}:{}:{} ({error}); partition paused, nothing committed past it; the other partitions go on",
                    part.0,
                    part.1,
                    msg.offset
                );
                self.stalled.insert(
                    part,
                    Stalled {
                        msg,
                        letter: *letter,
                        into,
                    },
                );
                Ok(None)
            }
            Routed::Abandoned => {
                self.stats.abandoned += 1;
                Ok(None)
            }
            done => {
                self.remember(&msg, &done);
                self.stats.count(&done);
                let next = self.store(&msg)?;
                Ok(next.filter(|_| !self.router.stopping()))
            }
        }
    }

    /// Forgets what the loop holds of `part`, which is read again from an older offset
    /// (rewound, or revoked: its next owner starts at the group's commit): what is in
    /// flight there (see [`Flight::forget`]), and a stall or a delayed message, whose
    /// partition is resumed (a stall would otherwise seek it on past what is read
    /// again). Returns how many messages were dropped unfinished.
    fn drop_partition(&mut self, part: &Part) -> usize {
        let held = self.stalled.remove(part).is_some();
        let unsought = self.unsought.holds(part);
        self.unsought.forget(part);
        if self.delayed.remove(part).is_some() || held || unsought {
            // Not assigned any more (revoked) is fine: its next owner starts unpaused.
            if let Err(e) = pause(self.cfg, self.consumer, &part.0, part.1, false) {
                tracing::debug!("resuming {}:{} after forgetting it: {e}", part.0, part.1);
            }
        }
        self.flight.forget(part)
    }

    /// Remembers a letter written to the consumed cluster, for the check after a
    /// broker went away.
    fn remember(&mut self, msg: &Incoming, outcome: &Routed) {
        let (into, id) = match outcome {
            Routed::Retrying { topic, id } => (topic.as_str(), id),
            Routed::DeadLettered { id, .. } => match &self.dlq {
                Some(dlq) => (dlq.as_str(), id),
                None => return,
            },
            _ => return,
        };
        let o = self.router.origin(msg);
        let origin = (
            o.topic.as_deref().unwrap_or(&msg.topic),
            o.partition.unwrap_or(msg.partition),
            o.offset.unwrap_or(msg.offset),
        );
        let n = self.consumer.context().went_away();
        let consumed = (msg.topic.as_str(), msg.partition, msg.offset);
        self.recheck.record(into, consumed, origin, id, n);
    }

    /// Marks `msg` finished and stores its partition's offset as far as it moved.
    fn store(&mut self, msg: &Incoming) -> Result<Option<Incoming>, KafkaBackendError> {
        let (next, store) = self.flight.finish(msg);
        if let Some(o) = store {
            // rd_kafka_offset_store takes the processed offset; librdkafka commits offset + 1.
            self.consumer
                .store_offset(&msg.topic, msg.partition, o)
                .map_err(|e| self.cfg.error("storing the consumed offset", e))?;
            let count = self.consumer.context().rebalances();
            self.frontier
                .insert((msg.topic.clone(), msg.partition), (o + 1, count));
        }
        Ok(next)
    }

    /// Notes that `offset` of `part` was read: the first read since the partition was
    /// assigned is where the group's commit put it, the frontier until something is
    /// stored.
    pub(super) fn note_read(&mut self, part: &Part, offset: i64) {
        let count = self.consumer.context().rebalances();
        match self.frontier.get_mut(part) {
            Some((f, c)) if *c == count => *f = (*f).min(offset),
            _ => {
                self.frontier.insert(part.clone(), (offset, count));
            }
        }
    }

    /// Where each of `wanted` may be rewound without moving forward: the wanted offset
    /// or the partition's frontier, whichever is lower. A partition read nothing from
    /// since its last assignment (or not assigned here) has the group's commit as its
    /// frontier, asked of the broker; one whose commit cannot be read now is left out
    /// (tried again later).
    fn no_further_than(&self, wanted: &HashMap<Part, i64>) -> HashMap<Part, i64> {
        let count = self.consumer.context().rebalances();
        let mut out = HashMap::new();
        let mut ask = rdkafka::TopicPartitionList::new();
        for (part, o) in wanted {
            match self.frontier.get(part) {
                Some((f, c))
                    if *c == count && self.consumer.context().is_assigned(&part.0, part.1) =>
                {
                    out.insert(part.clone(), (*o).min(*f));
                }
                _ => {
                    ask.add_partition(&part.0, part.1);
                }
            }
        }
        if ask.count() == 0 {
            return out;
        }
        match self.consumer.committed_offsets(ask, Duration::from_secs(5)) {
            Ok(got) => {
                for e in got.elements() {
                    let part = (e.topic().to_string(), e.partition());
                    let Some(o) = wanted.get(&part) else { continue };
                    let floor = match e.offset() {
                        Offset::Offset(c) => Some(c),
                        // No commit (a broker restored from before the first): the
                        // partition's first offset.
                        _ => (self.consumer)
                            .fetch_watermarks(&part.0, part.1, Duration::from_secs(5))
                            .ok()
                            .map(|(low, _)| low),
                    };
                    if let Some(f) = floor {
                        out.insert(part, (*o).min(f));
                    }
                }
            }
            Err(e) => tracing::warn!(
                "reading the group's commits of {:?} failed ({e}); rewinding them later",
                wanted.keys().collect::<Vec<_>>()
            ),
        }
        out
    }

    /// Resumes what was paused while the flight was full, and what is assigned now,
    /// except the partitions held back by a stalled DLQ.
    pub(super) fn resume(&self, held: &TopicPartitionList) -> Result<(), KafkaBackendError> {
        let now_held = self
            .consumer
            .assignment()
            .map_err(|e| self.cfg.error("reading the assignment", e))?;
        // (A pause outlives a rebalance in librdkafka: what was held before is resumed
        // too, or a partition lost and assigned back meanwhile would stay paused.)
        let mut resume = TopicPartitionList::new();
        for e in held.elements().iter().chain(now_held.elements().iter()) {
            let key = (e.topic().to_string(), e.partition());
            if !self.holds_back(&key) && resume.find_partition(&key.0, key.1).is_none() {
                resume.add_partition(e.topic(), e.partition());
            }
        }
        // A partition not assigned any more cannot be resumed; the others must be, or
        // they would stay paused for good.
        self.consumer
            .resume(&resume)
            .map_err(|e| self.cfg.error("resuming after processing", e))
    }

    /// Tries each stalled dead letter again; a delivered one is stored and its
    /// partition resumed from the next message. Returns the messages to start (each
    /// the next with a delivered one's key).
    pub(super) async fn retry_stalled(&mut self) -> Result<Vec<Incoming>, KafkaBackendError> {
        let mut start = Vec::new();
        let keys: Vec<Part> = self.stalled.keys().cloned().collect();
        for key in keys {
            let Some(s) = self.stalled.get(&key) else {
                continue;
            };
            let outcome = self
                .router
                .deliver(s.letter.clone(), s.into.as_deref())
                .await;
            if !outcome.committable() {
                continue;
            }
            let Some(s) = self.stalled.remove(&key) else {
                continue;
            };
            self.stats.count(&outcome);
            let now = chrono::Utc::now().timestamp_millis();
            let metrics = &self.consumer.context().metrics;
            metrics.record(&s.msg.topic, &outcome, Duration::ZERO, now);
            let (t, p, o) = (s.msg.topic.clone(), s.msg.partition, s.msg.offset);
            self.remember(&s.msg, &outcome);
            if !assigned(self.consumer, &t, p) {
                self.flight.forget(&key);
                start.extend(self.flight.finish(&s.msg).0);
                continue;
            }
            start.extend(self.store(&s.msg)?);
            // Messages fetched after the stall were skipped: read on from the next one
            // (those already in flight are held and not taken twice).
            if self.send_back(&key, o + 1) {
                pause(self.cfg, self.consumer, &t, p, false)?;
            }
            let to = match &s.into {
                Some(t) => format!("retry topic '{t}'"),
                None => format!("DLQ {}", self.router.sink().describe()),
            };
            tracing::warn!("{to} took the letter of {t}:{p}:{o}; partition resumed");
        }
        Ok(start)
    }

    /// After a broker went away: looks in the DLQ and the retry topics for every letter
    /// written since the last look, and sends each consumed partition with a missing
    /// one back to it (see [`super::recheck`]). A topic that cannot be read yet is tried
    /// again later.
    pub(super) async fn recheck_written(&mut self) -> Result<(), KafkaBackendError> {
        let went_away = self.consumer.context().went_away();
        let mut r = std::mem::take(&mut self.recheck);
        let c = self.cfg.clone();
        let (r, res) = tokio::task::spawn_blocking(move || {
            let res = r.check(&c, went_away);
            (r, res)
        })
        .await
        .map_err(|e| KafkaBackendError::Task(e.to_string()))?;
        self.recheck = r;
        let lost = match res {
            Ok(lost) => lost,
            Err(e) => {
                tracing::warn!(
                    "a broker went away; the DLQ cannot be checked yet ({e}); trying again"
                );
                return Ok(());
            }
        };
        let wanted: HashMap<Part, i64> = (lost.iter())
            .map(|(key, o)| {
                let to = self.rewinds.get(key).map_or(*o, |r| r.to.min(*o));
                (key.clone(), to)
            })
            .collect();
        let targets = self.no_further_than(&wanted);
        for ((t, p), o) in &lost {
            let key = (t.clone(), *p);
            let Some(to) = targets.get(&key).copied() else {
                continue;
            };
            tracing::warn!(
                "the broker lost the dead letter of {t}:{p}:{o} after acknowledging it (restored from an older state?); reading {t}:{p} again from offset {to}"
            );
            self.drop_partition(&key);
            self.rewinds.insert(key, Rewind { to, sought: None });
        }
        // Those whose commit could not be read are left as they are, for the next check.
        let later: HashMap<Part, i64> = (lost.iter())
            .filter(|(key, _)| !targets.contains_key(*key))
            .map(|(key, o)| (key.clone(), *o))
            .collect();
        if !later.is_empty() {
            self.recheck.retry(later);
        }
        if crate::engine::write::fault::dropped("rewind") {
            return Ok(());
        }
        self.seek_back(&targets, Some(lost));
        Ok(())
    }

    /// Rewinds `targets` (see [`rewind`]): marks the assigned ones sought at this
    /// rebalance count and sets their frontier; on failure, `lost` (when given) is
    /// kept for the next check.
    fn seek_back(&mut self, targets: &HashMap<Part, i64>, lost: Option<HashMap<Part, i64>>) {
        let ctx = self.consumer.context();
        let count = ctx.rebalances();
        match rewind(self.cfg, self.consumer, targets) {
            Ok(()) => {
                for (key, to) in targets {
                    if ctx.is_assigned(&key.0, key.1) {
                        if let Some(r) = self.rewinds.get_mut(key) {
                            r.sought = Some(count);
                        }
                        self.frontier.insert(key.clone(), (*to, count));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(
                    "rewinding to dead letters the broker lost failed ({e}); trying again"
                );
                if let Some(lost) = lost {
                    self.recheck.retry(lost);
                }
            }
        }
    }

    /// True while a rewind has not been read from.
    pub(super) fn rewinding(&self) -> bool {
        !self.rewinds.is_empty()
    }

    /// Seeks again each rewind whose partition is assigned now and was not sought
    /// since the last rebalance: the group may have put it back at its commit, which
    /// refused the rewind (a partition caught up would never read on past it).
    pub(super) fn reapply_rewinds(&mut self) {
        let ctx = self.consumer.context();
        let count = ctx.rebalances();
        let due: HashMap<Part, i64> = (self.rewinds.iter())
            .filter(|(p, r)| r.sought != Some(count) && ctx.is_assigned(&p.0, p.1))
            .map(|(p, r)| (p.clone(), r.to))
            .collect();
        if due.is_empty() {
            return;
        }
        let targets = self.no_further_than(&due);
        for ((t, p), was) in &due {
            let Some(to) = targets.get(&(t.clone(), *p)) else {
                continue;
            };
            tracing::warn!(
                "{t}:{p} is assigned and its rewind to {was} has not been read from (lost in a rebalance, or its commit refused); rewinding it again to {to}"
            );
            if let Some(r) = self.rewinds.get_mut(&(t.clone(), *p)) {
                r.to = *to;
            }
        }
        self.seek_back(&targets, None);
    }

    /// Whether the message at `offset` of `part` is to be dropped: the partition was
    /// rewound to a lost letter's message and reads on past it, because a rebalance
    /// or a refused commit lost the rewind. It is marked to be sought again (by
    /// [`Self::reapply_rewinds`]); what is dropped meanwhile is read again from there.
    /// A read at or before the rewound offset ends the rewind.
    pub(super) fn past_rewind(&mut self, part: &Part, offset: i64) -> bool {
        let Some(r) = self.rewinds.get_mut(part) else {
            return false;
        };
        if offset <= r.to {
            self.rewinds.remove(part);
            return false;
        }
        if r.sought.take().is_some() {
            tracing::warn!(
                "{}:{} reads on at offset {offset}, past its rewind to {}; dropped until it is sought back",
                part.0,
                part.1,
                r.to
            );
        }
        true
    }
}
