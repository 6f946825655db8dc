//! The pipe processor against real processes (python3 reading JSON lines).

use std::time::Duration;

use super::PipeProcessor;
use crate::engine::Headers;
use crate::engine::route::router::{Incoming, Processor};

/// A processor in Python: the value decides (`ok`, `retry`, `dead`, `exit`, `hang`,
/// `noise`); it writes to stderr for each message and answers each line at once.
const SCRIPT: &str = r#"
import json, sys, time
for line in sys.stdin:
    m = json.loads(line)
    v = m["value"]["data"] if m["value"] else ""
    sys.stderr.write("handling %s attempt %d\n" % (m["id"], m["attempt"]))
    sys.stderr.flush()
    if v == "exit":
        sys.exit(3)
    if v == "hang":
        time.sleep(60)
    if v == "noise":
        print("not json at all", flush=True)
        print(json.dumps({"id": "nobody", "status": "ok"}), flush=True)
        v = "ok"
    if v == "ok":
        print(json.dumps({"id": m["id"], "status": "ok"}), flush=True)
    elif v == "retry":
        print(json.dumps({"id": m["id"], "status": "retry", "error": "TimeoutError: downstream slow"}), flush=True)
    else:
        print(json.dumps({"id": m["id"], "status": "dead", "error": "price must be positive"}), flush=True)
"#;

fn pipe(timeout: Duration) -> PipeProcessor {
    let dir = std::env::temp_dir().join(format!("morgue-pipe-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("p.py");
    std::fs::write(&script, SCRIPT).unwrap();
    PipeProcessor::new(format!("python3 {}", script.display()), timeout)
}

fn msg(offset: i64, value: &str) -> Incoming {
    let mut h = Headers::default();
    h.push("traceparent", "00-abc-01");
    Incoming {
        topic: "trades".into(),
        partition: 2,
        offset,
        timestamp_ms: Some(1_795_000_000_000),
        key: Some(b"6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b".to_vec()),
        value: Some(value.as_bytes().to_vec()),
        headers: h,
    }
}

#[tokio::test]
async fn answers_decide_and_one_process_serves_every_message() {
    let p = pipe(Duration::from_secs(10));
    assert_eq!(p.process(&msg(1, "ok"), 1).await, Ok(()));
    let e = p.process(&msg(2, "retry"), 1).await.unwrap_err();
    assert_eq!(
        (e.class.as_str(), e.message.as_str(), e.retryable),
        ("TimeoutError", "downstream slow", true)
    );
    let e = p.process(&msg(3, "bad"), 2).await.unwrap_err();
    assert_eq!(
        (e.class.as_str(), e.message.as_str(), e.retryable),
        ("pipe: dead", "price must be positive", false)
    );
    let stack = e.stack_trace.unwrap();
    assert!(
        stack.contains("handling trades:2:3:2 attempt 2"),
        "stderr kept: {stack}"
    );
    assert!(
        stack.contains("handling trades:2:1:1"),
        "one process for all: {stack}"
    );
    // A line that is not an answer, and an answer nobody waits for, are skipped.
    assert_eq!(p.process(&msg(4, "noise"), 1).await, Ok(()));
}

#[tokio::test]
async fn a_process_that_exits_fails_its_message_and_is_started_again() {
    let p = pipe(Duration::from_secs(10));
    assert_eq!(p.process(&msg(1, "ok"), 1).await, Ok(()));
    let e = p.process(&msg(2, "exit"), 1).await.unwrap_err();
    assert_eq!(e.class, "pipe: gone");
    assert!(e.retryable && e.message.contains("exited"), "{e:?}");
    assert_eq!(
        p.process(&msg(2, "ok"), 2).await,
        Ok(()),
        "a new process answers"
    );
}

#[tokio::test]
async fn no_answer_within_the_timeout_restarts_the_process() {
    let p = pipe(Duration::from_millis(1500));
    let e = p.process(&msg(1, "hang"), 1).await.unwrap_err();
    assert_eq!(e.class, "pipe: timeout");
    assert!(e.retryable);
    assert_eq!(p.process(&msg(1, "ok"), 2).await, Ok(()));
}

#[tokio::test]
async fn a_command_that_cannot_start_says_so() {
    let p = PipeProcessor::new("exec /nonexistent/processor".into(), Duration::from_secs(5));
    let e = p.process(&msg(1, "ok"), 1).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(e.message.contains("/nonexistent/processor"), "{e:?}");
}

#[tokio::test]
async fn a_process_that_closes_its_stdin_fails_its_messages_at_once() {
    // Closes stdin and lives on: the write fails and every waiting message hears why
    // (not after the timeout), and the next message starts a new process.
    let closed = std::env::temp_dir().join(format!("morgue-closed-{}", uuid::Uuid::new_v4()));
    let cmd = format!("exec 0<&-; touch {}; sleep 30", closed.display());
    let p = PipeProcessor::new(cmd.clone(), Duration::from_secs(60));
    for attempt in 1..=2 {
        let _ = std::fs::remove_file(&closed);
        p.process_now().await.unwrap();
        while !closed.exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let e = p.process(&msg(1, "ok"), attempt).await.unwrap_err();
        assert_eq!(e.class, "pipe: gone", "{e:?}");
        assert!(
            e.message.contains(&format!("cannot write to '{cmd}'")),
            "{e:?}"
        );
    }
}
