//! `morgue route` stopped by SIGINT/SIGTERM against the real broker: the running
//! command may finish within `--grace` (a success is committed), a failure during the
//! stop is never dead-lettered, a second signal stops at once, and the command's whole
//! process group goes with it. Signals at random moments never dead-letter a message
//! because of the signal, and never commit past unfinished work.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;

/// Starts the router with `--exec exec` (see [`route_with`]).
fn route(source: &str, dlq: &str, group: &str, exec: &str, extra: &[&str]) -> Child {
    route_with(source, dlq, group, ["--exec", exec], extra)
}

/// Starts the router as a terminal would: the leader of its own process group;
/// `processor` is `["--exec", CMD]`, `["--pipe", CMD]` or `["--http", URL]`.
pub(crate) fn route_with(
    source: &str,
    dlq: &str,
    group: &str,
    processor: [&str; 2],
    extra: &[&str],
) -> Child {
    use std::os::unix::process::CommandExt as _;
    crate::common::procs::morgue_cmd()
        .process_group(0)
        .args(["route", "--kafka", &kafka_brokers(), "--topic", dlq])
        .args(["--source", source, "--group", group])
        .args(processor)
        .args(["--backoff", "200ms"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Signals the router's whole process group, as Ctrl-C in a terminal does.
pub(crate) fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), "--", &format!("-{}", child.id())])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// Waits for the router to exit; asserts it succeeded; its counts.
pub(crate) fn stats(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "route failed: {err}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"))
}

/// A fresh directory for a test's files.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits (60 s at most) until `p` exists.
pub(crate) async fn wait_file(p: &Path) {
    let p = p.to_path_buf();
    wait_until("p.exists()", 60, move || p.exists()).await;
}

#[tokio::test]
async fn a_failure_during_the_stop_is_abandoned_not_dead_lettered() {
    let (source, dlq) = (
        TestTopic::new("sig-src", 1).await,
        TestTopic::new("sig-dlq", 1).await,
    );
    let group = unique("sig-group");
    let dir = scratch("sig-fail");
    produce(&source.name, Some(b"k"), b"v", &[], None).await;
    // The last (only) attempt fails two seconds after the signal.
    let exec = format!("touch {}/started; sleep 2; exit 3", dir.display());
    let child = Spawned::new(route(
        &source.name,
        &dlq.name,
        &group,
        &exec,
        &["--max-attempts", "1"],
    ));
    wait_file(&dir.join("started")).await;
    signal(&child, "INT");
    let s = stats(child.take());
    assert_eq!(s["abandoned"], 1, "{s}");
    assert_eq!(s["max_attempts_exceeded"], 0, "{s}");
    assert!(
        read_all(&dlq.name).await.is_empty(),
        "dead-lettered because of the signal"
    );
    assert_eq!(
        committed(&group, &source.name, 1),
        vec![-1],
        "nothing committed"
    );
}

#[tokio::test]
async fn the_running_command_may_finish_and_is_committed() {
    let (source, dlq) = (
        TestTopic::new("sig-src", 1).await,
        TestTopic::new("sig-dlq", 1).await,
    );
    let group = unique("sig-group");
    let dir = scratch("sig-ok");
    produce(&source.name, Some(b"k"), b"v", &[], None).await;
    let exec = format!(
        "touch {d}/started; sleep 2; touch {d}/done",
        d = dir.display()
    );
    let child = Spawned::new(route(&source.name, &dlq.name, &group, &exec, &[]));
    wait_file(&dir.join("started")).await;
    signal(&child, "TERM");
    let s = stats(child.take());
    assert_eq!(s["processed"], 1, "{s}");
    assert!(dir.join("done").exists());
    assert_eq!(committed(&group, &source.name, 1), vec![1]);
}

#[tokio::test]
async fn a_second_signal_or_the_end_of_grace_kills_the_command_group() {
    for (second, grace) in [(true, "60s"), (false, "1s")] {
        let (source, dlq) = (
            TestTopic::new("sig-src", 1).await,
            TestTopic::new("sig-dlq", 1).await,
        );
        let group = unique("sig-group");
        let dir = scratch("sig-kill");
        produce(&source.name, Some(b"k"), b"v", &[], None).await;
        // The command and a child of its own both outlive a short stop unless killed.
        let exec = format!(
            "touch {d}/started; (sleep 4; touch {d}/orphan) & sleep 4; touch {d}/done",
            d = dir.display()
        );
        let child = Spawned::new(route(
            &source.name,
            &dlq.name,
            &group,
            &exec,
            &["--grace", grace],
        ));
        wait_file(&dir.join("started")).await;
        signal(&child, "INT");
        if second {
            tokio::time::sleep(Duration::from_millis(300)).await;
            signal(&child, "INT");
        }
        let s = stats(child.take());
        assert_eq!(s["abandoned"], 1, "{s}");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!dir.join("done").exists(), "the command survived the stop");
        assert!(!dir.join("orphan").exists(), "its child survived the stop");
        assert!(read_all(&dlq.name).await.is_empty());
        assert_eq!(committed(&group, &source.name, 1), vec![-1]);
    }
}

#[tokio::test]
async fn signals_at_random_moments_never_dead_letter_because_of_the_signal() {
    const N: usize = 12;
    let (source, dlq) = (
        TestTopic::new("sig-src", 1).await,
        TestTopic::new("sig-dlq", 1).await,
    );
    let group = unique("sig-group");
    // Every third message fails for good (3 attempts with backoff), the rest take a moment.
    for i in 0..N {
        let v = if i % 3 == 0 {
            format!("bad-{i}")
        } else {
            format!("ok-{i}")
        };
        produce(&source.name, Some(v.as_bytes()), v.as_bytes(), &[], None).await;
    }
    let exec = r#"v=$(cat); sleep 0.2; case "$v" in bad-*) echo "rejected $v" >&2; exit 1;; esac"#;
    // 10 rounds in the suite; scripts/chaos.sh runs 40 (MORGUE_SIGNAL_ROUNDS).
    let rounds: u32 = std::env::var("MORGUE_SIGNAL_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for round in 0..rounds {
        let child = Spawned::new(route(
            &source.name,
            &dlq.name,
            &group,
            exec,
            &["--max-attempts", "3", "--grace", "300ms"],
        ));
        let ms = 800 + u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 8;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        signal(&child, if round % 2 == 0 { "INT" } else { "TERM" });
        stats(child.take());
        // Every dead letter used all its attempts: none was written because of a signal.
        for l in read_all(&dlq.name).await {
            assert_eq!(
                l.failure.attempts,
                Some(3),
                "round {round}: {:?}",
                l.failure
            );
        }
        // Nothing committed past a message that is neither processed nor dead-lettered.
        let done = read_all(&dlq.name).await.len() as i64;
        let offset = committed(&group, &source.name, 1)[0];
        let bad_before = (0..offset.max(0)).filter(|i| i % 3 == 0).count() as i64;
        assert!(
            done >= bad_before,
            "round {round}: committed {offset} with {done} letters"
        );
    }
    // A last run without signals finishes the rest: each bad message dead-lettered.
    let child = Spawned::new(route(
        &source.name,
        &dlq.name,
        &group,
        exec,
        &["--max-attempts", "3"],
    ));
    let g = group.clone();
    let t = source.name.clone();
    wait_until("committed(&g, &t, 1)[0] == N as i64", 120, move || {
        committed(&g, &t, 1)[0] == N as i64
    })
    .await;
    signal(&child, "TERM");
    stats(child.take());
    let mut keys: Vec<String> = read_all(&dlq.name)
        .await
        .iter()
        .map(|l| String::from_utf8(l.key.clone().unwrap()).unwrap())
        .collect();
    keys.sort();
    let dupes = keys.len() - {
        let mut k = keys.clone();
        k.dedup();
        k.len()
    };
    keys.dedup();
    assert_eq!(
        keys.len(),
        N.div_ceil(3),
        "every bad message reached the DLQ: {keys:?}"
    );
    println!(
        "signal rounds: {rounds}, bad messages {}, duplicate dead letters {dupes}",
        keys.len()
    );
}
