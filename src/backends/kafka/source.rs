//! A Kafka DLQ topic as a [`DeadLetterSource`]: streams every partition from a start
//! position in batches over a bounded channel, says when it has caught up with what
//! was there at the start, and keeps following new letters when asked. Letters carry
//! the state recorded in the ledger. Nothing joins a group or commits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

use super::ledger::KafkaLedger;
use super::{Browser, KafkaBackendError, KafkaConfig, METADATA_TIMEOUT, letter_from_message};
use crate::engine::model::error::FailureKind;
use crate::engine::model::ledger::LedgerStore as _;
use crate::engine::read::source::{DeadLetterSource, SourceError, SourceEvent, StartAt};
use crate::engine::{DeadLetter, LetterId};

/// Letters per batch sent to the channel.
const BATCH: usize = 512;
/// How long an idle poll waits; bounds the latency of a live letter.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// While nothing arrives, how often the broker is asked for a watermark (of the first
/// partition, from its leader), so that a broker that stops answering (frozen, or a
/// network that drops packets, with the connection left open) is noticed: a probe
/// without an answer and [`SILENT_AFTER`] without a letter or an answer report
/// [`SourceEvent::Silent`], and [`SourceEvent::Answering`] once it answers again. The
/// probe runs on the reading thread, only when a poll brought nothing.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Silence that counts as "not answering".
const SILENT_AFTER: Duration = Duration::from_secs(3);

/// When the broker was last heard from, and whether it was reported silent.
struct Liveness {
    heard: std::time::Instant,
    heard_ms: i64,
    probed: std::time::Instant,
    /// The last probe got no answer (time morgue itself spent blocked, on a busy
    /// screen, is never taken for the broker's silence).
    unanswered: bool,
    silent: bool,
}

impl Liveness {
    fn new() -> Self {
        let now = std::time::Instant::now();
        Liveness {
            heard: now,
            heard_ms: chrono::Utc::now().timestamp_millis(),
            probed: now,
            unanswered: false,
            silent: false,
        }
    }

    fn heard(&mut self) {
        self.heard = std::time::Instant::now();
        self.heard_ms = chrono::Utc::now().timestamp_millis();
        self.unanswered = false;
    }

    /// The event to report now, if the broker fell silent or answers again.
    fn change(&mut self, server: &str) -> Option<SourceEvent> {
        let quiet = self.unanswered && self.heard.elapsed() >= SILENT_AFTER;
        if quiet == self.silent {
            return None;
        }
        self.silent = quiet;
        let server = server.to_string();
        Some(if quiet {
            SourceEvent::Silent {
                server,
                since_ms: self.heard_ms,
            }
        } else {
            SourceEvent::Answering { server }
        })
    }
}

/// One Kafka DLQ topic, read by hand-assigned partitions.
#[derive(Clone)]
pub struct KafkaSource {
    cfg: KafkaConfig,
    topic: String,
    ledger: Arc<KafkaLedger>,
    /// The client that checked the topic at [`KafkaSource::open`], connected already;
    /// the first read takes it instead of setting up another.
    spare: Arc<std::sync::Mutex<Option<Browser>>>,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("brokers", &self.cfg.brokers)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// A source for `topic` with a ledger reader of its own; nothing is contacted yet.
    pub fn new(cfg: KafkaConfig, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        let ledger = Arc::new(KafkaLedger::new(cfg.clone(), &topic));
        Self::with_ledger(cfg, topic, ledger)
    }

    /// A source for `topic` sharing `ledger`'s tailing reader (one per session).
    pub fn with_ledger(
        cfg: KafkaConfig,
        topic: impl Into<String>,
        ledger: Arc<KafkaLedger>,
    ) -> Self {
        KafkaSource {
            cfg,
            topic: topic.into(),
            ledger,
            spare: Arc::default(),
        }
    }

    /// A source for `topic` after checking that it exists (a clear error when not);
    /// the client that checked is kept for the first read.
    pub async fn open(
        cfg: KafkaConfig,
        topic: &str,
        ledger: Arc<KafkaLedger>,
    ) -> Result<Self, KafkaBackendError> {
        let me = Self::with_ledger(cfg, topic, ledger);
        let m = me.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let c = m.cfg.browse_consumer()?;
            m.cfg.partitions(&c, &m.topic)?;
            Ok::<_, KafkaBackendError>(c)
        })
        .await
        .map_err(|e| KafkaBackendError::Task(e.to_string()))??;
        if let Ok(mut spare) = me.spare.lock() {
            *spare = Some(checked);
        }
        Ok(me)
    }

    /// A background task that failed (a panic or cancellation).
    fn task(e: tokio::task::JoinError) -> SourceError {
        SourceError::from(KafkaBackendError::Task(e.to_string()))
    }

    /// A browse consumer: the spare one from `open`, or a new one.
    fn consumer(&self) -> Result<Browser, KafkaBackendError> {
        match self.spare.lock().ok().and_then(|mut s| s.take()) {
            Some(c) => Ok(c),
            None => self.cfg.browse_consumer(),
        }
    }

    /// Reads in this thread until caught up (and beyond when `follow`), sending batches.
    fn run(
        &self,
        from: StartAt,
        follow: bool,
        ledger: &KafkaLedger,
        tx: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), KafkaBackendError> {
        let consumer = self.consumer()?;
        let result = self.read(&consumer, from, follow, ledger, tx);
        // Tearing a client down waits for its threads; the reader's caller need not.
        std::thread::spawn(move || drop(consumer));
        result
    }

    fn read(
        &self,
        consumer: &Browser,
        from: StartAt,
        follow: bool,
        ledger: &KafkaLedger,
        tx: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), KafkaBackendError> {
        let marks = self.cfg.watermarks(consumer, &self.topic)?;
        tracing::debug!("'{}': watermarks {marks:?}", self.topic);
        let mut tpl = TopicPartitionList::new();
        for &(p, lo, hi) in &marks {
            let start = match from {
                StartAt::Beginning => Offset::Offset(lo),
                StartAt::End => Offset::Offset(hi),
                StartAt::Offset(o) => Offset::Offset(o.clamp(lo, hi)),
                StartAt::Time(t) => Offset::Offset(t),
            };
            tpl.add_partition_offset(&self.topic, p, start)
                .map_err(|e| self.cfg.error("assigning partitions", e))?;
        }
        if let StartAt::Time(_) = from {
            tpl = consumer
                .offsets_for_times(tpl, METADATA_TIMEOUT)
                .map_err(|e| {
                    self.cfg
                        .error(format!("offsets for a time in '{}'", self.topic), e)
                })?;
        }
        // What counts as caught up: the high watermark of each partition at the start.
        let mut behind: Vec<(i32, i64)> = Vec::new();
        for e in tpl.elements() {
            let hi = marks
                .iter()
                .find(|m| m.0 == e.partition())
                .map_or(0, |m| m.2);
            let start = match e.offset() {
                Offset::Offset(o) => o,
                _ => hi,
            };
            if start < hi {
                behind.push((e.partition(), hi));
            }
        }
        consumer
            .assign(&tpl)
            .map_err(|e| self.cfg.error(format!("assigning '{}'", self.topic), e))?;
        tracing::debug!("'{}': assigned from {from:?}", self.topic);
        let mut delivered = 0u64;
        let mut caught_up = false;
        let mut away = false;
        let mut live = Liveness::new();
        let probe_partition = marks.first().map_or(0, |m| m.0);
        let mut batch: Vec<DeadLetter> = Vec::with_capacity(BATCH);
        loop {
            if !caught_up && behind.is_empty() {
                caught_up = true;
                tracing::debug!("'{}': caught up after {delivered} letters", self.topic);
                if !flush(tx, &mut batch, ledger)
                    || tx
                        .blocking_send(SourceEvent::CaughtUp { delivered })
                        .is_err()
                {
                    return Ok(());
                }
                if !follow {
                    return Ok(());
                }
            }
            let wait = if batch.is_empty() {
                IDLE_POLL
            } else {
                Duration::ZERO
            };
            let mut heard = false;
            match consumer.poll(wait) {
                None => {
                    if !flush(tx, &mut batch, ledger) {
                        return Ok(());
                    }
                }
                Some(Ok(msg)) => {
                    heard = true;
                    let l = letter_from_message(&msg);
                    let (p, o) = (msg.partition(), msg.offset());
                    behind.retain(|&(q, hi)| !(q == p && o + 1 >= hi));
                    // A bounded read takes only what was there when it started: a partition
                    // read to its end is still fetched while others catch up.
                    let late = !follow && marks.iter().any(|m| m.0 == p && o >= m.2);
                    if late {
                        continue;
                    }
                    batch.push(l);
                    delivered += 1;
                    if batch.len() >= BATCH && !flush(tx, &mut batch, ledger) {
                        return Ok(());
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    heard = true;
                    let pos = consumer.position().ok().and_then(|t| {
                        t.find_partition(&self.topic, p)
                            .and_then(|e| e.offset().to_raw())
                    });
                    if let Some(pos) = pos {
                        behind.retain(|&(q, hi)| !(q == p && pos >= hi));
                    }
                }
                Some(Err(e)) => {
                    let err = self.cfg.error(format!("reading '{}'", self.topic), e);
                    // While following, a broker that went away is waited for: the client
                    // reconnects and resumes where it was, losing and repeating nothing.
                    if !(caught_up && err.kind() == FailureKind::Unreachable) {
                        return Err(err);
                    }
                    if !away {
                        away = true;
                        let note =
                            format!("{err}; still following, reading resumes when it is back");
                        if tx.blocking_send(SourceEvent::Notice(note)).is_err() {
                            return Ok(());
                        }
                    }
                    continue;
                }
            }
            if heard {
                live.heard();
            } else if batch.is_empty() && live.probed.elapsed() >= PROBE_EVERY {
                // Nothing came: silence is the broker's only if it does not answer a
                // question either.
                live.probed = std::time::Instant::now();
                match consumer.fetch_watermarks(&self.topic, probe_partition, PROBE_TIMEOUT) {
                    Ok(_) => live.heard(),
                    Err(_) => live.unanswered = true,
                }
            }
            if let Some(ev) = live.change(&self.cfg.brokers)
                && tx.blocking_send(ev).is_err()
            {
                return Ok(());
            }
            if away && heard {
                away = false;
                let note = format!("'{}' is reachable again; following", self.topic);
                if tx.blocking_send(SourceEvent::Notice(note)).is_err() {
                    return Ok(());
                }
            }
        }
    }
}

/// Sends the batch if any, each letter's state set from the ledger; false when the
/// receiver is gone.
fn flush(
    tx: &mpsc::Sender<SourceEvent>,
    batch: &mut Vec<DeadLetter>,
    ledger: &KafkaLedger,
) -> bool {
    if batch.is_empty() {
        return !tx.is_closed();
    }
    let mut out = std::mem::replace(batch, Vec::with_capacity(BATCH));
    if let Err(e) = ledger.apply(&mut out) {
        // A closed channel is seen by the send of the letters just below, which returns false.
        let _ = tx.blocking_send(SourceEvent::Notice(format!(
            "letters shown without their ledger state: {e}"
        )));
    }
    tx.blocking_send(SourceEvent::Letters(out)).is_ok()
}

#[async_trait]
impl DeadLetterSource for KafkaSource {
    fn describe(&self) -> String {
        format!("topic '{}' on {}", self.topic, self.cfg.brokers)
    }

    async fn count(&self) -> Result<u64, SourceError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let c = me.cfg.browse_consumer()?;
            let marks = me.cfg.watermarks(&c, &me.topic);
            std::thread::spawn(move || drop(c));
            let marks = marks?;
            Ok::<_, KafkaBackendError>(
                marks
                    .iter()
                    .map(|m| u64::try_from(m.2 - m.1).unwrap_or(0))
                    .sum(),
            )
        })
        .await
        .map_err(Self::task)?
        .map_err(SourceError::from)
    }

    async fn stream(
        &self,
        from: StartAt,
        follow: bool,
        tx: mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        // Caught up once; letters then take their state from the session's live view.
        self.ledger.catch_up().await?;
        let me = self.clone();
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || me.run(from, follow, &ledger, &tx))
            .await
            .map_err(Self::task)?
            .map_err(SourceError::from)
    }

    async fn ledger(&self) -> Result<crate::engine::model::ledger::LedgerState, SourceError> {
        use crate::engine::model::ledger::LedgerStore;
        Ok(self.ledger.load().await?)
    }

    async fn retention_ms(&self) -> Option<i64> {
        super::overview::topic_retention(&self.cfg, &self.topic).await
    }

    async fn fetch(&self, id: &LetterId) -> Result<DeadLetter, SourceError> {
        let LetterId::Kafka { partition, offset } = *id else {
            return Err(SourceError::new(
                FailureKind::NotFound,
                format!("'{id}' is not a Kafka letter id (PARTITION:OFFSET)"),
            ));
        };
        let me = self.clone();
        let mut l = tokio::task::spawn_blocking(move || me.cfg.fetch(&me.topic, partition, offset))
            .await
            .map_err(Self::task)?
            .map_err(SourceError::from)?;
        let ids = [id.to_string()];
        let sources: Vec<String> = crate::engine::model::ledger::source_key(&l)
            .into_iter()
            .collect();
        let ledger = self.ledger.current(&ids, &sources).await?;
        ledger.apply(&mut l);
        Ok(l)
    }
}
