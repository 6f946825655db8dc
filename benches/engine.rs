//! Engine benchmarks against a real broker; prints figures, asserts nothing.
//!
//!   cargo bench --bench engine -- raw BROKERS TOPIC        poll only (the librdkafka floor)
//!   cargo bench --bench engine -- index BROKERS TOPIC      stream into the Store: rate, RSS per letter
//!   cargo bench --bench engine -- index-synthetic N        N generated letters into the Store: RSS per letter
//!   cargo bench --bench engine -- index-mongo URI DB COLL  a MongoDB collection into the Store
//!   cargo bench --bench engine -- search BROKERS TOPIC Q   stream with a payload filter: rate, first hit
//!   cargo bench --bench engine -- latency BROKERS TOPIC N  produce N letters while following: ack→store p50/p99
//!
//! scripts/bench.sh seeds topics and runs these next to kcat.
#![allow(clippy::unwrap_used)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use morgue::backends::kafka::KafkaConfig;
use morgue::backends::kafka::source::KafkaSource;
use morgue::engine::read::filter::Filter;
use morgue::engine::read::source::{DeadLetterSource, SourceEvent, StartAt};
use morgue::engine::read::store::Store;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::mpsc;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn raw(brokers: &str, topic: &str) {
    let cfg = KafkaConfig::new(brokers);
    let c = cfg.browse_consumer().unwrap();
    let marks = cfg.watermarks(&c, topic).unwrap();
    let mut tpl = TopicPartitionList::new();
    for &(p, lo, _) in &marks {
        tpl.add_partition_offset(topic, p, Offset::Offset(lo))
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    // Until every partition has said end-of-partition: offsets overcount on a
    // transactional topic (commit markers), so their span cannot tell the end.
    let mut open: Vec<i32> = marks.iter().filter(|m| m.2 > m.1).map(|m| m.0).collect();
    let start = Instant::now();
    let mut n = 0i64;
    while !open.is_empty() {
        match c.poll(Duration::from_secs(10)) {
            Some(Ok(_)) => n += 1,
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => open.retain(|&q| q != p),
            Some(Err(_)) => {}
            None => break,
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "raw poll: {n} messages in {s:.3}s = {:.0} msgs/s",
        n as f64 / s
    );
}

/// Streams the whole topic; `each` sees every letter. Returns (letters, seconds, first-hit seconds).
async fn stream(
    brokers: &str,
    topic: &str,
    each: impl FnMut(&morgue::engine::DeadLetter) -> bool,
) -> (u64, f64, Option<f64>) {
    let src = KafkaSource::new(KafkaConfig::new(brokers), topic);
    stream_from(std::sync::Arc::new(src), each).await
}

/// Streams a whole DLQ from any source.
async fn stream_from(
    src: std::sync::Arc<dyn DeadLetterSource>,
    mut each: impl FnMut(&morgue::engine::DeadLetter) -> bool,
) -> (u64, f64, Option<f64>) {
    let (tx, mut rx) = mpsc::channel(8);
    let task = tokio::spawn(async move { src.stream(StartAt::Beginning, false, tx).await });
    let start = Instant::now();
    let mut n = 0;
    let mut first = None;
    while let Some(ev) = rx.recv().await {
        if let SourceEvent::Letters(v) = ev {
            for l in &v {
                n += 1;
                if each(l) && first.is_none() {
                    first = Some(start.elapsed().as_secs_f64());
                }
            }
        }
    }
    task.await.unwrap().unwrap();
    (n, start.elapsed().as_secs_f64(), first)
}

async fn index(brokers: &str, topic: &str) {
    let before = rss_bytes();
    let mut store = Store::new();
    let (n, s, _) = stream(brokers, topic, |l| {
        store.insert(l);
        false
    })
    .await;
    // Measured once the reader is gone, so librdkafka's prefetch buffers are not counted;
    // scripts/bench.sh compares two sizes to get the cost of one more letter.
    let after = rss_bytes();
    println!(
        "index: {n} letters in {s:.3}s = {:.0} letters/s",
        n as f64 / s
    );
    println!(
        "index: RSS {:.1} MB before, {:.1} MB after; store heap {:.1} MB = {:.1} bytes per letter (row {} bytes)",
        before as f64 / 1e6,
        after as f64 / 1e6,
        store.heap_bytes() as f64 / 1e6,
        store.heap_bytes() as f64 / n.max(1) as f64,
        std::mem::size_of::<morgue::engine::read::index::IndexRow>(),
    );
    println!("index-rss {n} {after}");
}

/// Letters shaped like benches/seed.py's (same headers and value size), built in memory;
/// with `mongo`, identified by ObjectIds instead of partition:offset.
fn synthetic(i: u64, mongo: bool) -> morgue::engine::DeadLetter {
    use morgue::engine::{DeadLetter, Headers, LetterId};
    let mut h = Headers::default();
    h.push("kafka_dlt-original-topic", "trades");
    h.push(
        "kafka_dlt-original-partition",
        ((i % 6) as i32).to_be_bytes(),
    );
    h.push("kafka_dlt-original-offset", (i as i64).to_be_bytes());
    h.push(
        "kafka_dlt-original-timestamp",
        (1_732_700_000_000 + i as i64).to_be_bytes(),
    );
    h.push(
        "kafka_dlt-exception-fqcn",
        "com.acme.trades.ValidationException",
    );
    h.push(
        "kafka_dlt-exception-message",
        format!("price out of band for trade {i}"),
    );
    let value = format!(
        "{{\"trade_id\": \"T-{i:09}\", \"price\": 100.0, \"note\": \"{}\"}}",
        "x".repeat(400)
    );
    // Arrival as from a broker: batches of 500 from each of 8 partitions in turn.
    let batch = i / 500;
    let (partition, offset) = ((batch % 8) as i32, ((batch / 8) * 500 + i % 500) as i64);
    let id = if mongo {
        LetterId::Mongo(format!("6a{:022x}", 0x1234_5678_0000u64 + i))
    } else {
        LetterId::Kafka { partition, offset }
    };
    DeadLetter::from_record(
        Some(id),
        Some(1_795_000_000_000 + i as i64),
        // 36-character keys, as UUID-keyed producers write them.
        Some(format!("{i:08x}-0000-4000-8000-{i:012x}").into_bytes()),
        Some(value.into_bytes()),
        h,
    )
}

/// Inserts `n` synthetic letters into a Store: the index's own memory, no broker involved.
fn index_synthetic(n: u64, mongo: bool) {
    let before = rss_bytes();
    let mut store = Store::new();
    let start = Instant::now();
    for i in 0..n {
        store.insert(&synthetic(i, mongo));
    }
    let s = start.elapsed().as_secs_f64();
    let after = rss_bytes();
    println!(
        "index (in memory, {} ids): {n} letters in {s:.3}s; RSS {:.1} MB -> {:.1} MB = {:.1} bytes per letter; store heap {:.1} bytes per letter",
        if mongo {
            "ObjectId"
        } else {
            "partition:offset"
        },
        before as f64 / 1e6,
        after as f64 / 1e6,
        after.saturating_sub(before) as f64 / n as f64,
        store.heap_bytes() as f64 / n as f64
    );
}

/// Streams a MongoDB collection into a Store: the same index as for Kafka.
async fn index_mongo(uri: &str, db: &str, coll: &str) {
    use morgue::backends::mongo::MongoConfig;
    use morgue::backends::mongo::dlq::MongoDlq;
    use morgue::backends::mongo::doc::FieldMap;
    let cfg = MongoConfig {
        uri: uri.into(),
        db: db.into(),
        collection: coll.into(),
        connect_timeout: std::time::Duration::from_secs(10),
    };
    let src = MongoDlq::open(cfg, FieldMap::default()).await.unwrap();
    let before = rss_bytes();
    let mut store = Store::new();
    let (n, s, _) = stream_from(std::sync::Arc::new(src), |l| {
        store.insert(l);
        false
    })
    .await;
    println!(
        "index (MongoDB): {n} documents in {s:.3}s = {:.0}/s; RSS {:.1} MB -> {:.1} MB; store heap {:.1} bytes per letter",
        n as f64 / s,
        before as f64 / 1e6,
        rss_bytes() as f64 / 1e6,
        store.heap_bytes() as f64 / n.max(1) as f64
    );
}

async fn search(brokers: &str, topic: &str, query: &str) {
    let f = Filter::parse(query, chrono::Utc::now().timestamp_millis()).unwrap();
    // Alternate plain scans and searches; the best of three of each evens out the noise
    // of a broker that shares the machine.
    let (mut plain, mut searched, mut first, mut n, mut hits) =
        (f64::MAX, f64::MAX, f64::MAX, 0, 0);
    for _ in 0..3 {
        let (count, s, _) = stream(brokers, topic, |_| false).await;
        plain = plain.min(s);
        n = count;
        let mut h = 0;
        let (_, s, f1) = stream(brokers, topic, |l| {
            let hit = f.matches(l);
            h += u64::from(hit);
            hit
        })
        .await;
        searched = searched.min(s);
        first = first.min(f1.unwrap_or(f64::MAX));
        hits = h;
    }
    println!(
        "scan: {n} letters in {plain:.3}s = {:.0} letters/s (best of 3)",
        n as f64 / plain
    );
    println!(
        "search '{query}': {hits} hits in {searched:.3}s = {:.0} letters/s ({:.2}x the scan rate); first hit after {first:.3}s (best of 3)",
        n as f64 / searched,
        plain / searched,
    );
}

async fn latency(brokers: &str, topic: &str, count: usize) {
    let cfg = KafkaConfig::new(brokers);
    let src = KafkaSource::new(cfg.clone(), topic);
    let (tx, mut rx) = mpsc::channel(64);
    let task = tokio::spawn(async move { src.stream(StartAt::End, true, tx).await });
    // Wait until the follower is caught up before producing.
    while let Some(ev) = rx.recv().await {
        if matches!(ev, SourceEvent::CaughtUp { .. }) {
            break;
        }
    }
    let producer = cfg.producer().unwrap();
    // Per letter: when it was handed to the producer, and when the broker acknowledged it.
    let acked: std::sync::Arc<std::sync::Mutex<HashMap<String, (Instant, Instant)>>> =
        Default::default();
    let acks = acked.clone();
    let topic2 = topic.to_string();
    let send = tokio::spawn(async move {
        for i in 0..count {
            let v = format!("latency-{i}");
            let r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&topic2).payload(v.as_bytes());
            let sent = Instant::now();
            producer.send(r, Duration::from_secs(10)).await.unwrap();
            acks.lock().unwrap().insert(v, (sent, Instant::now()));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut from_ack = Vec::new();
    let mut from_send = Vec::new();
    let mut pending = Vec::new();
    while from_ack.len() + pending.len() < count {
        let Ok(Some(SourceEvent::Letters(v))) =
            tokio::time::timeout(Duration::from_secs(30), rx.recv()).await
        else {
            break;
        };
        let now = Instant::now();
        pending.extend(v.into_iter().map(|l| {
            (
                String::from_utf8_lossy(l.value.as_deref().unwrap_or_default()).into_owned(),
                now,
            )
        }));
        // A letter can reach the store before its ack is processed: settle those later.
        let acks = acked.lock().unwrap();
        pending.retain(|(key, at)| match acks.get(key) {
            Some((sent, ack)) => {
                from_ack.push(at.saturating_duration_since(*ack).as_secs_f64() * 1000.0);
                from_send.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
                false
            }
            None => true,
        });
    }
    send.await.unwrap();
    let acks = acked.lock().unwrap().clone();
    for (key, at) in pending {
        if let Some((sent, ack)) = acks.get(&key) {
            from_ack.push(at.saturating_duration_since(*ack).as_secs_f64() * 1000.0);
            from_send.push(at.saturating_duration_since(*sent).as_secs_f64() * 1000.0);
        }
    }
    drop(rx);
    task.await.unwrap().unwrap();
    for (what, mut lat) in [("broker ack", from_ack), ("producer send", from_send)] {
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "live: {} letters, {what} -> in the store: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            pct(0.5),
            pct(0.99),
            lat.last().copied().unwrap_or(f64::NAN)
        );
    }
}

/// Where a headless command's first 200 ms go: one browse consumer's stages, timed.
fn startup(b: &str, t: &str) {
    let cfg = KafkaConfig::new(b);
    let t0 = Instant::now();
    let mark = |what: &str| {
        println!(
            "startup: {:>7.1} ms  {what}",
            t0.elapsed().as_secs_f64() * 1e3
        )
    };
    let c = cfg.browse_consumer().unwrap();
    mark("consumer created");
    cfg.partitions(&c, t).unwrap();
    mark("metadata");
    let marks = cfg.watermarks(&c, t).unwrap();
    mark("watermarks");
    let mut tpl = TopicPartitionList::new();
    for (p, lo, _) in &marks {
        tpl.add_partition_offset(t, *p, Offset::Offset(*lo))
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    while c.poll(Duration::from_millis(100)).is_none() {}
    mark("first message");
    drop(c);
    mark("consumer dropped");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["raw", b, t] => raw(b, t),
        ["startup", b, t] => startup(b, t),
        ["index", b, t] => index(b, t).await,
        ["index-synthetic", n] => index_synthetic(n.parse().unwrap(), false),
        ["index-synthetic", n, "mongo"] => index_synthetic(n.parse().unwrap(), true),
        ["index-mongo", uri, db, coll] => index_mongo(uri, db, coll).await,
        ["search", b, t, q] => search(b, t, q).await,
        ["latency", b, t, n] => latency(b, t, n.parse().unwrap()).await,
        _ => {
            eprintln!(
                "usage: engine raw|index|search|latency BROKERS TOPIC [QUERY|N] | index-synthetic N"
            );
            std::process::exit(2);
        }
    }
}
