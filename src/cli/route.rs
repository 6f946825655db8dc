//! `morgue route`: give any command retry and dead-letter semantics. Each message
//! from the source topics is piped to `sh -c CMD` (value on stdin, key and headers in
//! the environment); exit 0 is success, exit 65 (EX_DATAERR) a failure that retrying
//! cannot fix, anything else a failure worth retrying.

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
use crate::engine::duration::parse_duration;
use crate::engine::router::{Incoming, ProcessError, Processor, RetryPolicy, Router, RouterConfig};
use crate::engine::sink::{DeadLetterSink, hostname};

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
    #[arg(long, value_name = "CMD")]
    pub exec: String,
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
    /// Kill the command after this long (counts as a retryable failure).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// DLQ write attempts before the partition is paused.
    #[arg(long, default_value_t = 5)]
    pub dlq_attempts: u32,
}

/// The DLQ topic `route` writes to when `--topic` is not given.
pub const DEFAULT_DLQ_TOPIC: &str = "deadletter-topic";

/// Runs the router until SIGINT/SIGTERM, then prints its counts as one JSON line.
pub async fn run(backend: &BackendArgs, args: &RouteArgs) -> anyhow::Result<()> {
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
        Dlq::Mongo { cfg, map, kafka } => {
            let kafka = kafka.ok_or_else(|| {
                UsageError("route needs --kafka BROKERS: the cluster of the source topics".into())
            })?;
            (kafka, Box::new(MongoDlq::open(cfg, *map).await?))
        }
    };
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = tx.send(true);
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
    let processor = ExecProcessor {
        command: args.exec.clone(),
        timeout: args.timeout,
    };
    let router = Router::new(router_cfg, processor, sink, rx.clone());
    eprintln!(
        "morgue: routing {:?} (group '{}') to {}; Ctrl-C stops",
        args.sources,
        args.group,
        router.sink().describe()
    );
    let stats = route::run(&cfg, &args.sources, &router, rx).await?;
    println!("{}", serde_json::to_string(&stats)?);
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
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
            .stdout(Stdio::null())
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
        let mut child = cmd.spawn().map_err(|e| {
            fail(
                "exec: spawn".into(),
                format!("cannot run '{}': {e}", self.command),
                None,
                true,
            )
        })?;
        let mut stdin = child.stdin.take();
        let value = msg.value.clone().unwrap_or_default();
        let mut stderr = child.stderr.take();
        let io = async {
            if let Some(s) = stdin.as_mut() {
                // A command that exits without reading stdin is fine: ignore EPIPE.
                let _ = s.write_all(&value).await;
            }
            drop(stdin);
            let mut err = Vec::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.take(64 * 1024).read_to_end(&mut err).await;
            }
            let status = child.wait().await;
            (status, err)
        };
        let (status, err) = tokio::time::timeout(self.timeout, io).await.map_err(|_| {
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
        let named = last.split_once(": ").map(|(c, _)| c.trim()).filter(|c| {
            !c.is_empty()
                && c.len() <= 100
                && c.chars()
                    .all(|ch| ch.is_alphanumeric() || "._:$<>-".contains(ch))
        });
        let class = match (named, code) {
            (Some(c), _) => c.to_string(),
            (None, Some(c)) => format!("exec: exit {c}"),
            (None, None) => "exec: killed by signal".to_string(),
        };
        let message = if last.is_empty() {
            class.clone()
        } else {
            last.chars().take(500).collect()
        };
        let stack = (!text.trim().is_empty()).then(|| tail(&text, 4096));
        Err(fail(
            class,
            message,
            stack,
            code != Some(EXIT_NOT_RETRYABLE),
        ))
    }
}

fn tail(s: &str, max: usize) -> String {
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
        assert_eq!(e.message, "json.decoder.JSONDecodeError: Expecting value");
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

    #[test]
    fn header_names_become_variables() {
        assert_eq!(
            header_var("kafka_dlt-original-topic"),
            "MORGUE_HEADER_KAFKA_DLT_ORIGINAL_TOPIC"
        );
    }
}
