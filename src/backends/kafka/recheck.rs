//! The router's guard against a broker that comes back having forgotten dead letters it
//! had acknowledged: a broker restored from an older state (an unclean leader election,
//! a restore from backup, or a server that keeps its data in periodic snapshots and is
//! killed between two of them, as the test suite's noida-db is). Such a broker can also
//! have forgotten — or been told again, by a commit librdkafka retries after the
//! reconnect — the router's committed offsets, so the offsets alone cannot say what was
//! lost.
//!
//! Each dead letter the router writes is remembered by its source and DLQ coordinates
//! (40 bytes; the newest [`KEPT`]) until it has been seen in the DLQ after a broker
//! went away. When librdkafka reports a lost connection (all brokers down, or a broker
//! unreachable), the router reads the DLQ from the oldest remembered letter before it
//! takes its next message. A letter that is missing sends its source partition back to
//! that message: it is sought to, and its offset committed again, lower, so the message
//! is processed and dead-lettered again. The price is duplicates: the messages after it
//! are processed again too.

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
}

impl RouterContext {
    /// A context whose figures go to `metrics`.
    pub fn new(metrics: Arc<RouterMetrics>) -> Self {
        RouterContext {
            went_away: Arc::default(),
            metrics,
        }
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
        let n = consumer.assignment().map_or(0, |a| a.count());
        self.metrics.set_assigned(n);
    }
}

/// The router's consumer.
pub type RouteConsumer = StreamConsumer<RouterContext>;

/// One dead letter written and not yet seen after a reconnect.
#[derive(Debug, Clone, Copy)]
struct Written {
    /// Index into [`Recheck::topics`].
    topic: u32,
    partition: i32,
    offset: i64,
    dlq_partition: i32,
    dlq_offset: i64,
    /// The went-away count when the broker acknowledged it: only a check after a later
    /// loss of a broker proves the letter outlived it.
    acked_at: u64,
}

/// The dead letters to look for after a broker went away, and when to look.
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

impl Recheck {
    /// Remembers the dead letter of `topic:partition:offset`, acknowledged as `id` when
    /// the went-away count was `went_away` (MongoDB ids are not remembered: that DLQ is
    /// not on the broker).
    pub fn record(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        id: &LetterId,
        went_away: u64,
    ) {
        let LetterId::Kafka {
            partition: dlq_partition,
            offset: dlq_offset,
        } = *id
        else {
            return;
        };
        let t = match self.topics.iter().position(|t| t == topic) {
            Some(i) => i,
            None => {
                self.topics.push(topic.to_string());
                self.topics.len() - 1
            }
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
        self.written.push_back(Written {
            topic: t as u32,
            partition,
            offset,
            dlq_partition,
            dlq_offset,
            acked_at: went_away,
        });
    }

    /// Dead letters waiting for a check.
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

    /// Looks for every remembered letter in `dlq`; returns, per source partition, the
    /// lowest offset whose letter is missing. Found letters acknowledged before the
    /// went-away count reached `went_away` are forgotten. An error (the broker still
    /// away) leaves everything as it was, to be tried again.
    pub fn check(
        &mut self,
        cfg: &KafkaConfig,
        dlq: &str,
        went_away: u64,
    ) -> Result<HashMap<(String, i32), i64>, KafkaBackendError> {
        let mut wanted: HashSet<(u32, i32, i64)> = HashSet::new();
        let mut from: HashMap<i32, i64> = HashMap::new();
        for w in &self.written {
            wanted.insert((w.topic, w.partition, w.offset));
            let f = from.entry(w.dlq_partition).or_insert(w.dlq_offset);
            *f = (*f).min(w.dlq_offset);
        }
        let mut parts: Vec<(i32, i64)> = from.into_iter().collect();
        parts.sort_unstable();
        for (p, start) in parts {
            if wanted.is_empty() {
                break;
            }
            cfg.scan_from(dlq, p, start, |msg| {
                if let Some(s) = source_of(msg.headers())
                    && let Some(t) = self.topics.iter().position(|t| *t == s.0)
                {
                    wanted.remove(&(t as u32, s.1, s.2));
                }
                !wanted.is_empty()
            })?;
        }
        let mut lost = std::mem::take(&mut self.unrewound);
        for w in &self.written {
            if wanted.contains(&(w.topic, w.partition, w.offset)) {
                let key = (self.topics[w.topic as usize].clone(), w.partition);
                let o = lost.entry(key).or_insert(w.offset);
                *o = (*o).min(w.offset);
            }
        }
        // Found letters acknowledged before the broker went away outlived it; the others
        // wait for the next check, and the missing ones are recorded again when rewritten.
        self.written.retain(|w| {
            w.acked_at >= went_away && !wanted.contains(&(w.topic, w.partition, w.offset))
        });
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
/// and stores that offset when it is still assigned, and commits it (lower than what
/// may have been committed since; librdkafka retries the commit until the broker
/// answers), so whoever reads the partition next starts there.
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
        tracing::warn!(
            "the broker lost the dead letter of {t}:{p}:{o} after acknowledging it (restored from an older state?); reading {t}:{p} again from offset {o}"
        );
        let mut one = TopicPartitionList::new();
        one.add_partition_offset(t, *p, Offset::Offset(*o))
            .map_err(|e| cfg.error("rewinding a partition", e))?;
        if assignment.find_partition(t, *p).is_some() {
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
        r.record("src", 0, 5, &LetterId::Mongo("x".into()), 0);
        assert!(r.is_empty());
        for i in 0..(KEPT as i64 + 3) {
            r.record(
                "src",
                1,
                i,
                &LetterId::Kafka {
                    partition: 0,
                    offset: i,
                },
                0,
            );
        }
        assert_eq!(r.len(), KEPT);
        assert_eq!(r.written.front().map(|w| w.offset), Some(3));
        assert_eq!(r.topics, vec!["src".to_string()]);
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
