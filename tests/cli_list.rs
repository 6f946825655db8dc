//! `morgue list` as a user runs it: the real binary against the real broker and
//! server; a DLQ that is not there is an error, and `-o table` never cuts an id.
#![allow(clippy::unwrap_used)]

use crate::common::{TestCollection, TestTopic, kafka_brokers, mongo_uri, produce, unique};
use morgue::backends::kafka::KafkaConfig;
use morgue::backends::mongo::MongoConfig;
use morgue::backends::open::Dlq;
use morgue::engine::{DeadLetter, Headers};

fn morgue(args: &[&str]) -> std::process::Output {
    crate::common::procs::morgue_cmd()
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn list_prints_one_json_object_per_letter() {
    let topic = TestTopic::new("cli-list", 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    let producer = cfg.producer().unwrap();
    let mut h = Headers::default();
    h.push("kafka_dlt-original-topic", "trades");
    h.push(
        "kafka_dlt-exception-fqcn",
        "java.lang.IllegalArgumentException",
    );
    for (key, value) in [
        (&b"T-1"[..], &b"{\"px\":1}"[..]),
        (b"T-2", &[0xde, 0xad, 0xbe, 0xef]),
    ] {
        let l = DeadLetter::from_record(
            None,
            None,
            Some(key.to_vec()),
            Some(value.to_vec()),
            h.clone(),
        );
        cfg.write(&producer, &topic.name, &l).await.unwrap();
    }

    let brokers = kafka_brokers();
    let out = morgue(&["list", "--kafka", &brokers, "--topic", &topic.name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "0:0");
    assert_eq!(lines[0]["key"]["data"], "T-1");
    assert_eq!(lines[0]["value"]["encoding"], "utf8");
    assert_eq!(
        lines[1]["value"],
        serde_json::json!({"encoding": "base64", "data": "3q2+7w=="})
    );
    assert_eq!(lines[1]["source"]["topic"], "trades");
    assert_eq!(
        lines[1]["failure"]["exception_class"],
        "java.lang.IllegalArgumentException"
    );
    assert_eq!(lines[1]["failure"]["reason"], "failed");

    let out = morgue(&[
        "list",
        "-o",
        "table",
        "--kafka",
        &brokers,
        "--topic",
        &topic.name,
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(
        table
            .lines()
            .nth(2)
            .unwrap()
            .contains("IllegalArgumentException"),
        "{table}"
    );
}

#[tokio::test]
async fn plain_and_spring_producers_both_list_correctly() {
    let topic = TestTopic::new("cli-list-producers", 1).await;
    // The simplest consumer just re-publishes key and value: no headers at all.
    produce(&topic.name, Some(b"plain-key"), b"{\"id\":1}", &[], None).await;
    // Spring's DeadLetterPublishingRecoverer: binary partition/offset/timestamp.
    let spring: &[(&str, &[u8])] = &[
        ("kafka_dlt-original-topic", b"orders"),
        ("kafka_dlt-original-partition", &5i32.to_be_bytes()),
        ("kafka_dlt-original-offset", &1234i64.to_be_bytes()),
        (
            "kafka_dlt-original-timestamp",
            &1_732_700_000_000i64.to_be_bytes(),
        ),
        ("kafka_dlt-original-consumer-group", b"order-service"),
        (
            "kafka_dlt-exception-fqcn",
            b"org.springframework.kafka.listener.ListenerExecutionFailedException",
        ),
        (
            "kafka_dlt-exception-cause-fqcn",
            b"com.fasterxml.jackson.core.JsonParseException",
        ),
        ("kafka_dlt-exception-message", b"Unexpected character"),
    ];
    produce(&topic.name, None, &[0xca, 0xfe, 0x00], spring, None).await;

    let brokers = kafka_brokers();
    let out = morgue(&["list", "--kafka", &brokers, "--topic", &topic.name]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let plain = &lines[0];
    assert_eq!(plain["key"]["data"], "plain-key");
    assert_eq!(plain["headers"], serde_json::json!([]));
    assert_eq!(
        plain["source"]["topic"],
        serde_json::Value::Null,
        "unknown, not guessed"
    );
    assert_eq!(plain["failure"]["reason"], "unknown");
    let s = &lines[1];
    assert_eq!(s["key"], serde_json::Value::Null);
    assert_eq!(
        s["value"],
        serde_json::json!({"encoding": "base64", "data": "yv4A"})
    );
    assert_eq!(s["source"]["topic"], "orders");
    assert_eq!(s["source"]["partition"], 5);
    assert_eq!(s["source"]["offset"], 1234);
    assert_eq!(s["source"]["timestamp_ms"], 1_732_700_000_000i64);
    assert_eq!(s["source"]["consumer_group"], "order-service");
    assert_eq!(
        s["failure"]["cause_class"],
        "com.fasterxml.jackson.core.JsonParseException"
    );
    assert_eq!(
        s["failure"]["conventions"],
        serde_json::json!(["spring-dlt"])
    );
}

#[test]
fn a_missing_topic_exits_1_with_one_quoting_line() {
    let brokers = kafka_brokers();
    let out = morgue(&["list", "--kafka", &brokers, "--topic", "orders.dlq.absent"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        format!("morgue: topic 'orders.dlq.absent' not found on {brokers}\n")
    );
}

#[test]
fn usage_mistakes_exit_2() {
    let out = morgue(&["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kafka BROKERS --topic TOPIC"));
    let out = morgue(&["list", "--kafka", "h:1", "-t", "x", "-X", "novalue"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'novalue'"));
}

/// `--mongo URI --db DB --collection NAME` after `words`.
fn on_collection(c: &TestCollection, words: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    v.extend(c.args());
    v
}

fn run(args: &[String], audit: &std::path::Path) -> std::process::Output {
    crate::common::procs::morgue_cmd()
        .args(args)
        .env("MORGUE_AUDIT_LOG", audit)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_missing_collection_is_an_error_naming_it_and_is_not_created() {
    let c = TestCollection::new("absent_dlq");
    let uri = mongo_uri();
    let cfg = MongoConfig {
        uri: uri.clone(),
        db: c.db.clone(),
        collection: c.name.clone(),
        connect_timeout: std::time::Duration::from_secs(10),
    };
    let said = format!(
        "collection '{}' not found in database '{}' on {}",
        c.name,
        c.db,
        cfg.servers()
    );
    let dir = std::env::temp_dir().join(unique("absent-dlq"));
    std::fs::create_dir_all(&dir).unwrap();
    let audit = dir.join("audit.jsonl");
    let export = dir.join("export.jsonl");
    let brokers = kafka_brokers();
    let id = "65f0c0ffee0000000000abcd";
    for words in [
        vec!["list"],
        vec!["list", "-o", "table"],
        vec!["info"],
        vec!["show", id],
        vec!["replay", id, "--dry-run", "--kafka", &brokers],
        vec!["resolve", id, "--yes"],
        vec!["claim", id, "--yes"],
        vec!["export", "-o", export.to_str().unwrap()],
    ] {
        let out = run(&on_collection(&c, &words), &audit);
        assert_eq!(out.status.code(), Some(1), "{words:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("morgue: {said}\n"),
            "{words:?}"
        );
        assert!(out.stdout.is_empty(), "{words:?}");
    }
    // The TUI opens its DLQ through the same function.
    let dlq = Dlq::Mongo {
        cfg,
        map: Box::default(),
        kafka: None,
    };
    let err = dlq.open().await.err().unwrap();
    assert_eq!(err.to_string(), said);
    let names = c
        .handle()
        .await
        .client()
        .database(&c.db)
        .list_collection_names()
        .await
        .unwrap();
    assert!(!names.contains(&c.name), "created: {names:?}");
    assert!(!export.exists(), "nothing exported");
    // Once it exists (empty), it lists as empty.
    c.handle()
        .await
        .client()
        .database(&c.db)
        .create_collection(&c.name)
        .await
        .unwrap();
    let out = run(&on_collection(&c, &["list"]), &audit);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn the_table_shows_whole_ids_that_show_and_replay_take() {
    use mongodb::bson::doc;
    let c = TestCollection::new("table_ids");
    let coll = c.handle().await;
    coll.insert_one(doc! {
        "key": "ORD-2024-11-27-000123",
        "value": "{\"px\":-3}",
        "topic": "orders",
        "morgue": { "failure": {
            "exception_class": "java.lang.IllegalArgumentException",
            "message": "negative price -3 for ORD-2024-11-27-000123",
        } },
    })
    .await
    .unwrap();
    let audit = std::env::temp_dir().join(format!("{}.jsonl", unique("table-ids")));
    let out = run(&on_collection(&c, &["list", "-o", "table"]), &audit);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let row = table.lines().nth(1).unwrap();
    let id = row.split_whitespace().next().unwrap();
    assert_eq!(id.len(), 24, "a whole ObjectId: {table}");
    assert!(row.contains(" ORD-2024…-000123 "), "{table}");
    assert!(
        row.contains(" IllegalArgumentException: negative"),
        "{table}"
    );
    let shown = run(&on_collection(&c, &["show", id]), &audit);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["id"], id);
    let brokers = kafka_brokers();
    let dry = run(
        &on_collection(&c, &["replay", id, "--dry-run", "--kafka", &brokers]),
        &audit,
    );
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
}
