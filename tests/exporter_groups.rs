//! `morgue exporter`'s failure fingerprints against a transactional DLQ that keeps
//! receiving letters: the largest groups and a new fingerprint agree with what
//! `morgue list --filter fingerprint:ID` counts.

use std::collections::HashMap;
use std::time::Duration;

use morgue::engine::model::letter::{FailureContext, Reason, SourceCoords};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::common::race::dlt_headers;
use crate::common::{TestTopic, kafka_brokers, unique};

/// Writes letters failing with `class`/`message(i)` at `ts_ms`, one transaction each.
async fn letters(p: &FutureProducer, dlq: &str, class: &str, n: usize, ts_ms: i64) {
    for i in 0..n {
        let src = SourceCoords {
            topic: Some("trades".into()),
            partition: Some(0),
            offset: Some(i as i64),
            timestamp_ms: Some(ts_ms),
            consumer_group: Some("trades".into()),
        };
        let f = FailureContext {
            exception_class: Some(format!("com.acme.{class}")),
            message: Some(format!("trade {} of {i}-{n} rejected", 1_000 + i)),
            reason: Reason::Failed,
            ..FailureContext::default()
        };
        let key = uuid::Uuid::new_v4().to_string();
        p.begin_transaction().unwrap();
        p.send(
            FutureRecord::to(dlq)
                .key(key.as_str())
                .payload("{\"trade\":1}")
                .headers(dlt_headers(&src, &f))
                .timestamp(ts_ms),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        p.commit_transaction(Duration::from_secs(10)).unwrap();
    }
}

/// The fingerprint gauges of `dlq`: name -> fingerprint -> (value, error label).
fn scrape(port: u16, dlq: &str) -> HashMap<String, HashMap<String, (f64, String)>> {
    let mut out: HashMap<String, HashMap<String, (f64, String)>> = HashMap::new();
    for l in crate::common::python(
        "tests/fixtures/scrape.py",
        &[&format!("http://127.0.0.1:{port}")],
    )
    .lines()
    {
        let s: serde_json::Value = serde_json::from_str(l).unwrap();
        if s["labels"]["dlq"] != dlq {
            continue;
        }
        let fp = s["labels"]["fingerprint"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let error = s["labels"]["error"].as_str().unwrap_or("").to_string();
        out.entry(s["name"].as_str().unwrap().to_string())
            .or_default()
            .insert(fp, (s["value"].as_f64().unwrap(), error));
    }
    out
}

/// How many letters `morgue list` finds with fingerprint `fp`.
fn listed(dlq: &str, fp: &str) -> usize {
    let out = crate::common::procs::morgue_cmd()
        .args(["list", "--kafka", &kafka_brokers(), "--topic", dlq])
        .args(["--filter", &format!("fingerprint:{fp}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        crate::common::procs::stderr(&out)
    );
    crate::common::procs::json_lines(&out).len()
}

#[tokio::test]
async fn the_exporter_counts_fingerprint_groups_as_list_does_and_names_a_new_one() {
    let run = unique("expofp");
    let dlq = TestTopic::new(&format!("{run}-trades.DLT"), 2).await;
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("transactional.id", unique("fp-seed"))
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(10)).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    // Twelve old failures (3 h ago), group k holding 13 - k letters.
    for k in 1..=12 {
        letters(
            &p,
            &dlq.name,
            &format!("Old{k:02}"),
            13 - k,
            now - 3 * 3_600_000,
        )
        .await;
    }
    let port = crate::common::free_port();
    let exporter = crate::common::Spawned::new(
        crate::common::procs::morgue_cmd()
            .args(["exporter", "--kafka", &kafka_brokers()])
            .args(["--pattern", &format!("{run}-*")])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--interval", "1s"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    crate::common::wait_for_port(port, "the exporter");
    // Letters keep arriving while it runs: a new failure, and more of an old one.
    letters(
        &p,
        &dlq.name,
        "Old05",
        4,
        chrono::Utc::now().timestamp_millis(),
    )
    .await;
    letters(
        &p,
        &dlq.name,
        "BrandNew",
        1,
        chrono::Utc::now().timestamp_millis(),
    )
    .await;
    let total = (1..=12).map(|k| 13 - k).sum::<usize>() + 4 + 1;
    let mut g = scrape(port, &dlq.name);
    for _ in 0..120 {
        let counted = g
            .get("morgue_dlq_fingerprint_window_letters")
            .and_then(|m| m.get(""))
            .map(|v| v.0);
        if counted == Some(total as f64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        g = scrape(port, &dlq.name);
    }
    let counts = &g["morgue_dlq_fingerprint_letters"];
    assert_eq!(
        g["morgue_dlq_fingerprint_window_letters"][""].0, total as f64,
        "{g:?}"
    );
    // The ten largest and the new one; Old11 and Old12 (2 and 1 letters) are left out.
    assert_eq!(counts.len(), 11, "{counts:?}");
    assert!(
        !counts
            .values()
            .any(|(_, e)| e.contains("Old11") || e.contains("Old12"))
    );
    let new = counts
        .iter()
        .find(|(_, (_, e))| e.starts_with("com.acme.BrandNew: trade # of #-# rejected"))
        .unwrap_or_else(|| panic!("no BrandNew group in {counts:?}"));
    assert_eq!(new.1.0, 1.0);
    assert_eq!(g["morgue_dlq_fingerprints_new_last_hour"][""].0, 1.0);
    let first = g["morgue_dlq_fingerprint_first_seen_timestamp_seconds"][new.0].0;
    assert!(first * 1000.0 > (now - 60_000) as f64, "{first}");
    let old05 = counts
        .iter()
        .find(|(_, (_, e))| e.starts_with("com.acme.Old05:"))
        .unwrap();
    assert_eq!(old05.1.0, 12.0, "8 old and 4 new letters");
    let first = g["morgue_dlq_fingerprint_first_seen_timestamp_seconds"][old05.0].0;
    assert!(first * 1000.0 < (now - 2 * 3_600_000) as f64, "{first}");
    for (fp, (n, error)) in counts {
        assert_eq!(*n as usize, listed(&dlq.name, fp), "{fp} {error}");
    }
    crate::common::sigterm(&exporter.take());
}
