//! The command line: argument parsing, the headless commands (JSON lines on stdout,
//! one-line errors on stderr), and exit codes (0 ok, 1 error, 2 usage, 3 a replay was
//! sent but not recorded: `sent-unconfirmed`, which the next run confirms).

pub mod backend;
mod bundle;
mod claim;
mod config_cmd;
mod dlqs;
mod exec;
mod exporter;
mod exporter_groups;
mod http;
mod info;
mod list;
mod pipe;
pub mod profile;
mod profile_check;
mod replay;
mod route;
pub mod security;
mod serve;
mod shell;
mod transform;
mod usage;
mod values;

use std::sync::Arc;

use crate::tui::settings::Settings;
use std::process::ExitCode;

use clap::{FromArgMatches, Parser, Subcommand, ValueEnum};

pub use backend::BackendArgs;

/// morgue: stream, inspect, fix and replay dead letters from Kafka and MongoDB DLQs.
#[derive(Debug, Parser)]
#[command(
    name = "morgue",
    version,
    about,
    long_about = None,
    after_help = "Without a COMMAND, morgue opens the terminal UI on the DLQ (press ? there for the keys); given a cluster without a topic, on the overview of its DLQs."
)]
pub struct Cli {
    /// Where the DLQ is.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// How the headless commands log to stderr: `text` (one line each) or `json` (one
    /// JSON object per line, for a log shipper).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "MORGUE_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do; without a command, the terminal UI opens on the DLQ.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How logs are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// How the headless commands print letters.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Output {
    /// One JSON object per line: a letter, a replay outcome or a DLQ (schemas in docs/commands.md).
    #[default]
    Json,
    /// An aligned table for people.
    Table,
}

/// The headless commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the DLQ's letters, oldest first (per partition for Kafka, by error_time for
    /// MongoDB), or follow it live.
    #[command(after_help = "Examples:
  morgue list --kafka broker:9092 --topic orders.DLT -o table
  morgue list --profile orders-prod -f 'error:Timeout since:2h' | jq .key
  morgue list --kafka broker:9092 --topic orders.DLT --from end --follow
  morgue list --mongo mongodb://db:27017 --db trading -f '$.price<0' -n 20
  morgue list --profile trades --schema-registry https://sr:8081 --schema-registry-ca ca.pem -f '$.qty>100'
  morgue list --kafka broker:9092 --topic trades.DLT --schemas ./schemas --schema-map 'trades*=Trade.proto:acme.Trade'")]
    List(list::ListArgs),
    /// Print how many letters the DLQ holds (per partition) and how many have a state.
    /// A Kafka count from offsets is an upper bound (`"exact": false`).
    #[command(after_help = "Examples:
  morgue info --kafka broker:9092 --topic orders.DLT
  morgue info --kafka broker:9092 --topic orders.DLT --exact")]
    Info {
        /// Count by reading the topic: exact on transactional and compacted DLQs.
        #[arg(long)]
        exact: bool,
    },
    /// Print every DLQ topic of the cluster (and DLQ collection of a MongoDB database) at a
    /// glance: letters, arrivals in the last hour and day, oldest letter, time before
    /// retention deletes it, states.
    #[command(after_help = "Examples:
  morgue dlqs --kafka broker:9092 -o table
  morgue dlqs --kafka broker:9092 --pattern 'payments.*.DLT'
  morgue dlqs --mongo mongodb://db:27017 --db trading")]
    Dlqs(dlqs::DlqsArgs),
    /// Serve the figures of `dlqs` for every DLQ as Prometheus gauges (letters, arrivals,
    /// oldest age, time before retention deletes it, states), computed every --interval
    /// without reading payloads; /healthz and /readyz beside /metrics.
    #[command(after_help = "Examples:
  morgue exporter --kafka broker:9092 --listen :9465
  morgue exporter --profile orders-prod --interval 1m
  Alert rules to start from: assets/alerts.yml")]
    Exporter(exporter::ExporterArgs),
    /// Print one letter, with its ledger state and replay history.
    #[command(after_help = "Examples:
  morgue show --kafka broker:9092 --topic orders.DLT 2:1734
  morgue show --profile orders-prod 2:1734 --group orders-service")]
    Show {
        /// Letter id (`PARTITION:OFFSET`, or a MongoDB `_id`).
        #[arg(value_parser = values::letter_id)]
        id: String,
    },
    /// Send letters back to their source topic (or --to), exactly once even with other
    /// operators at work, recorded in the ledger and the audit log (exit 3: sent but not
    /// recorded; the next replay confirms it).
    #[command(after_help = "Examples:
  morgue replay --kafka broker:9092 --topic orders.DLT 2:1734 --dry-run
  morgue replay --kafka broker:9092 --topic orders.DLT -f 'error:Timeout' --rate 50 --yes
  morgue replay ... -f 'key:K*' --yes | jq -r 'select(.status==\"skipped\") | [.id, .reason, .by] | @tsv'
  morgue replay --mongo mongodb://db:27017 --db trading --kafka broker:9092 65f0c0ffee0000000000abcd")]
    Replay(replay::ReplayArgs),
    /// Mark letters handled without replaying them.
    #[command(after_help = "Examples:
  morgue resolve --kafka broker:9092 --topic orders.DLT 2:1734 --yes
  morgue resolve --kafka broker:9092 --topic orders.DLT -f 'topic:legacy-*' --yes")]
    Resolve(replay::ResolveArgs),
    /// Claim MongoDB letters as a processor would (`processed: true`), so none picks them up.
    #[command(after_help = "Examples:
  morgue claim --mongo mongodb://db:27017 --db trading 65f0c0ffee0000000000abcd --yes")]
    Claim(replay::ResolveArgs),
    /// Release claimed MongoDB letters so a processor picks them up again.
    #[command(after_help = "Examples:
  morgue release --mongo mongodb://db:27017 --db trading 65f0c0ffee0000000000abcd --yes")]
    Release(replay::ResolveArgs),
    /// Consume source topics and hand each message to a processor (a command per
    /// message, one long-lived process, or an HTTP endpoint), with retries; what keeps
    /// failing goes to the DLQ (--topic, default `deadletter-topic`, or --mongo).
    #[command(after_help = "Examples:
  morgue route --kafka broker:9092 --source trades --group trades-app --exec ./process.sh
  morgue route --kafka broker:9092 --source trades --pipe ./worker --concurrency 16 --metrics :9464
  morgue route --kafka broker:9092 --source trades --http https://svc/handle --http-ca ca.pem
  morgue route --kafka broker:9092 --source trades --mongo mongodb://db:27017 --db trading --exec ./process.sh")]
    Route(Box<route::RouteArgs>),
    /// Write letters to a file: a manifest line (source DLQ, time, who, filter, the
    /// letters' ledger history), then one letter per line, bytes exact.
    #[command(after_help = "Examples:
  morgue export --kafka broker:9092 --topic orders.DLT -f 'error:Timeout since:2h' -o incident-4711.jsonl
  morgue export --profile orders-prod -o - | gzip > letters.jsonl.gz")]
    Export(bundle::ExportArgs),
    /// Write an exported file's letters into a DLQ (asks first), keys, values and headers
    /// as exported; letters already imported there are not written again.
    #[command(after_help = "Examples:
  morgue import incident-4711.jsonl --kafka staging:9092 --topic orders.DLT --yes
  morgue import incident-4711.jsonl --mongo mongodb://staging:27017 --db trading")]
    Import(bundle::ImportArgs),
    /// Open the terminal UI on an exported file, read-only (filter, triage, detail, copy).
    #[command(after_help = "Examples:
  morgue open incident-4711.jsonl")]
    Open {
        /// The file written by `morgue export`.
        file: std::path::PathBuf,
    },
    /// Check, show or start the config file (`~/.config/morgue/config.toml`, `--config`).
    #[command(after_help = "Examples:
  morgue config check
  morgue config show --config ./team.toml
  morgue config example > ~/.config/morgue/config.toml")]
    Config {
        /// What to do with it.
        #[command(subcommand)]
        cmd: config_cmd::ConfigCommand,
    },
    /// List the config file's profiles: name, DLQ, read-only / production / redacted.
    #[command(after_help = "Examples:
  morgue profiles")]
    Profiles,
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:
  morgue completions bash > /etc/bash_completion.d/morgue
  morgue completions zsh > \"${fpath[1]}/_morgue\"
  morgue completions fish > ~/.config/fish/completions/morgue.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "Examples:
  morgue man > /usr/local/share/man/man1/morgue.1 && man morgue")]
    Man,
}

/// A mistake in how morgue was called (exit code 2), as opposed to a failure (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Says on stderr what a stream reports besides letters: a notice, a server that
/// stopped answering, its return (the catch-up and letters say nothing).
pub(crate) fn tell(ev: &crate::engine::read::source::SourceEvent) {
    use crate::engine::read::source::SourceEvent;
    match ev {
        SourceEvent::Notice(n) => eprintln!("morgue: {n}"),
        SourceEvent::Silent { server, since_ms } => {
            let secs = (chrono::Utc::now().timestamp_millis() - since_ms) / 1000;
            eprintln!("morgue: no answer from {server} for {secs} s; still waiting");
        }
        SourceEvent::Answering { server } => eprintln!("morgue: {server} answers again"),
        SourceEvent::Letters(_) | SourceEvent::CaughtUp { .. } => {}
    }
}

/// `--filter QUERY` read by the filter language (a query that does not parse is a
/// usage error quoting it, with the column); `None` when the flag was not given.
pub(crate) fn filter_arg(
    query: Option<&str>,
    now_ms: i64,
) -> Result<Option<crate::engine::read::filter::Filter>, UsageError> {
    query
        .map(|q| {
            crate::engine::read::filter::Filter::parse(q, now_ms)
                .map_err(|e| UsageError(format!("--filter: {e}")))
        })
        .transpose()
}

/// Stdout was closed by its reader (`morgue list | head`): the command ends quietly
/// with status 0, as `grep` does.
#[derive(Debug, thiserror::Error)]
#[error("stdout closed")]
pub struct StdoutClosed;

/// The error for a failed write to stdout: [`StdoutClosed`] for a closed pipe.
pub(crate) fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed.into()
    } else {
        anyhow::Error::new(e).context("writing to stdout")
    }
}

/// Prints one line on stdout (a closed pipe becomes [`StdoutClosed`]).
pub(crate) fn print_line(line: impl std::fmt::Display) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// Replays that reached their target but could not be recorded (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unconfirmed(pub String);

/// Parses the command line, runs the command, prints any error on one line, and
/// returns the exit code.
pub fn main() -> ExitCode {
    // A mistake in the command line is one line (clap's usage block is not printed).
    let cli = match shell::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) if usage::is_help(&e) => e.exit(),
        Err(e) => {
            eprintln!("morgue: {}", usage::one_line(&e));
            return ExitCode::from(2);
        }
    };
    init_logging(cli.command.is_none(), cli.log_format);
    // `route --pipe`: the loop, the pipe reader and the processors' futures wake each
    // other once per message; on one thread that costs a function call, across threads
    // a futex (measured on 2 cores: 47-50k against 32-35k messages/s). `--exec` (a
    // fork per message) and `--http` (hyper connections driven by their own tasks)
    // measured faster on the multi-thread runtime.
    let one_thread = matches!(&cli.command, Some(Command::Route(a)) if a.pipe.is_some());
    let runtime = match if one_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    } {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let result = run(cli).await;
        // The driver's clean-up tasks finish before the runtime stops (see the module).
        crate::backends::mongo::clients::close_all().await;
        result
    });
    // Do not wait for librdkafka threads stuck on a broker that went away.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Warnings and errors go to stderr, one line each; librdkafka's own log (a broker
/// that cannot be reached is retried and logged many times) goes to [`log_path`], as
/// does everything the TUI logs. `MORGUE_LOG` (e.g. `debug`, `morgue=trace`) sets
/// the level and, for the headless commands, sends everything at that level to stderr
/// as well as to the file.
/// The log format chosen, for [`say`].
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// Says `what` on stderr as a long-running command's note (`morgue: …`), or as one
/// JSON object (`{"timestamp", "level": "INFO", "fields": {"message"}}`, the shape of
/// the JSON log lines) under `--log-format json`.
pub fn say(what: impl std::fmt::Display) {
    match LOG_FORMAT.get() {
        Some(LogFormat::Json) => {
            let line = serde_json::json!({
                "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "level": "INFO",
                "fields": {"message": what.to_string()},
            });
            eprintln!("{line}");
        }
        _ => eprintln!("morgue: {what}"),
    }
}

fn init_logging(tui: bool, format: LogFormat) {
    // Already set (logging initialised twice, as in tests): the first format stays.
    let _ = LOG_FORMAT.set(format);
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let chosen = std::env::var("MORGUE_LOG").ok();
    let level = || EnvFilter::new(chosen.as_deref().unwrap_or("warn"));
    if tui {
        // The TUI owns the screen: its logs go to the file, never to the terminal.
        // try_init fails only if a global subscriber is already set (tests): that one keeps logging.
        let _ = tracing_subscriber::registry()
            .with(file_layer().map(|l| l.with_filter(level())))
            .try_init();
        return;
    }
    let text = (format == LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .with_timer(tracing_subscriber::fmt::time::uptime())
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_current_span(false)
    });
    let (to_stderr, to_file) = match chosen {
        // The level chosen, on stderr and in the log file alike.
        Some(_) => (level(), file_layer().map(|l| l.with_filter(level()))),
        None => (
            EnvFilter::new("warn,librdkafka=off"),
            file_layer().map(|l| l.with_filter(EnvFilter::new("off,librdkafka=warn"))),
        ),
    };
    let stderr = text.map(|l| l.boxed()).or(json.map(|l| l.boxed()));
    // try_init fails only if a global subscriber is already set (tests): that one keeps logging.
    let _ = tracing_subscriber::registry()
        .with(stderr.with_filter(to_stderr))
        .with(to_file)
        .try_init();
}

/// A layer writing to the log file (created with its directory); None when it cannot be opened.
fn file_layer<S>() -> Option<impl tracing_subscriber::Layer<S>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let path = log_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ok()?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .ok()?;
    Some(
        tracing_subscriber::fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .with_timer(tracing_subscriber::fmt::time::SystemTime),
    )
}

/// Where the TUI logs: `$MORGUE_LOG_FILE`, else `morgue.log` next to the audit log.
pub fn log_path() -> std::path::PathBuf {
    std::env::var_os("MORGUE_LOG_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            crate::engine::write::audit::AuditLog::default_path().with_file_name("morgue.log")
        })
}

fn fail(e: &anyhow::Error) -> ExitCode {
    // One line: each cause once (errors that print their source are not repeated).
    let mut line = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    eprintln!("morgue: {line}");
    if e.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(2)
    } else if e.downcast_ref::<Unconfirmed>().is_some() {
        ExitCode::from(3)
    } else {
        ExitCode::from(1)
    }
}

/// The TUI's refusal without a terminal, pointing to the headless commands.
fn needs_terminal() -> Result<(), UsageError> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(UsageError(
            "the terminal UI needs a terminal on stdin and stdout; in scripts and pipes use `morgue list` (JSON lines), `morgue dlqs` or another command (see --help)".into(),
        ));
    }
    Ok(())
}

/// The TUI's keys, colours and profile list from the config file.
fn ui_settings(backend: &BackendArgs) -> Result<Arc<Settings>, UsageError> {
    let (keymap, palette) = config_cmd::ui(backend)?;
    Ok(Arc::new(Settings {
        keymap,
        palette,
        profiles: config_cmd::rows(backend),
    }))
}

/// The TUI on the DLQ (or the overview) the arguments name, then on each profile
/// chosen with `P` (each with its own decoders: the schemas of its own cluster), until
/// the user quits.
async fn tui(mut backend: BackendArgs) -> anyhow::Result<()> {
    let settings = ui_settings(&backend)?;
    // The arguments before the last switch, to go back to when a profile does not open.
    let mut previous: Option<BackendArgs> = None;
    let mut notice = None;
    loop {
        let next = match session(&backend, notice.take(), &settings).await {
            Ok(next) => next,
            Err(e) => {
                let Some(back) = previous.take() else {
                    return Err(e);
                };
                let name = backend.profile.clone().unwrap_or_default();
                notice = Some(format!("cannot open profile '{name}': {e}"));
                backend = back;
                continue;
            }
        };
        let Some(profile) = next else {
            return Ok(());
        };
        previous = Some(backend.clone());
        backend = backend.for_profile(&profile);
    }
}

/// One TUI session on what `backend` names: the profile chosen with `P`, if any.
async fn session(
    backend: &BackendArgs,
    notice: Option<String>,
    settings: &Arc<Settings>,
) -> anyhow::Result<Option<String>> {
    let target = match backend.wants_overview()? {
        true => None,
        false => Some(backend.target()?),
    };
    needs_terminal()?;
    match target {
        Some(t) => crate::tui::runner::run(t, notice, settings.clone()).await,
        None => {
            let clusters = backend.clusters()?;
            let b = backend.clone();
            crate::tui::overview::run(clusters, settings.clone(), move |d| {
                let mut b = b.clone();
                if d.kind == "mongo" {
                    b.collection = Some(d.name.clone());
                } else {
                    b.topic = Some(d.name.clone());
                    b.kafka_only = true;
                }
                Ok(b.target()?)
            })
            .await
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Schema flags that do not parse are refused before anything else.
    cli.backend.schema_source()?;
    let Some(command) = cli.command else {
        return tui(cli.backend).await;
    };
    match command {
        Command::Completions { shell } => shell::completions(shell),
        Command::Export(args) => bundle::export(&cli.backend, &args).await,
        Command::Import(args) => bundle::import(&cli.backend, &args).await,
        Command::Open { file } => {
            // `open -` reads the file from stdin; the keys then come from /dev/tty.
            let piped = file == std::path::Path::new("-");
            let target = bundle::open_target(&cli.backend, file)?;
            let settings = ui_settings(&cli.backend)?;
            if !piped {
                needs_terminal()?;
            }
            match crate::tui::runner::run(target, None, settings).await? {
                Some(profile) => tui(cli.backend.for_profile(&profile)).await,
                None => Ok(()),
            }
        }
        Command::Man => shell::man(),
        Command::Config { cmd } => config_cmd::config(&cli.backend, &cmd),
        Command::Profiles => config_cmd::profiles(&cli.backend),
        Command::List(args) => list::run(&cli.backend, &args).await,
        Command::Info { exact } => info::run(&cli.backend, exact).await,
        Command::Dlqs(args) => dlqs::run(&cli.backend, &args).await,
        Command::Exporter(args) => exporter::run(&cli.backend, &args).await,
        Command::Show { id } => replay::show(&cli.backend, &id).await,
        Command::Replay(args) => replay::replay(&cli.backend, &args).await,
        Command::Resolve(args) => replay::resolve(&cli.backend, &args).await,
        Command::Claim(args) => claim::run(&cli.backend, &args, true).await,
        Command::Release(args) => claim::run(&cli.backend, &args, false).await,
        Command::Route(args) => route::run(&cli.backend, &args).await,
    }
}
