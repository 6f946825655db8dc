//! `morgue show`, `morgue replay` and `morgue resolve` on a Kafka DLQ: letters are
//! chosen by id or filter, writes are confirmed (a terminal prompt or `--yes`), and
//! each result is one JSON line on stdout.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;

use tokio::sync::mpsc;

use super::backend::{Dlq, Opened, Target};
use super::{BackendArgs, UsageError};
use crate::backends::kafka::replay::{KafkaReplayer, ReplayError};
use crate::engine::encoding::EncodedBytes;
use crate::engine::filter::Filter;
use crate::engine::json::LetterJson;
use crate::engine::replay::{ReplayPlan, ReplayPolicy};
use crate::engine::source::{SourceEvent, StartAt};
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

/// The DLQ opened for reading, and a replayer recording in its ledger.
async fn open(
    backend: &BackendArgs,
    keep_headers: Vec<String>,
) -> anyhow::Result<(Target, Opened, KafkaReplayer)> {
    let target = backend.target()?;
    let opened = target.dlq.open().await?;
    let policy = ReplayPolicy {
        read_only: target.read_only,
        dlq_topic: target.dlq.topic(),
        keep_headers,
    };
    // Reading a MongoDB DLQ needs no Kafka cluster; replaying does (checked before sending).
    let cluster = target
        .dlq
        .replay_cluster()
        .unwrap_or_else(|_| crate::backends::kafka::KafkaConfig::new(""));
    let ledger = opened.ledger.clone();
    let replayer = KafkaReplayer::open(cluster, policy, target.audit.clone(), ledger).await?;
    Ok((target, opened, replayer))
}

/// Parses an id: `PARTITION:OFFSET` for a Kafka DLQ, a document `_id` for MongoDB.
fn parse_id(raw: &str, target: &Target) -> Result<LetterId, UsageError> {
    match (&target.dlq, raw.parse::<LetterId>()) {
        (_, Err(e)) => Err(UsageError(e.to_string())),
        (Dlq::Kafka { .. }, Ok(LetterId::Mongo(_))) => Err(UsageError(format!(
            "'{raw}' is not a Kafka letter id (PARTITION:OFFSET)"
        ))),
        (Dlq::Mongo { .. }, Ok(_)) => Ok(LetterId::Mongo(raw.to_string())),
        (Dlq::Kafka { .. }, Ok(id)) => Ok(id),
    }
}

/// Fetches letters by id, or every letter matching `filter`, with ledger state applied.
async fn select(
    target: &Target,
    opened: &Opened,
    replayer: &KafkaReplayer,
    ids: &[String],
    filter: Option<&str>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut out = Vec::new();
    if let Some(q) = filter {
        let f = Filter::parse(q, chrono::Utc::now().timestamp_millis())
            .map_err(|e| UsageError(format!("--filter: {e}")))?;
        let (tx, mut rx) = mpsc::channel(8);
        let source = opened.source.clone();
        let reader =
            tokio::spawn(async move { source.stream(StartAt::Beginning, false, tx).await });
        while let Some(ev) = rx.recv().await {
            if let SourceEvent::Letters(batch) = ev {
                for mut l in batch {
                    replayer.ledger().apply(&mut l);
                    if f.matches(&l) {
                        out.push(l);
                    }
                }
            }
        }
        reader.await??;
        return Ok(out);
    }
    if ids.is_empty() {
        return Err(UsageError("name letters by ID or --filter QUERY".into()).into());
    }
    for raw in ids {
        let id = parse_id(raw, target)?;
        let mut l = opened.source.fetch(&id).await?;
        replayer.ledger().apply(&mut l);
        out.push(l);
    }
    Ok(out)
}

/// `morgue show ID`: one letter with its ledger state.
pub async fn show(backend: &BackendArgs, id: &str) -> anyhow::Result<()> {
    let (target, opened, replayer) = open(backend, Vec::new()).await?;
    let letters = select(&target, &opened, &replayer, &[id.to_string()], None).await?;
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
    if !args.dry_run {
        refuse_early(backend, "replay", args.ids.len())?;
    }
    let (target, opened, mut replayer) = open(backend, args.keep_headers.clone()).await?;
    let letters = select(
        &target,
        &opened,
        &replayer,
        &args.ids,
        args.filter.as_deref(),
    )
    .await?;
    let to = args.to.as_deref();
    if args.dry_run {
        for l in &letters {
            match replayer.plan(l, to, None, args.force) {
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
    if target.read_only {
        return Err(EngineError::ReadOnly(format!("replay of {} letters", letters.len())).into());
    }
    target.dlq.replay_cluster()?;
    let targets: std::collections::BTreeSet<String> = letters
        .iter()
        .filter_map(|l| to.or(l.source.topic.as_deref()).map(str::to_string))
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
        match replayer.replay(l, to, None, args.force).await {
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
    refuse_early(backend, "resolve", args.ids.len())?;
    let (target, opened, mut replayer) = open(backend, Vec::new()).await?;
    if target.read_only {
        return Err(EngineError::ReadOnly(format!("resolve of {} letters", args.ids.len())).into());
    }
    let letters = select(&target, &opened, &replayer, &args.ids, None).await?;
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

/// Refuses a write in a read-only profile before connecting to anything (the engine
/// refuses again at the write itself).
fn refuse_early(backend: &BackendArgs, what: &str, n: usize) -> anyhow::Result<()> {
    if backend.target()?.read_only {
        let letters = if n == 0 {
            "matching".to_string()
        } else {
            n.to_string()
        };
        return Err(EngineError::ReadOnly(format!("{what} of {letters} letters")).into());
    }
    Ok(())
}

/// `morgue claim` / `morgue release` (MongoDB only).
pub async fn claim(backend: &BackendArgs, args: &ResolveArgs, claim: bool) -> anyhow::Result<()> {
    let verb = if claim { "claim" } else { "release" };
    refuse_early(backend, verb, args.ids.len())?;
    let target = backend.target()?;
    let Some(dlq) = target.dlq.open().await?.mongo else {
        return Err(UsageError(format!(
            "{verb} works on MongoDB DLQs (the processed/process_time claim pattern)"
        ))
        .into());
    };
    if target.read_only {
        return Err(EngineError::ReadOnly(format!("{verb} of {} letters", args.ids.len())).into());
    }
    confirm(
        args.yes,
        &format!("{verb} {} letter(s) in {}", args.ids.len(), dlq.describe()),
    )?;
    let who = crate::engine::sink::whoami();
    for raw in &args.ids {
        let id = parse_id(raw, &target)?;
        let changed = if claim {
            dlq.claim(&id).await
        } else {
            dlq.release(&id).await
        }
        .map_err(anyhow::Error::msg)?;
        let status = match (claim, changed) {
            (true, true) => "claimed",
            (true, false) => "already-claimed",
            (false, true) => "released",
            (false, false) => "not-claimed",
        };
        if changed {
            let record = crate::engine::audit::AuditRecord {
                at: crate::engine::audit::now_rfc3339(),
                by: &who,
                action: verb,
                dlq: &dlq.describe(),
                id: raw,
                topic: None,
                partition: None,
                offset: None,
                replay_id: None,
                edited: false,
            };
            target.audit.append(&record).map_err(anyhow::Error::msg)?;
        }
        print(&json!({"id": raw, "status": status}))?;
    }
    Ok(())
}
