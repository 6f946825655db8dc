//! The router with `--concurrency 16` over a long-lived `--pipe` processor, and over an
//! `--http` endpoint, each working on messages in parallel threads, under chaos: a private broker killed and
//! restarted twice, poison (5 %, dead-lettered after 100 KB of stderr), slow (1 %)
//! and keys shared by six messages each. Afterwards: 0 lost (every message processed
//! or dead-lettered), no two messages with one key ever in the processor at once, and
//! per key, messages processed in offset order (a message processed again after a
//! restart may repeat, never jump ahead). Duplicates are printed.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::chaos::create;
use crate::common::server::Server;
use crate::common::*;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Messages per key.
const PER_KEY: usize = 6;

fn messages() -> usize {
    std::env::var("MORGUE_CHAOS_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600)
}

/// Message `i`'s key (36 characters; six messages share one) and value.
fn record(i: usize, n: usize) -> (String, String) {
    let k = i % (n / PER_KEY);
    let seq = i / (n / PER_KEY);
    let key = format!("{k:08}-0000-4000-8000-{k:012}");
    let value = match i % 100 {
        0..=4 => format!("poison {i} {seq}"),
        5 => format!("slow {i} {seq}"),
        _ => format!("ok {i} {seq}"),
    };
    (key, value)
}

/// The processor: each message in its own thread; a key seen twice at once is written
/// to the log as OVERLAP; a success is logged as `key seq` before its answer.
fn processor(log: &Path) -> String {
    let script = log.with_extension("py");
    let body = format!(
        r#"import json, random, sys, threading, time
log = open({log:?}, "a")
lock = threading.Lock()
busy = set()
def handle(m):
    k = m["key"]["data"]
    kind, i, seq = m["value"]["data"].split(" ")
    with lock:
        if k in busy:
            log.write("OVERLAP %s\n" % k); log.flush()
        busy.add(k)
    try:
        # A few ms at random: a key's messages overlap or reorder if they can.
        time.sleep(0.3 if kind == "slow" else random.random() * 0.005)
        if kind == "poison":
            sys.stderr.write("e" * 100000 + "\n"); sys.stderr.flush()
            answer = {{"id": m["id"], "status": "dead", "error": "ValueError: poison " + i}}
        else:
            with lock:
                log.write("%s %s\n" % (k, seq)); log.flush()
            answer = {{"id": m["id"], "status": "ok"}}
    finally:
        with lock:
            busy.discard(k)
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

async fn produce_all(brokers: &str, topic: &str, n: usize) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for i in 0..n {
        let (key, value) = record(i, n);
        p.send(
            FutureRecord::to(topic).key(&key).payload(&value),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
}

/// The same processor as an HTTP endpoint on `port` (Python's threading server): the
/// key comes in `morgue-key`, the value as the body; poison answers 400 after 100 KB.
fn endpoint(log: &Path, port: u16) -> Child {
    let script = log.with_extension("http.py");
    let body = format!(
        r#"import random, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
log = open({log:?}, "a")
lock = threading.Lock()
busy = set()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        k = self.headers["morgue-key"]
        kind, i, seq = self.rfile.read(int(self.headers["content-length"])).decode().split(" ")
        with lock:
            if k in busy:
                log.write("OVERLAP %s\n" % k); log.flush()
            busy.add(k)
        try:
            time.sleep(0.3 if kind == "slow" else random.random() * 0.005)
            if kind == "poison":
                status, body = 400, ("ValueError: poison " + i + "\n" + "e" * 100000).encode()
            else:
                with lock:
                    log.write("%s %s\n" % (k, seq)); log.flush()
                status, body = 200, b""
        finally:
            with lock:
                busy.discard(k)
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("127.0.0.1", {port}), H).serve_forever()
"#,
        log = log.display().to_string()
    );
    std::fs::write(&script, body).unwrap();
    std::process::Command::new("python3")
        .arg(&script)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// How the router reaches its processor.
#[derive(Clone, Copy)]
enum Mode {
    Pipe,
    Http(u16),
}

fn router(brokers: &str, log: &Path, mode: Mode) -> Child {
    let processor = match mode {
        Mode::Pipe => ["--pipe".to_string(), processor(log)],
        Mode::Http(port) => ["--http".to_string(), format!("http://127.0.0.1:{port}/")],
    };
    crate::common::procs::morgue_cmd()
        .args([
            "route", "--kafka", brokers, "--topic", "cc-dlq", "--source", "cc-src",
        ])
        .args(["--group", "cc", "--concurrency", "16"])
        .args(processor)
        .args([
            "--max-attempts",
            "2",
            "--backoff",
            "50ms",
            "--dlq-attempts",
            "3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(log.with_extension("router")).unwrap(),
        ))
        .spawn()
        .unwrap()
}

/// The lines a test processor wrote to its log so far (none when it has not started).
pub fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn sixteen_in_flight_through_broker_restarts_lose_nothing_and_keep_key_order() {
    chaos(Mode::Pipe, "--pipe").await;
}

#[tokio::test]
async fn sixteen_in_flight_over_http_through_broker_restarts_lose_nothing() {
    let port = free_port();
    let log = std::env::temp_dir().join(unique("cc-http-log"));
    let server = Spawned::new(endpoint(&log, port));
    wait_for_port(port, "the test's HTTP endpoint");
    chaos_with(Mode::Http(port), "--http", log).await;
    drop(server);
}

async fn chaos(mode: Mode, label: &str) {
    chaos_with(mode, label, std::env::temp_dir().join(unique("cc-log"))).await;
}

async fn chaos_with(mode: Mode, label: &str, log: std::path::PathBuf) {
    let n = messages();
    let mut broker = Server::kafka();
    let b = broker.addr();
    create(&b, "cc-src", 4).await;
    create(&b, "cc-dlq", 1).await;
    produce_all(&b, "cc-src", n).await;
    let r = Spawned::new(router(&b, &log, mode));
    for _ in 0..2 {
        let before = log_lines(&log).len();
        let l = log.clone();
        wait_until(
            "log_lines(&l).len() >= before + n / 4",
            120 + n as u64 / 400,
            move || log_lines(&l).len() >= before + n / 4,
        )
        .await;
        broker.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        broker.restart();
    }
    // Settle: every message processed or dead-lettered.
    let (ok_n, dead_n) = (0..n).partition::<Vec<_>, _>(|i| i % 100 > 4);
    let deadline = Instant::now() + Duration::from_secs(300 + n as u64 / 100);
    let (processed, dead) = loop {
        let mut processed: HashMap<(String, usize), usize> = HashMap::new();
        for l in log_lines(&log).iter().filter(|l| !l.starts_with("OVERLAP")) {
            let (k, seq) = l.split_once(' ').unwrap();
            *processed
                .entry((k.to_string(), seq.parse().unwrap()))
                .or_insert(0) += 1;
        }
        let dead: Vec<String> = read_all_on(&b, "cc-dlq")
            .await
            .into_iter()
            .map(|l| String::from_utf8(l.value.unwrap()).unwrap())
            .collect();
        let done = ok_n.iter().all(|i| {
            let (k, v) = record(*i, n);
            processed.contains_key(&(k, v.rsplit(' ').next().unwrap().parse().unwrap()))
        }) && dead_n.iter().all(|i| dead.contains(&record(*i, n).1));
        if done || Instant::now() > deadline {
            break (processed, dead);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let lost_ok = ok_n
        .iter()
        .filter(|i| {
            let (k, v) = record(**i, n);
            !processed.contains_key(&(k, v.rsplit(' ').next().unwrap().parse().unwrap()))
        })
        .count();
    let lost_dead = dead_n
        .iter()
        .filter(|i| !dead.contains(&record(**i, n).1))
        .count();
    let lines = log_lines(&log);
    let overlaps = lines.iter().filter(|l| l.starts_with("OVERLAP")).count();
    // Per key, the first time each seq is processed, seqs go up.
    let mut seen: HashSet<(String, usize)> = HashSet::new();
    let mut last: HashMap<String, usize> = HashMap::new();
    let mut reordered = Vec::new();
    for l in lines.iter().filter(|l| !l.starts_with("OVERLAP")) {
        let (k, seq) = l.split_once(' ').unwrap();
        let seq: usize = seq.parse().unwrap();
        if !seen.insert((k.to_string(), seq)) {
            continue;
        }
        if let Some(prev) = last.insert(k.to_string(), seq)
            && prev > seq
        {
            reordered.push(format!("{k}: {seq} after {prev}"));
        }
    }
    let dups: usize = processed.values().map(|c| c - 1).sum();
    println!(
        "chaos {label} --concurrency 16: messages {n}, kills 2, lost {}, duplicated {dups} processed, overlaps {overlaps}, reordered {}",
        lost_ok + lost_dead,
        reordered.len()
    );
    assert_eq!(lost_ok + lost_dead, 0, "messages lost");
    assert_eq!(overlaps, 0, "two messages of one key at once");
    assert!(reordered.is_empty(), "key order broken: {reordered:?}");
    sigterm(&r.take());
}
