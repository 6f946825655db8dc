//! An incident, run continuously: a DLQ filling from the router over a failing
//! processor while three operators replay overlapping filters at different rates (one
//! stopped and resumed, one killed and rerun), the broker frozen once, and a MongoDB
//! DLQ filling and replayed beside it. Replays go to a fixed topic (`--to`), where every
//! letter must arrive exactly once. `MORGUE_INCIDENT_SECS` sets the length (default 40
//! in the suite; `scripts/incident.sh` runs 300 and prints the figures).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::procs::{json_lines, stderr};
use crate::common::server::Server;
use crate::common::*;
use mongodb::bson::{DateTime, doc};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// One operator: reruns `morgue replay ARGS` until told to stop; the pid of the run in
/// progress is published for the chaos to stop or kill.
fn operator(
    args: Vec<String>,
    stop: Arc<AtomicBool>,
    pid: Arc<AtomicU32>,
) -> std::thread::JoinHandle<Vec<Output>> {
    std::thread::spawn(move || {
        let mut outs = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let child = crate::common::procs::morgue_cmd()
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            pid.store(child.id(), Ordering::SeqCst);
            outs.push(child.wait_with_output().unwrap());
            pid.store(0, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
        }
        outs
    })
}

fn kill(pid: &AtomicU32, sig: &str) -> bool {
    let p = pid.load(Ordering::SeqCst);
    p != 0
        && Command::new("kill")
            .args([sig, &p.to_string()])
            .status()
            .is_ok_and(|s| s.success())
}

/// Sends `sig` to the operator's run in progress, waiting up to 5 s for one to start;
/// whether one got it.
async fn signal_a_run(pid: &AtomicU32, sig: &str) -> bool {
    for _ in 0..100 {
        if kill(pid, sig) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Keys that arrived in `topic` on `brokers`, with how often.
async fn arrivals(brokers: &str, topic: &str) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in read_all_on(brokers, topic).await {
        *m.entry(String::from_utf8(l.key.unwrap()).unwrap())
            .or_insert(0) += 1;
    }
    m
}

/// Duplicates and missing among `letters` (keys) in `arrived`.
fn tally(letters: &[String], arrived: &HashMap<String, usize>) -> (usize, usize) {
    let dups = arrived.values().filter(|n| **n > 1).count();
    let missing = letters.iter().filter(|k| !arrived.contains_key(*k)).count();
    (dups, missing)
}

fn replayed(outs: &[Output]) -> usize {
    outs.iter()
        .flat_map(json_lines)
        .filter(|l| l["status"] == "replayed")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_replays_every_letter_exactly_once() {
    let secs: u64 = std::env::var("MORGUE_INCIDENT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let broker = Server::kafka();
    let b = broker.addr();
    let source = TestTopic::named_on(&b, unique("inc-src"), 3, &[]).await;
    let dlq = TestTopic::named_on(&b, unique("inc-dlq"), 2, &[]).await;
    let fixed = TestTopic::named_on(&b, unique("inc-fixed"), 3, &[]).await;
    let fixed_m = TestTopic::named_on(&b, unique("inc-fixed-m"), 3, &[]).await;
    let coll = TestCollection::new("incident");
    let audit = std::env::temp_dir()
        .join(unique("incident"))
        .join("audit.jsonl");
    let stop = Arc::new(AtomicBool::new(false));

    // The service's traffic: 36-character keys, every message failing for good.
    let feeder = {
        let (b, topic, stop) = (b.clone(), source.name.clone(), stop.clone());
        tokio::spawn(async move {
            let p: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", &b)
                .set("message.timeout.ms", "60000")
                .create()
                .unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let key = uuid::Uuid::new_v4().to_string();
                let value = format!("{{\"order\":{n}}}");
                let _ = p
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&value),
                        Duration::from_secs(60),
                    )
                    .await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            n
        })
    };
    let mut router = crate::common::procs::morgue_cmd()
        .args([
            "route",
            "--kafka",
            &b,
            "--source",
            &source.name,
            "--topic",
            &dlq.name,
        ])
        .args([
            "--exec",
            "cat >/dev/null; echo 'ValueError: bad order' >&2; exit 65",
        ])
        .args(["--group", &unique("inc-router")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The MongoDB DLQ, written as the team's own writer does.
    let mongo_feeder = {
        let (h, stop, src) = (coll.handle().await, stop.clone(), source.name.clone());
        tokio::spawn(async move {
            let mut keys = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let key = uuid::Uuid::new_v4().to_string();
                let n = keys.len() as i64;
                h.insert_one(doc! {
                    "key": &key, "value": format!("{{\"order\":{n}}}"),
                    "topic": &src, "partition": 1, "offset": 1_000_000 + n,
                    "error_time": DateTime::now(),
                    "morgue": { "failure": { "exception_class": "ValueError", "message": "bad order" } },
                })
                .await
                .unwrap();
                keys.push(key);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            keys
        })
    };

    // Three operators on overlapping filters at different rates, two on the MongoDB DLQ.
    let filter = format!("topic:{}", source.name);
    let kafka_op = |rate: Option<&str>| {
        let mut a = vec![
            "replay", "--kafka", &b, "--topic", &dlq.name, "--filter", &filter,
        ];
        a.extend(["--to", &fixed.name, "--takeover-after", "2s", "--yes"]);
        if let Some(r) = rate {
            a.extend(["--rate", r]);
        }
        let mut a: Vec<String> = a.into_iter().map(String::from).collect();
        a.extend(["--audit-log".to_string(), audit.display().to_string()]);
        a
    };
    let mongo_op = |rate: &str| {
        let mut a: Vec<String> = [
            "replay",
            "--kafka",
            &b,
            "--filter",
            &filter,
            "--to",
            &fixed_m.name,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(coll.args());
        a.extend(["--takeover-after", "2s", "--yes", "--rate", rate].map(String::from));
        a.extend(["--audit-log".to_string(), audit.display().to_string()]);
        a
    };
    let pids: Vec<Arc<AtomicU32>> = (0..5).map(|_| Arc::new(AtomicU32::new(0))).collect();
    let ops = vec![
        operator(kafka_op(Some("20")), stop.clone(), pids[0].clone()),
        operator(kafka_op(Some("60")), stop.clone(), pids[1].clone()),
        operator(kafka_op(None), stop.clone(), pids[2].clone()),
        operator(mongo_op("15"), stop.clone(), pids[3].clone()),
        operator(mongo_op("40"), stop.clone(), pids[4].clone()),
    ];

    // The chaos, at fixed points of the run.
    let start = Instant::now();
    let at = |f: f64| start + Duration::from_secs_f64(secs as f64 * f);
    let until = |t: Instant| tokio::time::sleep(t.saturating_duration_since(Instant::now()));
    until(at(0.2)).await;
    broker.freeze();
    tokio::time::sleep(Duration::from_secs(8)).await;
    broker.thaw();
    until(at(0.5)).await;
    // A paced operator is stopped (ctrl-z) mid-run and resumed 6 s later.
    let stopped = signal_a_run(&pids[1], "-STOP").await;
    assert!(stopped, "no run of the paced operator was there to stop");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        kill(&pids[1], "-CONT"),
        "the stopped run could not be resumed"
    );
    until(at(0.7)).await;
    // The unpaced operator's runs are short: wait for one in progress.
    let killed = signal_a_run(&pids[2], "-KILL").await;
    assert!(killed, "no run of the unpaced operator was there to kill");
    until(at(1.0)).await;

    stop.store(true, Ordering::SeqCst);
    let sent = feeder.await.unwrap();
    let mongo_keys = mongo_feeder.await.unwrap();
    let mut outs: Vec<Output> = ops.into_iter().flat_map(|o| o.join().unwrap()).collect();
    // The router drains what was sent, then leaves.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (read_all_on(&b, &dlq.name).await.len() as u64) < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sigterm(&router);
    router.wait().unwrap();

    // What is left (claims of runs killed or cut off) is finished by last runs.
    for args in [kafka_op(None), mongo_op("1000")] {
        let mut a = args.clone();
        let i = a.iter().position(|x| x == "2s").unwrap();
        a[i] = "0s".into();
        let out = crate::common::procs::morgue_cmd()
            .args(&a)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        outs.push(out);
    }

    let letters: Vec<String> = read_all_on(&b, &dlq.name)
        .await
        .into_iter()
        .map(|l| String::from_utf8(l.key.unwrap()).unwrap())
        .collect();
    let distinct: std::collections::HashSet<&String> = letters.iter().collect();
    let (dups, missing) = tally(&letters, &arrivals(&b, &fixed.name).await);
    let (mdups, mmissing) = tally(&mongo_keys, &arrivals(&b, &fixed_m.name).await);
    let runs = outs.len();
    let panics: Vec<String> = outs
        .iter()
        .map(stderr)
        .filter_map(|e| {
            let at = e.find("panicked")?;
            Some(e[at..].lines().take(4).collect::<Vec<_>>().join(" / "))
        })
        .collect();
    println!(
        "incident {secs}s: sent {sent}, Kafka DLQ {} letters ({} source messages), MongoDB DLQ {} letters; \
         {runs} replay runs, {} replayed; broker frozen 8 s, operator stopped {stopped}, killed {killed}; \
         Kafka: {dups} duplicates, {missing} missing; MongoDB: {mdups} duplicates, {mmissing} missing",
        letters.len(),
        distinct.len(),
        mongo_keys.len(),
        replayed(&outs),
    );
    assert!(panics.is_empty(), "a replay panicked: {panics:?}");
    assert!(!letters.is_empty() && !mongo_keys.is_empty());
    assert_eq!((dups, missing), (0, 0), "Kafka DLQ");
    assert_eq!((mdups, mmissing), (0, 0), "MongoDB DLQ");
}
