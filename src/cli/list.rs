//! `morgue list`: the DLQ's letters (from a position, filtered, optionally followed
//! live), streamed to stdout as they are read, with their ledger state and, for
//! replayed letters, what became of the replay (see `engine::read::outcome`).

use std::io::Write;

use tokio::sync::mpsc;

use super::{BackendArgs, Output, UsageError, stdout_error};
use crate::engine::DeadLetter;
use crate::engine::export::json::{LetterJson, rfc3339};
use crate::engine::read::outcome::{self, Watch};
use crate::engine::read::source::{SourceEvent, StartAt};

/// Options of `morgue list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Output,
    /// Where to start: beginning, end, an offset (each partition), an RFC 3339 time or an age like 2h.
    #[arg(long, default_value = "beginning", value_name = "POS")]
    pub from: String,
    /// Keep printing new letters as they arrive (Ctrl-C stops), like `tail -f`.
    #[arg(long)]
    pub follow: bool,
    /// Only letters matching this query (see the README's filter syntax).
    #[arg(long, short = 'f', value_name = "QUERY", allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// Stop after this many letters.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<u64>,
}

/// Streams the DLQ from `--from` and prints each matching letter as it is read.
pub async fn run(backend: &BackendArgs, args: &ListArgs) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let from = StartAt::parse(&args.from, now).map_err(|e| UsageError(format!("--from: {e}")))?;
    let filter = super::filter_arg(args.filter.as_deref(), now)?;
    let target = backend.target()?;
    let source = target.dlq.open().await?.source;
    // Replayed letters show what became of their replay: a read of the DLQ's tail
    // since the earliest replay (nothing when none was replayed or only new letters are asked).
    let watch = match from {
        StartAt::End => Watch::new(target.confirm_after_ms),
        _ => outcome::prepare(source.as_ref(), target.confirm_after_ms).await?,
    };
    let (tx, mut rx) = mpsc::channel(crate::engine::read::source::AHEAD);
    let follow = args.follow;
    let reader = tokio::spawn(async move { source.stream(from, follow, tx).await });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    if let Output::Table = args.output {
        writeln!(out, "{}", table_header()).map_err(stdout_error)?;
    }
    let mut printed = 0u64;
    'read: while let Some(event) = rx.recv().await {
        let batch = match event {
            SourceEvent::Letters(batch) => batch,
            SourceEvent::Notice(n) => {
                eprintln!("morgue: {n}");
                continue;
            }
            SourceEvent::CaughtUp { .. } => continue,
        };
        crate::engine::decoders::prepare_letters(&batch).await;
        for mut l in batch {
            watch.settle(&mut l, now);
            let l = &l;
            if filter.as_ref().is_some_and(|f| !f.matches(l)) {
                continue;
            }
            print_letter(&mut out, l, args.output).map_err(stdout_error)?;
            printed += 1;
            if args.limit.is_some_and(|n| printed >= n) {
                break 'read;
            }
        }
        if follow {
            out.flush().map_err(stdout_error)?;
        }
    }
    out.flush().map_err(stdout_error)?;
    drop(rx);
    reader.await??;
    Ok(())
}

fn print_letter(out: &mut impl Write, l: &DeadLetter, output: Output) -> std::io::Result<()> {
    match output {
        Output::Json => {
            serde_json::to_writer(&mut *out, &LetterJson::of(l))?;
            writeln!(out)
        }
        Output::Table => writeln!(out, "{}", table_row(l)),
    }
}

fn table_header() -> String {
    format!(
        "{:<12} {:<24} {:<20} {:<16} {:<30} {:<22} {:<9} {:>8}",
        "ID", "TIME", "SOURCE", "KEY", "ERROR", "REASON", "STATE", "SIZE"
    )
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
    c.push('…');
    c
}

fn table_row(l: &DeadLetter) -> String {
    let id = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
    let time = l.dlq_timestamp_ms.and_then(rfc3339).unwrap_or_default();
    let source = l.source.topic.as_deref().unwrap_or("(unknown)");
    let key = match &l.key {
        None => "(null)".to_string(),
        Some(k) => match std::str::from_utf8(k) {
            Ok(s) => s.replace(char::is_control, "?"),
            Err(_) => format!("0x{}", hex::encode(&k[..k.len().min(8)])),
        },
    };
    let error = l
        .failure
        .exception_class
        .as_deref()
        .or(l.failure.message.as_deref())
        .unwrap_or("-");
    let error = error.rsplit('.').next().unwrap_or(error);
    format!(
        "{:<12} {:<24} {:<20} {:<16} {:<30} {:<22} {:<9} {:>8}",
        clip(&id, 12),
        time,
        clip(source, 20),
        clip(&key, 16),
        clip(error, 30),
        l.failure.reason.as_str(),
        l.state.as_str(),
        l.size()
    )
}
