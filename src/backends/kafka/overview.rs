//! Every DLQ topic of a cluster at a glance ([`DlqSummary`]): the topics whose names
//! match the patterns and those Kafka Connect's connectors name (see [`connect`](super::connect)),
//! from one metadata request, batched list-offsets requests (earliest, latest, one per hour of the last
//! day, then at [`OLDER`] marks), one describe-configs request for `retention.ms`,
//! and the ledger of each DLQ that has one. Letters are never read. The first letter
//! of each partition is bracketed by the marks, then its own timestamp is found to
//! the second by halving the bracket: "the first offset at or after time t" is the
//! partition's first letter exactly when that letter's timestamp is at least t, so
//! 12–25 more list-offsets requests, all partitions in each, give it.

use std::collections::HashMap;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::ledger::KafkaLedger;
use super::{KafkaBackendError, KafkaConfig, Quiet};
use crate::engine::read::overview::{DlqNames, DlqSummary, HOURS, is_morgue_topic};

/// Ages (days) beyond the last day at which the oldest letter is bracketed.
const OLDER: [i64; 13] = [2, 3, 4, 5, 6, 7, 10, 14, 21, 30, 60, 90, 365];
const HOUR_MS: i64 = 3_600_000;
/// How close the first letter's time is found.
const SECOND: i64 = 1000;

/// The DLQ topics of the cluster that `names` selects, by name.
pub async fn overview(
    cfg: &KafkaConfig,
    names: &DlqNames,
) -> Result<Vec<DlqSummary>, KafkaBackendError> {
    let (c, p) = (cfg.clone(), names.clone());
    let (mut out, ledgers) = tokio::task::spawn_blocking(move || offsets(&c, &p))
        .await
        .map_err(|e| KafkaBackendError::Task(e.to_string()))??;
    retention(cfg, &mut out).await;
    let reads = out
        .iter()
        .filter(|s| ledgers.contains(&s.name))
        .map(|s| async move {
            let ledger = KafkaLedger::counting(cfg.clone(), &s.name);
            (s.name.clone(), ledger.states().await)
        });
    let states: HashMap<String, _> = futures::future::join_all(reads).await.into_iter().collect();
    for s in &mut out {
        match states.get(&s.name) {
            Some(Ok(states)) => s.states = states.clone(),
            Some(Err(e)) => tracing::warn!("ledger of '{}' not read: {e}", s.name),
            None => {}
        }
    }
    Ok(out)
}

/// Sizes, hourly arrivals and oldest records; also the DLQs that have a ledger topic.
fn offsets(
    cfg: &KafkaConfig,
    wanted: &DlqNames,
) -> Result<(Vec<DlqSummary>, Vec<String>), KafkaBackendError> {
    let c = cfg.browse_consumer()?;
    let md = c
        .fetch_metadata(None, cfg.connect_timeout)
        .map_err(|source| KafkaBackendError::Unreachable {
            brokers: cfg.brokers.clone(),
            source: Box::new(source),
        })?;
    let names: std::collections::HashSet<&str> = md.topics().iter().map(|t| t.name()).collect();
    // Kafka Connect's DLQs count whatever their names.
    let config_topics: Vec<String> = names
        .iter()
        .filter(|n| super::connect::is_config_topic(n))
        .map(|n| n.to_string())
        .collect();
    let connect_dlqs = if config_topics.is_empty() || !wanted.connect {
        Vec::new()
    } else {
        super::connect::dlq_names(cfg, &c, &config_topics)
    };
    let mut ledgers = Vec::new();
    let mut out = Vec::new();
    let mut all = TopicPartitionList::new();
    for t in md.topics() {
        if is_morgue_topic(t.name()) || !wanted.matches(t.name(), &connect_dlqs) {
            continue;
        }
        if names.contains(format!("{}.morgue-ledger", t.name()).as_str()) {
            ledgers.push(t.name().to_string());
        }
        for p in t.partitions() {
            all.add_partition(t.name(), p.id());
        }
        out.push(DlqSummary {
            name: t.name().to_string(),
            kind: "kafka",
            partitions: t.partitions().len(),
            hourly: vec![0; HOURS],
            ..DlqSummary::default()
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.is_empty() {
        return Ok((out, ledgers));
    }
    let at = |offset: Offset| -> Result<HashMap<(String, i32), i64>, KafkaBackendError> {
        let mut tpl = all.clone();
        tpl.set_all_offsets(offset)
            .map_err(|e| cfg.error("listing offsets", e))?;
        let got = c
            .offsets_for_times(tpl, cfg.connect_timeout)
            .map_err(|e| cfg.error("listing offsets", e))?;
        Ok(got
            .elements()
            .iter()
            .filter_map(|e| Some(((e.topic().to_string(), e.partition()), e.offset().to_raw()?)))
            .collect())
    };
    let now = chrono::Utc::now().timestamp_millis();
    // Offset of the first record at or after each mark (-1: none, i.e. the end).
    // Mark times, oldest first: OLDER days ago, then every hour of the last day.
    let mut times: Vec<i64> = OLDER.iter().rev().map(|d| now - d * 24 * HOUR_MS).collect();
    times.extend((0..=HOURS).rev().map(|h| now - h as i64 * HOUR_MS));
    // All requests at once (librdkafka handles are thread-safe): one round trip of time.
    let mut asked: Vec<Offset> = vec![Offset::Beginning, Offset::End];
    asked.extend(times.iter().map(|t| Offset::Offset(*t)));
    let answers: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = asked
            .iter()
            .map(|o| {
                let at = &at;
                scope.spawn(move || at(*o))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(KafkaBackendError::Task("panicked".into())))
            })
            .collect()
    });
    let mut answers = answers
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let (Some(low), Some(high)) = (answers.next(), answers.next()) else {
        return Ok((out, ledgers));
    };
    let marks: Vec<_> = answers.collect();
    let hours = OLDER.len();
    let mut firsts: Vec<First> = Vec::new();
    for ((topic, partition), hi) in &high {
        let Some(s) = out.iter_mut().find(|s| &s.name == topic) else {
            continue;
        };
        let key = (topic.clone(), *partition);
        let lo = low.get(&key).copied().unwrap_or(*hi);
        s.letters += u64::try_from(hi - lo).unwrap_or(0);
        let pos = |m: &HashMap<(String, i32), i64>| match m.get(&key) {
            Some(&o) if o >= 0 => o.max(lo),
            _ => *hi,
        };
        for h in 0..HOURS {
            let (from, to) = (&marks[hours + h], &marks[hours + h + 1]);
            s.hourly[h] += u64::try_from(pos(to) - pos(from)).unwrap_or(0);
        }
        if *hi > lo {
            // The first letter's time is in [a, b): a is the latest mark with every
            // letter at or after it (0: older than all), b the next one.
            let i = marks.iter().rposition(|m| pos(m) == lo);
            let a = i.map_or(0, |i| times[i]);
            let b = times
                .get(i.map_or(0, |i| i + 1))
                .copied()
                .unwrap_or(i64::MAX / 2);
            firsts.push((key, lo, a, b));
        }
    }
    for ((topic, _), _, a, _) in first_times(cfg, &c, firsts)? {
        if let Some(s) = out.iter_mut().find(|s| s.name == topic) {
            s.oldest_ms = Some(s.oldest_ms.map_or(a, |o| o.min(a)));
        }
    }
    std::thread::spawn(move || drop(c));
    Ok((out, ledgers))
}

/// A partition, its first offset, and the bracket `[a, b)` its first letter's time is in.
type First = ((String, i32), i64, i64, i64);

/// Narrows each bracket to a second holding the first letter's own timestamp
/// (`a <= t < b`, `b - a <= 1000`): the first offset at or after time `t` is the first
/// letter exactly when its timestamp is at least `t`. Each round asks for every open
/// bracket's middle in one request.
fn first_times(
    cfg: &KafkaConfig,
    c: &super::Browser,
    mut firsts: Vec<First>,
) -> Result<Vec<First>, KafkaBackendError> {
    for _ in 0..64 {
        let mut tpl = TopicPartitionList::new();
        for ((t, p), _, a, b) in &firsts {
            if b - a > SECOND {
                tpl.add_partition_offset(t, *p, Offset::Offset(a + (b - a) / 2))
                    .map_err(|e| cfg.error("listing offsets", e))?;
            }
        }
        if tpl.count() == 0 {
            break;
        }
        let got = c
            .offsets_for_times(tpl, cfg.connect_timeout)
            .map_err(|e| cfg.error("listing offsets", e))?;
        for ((t, p), lo, a, b) in &mut firsts {
            if *b - *a <= SECOND {
                continue;
            }
            let mid = *a + (*b - *a) / 2;
            let at = got.find_partition(t, *p).and_then(|e| e.offset().to_raw());
            if at == Some(*lo) {
                *a = mid;
            } else {
                *b = mid;
            }
        }
    }
    Ok(firsts)
}

/// `retention.ms` of `topic` (None when unknown; -1 keeps letters forever).
pub async fn topic_retention(cfg: &KafkaConfig, topic: &str) -> Option<i64> {
    let mut one = [DlqSummary {
        name: topic.to_string(),
        ..DlqSummary::default()
    }];
    retention(cfg, &mut one).await;
    one[0].retention_ms
}

/// `retention.ms` of each DLQ topic, in one describe-configs request.
async fn retention(cfg: &KafkaConfig, out: &mut [DlqSummary]) {
    let admin: Result<AdminClient<Quiet>, _> = cfg.client_config(&[]).create_with_context(Quiet);
    let Ok(admin) = admin else { return };
    let specs: Vec<ResourceSpecifier> = out
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    let opts = AdminOptions::new().request_timeout(Some(cfg.connect_timeout));
    let Ok(results) = admin.describe_configs(&specs, &opts).await else {
        return;
    };
    let by_name: HashMap<String, i64> = results
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let name = match &r.specifier {
                rdkafka::admin::OwnedResourceSpecifier::Topic(n) => n.clone(),
                _ => return None,
            };
            let ms = r.get("retention.ms")?.value.as_deref()?.parse().ok()?;
            Some((name, ms))
        })
        .collect();
    for s in out {
        s.retention_ms = by_name.get(&s.name).copied();
    }
    std::thread::spawn(move || drop(admin));
}
