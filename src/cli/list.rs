//! `morgue list`: every letter in the DLQ, streamed to stdout as it is read.

use std::io::Write;

use anyhow::Context as _;

use super::{BackendArgs, Output};
use crate::backends::kafka::replay::load_ledger;
use crate::engine::DeadLetter;
use crate::engine::json::{LetterJson, rfc3339};
use crate::engine::ledger::LEDGER_SUFFIX;

/// Reads the whole DLQ and prints each letter in `output` format.
pub async fn run(backend: &BackendArgs, output: Output) -> anyhow::Result<()> {
    let (cfg, topic) = backend.kafka()?;
    let ledger = load_ledger(&cfg, &format!("{topic}{LEDGER_SUFFIX}")).await?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        if let Output::Table = output {
            writeln!(out, "{}", table_header())?;
        }
        let mut write_err = None;
        cfg.read_to_end(&topic, |mut l| {
            ledger.apply(&mut l);
            if write_err.is_none()
                && let Err(e) = print_letter(&mut out, &l, output)
            {
                write_err = Some(e);
            }
        })?;
        if let Some(e) = write_err {
            return Err(e).context("writing to stdout");
        }
        out.flush().context("writing to stdout")
    })
    .await?
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
