//! `morgue route` and its consumer group against the real broker: a DLQ that refuses
//! one partition's letters holds back only that partition, and a command slower than
//! `max.poll.interval.ms` does not get the router thrown out of its group.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::*;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

async fn produce_to(topic: &str, partition: i32, key: &str, value: &[u8]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    p.send(
        FutureRecord::to(topic)
            .partition(partition)
            .key(key)
            .payload(value),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
}

fn route(source: &str, dlq: &str, group: &str, exec: &str, extra: &[&str]) -> Child {
    crate::common::procs::morgue_cmd()
        .args(["route", "--kafka", &kafka_brokers(), "--topic", dlq])
        .args(["--source", source, "--group", group, "--exec", exec])
        .args(["--max-attempts", "1", "--dlq-attempts", "1"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn stop(child: Child) -> (serde_json::Value, String) {
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "route failed: {err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

/// How long the DLQ refuses partition 0's letter: a few seconds in the suite;
/// `MORGUE_CHAOS_REFUSE_SECS=360` (scripts/chaos.sh) outlasts the default
/// `max.poll.interval.ms` of 300 s, so an evicted member would show.
fn refuse_secs() -> u64 {
    std::env::var("MORGUE_CHAOS_REFUSE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

#[tokio::test]
async fn a_dlq_refusing_one_partition_holds_back_only_that_partition() {
    let source = TestTopic::new("part-src", 2).await;
    // Letters over 1500 bytes are refused until the limit is raised.
    let dlq = TestTopic::with_config("part-dlq", 1, &[("max.message.bytes", "1500")]).await;
    let group = unique("part-group");
    let big = format!("poison {}", "x".repeat(4000));
    produce_to(&source.name, 0, "a-1", b"fine").await;
    produce_to(&source.name, 0, "a-2", big.as_bytes()).await;
    produce_to(&source.name, 0, "a-3", b"fine").await;
    let exec = r#"case "$(cat)" in poison*) echo "poison" >&2; exit 65;; esac"#;
    let child = Spawned::new(route(&source.name, &dlq.name, &group, exec, &[]));
    // Partition 0 stalls at its poison letter...
    let (g, t) = (group.clone(), source.name.clone());
    wait_until("committed(&g, &t, 2)[0] == 1", 60, move || {
        committed(&g, &t, 2)[0] == 1
    })
    .await;
    // ...and what arrives on partition 1 meanwhile, all through the stall, is
    // processed to its end, one in ten a small poison letter that gets through.
    let started = std::time::Instant::now();
    let (mut sent, mut poison) = (0i64, 0);
    while sent < 5 || started.elapsed() < Duration::from_secs(refuse_secs()) {
        let v = if sent % 10 == 2 {
            "poison small"
        } else {
            "fine"
        };
        poison += i32::from(sent % 10 == 2);
        produce_to(&source.name, 1, &format!("b-{sent}"), v.as_bytes()).await;
        sent += 1;
        tokio::time::sleep(Duration::from_millis(if sent < 5 { 0 } else { 1000 })).await;
        if sent % 60 == 0 {
            let done = committed(&group, &source.name, 2);
            assert_eq!(done[0], 1, "partition 0 committed past its stall");
            assert!(
                done[1] >= sent - 10,
                "partition 1 fell behind: {done:?} of {sent}"
            );
        }
    }
    let (g, t) = (group.clone(), source.name.clone());
    wait_until("committed(&g, &t, 2) == [1, sent]", 60, move || {
        committed(&g, &t, 2) == [1, sent]
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        committed(&group, &source.name, 2),
        [1, sent],
        "partition 0 committed past its stall"
    );
    let letters = read_all(&dlq.name).await;
    assert_eq!(
        letters.len(),
        poison as usize,
        "only partition 1's letters got through"
    );
    // The DLQ takes big letters again: partition 0 resumes and finishes.
    alter_topic(&dlq.name, "max.message.bytes", "1048576").await;
    let (g, t) = (group.clone(), source.name.clone());
    wait_until("committed(&g, &t, 2) == [3, sent]", 60, move || {
        committed(&g, &t, 2) == [3, sent]
    })
    .await;
    let (stats, err) = stop(child.take());
    // Each message handled once: an evicted member would have handled some twice.
    assert_eq!(
        read_all(&dlq.name).await.len(),
        poison as usize + 1,
        "{err}"
    );
    assert_eq!(stats["dlq_stalls"], 1, "{stats}");
    assert_eq!(stats["processed"], 2 + sent - i64::from(poison), "{stats}");
    assert_eq!(stats["failed"], 1 + poison, "{stats}");
    assert!(
        !err.contains("maximum poll interval"),
        "the router was taken for dead: {err}"
    );
    println!(
        "chaos refusal: {}s refused, {sent} messages on the flowing partition, lost 0, duplicated 0",
        started.elapsed().as_secs()
    );
}

#[tokio::test]
async fn a_command_slower_than_the_poll_interval_keeps_the_group_membership() {
    let source = TestTopic::new("slow-src", 1).await;
    let dlq = TestTopic::new("slow-dlq", 1).await;
    let group = unique("slow-group");
    produce_to(&source.name, 0, "slow", b"slow").await;
    produce_to(&source.name, 0, "quick", b"quick").await;
    // The first command takes twice the poll interval.
    let exec = r#"[ "$(cat)" = slow ] && sleep 14; true"#;
    let extra = [
        "-X",
        "session.timeout.ms=6000",
        "-X",
        "max.poll.interval.ms=7000",
        "--timeout",
        "60s",
    ];
    let child = Spawned::new(route(&source.name, &dlq.name, &group, exec, &extra));
    let (g, t) = (group.clone(), source.name.clone());
    wait_until("committed(&g, &t, 1) == [2]", 90, move || {
        committed(&g, &t, 1) == [2]
    })
    .await;
    let (stats, err) = stop(child.take());
    assert_eq!(stats["processed"], 2, "{stats} {err}");
    assert!(
        !err.contains("maximum poll interval"),
        "the router was taken for dead: {err}"
    );
    assert_eq!(committed(&group, &source.name, 1), [2]);
}

/// A router that records each value it processes in `log` (`--pipe`, 4 in flight).
fn member(source: &str, dlq: &str, group: &str, id: &str, log: &Path) -> Child {
    let script = log.with_extension("py");
    let body = format!(
        "import json, sys\nlog = open({:?}, 'a')\nfor line in sys.stdin:\n    m = json.loads(line)\n    log.write('%s %d %d\\n' % (m['value']['data'], m['partition'], m['offset'])); log.flush()\n    print(json.dumps({{'id': m['id'], 'status': 'ok'}}), flush=True)\n",
        log.display().to_string()
    );
    std::fs::write(&script, body).unwrap();
    let err = std::fs::File::create(log.with_extension(id)).unwrap();
    crate::common::procs::morgue_cmd()
        .args(["route", "--kafka", &kafka_brokers(), "--topic", dlq])
        .args(["--source", source, "--group", group, "--instance-id", id])
        .args(["--pipe", &format!("python3 {}", script.display())])
        .args(["--concurrency", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap()
}

/// The values processed, in order (a log line is `value partition offset`).
fn lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next().map(String::from))
        .collect()
}

/// noida-db never expires a SIGKILLed member, so a router restarted without an id
/// waits for it forever (measured: a new member still unassigned after 12 minutes);
/// Kafka gives up on it after `session.timeout.ms`. Either way, `--instance-id` makes a
/// restart (systemd's `Restart=`) take its partitions back at once, and the broker
/// fences a second router started with the same id.
#[tokio::test]
async fn a_restarted_router_takes_its_partitions_back_and_a_twin_is_fenced() {
    let source = TestTopic::new("inst-src", 4).await;
    let dlq = TestTopic::new("inst-dlq", 1).await;
    let group = unique("inst-group");
    let log = std::env::temp_dir().join(unique("inst-log"));
    let id = "router-host-1";
    // Messages keep arriving all through the test.
    let stop_producing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (halt, topic) = (stop_producing.clone(), source.name.clone());
    let producer = tokio::spawn(async move {
        let mut sent = Vec::new();
        while !halt.load(std::sync::atomic::Ordering::SeqCst) {
            let i = sent.len();
            let key = format!("{i:08}-1111-4000-8000-{i:012}");
            let value = format!("m-{i}");
            produce(&topic, Some(key.as_bytes()), value.as_bytes(), &[], None).await;
            sent.push(value);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sent
    });
    let progress = |at_least: usize| {
        let l = log.clone();
        wait_until("lines(&l).len() >= at_least", 90, move || {
            lines(&l).len() >= at_least
        })
    };
    let a = member(&source.name, &dlq.name, &group, id, &log);
    progress(150).await;
    let mut a = Spawned::new(a).take();
    a.kill().unwrap();
    a.wait().unwrap();
    // The restart takes the partitions back while the killed member is still known.
    let before = lines(&log).len();
    let b = Spawned::new(member(&source.name, &dlq.name, &group, id, &log));
    progress(before + 200).await;
    assert!(
        lines(&log).len() >= before + 200,
        "the restarted router processed nothing: {}",
        std::fs::read_to_string(log.with_extension(id)).unwrap_or_default()
    );
    // A twin with the same id fences it: it stops with an error naming the id.
    let b_err = log.with_extension(id);
    let b_said = {
        let mut b = b.take();
        let keep = log.with_extension("b");
        std::fs::rename(&b_err, &keep).unwrap();
        let c = Spawned::new(member(&source.name, &dlq.name, &group, id, &log));
        let mut status = None;
        for _ in 0..300 {
            status = b.try_wait().unwrap();
            if status.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if status.is_none() {
            b.kill().unwrap();
        }
        let said = std::fs::read_to_string(&keep).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(1), "not fenced: {said}");
        let before = lines(&log).len();
        progress(before + 200).await;
        stop_producing.store(true, std::sync::atomic::Ordering::SeqCst);
        let sent = producer.await.unwrap();
        let l = log.clone();
        let all = sent.clone();
        wait_until("every message to reach the processor", 120, move || {
            let seen: std::collections::HashSet<String> = lines(&l).into_iter().collect();
            all.iter().all(|v| seen.contains(v))
        })
        .await;
        let processed = lines(&log);
        let seen: std::collections::HashSet<&String> = processed.iter().collect();
        let lost: Vec<&String> = sent.iter().filter(|v| !seen.contains(v)).collect();
        println!(
            "instance id: {} messages while a router was SIGKILLed, restarted and fenced by a twin: lost {}, processed twice {}",
            sent.len(),
            lost.len(),
            processed.len() - seen.len()
        );
        assert!(lost.is_empty(), "lost: {lost:?}");
        let (stats, err) = stop(c.take());
        assert!(stats["processed"].as_u64().unwrap() > 0, "{stats} {err}");
        wait_committed(&group, &source.name, 4).await;
        assert_eq!(
            committed(&group, &source.name, 4),
            high_watermarks(&source.name, 4)
        );
        said
    };
    assert!(
        b_said.contains(&format!(
            "another router joined group '{group}' with --instance-id '{id}'; this one stops"
        )),
        "{b_said}"
    );
}
