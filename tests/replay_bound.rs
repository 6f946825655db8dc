//! What the operator confirms is what is replayed: a filtered replay counts the
//! matching letters, asks about that number, and replays exactly those — a letter
//! that arrives while the question is on the screen waits for the next run. A filter
//! that does not parse refuses to run, dry run or not.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use crate::common::tmux::Tmux;
use crate::common::*;
use morgue::backends::kafka::KafkaConfig;
use morgue::engine::{DeadLetter, FailureContext, Headers, SourceCoords, model::conventions};

/// Writes a Spring-style dead letter of `source` with a 36-character key to `dlq`.
async fn letter(cfg: &KafkaConfig, dlq: &str, source: &str, i: usize, class: &str) {
    let src = SourceCoords {
        topic: Some(source.into()),
        partition: Some(0),
        offset: Some(i as i64),
        timestamp_ms: Some(1_732_700_000_000),
        consumer_group: Some("app".into()),
    };
    let failure = FailureContext {
        exception_class: Some(class.into()),
        message: Some(format!("bad trade {i}")),
        ..FailureContext::default()
    };
    let key = format!("{i:08}-0000-4000-8000-{i:012}");
    let l = DeadLetter::from_record(
        None,
        None,
        Some(key.into_bytes()),
        Some(format!("{{\"n\":{i}}}").into_bytes()),
        Headers(conventions::encode(&src, &failure)),
    );
    let producer = cfg.producer().unwrap();
    cfg.write(&producer, dlq, &l).await.unwrap();
}

#[tokio::test]
async fn a_letter_arriving_while_the_question_is_asked_is_not_replayed() {
    let source = TestTopic::new("bound-src", 1).await;
    let dlq = TestTopic::new("bound-dlq", 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    for i in 0..3 {
        letter(&cfg, &dlq.name, &source.name, i, "trade.Invalid").await;
    }
    letter(&cfg, &dlq.name, &source.name, 3, "trade.Other").await;
    let dir = std::env::temp_dir().join(unique("bound"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.jsonl");
    // The real terminal question: morgue asks on a tty, and the test answers it.
    let cmd = format!(
        "env MORGUE_AUDIT_LOG={audit} {bin} replay --kafka {brokers} --topic {dlq} \
         --filter 'error:trade.Invalid' > {out}; echo EXIT=$?; sleep 600",
        audit = dir.join("audit.jsonl").display(),
        bin = env!("CARGO_BIN_EXE_morgue"),
        brokers = kafka_brokers(),
        dlq = dlq.name,
        out = out.display(),
    );
    let t = Tmux::start(&cmd);
    // Long lines wrap at the pane's width: read the screen as one line.
    let screen = t.wait_for("[y/N]").replace('\n', "");
    assert!(
        screen.contains("replay the 3 letter(s) matching 'error:trade.Invalid'"),
        "{screen}"
    );
    assert!(screen.contains("partition 0 offsets 0..2"), "{screen}");
    // A matching letter arrives while the operator reads the question.
    letter(&cfg, &dlq.name, &source.name, 4, "trade.Invalid").await;
    assert_eq!(
        high_watermarks(&dlq.name, 1),
        vec![5],
        "the late letter is in the DLQ"
    );
    t.keys(&["y", "Enter"]);
    let screen = t.wait_for("EXIT=").replace('\n', "");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        screen.contains("3 letter(s): 3 replayed")
            && screen.contains("3 counted when confirmed (partition 0 offsets 0..2)"),
        "{screen}"
    );
    let replayed: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["status"] == "replayed")
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        replayed,
        ["0:0", "0:1", "0:2"],
        "exactly the letters counted"
    );
    // The late letter is still new: the next run picks it up, and only it.
    let again = crate::common::procs::morgue_cmd()
        .args(["replay", "--kafka", &kafka_brokers(), "--topic", &dlq.name])
        .args(["--filter", "error:trade.Invalid", "--yes"])
        .env("MORGUE_AUDIT_LOG", dir.join("audit.jsonl"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let lines = crate::common::procs::json_lines(&again);
    let replayed: Vec<&str> = lines
        .iter()
        .filter(|v| v["status"] == "replayed")
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        replayed,
        ["0:4"],
        "{}",
        crate::common::procs::stderr(&again)
    );
}

#[tokio::test]
async fn a_filter_that_does_not_parse_refuses_to_run_and_a_leading_dash_negates() {
    let source = TestTopic::new("bound-bad-src", 1).await;
    let dlq = TestTopic::new("bound-bad-dlq", 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    for i in 0..3 {
        letter(&cfg, &dlq.name, &source.name, i, "trade.Invalid").await;
    }
    let run = |args: &[&str]| {
        crate::common::procs::morgue_cmd()
            .args(args)
            .args(["--kafka", &kafka_brokers(), "--topic", &dlq.name])
            .env(
                "MORGUE_AUDIT_LOG",
                std::env::temp_dir().join(unique("audit")),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for q in [
        "$.n<<",
        "$.n<abc",
        "$.n<=<1",
        "$.n<1)",
        "header.:x",
        "-",
        "key:A or",
        "state:bogus",
        "/[unclosed/",
        "since:abc",
        "-headers.tenant:acme",
        "$.items[0].n>0",
        "since:1732700000",
        "header.x",
        "\"unterminated",
        "or",
        "$.n",
        "//",
    ] {
        for dry in [true, false] {
            let mut args = vec!["replay", "--filter", q, "--yes"];
            if dry {
                args.push("--dry-run");
            }
            let out = run(&args);
            let err = crate::common::procs::stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{q} (dry run: {dry}): {err}");
            assert!(out.stdout.is_empty(), "{q}: nothing is listed or sent");
            assert_eq!(err.trim().lines().count(), 1, "{q}: {err}");
            assert!(err.contains(&format!("bad filter '{q}' at ")), "{q}: {err}");
        }
    }
    // A blank query would match every letter: as a replay's, it is refused.
    for q in ["", "   "] {
        let out = run(&["replay", "--filter", q, "--yes"]);
        let err = crate::common::procs::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{q:?}: {err}");
        assert!(
            err.contains("is empty and would replay every letter"),
            "{err}"
        );
    }
    // Nothing was replayed by any of them.
    let out = run(&["list", "--filter", "state:replayed"]);
    assert!(out.status.success() && out.stdout.is_empty());
    // The README's negation works as written, as its own argument.
    let out = run(&["list", "--filter", "-key:00000001*"]);
    assert!(
        out.status.success(),
        "{}",
        crate::common::procs::stderr(&out)
    );
    let keys: Vec<String> = crate::common::procs::json_lines(&out)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["0:0", "0:2"]);
}

/// `--yes` on Kafka reads the DLQ once (no count first): bound all the same, to the
/// letters below each partition's end offset when the run started. A matching letter
/// produced while the run holds its first claim waits for the next run; the windows
/// (two letters each here, two at once) report in the order read.
#[tokio::test]
async fn a_letter_arriving_during_a_yes_run_waits_for_the_next_one() {
    let source = TestTopic::new("bound-yes-src", 1).await;
    let dlq = TestTopic::new("bound-yes-dlq", 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    for i in 0..7 {
        letter(&cfg, &dlq.name, &source.name, i, "trade.Invalid").await;
    }
    let audit = std::env::temp_dir().join(unique("audit"));
    let run = |pause: Option<&str>| {
        let mut c = crate::common::procs::morgue_cmd();
        c.args(["replay", "--kafka", &kafka_brokers(), "--topic", &dlq.name])
            .args(["--filter", "error:trade.Invalid", "--yes"])
            .env("MORGUE_AUDIT_LOG", &audit)
            .env("MORGUE_TEST_WINDOW", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = pause {
            c.env("MORGUE_TEST_PAUSE", p);
        }
        c.spawn().unwrap()
    };
    let ids = |out: &std::process::Output| -> Vec<String> {
        crate::common::procs::json_lines(out)
            .iter()
            .filter(|v| v["status"] == "replayed")
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    let child = run(Some("announced:2000"));
    let (child, err) = crate::common::procs::wait_marker(child, "morgue-test-pause: announced", 60);
    // Matching, and produced while the first window is claimed: after the run began.
    letter(&cfg, &dlq.name, &source.name, 7, "trade.Invalid").await;
    let out = crate::common::procs::finish(child, err);
    let err = crate::common::procs::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        ids(&out),
        ["0:0", "0:1", "0:2", "0:3", "0:4", "0:5", "0:6"],
        "the letters there when it started, in the order read: {err}"
    );
    assert!(
        err.contains(
            "7 letter(s): 7 replayed, 0 recovered, 0 skipped, 0 sent-unconfirmed, 0 failed"
        ) && err.contains(
            "7 matching letter(s) below the end offsets when it started (partition 0 offsets 0..6)"
        ),
        "{err}"
    );
    // The late letter is still new: the next run takes it, and only it.
    let again = run(None).wait_with_output().unwrap();
    assert!(
        again.status.success(),
        "{}",
        crate::common::procs::stderr(&again)
    );
    assert_eq!(ids(&again), ["0:7"]);
    let arrived = read_all(&source.name).await;
    assert_eq!(arrived.len(), 8, "each letter once");
}
