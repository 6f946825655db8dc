//! The command line: argument parsing, the headless commands (JSON lines on stdout,
//! one-line errors on stderr), and exit codes (0 ok, 1 error, 2 usage, 3 a replay was
//! sent but not recorded: `sent-unconfirmed`, which the next run confirms).

pub mod backend;
mod info;
mod list;
mod replay;
mod route;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use backend::BackendArgs;

/// morgue: stream, inspect, fix and replay dead letters from Kafka and MongoDB DLQs.
#[derive(Debug, Parser)]
#[command(
    name = "morgue",
    version,
    about,
    long_about = None,
    after_help = "Without a COMMAND, morgue opens the terminal UI on the DLQ (press ? there for the keys)."
)]
pub struct Cli {
    /// Where the DLQ is.
    #[command(flatten)]
    pub backend: BackendArgs,
    /// What to do; without a command, the terminal UI opens on the DLQ.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How the headless commands print letters.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Output {
    /// One JSON object per letter per line (schema in the README).
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
    List(list::ListArgs),
    /// Print how many letters the DLQ holds (per partition) and how many have a state.
    Info,
    /// Print one letter, with its ledger state and replay history.
    Show {
        /// Letter id (`PARTITION:OFFSET`, or a MongoDB `_id`).
        id: String,
    },
    /// Send letters back to their source topic (or --to), exactly once even with other
    /// operators at work, recorded in the ledger and the audit log (exit 3: sent but not
    /// recorded; the next replay confirms it).
    Replay(replay::ReplayArgs),
    /// Mark letters handled without replaying them.
    Resolve(replay::ResolveArgs),
    /// Claim MongoDB letters as a processor would (`processed: true`), so none picks them up.
    Claim(replay::ResolveArgs),
    /// Release claimed MongoDB letters so a processor picks them up again.
    Release(replay::ResolveArgs),
    /// Consume source topics and run a command per message, with retries; what keeps
    /// failing goes to the DLQ (--topic, default `deadletter-topic`, or --mongo).
    Route(route::RouteArgs),
}

/// A mistake in how morgue was called (exit code 2), as opposed to a failure (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Replays that reached their target but could not be recorded (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unconfirmed(pub String);

/// Parses the command line, runs the command, prints any error on one line, and
/// returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.command.is_none());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for librdkafka threads stuck on a broker that went away.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Warnings and errors go to stderr, one line each (the TUI's to [`log_path`]);
/// `MORGUE_LOG` (e.g. `debug`, `morgue=trace`) changes the level.
fn init_logging(tui: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MORGUE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_timer(tracing_subscriber::fmt::time::uptime());
    if !tui {
        let _ = builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
        return;
    }
    // The TUI owns the screen: its logs go to a file, never to the terminal.
    let path = log_path();
    let file = path
        .parent()
        .map(std::fs::create_dir_all)
        .transpose()
        .and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        });
    match file {
        Ok(f) => {
            let _ = builder
                .with_writer(std::sync::Mutex::new(f))
                .with_ansi(false)
                .try_init();
        }
        Err(_) => {
            let _ = builder.with_writer(std::io::sink).try_init();
        }
    }
}

/// Where the TUI logs: `$MORGUE_LOG_FILE`, else `morgue.log` next to the audit log.
pub fn log_path() -> std::path::PathBuf {
    std::env::var_os("MORGUE_LOG_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            crate::engine::audit::AuditLog::default_path().with_file_name("morgue.log")
        })
}

fn fail(e: &anyhow::Error) -> ExitCode {
    let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
    eprintln!("morgue: {}", chain.join(": "));
    if e.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(2)
    } else if e.downcast_ref::<Unconfirmed>().is_some() {
        ExitCode::from(3)
    } else {
        ExitCode::from(1)
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let Some(command) = cli.command else {
        return crate::tui::runner::run(cli.backend.target()?).await;
    };
    match command {
        Command::List(args) => list::run(&cli.backend, &args).await,
        Command::Info => info::run(&cli.backend).await,
        Command::Show { id } => replay::show(&cli.backend, &id).await,
        Command::Replay(args) => replay::replay(&cli.backend, &args).await,
        Command::Resolve(args) => replay::resolve(&cli.backend, &args).await,
        Command::Claim(args) => replay::claim(&cli.backend, &args, true).await,
        Command::Release(args) => replay::claim(&cli.backend, &args, false).await,
        Command::Route(args) => route::run(&cli.backend, &args).await,
    }
}
