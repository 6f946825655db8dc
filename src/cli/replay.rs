//! `morgue show`, `morgue replay` and `morgue resolve` on a Kafka DLQ: letters are
//! chosen by id or filter, writes are confirmed (a terminal prompt or `--yes`), and
//! each result is one JSON line on stdout.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use super::{BackendArgs, UsageError};
use crate::backends::kafka::KafkaConfig;
use crate::backends::kafka::replay::{KafkaReplayer, ReplayError};
use crate::engine::audit::AuditLog;
use crate::engine::encoding::EncodedBytes;
use crate::engine::filter::Filter;
use crate::engine::json::LetterJson;
use crate::engine::replay::{ReplayPlan, ReplayPolicy};
use crate::engine::{DeadLetter, EngineError, LetterId};

/// Options of `morgue replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Letter ids (`PARTITION:OFFSET`).
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Replay every letter matching this query instead (see the README's filter syntax).
    #[arg(long, short = 'f', value_name = "QUERY", conflicts_with = "ids")]
    pub filter: Option<String>,
    /// Target topic (default: each letter's source topic).
    #[arg(long, value_name = "TOPIC")]
    pub to: Option<String>,
    /// Replay letters that were already replayed.
    #[arg(long)]
    pub force: bool,
    /// Print exactly what would be sent and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many letters per second.
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,
    /// Do not ask for confirmation (scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Keep this header although it would be stripped (repeatable).
    #[arg(long = "keep-header", value_name = "NAME")]
    pub keep_headers: Vec<String>,
}

/// Options of `morgue resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// Letter ids (`PARTITION:OFFSET`).
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
    /// Do not ask for confirmation (scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

async fn open(
    backend: &BackendArgs,
    keep_headers: Vec<String>,
) -> anyhow::Result<(KafkaConfig, KafkaReplayer)> {
    let (cfg, topic) = backend.kafka()?;
    let policy = ReplayPolicy {
        read_only: backend.read_only,
        dlq_topic: topic.clone(),
        keep_headers,
    };
    let audit = AuditLog::new(
        backend
            .audit_log
            .clone()
            .unwrap_or_else(AuditLog::default_path),
    );
    let replayer = KafkaReplayer::open(cfg.clone(), &topic, policy, audit).await?;
    Ok((cfg, replayer))
}

/// Fetches letters by id, or every letter matching `filter`, with ledger state applied.
async fn select(
    cfg: &KafkaConfig,
    replayer: &KafkaReplayer,
    ids: &[String],
    filter: Option<&str>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let topic = replayer.dlq().to_string();
    let mut out = Vec::new();
    if let Some(q) = filter {
        let f = Filter::parse(q, chrono::Utc::now().timestamp_millis())
            .map_err(|e| UsageError(format!("--filter: {e}")))?;
        let (cfg, ledger) = (cfg.clone(), replayer.ledger().clone());
        return tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            cfg.read_to_end(&topic, |mut l| {
                ledger.apply(&mut l);
                if f.matches(&l) {
                    out.push(l);
                }
            })?;
            Ok(out)
        })
        .await?;
    }
    if ids.is_empty() {
        return Err(UsageError("name letters by ID or --filter QUERY".into()).into());
    }
    for raw in ids {
        let id: LetterId = raw
            .parse()
            .map_err(|e: EngineError| UsageError(e.to_string()))?;
        let LetterId::Kafka { partition, offset } = id else {
            return Err(UsageError(format!(
                "'{raw}' is not a Kafka letter id (PARTITION:OFFSET)"
            ))
            .into());
        };
        let (c, t) = (cfg.clone(), topic.clone());
        let mut l = tokio::task::spawn_blocking(move || c.fetch(&t, partition, offset)).await??;
        replayer.ledger().apply(&mut l);
        out.push(l);
    }
    Ok(out)
}

/// `morgue show ID`: one letter with its ledger state.
pub async fn show(backend: &BackendArgs, id: &str) -> anyhow::Result<()> {
    let (cfg, replayer) = open(backend, Vec::new()).await?;
    let letters = select(&cfg, &replayer, &[id.to_string()], None).await?;
    let mut out = std::io::stdout().lock();
    for l in &letters {
        serde_json::to_writer(&mut out, &LetterJson::of(l))?;
        writeln!(out)?;
    }
    Ok(())
}

fn plan_json(p: &ReplayPlan) -> serde_json::Value {
    json!({
        "id": p.letter_id,
        "status": "dry-run",
        "topic": p.topic,
        "key": p.key.as_deref().map(EncodedBytes::of),
        "value": p.value.as_deref().map(EncodedBytes::of),
        "edited": p.edited,
        "headers": p.headers.iter().map(|h| json!({"name": h.name, "value": h.value.as_deref().map(EncodedBytes::of)})).collect::<Vec<_>>(),
        "stripped": p.stripped.iter().map(|(n, why)| json!({"name": n, "why": why})).collect::<Vec<_>>(),
        "replay_count": p.replay_count,
    })
}

/// Asks on the terminal; refuses without one unless `--yes`.
fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "refusing to {question} without confirmation: no terminal to ask on; pass --yes"
        ))
        .into());
    }
    eprint!("{question}? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(anyhow::anyhow!("cancelled: nothing was written"))
    }
}

fn print(v: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    out.flush().context("writing to stdout")
}

/// `morgue replay`.
pub async fn replay(backend: &BackendArgs, args: &ReplayArgs) -> anyhow::Result<()> {
    let (cfg, mut replayer) = open(backend, args.keep_headers.clone()).await?;
    let letters = select(&cfg, &replayer, &args.ids, args.filter.as_deref()).await?;
    let target = args.to.as_deref();
    if args.dry_run {
        for l in &letters {
            match replayer.plan(l, target, None, args.force) {
                Ok(p) => print(&plan_json(&p))?,
                Err(e) => {
                    print(&json!({"id": id_of(l), "status": "refused", "error": e.to_string()}))?
                }
            }
        }
        return Ok(());
    }
    if letters.is_empty() {
        eprintln!("morgue: no letters to replay");
        return Ok(());
    }
    if backend.read_only {
        return Err(EngineError::ReadOnly(format!("replay of {} letters", letters.len())).into());
    }
    let targets: std::collections::BTreeSet<String> = letters
        .iter()
        .filter_map(|l| target.or(l.source.topic.as_deref()).map(str::to_string))
        .collect();
    let targets: Vec<String> = targets.into_iter().collect();
    confirm(
        args.yes,
        &format!(
            "replay {} letter(s) from '{}' to {}",
            letters.len(),
            replayer.dlq(),
            targets.join(", ")
        ),
    )?;
    let interval = args
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let mut failures = 0;
    for (i, l) in letters.iter().enumerate() {
        if let (Some(d), true) = (interval, i > 0) {
            tokio::time::sleep(d).await;
        }
        let id = id_of(l);
        match replayer.replay(l, target, None, args.force).await {
            Ok(r) => print(&json!({
                "id": id, "status": if r.recovered { "recovered" } else { "replayed" },
                "topic": r.plan.topic, "partition": r.partition, "offset": r.offset,
                "replay_id": r.plan.replay_id, "edited": r.plan.edited,
            }))?,
            Err(ReplayError::Refused(e @ EngineError::AlreadyReplayed { .. })) => {
                eprintln!("morgue: skipped: {e}");
                print(&json!({"id": id, "status": "skipped", "error": e.to_string()}))?;
            }
            Err(e) => {
                failures += 1;
                eprintln!("morgue: {e}");
                print(&json!({"id": id, "status": "failed", "error": e.to_string()}))?;
            }
        }
    }
    if failures > 0 {
        anyhow::bail!("{failures} of {} letter(s) not replayed", letters.len());
    }
    Ok(())
}

/// `morgue resolve`.
pub async fn resolve(backend: &BackendArgs, args: &ResolveArgs) -> anyhow::Result<()> {
    let (cfg, mut replayer) = open(backend, Vec::new()).await?;
    if backend.read_only {
        return Err(EngineError::ReadOnly(format!("resolve of {} letters", args.ids.len())).into());
    }
    let letters = select(&cfg, &replayer, &args.ids, None).await?;
    confirm(
        args.yes,
        &format!(
            "mark {} letter(s) in '{}' resolved",
            letters.len(),
            replayer.dlq()
        ),
    )?;
    for l in &letters {
        replayer.resolve(l).await?;
        print(&json!({"id": id_of(l), "status": "resolved"}))?;
    }
    Ok(())
}

fn id_of(l: &DeadLetter) -> String {
    l.id.as_ref().map(ToString::to_string).unwrap_or_default()
}
