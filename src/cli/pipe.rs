//! `morgue route --pipe CMD`: one long-lived process handles every message. morgue
//! writes one JSON object per message and line to its stdin (`id`, `topic`,
//! `partition`, `offset`, `timestamp_ms`, `attempt`, `key`, `value`, `headers`; bytes
//! in the `{encoding, data}` form of `list`), and the process answers one line per
//! message on stdout, in any order: `{"id", "status": "ok" | "retry" | "dead",
//! "error"}`. `dead` is bad data (dead-lettered at once, like exit 65). A process
//! that exits, or that does not answer within the timeout, is killed and started
//! again on the next message; the messages it held count as failed attempts. Its
//! stderr is drained and its tail kept for the error context. A line that is not an
//! answer is logged, quoted, and skipped.
//!
//! The stop (SIGINT/SIGTERM to morgue, see [`PipeStop::stop`]): no new message is
//! written and the messages in flight get `--grace` to be answered; then the
//! process's stdin is closed, so it reads end-of-file and may flush what it buffers
//! and exit by itself within `--grace`; if it does not, its process group gets
//! SIGTERM and `--grace` again, then SIGKILL. A second signal skips to SIGKILL.
//! Whatever the process left running in its group is killed once it has exited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::ChildStdin;
use tokio::sync::{mpsc, oneshot, watch};

use super::exec::{KillGroup, Tail, split_error, tail};
use crate::engine::export::json::HeadersJson;
use crate::engine::model::encoding::BytesRef;
use crate::engine::route::router::{Incoming, ProcessError, Processor};

/// One message as written to the process.
#[derive(Serialize)]
struct Request<'a> {
    id: &'a str,
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    attempt: u32,
    key: Option<BytesRef<'a>>,
    value: Option<BytesRef<'a>>,
    headers: HeadersJson<'a>,
}

/// One answer read from the process.
#[derive(Deserialize)]
struct Answer {
    id: String,
    status: String,
    #[serde(default)]
    error: Option<String>,
}

/// What a waiting message gets: the answer, or why none will come.
type Reply = Result<Answer, String>;

/// The running process: the lines for its stdin, the messages waiting for an answer,
/// its stderr's tail.
struct Running {
    /// To the task that writes to the process's stdin: what is queued when it gets to
    /// run goes in one write, so the process wakes once for many messages. None once
    /// closed (the stop): the task writes what is queued, then closes the stdin.
    stdin: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>,
    stderr: Arc<Mutex<Tail>>,
    /// Kills the process group when the process is replaced or the router stops.
    group: KillGroup,
    /// Set once stdout closed: the process is gone.
    gone: Arc<std::sync::atomic::AtomicBool>,
    /// How the process exited, once it has (it is reaped).
    exited: watch::Receiver<Option<String>>,
}

impl Running {
    /// Queues `line` for the process's stdin; false when that is closed.
    fn send(&self, line: Vec<u8>) -> bool {
        let stdin = self.stdin.lock().ok();
        stdin.is_some_and(|s| s.as_ref().is_some_and(|tx| tx.send(line).is_ok()))
    }
}

/// The process slot of a [`PipeProcessor`], shared with its [`PipeStop`].
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Running>>>>;

/// Runs one process for all messages.
pub struct PipeProcessor {
    /// The command, run with `sh -c`.
    pub command: String,
    /// Longest a message may wait for its answer.
    pub timeout: Duration,
    running: Slot,
}

impl PipeProcessor {
    /// A processor that starts `command` on the first message.
    pub fn new(command: String, timeout: Duration) -> Self {
        PipeProcessor {
            command,
            timeout,
            running: Slot::default(),
        }
    }

    /// What stops the process when the router has stopped (see [`PipeStop::stop`]).
    pub fn stopper(&self) -> PipeStop {
        PipeStop {
            command: self.command.clone(),
            running: self.running.clone(),
        }
    }

    /// The running process, started when there is none or the last one is gone.
    async fn process_now(&self) -> Result<Arc<Running>, ProcessError> {
        let mut slot = self.running.lock().await;
        if let Some(r) = slot
            .as_ref()
            .filter(|r| !r.gone.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Ok(r.clone());
        }
        let r = Arc::new(self.start()?);
        *slot = Some(r.clone());
        Ok(r)
    }

    /// Forgets `r` (it is killed once no message holds it).
    async fn replace(&self, r: &Arc<Running>) {
        let mut slot = self.running.lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, r)) {
            *slot = None;
        }
    }

    fn start(&self) -> Result<Running, ProcessError> {
        let mut cmd = super::exec::shell(&self.command);
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            ProcessError::new(
                "pipe: spawn",
                format!("cannot run '{}': {e}", self.command),
                None,
                true,
            )
        })?;
        let group = KillGroup(child.id());
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(ProcessError::new("pipe: spawn", "no pipes", None, true));
        };
        let waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>> = Arc::default();
        let tail_keep: Arc<Mutex<Tail>> = Arc::default();
        let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let keep = tail_keep.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut t) = keep.lock() {
                    t.push(&buf[..n]);
                }
            }
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (w, g, command) = (waiting.clone(), gone.clone(), self.command.clone());
        tokio::spawn(write_lines(stdin, rx, w, g, command));
        // Reaped as soon as it exits, whether or not its stdout is still open.
        let (exit_tx, exited) = watch::channel(None);
        let command = self.command.clone();
        tokio::spawn(async move {
            let why = match child.wait().await {
                Ok(s) => format!("'{command}' exited ({s}) before answering"),
                Err(e) => format!("'{command}' is gone: {e}"),
            };
            // No receiver left means every message gave up waiting: nobody needs to know it exited.
            let _ = exit_tx.send(Some(why));
        });
        let (w, g, command) = (waiting.clone(), gone.clone(), self.command.clone());
        let mut exit = exited.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Answer>(&line) {
                    Ok(a) => {
                        let to = w.lock().ok().and_then(|mut m| m.remove(&a.id));
                        match to {
                            Some(tx) => {
                                // The message stopped waiting (timed out or aborted): its late answer is dropped.
                                let _ = tx.send(Ok(a));
                            }
                            None => tracing::warn!(
                                "'{command}' answered '{}', which no message waits for",
                                a.id
                            ),
                        }
                    }
                    Err(e) => tracing::warn!(
                        "'{command}' wrote a line that is not an answer ({e}): '{}'",
                        tail(&line, 200)
                    ),
                }
            }
            g.store(true, std::sync::atomic::Ordering::SeqCst);
            let why = match exit.wait_for(Option::is_some).await {
                Ok(why) => why.clone().unwrap_or_default(),
                Err(_) => format!("'{command}' is gone"),
            };
            fail_waiting(&w, &g, &why);
        });
        Ok(Running {
            stdin: Mutex::new(Some(tx)),
            waiting,
            stderr: tail_keep,
            group,
            gone,
            exited,
        })
    }
}

#[async_trait]
impl Processor for PipeProcessor {
    async fn process(&self, msg: &Incoming, attempt: u32) -> Result<(), ProcessError> {
        let r = self.process_now().await?;
        let id = format!("{}:{}:{}:{attempt}", msg.topic, msg.partition, msg.offset);
        let mut line = serde_json::to_vec(&Request {
            id: &id,
            topic: &msg.topic,
            partition: msg.partition,
            offset: msg.offset,
            timestamp_ms: msg.timestamp_ms,
            attempt,
            key: msg.key.as_deref().map(BytesRef),
            value: msg.value.as_deref().map(BytesRef),
            headers: HeadersJson(&msg.headers),
        })
        .map_err(|e| ProcessError::new("pipe: encode", e.to_string(), None, false))?;
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = r.waiting.lock() {
            m.insert(id.clone(), tx);
        }
        let stack = |r: &Running| {
            let t = r.stderr.lock().map(|t| t.text()).unwrap_or_default();
            (!t.trim().is_empty()).then(|| tail(&t, 4096))
        };
        // Gone is set before the waiting are told: a message that came in after that
        // sees it here rather than waiting for the timeout.
        if r.gone.load(std::sync::atomic::Ordering::SeqCst) || !r.send(line) {
            if let Ok(mut m) = r.waiting.lock() {
                m.remove(&id);
            }
            self.replace(&r).await;
            let why = format!("'{}' is gone", self.command);
            return Err(ProcessError::new("pipe: gone", why, stack(&r), true));
        }
        let answer = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(Ok(a))) => a,
            Ok(Ok(Err(why))) => {
                self.replace(&r).await;
                return Err(ProcessError::new("pipe: gone", why, stack(&r), true));
            }
            Ok(Err(_)) => {
                self.replace(&r).await;
                let why = format!("'{}' is gone", self.command);
                return Err(ProcessError::new("pipe: gone", why, stack(&r), true));
            }
            Err(_) => {
                // A process that does not answer is stuck: start a new one.
                if let Ok(mut m) = r.waiting.lock() {
                    m.remove(&id);
                }
                self.replace(&r).await;
                let why = format!(
                    "'{}' gave no answer within {:?}",
                    self.command, self.timeout
                );
                return Err(ProcessError::new("pipe: timeout", why, stack(&r), true));
            }
        };
        let error = answer.error.unwrap_or_default();
        let (named, said) = split_error(&error);
        let class = |fallback: &str| named.map_or_else(|| fallback.to_string(), str::to_string);
        match answer.status.as_str() {
            "ok" => Ok(()),
            "retry" => Err(ProcessError::new(
                class("pipe: retry"),
                said,
                stack(&r),
                true,
            )),
            "dead" => Err(ProcessError::new(
                class("pipe: dead"),
                said,
                stack(&r),
                false,
            )),
            other => Err(ProcessError::new(
                "pipe: bad answer",
                format!(
                    "status '{other}' of '{}' is none of ok, retry, dead",
                    answer.id
                ),
                None,
                true,
            )),
        }
    }
}

/// Stops the process of a [`PipeProcessor`] once the router has stopped.
pub struct PipeStop {
    command: String,
    running: Slot,
}

/// How the process ended at the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No process was running.
    NotRunning,
    /// It exited by itself after its stdin was closed.
    Exited,
    /// It exited after SIGTERM.
    Terminated,
    /// It was killed with SIGKILL.
    Killed,
}

impl PipeStop {
    /// The stop sequence, for when no message is in flight any more: closes the
    /// process's stdin and gives it `grace` to exit by itself, then sends SIGTERM to its
    /// process group and gives it `grace` again, then SIGKILL. When `now` turns true (a
    /// second signal) it is SIGKILL at once.
    pub async fn stop(&self, grace: Duration, mut now: watch::Receiver<bool>) -> Ended {
        let Some(r) = self.running.lock().await.take() else {
            return Ended::NotRunning;
        };
        let mut exited = r.exited.clone();
        if exited.borrow().is_some() {
            return Ended::Exited;
        }
        if *now.borrow() {
            return Ended::Killed;
        }
        let command = &self.command;
        super::say(format!(
            "closing the stdin of '{command}': it has {grace:?} to exit"
        ));
        if let Ok(mut stdin) = r.stdin.lock() {
            stdin.take();
        }
        if exits_within(&mut exited, &mut now, grace).await {
            return Ended::Exited;
        }
        if *now.borrow() {
            super::say(format!("stopping now: SIGKILL to '{command}'"));
            return Ended::Killed;
        }
        super::say(format!(
            "'{command}' did not exit within {grace:?} of the end of its stdin: SIGTERM to its process group"
        ));
        r.group.signal(nix::sys::signal::Signal::SIGTERM);
        if exits_within(&mut exited, &mut now, grace).await {
            return Ended::Terminated;
        }
        if *now.borrow() {
            super::say(format!("stopping now: SIGKILL to '{command}'"));
        } else {
            super::say(format!(
                "'{command}' did not exit within {grace:?} of SIGTERM: SIGKILL to its process group"
            ));
        }
        // Dropping the last hold of `r` kills the group.
        Ended::Killed
    }
}

/// True when the process exits within `grace`; false after `grace`, or at once when
/// `now` turns true.
async fn exits_within(
    exited: &mut watch::Receiver<Option<String>>,
    now: &mut watch::Receiver<bool>,
    grace: Duration,
) -> bool {
    let stop_now = async {
        if now.wait_for(|n| *n).await.is_err() {
            // Nobody can ask any more: only the grace ends the wait.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        e = tokio::time::timeout(grace, exited.wait_for(Option::is_some)) => e.is_ok(),
        () = stop_now => false,
    }
}

/// Writes the queued lines to the process's stdin, all that are queued in one write.
/// When a write fails the process is marked gone and every waiting message is told
/// why; it ends when the process is forgotten (its sender dropped).
async fn write_lines(
    mut stdin: ChildStdin,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Reply>>>>,
    gone: Arc<std::sync::atomic::AtomicBool>,
    command: String,
) {
    let mut batch = Vec::new();
    let mut buf = Vec::new();
    while rx.recv_many(&mut batch, 1024).await > 0 {
        buf.clear();
        for line in batch.drain(..) {
            buf.extend_from_slice(&line);
        }
        if let Err(e) = stdin.write_all(&buf).await {
            fail_waiting(
                &waiting,
                &gone,
                &format!("cannot write to '{command}': {e}"),
            );
            return;
        }
    }
}

/// Marks the process gone, then tells every message waiting for it `why` (in that
/// order: a message that comes in between sees it gone).
fn fail_waiting(
    waiting: &Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    gone: &std::sync::atomic::AtomicBool,
    why: &str,
) {
    gone.store(true, std::sync::atomic::Ordering::SeqCst);
    let left: Vec<_> = waiting
        .lock()
        .map(|mut m| m.drain().collect())
        .unwrap_or_default();
    for (_, tx) in left {
        // A message that stopped waiting (timed out or aborted) needs no failure either.
        let _ = tx.send(Err(why.to_string()));
    }
}

#[cfg(test)]
#[path = "pipe_tests.rs"]
mod tests;
