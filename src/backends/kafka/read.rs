//! Reading a DLQ topic without disturbing anyone: partitions are assigned by hand,
//! nothing is committed, and every byte and header is kept as received.

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{Browser, KafkaBackendError, KafkaConfig, METADATA_TIMEOUT};
use crate::engine::{DeadLetter, Header, Headers, LetterId};

impl KafkaConfig {
    /// Reads every letter of `topic` present now (up to each partition's high watermark),
    /// calling `each` in per-partition offset order. Joins no group and commits nothing.
    pub fn read_to_end(
        &self,
        topic: &str,
        mut each: impl FnMut(DeadLetter),
    ) -> Result<u64, KafkaBackendError> {
        let consumer = self.browse_consumer()?;
        let marks = self.watermarks(&consumer, topic)?;
        let mut tpl = TopicPartitionList::new();
        for &(p, lo, hi) in &marks {
            if hi > lo {
                tpl.add_partition_offset(topic, p, Offset::Offset(lo))
                    .map_err(|e| self.error("assigning partitions", e))?;
            }
        }
        consumer
            .assign(&tpl)
            .map_err(|e| self.error(format!("assigning '{topic}'"), e))?;
        let mut count = 0u64;
        // Per partition: high watermark, and whether it has been read up to it.
        let mut left: Vec<(i32, i64)> = marks
            .iter()
            .filter(|m| m.2 > m.1)
            .map(|m| (m.0, m.2))
            .collect();
        while !left.is_empty() {
            let Some(msg) = consumer.poll(METADATA_TIMEOUT) else {
                return Err(self.error(format!("reading '{topic}'"), KafkaError::NoMessageReceived));
            };
            let (p, reached) = match msg {
                Ok(msg) => {
                    let hi = marks
                        .iter()
                        .find(|m| m.0 == msg.partition())
                        .map_or(0, |m| m.2);
                    if msg.offset() < hi {
                        each(letter_from_message(&msg));
                        count += 1;
                    }
                    (msg.partition(), msg.offset() + 1 >= hi)
                }
                // End of partition as the fetch saw it; trust it only once the position
                // has passed the watermark taken at the start (a lagging fetch can say
                // EOF early; control records and compaction can leave the last offset out).
                Err(KafkaError::PartitionEOF(p)) => {
                    (p, self.position(&consumer, topic, p)? >= left_hi(&left, p))
                }
                Err(e) => return Err(self.error(format!("reading '{topic}'"), e)),
            };
            if reached {
                left.retain(|(q, _)| *q != p);
            }
        }
        Ok(count)
    }

    /// Fetches the letter at `partition:offset` of `topic`, or says why it cannot.
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<DeadLetter, KafkaBackendError> {
        let consumer = self.browse_consumer()?;
        let marks = self.watermarks(&consumer, topic)?;
        let missing = |why: String| KafkaBackendError::NoSuchLetter {
            id: format!("{partition}:{offset}"),
            topic: topic.to_string(),
            why,
        };
        let Some(&(_, lo, hi)) = marks.iter().find(|m| m.0 == partition) else {
            return Err(missing(format!("the topic has {} partitions", marks.len())));
        };
        if offset < lo || offset >= hi {
            return Err(missing(format!(
                "partition {partition} holds offsets {lo}..{hi}"
            )));
        }
        let mut found = None;
        self.scan_partition(&consumer, topic, partition, offset, hi, |msg| {
            if msg.offset() == offset {
                found = Some(letter_from_message(msg));
            }
            msg.offset() < offset
        })?;
        found.ok_or_else(|| missing("it was deleted (compaction or a transaction marker)".into()))
    }

    /// For each of `values`, the offset of the first committed record in
    /// `topic`/`partition` at or after `from` whose last header `name` equals it,
    /// reading up to the current end (one pass for all of them).
    pub fn find_headers(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        name: &str,
        values: &[Vec<u8>],
    ) -> Result<Vec<Option<i64>>, KafkaBackendError> {
        let consumer = self.browse_consumer()?;
        let (lo, hi) = consumer
            .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
            .map_err(|e| self.error(format!("watermarks of '{topic}' partition {partition}"), e))?;
        let mut found = vec![None; values.len()];
        let from = from.max(lo);
        if from >= hi || values.is_empty() {
            return Ok(found);
        }
        let mut left = values.len();
        self.scan_partition(&consumer, topic, partition, from, hi, |msg| {
            let value = msg
                .headers()
                .and_then(|hs| hs.iter().filter(|h| h.key == name).last())
                .and_then(|h| h.value);
            if let Some(v) = value {
                for (i, want) in values.iter().enumerate() {
                    if found[i].is_none() && want.as_slice() == v {
                        found[i] = Some(msg.offset());
                        left -= 1;
                    }
                }
            }
            left > 0
        })?;
        Ok(found)
    }

    /// Reads partition `partition` of `topic` from `from` (or its first offset) up to
    /// its current end, while `more` returns true.
    pub(crate) fn scan_from(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        more: impl FnMut(&BorrowedMessage<'_>) -> bool,
    ) -> Result<(), KafkaBackendError> {
        let consumer = self.browse_consumer()?;
        let (lo, hi) = consumer
            .fetch_watermarks(topic, partition, self.connect_timeout)
            .map_err(|e| self.error(format!("watermarks of '{topic}' partition {partition}"), e))?;
        let from = from.max(lo);
        if from >= hi {
            return Ok(());
        }
        self.scan_partition(&consumer, topic, partition, from, hi, more)
    }

    /// Reads one partition from `from` up to `hi`, while `more` returns true.
    fn scan_partition(
        &self,
        consumer: &Browser,
        topic: &str,
        partition: i32,
        from: i64,
        hi: i64,
        mut more: impl FnMut(&BorrowedMessage<'_>) -> bool,
    ) -> Result<(), KafkaBackendError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))
            .map_err(|e| self.error("assigning a partition", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| self.error(format!("assigning '{topic}' partition {partition}"), e))?;
        loop {
            let Some(msg) = consumer.poll(METADATA_TIMEOUT) else {
                return Err(self.error(format!("reading '{topic}'"), KafkaError::NoMessageReceived));
            };
            match msg {
                Ok(msg) => {
                    if !more(&msg) || msg.offset() + 1 >= hi {
                        return Ok(());
                    }
                }
                Err(KafkaError::PartitionEOF(_)) => {
                    if self.position(consumer, topic, partition)? >= hi {
                        return Ok(());
                    }
                }
                Err(e) => return Err(self.error(format!("reading '{topic}'"), e)),
            }
        }
    }

    /// The consumer's next offset in partition `p` of `topic` (-1 when unknown).
    fn position(&self, consumer: &Browser, topic: &str, p: i32) -> Result<i64, KafkaBackendError> {
        let pos = consumer
            .position()
            .map_err(|e| self.error(format!("position in '{topic}'"), e))?;
        Ok(pos
            .find_partition(topic, p)
            .and_then(|e| e.offset().to_raw())
            .unwrap_or(-1))
    }
}

fn left_hi(left: &[(i32, i64)], p: i32) -> i64 {
    left.iter().find(|(q, _)| *q == p).map_or(0, |(_, hi)| *hi)
}

/// Turns a consumed record into a dead letter, keeping every byte and header as received.
pub fn letter_from_message(msg: &BorrowedMessage<'_>) -> DeadLetter {
    let headers = msg
        .headers()
        .map(|hs| {
            Headers(
                hs.iter()
                    .map(|h| Header {
                        name: h.key.to_string(),
                        value: h.value.map(<[u8]>::to_vec),
                    })
                    .collect(),
            )
        })
        .unwrap_or_default();
    DeadLetter::from_record(
        Some(LetterId::Kafka {
            partition: msg.partition(),
            offset: msg.offset(),
        }),
        msg.timestamp().to_millis(),
        msg.key().map(<[u8]>::to_vec),
        msg.payload().map(<[u8]>::to_vec),
        headers,
    )
}
