//! Child processes in tests: their JSON-lines output, and a SIGKILL at an exact step.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output};
use std::time::Duration;

/// Each stdout line of `out` as JSON.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The stderr of `out` as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts `cmd` (stderr piped), waits until it prints `marker` on stderr (it then
/// pauses there, see `MORGUE_TEST_PAUSE`), runs `meanwhile`, and SIGKILLs it at a
/// random moment of the pause. None when the marker never came.
pub fn kill_at<T>(mut cmd: Command, marker: &str, meanwhile: impl FnOnce() -> T) -> Option<T> {
    let mut child: Child = cmd.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains(&marker) {
                let _ = tx.send(());
                return;
            }
        }
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .ok()
        .map(|()| meanwhile());
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * 6;
    std::thread::sleep(Duration::from_millis(jitter));
    child.kill().unwrap();
    child.wait().unwrap();
    out
}

/// Starts reading `child`'s piped stderr on a thread of its own and waits until it
/// prints `marker` (at most `secs` seconds); the child and the reader, for [`finish`].
pub fn wait_marker(
    mut child: Child,
    marker: &str,
    secs: u64,
) -> (Child, std::thread::JoinHandle<String>) {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = marker.to_string();
    let reader = std::thread::spawn(move || {
        let marker = wanted;
        let mut all = String::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains(&marker) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(secs * 20))
        .unwrap_or_else(|_| panic!("'{marker}' never came"));
    (child, reader)
}

/// Waits for a child started by [`wait_marker`]; its output with the whole stderr.
pub fn finish(child: Child, reader: std::thread::JoinHandle<String>) -> Output {
    let mut out = child.wait_with_output().unwrap();
    out.stderr = reader.join().unwrap().into_bytes();
    out
}

/// The morgue binary under test, with no `MORGUE_*` setting inherited from whoever runs
/// the tests (the servers' `MORGUE_TEST_*` aside: the binary does not read them), and
/// stdin closed. Each test then sets what it means.
pub fn morgue_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_morgue"));
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str()
            && k.starts_with("MORGUE_")
            && !k.starts_with("MORGUE_TEST_")
        {
            c.env_remove(k);
        }
    }
    c.stdin(std::process::Stdio::null());
    c
}

/// The replay ids of a letter's history, from its JSON line (`list`, `show`), oldest first.
pub fn replay_ids(l: &serde_json::Value) -> Vec<String> {
    l["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["replay_id"].as_str().unwrap().to_string())
        .collect()
}

/// A letter's state from its JSON line, `confirmed` (replayed, its watch over) counted
/// as `replayed`.
pub fn shown(state: &serde_json::Value) -> &str {
    match state.as_str().unwrap() {
        "confirmed" => "replayed",
        s => s,
    }
}
