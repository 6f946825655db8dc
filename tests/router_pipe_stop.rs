//! `morgue route --pipe CMD` stopped by SIGTERM against the real broker: the process
//! reads end-of-file on its stdin once nothing is in flight, so what it buffers is
//! written before it exits; one that ignores end-of-file gets SIGTERM, then SIGKILL;
//! a second signal goes straight to SIGKILL. morgue exits 0 in every case.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Output};
use std::time::Duration;

use crate::common::*;
use crate::router_signals::{route_with, scratch, signal, stats, wait_file};

/// Answers every message at once, except `slow` (it says it started, then takes a
/// second); writes every value it saw to `seen` only when its stdin ends.
const FLUSH_AT_EOF: &str = r#"
import json, os, sys, time
d = sys.argv[1]
seen = []
for line in sys.stdin:
    m = json.loads(line)
    v = m["value"]["data"]
    seen.append(v)
    if v == "slow":
        open(os.path.join(d, "slow-started"), "w").close()
        time.sleep(1)
    print(json.dumps({"id": m["id"], "status": "ok"}), flush=True)
with open(os.path.join(d, "seen"), "w") as f:
    f.write("".join(s + "\n" for s in seen))
"#;

/// Answers every message; at end-of-file writes its pid to `eof` and keeps running;
/// SIGTERM only writes its pid to `term`.
const IGNORES_EOF: &str = r#"
import json, os, signal, sys
d = sys.argv[1]
def note(name):
    with open(os.path.join(d, name), "w") as f:
        f.write(str(os.getpid()))
signal.signal(signal.SIGTERM, lambda *_: note("term"))
for line in sys.stdin:
    m = json.loads(line)
    print(json.dumps({"id": m["id"], "status": "ok"}), flush=True)
note("eof")
while True:
    signal.pause()
"#;

/// `exec python3 SCRIPT DIR` with `script` written to `dir`.
fn python(dir: &Path, script: &str) -> String {
    let path = dir.join("processor.py");
    std::fs::write(&path, script).unwrap();
    format!("exec python3 {} {}", path.display(), dir.display())
}

/// Waits for the router to exit, at most `secs` (far more than its stop takes); on
/// running longer its group is killed and the test fails.
fn exit_within(child: Child, secs: u64) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            panic!("morgue did not exit within {secs}s of the stop");
        }
    }
}

/// The router's counts from `out`, asserting it exited 0; and its stderr.
fn counts(out: &Output) -> (serde_json::Value, String) {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "route failed: {err}");
    let s = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    (s, err)
}

/// True once the process `pid` is gone (or a zombie nobody reaped yet).
fn dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// Produces one message, starts the router with the `IGNORES_EOF` processor and
/// `--grace grace`, and waits until the message is committed.
async fn ignoring_eof(name: &str, grace: &str) -> (Child, std::path::PathBuf, Vec<TestTopic>) {
    let (source, dlq) = (
        TestTopic::new("pstop-src", 1).await,
        TestTopic::new("pstop-dlq", 1).await,
    );
    let group = unique("pstop-group");
    let dir = scratch(name);
    produce(&source.name, Some(b"k"), b"v", &[], None).await;
    let pipe = python(&dir, IGNORES_EOF);
    let child = Spawned::new(route_with(
        &source.name,
        &dlq.name,
        &group,
        ["--pipe", &pipe],
        &["--grace", grace],
    ));
    let t = source.name.clone();
    wait_until("committed(&group, &t, 1) == vec![1]", 60, move || {
        committed(&group, &t, 1) == vec![1]
    })
    .await;
    (child.take(), dir, vec![source, dlq])
}

#[tokio::test]
async fn the_pipe_process_reads_end_of_file_and_writes_what_it_buffered() {
    let (source, dlq) = (
        TestTopic::new("pstop-src", 1).await,
        TestTopic::new("pstop-dlq", 1).await,
    );
    let group = unique("pstop-group");
    let dir = scratch("pstop-flush");
    let values = ["m-0", "m-1", "m-2", "m-3", "slow"];
    for v in values {
        produce(&source.name, Some(v.as_bytes()), v.as_bytes(), &[], None).await;
    }
    let pipe = python(&dir, FLUSH_AT_EOF);
    let child = Spawned::new(route_with(
        &source.name,
        &dlq.name,
        &group,
        ["--pipe", &pipe],
        &[],
    ));
    // The last message is in flight when the signal comes: it is answered first.
    wait_file(&dir.join("slow-started")).await;
    signal(&child, "TERM");
    let s = stats(child.take());
    assert_eq!(s["processed"], values.len(), "{s}");
    let seen = std::fs::read_to_string(dir.join("seen"))
        .expect("the process never read end-of-file: what it buffered is lost");
    assert_eq!(seen.lines().collect::<Vec<_>>(), values, "{seen}");
    assert_eq!(
        committed(&group, &source.name, 1),
        vec![values.len() as i64]
    );
    assert!(read_all(&dlq.name).await.is_empty());
}

#[tokio::test]
async fn a_pipe_process_that_ignores_end_of_file_gets_sigterm_then_sigkill() {
    let (child, dir, _topics) = ignoring_eof("pstop-ignore", "1s").await;
    signal(&child, "TERM");
    let (s, err) = counts(&exit_within(child, 120));
    assert_eq!(s["processed"], 1, "{s}");
    let pid = std::fs::read_to_string(dir.join("eof")).expect("its stdin was never closed");
    assert!(dir.join("term").exists(), "no SIGTERM came: {err}");
    assert!(
        err.contains("did not exit within 1s of SIGTERM: SIGKILL to its process group"),
        "{err}"
    );
    wait_until("dead(&pid)", 60, || dead(&pid)).await;
    assert!(dead(&pid), "the process {pid} outlived morgue");
}

#[tokio::test]
async fn a_second_signal_kills_the_pipe_process_at_once() {
    // With ten minutes of grace only the second signal can end the stop in time.
    let (child, dir, _topics) = ignoring_eof("pstop-now", "600s").await;
    signal(&child, "TERM");
    wait_file(&dir.join("eof")).await;
    signal(&child, "TERM");
    let (s, err) = counts(&exit_within(child, 120));
    assert_eq!(s["processed"], 1, "{s}");
    assert!(err.contains("stopping now: SIGKILL"), "{err}");
    assert!(!dir.join("term").exists(), "SIGTERM came before SIGKILL");
    let pid = std::fs::read_to_string(dir.join("eof")).unwrap();
    wait_until("dead(&pid)", 60, || dead(&pid)).await;
    assert!(dead(&pid), "the process {pid} outlived morgue");
}
