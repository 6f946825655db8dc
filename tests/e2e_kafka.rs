//! The whole Kafka flow as an on-call engineer lives it: a router dead-letters the
//! poison messages of a batch, `list` shows exactly those, the processor is fixed,
//! `replay` sends them back, the router now processes them, the ledger marks them,
//! and a second replay is refused without --force.
#![allow(clippy::unwrap_used)]

use std::process::{Output, Stdio};

use crate::common::*;

const BROKEN: &str =
    r#"v=$(cat); case "$v" in *poison*) echo "cannot parse: $v" >&2; exit 65;; esac"#;
const FIXED: &str = "cat > /dev/null";

fn morgue(args: &[&str], audit: &std::path::Path) -> Output {
    crate::common::procs::morgue_cmd()
        .args(args)
        .env("MORGUE_AUDIT_LOG", audit)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn router(source: &str, dlq: &str, group: &str, script: &str) -> Spawned {
    let b = kafka_brokers();
    let child = crate::common::procs::morgue_cmd()
        .args([
            "route",
            "--kafka",
            &b,
            "--topic",
            dlq,
            "--source",
            source,
            "--group",
            group,
            "--exec",
            script,
            "--max-attempts",
            "2",
            "--backoff",
            "10ms",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Spawned::new(child)
}

fn stop(child: Spawned) -> serde_json::Value {
    let child = child.take();
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn poison_to_dlq_to_replay_to_processed() {
    let source = TestTopic::new("e2e-trades", 2).await;
    let dlq = TestTopic::new("e2e-trades-dlq", 1).await;
    let group = unique("e2e-processor");
    let audit = std::env::temp_dir()
        .join(unique("e2e-audit"))
        .join("audit.jsonl");
    for i in 0..20 {
        let value = if i % 5 == 0 {
            format!("{{\"poison\":{i}}}")
        } else {
            format!("{{\"ok\":{i}}}")
        };
        produce(
            &source.name,
            Some(format!("K{i}").as_bytes()),
            value.as_bytes(),
            &[],
            None,
        )
        .await;
    }

    let r = router(&source.name, &dlq.name, &group, BROKEN);
    wait_for_letters(&dlq.name, 4, 60).await;
    wait_committed(&group, &source.name, 2).await;
    let stats = stop(r);
    assert_eq!(
        (stats["processed"].as_u64(), stats["failed"].as_u64()),
        (Some(16), Some(4)),
        "{stats}"
    );

    let b = kafka_brokers();
    let listed = lines(&morgue(
        &["list", "--kafka", &b, "--topic", &dlq.name],
        &audit,
    ));
    assert_eq!(listed.len(), 4, "exactly the failures");
    for l in &listed {
        assert!(l["value"]["data"].as_str().unwrap().contains("poison"));
        assert_eq!(l["source"]["topic"], source.name.as_str());
        assert_eq!(l["failure"]["reason"], "failed");
        assert_eq!(l["failure"]["exception_class"], "exec: exit 65");
        assert_eq!(l["state"], "new");
    }

    // The fix is deployed; replay what failed.
    let out = morgue(
        &[
            "replay",
            "--kafka",
            &b,
            "--topic",
            &dlq.name,
            "--filter",
            "reason:failed",
            "--yes",
        ],
        &audit,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = lines(&out);
    assert_eq!(
        results.iter().filter(|r| r["status"] == "replayed").count(),
        4
    );

    let r = router(&source.name, &dlq.name, &group, FIXED);
    wait_committed(&group, &source.name, 2).await;
    let stats = stop(r);
    assert_eq!(
        (stats["processed"].as_u64(), stats["failed"].as_u64()),
        (Some(4), Some(0)),
        "{stats}"
    );
    assert_eq!(read_all(&dlq.name).await.len(), 4, "nothing new failed");

    let replays: Vec<_> = read_all(&source.name)
        .await
        .into_iter()
        .filter(|m| m.headers.last("morgue-replay-id").is_some())
        .collect();
    assert_eq!(replays.len(), 4);
    assert!(
        replays
            .iter()
            .all(|m| m.headers.last("kafka_dlt-exception-fqcn").is_none())
    );

    let states = lines(&morgue(
        &["list", "--kafka", &b, "--topic", &dlq.name],
        &audit,
    ));
    assert!(states.iter().all(|l| l["state"] == "replayed"));

    let again = morgue(
        &[
            "replay",
            "--kafka",
            &b,
            "--topic",
            &dlq.name,
            listed[0]["id"].as_str().unwrap(),
            "--yes",
        ],
        &audit,
    );
    assert_eq!(lines(&again)[0]["status"], "skipped");
    assert!(String::from_utf8_lossy(&again.stderr).contains("pass --force"));
    let total_on_source = read_all(&source.name).await.len();
    assert_eq!(total_on_source, 24);
}
