//! `morgue route`: give any command retry and dead-letter semantics. With `--exec`,
//! each message from the source topics is piped to `sh -c CMD` (value on stdin, key
//! and headers in the environment); exit 0 is success, exit 65 (EX_DATAERR) a failure
//! that retrying cannot fix, anything else a failure worth retrying. With `--pipe`,
//! one process answers every message over JSON lines (see `pipe`); with `--http`,
//! each message is POSTed to an endpoint (see `http`). With `--retry-topics`, failures
//! wait in retry topics instead of in place (see `engine::route::tiers`).

use std::time::Duration;

use tokio::sync::watch;

use super::backend::Dlq;
use super::{BackendArgs, UsageError, values};
use crate::backends::kafka::KafkaConfig;
use crate::backends::kafka::route;
use crate::backends::kafka::sink::{KafkaSink, TopicWriter, ensure_topics};
use crate::backends::mongo::dlq::MongoDlq;
use crate::engine::EngineError;
use crate::engine::model::names::hostname;
use crate::engine::route::metrics::RouterMetrics;
use crate::engine::route::router::{Processor, RetryPolicy, Router, RouterConfig};
use crate::engine::route::sink::DeadLetterSink;
use crate::engine::route::tiers::RetryTiers;

/// Options of `morgue route`.
#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// Source topic to consume (repeatable).
    #[arg(long = "source", short = 's', required = true, value_name = "TOPIC", value_parser = values::topic)]
    pub sources: Vec<String>,
    /// Consumer group for the source topics.
    #[arg(long, short = 'g', default_value = "morgue-router", value_parser = values::name)]
    pub group: String,
    /// Static group membership (Kafka `group.instance.id`), unique per router in the
    /// group, e.g. `$HOSTNAME`: a router restarted under the same id (a crash, a
    /// deploy) gets its partitions back at once, without a rebalance of the group. A
    /// second router started with the same id fences the first, which stops with an
    /// error.
    #[arg(long, value_name = "ID", value_parser = values::name)]
    pub instance_id: Option<String>,
    /// Command run per message with `sh -c`; value on stdin, MORGUE_* variables set.
    #[arg(
        long,
        value_name = "CMD",
        value_parser = values::command,
        required_unless_present_any = ["pipe", "http"],
        conflicts_with_all = ["pipe", "http"]
    )]
    pub exec: Option<String>,
    /// One long-lived command for every message: a JSON line per message on its
    /// stdin, a JSON answer line per message on its stdout (`{"id", "status": "ok" |
    /// "retry" | "dead", "error"}`), restarted when it exits.
    #[arg(long, value_name = "CMD", conflicts_with = "http", value_parser = values::command)]
    pub pipe: Option<String>,
    /// POST each message to URL: the value is the body, the key, topic, partition,
    /// offset, attempt and headers go in `morgue-*` request headers. 2xx: processed;
    /// 408, 429, 5xx, timeouts, connection errors: retried (after `Retry-After`); other
    /// statuses: bad data, dead-lettered at once. Connections are kept alive; user info
    /// in the URL (`https://user:pass@host/path`) is sent as basic auth.
    #[arg(long, value_name = "URL", value_parser = values::url)]
    pub http: Option<String>,
    /// CA certificates (PEM) to trust for an https `--http` URL.
    #[arg(long, value_name = "PEM", requires = "http", value_parser = values::file)]
    pub http_ca: Option<std::path::PathBuf>,
    /// A client certificate (PEM) for an https `--http` URL that asks for one.
    #[arg(long, value_name = "PEM", requires_all = ["http", "http_key"], value_parser = values::file)]
    pub http_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "http_cert", value_parser = values::file)]
    pub http_key: Option<std::path::PathBuf>,
    /// Processing attempts before a message is dead-lettered.
    #[arg(long, default_value_t = 3, value_name = "N", conflicts_with = "retry_topics", value_parser = values::count)]
    pub max_attempts: u32,
    /// Non-blocking retries, one delay per retry topic (`30s,5m,1h`): a failing message
    /// goes to `<source>-retry-0`, then `-retry-1`, … (Spring `@RetryableTopic` names
    /// and headers; missing topics are created like the source) and is processed again
    /// once its delay has passed, then goes to the DLQ. Each topic makes one attempt.
    /// The source partition never waits for it, so a failing message no longer holds
    /// back later messages with its key.
    #[arg(long, value_name = "DELAYS", value_delimiter = ',', value_parser = values::wait)]
    pub retry_topics: Vec<Duration>,
    /// Wait before the first retry; doubles each time.
    #[arg(long, default_value = "500ms", value_parser = values::wait)]
    pub backoff: Duration,
    /// Longest wait between retries.
    #[arg(long, default_value = "30s", value_parser = values::wait)]
    pub max_backoff: Duration,
    /// Dead-letter messages older than this as `expired`, without processing them.
    #[arg(long, value_parser = values::timeout)]
    pub max_age: Option<Duration>,
    /// Messages in flight at once. Messages with the same key never overlap or
    /// reorder, and a partition's committed offset only moves past messages all done.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = values::concurrency)]
    pub concurrency: u32,
    /// Kill the command (`--exec`), give up on the answer and restart the process
    /// (`--pipe`), or give up on the request (`--http`) after this long; counts as a
    /// retryable failure.
    #[arg(long, default_value = "60s", value_parser = values::timeout)]
    pub timeout: Duration,
    /// Serve Prometheus metrics on ADDR (`127.0.0.1:9464`, `:9464`): `/metrics`,
    /// `/healthz` (the process lives), `/readyz` (connected and assigned).
    #[arg(long, value_name = "ADDR", value_parser = values::listen)]
    pub metrics: Option<String>,
    /// DLQ write attempts before the partition is paused.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = values::count)]
    pub dlq_attempts: u32,
    /// On SIGINT/SIGTERM, how long the running command may take to finish before its
    /// process group is killed and its message left uncommitted (a second signal: at
    /// once). With `--pipe`, the messages in flight get this long to be answered, then
    /// the process's stdin is closed and it gets this long to exit, then SIGTERM and
    /// this long again, then SIGKILL.
    #[arg(long, default_value = "10s", value_parser = values::wait)]
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
    // The stop: `tx` at the first signal (no new message), `abort_tx` after the grace
    // (in-flight work is dropped), `now_tx` at a second signal (abort, and a `--pipe`
    // process is killed at once instead of being given time to exit).
    let (tx, rx) = watch::channel(false);
    let (abort_tx, abort_rx) = watch::channel(false);
    let (now_tx, now_rx) = watch::channel(false);
    let grace = args.grace;
    tokio::spawn(async move {
        signals.recv().await;
        super::say(format!(
            "stopping: no new messages; the running command has {grace:?} to finish (signal again to stop now)"
        ));
        // A send fails only once the router dropped its receiver, i.e. it has already stopped.
        let _ = tx.send(true);
        tokio::select! {
            _ = tokio::time::sleep(grace) => {
                let _ = abort_tx.send(true);
                signals.recv().await;
            }
            _ = signals.recv() => {}
        }
        let _ = abort_tx.send(true);
        let _ = now_tx.send(true);
    });
    let router_cfg = RouterConfig {
        group: args.group.clone(),
        instance: args.instance_id.clone(),
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
    let mut pipe_stop = None;
    let processor: Box<dyn Processor> = match (&args.exec, &args.pipe, &args.http) {
        (_, _, Some(url)) => {
            let tls = crate::engine::http::TlsFiles {
                ca: args.http_ca.clone(),
                cert: args.http_cert.clone(),
                key: args.http_key.clone(),
            };
            Box::new(super::http::HttpProcessor::new(url, args.timeout, &tls).map_err(UsageError)?)
        }
        (_, Some(cmd), None) => {
            let pipe = super::pipe::PipeProcessor::new(cmd.clone(), args.timeout);
            pipe_stop = Some(pipe.stopper());
            Box::new(pipe)
        }
        (Some(cmd), None, None) => Box::new(super::exec::ExecProcessor {
            command: cmd.clone(),
            timeout: args.timeout,
        }),
        (None, None, None) => {
            let usage = "route needs a processor: --exec CMD, --pipe CMD or --http URL";
            return Err(UsageError(usage.into()).into());
        }
    };
    let tiers = RetryTiers {
        delays: args.retry_topics.clone(),
    };
    let mut sources = args.sources.clone();
    let mut router = Router::new(router_cfg, processor, sink, rx.clone()).with_abort(abort_rx);
    if !tiers.is_empty() {
        sources.extend(retry_topics(&cfg, &args.sources, &tiers).await?);
        let out = Box::new(TopicWriter::new(cfg.clone())?);
        router = router.with_retry_topics(tiers, args.sources.clone(), out);
    }
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
    let stats = route::run(&cfg, &sources, &router, rx, concurrency, metrics).await;
    // Nothing is in flight any more: the `--pipe` process may now flush and exit.
    if let Some(stop) = pipe_stop {
        stop.stop(grace, now_rx).await;
    }
    let stats = stats?;
    if let Some(s) = server {
        s.abort();
    }
    super::print_line(serde_json::to_string(&stats)?)?;
    Ok(())
}

/// The retry topics of every source, created (like their source) where missing.
async fn retry_topics(
    cfg: &KafkaConfig,
    sources: &[String],
    tiers: &RetryTiers,
) -> anyhow::Result<Vec<String>> {
    let mut all = Vec::new();
    for source in sources {
        let (c, s) = (cfg.clone(), source.clone());
        let parts =
            tokio::task::spawn_blocking(move || c.partitions(&c.browse_consumer()?, &s)).await??;
        let topics = tiers.topics_of(source);
        let created = ensure_topics(cfg, &topics, parts.len() as i32).await?;
        if !created.is_empty() {
            super::say(format!(
                "created retry topics {created:?} ({} partitions, like '{source}')",
                parts.len()
            ));
        }
        all.extend(topics);
    }
    Ok(all)
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // --http-ca must name a file that exists: any will do for these checks.
        let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
        let e = check(&args(&["--exec", "cat", "--http-ca", ca])).unwrap_err();
        assert!(e.to_string().contains("--http-ca needs --http URL"), "{e}");
        assert!(check(&args(&["--http", "https://x/", "--http-ca", ca])).is_ok());
    }

    #[test]
    fn the_systemd_units_run_command_lines_that_morgue_accepts() {
        use clap::Parser as _;
        let unit = include_str!("../../assets/systemd/morgue-router@.service");
        let example = (unit.lines())
            .find_map(|l| l.strip_prefix("#   MORGUE_ROUTE_ARGS="))
            .expect("an example MORGUE_ROUTE_ARGS");
        let exec = (unit.lines())
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        let line = (exec.replace("%i", "orders").replace("%H", "jump-1"))
            .replace("$MORGUE_ROUTE_ARGS", example);
        let words = line.split_whitespace().map(|w| w.trim_matches('"'));
        match crate::cli::Cli::try_parse_from(words).map(|c| c.command) {
            Ok(Some(crate::cli::Command::Route(a))) => {
                assert_eq!(a.instance_id.as_deref(), Some("jump-1-orders"));
                assert_eq!((a.sources, a.concurrency), (vec!["orders".to_string()], 16));
            }
            other => panic!("{line}: {other:?}"),
        }
        let unit = include_str!("../../assets/systemd/morgue-exporter.service");
        let exec = (unit.lines())
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        let parsed = crate::cli::Cli::try_parse_from(exec.split_whitespace());
        assert!(
            matches!(
                parsed.as_ref().map(|c| &c.command),
                Ok(Some(crate::cli::Command::Exporter(_)))
            ),
            "{exec}: {:?}",
            parsed.err()
        );
    }
}
