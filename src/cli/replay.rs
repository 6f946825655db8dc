//! `morgue show`, `morgue replay` and `morgue resolve`: letters are chosen by id or
//! filter, writes are confirmed (a terminal prompt or `--yes`) and carried out by the
//! engine's [`Writer`], and each result is one JSON line on stdout (a skipped or failed
//! letter with its `reason` code, `by` and `since`). A filtered replay streams: letters
//! are read, claimed, replayed and dropped a window at a time, [`IN_FLIGHT`] windows at
//! once unless paced (`replay_run.rs`). It is bound to the letters counted before the question; with
//! `--yes` on Kafka (no question) it reads the DLQ once instead, bound to the letters
//! below each partition's end offset when it started.

use crate::engine::decoders::Registry;
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use tokio::sync::mpsc;

use super::backend::{Dlq, Opened, Target};
use super::{BackendArgs, Unconfirmed, UsageError, values};
use crate::engine::EngineError;
use crate::engine::export::json::LetterJson;
use crate::engine::model::encoding::EncodedBytes;
use crate::engine::read::counted::Counted;
use crate::engine::read::filter::Filter;
use crate::engine::read::outcome;
use crate::engine::read::source::{SourceEvent, StartAt};
use crate::engine::write::plan::ReplayPlan;
use crate::engine::write::{NotDone, ReplayOutcome, WINDOW_BYTES, Writer, window};
use crate::engine::{DeadLetter, LetterId};

#[path = "replay_dry.rs"]
mod dry;
#[path = "replay_run.rs"]
mod run_loop;
use run_loop::{readied, run, run_window};

/// Options of `morgue replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Letter ids (`PARTITION:OFFSET`, or a MongoDB `_id`).
    #[arg(value_name = "ID", value_parser = values::letter_id)]
    pub ids: Vec<String>,
    /// Replay every letter matching this query instead (syntax: docs/commands.md, Filter syntax).
    #[arg(
        long,
        short = 'f',
        value_name = "QUERY",
        allow_hyphen_values = true,
        conflicts_with = "ids"
    )]
    pub filter: Option<String>,
    /// Target topic (default: each letter's source topic).
    #[arg(long, value_name = "TOPIC", value_parser = values::topic)]
    pub to: Option<String>,
    /// Replay letters that were already replayed, and copies of a source message that was.
    #[arg(long)]
    pub force: bool,
    /// Print exactly what would be sent and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// At most this many letters per second.
    #[arg(long, value_name = "N", value_parser = values::rate)]
    pub rate: Option<f64>,
    /// Do not ask for confirmation (scripts); a filtered replay of a Kafka DLQ then reads
    /// it once, bound to the letters below each partition's end when it starts.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Keep this header although it would be stripped (repeatable).
    #[arg(long = "keep-header", value_name = "NAME", value_parser = values::name)]
    pub keep_headers: Vec<String>,
    /// Take over another session's claim once it is this old: its sender is fenced, its
    /// message looked for in the target, and sent only if it never arrived (a slow
    /// holder taken over sends nothing and reports `taken-over`).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = values::wait)]
    pub takeover_after: Duration,
    /// A jq expression each letter is fixed with before it is sent.
    #[command(flatten)]
    pub transform: super::transform::TransformArgs,
}

/// Options of `morgue resolve`.
#[derive(Debug, clap::Args)]
pub struct ResolveArgs {
    /// Letter ids (`PARTITION:OFFSET`, or a MongoDB `_id`).
    #[arg(value_name = "ID", required = true, value_parser = values::letter_id)]
    pub ids: Vec<String>,
    /// Do not ask for confirmation (scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Opens the DLQ and its writer, once `ids` are known to fit its kind (a usage
/// error before anything is contacted).
pub(super) async fn open(
    backend: &BackendArgs,
    keep: Vec<String>,
    ids: &[String],
) -> anyhow::Result<(Target, Opened, Writer)> {
    let target = backend.target()?;
    for raw in ids {
        parse_id(raw, &target)?;
    }
    let opened = target.dlq.open().await?;
    let writer = target.writer(&opened, keep);
    Ok((target, opened, writer))
}

/// Parses an id: `PARTITION:OFFSET` for a Kafka DLQ, a document `_id` for MongoDB.
pub(super) fn parse_id(raw: &str, target: &Target) -> Result<LetterId, UsageError> {
    match (&target.dlq, raw.parse::<LetterId>()) {
        (_, Err(e)) => Err(UsageError(e.to_string())),
        (Dlq::Kafka { .. }, Ok(LetterId::Mongo(_))) => Err(UsageError(format!(
            "ID: expected a Kafka letter id (PARTITION:OFFSET), got '{raw}'"
        ))),
        (Dlq::Mongo { .. }, Ok(_)) => Ok(LetterId::Mongo(raw.to_string())),
        (Dlq::File { .. }, Ok(id)) => Ok(id),
        (Dlq::Kafka { .. }, Ok(id)) => Ok(id),
    }
}

/// Fetches letters by id, with their state read fresh from the ledger.
async fn fetch(
    target: &Target,
    opened: &Opened,
    writer: &Writer,
    ids: &[String],
) -> anyhow::Result<Vec<DeadLetter>> {
    let mut out = Vec::new();
    for raw in ids {
        let id = parse_id(raw, target)?;
        out.push(opened.source.fetch(&id).await?);
    }
    writer.refresh(&mut out).await?;
    // Schemas for decoding (filters, dry runs, JSON), fetched once per id.
    crate::engine::decoders::prepare_letters(&target.decoders, &out).await;
    Ok(out)
}

/// The letters matching a filter (and, when given, counted before: nothing else),
/// read a window at a time (at most [`window`] letters or [`WINDOW_BYTES`] of
/// payload); the reader waits while the windows it read are worked on.
struct Windows<'f> {
    rx: mpsc::Receiver<SourceEvent>,
    reader: Option<tokio::task::JoinHandle<Result<(), crate::engine::read::source::SourceError>>>,
    filter: &'f Filter,
    only: Option<&'f Counted>,
    carry: std::vec::IntoIter<DeadLetter>,
}

impl<'f> Windows<'f> {
    fn open(opened: &Opened, filter: &'f Filter, only: Option<&'f Counted>) -> Self {
        let (tx, rx) = mpsc::channel(crate::engine::write::WINDOW_AHEAD);
        let source = opened.source.clone();
        let reader =
            tokio::spawn(async move { source.stream(StartAt::Beginning, false, tx).await });
        Windows {
            rx,
            reader: Some(reader),
            filter,
            only,
            carry: Vec::new().into_iter(),
        }
    }

    /// The next window, or None at the end (a read error is returned then).
    async fn next(&mut self) -> anyhow::Result<Option<Vec<DeadLetter>>> {
        let (mut window, mut bytes) = (Vec::new(), 0usize);
        loop {
            for l in self.carry.by_ref() {
                let counted = |only: &Counted| l.id.as_ref().is_some_and(|id| only.contains(id));
                if !self.only.is_none_or(counted) || !self.filter.matches(&l) {
                    continue;
                }
                bytes += l.size();
                window.push(l);
                if window.len() >= self::window() || bytes >= WINDOW_BYTES {
                    return Ok(Some(window));
                }
            }
            match self.rx.recv().await {
                Some(SourceEvent::Letters(batch)) => {
                    // A payload filter may read decoded values: their schemas first.
                    crate::engine::decoders::prepare_letters(self.filter.decoders(), &batch).await;
                    self.carry = batch.into_iter();
                }
                // A broker that stops answering is said, not waited on in silence.
                Some(ev) => super::tell(&ev),
                None => break,
            }
        }
        if let Some(r) = self.reader.take() {
            r.await??;
        }
        Ok((!window.is_empty()).then_some(window))
    }
}

/// The letters matching `filter` now: the set a filtered replay is bound to.
async fn count(opened: &Opened, filter: &Filter) -> anyhow::Result<Counted> {
    let mut counted = Counted::default();
    let mut w = Windows::open(opened, filter, None);
    while let Some(letters) = w.next().await? {
        letters
            .iter()
            .filter_map(|l| l.id.as_ref())
            .for_each(|id| counted.insert(id));
    }
    Ok(counted)
}

/// `morgue show ID`: one letter with its ledger state.
pub async fn show(backend: &BackendArgs, id: &str) -> anyhow::Result<()> {
    let (target, opened, writer) = open(backend, Vec::new(), &[id.to_string()]).await?;
    let mut letters = fetch(&target, &opened, &writer, &[id.to_string()]).await?;
    let now = chrono::Utc::now().timestamp_millis();
    if letters.iter().any(|l| !l.history.is_empty()) {
        let watch = outcome::prepare(opened.source.as_ref(), target.confirm_after_ms).await?;
        for l in &mut letters {
            watch.settle(l, now);
            l.consumed = writer.consumed(l, target.group.as_deref()).await;
        }
    }
    for l in &letters {
        super::print_line(serde_json::to_string(&LetterJson::of(l, &target.decoders))?)?;
    }
    Ok(())
}

fn plan_json(p: &ReplayPlan, decoders: &Registry) -> serde_json::Value {
    json!({
        "id": p.letter_id,
        "status": "dry-run",
        "topic": p.topic,
        "key": p.key.as_deref().map(EncodedBytes::of),
        "value": p.value.as_deref().map(EncodedBytes::of),
        "decoded": crate::engine::export::json::decode_bytes(decoders, p.value.as_deref(), Some(&p.topic)).0,
        "edited": p.edited,
        "headers": p.headers.iter().map(|h| json!({"name": h.name, "value": h.value.as_deref().map(EncodedBytes::of)})).collect::<Vec<_>>(),
        "stripped": p.stripped.iter().map(|(n, why)| json!({"name": n, "why": why})).collect::<Vec<_>>(),
        "replay_count": p.replay_count,
    })
}

/// Asks on the terminal; refuses without one unless `--yes`.
pub(super) fn confirm(yes: bool, question: &str) -> anyhow::Result<()> {
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
    super::print_line(v)
}

/// The JSON line of one replay outcome.
fn outcome_json(id: &str, o: &ReplayOutcome) -> serde_json::Value {
    let status = o.status();
    match o {
        ReplayOutcome::Replayed {
            topic,
            partition,
            offset,
            replay_id,
            edited,
            ..
        } => json!({
            "id": id, "status": status, "topic": topic, "partition": partition,
            "offset": offset, "replay_id": replay_id, "edited": edited,
        }),
        ReplayOutcome::SentUnconfirmed {
            topic,
            partition,
            offset,
            replay_id,
            why,
        } => json!({
            "id": id, "status": status, "topic": topic, "partition": partition,
            "offset": offset, "replay_id": replay_id, "error": why,
        }),
        ReplayOutcome::Skipped(why) | ReplayOutcome::Failed(why) => not_done_json(id, status, why),
    }
}

/// A skipped or failed letter: the reason code, who and since when, and the prose.
fn not_done_json(id: &str, status: &str, why: &NotDone) -> serde_json::Value {
    let mut v =
        json!({"id": id, "status": status, "reason": why.reason.as_str(), "error": why.message});
    if let Some(by) = &why.by {
        v["by"] = json!(by);
    }
    if let Some(t) = why
        .since_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
    {
        v["since"] = json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    v
}

/// What a replay run did, for the closing line and the exit code.
#[derive(Default)]
struct Tally {
    /// When the first letter was handed to the writer.
    started: Option<Instant>,
    /// When the first batch was done, and how many letters it held: the steady state
    /// (pacing and the rate reported) is measured from there, without start-up costs.
    steady: Option<(Instant, u64)>,
    replayed: u64,
    recovered: u64,
    skipped: u64,
    unconfirmed: u64,
    failed: u64,
    /// A filtered replay's count and bound: fixed before it was confirmed, or (`--yes`
    /// on Kafka, read once) the letters it took.
    counted: Option<String>,
    /// The letters handed to the writer so far.
    read: Counted,
}

impl Tally {
    /// Notes the letters handed to the writer.
    fn took(&mut self, letters: &[DeadLetter]) {
        letters
            .iter()
            .filter_map(|l| l.id.as_ref())
            .for_each(|id| self.read.insert(id));
    }

    fn add(&mut self, id: &str, o: &ReplayOutcome) -> anyhow::Result<()> {
        match o {
            ReplayOutcome::Replayed {
                recovered: true, ..
            } => self.recovered += 1,
            ReplayOutcome::Replayed { .. } => self.replayed += 1,
            ReplayOutcome::Skipped(why) => {
                self.skipped += 1;
                eprintln!("morgue: skipped: {why}");
            }
            ReplayOutcome::SentUnconfirmed { why, .. } => {
                self.unconfirmed += 1;
                eprintln!("morgue: {id} was sent but not recorded: {why}");
            }
            ReplayOutcome::Failed(why) => {
                self.failed += 1;
                eprintln!("morgue: {id}: {why}");
            }
        }
        print(&outcome_json(id, o))
    }

    fn finish(&self) -> anyhow::Result<()> {
        let total = self.replayed + self.recovered + self.skipped + self.unconfirmed + self.failed;
        let secs = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let steady = match self.steady {
            Some((t, first)) if total > first => format!(
                ", {:.0}/s after the first batch",
                (total - first) as f64 / t.elapsed().as_secs_f64().max(1e-9)
            ),
            _ => String::new(),
        };
        let of = self.counted.as_deref().unwrap_or_default();
        let line = format!(
            "{total} letter(s): {} replayed, {} recovered, {} skipped, {} sent-unconfirmed, {} failed in {secs:.2} s{steady}{of}",
            self.replayed, self.recovered, self.skipped, self.unconfirmed, self.failed,
        );
        if self.failed > 0 {
            anyhow::bail!("{line}");
        }
        if self.unconfirmed > 0 {
            return Err(Unconfirmed(format!(
                "{line}; the next replay confirms them without sending"
            ))
            .into());
        }
        if total == 0 {
            eprintln!("morgue: no letters to replay");
        } else {
            eprintln!("morgue: {line}");
        }
        Ok(())
    }
}

/// `morgue replay`.
pub async fn replay(backend: &BackendArgs, args: &ReplayArgs) -> anyhow::Result<()> {
    if !args.dry_run {
        refuse_early(backend, "replay", args.ids.len())?;
    }
    let filter = super::filter_arg(
        args.filter.as_deref(),
        chrono::Utc::now().timestamp_millis(),
    )?;
    // A transform that does not compile is refused before anything is contacted.
    let jq = args.transform.compile()?;
    if filter.is_none() && args.ids.is_empty() {
        return Err(UsageError("name letters by ID or --filter QUERY".into()).into());
    }
    // A blank query matches every letter: as a replay's, it is an unset variable or a
    // slip far more often than a wish, so it is refused (`state:new` says "all").
    if filter.as_ref().is_some_and(|f| f.is_empty()) {
        return Err(UsageError(format!(
            "--filter: '{}' is empty and would replay every letter; name what to replay, e.g. --filter state:new",
            args.filter.as_deref().unwrap_or_default()
        ))
        .into());
    }
    let (target, opened, writer) = open(backend, args.keep_headers.clone(), &args.ids).await?;
    let filter = filter.map(|f| f.decoding(target.decoders.clone()));
    let writer = writer.with_takeover_after(args.takeover_after);
    let to = args.to.as_deref();
    if args.dry_run {
        return dry::dry_run(args, filter, (&target, &opened, &writer), jq).await;
    }
    if target.read_only {
        return Err(EngineError::ReadOnly("replay".into()).into());
    }
    target.dlq.replay_cluster().map_err(UsageError)?;
    let mut whither = to.map_or_else(|| "their source topics".to_string(), |t| format!("'{t}'"));
    if let Some(jq) = &jq {
        whither.push_str(&format!(
            ", each fixed by transform '{}' first (a letter it fails for is skipped)",
            jq.spec()
        ));
    }
    let jq = jq.as_ref();
    let mut tally = Tally::default();
    let mut sent = 0u64;
    let rate = args.rate;
    match filter {
        // With --yes nothing is shown before acting, so a Kafka DLQ is read once: the
        // letters below each partition's end offset when the run starts, matching as read.
        Some(f) if args.yes && matches!(target.dlq, Dlq::Kafka { .. }) => {
            let w = Windows::open(&opened, &f, None);
            readied(
                &writer,
                run(&writer, w, (to, args.force, jq), rate, &mut tally),
            )
            .await?;
            tally.counted = Some(format!(
                "; {} matching letter(s) below the end offsets when it started ({})",
                tally.read.len(),
                tally.read.bound()
            ));
        }
        Some(f) => {
            let q = args.filter.as_deref().unwrap_or_default();
            // What is confirmed is bound: the letters matching now, and no later one.
            let counted = count(&opened, &f).await?;
            if counted.is_empty() {
                eprintln!("morgue: no letters match '{q}' in '{}'", writer.dlq());
                return Ok(());
            }
            confirm(
                args.yes,
                &format!(
                    "replay the {} letter(s) matching '{q}' in '{}' ({}; any already replayed is skipped) to {whither}",
                    counted.len(),
                    writer.dlq(),
                    counted.bound()
                ),
            )?;
            tally.counted = Some(format!(
                "; {} counted when confirmed ({})",
                counted.len(),
                counted.bound()
            ));
            let w = Windows::open(&opened, &f, Some(&counted));
            readied(
                &writer,
                run(&writer, w, (to, args.force, jq), rate, &mut tally),
            )
            .await?;
        }
        None => {
            let letters = fetch(&target, &opened, &writer, &args.ids).await?;
            confirm(
                args.yes,
                &format!(
                    "replay {} letter(s) from '{}' to {whither}",
                    letters.len(),
                    writer.dlq()
                ),
            )?;
            for chunk in letters.chunks(window()) {
                run_window(
                    &writer,
                    chunk.to_vec(),
                    to,
                    args.force,
                    jq,
                    rate,
                    &mut sent,
                    &mut tally,
                )
                .await?;
            }
        }
    }
    // A checkpoint this run started is finished before it exits (it would be redone).
    writer.settle().await;
    tally.finish()
}

/// `morgue resolve`.
pub async fn resolve(backend: &BackendArgs, args: &ResolveArgs) -> anyhow::Result<()> {
    refuse_early(backend, "resolve", args.ids.len())?;
    let (target, opened, writer) = open(backend, Vec::new(), &args.ids).await?;
    writer
        .policy()
        .check_writable(&format!("resolve of {} letters", args.ids.len()))?;
    let letters = fetch(&target, &opened, &writer, &args.ids).await?;
    confirm(
        args.yes,
        &format!(
            "mark {} letter(s) in '{}' resolved",
            letters.len(),
            writer.dlq()
        ),
    )?;
    for l in &letters {
        writer.resolve(l).await?;
        print(&json!({"id": id_of(l), "status": "resolved"}))?;
    }
    writer.settle().await;
    Ok(())
}

fn id_of(l: &DeadLetter) -> String {
    l.id.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// Refuses a write in a read-only profile before connecting to anything (the engine
/// refuses again at the write itself).
pub(super) fn refuse_early(backend: &BackendArgs, what: &str, n: usize) -> anyhow::Result<()> {
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
