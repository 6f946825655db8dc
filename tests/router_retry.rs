//! `morgue route --retry-topics`: failing messages wait in retry topics (Spring
//! `@RetryableTopic` names and headers) while their source partition goes on, and
//! reach the DLQ after the last tier with the coordinates of their first consumption.
//! Through the binary, against the real broker: a retry that waits an hour does not
//! hold back the messages after it, and the tiers lose nothing while the broker is
//! killed twice and the router SIGKILLed once.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::chaos::create;
use crate::chaos_concurrent::log_lines;
use crate::common::server::Server;
use crate::common::*;
use morgue::engine::Reason;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// What message `i` does: how many attempts it needs, or `never` / `dead`.
fn kind(i: usize) -> &'static str {
    match i % 10 {
        0 => "flaky",
        1 => "twice",
        2 => "never",
        3 => "dead",
        _ => "ok",
    }
}

/// The processor: logs each attempt as `A i attempt topic partition offset` and each
/// success as `OK i attempt`; `flaky` needs 2 attempts, `twice` 3, `never` always
/// asks for a retry, `dead` is bad data. Messages run in parallel threads.
fn processor(log: &Path) -> String {
    let script = log.with_extension("py");
    let body = format!(
        r#"import json, sys, threading
log = open({log:?}, "a")
lock = threading.Lock()
NEED = {{"ok": 1, "flaky": 2, "twice": 3}}
def handle(m):
    kind, i = m["value"]["data"].split(" ")
    a = m["attempt"]
    with lock:
        log.write("A %s %d %s %d %d\n" % (i, a, m["topic"], m["partition"], m["offset"])); log.flush()
    if kind == "dead":
        answer = {{"id": m["id"], "status": "dead", "error": "ValueError: dead " + i}}
    elif kind in NEED and a >= NEED[kind]:
        with lock:
            log.write("OK %s %d\n" % (i, a)); log.flush()
        answer = {{"id": m["id"], "status": "ok"}}
    else:
        answer = {{"id": m["id"], "status": "retry", "error": "TimeoutError: %s attempt %d" % (i, a)}}
    with lock:
        sys.stdout.write(json.dumps(answer) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    threading.Thread(target=handle, args=(json.loads(line),)).start()
"#,
        log = log.display().to_string()
    );
    std::fs::write(&script, body).unwrap();
    format!("python3 {}", script.display())
}

fn router(brokers: &str, src: &str, dlq: &str, tiers: &str, log: &Path) -> Child {
    let group = format!("{src}-router");
    crate::common::procs::morgue_cmd()
        .args(["route", "--kafka", brokers, "--topic", dlq, "--source", src])
        // A restart under the same id takes the partitions back at once (as systemd's
        // Restart= does with the unit's id); noida-db would otherwise wait for the
        // SIGKILLed member forever (see router_partitions).
        .args([
            "--group",
            &group,
            "--instance-id",
            "router-1",
            "--concurrency",
            "8",
        ])
        .args(["--pipe", &processor(log), "--retry-topics", tiers])
        .args(["--dlq-attempts", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log.with_extension("router"))
                .unwrap(),
        ))
        .spawn()
        .unwrap()
}

/// `OK` lines: message → attempts at which it succeeded.
fn successes(log: &Path) -> HashMap<usize, Vec<u32>> {
    let mut ok: HashMap<usize, Vec<u32>> = HashMap::new();
    for l in log_lines(log) {
        if let Some(rest) = l.strip_prefix("OK ") {
            let (i, a) = rest.split_once(' ').unwrap();
            ok.entry(i.parse().unwrap())
                .or_default()
                .push(a.parse().unwrap());
        }
    }
    ok
}

#[tokio::test]
async fn a_retry_due_in_an_hour_does_not_hold_back_its_partition() {
    let src = TestTopic::new("rt-src", 1).await;
    let dlq = TestTopic::new("rt-dlq", 1).await;
    let log = std::env::temp_dir().join(unique("rt-hour"));
    let b = kafka_brokers();
    produce(&src.name, Some(b"k-0"), b"never 0", &[], None).await;
    for i in 1..=20 {
        let v = format!("ok {i}");
        produce(&src.name, Some(b"k-0"), v.as_bytes(), &[], None).await;
    }
    let before = chrono::Utc::now().timestamp_millis();
    let r = Spawned::new(router(&b, &src.name, &dlq.name, "1h", &log));
    let l = log.clone();
    wait_until("successes(&l).len() >= 20", 120, move || {
        successes(&l).len() >= 20
    })
    .await;
    let ok = successes(&log);
    assert_eq!(
        (1..=20).filter(|i| ok.contains_key(i)).count(),
        20,
        "the messages after a failing one (same key, same partition) were held back: {ok:?}"
    );
    // The failure waits in the first retry topic, with Spring's headers, due in an hour.
    let retry = format!("{}-retry-0", src.name);
    let waiting = wait_for_letters_on(&b, &retry, 1).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let w = &waiting[0];
    assert_eq!(w.value.as_deref(), Some(&b"never 0"[..]));
    assert_eq!(w.key.as_deref(), Some(&b"k-0"[..]));
    assert_eq!(
        w.headers.last("retry_topic-attempts"),
        Some(&2i32.to_be_bytes()[..])
    );
    let due = i64::from_be_bytes(
        w.headers
            .last("retry_topic-backoff-timestamp")
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let after = chrono::Utc::now().timestamp_millis();
    assert!(
        (before + 3_600_000..=after + 3_600_000).contains(&due),
        "due {due} not an hour after {before}..{after}"
    );
    assert_eq!(w.source.topic.as_deref(), Some(src.name.as_str()));
    assert_eq!((w.source.partition, w.source.offset), (Some(0), Some(0)));
    assert_eq!(w.failure.exception_class.as_deref(), Some("TimeoutError"));
    assert_eq!(w.failure.message.as_deref(), Some("0 attempt 1"));
    // The source is committed to its end although its first message is not done.
    wait_committed(&format!("{}-router", src.name), &src.name, 1).await;
    assert_eq!(
        committed(&format!("{}-router", src.name), &src.name, 1),
        vec![21]
    );
    assert!(read_all(&dlq.name).await.is_empty(), "nothing is dead yet");
    let out = stop(r.take());
    assert_eq!(
        (out["processed"].as_u64(), out["retried"].as_u64()),
        (Some(20), Some(1)),
        "{out}"
    );
    let said = std::fs::read_to_string(log.with_extension("router")).unwrap();
    assert!(said.contains("created retry topics"), "{said}");
}

/// Waits (up to 60 s) for `n` records in `topic` on `brokers`.
async fn wait_for_letters_on(
    brokers: &str,
    topic: &str,
    n: usize,
) -> Vec<morgue::engine::DeadLetter> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = read_all_on(brokers, topic).await;
        if all.len() >= n || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// SIGTERM, then the router's closing JSON line.
fn stop(child: Child) -> serde_json::Value {
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap()
}

#[tokio::test]
async fn retry_tiers_lose_nothing_through_broker_and_router_kills() {
    let n: usize = 400;
    let mut broker = Server::kafka();
    let b = broker.addr();
    create(&b, "rt-src", 4).await;
    create(&b, "rt-dlq", 1).await;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for i in 0..n {
        let key = format!("{i:08}-0000-4000-8000-{i:012}");
        let value = format!("{} {i}", kind(i));
        let rec = FutureRecord::to("rt-src").key(&key).payload(&value);
        p.send(rec, Duration::from_secs(10)).await.unwrap();
    }
    let log = std::env::temp_dir().join(unique("rt-chaos"));
    let mut r = Spawned::new(router(&b, "rt-src", "rt-dlq", "1s,2s", &log));
    // Kill the broker twice while letters wait in the tiers, then the router itself.
    for round in 0..3 {
        let before = log_lines(&log).len();
        let l = log.clone();
        wait_until("log_lines(&l).len() >= before + n / 5", 120, move || {
            log_lines(&l).len() >= before + n / 5
        })
        .await;
        if round < 2 {
            broker.kill();
            tokio::time::sleep(Duration::from_secs(2)).await;
            broker.restart();
        } else {
            let mut child = r.take();
            child.kill().unwrap();
            let _ = child.wait();
            r = Spawned::new(router(&b, "rt-src", "rt-dlq", "1s,2s", &log));
        }
    }
    let need = |i: usize| match kind(i) {
        "ok" => Some(1),
        "flaky" => Some(2),
        "twice" => Some(3),
        _ => None,
    };
    let settled = |ok: &HashMap<usize, Vec<u32>>, dead: &[morgue::engine::DeadLetter]| {
        (0..n).all(|i| match need(i) {
            Some(_) => ok.contains_key(&i),
            None => dead
                .iter()
                .any(|d| d.value.as_deref() == Some(format!("{} {i}", kind(i)).as_bytes())),
        })
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    let (ok, dead) = loop {
        let ok = successes(&log);
        let dead = read_all_on(&b, "rt-dlq").await;
        if settled(&ok, &dead) || Instant::now() > deadline {
            break (ok, dead);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // Where each message was first consumed, from its first attempts.
    let mut first: HashMap<usize, (i32, i64)> = HashMap::new();
    for l in log_lines(&log) {
        let f: Vec<&str> = l.split(' ').collect();
        if f[0] == "A" && f[2] == "1" && f[3] == "rt-src" {
            first.insert(
                f[1].parse().unwrap(),
                (f[4].parse().unwrap(), f[5].parse().unwrap()),
            );
        }
    }
    let mut lost = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..n {
        let value = format!("{} {i}", kind(i));
        let letters: Vec<_> = dead
            .iter()
            .filter(|d| d.value.as_deref() == Some(value.as_bytes()))
            .collect();
        match need(i) {
            Some(a) => match ok.get(&i) {
                None => lost.push(value),
                Some(at) if at.iter().any(|x| *x != a) => {
                    wrong.push(format!("{value}: ok at {at:?}"))
                }
                Some(_) if !letters.is_empty() => wrong.push(format!("{value}: also dead")),
                Some(_) => {}
            },
            None if letters.is_empty() => lost.push(value),
            None => {
                let (attempts, reason) = match kind(i) {
                    "never" => (3, Reason::MaxAttemptsExceeded),
                    _ => (1, Reason::Failed),
                };
                for d in letters {
                    let at = (
                        d.source.partition.unwrap_or(-1),
                        d.source.offset.unwrap_or(-1),
                    );
                    if d.source.topic.as_deref() != Some("rt-src")
                        || Some(&at) != first.get(&i)
                        || d.failure.attempts != Some(attempts)
                        || d.failure.reason != reason
                        || d.headers.iter().any(|h| h.name.starts_with("retry_topic-"))
                    {
                        wrong.push(format!(
                            "{value}: {:?} {:?} {at:?}",
                            d.source, d.failure.attempts
                        ));
                    }
                }
            }
        }
    }
    let dup_ok: usize = ok.values().map(|v| v.len() - 1).sum();
    let dup_dead = dead.len()
        - (0..n)
            .filter(|i| need(*i).is_none())
            .count()
            .min(dead.len());
    let mut retried = 0;
    for t in ["rt-src-retry-0", "rt-src-retry-1"] {
        retried += read_all_on(&b, t).await.len();
    }
    println!(
        "retry tiers 1s,2s: messages {n}, broker kills 2, router SIGKILL 1, lost {}, wrong {}, duplicated {dup_ok} processed and {dup_dead} dead, {retried} records in the retry topics",
        lost.len(),
        wrong.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert!(wrong.is_empty(), "wrong outcome: {wrong:?}");
    // 40 flaky + 40 twice (x2) + 40 never (x2) at least went through the tiers.
    assert!(retried >= 200, "{retried} records in the retry topics");
    sigterm(&r.take());
}
