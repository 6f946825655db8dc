//! The router's guard against a broker that comes back having forgotten dead letters it
//! had acknowledged: a broker restored from an older state (an unclean leader election,
//! a restore from backup, or a server that keeps its data in periodic snapshots and is
//! killed between two of them, as the test suite's noida-db is). Such a broker can also
//! have forgotten — or been told again, by a commit librdkafka retries after the
//! reconnect — the router's committed offsets, so the offsets alone cannot say what was
//! lost.
//!
//! Each letter the router writes to the DLQ or to a retry topic on that broker is
//! remembered by where it was written, where its message was consumed and where that
//! message was first consumed (56 bytes; the newest [`KEPT`]) until it has been seen
//! after a loss of a broker that surely came after its acknowledgement (one check
//! later than the first loss after it: the loss is counted only when the consumer is
//! polled, which can come after a letter acknowledged by the restarted broker). A
//! rewind never moves a partition forward ([`super::route_state`]). When librdkafka reports a lost connection (all brokers
//! down, or a broker unreachable), the router reads each topic written to from the
//! oldest remembered letter before it takes its next message. A letter that is missing
//! sends the partition its message was consumed from back to that message: it is
//! sought to, and its offset committed again, lower, so the message is processed and
//! written again. The price is duplicates: the messages after it are processed again
//! too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers as _, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaBackendError, KafkaConfig, Quiet};
use crate::engine::LetterId;
use crate::engine::route::metrics::RouterMetrics;

/// How many written dead letters are remembered for a check after a reconnect; older
/// ones are forgotten (with one warning per run).
pub const KEPT: usize = 100_000;

/// The router consumer's librdkafka context: [`Quiet`]'s logging, plus a count of the
/// times librdkafka said a broker went away.
#[derive(Debug, Clone, Default)]
pub struct RouterContext {
    went_away: Arc<AtomicU64>,
    /// Where the router's figures go (assignment, lag, brokers down).
    pub metrics: Arc<RouterMetrics>,
    /// The partitions assigned after the last rebalance, kept here so that a check per
    /// message is not a round trip to librdkafka's main thread.
    assignment: Arc<std::sync::Mutex<Vec<(String, i32)>>>,
    /// How many rebalances this member has seen (a seek before the last one may be lost).
    rebalances: Arc<AtomicU64>,
}

impl RouterContext {
    /// A context whose figures go to `metrics`.
    pub fn new(metrics: Arc<RouterMetrics>) -> Self {
        RouterContext {
            went_away: Arc::default(),
            metrics,
            assignment: Arc::default(),
            rebalances: Arc::default(),
        }
    }

    /// How many rebalances this member has seen so far.
    pub fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::SeqCst)
    }

    /// Whether `topic`/`partition` was assigned to this member at the last rebalance.
    pub fn is_assigned(&self, topic: &str, partition: i32) -> bool {
        (self.assignment.lock())
            .map(|a| a.iter().any(|(t, p)| *p == partition && t == topic))
            .unwrap_or(false)
    }

    /// How many times a broker was reported gone so far.
    pub fn went_away(&self) -> u64 {
        self.went_away.load(Ordering::SeqCst)
    }
}

impl ClientContext for RouterContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        Quiet.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = match &error {
            KafkaError::Global(c) => Some(*c),
            e => e.rdkafka_error_code(),
        };
        if matches!(
            code,
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
        ) {
            self.went_away.fetch_add(1, Ordering::SeqCst);
        }
        if code == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.metrics.set_brokers_down(true);
        }
        Quiet.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let up = statistics.brokers.values().any(|b| b.state == "UP");
        self.metrics.set_brokers_down(!up);
        let mut lag = std::collections::BTreeMap::new();
        for (t, topic) in &statistics.topics {
            for (p, part) in &topic.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    lag.insert((t.clone(), *p), part.consumer_lag);
                }
            }
        }
        self.metrics.set_lag(lag);
    }
}

impl ConsumerContext for RouterContext {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        let now: Vec<(String, i32)> = consumer.assignment().map_or_else(
            |_| Vec::new(),
            |a| {
                (a.elements().iter())
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect()
            },
        );
        self.metrics.set_assigned(now.len());
        if let Ok(mut a) = self.assignment.lock() {
            *a = now;
        }
        self.rebalances.fetch_add(1, Ordering::SeqCst);
    }
}

/// The router's consumer.
pub type RouteConsumer = StreamConsumer<RouterContext>;

/// Coordinates of a record: topic (index into [`Recheck::topics`]), partition, offset.
type Coords = (u32, i32, i64);

/// One letter written (to the DLQ or a retry topic) and not yet seen after a reconnect.
#[derive(Debug, Clone, Copy)]
struct Written {
    /// Where it was written: topic index, partition, offset.
    into: Coords,
    /// The message it came from, where the router consumed it (rewound to when lost).
    consumed: Coords,
    /// The message's first consumption, as the letter's `kafka_dlt-original-*`
    /// headers say (found by them in `into`).
    origin: Coords,
    /// The went-away count when the router took its acknowledgement: only a check
    /// after a later loss of a broker proves the letter outlived it.
    acked_at: u64,
}

/// The letters to look for after a broker went away, and when to look.
#[derive(Debug, Default)]
pub struct Recheck {
    topics: Vec<String>,
    written: VecDeque<Written>,
    /// The went-away count the last complete check covered.
    checked: u64,
    forgot_warned: bool,
    /// Lost letters whose partitions could not be rewound yet.
    unrewound: HashMap<(String, i32), i64>,
}

/// A record's coordinates by topic name.
pub type At<'a> = (&'a str, i32, i64);

impl Recheck {
    /// Remembers the letter written to `into_topic` as `id` for the message consumed at
    /// `consumed` (first consumed at `origin`), acknowledged when the went-away count
    /// was `went_away`. MongoDB ids are not remembered: that DLQ is not on the broker.
    pub fn record(
        &mut self,
        into_topic: &str,
        consumed: At<'_>,
        origin: At<'_>,
        id: &LetterId,
        went_away: u64,
    ) {
        let LetterId::Kafka { partition, offset } = *id else {
            return;
        };
        if self.written.len() >= KEPT {
            self.written.pop_front();
            if !self.forgot_warned {
                self.forgot_warned = true;
                tracing::warn!(
                    "more than {KEPT} dead letters written since a broker last went away; the oldest are no longer checked after a reconnect"
                );
            }
        }
        let w = Written {
            into: (self.intern(into_topic), partition, offset),
            consumed: (self.intern(consumed.0), consumed.1, consumed.2),
            origin: (self.intern(origin.0), origin.1, origin.2),
            acked_at: went_away,
        };
        self.written.push_back(w);
    }

    fn intern(&mut self, topic: &str) -> u32 {
        match self.topics.iter().position(|t| t == topic) {
            Some(i) => i as u32,
            None => {
                self.topics.push(topic.to_string());
                (self.topics.len() - 1) as u32
            }
        }
    }

    /// Letters waiting for a check.
    pub fn len(&self) -> usize {
        self.written.len()
    }

    /// True when nothing waits for a check.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// True when a broker went away since the last complete check.
    pub fn due(&self, ctx: &RouterContext) -> bool {
        ctx.went_away() != self.checked || !self.unrewound.is_empty()
    }

    /// Keeps `lost` for the next check, whose result will include it.
    pub fn retry(&mut self, lost: HashMap<(String, i32), i64>) {
        self.unrewound = lost;
    }

    /// Looks for every remembered letter where it was written; returns, per consumed
    /// partition, the lowest offset whose letter is missing. Found letters
    /// acknowledged before the went-away count reached `went_away` are forgotten. An
    /// error (the broker still away) leaves everything as it was, to be tried again.
    pub fn check(
        &mut self,
        cfg: &KafkaConfig,
        went_away: u64,
    ) -> Result<HashMap<(String, i32), i64>, KafkaBackendError> {
        // Per topic written to: the origins to find, and where to start reading.
        let mut wanted: HashMap<u32, HashSet<Coords>> = HashMap::new();
        let mut from: HashMap<(u32, i32), i64> = HashMap::new();
        for w in &self.written {
            wanted.entry(w.into.0).or_default().insert(w.origin);
            let f = from.entry((w.into.0, w.into.1)).or_insert(w.into.2);
            *f = (*f).min(w.into.2);
        }
        let mut parts: Vec<((u32, i32), i64)> = from.into_iter().collect();
        parts.sort_unstable();
        for ((t, p), start) in parts {
            let Some(want) = wanted.get_mut(&t).filter(|w| !w.is_empty()) else {
                continue;
            };
            let topics = &self.topics;
            cfg.scan_from(&topics[t as usize], p, start, |msg| {
                if let Some(s) = source_of(msg.headers())
                    && let Some(i) = topics.iter().position(|t| *t == s.0)
                {
                    want.remove(&(i as u32, s.1, s.2));
                }
                !want.is_empty()
            })?;
        }
        let missing = |w: &Written| wanted.get(&w.into.0).is_some_and(|s| s.contains(&w.origin));
        let mut lost = std::mem::take(&mut self.unrewound);
        for w in self.written.iter().filter(|w| missing(w)) {
            let key = (self.topics[w.consumed.0 as usize].clone(), w.consumed.1);
            let o = lost.entry(key).or_insert(w.consumed.2);
            *o = (*o).min(w.consumed.2);
        }
        // A found letter outlived this loss of a broker only if it was acknowledged
        // before the loss. The went-away count moves only when the consumer is polled,
        // so a letter acknowledged just after a restart can carry a count from before
        // it; only a count below the previous check's surely came before this loss.
        // The others wait for the next check, and the missing ones are recorded again
        // when rewritten.
        let before = self.checked;
        self.written.retain(|w| w.acked_at >= before && !missing(w));
        self.checked = went_away;
        Ok(lost)
    }
}

/// The source coordinates morgue's router wrote last into a letter's headers.
fn source_of(headers: Option<&rdkafka::message::BorrowedHeaders>) -> Option<(String, i32, i64)> {
    let hs = headers?;
    let (mut topic, mut partition, mut offset) = (None, None, None);
    for h in hs.iter() {
        match (h.key, h.value) {
            ("kafka_dlt-original-topic", Some(v)) => {
                topic = std::str::from_utf8(v).ok().map(str::to_string)
            }
            ("kafka_dlt-original-partition", Some(v)) => {
                partition = <[u8; 4]>::try_from(v).ok().map(i32::from_be_bytes)
            }
            ("kafka_dlt-original-offset", Some(v)) => {
                offset = <[u8; 8]>::try_from(v).ok().map(i64::from_be_bytes)
            }
            _ => {}
        }
    }
    Some((topic?, partition?, offset?))
}

/// Sends each source partition of `lost` back to its lowest lost offset: seeks there
/// and stores that offset when it is assigned, and commits it (lower than what may
/// have been committed since), so whoever reads the partition next starts there. The
/// commit can be refused (a member that lost its group across the reconnect commits
/// with no generation): the router loop keeps each rewind until the partition reads
/// from there, and rewinds again when the partition is assigned after a rebalance or
/// reads on past it.
pub fn rewind(
    cfg: &KafkaConfig,
    consumer: &RouteConsumer,
    lost: &HashMap<(String, i32), i64>,
) -> Result<(), KafkaBackendError> {
    if lost.is_empty() {
        return Ok(());
    }
    let assignment = consumer
        .assignment()
        .map_err(|e| cfg.error("reading the assignment", e))?;
    let mut tpl = TopicPartitionList::new();
    for ((t, p), o) in lost {
        let mut one = TopicPartitionList::new();
        one.add_partition_offset(t, *p, Offset::Offset(*o))
            .map_err(|e| cfg.error("rewinding a partition", e))?;
        if assignment.find_partition(t, *p).is_none() {
            tracing::warn!(
                "{t}:{p} is not assigned to this router now (its group is rejoining?); the rewind to {o} applies when it is"
            );
        } else {
            consumer
                .seek(t, *p, Offset::Offset(*o), std::time::Duration::from_secs(5))
                .map_err(|e| cfg.error(format!("seeking {t}:{p} back to {o}"), e))?;
            consumer
                .store_offsets(&one)
                .map_err(|e| cfg.error(format!("storing offset {o} of {t}:{p}"), e))?;
        }
        tpl.add_partition_offset(t, *p, Offset::Offset(*o))
            .map_err(|e| cfg.error("rewinding a partition", e))?;
    }
    consumer
        .commit(&tpl, CommitMode::Async)
        .map_err(|e| cfg.error("committing the rewound offsets", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kafka_letters_are_remembered_and_the_oldest_go_first() {
        let mut r = Recheck::default();
        r.record(
            "dlq",
            ("src", 0, 5),
            ("src", 0, 5),
            &LetterId::Mongo("x".into()),
            0,
        );
        assert!(r.is_empty());
        for i in 0..(KEPT as i64 + 3) {
            let id = LetterId::Kafka {
                partition: 0,
                offset: i,
            };
            r.record("dlq", ("src-retry-0", 1, i), ("src", 2, i), &id, 0);
        }
        assert_eq!(r.len(), KEPT);
        assert_eq!(r.written.front().map(|w| w.consumed.2), Some(3));
        assert_eq!(r.topics, ["dlq", "src-retry-0", "src"]);
    }

    #[test]
    fn a_check_is_due_after_each_reported_loss_of_a_broker() {
        let ctx = RouterContext::default();
        let r = Recheck::default();
        assert!(!r.due(&ctx));
        ctx.error(
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        assert!(r.due(&ctx));
        ctx.error(KafkaError::Global(RDKafkaErrorCode::MessageTimedOut), "x");
        assert_eq!(ctx.went_away(), 1);
    }
}
