//! Ledger checkpoints against the real broker: a ledger cut by a checkpoint is read
//! from it with every state and history; a checkpoint written (or its writer killed)
//! while another session claims the same letters; a broker stopped and started again
//! while a checkpoint is written. `MORGUE_TEST_CHECKPOINT_EVERY` makes checkpoints
//! frequent.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use crate::common::procs::{finish, json_lines, replay_ids, shown, stderr, wait_marker};
use crate::common::race::Race;
use crate::common::server::Server;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Low and high watermark of partition 0 of `topic` on `brokers`.
fn watermarks(brokers: &str, topic: &str) -> (i64, i64) {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    c.fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap()
}

/// `cmd` writing a checkpoint after every `n` entries.
fn often(mut cmd: Command, n: u32) -> Command {
    cmd.env("MORGUE_TEST_CHECKPOINT_EVERY", n.to_string());
    cmd
}

/// Every letter's JSON line by letter id, as a new session reads it.
fn letters(r: &Race) -> HashMap<String, serde_json::Value> {
    let out = r.morgue(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    json_lines(&out)
        .into_iter()
        .map(|l| (l["id"].as_str().unwrap().to_string(), l))
        .collect()
}

#[tokio::test]
async fn a_ledger_cut_by_checkpoints_is_read_from_them_with_every_state_and_history() {
    const N: usize = 40;
    let r = Race::new("ckpt-cut", N).await;
    let ledger = format!("{}.morgue-ledger", r.dlq.name);
    let ids: Vec<String> = {
        let mut v: Vec<String> = letters(&r).into_keys().collect();
        v.sort();
        v
    };
    // Twenty resolves, one write each, then a replay of the rest: checkpoints all along.
    let mut resolve = vec!["resolve"];
    resolve.extend(ids[..20].iter().map(String::as_str));
    resolve.push("--yes");
    let out = often(r.command(&resolve), 5).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = often(r.command(&["replay", "--filter", "state:new", "--yes"]), 5)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let (lo, hi) = watermarks(&r.brokers, &ledger);
    assert!(lo > 0, "the ledger was never cut ({lo}..{hi})");
    assert_covered(&r.brokers, &r.dlq.name, "cut ledger");
    // A new session reads the cut ledger from the checkpoint: states and histories.
    let before = letters(&r);
    for id in &ids[..20] {
        assert_eq!(before[id]["state"], "resolved", "{id}: {}", before[id]);
    }
    for id in &ids[20..] {
        assert!(
            shown(&before[id]["state"]) == "replayed",
            "{id}: {}",
            before[id]
        );
        assert_eq!(replay_ids(&before[id]).len(), 1, "{id}");
    }
    let show = r.morgue(&["show", &ids[30]]);
    assert!(show.status.success(), "{}", stderr(&show));
    assert!(String::from_utf8_lossy(&show.stdout).contains(&replay_ids(&before[&ids[30]])[0]));
    // Written on from the checkpoint's entry: the history grows, it is not replaced.
    let key = before[&ids[30]]["key"]["data"]
        .as_str()
        .unwrap()
        .to_string();
    let filter = format!("key:{key}");
    let out = often(
        r.command(&["replay", "--filter", &filter, "--force", "--yes"]),
        5,
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let after = letters(&r);
    let h = replay_ids(&after[&ids[30]]);
    assert_eq!(h.len(), 2, "{}", after[&ids[30]]);
    assert_eq!(h[0], replay_ids(&before[&ids[30]])[0]);
    for id in ids.iter().filter(|id| **id != ids[30]) {
        assert_eq!(after[id]["state"], before[id]["state"], "{id}");
        assert_eq!(replay_ids(&after[id]), replay_ids(&before[id]), "{id}");
    }
    // In the source: the twenty replayed once, the forced one twice, the resolved never.
    let arrived = r.arrived().await;
    assert_eq!(arrived.len(), 20);
    assert_eq!(arrived.get(&key), Some(&2));
    assert_eq!(arrived.values().sum::<usize>(), 21);
}

#[tokio::test]
async fn a_checkpoint_written_or_killed_while_another_session_claims_the_same_letters() {
    const N: usize = 60;
    let steps = ["checkpoint-snapshot", "checkpoint-head", "checkpoint-parts"];
    for (round, step) in steps.iter().enumerate() {
        let r = Race::new(&format!("ckpt-race{round}"), N).await;
        // The writer stops inside its checkpoint (after its first window's claims)…
        let mut a = often(r.replay_all(&[]), 1);
        a.env("MORGUE_TEST_PAUSE", format!("{step}:4000"));
        let (a, reader) = wait_marker(a.spawn().unwrap(), &format!("morgue-test-pause: {step}"), 3);
        // …while another session claims the same letters, and writes checkpoints too.
        let b = often(r.replay_all(&[]), 1).output().unwrap();
        assert!(b.status.success(), "round {round}: {}", stderr(&b));
        // The writer finishes, but in the last round, where it is SIGKILLed before it cuts.
        let a_out = if round < 2 {
            Some(finish(a, reader))
        } else {
            let mut a = a;
            a.kill().unwrap();
            a.wait().unwrap();
            drop(reader);
            None
        };
        if let Some(o) = &a_out {
            assert!(o.status.success(), "round {round}: {}", stderr(o));
        }
        // Whatever is left `replaying` is finished; then every session agrees.
        let c = often(r.replay_all(&["--takeover-after", "0s"]), 1)
            .output()
            .unwrap();
        assert!(c.status.success(), "round {round}: {}", stderr(&c));
        r.assert_exactly_once().await;
        let states = letters(&r);
        assert_eq!(
            states
                .values()
                .filter(|l| shown(&l["state"]) == "replayed")
                .count(),
            N,
            "round {round}"
        );
        assert!(
            states.values().all(|l| replay_ids(l).len() == 1),
            "round {round}"
        );
        assert_covered(&r.brokers, &r.dlq.name, &format!("round {round}"));
    }
}

#[tokio::test]
async fn a_broker_stopped_and_started_while_a_checkpoint_is_written() {
    const N: usize = 40;
    let mut server = Server::kafka();
    let r = Race::on(&server.addr(), "ckpt-outage", N).await;
    let mut a = often(r.replay_all(&[]), 1);
    a.env("MORGUE_TEST_PAUSE", "checkpoint-head:3000");
    let (a, reader) = wait_marker(a.spawn().unwrap(), "morgue-test-pause: checkpoint-head", 3);
    // The broker goes away while the head is written and the parts are not.
    server.stop();
    std::thread::sleep(Duration::from_secs(4));
    server.restart();
    let out = finish(a, reader);
    assert!(out.status.success(), "{}", stderr(&out));
    // A new session reads whatever checkpoint is complete, then the ledger after it.
    let c = often(r.replay_all(&["--takeover-after", "0s"]), 1)
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", stderr(&c));
    r.assert_exactly_once().await;
    let states = letters(&r);
    assert_eq!(
        states
            .values()
            .filter(|l| shown(&l["state"]) == "replayed")
            .count(),
        N
    );
    assert_covered(&r.brokers, &r.dlq.name, "after the outage");
}

/// The `upto` of each complete checkpoint (a head and every part it announces) in the
/// checkpoint topic of `dlq`.
fn complete_checkpoints(brokers: &str, dlq: &str) -> Vec<i64> {
    use rdkafka::message::Message;
    let topic = format!("{dlq}.morgue-checkpoint");
    let (lo, hi) = watermarks(brokers, &topic);
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "ckpt-test")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Offset(lo))
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut heads: HashMap<String, (u64, i64)> = HashMap::new();
    let mut parts: HashMap<String, u64> = HashMap::new();
    let mut next = lo;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while next < hi {
        assert!(
            std::time::Instant::now() < deadline,
            "'{topic}' stuck at {next} of {hi}"
        );
        let m = match c.poll(Duration::from_secs(1)) {
            Some(Ok(m)) => m,
            Some(Err(e)) => panic!("reading '{topic}': {e}"),
            None => continue,
        };
        next = m.offset() + 1;
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        if let Some(id) = key.strip_prefix("h/") {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            let h = &v["checkpoint"];
            heads.insert(
                id.to_string(),
                (h["parts"].as_u64().unwrap(), h["upto"].as_i64().unwrap()),
            );
        } else if let Some((id, _)) = key.strip_prefix("p/").and_then(|k| k.rsplit_once('/')) {
            *parts.entry(id.to_string()).or_default() += 1;
        }
    }
    heads
        .iter()
        .filter(|(id, (n, _))| parts.get(*id).copied().unwrap_or(0) == *n)
        .map(|(_, (_, upto))| *upto)
        .collect()
}

/// Asserts that a complete checkpoint covers the ledger's start (what a new session
/// needs to read it at all).
fn assert_covered(brokers: &str, dlq: &str, what: &str) {
    let (lo, _) = watermarks(brokers, &format!("{dlq}.morgue-ledger"));
    let best = complete_checkpoints(brokers, dlq).into_iter().max();
    assert!(
        best.is_some_and(|upto| upto >= lo) || (lo == 0 && best.is_some()),
        "{what}: ledger starts at {lo}, best complete checkpoint {best:?}"
    );
}
