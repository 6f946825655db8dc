//! The triage board's numbers: letters grouped by source topic and failure
//! fingerprint (error class and normalised message, see `fingerprint`), with counts,
//! first and last seen, and arrivals over time for a sparkline. Computed from
//! the index alone, so it costs one pass over compact rows and no payload.

use std::collections::HashMap;

use crate::engine::read::index::NO_TIME;
use crate::engine::read::store::Store;

/// Buckets of a group's sparkline.
pub const SPARK: usize = 16;

/// Letters with the same source topic and failure fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Source topic (`None` when unknown).
    pub topic: Option<String>,
    /// Error class or message (`None` when the letter says nothing).
    pub error: Option<String>,
    /// The normalised message shared by the group (with a class), its sample.
    pub message: Option<String>,
    /// The failure's fingerprint (`fingerprint:ID` selects it).
    pub fingerprint: String,
    /// Letters in the group.
    pub count: u64,
    /// Oldest DLQ time, epoch ms.
    pub first_ms: i64,
    /// Newest DLQ time, epoch ms.
    pub last_ms: i64,
    /// Arrivals per time bucket, the board's whole time span split in [`SPARK`].
    pub spark: [u64; SPARK],
}

impl Group {
    /// The filter query that selects this group's letters, and no other: a group
    /// without a source topic is `-topic:*` (not every topic with that fingerprint).
    pub fn query(&self) -> String {
        let quote = |s: &str| {
            if s.contains([' ', '"', '\\']) {
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            } else {
                s.to_string()
            }
        };
        let topic = match &self.topic {
            Some(t) => format!("topic:{}", quote(t)),
            None => "-topic:*".to_string(),
        };
        format!("{topic} fingerprint:{}", self.fingerprint)
    }
}

/// Groups every letter of `store`, largest group first.
pub fn groups(store: &Store) -> Vec<Group> {
    let mut by: HashMap<(u32, u32, u32), (u64, i64, i64)> = HashMap::new();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for r in store.rows() {
        let e = by
            .entry((r.topic, r.error, store.message_id(r)))
            .or_insert((0, i64::MAX, i64::MIN));
        e.0 += 1;
        if r.dlq_ts_ms != NO_TIME {
            e.1 = e.1.min(r.dlq_ts_ms);
            e.2 = e.2.max(r.dlq_ts_ms);
            lo = lo.min(r.dlq_ts_ms);
            hi = hi.max(r.dlq_ts_ms);
        }
    }
    let span = hi.saturating_sub(lo).max(1);
    let mut sparks: HashMap<(u32, u32, u32), [u64; SPARK]> = HashMap::new();
    if lo <= hi {
        for r in store.rows().filter(|r| r.dlq_ts_ms != NO_TIME) {
            let b = (((r.dlq_ts_ms - lo) as i128 * (SPARK as i128 - 1)) / span as i128) as usize;
            sparks
                .entry((r.topic, r.error, store.message_id(r)))
                .or_insert([0; SPARK])[b.min(SPARK - 1)] += 1;
        }
    }
    let mut out: Vec<Group> = by
        .into_iter()
        .map(|((t, e, m), (count, first, last))| {
            let error = store.errors().get(e).map(str::to_string);
            let message = store.messages().get(m).map(str::to_string);
            Group {
                topic: store.topics().get(t).map(str::to_string),
                fingerprint: crate::engine::read::fingerprint::id(
                    error.as_deref(),
                    message.as_deref(),
                ),
                error,
                message,
                count,
                first_ms: if first == i64::MAX { NO_TIME } else { first },
                last_ms: if last == i64::MIN { NO_TIME } else { last },
                spark: sparks.get(&(t, e, m)).copied().unwrap_or([0; SPARK]),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.topic.cmp(&b.topic))
            .then_with(|| a.error.cmp(&b.error))
            .then_with(|| a.message.cmp(&b.message))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{DeadLetter, Headers, LetterId};

    fn letter(i: i64, topic: &str, class: &str, ts: i64) -> DeadLetter {
        let mut h = Headers::default();
        h.push("kafka_dlt-original-topic", topic);
        h.push("kafka_dlt-exception-fqcn", class);
        DeadLetter::from_record(
            Some(LetterId::Kafka {
                partition: 0,
                offset: i,
            }),
            Some(ts),
            None,
            None,
            h,
        )
    }

    #[test]
    fn groups_count_and_spread_over_time() {
        let mut s = Store::new();
        for i in 0..10 {
            s.insert(&letter(i, "trades", "x.Timeout", 1000 + i * 100));
        }
        for i in 10..13 {
            s.insert(&letter(i, "orders", "x.Bad Data", 1000));
        }
        let g = groups(&s);
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[0].topic.as_deref(), g[0].error.as_deref(), g[0].count),
            (Some("trades"), Some("x.Timeout"), 10)
        );
        assert_eq!((g[0].first_ms, g[0].last_ms), (1000, 1900));
        assert_eq!(g[0].spark.iter().sum::<u64>(), 10);
        assert_eq!(
            g[0].spark[SPARK - 1],
            1,
            "the newest letter falls in the last bucket"
        );
        assert_eq!(g[1].spark[0], 3);
        let fp = crate::engine::read::fingerprint::id(Some("x.Bad Data"), None);
        assert_eq!(g[1].query(), format!("topic:orders fingerprint:{fp}"));
        // The query selects exactly the group, from the index and from the letters.
        let f = crate::engine::read::filter::Filter::parse(&g[0].query(), 0).unwrap();
        assert!(f.index_only());
        let rows: Vec<_> = s.rows().filter(|r| f.matches_row(r, &s)).collect();
        assert_eq!(rows.len(), 10);
        assert!(f.matches(&letter(0, "trades", "x.Timeout", 1)));
        assert!(!f.matches(&letter(0, "orders", "x.Timeout", 1)));
    }

    #[test]
    fn one_class_with_different_messages_makes_different_groups() {
        let mut s = Store::new();
        for (i, m) in ["order 17 rejected", "order 99 rejected", "price -3 below 0"]
            .iter()
            .enumerate()
        {
            let mut l = letter(i as i64, "trades", "x.Invalid", 1000);
            l.failure.message = Some(m.to_string());
            s.insert(&l);
        }
        let g = groups(&s);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(
            (g[0].count, g[0].message.as_deref()),
            (2, Some("order # rejected"))
        );
        let f = crate::engine::read::filter::Filter::parse(&g[0].query(), 0).unwrap();
        let mut l = letter(7, "trades", "x.Invalid", 1);
        l.failure.message = Some("order 123456 rejected".into());
        assert!(f.matches(&l), "a new letter of the group matches its query");
    }

    #[test]
    fn a_group_query_selects_its_group_only() {
        let mut s = Store::new();
        let mut bare = letter(0, "", "x.Timeout", 1000);
        bare.source.topic = None;
        s.insert(&bare);
        s.insert(&letter(1, "trades", "x.Timeout", 1000));
        s.insert(&letter(2, "odd \"name\" \\ here", "x.Timeout", 1000));
        let g = groups(&s);
        assert_eq!(g.len(), 3, "{g:?}");
        for group in &g {
            let f = crate::engine::read::filter::Filter::parse(&group.query(), 0)
                .unwrap_or_else(|e| panic!("{}: {e}", group.query()));
            let n = s.rows().filter(|r| f.matches_row(r, &s)).count();
            assert_eq!(n, 1, "{} selects {n} letters", group.query());
        }
    }

    #[test]
    fn letters_without_a_time_still_group() {
        let mut s = Store::new();
        for i in 0..3 {
            let mut l = letter(i, "trades", "x.Timeout", 0);
            l.dlq_timestamp_ms = None;
            s.insert(&l);
        }
        let g = groups(&s);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].count, 3);
        assert_eq!(
            g[0].spark.iter().sum::<u64>(),
            0,
            "nothing to place in time"
        );
    }
}
