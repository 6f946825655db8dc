//! The ledger view's reader: catching up with the ledger topic from the latest
//! checkpoint (see `checkpoint_view`), record by record, up to the end its watermarks
//! give, and starting again from a checkpoint when the ledger is cut under it. The
//! ledger's partition is assigned to the reader while it reads (and after a read that
//! got nothing, until the next one: see `View::assign`).

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::ledger_codec::{Decoded, decode};
use super::ledger_view::{CUT_TRIES, RECENT, View, WHOLE_RECORDS};
use super::{Browser, KafkaBackendError, KafkaConfig, METADATA_TIMEOUT, Quiet};
use crate::engine::model::ledger::{LedgerEntry, LedgerError};
use crate::engine::model::ledger_fold::Fold;

/// Whether a consumer error only says that brokers are (for now) out of reach.
fn transient(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
    )
}

/// The session's ledger reader: read committed (records of older morgue versions were
/// written in transactions), short fetch waits, and a small prefetch queue (the ledger
/// can hold millions of entries; what matters is the view).
fn tail_consumer(cfg: &KafkaConfig) -> Result<Browser, KafkaBackendError> {
    cfg.client_config(&[
        ("group.id", "morgue-ledger"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        // A fetch below the log's start is an error, never a silent jump past records
        // this view has not folded (a checkpoint removed them: read it instead).
        ("auto.offset.reset", "error"),
        ("enable.partition.eof", "true"),
        ("isolation.level", "read_committed"),
        ("fetch.wait.max.ms", "10"),
        ("queued.max.messages.kbytes", "4096"),
        // A full queue otherwise pauses fetching for a second (librdkafka's default).
        ("fetch.queue.backoff.ms", "5"),
        ("fetch.max.bytes", "4194304"),
        (
            "receive.message.max.bytes",
            super::checkpoint_view::RECEIVE_MAX,
        ),
    ])
    .create_with_context(Quiet)
    .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))
}

impl View {
    /// Reads the ledger topic from where the view stopped up to its end now.
    pub fn catch_up(&mut self) -> Result<(), LedgerError> {
        let (cfg, topic) = (self.cfg.clone(), self.topic.clone());
        if self.consumer.is_none() {
            self.consumer = Some(tail_consumer(&cfg).map_err(LedgerError::from)?);
        }
        for _ in 0..CUT_TRIES {
            let Some(c) = self.consumer.take() else {
                return Ok(());
            };
            let hi = self.start(&c);
            self.consumer = Some(c);
            let Some(hi) = hi? else {
                return Ok(());
            };
            if self.next < hi && !self.cut {
                self.assign()?;
                let from = self.next;
                let read = self.read_to(hi);
                let taken = if self.next > from {
                    self.unassign()
                } else {
                    Ok(())
                };
                read?;
                taken?;
            }
            if !self.cut {
                return Ok(());
            }
            self.reset();
        }
        Err(LedgerError::Other(format!(
            "ledger '{topic}': its records before offset {} were removed, and no complete \
             checkpoint in '{}' covers them: the letters' states cannot be known",
            self.next.max(1),
            super::checkpoint::topic_of(&topic)
        )))
    }

    /// Loads the latest checkpoint, the first time (and after a cut); the ledger's end
    /// now, or None while it does not exist. A view behind the ledger's start is
    /// reset, to start again.
    fn start(&mut self, c: &Browser) -> Result<Option<i64>, LedgerError> {
        let topic = self.topic.clone();
        if !self.started {
            match self.cfg.partitions(c, &topic) {
                Ok(_) => {}
                Err(KafkaBackendError::TopicNotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            // Read on from the checkpoint's `upto` (0: none).
            self.next = self.bootstrap()?;
            self.started = true;
        }
        let (lo, hi) = c
            .fetch_watermarks(&topic, 0, METADATA_TIMEOUT)
            .map_err(|e| LedgerError::Unreachable(format!("reading ledger '{topic}': {e}")))?;
        if hi < self.next {
            return Err(LedgerError::Other(format!(
                "ledger '{topic}' ends at offset {hi}, before the checkpoint's {} in '{}': \
                 the ledger was deleted and made again; delete that checkpoint topic too",
                self.next,
                super::checkpoint::topic_of(&topic)
            )));
        }
        if lo > self.next {
            // Cut by a checkpoint past what this view has read: start from one again.
            tracing::debug!("ledger '{topic}' starts at {lo}, read up to {}", self.next);
            self.cut = true;
            return Ok(Some(self.next));
        }
        Ok(Some(hi))
    }

    /// Reads the ledger up to `hi` (or until it is found cut).
    fn read_to(&mut self, hi: i64) -> Result<(), LedgerError> {
        let topic = self.topic.clone();
        let deadline = Instant::now() + METADATA_TIMEOUT;
        while self.next < hi && !self.cut {
            if Instant::now() > deadline {
                return Err(LedgerError::Unreachable(format!(
                    "reading ledger '{topic}': stuck at offset {} of {hi} (an open transaction?)",
                    self.next
                )));
            }
            let Some(c) = self.consumer.take() else {
                return Ok(());
            };
            let polled = self.read_one(&c, hi);
            self.consumer = Some(c);
            polled?;
        }
        Ok(())
    }

    /// Assigns the ledger's partition to the tail reader from where the view stopped.
    ///
    /// Decision: the tail reader fetches only while a catch-up reads. Left assigned at
    /// the ledger's end, it fetches again and again for nothing: a broker that answers
    /// an empty fetch at once instead of waiting `fetch.wait.max.ms` (noida-db) is
    /// asked again at once, about half a core of this process and as much of the
    /// broker's (measured), and a bulk replay catches up several times a window.
    /// Pausing the partition instead stalled the next catch-up for about a second
    /// (librdkafka's resume); an assignment at an offset fetches at once.
    ///
    /// librdkafka aborts the process when a partition is taken away twice before its
    /// fetcher has stopped once (`rd_kafka_assignment_partition_stopped`: seen when an
    /// assignment was replaced, then taken away, with nothing read between). So it is
    /// taken away only after this assignment has read something (its fetcher started,
    /// which librdkafka does only once the previous one has stopped); after a
    /// catch-up that read nothing it stays, and the next catch-up reads on from it.
    fn assign(&mut self) -> Result<(), LedgerError> {
        if self.assigned_at == Some(self.next) {
            return Ok(());
        }
        let Some(c) = self.consumer.as_ref() else {
            return Ok(());
        };
        let topic = &self.topic;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Offset(self.next))
            .map_err(|e| LedgerError::Other(e.to_string()))?;
        c.assign(&tpl)
            .map_err(|e| LedgerError::Other(format!("assigning '{topic}': {e}")))?;
        self.assigned_at = Some(self.next);
        Ok(())
    }

    /// Takes the ledger's partition away from the tail reader (see [`Self::assign`]);
    /// what it fetched and the view has not read is dropped with it.
    fn unassign(&mut self) -> Result<(), LedgerError> {
        let Some(c) = self.consumer.as_ref() else {
            return Ok(());
        };
        self.assigned_at = None;
        c.unassign()
            .map_err(|e| LedgerError::Other(format!("unassigning '{}': {e}", self.topic)))
    }

    /// Forgets what was read, to read from the latest checkpoint again.
    fn reset(&mut self) {
        self.started = false;
        // A reader stopped by the cut fetches nothing more: assigned again from the
        // checkpoint, even at the same offset.
        self.assigned_at = None;
        self.cut = false;
        self.next = 0;
        self.fold = Fold::default();
        self.verdicts.clear();
        self.batches.clear();
        self.recent.clear();
        self.records.clear();
        self.record_cache = None;
        self.parts.clear();
        self.part_starts.clear();
        self.part_cache = None;
        self.base = 0;
        self.since = 0;
    }

    /// Polls the tail reader once and folds what it read.
    fn read_one(&mut self, c: &Browser, hi: i64) -> Result<(), LedgerError> {
        let topic = &self.topic;
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let offset = msg.offset();
                self.next = offset + 1;
                let Some(bytes) = msg.payload() else {
                    return Ok(());
                };
                match decode(bytes) {
                    Ok(Decoded::One(r)) => {
                        // Only the latest entries are kept whole; only they are parsed whole.
                        let whole = (hi - offset <= RECENT as i64)
                            .then(|| serde_json::from_slice::<LedgerEntry>(bytes).ok())
                            .flatten();
                        let applied = self.fold(offset, bytes, &r, whole)?;
                        tracing::trace!("ledger record at {offset}: applied {applied}");
                    }
                    Ok(Decoded::Batch(lean)) => {
                        let whole = hi - offset <= WHOLE_RECORDS;
                        let v = self.fold_record(offset, bytes, &lean, whole)?;
                        tracing::trace!("ledger record at {offset}: applied {v:?}");
                    }
                    Ok(Decoded::Newer(format)) => {
                        if self.newer.is_none_or(|n| n < format) {
                            tracing::warn!(
                                "ledger '{topic}' holds a record of format {format} at offset \
                                 {offset}, written by a newer morgue: it is not folded, and \
                                 this morgue will not write to the ledger"
                            );
                        }
                        self.newer = self.newer.max(Some(format));
                    }
                    Err(e) => {
                        tracing::warn!(
                            "ledger '{topic}' record at offset {offset} is unreadable, skipped: {e}"
                        );
                    }
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {
                // Control records (commit markers of older versions' entries) and aborted
                // entries have no message: the position says how far the reader got.
                let pos = c
                    .position()
                    .ok()
                    .and_then(|p| p.find_partition(topic, 0).and_then(|e| e.offset().to_raw()))
                    .unwrap_or(-1);
                if pos > self.next {
                    self.next = pos;
                }
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset))) => {
                // Records this view had not read yet were removed under it.
                self.cut = true;
            }
            Some(Err(e)) if transient(&e) => {
                // librdkafka reconnects by itself; the catch-up's deadline bounds the wait.
                tracing::debug!("reading ledger '{topic}': {e} (waiting)");
            }
            Some(Err(e)) => {
                return Err(LedgerError::Unreachable(format!(
                    "reading ledger '{topic}': {e}"
                )));
            }
        }
        Ok(())
    }
}
