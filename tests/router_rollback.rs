//! A broker that comes back without a dead letter it had acknowledged, while the
//! router's commit past that letter's message survives: what an unclean leader
//! election of the DLQ partition does (its new leader never had the letter, the offsets
//! live elsewhere), and what a commit that librdkafka retries after a restart does to a
//! broker that came back from an older state (noida-db killed between two snapshots).
//! Injected exactly: the broker's data directory is saved while the router waits on one
//! message; the router then dead-letters the next one and the broker acknowledges it;
//! the broker is killed, its saved state put back, the router's commit made again on a
//! port the router does not know, and the broker started where the router finds it.
//! The router must notice the letter is gone, read its message again and dead-letter it
//! again; nothing may be lost, also when that rewind is itself lost. The broker is always a noida-db of the test's own (a
//! cluster given by `MORGUE_TEST_KAFKA` cannot be rolled back).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::server::Server;
use crate::common::*;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn key(i: usize) -> String {
    format!("{i:08}-0000-4000-8000-{i:012}")
}

async fn create(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let t = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    for r in admin
        .create_topics([&t], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

/// Produces `values` to `topic`, message `i` with key `key(i)`.
async fn produce_values(brokers: &str, topic: &str, values: &[&str]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for (i, v) in values.iter().enumerate() {
        p.send(
            FutureRecord::to(topic).key(&key(i)).payload(*v),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    }
}

/// `morgue route` from `{name}-src` to `{name}-dlq` in group `name` with `exec`, one
/// attempt, the faults of `drop` (`MORGUE_TEST_DROP`), stderr into `stderr`.
fn spawn_router(brokers: &str, name: &str, exec: &str, drop: &str, stderr: &Path) -> Spawned {
    let (src, dlq) = (format!("{name}-src"), format!("{name}-dlq"));
    Spawned::new(
        crate::common::procs::morgue_cmd()
            .args(["route", "--kafka", brokers, "--topic", &dlq])
            .args(["--source", &src, "--group", name, "--exec", exec])
            .args(["--max-attempts", "1", "--dlq-attempts", "3"])
            .env("MORGUE_TEST_DROP", drop)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// The group's committed offset of partition 0, as the broker has it now (-1: none).
fn committed(brokers: &str, group: &str, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    match c.committed_offsets(tpl, Duration::from_secs(10)) {
        Ok(got) => match got.find_partition(topic, 0).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        },
        Err(_) => -1,
    }
}

/// The members of `group` and its state, as the broker has them now.
fn group_state(brokers: &str, group: &str) -> (usize, String) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    match c.fetch_group_list(Some(group), Duration::from_secs(10)) {
        Ok(list) => list.groups().first().map_or((0, String::new()), |g| {
            (g.members().len(), g.state().to_string())
        }),
        Err(_) => (0, String::new()),
    }
}

/// Commits `offset` for `group` in partition 0 of `topic`, as a member would have.
fn commit(brokers: &str, group: &str, topic: &str, offset: i64) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

/// Keys of the letters in `dlq` now.
fn dead_keys(brokers: &str, dlq: &str) -> Vec<String> {
    let cfg = morgue::backends::kafka::KafkaConfig::new(brokers);
    let mut keys = Vec::new();
    cfg.read_to_end(dlq, |l| {
        keys.push(String::from_utf8(l.key.unwrap_or_default()).unwrap())
    })
    .unwrap();
    keys
}

/// Waits for `done`, failing the test with `what` when it does not come.
async fn until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_broker_restored_to_an_older_state_loses_no_dead_letter() {
    rollback(false).await;
}

/// The same, with the router's first rewind dropped (`MORGUE_TEST_DROP=rewind`), as
/// when its commit is refused while the group rejoins after the restart and the
/// partition is assigned again from the old commit: the router must see the partition
/// read on past the lost letter's message and rewind it again.
#[tokio::test]
async fn a_rewind_lost_in_a_rejoin_is_made_again() {
    rollback(true).await;
}

async fn rollback(drop_rewind: bool) {
    let mut broker = Server::kafka();
    let b = broker.addr();
    create(&b, "rb-src").await;
    create(&b, "rb-dlq").await;
    // 0 ok, 1 waits for gate a, 2 poison, 3 waits for gate b, 4 ok.
    let values = ["ok", "gate a", "poison", "gate b", "ok"];
    produce_values(&b, "rb-src", &values).await;
    let dir = std::env::temp_dir().join(unique("rollback"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("processed");
    let exec = format!(
        r#"v=$(cat); case "$v" in
  poison*) echo "ValueError: bad $v" >&2; exit 65;;
  gate*) while [ ! -e {dir}/"${{v#gate }}" ]; do sleep 0.05; done;;
esac; echo "$MORGUE_KEY" >> {log}"#,
        dir = dir.display(),
        log = log.display()
    );
    let stderr = dir.join("router.err");
    let faults = if drop_rewind { "rewind" } else { "" };
    let router = spawn_router(&b, "rb", &exec, faults, &stderr);

    // The router waits on message 1 with 0 done and committed: save the broker's state.
    let (b1, l1) = (b.clone(), log.clone());
    until(60, "message 0 was not processed and committed", move || {
        lines(&l1).len() == 1 && committed(&b1, "rb", "rb-src") == 1
    })
    .await;
    broker.stop();
    let saved = dir.join("saved-broker");
    broker.save(&saved);
    broker.restart();
    // The test broker forgets its groups' members on a restart: commits made before
    // the router joins again are refused, and the group then reads from the last
    // commit again, which message 3's gate (below) would hold up. Wait for the join.
    let b0 = b.clone();
    until(60, "the router did not join its group again", move || {
        let (members, state) = group_state(&b0, "rb");
        members == 1 && state == "Stable"
    })
    .await;

    // Let 1 through: 2 is dead-lettered, and the broker acknowledges and commits past it.
    std::fs::write(dir.join("a"), "").unwrap();
    let b2 = b.clone();
    until(
        60,
        "message 2 was not dead-lettered and committed",
        move || committed(&b2, "rb", "rb-src") == 3 && dead_keys(&b2, "rb-dlq") == vec![key(2)],
    )
    .await;

    // The broker comes back from the saved state (no letter) with the commit past it.
    broker.kill();
    broker.roll_back(&saved);
    let port = broker.port;
    broker.port = free_port();
    broker.restart();
    commit(&broker.addr(), "rb", "rb-src", 3);
    assert!(
        dead_keys(&broker.addr(), "rb-dlq").is_empty(),
        "the rollback kept the letter"
    );
    assert_eq!(committed(&broker.addr(), "rb", "rb-src"), 3);
    broker.stop();
    broker.port = port;
    broker.restart();
    std::fs::write(dir.join("b"), "").unwrap();

    let b3 = b.clone();
    until(90, "the lost letter was not written again", move || {
        dead_keys(&b3, "rb-dlq").contains(&key(2)) && committed(&b3, "rb", "rb-src") == 5
    })
    .await;
    let processed = lines(&log);
    for i in [0, 1, 3, 4] {
        assert!(
            processed.contains(&key(i)),
            "message {i} was never processed"
        );
    }
    assert!(
        !processed.contains(&key(2)),
        "the poison message counted as processed"
    );
    // At least once: a DLQ write answered with an error after the restart may have
    // been stored, and is then written again (the suite's chaos runs count those).
    let dead = dead_keys(&b, "rb-dlq");
    println!(
        "rollback: letters of message 2 after the rollback: {}",
        dead.len()
    );
    assert!(
        dead.iter().all(|k| *k == key(2)),
        "only message 2 is dead: {dead:?}"
    );
    assert_eq!(committed(&b, "rb", "rb-src"), 5);
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        err.contains("the broker lost the dead letter of rb-src:0:2"),
        "the router did not say what it found: {err}"
    );
    if drop_rewind {
        assert!(
            err.contains("rewinding it again to 2"),
            "the router did not notice its rewind was lost: {err}"
        );
    }
    drop(router);
}

/// Two rollbacks, the second found while the partition is read again below the letter
/// it lost. Message 4 runs (on gate a) across the first rollback, which loses the
/// letters of 1 and 3: the partition is read again from 1, and waits on message 2's
/// second run (gate b) with 3 not yet read again. Message 4's run then dead-letters
/// it, and a second rollback loses that letter. Rewinding to 4 would move the
/// partition forward past 3, whose letter is gone: the rewind must go no further than
/// 2, the first offset not finished.
#[tokio::test]
async fn a_letter_lost_above_a_partition_read_again_never_moves_it_forward() {
    let mut broker = Server::kafka();
    let b = broker.addr();
    create(&b, "rf-src").await;
    create(&b, "rf-dlq").await;
    let values = ["ok", "poison", "again b", "poison", "gate a", "ok"];
    produce_values(&b, "rf-src", &values).await;
    let dir = std::env::temp_dir().join(unique("rollforward"));
    std::fs::create_dir_all(&dir).unwrap();
    // The broker as it was before the router ran: the messages, no letter, no commit.
    broker.stop();
    let before = dir.join("before");
    broker.save(&before);
    broker.restart();
    let log = dir.join("processed");
    let exec = format!(
        r#"v=$(cat); n=$(( $(cat {dir}/runs-$MORGUE_KEY 2>/dev/null || echo 0) + 1 )); echo $n > {dir}/runs-$MORGUE_KEY
case "$v" in
  poison*) echo "ValueError: bad $v" >&2; exit 65;;
  gate*) while [ ! -e {dir}/a ]; do sleep 0.05; done; echo "ValueError: late $v" >&2; exit 65;;
  again*) if [ $n -ge 2 ]; then while [ ! -e {dir}/b ]; do sleep 0.05; done; fi;;
esac; echo "$MORGUE_KEY" >> {log}"#,
        dir = dir.display(),
        log = log.display()
    );
    let stderr = dir.join("router.err");
    let router = spawn_router(&b, "rf", &exec, "", &stderr);
    let runs = |i: usize| -> usize {
        std::fs::read_to_string(dir.join(format!("runs-{}", key(i))))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };

    // 1 and 3 dead-lettered, 0 and 2 processed, 4 waits on gate a.
    let b1 = b.clone();
    until(60, "letters of 1 and 3, then message 4 running", || {
        dead_keys(&b1, "rf-dlq") == vec![key(1), key(3)] && runs(4) == 1
    })
    .await;
    // First rollback: both letters gone. The partition is read again from 1 at most:
    // 1 is dead-lettered again, and 2 waits on gate b in its second run.
    broker.kill();
    broker.roll_back(&before);
    broker.restart();
    let b2 = b.clone();
    until(
        90,
        "message 1 not dead-lettered again after the rollback",
        || dead_keys(&b2, "rf-dlq").contains(&key(1)) && runs(2) >= 2,
    )
    .await;
    assert_eq!(runs(3), 1, "message 3 is read again only after 2 finishes");
    broker.stop();
    let middle = dir.join("middle");
    broker.save(&middle);
    broker.restart();
    // Message 4's run (from before the first rollback) dead-letters it now...
    std::fs::write(dir.join("a"), "").unwrap();
    let b3 = b.clone();
    until(60, "message 4 was not dead-lettered", || {
        dead_keys(&b3, "rf-dlq").contains(&key(4))
    })
    .await;
    // ...and the second rollback loses that letter while 2 still runs and 3 waits.
    broker.kill();
    broker.roll_back(&middle);
    broker.restart();
    let b4 = b.clone();
    let s = stderr.clone();
    until(
        90,
        "the router did not find the letter of 4 lost",
        move || {
            std::fs::read_to_string(&s)
                .unwrap_or_default()
                .contains("the broker lost the dead letter of rf-src:0:4")
                && !dead_keys(&b4, "rf-dlq").contains(&key(4))
        },
    )
    .await;
    // Where it sent the partition back to: no further than 2 (message 2 runs, 3 was
    // not read again). A rewind to 4 commits 4: message 3 is then lost for good if no
    // rebalance happens to put the partition back at an older commit.
    let err = std::fs::read_to_string(&stderr).unwrap();
    let to: i64 = err
        .lines()
        .find(|l| l.contains("lost the dead letter of rf-src:0:4"))
        .and_then(|l| l.rsplit("again from offset ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(
        to <= 2,
        "the rewind for the letter of 4 moved the partition forward to {to}, past message 3: {err}"
    );
    std::fs::write(dir.join("b"), "").unwrap();
    let b5 = b.clone();
    until(90, "not every message was done and committed (the letter of 3, lost in the first rollback, never written again?)", move || {
        let dead = dead_keys(&b5, "rf-dlq");
        [1, 3, 4].iter().all(|i| dead.contains(&key(*i))) && committed(&b5, "rf", "rf-src") == 6
    })
    .await;
    let processed = lines(&log);
    for i in [0, 2, 5] {
        assert!(
            processed.contains(&key(i)),
            "message {i} was never processed"
        );
    }
    let err = std::fs::read_to_string(&stderr).unwrap();
    println!(
        "rollforward: runs of message 3: {}; the router said: {}",
        runs(3),
        err.lines()
            .filter(|l| l.contains("lost the dead letter"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    drop(router);
}
