//! Replays of several letters from the TUI (marked letters, a triage group): a window
//! at a time through the engine's writer, each letter's outcome reported as it goes,
//! then one line of totals. Their reports go on the runner's slow channel, so a bulk
//! replay never delays a key's answer or a fetch.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::action::Event;
use crate::engine::read::counted::Counted;
use crate::engine::read::filter::Filter;
use crate::engine::read::source::{DeadLetterSource, SourceEvent, StartAt};
use crate::engine::transform::Jq;
use crate::engine::write::{ReplayOutcome, WINDOW_BYTES, Writer, window};
use crate::engine::{DeadLetter, LetterId};

/// Counts of a replay of several letters, reported as it goes.
#[derive(Default)]
struct Bulk {
    done: u64,
    skipped: u64,
    /// Skipped letters by reason, in the order the reasons first came.
    why_skipped: Vec<(crate::engine::write::Reason, u64)>,
    failed: u64,
    /// Why the read of the DLQ stopped before its end, when it did.
    incomplete: Option<String>,
}

impl Bulk {
    /// Replays a window of letters through the writer, reporting each one.
    async fn replay(
        &mut self,
        writer: &Writer,
        letters: &[DeadLetter],
        jq: Option<&Jq>,
        tx: &mpsc::Sender<Event>,
    ) {
        for (id, o) in writer.replay_with(letters, None, false, jq).await {
            match o {
                ReplayOutcome::Replayed {
                    replay_id, topic, ..
                } => {
                    let key = letters
                        .iter()
                        .find(|l| l.id.as_ref() == Some(&id))
                        .and_then(|l| l.key.clone());
                    let watched = Event::Replayed {
                        id: id.clone(),
                        key,
                        replay_id,
                        topic,
                    };
                    // Sends fail only once the TUI has quit; the replay itself is already written, so only the progress line is lost.
                    let _ = tx.send(watched).await;
                    self.done += 1;
                    let message = format!(
                        "replayed {} ({} skipped, {} failed)",
                        self.done, self.skipped, self.failed
                    );
                    let state = crate::engine::LetterState::Replayed;
                    let _ = tx.send(Event::Done { id, state, message }).await;
                }
                ReplayOutcome::Skipped(why) => {
                    self.skipped += 1;
                    match self.why_skipped.iter_mut().find(|(r, _)| *r == why.reason) {
                        Some((_, n)) => *n += 1,
                        None => self.why_skipped.push((why.reason, 1)),
                    }
                }
                ReplayOutcome::SentUnconfirmed { why, .. } => {
                    self.failed += 1;
                    // A closed channel means the TUI has quit: the failure is counted in `failed` either way.
                    let _ = tx.send(Event::Notice(format!("{id}: {why}"))).await;
                }
                ReplayOutcome::Failed(why) => {
                    self.failed += 1;
                    // A closed channel means the TUI has quit: the failure is counted in `failed` either way.
                    let _ = tx.send(Event::Notice(format!("{id}: {why}"))).await;
                }
            }
        }
    }

    async fn report(&self, tx: &mpsc::Sender<Event>) {
        let why: Vec<String> = self
            .why_skipped
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join(", "))
        };
        let counts = format!(
            "{} replayed, {} skipped{why}, {} failed",
            self.done, self.skipped, self.failed
        );
        let msg = match &self.incomplete {
            Some(e) => format!("replay INCOMPLETE (reading the DLQ stopped: {e}): {counts}"),
            None => format!("replay done: {counts}"),
        };
        // A closed channel means the TUI has quit: nobody is left to read the summary.
        let _ = tx.send(Event::Notice(msg)).await;
    }
}

/// Replays the letters of `only` that match `query` (the set counted when the dialog
/// opened: letters that arrived since wait for the next replay), a window at a time,
/// each made by `jq` first when given, reporting progress.
pub(super) async fn replay_group(
    source: Arc<dyn DeadLetterSource>,
    writer: Arc<Writer>,
    decoders: Arc<crate::engine::decoders::Registry>,
    (query, only): (String, Arc<Counted>),
    jq: Option<Arc<Jq>>,
    tx: mpsc::Sender<Event>,
) {
    let jq = jq.as_deref();
    let f = match Filter::parse(&query, chrono::Utc::now().timestamp_millis()) {
        Ok(f) => f,
        Err(e) => {
            // Nothing was replayed; a closed channel means the TUI has quit.
            let _ = tx
                .send(Event::Notice(format!("replay not started: {e}")))
                .await;
            return;
        }
    };
    let f = f.decoding(decoders);
    let (etx, mut erx) = mpsc::channel(crate::engine::write::WINDOW_AHEAD);
    let reader = tokio::spawn(async move { source.stream(StartAt::Beginning, false, etx).await });
    let mut bulk = Bulk::default();
    let mut window = Vec::new();
    let mut bytes = 0;
    while let Some(ev) = erx.recv().await {
        let SourceEvent::Letters(batch) = ev else {
            continue;
        };
        crate::engine::decoders::prepare_letters(f.decoders(), &batch).await;
        let counted = |l: &DeadLetter| l.id.as_ref().is_some_and(|id| only.contains(id));
        for l in batch.into_iter().filter(|l| counted(l) && f.matches(l)) {
            bytes += l.size();
            window.push(l);
        }
        if window.len() >= self::window() || bytes >= WINDOW_BYTES {
            bulk.replay(&writer, &std::mem::take(&mut window), jq, &tx)
                .await;
            bytes = 0;
        }
    }
    bulk.replay(&writer, &window, jq, &tx).await;
    // A read that stopped early means the group was only partly replayed: the summary
    // says so (a notice before it would be overwritten at once).
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(query = %query, "group replay: reading the DLQ stopped early: {e}");
            bulk.incomplete = Some(e.to_string());
        }
        Err(e) => {
            tracing::warn!(query = %query, "group replay: the DLQ reader task failed: {e}");
            bulk.incomplete = Some(e.to_string());
        }
    }
    bulk.report(&tx).await;
}

/// Replays the letters `ids`, a window at a time, each made by `jq` first when
/// given, reporting progress.
pub(super) async fn replay_many(
    source: Arc<dyn DeadLetterSource>,
    writer: Arc<Writer>,
    ids: Vec<LetterId>,
    jq: Option<Arc<Jq>>,
    tx: mpsc::Sender<Event>,
) {
    let jq = jq.as_deref();
    let mut bulk = Bulk::default();
    for chunk in ids.chunks(window()) {
        let mut letters = Vec::with_capacity(chunk.len());
        for id in chunk {
            match source.fetch(id).await {
                Ok(l) => letters.push(l),
                Err(e) => {
                    bulk.failed += 1;
                    // A closed channel means the TUI has quit; the fetch failure is still counted in `failed`.
                    let _ = tx.send(Event::Notice(e.to_string())).await;
                }
            }
        }
        bulk.replay(&writer, &letters, jq, &tx).await;
    }
    bulk.report(&tx).await;
}
