//! Reading a DLQ topic through the engine's source trait, against the real broker:
//! start positions, catching up, following live, fetching by id, and disturbing no one.
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;
use morgue::backends::kafka::KafkaConfig;
use morgue::backends::kafka::source::KafkaSource;
use morgue::engine::model::error::FailureKind;
use morgue::engine::read::source::{DeadLetterSource, SourceEvent, StartAt};
use morgue::engine::{DeadLetter, LetterId};
use tokio::sync::mpsc;

async fn seeded(prefix: &str, n: usize) -> TestTopic {
    let t = TestTopic::new(prefix, 2).await;
    for i in 0..n {
        let key = format!("k{i}");
        produce(
            &t.name,
            Some(key.as_bytes()),
            format!("{{\"i\":{i}}}").as_bytes(),
            &[],
            None,
        )
        .await;
    }
    t
}

/// Streams without following; returns the letters and whether CaughtUp came last.
async fn collect(src: &KafkaSource, from: StartAt) -> (Vec<DeadLetter>, bool) {
    let (tx, mut rx) = mpsc::channel(2);
    let s = src.clone();
    let task = tokio::spawn(async move { s.stream(from, false, tx).await });
    let mut out = Vec::new();
    let mut caught_up = false;
    while let Some(ev) = rx.recv().await {
        match ev {
            SourceEvent::Letters(v) => out.extend(v),
            SourceEvent::CaughtUp { delivered } => {
                assert_eq!(delivered as usize, out.len());
                caught_up = true;
            }
            other => panic!("a Kafka scan has nothing to announce: {other:?}"),
        }
    }
    task.await.unwrap().unwrap();
    (out, caught_up)
}

#[tokio::test]
async fn streams_from_each_start_position_and_catches_up() {
    let t = seeded("source-positions", 1200).await;
    let src = KafkaSource::new(KafkaConfig::new(kafka_brokers()), &t.name);
    assert_eq!(src.count().await.unwrap(), 1200);

    let (all, caught_up) = collect(&src, StartAt::Beginning).await;
    assert!(caught_up);
    assert_eq!(all.len(), 1200);
    let mut values: Vec<_> = all.iter().map(|l| l.value.clone().unwrap()).collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 1200, "no duplicates");

    let (none, caught_up) = collect(&src, StartAt::End).await;
    assert!(caught_up && none.is_empty());

    let (tail, _) = collect(&src, StartAt::Offset(550)).await;
    let marks = high_watermarks(&t.name, 2);
    let expected: i64 = marks.iter().map(|hi| (hi - 550).max(0)).sum();
    assert_eq!(tail.len() as i64, expected);
    assert!(
        tail.iter()
            .all(|l| matches!(l.id, Some(LetterId::Kafka { offset, .. }) if offset >= 550))
    );

    let future = chrono::Utc::now().timestamp_millis() + 3_600_000;
    let (later, caught_up) = collect(&src, StartAt::Time(future)).await;
    assert!(caught_up && later.is_empty());
    let (since_epoch, _) = collect(&src, StartAt::Time(0)).await;
    assert_eq!(since_epoch.len(), 1200);
}

async fn next(rx: &mut mpsc::Receiver<SourceEvent>) -> SourceEvent {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn follows_new_letters_live() {
    let t = seeded("source-follow", 3).await;
    let src = KafkaSource::new(KafkaConfig::new(kafka_brokers()), &t.name);
    let (tx, mut rx) = mpsc::channel(4);
    let s = src.clone();
    let task = tokio::spawn(async move { s.stream(StartAt::Beginning, true, tx).await });
    let mut seen = 0;
    while let SourceEvent::Letters(v) = next(&mut rx).await {
        seen += v.len();
    }
    assert_eq!(seen, 3);
    produce(&t.name, Some(b"live"), b"arrived later", &[], None).await;
    let got = loop {
        match tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            SourceEvent::Letters(v) if !v.is_empty() => break v,
            _ => {}
        }
    };
    assert_eq!(got[0].value.as_deref(), Some(&b"arrived later"[..]));
    drop(rx);
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn fetches_one_letter_and_explains_a_missing_one() {
    let t = seeded("source-fetch", 4).await;
    let src = KafkaSource::new(KafkaConfig::new(kafka_brokers()), &t.name);
    let (all, _) = collect(&src, StartAt::Beginning).await;
    let want = &all[all.len() - 1];
    let got = src.fetch(want.id.as_ref().unwrap()).await.unwrap();
    assert_eq!(&got, want);
    let err = src
        .fetch(&LetterId::Kafka {
            partition: 0,
            offset: 999,
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("no letter 0:999 in topic '{}'", t.name)),
        "{err}"
    );
    let err = src
        .fetch(&LetterId::Kafka {
            partition: 9,
            offset: 0,
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the topic has 2 partitions"),
        "{err}"
    );
    assert_eq!(err.kind, FailureKind::NotFound);
    // A missing topic, and a broker that is not there, are told apart by kind, with
    // the backend's own error kept as the cause.
    let gone = KafkaSource::new(KafkaConfig::new(kafka_brokers()), unique("no-such-topic"));
    let err = gone.count().await.unwrap_err();
    assert_eq!(err.kind, FailureKind::NotFound, "{err}");
    let port = free_port();
    let mut cfg = KafkaConfig::new(format!("127.0.0.1:{port}"));
    cfg.connect_timeout = Duration::from_secs(2);
    let down = KafkaSource::new(cfg, &t.name);
    let err = down.count().await.unwrap_err();
    assert_eq!(err.kind, FailureKind::Unreachable, "{err}");
    assert!(std::error::Error::source(&err).is_some(), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}

#[tokio::test]
async fn inspecting_commits_nothing_for_anyone() {
    let t = seeded("source-quiet", 10).await;
    // The team's DLQ consumer group has committed offset 2 on partition 0.
    {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        use rdkafka::{ClientConfig, Offset, TopicPartitionList};
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .set("group.id", "deadletter-consumer-group-quiet")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&t.name, 0, Offset::Offset(2))
            .unwrap();
        c.commit(&tpl, CommitMode::Sync).unwrap();
    }
    let brokers = kafka_brokers();
    let out = crate::common::procs::morgue_cmd()
        .args(["list", "--kafka", &brokers, "--topic", &t.name])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 10);
    assert_eq!(
        committed("deadletter-consumer-group-quiet", &t.name, 2),
        [2, -1]
    );
    assert_eq!(committed("morgue-browse", &t.name, 2), [-1, -1]);
}

#[tokio::test]
async fn list_follow_prints_a_letter_produced_after_start() {
    let t = seeded("source-cli-follow", 1).await;
    let brokers = kafka_brokers();
    let mut child = crate::common::procs::morgue_cmd()
        .args([
            "list", "--follow", "--from", "end", "--kafka", &brokers, "--topic", &t.name,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::BufReader::new(stdout).lines().next());
    // Following from the end once it says so.
    crate::common::Tap::stderr(&mut child).wait_for("caught up; following", 60);
    produce(&t.name, Some(b"new"), b"{\"late\":true}", &[], None).await;
    let line = reader.join().unwrap().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["value"]["data"], "{\"late\":true}");
}

/// A producer for a test's own broker.
fn producer_on(brokers: &str) -> rdkafka::producer::FutureProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap()
}

async fn send_on(p: &rdkafka::producer::FutureProducer, topic: &str, key: &str) {
    let r: rdkafka::producer::FutureRecord<'_, str, str> =
        rdkafka::producer::FutureRecord::to(topic)
            .key(key)
            .payload("{}");
    p.send(r, Duration::from_secs(60)).await.unwrap();
}

#[tokio::test]
async fn following_waits_for_a_broker_that_went_away_and_goes_on() {
    let mut broker = crate::common::server::Server::kafka();
    let b = broker.addr();
    let t = TestTopic::named_on(&b, unique("away"), 1, &[]).await;
    let p = producer_on(&b);
    send_on(&p, &t.name, "6f1c2a9e-3b4d-4e5f-9a8b-000000000001").await;
    let src = KafkaSource::new(KafkaConfig::new(b.clone()), &t.name);
    let (tx, mut rx) = mpsc::channel(8);
    let reader = tokio::spawn(async move { src.stream(StartAt::Beginning, true, tx).await });
    let mut keys = Vec::new();
    let mut notices = Vec::new();
    let mut next_event =
        async |keys: &mut Vec<String>, notices: &mut Vec<String>| match tokio::time::timeout(
            Duration::from_secs(90),
            rx.recv(),
        )
        .await
        {
            Ok(Some(SourceEvent::Letters(v))) => keys.extend(v.iter().map(|l| {
                String::from_utf8_lossy(l.key.as_deref().unwrap_or_default()).into_owned()
            })),
            Ok(Some(SourceEvent::Notice(n))) => notices.push(n),
            Ok(Some(SourceEvent::CaughtUp { .. })) => notices.push("caught up".into()),
            Ok(Some(SourceEvent::Silent { server, .. })) => {
                notices.push(format!("silent {server}"))
            }
            Ok(Some(SourceEvent::Answering { server })) => {
                notices.push(format!("answering {server}"))
            }
            other => panic!("the stream ended: {other:?} after {notices:?}"),
        };
    while !notices.iter().any(|n| n == "caught up") {
        next_event(&mut keys, &mut notices).await;
    }
    // The broker goes away: the stream says so and keeps following.
    broker.stop();
    while !notices.iter().any(|n| n.contains("still following")) {
        next_event(&mut keys, &mut notices).await;
    }
    assert!(notices.iter().any(|n| n.contains(&b)), "{notices:?}");
    assert!(!reader.is_finished());
    // It comes back; a letter written then arrives, once, and the stream says so.
    broker.restart();
    send_on(&p, &t.name, "6f1c2a9e-3b4d-4e5f-9a8b-000000000002").await;
    while !keys.iter().any(|k| k.ends_with("0002")) {
        next_event(&mut keys, &mut notices).await;
    }
    assert_eq!(
        keys,
        vec![
            "6f1c2a9e-3b4d-4e5f-9a8b-000000000001",
            "6f1c2a9e-3b4d-4e5f-9a8b-000000000002"
        ]
    );
    assert!(
        notices.iter().any(|n| n.contains("reachable again")),
        "{notices:?}"
    );
    drop(rx);
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
}
