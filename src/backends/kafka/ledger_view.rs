//! A session's view of a Kafka ledger: one long-lived reader tails the ledger topic
//! and folds its records, in log order, into a [`LedgerState`]. The fold is the
//! ledger's compare-and-set: a record is applied only if it is valid where it stands
//! in the log (its version follows the letter's, its source is not held by a copy),
//! so every reader of the same log reaches the same state, and a writer learns whether
//! its record won by reading up to it. The fold's verdict on recent records is kept
//! (a byte per offset) for writers to look up.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{Browser, KafkaBackendError, KafkaConfig, METADATA_TIMEOUT, Quiet};
use crate::engine::ledger::{LedgerEntry, LedgerError, LedgerState};

/// How many recent offsets keep their verdict (a byte each).
const VERDICTS: usize = 1 << 22;

/// The tailing reader and what it has read.
#[derive(Default)]
pub struct View {
    /// The tail reader, kept from the first catch-up on (even while the ledger topic
    /// does not exist yet: a client costs a connection and ~100 ms to set up and tear down).
    consumer: Option<Browser>,
    /// The ledger's partition is assigned to `consumer`.
    assigned: bool,
    /// The next offset to read.
    pub next: i64,
    /// The letters' state as folded so far.
    pub state: LedgerState,
    /// The fold's verdict on offsets `verdicts_from..`: 0 no record, 1 applied, 2 refused.
    verdicts: VecDeque<u8>,
    verdicts_from: i64,
}

impl Drop for View {
    fn drop(&mut self) {
        // Tearing a client down waits for its threads; a command ending need not.
        if let Some(c) = self.consumer.take() {
            std::thread::spawn(move || drop(c));
        }
    }
}

impl View {
    /// Folds the record at `offset` into the state; true when it was applied.
    fn fold(&mut self, offset: i64, entry: LedgerEntry) -> bool {
        let applied = self.state.accept(entry);
        if self.verdicts.is_empty() {
            self.verdicts_from = offset;
        }
        while self.verdicts_from + (self.verdicts.len() as i64) < offset {
            self.verdicts.push_back(0);
        }
        self.verdicts.push_back(if applied { 1 } else { 2 });
        while self.verdicts.len() > VERDICTS {
            self.verdicts.pop_front();
            self.verdicts_from += 1;
        }
        applied
    }

    /// Whether the record at `offset` was applied (None: not read, or too old to know).
    pub fn verdict(&self, offset: i64) -> Option<bool> {
        let i = usize::try_from(offset - self.verdicts_from).ok()?;
        match self.verdicts.get(i) {
            Some(1) => Some(true),
            Some(2) => Some(false),
            _ => None,
        }
    }
}

/// The session's ledger reader: read committed (records of older morgue versions were
/// written in transactions), short fetch waits, and a small prefetch queue (the ledger
/// can hold millions of entries; what matters is the view).
fn tail_consumer(cfg: &KafkaConfig) -> Result<Browser, KafkaBackendError> {
    cfg.client_config(&[
        ("group.id", "morgue-ledger"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "true"),
        ("isolation.level", "read_committed"),
        ("fetch.wait.max.ms", "10"),
        ("queued.max.messages.kbytes", "4096"),
        ("fetch.max.bytes", "4194304"),
    ])
    .create_with_context(Quiet)
    .map_err(|e| KafkaBackendError::BadProperty(Box::new(e)))
}

/// Reads the ledger topic from where the view stopped up to its end now.
pub fn catch_up(cfg: &KafkaConfig, topic: &str, v: &mut View) -> Result<(), LedgerError> {
    let unreachable = |e: KafkaBackendError| match e {
        KafkaBackendError::Unreachable { .. } => LedgerError::Unreachable(e.to_string()),
        other => LedgerError::Other(other.to_string()),
    };
    if v.consumer.is_none() {
        v.consumer = Some(tail_consumer(cfg).map_err(unreachable)?);
    }
    let Some(c) = v.consumer.as_ref() else {
        return Ok(());
    };
    if !v.assigned {
        match cfg.partitions(c, topic) {
            Ok(_) => {}
            Err(KafkaBackendError::TopicNotFound { .. }) => return Ok(()),
            Err(e) => return Err(unreachable(e)),
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(|e| LedgerError::Other(e.to_string()))?;
        c.assign(&tpl)
            .map_err(|e| LedgerError::Other(format!("assigning '{topic}': {e}")))?;
        v.assigned = true;
    }
    let (_, hi) = c
        .fetch_watermarks(topic, 0, METADATA_TIMEOUT)
        .map_err(|e| LedgerError::Unreachable(format!("reading ledger '{topic}': {e}")))?;
    let deadline = Instant::now() + METADATA_TIMEOUT;
    while v.next < hi {
        if Instant::now() > deadline {
            return Err(LedgerError::Unreachable(format!(
                "reading ledger '{topic}': stuck at offset {} of {hi} (an open transaction?)",
                v.next
            )));
        }
        let Some(c) = v.consumer.as_ref() else {
            return Ok(());
        };
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let offset = msg.offset();
                v.next = offset + 1;
                let Some(bytes) = msg.payload() else { continue };
                match serde_json::from_slice::<LedgerEntry>(bytes) {
                    Ok(e) => {
                        let applied = v.fold(offset, e);
                        tracing::trace!("ledger '{topic}' record at {offset}: applied {applied}");
                    }
                    Err(e) => {
                        tracing::warn!(
                            "ledger '{topic}' entry at offset {offset} is unreadable, skipped: {e}"
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
                if pos > v.next {
                    v.next = pos;
                }
            }
            Some(Err(e)) => {
                return Err(LedgerError::Unreachable(format!(
                    "reading ledger '{topic}': {e}"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ledger::EntryState;

    fn entry(id: &str, version: u64) -> LedgerEntry {
        LedgerEntry {
            id: id.into(),
            state: EntryState::Resolved,
            by: "ann@jump".into(),
            at_ms: 1,
            version,
            session: String::new(),
            source: None,
            force: false,
            pending: None,
            history: Vec::new(),
            edited_value: None,
        }
    }

    #[test]
    fn verdicts_are_kept_per_offset_with_gaps_for_markers() {
        let mut v = View::default();
        assert!(v.fold(10, entry("0:1", 1)));
        // Offset 11 is a commit marker of an older version's transaction: no record.
        assert!(!v.fold(12, entry("0:1", 1)));
        assert!(v.fold(13, entry("0:1", 2)));
        assert_eq!(v.verdict(10), Some(true));
        assert_eq!(v.verdict(11), None);
        assert_eq!(v.verdict(12), Some(false));
        assert_eq!(v.verdict(13), Some(true));
        assert_eq!(v.verdict(9), None);
        assert_eq!(v.verdict(14), None);
        assert_eq!(v.state.get("0:1").map(|e| e.version), Some(2));
    }
}
