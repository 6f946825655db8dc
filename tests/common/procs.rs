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
