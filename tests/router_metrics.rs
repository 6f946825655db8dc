//! `morgue route --metrics ADDR` on the real broker: `/metrics` read with the Python
//! `prometheus_client` text-format parser agrees with what the test sent (processed,
//! retried, dead-lettered, attempts, lag), as do the closing counts, and `/healthz`
//! and `/readyz` answer.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

/// Answers `ok`, `dead` for `bad…`, and `retry` on the first attempt of `flaky…`;
/// first writes a line that is not an answer (which the router logs).
const PROCESSOR: &str = r#"
import json, sys
print("processor ready", flush=True)
for line in sys.stdin:
    m = json.loads(line)
    v = m["value"]["data"]
    if v.startswith("bad"):
        a = {"id": m["id"], "status": "dead", "error": "ValueError: " + v}
    elif v.startswith("flaky") and m["attempt"] == 1:
        a = {"id": m["id"], "status": "retry", "error": "TimeoutError: slow downstream"}
    else:
        a = {"id": m["id"], "status": "ok"}
    print(json.dumps(a), flush=True)
"#;

/// The samples named `name` whose labels include `with`.
fn value(samples: &[serde_json::Value], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .find(|s| with.iter().all(|(k, v)| s["labels"][*k] == *v))
        .and_then(|s| s["value"].as_f64())
}

fn scrape(port: u16) -> Vec<serde_json::Value> {
    python(
        "tests/fixtures/scrape.py",
        &[&format!("http://127.0.0.1:{port}")],
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

#[tokio::test]
async fn metrics_agree_with_what_was_sent_and_probes_answer() {
    let source = TestTopic::new("metrics-src", 2).await;
    let dlq = TestTopic::new("metrics-dlq", 1).await;
    let group = unique("metrics-group");
    let mut sent = Vec::new();
    for i in 0..30 {
        let v = match i % 10 {
            3 | 7 => format!("bad {i}"),
            5 => format!("flaky {i}"),
            _ => format!("ok {i}"),
        };
        sent.push(v);
    }
    for (i, v) in sent.iter().enumerate() {
        let key = format!("{i:08}-0000-4000-8000-{i:012}");
        produce(&source.name, Some(key.as_bytes()), v.as_bytes(), &[], None).await;
    }
    let script = std::env::temp_dir().join(format!("{}.py", unique("metrics-proc")));
    std::fs::write(&script, PROCESSOR).unwrap();
    let port = free_port();
    let child = crate::common::procs::morgue_cmd()
        .args(["route", "--kafka", &kafka_brokers(), "--topic", &dlq.name])
        .args(["--source", &source.name, "--group", &group])
        .args(["--pipe", &format!("python3 {}", script.display())])
        .args(["--backoff", "50ms", "--concurrency", "4"])
        .args([
            "--metrics",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = Spawned::new(child);
    wait_for_port(port, "the metrics server");
    let (g, t) = (group.clone(), source.name.clone());
    wait_until(
        "committed(&g, &t, 2).iter().sum::<i64>() == 30",
        60,
        move || committed(&g, &t, 2).iter().sum::<i64>() == 30,
    )
    .await;
    // The lag comes with the client's statistics, every 5 s.
    let mut samples = scrape(port);
    for _ in 0..40 {
        if value(&samples, "morgue_router_lag", &[("partition", "1")]).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples = scrape(port);
    }
    let topic = source.name.as_str();
    let count = |outcome| {
        value(
            &samples,
            "morgue_router_messages_total",
            &[("topic", topic), ("outcome", outcome)],
        )
    };
    let bad = sent.iter().filter(|v| v.starts_with("bad")).count() as f64;
    let flaky = sent.iter().filter(|v| v.starts_with("flaky")).count() as f64;
    assert_eq!(count("processed"), Some(30.0 - bad), "{samples:?}");
    assert_eq!(count("dead_lettered_failed"), Some(bad));
    // Each flaky message failed once and was retried in place (then processed).
    assert_eq!(count("retried"), Some(flaky), "{samples:?}");
    assert_eq!(
        value(&samples, "morgue_router_attempts_bucket", &[("le", "1")]),
        Some(30.0 - bad - flaky),
        "first-time successes"
    );
    assert_eq!(
        value(&samples, "morgue_router_attempts_bucket", &[("le", "2")]),
        Some(30.0 - bad)
    );
    assert_eq!(
        value(&samples, "morgue_router_processing_seconds_count", &[]),
        Some(30.0)
    );
    assert_eq!(value(&samples, "morgue_router_in_flight", &[]), Some(0.0));
    assert_eq!(
        value(&samples, "morgue_router_assigned_partitions", &[]),
        Some(2.0)
    );
    assert_eq!(value(&samples, "morgue_router_ready", &[]), Some(1.0));
    for p in ["0", "1"] {
        let lag = value(
            &samples,
            "morgue_router_lag",
            &[("topic", topic), ("partition", p)],
        );
        assert_eq!(lag, Some(0.0), "partition {p} caught up: {samples:?}");
    }
    let now = chrono::Utc::now().timestamp() as f64;
    let last = value(
        &samples,
        "morgue_router_last_success_timestamp_seconds",
        &[],
    )
    .unwrap();
    assert!(last > now - 120.0 && last <= now + 1.0, "{last} vs {now}");
    assert_eq!(value(&samples, "status/healthz", &[]), Some(200.0));
    assert_eq!(value(&samples, "status/readyz", &[]), Some(200.0));
    assert_eq!(value(&samples, "status/nothing", &[]), Some(404.0));
    let letters = read_all(&dlq.name).await;
    assert_eq!(
        letters.len() as f64,
        bad,
        "the DLQ holds what the metrics say"
    );
    // --log-format json: every stderr line is one JSON object.
    let child = child.take();
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    // The closing counts say the same.
    let closing: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_default();
    assert_eq!(
        (closing["processed"].as_f64(), closing["retried"].as_f64()),
        (Some(30.0 - bad), Some(flaky)),
        "{closing}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let said = |what: &str| {
        lines.iter().any(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(what))
        })
    };
    assert!(said("routing"), "{err}");
    assert!(
        said("'processor ready'"),
        "the line that is not an answer, quoted: {err}"
    );
}
