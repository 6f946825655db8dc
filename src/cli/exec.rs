//! `morgue route --exec CMD`: `sh -c CMD` per message, the value on stdin and the
//! context in `MORGUE_*` variables; exit 0 is processed, exit 65 (EX_DATAERR) bad data,
//! anything else a failure worth retrying. Also what the other processors share: the
//! tail of a process's stderr, killing its process group, and reading an error line
//! as Spring writes one.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engine::route::router::{Incoming, ProcessError, Processor};

/// Exit status that marks a message as bad data: dead-lettered at once as `failed`.
pub const EXIT_NOT_RETRYABLE: i32 = 65;

/// Runs a shell command per message.
pub struct ExecProcessor {
    /// The command, run with `sh -c`.
    pub command: String,
    /// Longest a run may take.
    pub timeout: Duration,
}

/// `MORGUE_HEADER_` + the name upper-cased with anything but letters and digits as `_`.
fn header_var(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("MORGUE_HEADER_{clean}")
}

/// `sh -c command` with stdin, stdout and stderr piped, killed when dropped.
pub(super) fn shell(command: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[async_trait]
impl Processor for ExecProcessor {
    async fn process(&self, msg: &Incoming, attempt: u32) -> Result<(), ProcessError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut cmd = shell(&self.command);
        cmd.env("MORGUE_TOPIC", &msg.topic)
            .env("MORGUE_PARTITION", msg.partition.to_string())
            .env("MORGUE_OFFSET", msg.offset.to_string())
            .env("MORGUE_ATTEMPT", attempt.to_string());
        if let Some(ts) = msg.timestamp_ms {
            cmd.env("MORGUE_TIMESTAMP_MS", ts.to_string());
        }
        if let Some(k) = &msg.key {
            cmd.env("MORGUE_KEY_BASE64", b64.encode(k));
            if let Ok(s) = std::str::from_utf8(k) {
                cmd.env("MORGUE_KEY", s);
            }
        }
        for h in msg.headers.iter() {
            if let Some(v) = h.value.as_deref().and_then(|v| std::str::from_utf8(v).ok()) {
                cmd.env(header_var(&h.name), v);
            }
        }
        // Its own process group: a terminal's Ctrl-C reaches morgue, not the command,
        // and a timeout or an abort kills the command with everything it started.
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            ProcessError::new(
                "exec: spawn",
                format!("cannot run '{}': {e}", self.command),
                None,
                true,
            )
        })?;
        let group = KillGroup(child.id());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let value = msg.value.clone().unwrap_or_default();
        // stdin, stdout and stderr are served at once, so a chatty command never blocks
        // on a full pipe; the last STDERR_KEEP bytes of stderr are kept.
        let feed = async move {
            if let Some(mut s) = stdin {
                // A command that exits without reading stdin is fine: ignore EPIPE.
                let _ = s.write_all(&value).await;
            }
        };
        let drain_out = async move {
            if let Some(mut o) = stdout {
                // stdout is only drained so the command never blocks on a full pipe: a read error loses nothing.
                let _ = tokio::io::copy(&mut o, &mut tokio::io::sink()).await;
            }
        };
        let drain_err = async move {
            let mut keep = Tail::default();
            if let Some(mut e) = stderr {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = e.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    keep.push(&buf[..n]);
                }
            }
            keep.into_bytes()
        };
        let run = async {
            let (feed, out, err) = (
                tokio::spawn(feed),
                tokio::spawn(drain_out),
                tokio::spawn(drain_err),
            );
            let status = child.wait().await;
            // Done: whatever it left running is killed, which closes the pipes.
            drop(group);
            // Both tasks return (); a join error (panic or cancel) loses nothing the attempt reports.
            let _ = tokio::join!(feed, out);
            (status, err.await.unwrap_or_default())
        };
        let (status, err) = tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            ProcessError::new(
                "exec: timeout",
                format!("'{}' ran longer than {:?}", self.command, self.timeout),
                None,
                true,
            )
        })?;
        let status =
            status.map_err(|e| ProcessError::new("exec: wait", e.to_string(), None, true))?;
        if status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&err);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let code = status.code();
        // `ValueError: bad price` names its own class; otherwise say how the command ended.
        let (named, said) = split_error(last);
        let class = match (named, code) {
            (Some(c), _) => c.to_string(),
            (None, Some(c)) => format!("exec: exit {c}"),
            (None, None) => "exec: killed by signal".to_string(),
        };
        let message = [said, last]
            .into_iter()
            .find(|m| !m.is_empty())
            .map_or_else(|| class.clone(), |m| m.chars().take(500).collect());
        let stack = (!text.trim().is_empty()).then(|| tail(&text, 4096));
        Err(ProcessError::new(
            class,
            message,
            stack,
            code != Some(EXIT_NOT_RETRYABLE),
        ))
    }
}

/// A processor's error line read as Spring writes one: `ValueError: bad price` is class
/// `ValueError` and message `bad price` (the class not repeated in the message); a line
/// with no such class is all message.
pub(super) fn split_error(line: &str) -> (Option<&str>, &str) {
    let split = line.split_once(": ");
    let named = split.map(|(c, _)| c.trim()).filter(|c| {
        !c.is_empty()
            && c.len() <= 100
            && c.chars()
                .all(|ch| ch.is_alphanumeric() || "._:$<>-".contains(ch))
    });
    match (named, split) {
        (Some(c), Some((_, rest))) => (Some(c), rest.trim()),
        _ => (None, line),
    }
}

/// How much of a command's stderr is kept (the end of it).
const STDERR_KEEP: usize = 64 * 1024;

/// The last [`STDERR_KEEP`] bytes written to a pipe.
#[derive(Default)]
pub(super) struct Tail(std::collections::VecDeque<u8>);

impl Tail {
    /// Keeps `bytes`, dropping what is older than the last [`STDERR_KEEP`].
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.0.extend(bytes);
        let over = self.0.len().saturating_sub(STDERR_KEEP);
        self.0.drain(..over);
    }

    fn into_bytes(self) -> Vec<u8> {
        self.0.into()
    }

    /// What is kept, as text.
    pub(super) fn text(&self) -> String {
        let (a, b) = self.0.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }
}

/// Kills a command's whole process group when dropped: on a timeout, when morgue
/// aborts the attempt, and after it exits (whatever it left running in the background).
pub(super) struct KillGroup(pub(super) Option<u32>);

impl KillGroup {
    /// Sends `sig` to the whole group; a group that is gone (ESRCH) is no error.
    pub(super) fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // ESRCH (the group already exited) is expected here; there is nothing else to do if killpg fails.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), sig);
        }
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
    }
}

/// The last `max` bytes of `s` (on a character boundary).
pub(super) fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Headers;

    fn msg(value: &[u8]) -> Incoming {
        let mut headers = Headers::default();
        headers.push("trace-id", "abc");
        Incoming {
            topic: "trades".into(),
            partition: 1,
            offset: 9,
            key: Some(b"K-1".to_vec()),
            value: Some(value.to_vec()),
            headers,
            ..Incoming::default()
        }
    }

    fn exec(cmd: &str) -> ExecProcessor {
        ExecProcessor {
            command: cmd.into(),
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn value_on_stdin_and_context_in_env() {
        let p = exec(
            r#"test "$(cat)" = '{"px":1}' && test "$MORGUE_KEY" = K-1 && test "$MORGUE_HEADER_TRACE_ID" = abc && test "$MORGUE_ATTEMPT" = 2"#,
        );
        assert_eq!(p.process(&msg(br#"{"px":1}"#), 2).await, Ok(()));
    }

    #[tokio::test]
    async fn exit_codes_decide_retrying() {
        let e = exec("echo 'price is negative' >&2; exit 65")
            .process(&msg(b"x"), 1)
            .await
            .unwrap_err();
        assert_eq!(e.class, "exec: exit 65");
        assert_eq!(e.message, "price is negative");
        assert!(!e.retryable);
        let e = exec("echo 'json.decoder.JSONDecodeError: Expecting value' >&2; exit 65")
            .process(&msg(b"x"), 1)
            .await
            .unwrap_err();
        assert_eq!(
            e.class, "json.decoder.JSONDecodeError",
            "the error names its class"
        );
        assert_eq!(e.message, "Expecting value", "the class is not repeated");
        let e = exec("exit 3").process(&msg(b"x"), 1).await.unwrap_err();
        assert_eq!(e.class, "exec: exit 3");
        assert!(e.retryable);
    }

    #[tokio::test]
    async fn a_hung_command_times_out() {
        let p = ExecProcessor {
            command: "sleep 5".into(),
            timeout: Duration::from_millis(100),
        };
        let e = p.process(&msg(b""), 1).await.unwrap_err();
        assert_eq!(e.class, "exec: timeout");
        assert!(e.retryable);
    }

    #[tokio::test]
    async fn a_chatty_command_is_drained_and_its_stderr_tail_kept() {
        // 300 KB of stderr and exit 0: a success, not a timeout.
        let ok = ExecProcessor {
            command: "head -c 300000 /dev/zero | tr '\\0' x >&2; head -c 300000 /dev/zero; exit 0"
                .into(),
            timeout: Duration::from_secs(5),
        };
        assert_eq!(ok.process(&msg(b""), 1).await, Ok(()));
        // 3 MB of stderr then the error: the last line is the message, the tail is kept.
        let e = exec("head -c 3000000 /dev/zero | tr '\\0' y >&2; echo >&2; echo 'ValueError: last words' >&2; exit 3")
            .process(&msg(b""), 1)
            .await
            .unwrap_err();
        assert_eq!(e.class, "ValueError");
        assert_eq!(e.message, "last words");
        assert!(e.stack_trace.unwrap().ends_with("ValueError: last words\n"));
    }

    #[tokio::test]
    async fn a_timeout_kills_what_the_command_started() {
        let mark = std::env::temp_dir().join(format!("morgue-orphan-{}", std::process::id()));
        let _ = std::fs::remove_file(&mark);
        let p = ExecProcessor {
            command: format!("(sleep 1; touch {}) & sleep 5", mark.display()),
            timeout: Duration::from_millis(200),
        };
        assert_eq!(
            p.process(&msg(b""), 1).await.unwrap_err().class,
            "exec: timeout"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!mark.exists(), "the background child outlived the timeout");
    }

    #[test]
    fn header_names_become_variables() {
        assert_eq!(
            header_var("kafka_dlt-original-topic"),
            "MORGUE_HEADER_KAFKA_DLT_ORIGINAL_TOPIC"
        );
    }
}
