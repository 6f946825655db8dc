//! Sending a router's partition back to an offset, and what happens when the seek
//! fails. The router seeks back when it drops a fetched message it will read again
//! (its tasks are full, a retry message is not due yet, a stalled DLQ took its
//! letter): a seek that fails and were ignored would let the partition read on past
//! that message, and a later commit would skip it for good. So a partition whose
//! seek failed stays paused (see [`Unsought::holds`]), the failure is logged, and the
//! seek is tried again every few seconds; the partition is resumed only once it is
//! back where it must read from. A partition revoked meanwhile is forgotten: its next
//! owner starts at the group's commit, which is never past the message.
//! `MORGUE_TEST_DROP=seek` (debug builds) makes the first seek fail, for the tests.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::recheck::RouteConsumer;
use super::{KafkaBackendError, KafkaConfig};
use crate::engine::route::flight::Part;

/// How long one seek may take.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// Partitions (paused) whose seek back failed, with the offset to go back to.
#[derive(Debug, Default)]
pub(super) struct Unsought(HashMap<Part, i64>);

impl Unsought {
    /// Seeks `part` (paused by the caller) to `offset`; on failure keeps it paused to
    /// seek again. True when the partition is where it must be.
    pub(super) fn seek(&mut self, consumer: &RouteConsumer, part: &Part, offset: i64) -> bool {
        match try_seek(consumer, part, offset) {
            Ok(()) => {
                self.0.remove(part);
                true
            }
            Err(e) => {
                tracing::warn!(
                    "seeking {}:{} back to offset {offset} failed ({e}); the partition stays paused and is sought again",
                    part.0,
                    part.1
                );
                self.0.insert(part.clone(), offset);
                false
            }
        }
    }

    /// Whether `part` waits for its seek: nothing fetched from it may be processed.
    pub(super) fn holds(&self, part: &Part) -> bool {
        self.0.contains_key(part)
    }

    /// True when no seek waits.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Forgets `part` (revoked, or read again from elsewhere).
    pub(super) fn forget(&mut self, part: &Part) {
        self.0.remove(part);
    }

    /// Tries every failed seek again; the partitions now back where they must be are
    /// resumed, unless `held` still holds them for another reason.
    pub(super) fn again(
        &mut self,
        cfg: &KafkaConfig,
        consumer: &RouteConsumer,
        held: impl Fn(&Part) -> bool,
    ) -> Result<(), KafkaBackendError> {
        let waiting: Vec<(Part, i64)> = self.0.iter().map(|(p, o)| (p.clone(), *o)).collect();
        for (part, offset) in waiting {
            if !assigned(consumer, &part.0, part.1) {
                self.0.remove(&part);
                continue;
            }
            if self.seek(consumer, &part, offset) && !held(&part) {
                pause(cfg, consumer, &part.0, part.1, false)?;
                tracing::warn!(
                    "{}:{} sought back to offset {offset}; partition resumed",
                    part.0,
                    part.1
                );
            }
        }
        Ok(())
    }
}

fn try_seek(consumer: &RouteConsumer, part: &Part, offset: i64) -> Result<(), String> {
    if fail_first_seek() {
        return Err("MORGUE_TEST_DROP=seek".into());
    }
    consumer
        .seek(&part.0, part.1, Offset::Offset(offset), SEEK_TIMEOUT)
        .map_err(|e| e.to_string())
}

/// True once, for the first seek, when `MORGUE_TEST_DROP` names `seek`.
fn fail_first_seek() -> bool {
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    crate::engine::write::fault::dropped("seek")
        && !FAILED.swap(true, std::sync::atomic::Ordering::SeqCst)
}

/// True when `topic`/`partition` is still assigned to this member.
pub(super) fn assigned(consumer: &RouteConsumer, topic: &str, partition: i32) -> bool {
    consumer.context().is_assigned(topic, partition)
}

/// Pauses (`on`) or resumes one partition of the router's consumer.
pub(super) fn pause(
    cfg: &KafkaConfig,
    consumer: &RouteConsumer,
    topic: &str,
    partition: i32,
    on: bool,
) -> Result<(), KafkaBackendError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    let r = if on {
        consumer.pause(&tpl)
    } else {
        consumer.resume(&tpl)
    };
    r.map_err(|e| {
        cfg.error(
            format!("pausing/resuming '{topic}' partition {partition}"),
            e,
        )
    })
}
