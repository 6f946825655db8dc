//! The letters a bulk action was counted on, held so that it acts on exactly those.
//!
//! A bulk replay is confirmed on a number ("replay 26 letters matching …"); letters
//! keep arriving while the operator reads the question. [`Counted`] is the set fixed
//! when the count was made: Kafka letters as sorted offsets per partition (8 bytes a
//! letter), MongoDB letters by `_id`. The replay then takes a letter only when it is
//! in the set, so a letter that arrived later waits for the next run, and
//! [`Counted::bound`] says in one line what the set spans.

use std::collections::{BTreeMap, BTreeSet};

use crate::engine::LetterId;

/// The exact set of letters a bulk action was counted on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counted {
    /// Kafka: offsets per partition, ascending (a stream reads each partition in order).
    offsets: BTreeMap<i32, Vec<i64>>,
    /// MongoDB: `_id`s.
    ids: BTreeSet<String>,
}

impl Counted {
    /// Adds `id` to the set.
    pub fn insert(&mut self, id: &LetterId) {
        match id {
            LetterId::Kafka { partition, offset } => {
                let v = self.offsets.entry(*partition).or_default();
                match v.last() {
                    Some(last) if *last >= *offset => {
                        if let Err(at) = v.binary_search(offset) {
                            v.insert(at, *offset);
                        }
                    }
                    _ => v.push(*offset),
                }
            }
            LetterId::Mongo(s) => {
                self.ids.insert(s.clone());
            }
        }
    }

    /// Whether `id` was counted.
    pub fn contains(&self, id: &LetterId) -> bool {
        match id {
            LetterId::Kafka { partition, offset } => self
                .offsets
                .get(partition)
                .is_some_and(|v| v.binary_search(offset).is_ok()),
            LetterId::Mongo(s) => self.ids.contains(s),
        }
    }

    /// How many letters were counted.
    pub fn len(&self) -> usize {
        self.offsets.values().map(Vec::len).sum::<usize>() + self.ids.len()
    }

    /// True when nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the set spans, in one line: `partition 0 offsets 12..340, partition 3 offsets
    /// 5..77` (first and last counted) for Kafka, the first and last `_id` for MongoDB.
    pub fn bound(&self) -> String {
        let mut parts: Vec<String> = self
            .offsets
            .iter()
            .filter_map(|(p, v)| {
                Some(format!(
                    "partition {p} offsets {}..{}",
                    v.first()?,
                    v.last()?
                ))
            })
            .collect();
        if let (Some(first), Some(last)) = (self.ids.first(), self.ids.last()) {
            parts.push(format!("_id {first}..{last}"));
        }
        if parts.is_empty() {
            return "no letters".into();
        }
        parts.join(", ")
    }

    /// The bound as JSON: `{"0": [first, last], …}` per Kafka partition, or
    /// `{"_id": [first, last]}`.
    pub fn bound_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (p, v) in &self.offsets {
            if let (Some(f), Some(l)) = (v.first(), v.last()) {
                m.insert(p.to_string(), serde_json::json!([f, l]));
            }
        }
        if let (Some(f), Some(l)) = (self.ids.first(), self.ids.last()) {
            m.insert("_id".into(), serde_json::json!([f, l]));
        }
        serde_json::Value::Object(m)
    }
}

impl<'a> FromIterator<&'a LetterId> for Counted {
    fn from_iter<I: IntoIterator<Item = &'a LetterId>>(iter: I) -> Self {
        let mut c = Counted::default();
        for id in iter {
            c.insert(id);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(partition: i32, offset: i64) -> LetterId {
        LetterId::Kafka { partition, offset }
    }

    #[test]
    fn holds_exactly_what_was_counted() {
        let c: Counted = [k(0, 12), k(0, 40), k(1, 5), k(0, 30)].iter().collect();
        assert_eq!(c.len(), 4);
        assert!(c.contains(&k(0, 30)) && c.contains(&k(0, 12)) && c.contains(&k(1, 5)));
        // A letter between counted ones, after them, or in another partition is not in.
        assert!(!c.contains(&k(0, 13)));
        assert!(!c.contains(&k(0, 41)));
        assert!(!c.contains(&k(2, 5)));
        assert_eq!(
            c.bound(),
            "partition 0 offsets 12..40, partition 1 offsets 5..5"
        );
        assert_eq!(
            c.bound_json(),
            serde_json::json!({"0": [12, 40], "1": [5, 5]})
        );
    }

    #[test]
    fn mongo_ids_are_held_by_id() {
        let ids = [LetterId::Mongo("b".into()), LetterId::Mongo("a".into())];
        let c: Counted = ids.iter().collect();
        assert!(c.contains(&LetterId::Mongo("a".into())));
        assert!(!c.contains(&LetterId::Mongo("c".into())));
        assert_eq!(c.bound(), "_id a..b");
        assert!(Counted::default().is_empty());
        assert_eq!(Counted::default().bound(), "no letters");
    }
}
