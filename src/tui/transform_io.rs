//! The transform prompt's I/O, for the runner: the scope's letters loaded once when the
//! prompt opens (read from the DLQ like a group replay, each starting from its kept
//! edit when it has one, as the replay will), every keystroke's preview worked out on
//! a blocking thread (the previous one abandoned), and the confirmed replay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::action::Event;
use super::state::TransformScope;
use crate::engine::DeadLetter;
use crate::engine::decoders::Registry;
use crate::engine::read::filter::Filter;
use crate::engine::read::source::{DeadLetterSource, SourceEvent, StartAt};
use crate::engine::transform::Jq;
use crate::engine::transform::preview::{Start, preview_until};
use crate::engine::write::Writer;

/// Changed letters a preview shows.
const SAMPLES: usize = 3;
/// The most letters a preview is worked out on (a larger group's counts are of its
/// first ones, and the prompt says so); the replay still sends the whole group.
pub(super) const MAX_LETTERS: usize = 20_000;
/// The most payload bytes a preview holds.
const MAX_BYTES: usize = 256 << 20;

/// The prompt's letters and the tasks working on them.
#[derive(Default)]
pub(super) struct TransformIo {
    /// The letters of the open prompt (None while they load).
    letters: Arc<Mutex<Option<Arc<Vec<Start>>>>>,
    load: Option<JoinHandle<()>>,
    preview: Option<JoinHandle<()>>,
    /// Set when the preview running is no longer wanted: it stops between letters.
    stop: Arc<AtomicBool>,
}

impl TransformIo {
    /// Loads the letters of `scope`, then says how many on `tx`.
    pub(super) fn load(
        &mut self,
        scope: TransformScope,
        source: Arc<dyn DeadLetterSource>,
        writer: Arc<Writer>,
        decoders: Arc<Registry>,
        tx: mpsc::Sender<Event>,
    ) {
        // A new prompt: the preview of the last one is not wanted either.
        self.stop.store(true, Ordering::Relaxed);
        for h in [self.load.take(), self.preview.take()]
            .into_iter()
            .flatten()
        {
            h.abort();
        }
        let slot = Arc::new(Mutex::new(None));
        self.letters = slot.clone();
        self.load = Some(tokio::spawn(async move {
            let loaded = letters(scope, source, &writer, decoders).await;
            let event = match loaded {
                Ok((all, skipped)) => {
                    let n = all.len();
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(Arc::new(all));
                    }
                    Event::TransformLoaded(Ok((n, skipped)))
                }
                Err(e) => Event::TransformLoaded(Err(e)),
            };
            // The TUI has quit if the channel is closed: the preview is no longer wanted.
            let _ = tx.send(event).await;
        }));
    }

    /// Works out the preview of `expr` on a blocking thread; the previous one is dropped.
    pub(super) fn preview(
        &mut self,
        generation: u64,
        expr: String,
        decoders: Arc<Registry>,
        tx: mpsc::Sender<Event>,
    ) {
        // The blocking work of the one before goes on until told: told here.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.preview.take() {
            h.abort();
        }
        let Some(letters) = self.letters.lock().ok().and_then(|s| s.clone()) else {
            return;
        };
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        self.preview = Some(tokio::spawn(async move {
            let worked = tokio::task::spawn_blocking(move || {
                let jq = Jq::value(&expr).map_err(|e| e.to_string())?;
                Ok(preview_until(&jq, &letters, &decoders, SAMPLES, &stop))
            })
            .await
            .unwrap_or_else(|e| Err(format!("the preview stopped: {e}")));
            let event = Event::TransformPreview {
                generation,
                preview: worked,
            };
            // The TUI has quit if the channel is closed: the preview is no longer wanted.
            let _ = tx.send(event).await;
        }));
    }
}

/// The letters of `scope` a replay would send, each with the value it would start
/// from, and how many it would skip.
async fn letters(
    scope: TransformScope,
    source: Arc<dyn DeadLetterSource>,
    writer: &Writer,
    decoders: Arc<Registry>,
) -> Result<(Vec<Start>, usize), String> {
    let mut out: Vec<DeadLetter> = Vec::new();
    match scope {
        TransformScope::Marked(ids) => {
            for id in ids {
                out.push(source.fetch(&id).await.map_err(|e| e.to_string())?);
            }
        }
        TransformScope::Group { query, only } => {
            let f = Filter::parse(&query, chrono::Utc::now().timestamp_millis())
                .map_err(|e| e.to_string())?
                .decoding(decoders.clone());
            let (etx, mut erx) = mpsc::channel(crate::engine::write::WINDOW_AHEAD);
            let reader =
                tokio::spawn(async move { source.stream(StartAt::Beginning, false, etx).await });
            let mut bytes = 0;
            while let Some(ev) = erx.recv().await {
                let SourceEvent::Letters(batch) = ev else {
                    continue;
                };
                // Schemas first, as the replay does: payload terms read decoded values.
                crate::engine::decoders::prepare_letters(&decoders, &batch).await;
                let counted = |l: &DeadLetter| l.id.as_ref().is_some_and(|id| only.contains(id));
                for l in batch.into_iter().filter(|l| counted(l) && f.matches(l)) {
                    bytes += l.size();
                    out.push(l);
                }
                if out.len() >= MAX_LETTERS || bytes >= MAX_BYTES {
                    out.truncate(MAX_LETTERS);
                    reader.abort();
                    break;
                }
            }
            match reader.await {
                Err(e) if e.is_cancelled() => {}
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(format!("reading the DLQ stopped: {e}")),
                Err(e) => return Err(format!("reading the DLQ failed: {e}")),
            }
        }
    }
    crate::engine::decoders::prepare_letters(&decoders, &out).await;
    let state = writer.refresh(&mut out).await.map_err(|e| e.to_string())?;
    // What the replay skips (replayed before, held, a copy) is counted apart.
    let before = out.len();
    out.retain(|l| {
        l.history.is_empty()
            && l.copy_of.is_none()
            && l.state != crate::engine::LetterState::Replaying
    });
    let skipped = before - out.len();
    let starts = out
        .into_iter()
        .map(|l| {
            let id = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
            let kept = state
                .get(&id)
                .and_then(|e| e.edited_value.as_ref())
                .and_then(|v| v.to_bytes().ok());
            let start = kept.or_else(|| l.value.clone());
            (l, start)
        })
        .collect();
    Ok((starts, skipped))
}

/// What a replay reads and writes with: the DLQ, the writer, the decoders.
type Ends = (Arc<dyn DeadLetterSource>, Arc<Writer>, Arc<Registry>);

/// Replays a confirmed prompt's letters, each made by `expr` first, reporting on `slow`.
pub(super) fn replay(scope: TransformScope, expr: String, ends: Ends, slow: mpsc::Sender<Event>) {
    let (source, writer, decoders) = ends;
    // It compiled in the prompt; a failure here is said, never a replay without it.
    let jq = match Jq::value(&expr) {
        Ok(jq) => Arc::new(jq),
        Err(e) => {
            tokio::spawn(async move {
                let _ = slow.send(Event::Notice(format!("transform: {e}"))).await;
            });
            return;
        }
    };
    match scope {
        TransformScope::Marked(ids) => {
            tokio::spawn(super::bulk::replay_many(
                source,
                writer,
                ids,
                Some(jq),
                slow,
            ));
        }
        TransformScope::Group { query, only } => {
            tokio::spawn(super::bulk::replay_group(
                source,
                writer,
                decoders,
                (query, only),
                Some(jq),
                slow,
            ));
        }
    }
}
