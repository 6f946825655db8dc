//! Error hygiene through the binary: what a person sees when the broker or server
//! cannot be reached, when there is no terminal for the TUI, when stdout is closed
//! early (`| head`), and when a filter term lacks its operand: one line each. And
//! `info` on a transactional DLQ, whose offsets count the commit markers too.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::{TestTopic, kafka_brokers, produce, unique};

fn morgue(args: &[&str], log: &std::path::Path) -> std::process::Output {
    crate::common::procs::morgue_cmd()
        .args(args)
        .env("MORGUE_LOG_FILE", log)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn log_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}.log", unique("morgue-errors")))
}

fn lines(b: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(b)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn an_unreachable_broker_is_one_line_naming_it_and_librdkafka_logs_to_the_file() {
    let log = log_file();
    let out = morgue(
        &[
            "list",
            "--kafka",
            "127.0.0.1:1",
            "--topic",
            "orders.DLT",
            "--connect-timeout",
            "2s",
        ],
        &log,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = lines(&out.stderr);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("morgue: cannot reach Kafka at '127.0.0.1:1': "),
        "{err:?}"
    );
    assert_eq!(
        err[0].matches("BrokerTransportFailure").count(),
        1,
        "{err:?}"
    );
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("librdkafka"),
        "librdkafka's log went nowhere"
    );
    let _ = std::fs::remove_file(log);
}

#[test]
fn an_unreachable_mongodb_is_one_line_with_the_cause() {
    let log = log_file();
    let out = morgue(
        &[
            "list",
            "--mongo",
            "mongodb://127.0.0.1:1/?directConnection=true",
            "--db",
            "x",
            "--connect-timeout",
            "2s",
        ],
        &log,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = lines(&out.stderr);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("cannot reach MongoDB at 'mongodb://127.0.0.1:1/"));
    assert!(err[0].contains("no server answered within 2s: "), "{err:?}");
    assert!(err[0].contains("Connection refused"), "{err:?}");
    assert!(!err[0].contains("Topology"), "{err:?}");
}

#[test]
fn the_tui_without_a_terminal_says_so_and_points_to_list() {
    let log = log_file();
    let out = morgue(&["--kafka", &kafka_brokers(), "--topic", "x"], &log);
    assert_eq!(out.status.code(), Some(2));
    let err = lines(&out.stderr);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("needs a terminal"), "{err:?}");
    assert!(err[0].contains("morgue list"), "{err:?}");
}

#[test]
fn a_filter_term_without_its_operand_is_refused_quoting_it() {
    let log = log_file();
    let brokers = kafka_brokers();
    for (term, quoted) in [("$.n>", "'$.n>'"), ("key:", "'key:'")] {
        let out = morgue(
            &["list", "--kafka", &brokers, "--topic", "x", "-f", term],
            &log,
        );
        assert_eq!(out.status.code(), Some(2), "{term}");
        let err = lines(&out.stderr);
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].contains(quoted), "{err:?}");
    }
}

#[tokio::test]
async fn a_closed_stdout_ends_quietly_with_status_0() {
    let topic = TestTopic::new("pipe", 1).await;
    // More than list's 1 MiB output buffer, so writes go on after the reader left.
    let value = format!("{{\"pad\":\"{}\"}}", "p".repeat(1000));
    let sends = (0..3000).map(|i| {
        let key = format!("{i:08}-0000-4000-8000-{i:012}");
        let (topic, value) = (topic.name.clone(), value.clone());
        async move { produce(&topic, Some(key.as_bytes()), value.as_bytes(), &[], None).await }
    });
    futures::future::join_all(sends).await;
    let mut child = crate::common::procs::morgue_cmd()
        .args(["list", "--kafka", &kafka_brokers(), "--topic", &topic.name])
        .env("MORGUE_LOG_FILE", log_file())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe, as `head -1` does.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "nothing to say about a closed pipe"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test]
async fn info_labels_offsets_as_an_estimate_and_counts_exactly_on_request() {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    let topic = TestTopic::new("info-txn", 1).await;
    // One transaction per letter, as Spring writes them: a marker after each.
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("transactional.id", unique("info-seed"))
        .create()
        .unwrap();
    let t = std::time::Duration::from_secs(10);
    p.init_transactions(t).unwrap();
    for i in 0..20 {
        let key = format!("{i:08}-0000-4000-8000-{i:012}");
        p.begin_transaction().unwrap();
        p.send(FutureRecord::to(&topic.name).key(&key).payload("{}"), t)
            .await
            .unwrap();
        p.commit_transaction(t).unwrap();
    }
    let (log, brokers) = (log_file(), kafka_brokers());
    let info = |extra: &[&str]| {
        let mut args = vec!["info", "--kafka", &brokers, "--topic", &topic.name];
        args.extend(extra);
        let out = morgue(&args, &log);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let estimate = info(&[]);
    assert_eq!(estimate["exact"], false, "{estimate}");
    assert!(estimate["letters"].as_u64().unwrap() >= 20, "{estimate}");
    let exact = info(&["--exact"]);
    assert_eq!(exact["exact"], true, "{exact}");
    assert_eq!(exact["letters"], 20, "{exact}");
}
