//! `morgue route`: give any command retry and dead-letter semantics. With `--exec`,
//! each message from the source topics is piped to `sh -c CMD` (value on stdin, key
//! and headers in the environment); exit 0 is success, exit 65 (EX_DATAERR) a failure
//! that retrying cannot fix, anything else a failure worth retrying. With `--pipe`,
//! one process answers every message over JSON lines (see `pipe`); with `--http`,
//! each message is POSTed to an endpoint (see `http`).

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::backend::Dlq;
use super::{BackendArgs, UsageError};
use crate::backends::kafka::KafkaConfig;
use crate::backends::kafka::route;
use crate::backends::kafka::sink::KafkaSink;
use crate::backends::mongo::dlq::MongoDlq;
use crate::engine::EngineError;
use crate::engine::model::duration::parse_duration;
use crate::engine::model::names::hostname;
use crate::engine::route::metrics::RouterMetrics;
use crate::engine::route::router::{
    Incoming, ProcessError, Processor, RetryPolicy, Router, RouterConfig,
};
use crate::engine::route::sink::DeadLetterSink;

/// Exit status that marks a message as bad data: dead-lettered at once as `failed`.
pub const EXIT_NOT_RETRYABLE: i32 = 65;

/// Options of `morgue route`.
#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// Source topic to consume (repeatable).
    #[arg(long = "source", short = 's', required = true, value_name = "TOPIC")]
    pub sources: Vec<String>,
    /// Consumer group for the source topics.
    #[arg(long, short = 'g', default_value = "morgue-router")]
    pub group: String,
    /// Command run per message with `sh -c`; value on stdin, MORGUE_* variables set.
    #[arg(
        long,
        value_name = "CMD",
        required_unless_present_any = ["pipe", "http"],
        conflicts_with_all = ["pipe", "http"]
    )]
    pub exec: Option<String>,
    /// One long-lived command for every message: a JSON line per message on its
    /// stdin, a JSON answer line per message on its stdout (`{"id", "status": "ok" |
    /// "retry" | "dead", "error"}`), restarted when it exits.
    #[arg(long, value_name = "CMD", conflicts_with = "http")]
    pub pipe: Option<String>,
    /// POST each message to URL: the value is the body, the key, topic, partition,
    /// offset, attempt and headers go in `morgue-*` request headers. 2xx: processed;
    /// 408, 429, 5xx, timeouts, connection errors: retried (after `Retry-After`); other
    /// statuses: bad data, dead-lettered at once.
    #[arg(long, value_name = "URL")]
    pub http: Option<String>,
    /// CA certificates (PEM) to trust for an https `--http` URL.
    #[arg(long, value_name = "PEM", requires = "http")]
    pub http_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for an https `--http` URL that asks for one.
    #[arg(long, value_name = "PEM", requires_all = ["http", "http_key"])]
    pub http_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "http_cert")]
    pub http_key: Option<std::path::PathBuf>,
    /// Processing attempts before a message is dead-lettered.
    #[arg(long, default_value_t = 3)]
    pub max_attempts: u32,
    /// Wait before the first retry; doubles each time.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub backoff: Duration,
    /// Longest wait between retries.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub max_backoff: Duration,
    /// Dead-letter messages older than this as `expired`, without processing them.
    #[arg(long, value_parser = parse_duration)]
    pub max_age: Option<Duration>,
    /// Messages in flight at once. Messages with the same key never overlap or
    /// reorder, and a partition's committed offset only moves past messages all done.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Kill the command (`--exec`), or give up on the answer and restart the process
    /// (`--pipe`), after this long; counts as a retryable failure.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Serve Prometheus metrics on ADDR (`127.0.0.1:9464`, `:9464`): `/metrics`,
    /// `/healthz` (the process lives), `/readyz` (connected and assigned).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// DLQ write attempts before the partition is paused.
    #[arg(long, default_value_t = 5)]
    pub dlq_attempts: u32,
    /// On SIGINT/SIGTERM, how long the running command may take to finish before its
    /// process group is killed and its message left uncommitted (a second signal: at once).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub grace: Duration,
}

/// The DLQ topic `route` writes to when `--topic` is not given.
pub const DEFAULT_DLQ_TOPIC: &str = "deadletter-topic";

/// What clap cannot say about the options together.
fn check(args: &RouteArgs) -> Result<(), UsageError> {
    let tls = [
        ("--http-ca", args.http_ca.is_some()),
        ("--http-cert", args.http_cert.is_some()),
        ("--http-key", args.http_key.is_some()),
    ];
    match tls.iter().find(|(_, given)| *given) {
        Some((flag, _)) if args.http.is_none() => Err(UsageError(format!(
            "{flag} needs --http URL (it is the TLS of that endpoint)"
        ))),
        _ => Ok(()),
    }
}

/// Runs the router until SIGINT/SIGTERM, then prints its counts as one JSON line.
pub async fn run(backend: &BackendArgs, args: &RouteArgs) -> anyhow::Result<()> {
    check(args)?;
    let mut signals = Signals::listen()?;
    let mut backend = backend.clone();
    if backend.mongo.is_none() {
        backend
            .topic
            .get_or_insert_with(|| DEFAULT_DLQ_TOPIC.to_string());
    }
    let target = backend.target()?;
    if target.read_only {
        return Err(EngineError::ReadOnly("routing into the DLQ".into()).into());
    }
    let (cfg, sink): (KafkaConfig, Box<dyn DeadLetterSink>) = match target.dlq {
        Dlq::Kafka { cfg, topic } => (cfg.clone(), Box::new(KafkaSink::new(cfg, &topic)?)),
        Dlq::File { path } => {
            return Err(
                UsageError(format!("cannot route into the file '{}'", path.display())).into(),
            );
        }
        Dlq::Mongo { cfg, map, kafka } => {
            let kafka = kafka.ok_or_else(|| {
                UsageError("route needs --kafka BROKERS: the cluster of the source topics".into())
            })?;
            let k = kafka.clone();
            let cluster = tokio::task::spawn_blocking(move || k.cluster_id())
                .await??
                .unwrap_or_else(|| kafka.brokers.clone());
            let sink = MongoDlq::open(cfg, *map).await?.with_origin(cluster);
            (kafka, Box::new(sink))
        }
    };
    let (tx, rx) = watch::channel(false);
    let (abort_tx, abort_rx) = watch::channel(false);
    let grace = args.grace;
    tokio::spawn(async move {
        signals.recv().await;
        super::say(format!(
            "stopping: no new messages; the running command has {grace:?} to finish (signal again to stop now)"
        ));
        let _ = tx.send(true);
        tokio::select! {
            _ = tokio::time::sleep(grace) => {}
            _ = signals.recv() => {}
        }
        let _ = abort_tx.send(true);
    });
    let router_cfg = RouterConfig {
        group: args.group.clone(),
        retry: RetryPolicy {
            max_attempts: args.max_attempts,
            initial_backoff: args.backoff,
            max_backoff: args.max_backoff,
        },
        max_age: args.max_age,
        dlq_write_attempts: args.dlq_attempts,
        dlq_backoff: Duration::from_millis(500),
        host: hostname(),
    };
    let processor: Box<dyn Processor> = match (&args.exec, &args.pipe, &args.http) {
        (_, _, Some(url)) => {
            let tls = crate::engine::decoders::schemas::RegistryTls {
                ca: args.http_ca.clone(),
                cert: args.http_cert.clone(),
                key: args.http_key.clone(),
            };
            Box::new(super::http::HttpProcessor::new(url, args.timeout, &tls).map_err(UsageError)?)
        }
        (_, Some(cmd), None) => {
            Box::new(super::pipe::PipeProcessor::new(cmd.clone(), args.timeout))
        }
        (Some(cmd), None, None) => Box::new(ExecProcessor {
            command: cmd.clone(),
            timeout: args.timeout,
        }),
        (None, None, None) => {
            let usage = "route needs a processor: --exec CMD, --pipe CMD or --http URL";
            return Err(UsageError(usage.into()).into());
        }
    };
    let router = Router::new(router_cfg, processor, sink, rx.clone()).with_abort(abort_rx);
    let metrics = std::sync::Arc::new(RouterMetrics::default());
    let server = match &args.metrics {
        Some(addr) => {
            let listener = super::serve::bind(addr).await?;
            let m = metrics.clone();
            super::say(format!(
                "metrics on http://{addr}/metrics (and /healthz, /readyz)"
            ));
            Some(tokio::spawn(super::serve::serve(listener, move |path| {
                let m = m.clone();
                async move { answer(&m, &path) }
            })))
        }
        None => None,
    };
    super::say(format!(
        "routing {:?} (group '{}') to {}; Ctrl-C stops",
        args.sources,
        args.group,
        router.sink().describe()
    ));
    let concurrency = args.concurrency as usize;
    let stats = route::run(&cfg, &args.sources, &router, rx, concurrency, metrics).await?;
    if let Some(s) = server {
        s.abort();
    }
    super::print_line(serde_json::to_string(&stats)?)?;
    Ok(())
}

/// What the metrics server answers on `path`.
fn answer(m: &RouterMetrics, path: &str) -> super::serve::Answer {
    match path {
        "/metrics" => (200, super::serve::PROMETHEUS, m.render()),
        "/healthz" => (200, "text/plain", "ok\n".into()),
        "/readyz" if m.ready() => (200, "text/plain", "ready\n".into()),
        "/readyz" => (
            503,
            "text/plain",
            "not ready: no source partition assigned, or every broker is down\n".into(),
        ),
        other => super::serve::not_found(other),
    }
}

/// SIGINT and SIGTERM, listened for from the start so that none is missed.
struct Signals(tokio::signal::unix::Signal, tokio::signal::unix::Signal);

impl Signals {
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals(
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    }

    /// The next SIGINT or SIGTERM.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.0.recv() => {}
            _ = self.1.recv() => {}
        }
    }
}

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

#[async_trait]
impl Processor for ExecProcessor {
    async fn process(&self, msg: &Incoming, attempt: u32) -> Result<(), ProcessError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("MORGUE_TOPIC", &msg.topic)
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
        let fail =
            |class: String, message: String, stack: Option<String>, retryable| ProcessError {
                class,
                message,
                stack_trace: stack,
                retryable,
            };
        // Its own process group: a terminal's Ctrl-C reaches morgue, not the command,
        // and a timeout or an abort kills the command with everything it started.
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            fail(
                "exec: spawn".into(),
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
            let _ = tokio::join!(feed, out);
            (status, err.await.unwrap_or_default())
        };
        let (status, err) = tokio::time::timeout(self.timeout, run).await.map_err(|_| {
            fail(
                "exec: timeout".into(),
                format!("'{}' ran longer than {:?}", self.command, self.timeout),
                None,
                true,
            )
        })?;
        let status = status.map_err(|e| fail("exec: wait".into(), e.to_string(), None, true))?;
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
        Err(fail(
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

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: killpg only sends a signal; a group that is gone gives ESRCH.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
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
    fn one_processor_of_exec_pipe_and_http_is_required() {
        use clap::Parser as _;
        let parse = |extra: &[&str]| {
            let args = [&["morgue", "route", "--source", "trades"][..], extra].concat();
            crate::cli::Cli::try_parse_from(args)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        for one in [
            ["--exec", "cat"],
            ["--pipe", "./worker"],
            ["--http", "http://127.0.0.1:8080/"],
        ] {
            assert_eq!(parse(&one), Ok(()), "{one:?}");
        }
        assert!(parse(&[]).is_err(), "none");
        let both = parse(&["--exec", "cat", "--http", "http://127.0.0.1:8080/"]).unwrap_err();
        assert!(both.contains("cannot be used with"), "{both}");
        let args = |extra: &[&str]| {
            let all = [&["morgue", "route", "--source", "trades"][..], extra].concat();
            match crate::cli::Cli::try_parse_from(all).map(|c| c.command) {
                Ok(Some(crate::cli::Command::Route(a))) => a,
                other => panic!("{other:?}"),
            }
        };
        let e = check(&args(&["--exec", "cat", "--http-ca", "ca.pem"])).unwrap_err();
        assert!(e.to_string().contains("--http-ca needs --http URL"), "{e}");
        assert!(check(&args(&["--http", "https://x/", "--http-ca", "ca.pem"])).is_ok());
    }

    #[test]
    fn header_names_become_variables() {
        assert_eq!(
            header_var("kafka_dlt-original-topic"),
            "MORGUE_HEADER_KAFKA_DLT_ORIGINAL_TOPIC"
        );
    }
}
