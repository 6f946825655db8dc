//! A broker or a MongoDB server that stops answering without closing its connections
//! (SIGSTOP: a frozen VM, a network that drops packets) is reported within seconds,
//! naming it, and so is its return; nothing read before or after is lost.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::server::Server;
use crate::common::*;
use morgue::backends::kafka::KafkaConfig;
use morgue::engine::{DeadLetter, Headers};

/// Lines of a pipe, read on a thread of their own.
fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

/// `morgue ARGS` running, its stdout and stderr read line by line.
fn follow(
    args: &[&str],
) -> (
    std::process::Child,
    mpsc::Receiver<String>,
    mpsc::Receiver<String>,
) {
    let mut child = crate::common::procs::morgue_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = lines_of(child.stdout.take().unwrap());
    let err = lines_of(child.stderr.take().unwrap());
    (child, out, err)
}

/// The first line with `text`, waiting at most `secs` (fails loudly saying what it saw).
fn expect(rx: &mpsc::Receiver<String>, text: &str, secs: u64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains(text) => return l,
            Ok(l) => seen.push(l),
            Err(_) => panic!("'{text}' never came within {secs} s; saw {seen:?}"),
        }
    }
}

#[tokio::test]
async fn a_frozen_broker_is_reported_within_seconds_and_so_is_its_return() {
    let broker = Server::kafka();
    let addr = broker.addr();
    let topic = TestTopic::named_on(&addr, unique("frozen"), 1, &[]).await;
    let cfg = KafkaConfig::new(addr.clone());
    let producer = cfg.producer().unwrap();
    let letter = |i: usize| {
        DeadLetter::from_record(
            None,
            None,
            Some(format!("{i:08}-0000-4000-8000-{i:012}").into_bytes()),
            Some(format!("{{\"n\":{i}}}").into_bytes()),
            Headers::default(),
        )
    };
    cfg.write(&producer, &topic.name, &letter(0)).await.unwrap();
    let (mut child, out, err) =
        follow(&["list", "--kafka", &addr, "--topic", &topic.name, "--follow"]);
    expect(&out, "\"0:0\"", 60);
    // Following: the broker freezes, holding its connections.
    broker.freeze();
    let line = expect(&err, "no answer from", 30);
    assert!(line.contains(&addr), "{line}");
    broker.thaw();
    expect(&err, &format!("{addr} answers again"), 30);
    // Reading goes on: a letter written after the thaw is listed.
    cfg.write(&producer, &topic.name, &letter(1)).await.unwrap();
    expect(&out, "\"0:1\"", 60);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_frozen_mongodb_is_reported_within_seconds_and_so_is_its_return() {
    let server = Server::mongo();
    let uri = server.uri();
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let coll = client
        .database("dlq")
        .collection::<mongodb::bson::Document>("letters");
    coll.insert_one(mongodb::bson::doc! { "value": "first", "topic": "t" })
        .await
        .unwrap();
    let (mut child, out, err) = follow(&[
        "list",
        "--follow",
        "--mongo",
        &uri,
        "--db",
        "dlq",
        "--collection",
        "letters",
    ]);
    expect(&out, "first", 60);
    expect(&err, "live: ", 60);
    server.freeze();
    let line = expect(&err, "no answer from", 30);
    assert!(line.contains(&server.addr()), "{line}");
    server.thaw();
    expect(&err, &format!("{} answers again", server.addr()), 30);
    coll.insert_one(mongodb::bson::doc! { "value": "after", "topic": "t" })
        .await
        .unwrap();
    expect(&out, "after", 60);
    child.kill().unwrap();
    child.wait().unwrap();
}
