//! `morgue dlqs` against the real broker: every matching DLQ with its size, arrivals
//! per hour, oldest letter, time before retention deletes it, and ledger states.
#![allow(clippy::unwrap_used)]

use crate::common::{TestTopic, kafka_brokers, produce, unique};

fn dlqs(pattern: Option<&str>, audit: &std::path::Path) -> Vec<serde_json::Value> {
    let out = crate::common::procs::morgue_cmd()
        .args(["dlqs", "--kafka", &kafka_brokers()])
        .args(pattern.map(|p| ["--pattern", p]).into_iter().flatten())
        .env("MORGUE_AUDIT_LOG", audit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn the_overview_lists_each_dlq_with_its_figures_and_no_other_topic() {
    let run = unique("ovw");
    let hour = 3_600_000i64;
    let now = chrono::Utc::now().timestamp_millis();
    // Three letters written 30 hours, 5 hours and 10 minutes ago; retention 3 days.
    let busy = TestTopic::with_config(
        &format!("{run}-orders"),
        2,
        &[("retention.ms", "259200000")],
    )
    .await;
    for (i, age) in [30 * hour, 5 * hour, hour / 6].into_iter().enumerate() {
        let key = format!("{i:08}-0000-4000-8000-{i:012}");
        produce(
            &busy.name,
            Some(key.as_bytes()),
            b"{}",
            &[],
            Some(now - age),
        )
        .await;
    }
    let empty = TestTopic::new(&format!("{run}-payments"), 1).await;
    let audit = std::env::temp_dir().join(format!("{run}-audit.jsonl"));
    // A letter resolved: the ledger topic appears next to the DLQ, not as a DLQ.
    let out = crate::common::procs::morgue_cmd()
        .args([
            "resolve",
            "--kafka",
            &kafka_brokers(),
            "--topic",
            &busy.name,
        ])
        .args(["--yes", "--audit-log"])
        .arg(&audit)
        .arg(first_id(&busy.name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let got = dlqs(Some(&format!("{run}-*")), &audit);
    let names: Vec<&str> = got.iter().map(|d| d["dlq"].as_str().unwrap()).collect();
    assert_eq!(names, [busy.name.as_str(), empty.name.as_str()], "{got:?}");
    let b = &got[0];
    assert_eq!(b["letters"], 3, "{b}");
    assert_eq!(b["partitions"], 2);
    assert_eq!(b["last_day"], 2, "30 hours ago is not in the last day: {b}");
    assert_eq!(b["last_hour"], 1, "{b}");
    // The oldest letter's own timestamp, to the second.
    let oldest = chrono::DateTime::parse_from_rfc3339(b["oldest"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let first = now - 30 * hour;
    assert!(
        (first - 1000..=first).contains(&oldest),
        "{oldest} vs {first}: {b}"
    );
    assert_eq!(b["retention_ms"], 259_200_000i64);
    let deleted_in = b["deleted_in_s"].as_i64().unwrap();
    assert!(
        (42 * 3600 - 120..=42 * 3600).contains(&deleted_in),
        "deleted 3 days after the oldest letter: {b}"
    );
    assert_eq!(b["states"]["resolved"], 1, "{b}");
    let e = &got[1];
    assert_eq!(
        (e["letters"].as_u64(), e["last_day"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(e["oldest"].is_null());
    let _ = std::fs::remove_file(audit);
}

/// The id of the first letter of `topic` (partition 0 or 1, whichever holds one).
fn first_id(topic: &str) -> String {
    let out = crate::common::procs::morgue_cmd()
        .args([
            "list",
            "--kafka",
            &kafka_brokers(),
            "--topic",
            topic,
            "--limit",
            "1",
        ])
        .output()
        .unwrap();
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    line["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn kafka_connect_dlqs_are_listed_whatever_their_names() {
    let run = unique("ovc");
    // A Connect cluster's config topic: one sink with a DLQ, one deleted, one without.
    let configs = TestTopic::named(format!("{run}-connect-configs"), 1, &[]).await;
    let sink_dlq = TestTopic::new(&format!("{run}-jdbc-sink-errors"), 1).await;
    let gone = TestTopic::new(&format!("{run}-old-sink-errors"), 1).await;
    let props = |dlq: &str| {
        format!(
            r#"{{"properties":{{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","errors.tolerance":"all","errors.deadletterqueue.topic.name":"{dlq}"}}}}"#
        )
    };
    produce(
        &configs.name,
        Some(b"connector-jdbc"),
        props(&sink_dlq.name).as_bytes(),
        &[],
        None,
    )
    .await;
    produce(
        &configs.name,
        Some(b"connector-old"),
        props(&gone.name).as_bytes(),
        &[],
        None,
    )
    .await;
    produce(
        &configs.name,
        Some(b"task-jdbc-0"),
        br#"{"properties":{}}"#,
        &[],
        None,
    )
    .await;
    produce(
        &configs.name,
        Some(b"connector-plain"),
        br#"{"properties":{"connector.class":"x"}}"#,
        &[],
        None,
    )
    .await;
    crate::common::produce_tombstone(&configs.name, b"connector-old").await;
    produce(&sink_dlq.name, Some(b"k"), b"{}", &[], None).await;
    let audit = std::env::temp_dir().join(format!("{run}-audit.jsonl"));
    // The default patterns match none of these names: only Connect's configuration
    // names the DLQ.
    let listed = dlqs(None, &audit);
    let names: Vec<&str> = listed.iter().map(|d| d["dlq"].as_str().unwrap()).collect();
    assert!(names.contains(&sink_dlq.name.as_str()), "{names:?}");
    assert!(
        !names.contains(&gone.name.as_str()),
        "a deleted connector: {names:?}"
    );
    assert!(!names.contains(&configs.name.as_str()), "{names:?}");
    let d = listed
        .iter()
        .find(|d| d["dlq"] == sink_dlq.name.as_str())
        .unwrap();
    assert_eq!(d["letters"], 1);
}

#[tokio::test]
async fn mongodb_dlq_collections_are_listed_with_their_figures() {
    use mongodb::bson::{DateTime, doc};
    let c = crate::common::TestCollection::new("ovm_deadletter");
    let other = crate::common::TestCollection::new("ovm_orders");
    let coll = c.handle().await;
    let hour = 3_600_000i64;
    let now = chrono::Utc::now().timestamp_millis();
    for (i, age) in [30 * hour, 5 * hour, hour / 6].into_iter().enumerate() {
        coll.insert_one(doc! {
            "key": format!("{i:08}-0000-4000-8000-{i:012}"),
            "value": "{}",
            "topic": "orders",
            "error_time": DateTime::from_millis(now - age),
        })
        .await
        .unwrap();
    }
    other
        .handle()
        .await
        .insert_one(doc! { "n": 1 })
        .await
        .unwrap();
    // A TTL index on the time: the collection's retention (3 days).
    coll.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! { "error_time": 1 })
            .options(
                mongodb::options::IndexOptions::builder()
                    .expire_after(std::time::Duration::from_secs(3 * 86_400))
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    let prefix = c.name.split('_').take(2).collect::<Vec<_>>().join("_");
    let out = crate::common::procs::morgue_cmd()
        .args([
            "dlqs",
            "--mongo",
            &crate::common::mongo_uri(),
            "--db",
            &c.db,
        ])
        .args(["--pattern", &format!("{prefix}*")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = listed.iter().map(|d| d["dlq"].as_str().unwrap()).collect();
    assert_eq!(names, vec![c.name.as_str()], "only the matching collection");
    let d = &listed[0];
    assert_eq!(d["kind"], "mongo");
    assert_eq!(d["letters"], 3);
    assert_eq!(
        (d["last_hour"].as_u64(), d["last_day"].as_u64()),
        (Some(1), Some(2)),
        "{d}"
    );
    let age = d["oldest_age_s"].as_i64().unwrap();
    assert!((30 * 3600..30 * 3600 + 120).contains(&age), "{d}");
    assert_eq!(d["retention_ms"], 3 * 86_400_000i64);
    assert!(d["deleted_in_s"].as_i64().unwrap() < 42 * 3600 + 1, "{d}");
}

#[tokio::test]
async fn mongodb_letters_are_counted_by_state_claimed_included() {
    use mongodb::bson::doc;
    let c = crate::common::TestCollection::new("ovs_deadletter");
    let coll = c.handle().await;
    for i in 0..5 {
        let d = doc! { "value": format!("claimed {i}"), "topic": "orders", "processed": true };
        coll.insert_one(d).await.unwrap();
    }
    coll.insert_one(doc! { "value": "new", "topic": "orders" })
        .await
        .unwrap();
    let resolved = coll
        .insert_one(doc! { "value": "done", "topic": "orders", "processed": true })
        .await
        .unwrap()
        .inserted_id;
    let resolved = resolved.as_object_id().unwrap().to_hex();
    let audit = std::env::temp_dir().join(format!("{}.jsonl", unique("ovs-audit")));
    let morgue = |args: &[&str]| {
        let out = crate::common::procs::morgue_cmd()
            .args(args)
            .env("MORGUE_AUDIT_LOG", &audit)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let uri = crate::common::mongo_uri();
    let at = ["--mongo", &uri, "--db", &c.db];
    let mut resolve = vec!["resolve", &resolved, "--yes", "--collection", &c.name];
    resolve.extend(at);
    morgue(&resolve);
    let mut dlqs = vec!["dlqs", "--pattern", &c.name];
    dlqs.extend(at);
    let listed: Vec<serde_json::Value> = morgue(&dlqs)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        listed[0]["states"],
        serde_json::json!({"claimed": 5, "resolved": 1}),
        "a claimed letter resolved is resolved; an untouched one is new: {}",
        listed[0]
    );
    dlqs.extend(["-o", "table"]);
    let table = morgue(&dlqs);
    assert!(table.contains(" claimed 5, resolved 1 "), "{table}");
}

#[tokio::test]
async fn mongodb_dlq_collections_are_found_by_their_usual_names() {
    use mongodb::bson::doc;
    // A database of its own: exactly these collections, the default patterns.
    let db = crate::common::unique("ovm_names").replace('-', "_");
    let client = mongodb::Client::with_uri_str(crate::common::mongo_uri())
        .await
        .unwrap();
    let names = [
        "payments_dlq",
        "orders-dlq",
        "trades.dlq",
        "dlq_quotes",
        "orders_dead_letter",
        "deadletter_messages",
        "orders",
        "dlqueue_metrics",
    ];
    for n in names {
        client
            .database(&db)
            .collection::<mongodb::bson::Document>(n)
            .insert_one(doc! { "n": 1 })
            .await
            .unwrap();
    }
    let out = crate::common::procs::morgue_cmd()
        .args(["dlqs", "--mongo", &crate::common::mongo_uri(), "--db", &db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["dlq"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            "deadletter_messages",
            "dlq_quotes",
            "orders-dlq",
            "orders_dead_letter",
            "payments_dlq",
            "trades.dlq"
        ]
    );
    client.database(&db).drop().await.unwrap();
}

/// The exporter's gauges for `dlq`, read with prometheus_client's parser.
fn gauges(port: u16, dlq: &str) -> std::collections::HashMap<String, f64> {
    crate::common::python(
        "tests/fixtures/scrape.py",
        &[&format!("http://127.0.0.1:{port}")],
    )
    .lines()
    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
    .filter(|s| s["labels"]["dlq"] == dlq || s["labels"]["dlq"].is_null())
    .map(|s| {
        let name = match s["labels"]["state"].as_str() {
            Some(state) => format!("{}:{state}", s["name"].as_str().unwrap()),
            None => s["name"].as_str().unwrap().to_string(),
        };
        (name, s["value"].as_f64().unwrap_or(-1.0))
    })
    .collect()
}

#[tokio::test]
async fn the_exporter_serves_what_dlqs_prints() {
    let run = unique("expo");
    let now = chrono::Utc::now().timestamp_millis();
    let dlq = TestTopic::with_config(
        &format!("{run}-orders"),
        2,
        &[("retention.ms", "259200000")],
    )
    .await;
    for (i, age) in [7_200_000i64, 600_000, 60_000, 1_000]
        .into_iter()
        .enumerate()
    {
        let key = format!("{i:08}-0000-4000-8000-{i:012}");
        produce(&dlq.name, Some(key.as_bytes()), b"{}", &[], Some(now - age)).await;
    }
    let audit = std::env::temp_dir().join(format!("{run}-audit.jsonl"));
    let out = crate::common::procs::morgue_cmd()
        .args(["resolve", "--kafka", &kafka_brokers(), "--topic", &dlq.name])
        .args(["--yes", "--audit-log"])
        .arg(&audit)
        .arg(first_id(&dlq.name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = crate::common::free_port();
    let exporter = crate::common::Spawned::new(
        crate::common::procs::morgue_cmd()
            .args([
                "exporter",
                "--kafka",
                &kafka_brokers(),
                "--pattern",
                &format!("{run}-*"),
            ])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--interval", "1s"])
            .env("MORGUE_AUDIT_LOG", &audit)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    crate::common::wait_for_port(port, "the exporter");
    let mut g = gauges(port, &dlq.name);
    for _ in 0..60 {
        if g.get("morgue_exporter_up") == Some(&1.0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        g = gauges(port, &dlq.name);
    }
    let printed = &dlqs(Some(&format!("{run}-*")), &audit)[0];
    let f = |k: &str| printed[k].as_f64().unwrap();
    assert_eq!(g["morgue_dlq_letters"], f("letters"), "{g:?} vs {printed}");
    assert_eq!(
        g["morgue_dlq_letters_exact"],
        if printed["exact"] == true { 1.0 } else { 0.0 }
    );
    assert_eq!(g["morgue_dlq_arrivals_last_hour"], f("last_hour"));
    assert_eq!(g["morgue_dlq_arrivals_last_day"], f("last_day"));
    assert_eq!(g["morgue_dlq_letters_by_state:resolved"], 1.0);
    // Ages move with the clock: the exporter's are from its last refresh (1 s ago at most).
    let age = g["morgue_dlq_oldest_age_seconds"];
    assert!((f("oldest_age_s") - age).abs() <= 3.0, "{age} vs {printed}");
    let left = g["morgue_dlq_deleted_in_seconds"];
    assert!(
        (f("deleted_in_s") - left).abs() <= 3.0,
        "{left} vs {printed}"
    );
    assert_eq!(g["status/readyz"], 200.0);
    crate::common::sigterm(&exporter.take());
    let _ = std::fs::remove_file(audit);
}
