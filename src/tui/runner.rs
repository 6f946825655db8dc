//! The TUI's loop and its I/O. Input, engine events and a tick meet in one `select!`;
//! [`App::update`] decides, this module carries out the [`Effect`]s on tokio tasks
//! (never on the UI task) and renders at most every 16 ms. Engine events come through
//! a bounded channel, so a reader that outruns the screen waits instead of growing.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use crossterm::event::{Event as TermEvent, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::app::{App, Effect, Event};
use super::console::{Console, Crossterm};
use super::settings::Settings;
use super::terminal::TerminalGuard;
use super::view::{Theme, draw};
use crate::backends::open::{Opened, Target};
use crate::engine::LetterId;
use crate::engine::read::filter::Filter;
use crate::engine::read::source::{DeadLetterSource, SourceEvent, StartAt};
use crate::engine::write::{ReplayOutcome, Writer};

/// The shortest time between two frames.
const FRAME: Duration = Duration::from_millis(16);

/// Runs the TUI on `target` until the user quits, showing `notice` until the first key;
/// the profile chosen with `P`, if any.
pub async fn run(
    target: Target,
    notice: Option<String>,
    settings: Arc<Settings>,
) -> anyhow::Result<Option<String>> {
    // Opening waits on the server (up to its timeout when it does not answer): say so at once.
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("morgue: connecting to {}…", connecting_to(&target.dlq));
    }
    let opened = target.dlq.open().await?;
    let guard = TerminalGuard::enter(false)?;
    let result = run_with(&target, &opened, Crossterm, false, notice, settings).await;
    drop(guard);
    result
}

/// What opening `dlq` waits for, in words: `topic 'x' on host:port`.
fn connecting_to(dlq: &crate::backends::open::Dlq) -> String {
    use crate::backends::open::Dlq;
    match dlq {
        Dlq::Kafka { cfg, topic } => format!("topic '{topic}' on {}", cfg.brokers),
        Dlq::Mongo { cfg, .. } => format!(
            "collection '{}.{}' on {}",
            cfg.db,
            cfg.collection,
            crate::backends::mongo::redact(&cfg.uri)
        ),
        Dlq::File { path } => format!("file {}", path.display()),
    }
}

/// Runs the TUI's loop for an opened DLQ on `console` until the user quits (or,
/// `from_overview`, goes back to it with `esc`); the profile chosen with `P`, if any.
pub async fn run_on<C: Console>(
    target: &Target,
    opened: &Opened,
    console: C,
    from_overview: bool,
    settings: Arc<Settings>,
) -> anyhow::Result<Option<String>> {
    run_with(target, opened, console, from_overview, None, settings).await
}

async fn run_with<C: Console>(
    target: &Target,
    opened: &Opened,
    console: C,
    from_overview: bool,
    notice: Option<String>,
    settings: Arc<Settings>,
) -> anyhow::Result<Option<String>> {
    let writer = target.writer(opened, Vec::new());
    let io = Io {
        source: opened.source.clone(),
        writer: Arc::new(writer),
        stream: None,
        highlight: None,
        group: target.group.clone(),
        dlq: opened.ledger.dlq(),
        decoders: target.decoders.clone(),
        settings: settings.clone(),
        transform: Default::default(),
    };
    let mut app = App::new(opened.ledger.dlq(), target.read_only, target.production);
    app.from_overview = from_overview;
    app.decoders = target.decoders.clone();
    app.settings = settings;
    app.set_confirm_after(target.confirm_after_ms);
    app.redact = target
        .redact
        .as_deref()
        .and_then(|r| crate::engine::export::redact::Redaction::parse(r).ok());
    app.profile = target.profile.clone();
    app.notice = notice;
    event_loop(&mut app, io, console).await?;
    Ok(app.switch_to)
}

struct Io {
    source: Arc<dyn DeadLetterSource>,
    writer: Arc<Writer>,
    stream: Option<JoinHandle<()>>,
    highlight: Option<JoinHandle<()>>,
    /// The source consumer group given by flag or profile.
    group: Option<String>,
    /// The DLQ's name, for saying what a fetch waits for.
    dlq: String,
    /// The decoders of the DLQ's profile.
    decoders: Arc<crate::engine::decoders::Registry>,
    /// The session's keys and colours.
    settings: Arc<Settings>,
    /// The transform prompt's letters and previews.
    transform: super::transform_io::TransformIo,
}

async fn event_loop<C: Console>(app: &mut App, mut io: Io, mut console: C) -> anyhow::Result<()> {
    let (mut terminal, mut input) = console.open()?;
    let settings = app.settings.clone();
    let theme = Theme::of(&settings.palette);
    // Answers to keys (fetches, plans, writes) on `tx`; letters and bulk progress on `slow`.
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    let (slow, mut slow_rx) = mpsc::channel::<Event>(64);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let size = terminal.size()?;
    let rows = size.height.saturating_sub(3);
    app.update(Event::Clock(chrono::Utc::now().timestamp_millis()));
    let mut pending = app.start();
    pending.extend(app.update(Event::Resize(rows, size.width)));
    let (src, retention_tx) = (io.source.clone(), tx.clone());
    tokio::spawn(async move {
        // The TUI has quit if the channel is closed: the retention hint is no longer wanted.
        let _ = retention_tx
            .send(Event::Retention(src.retention_ms().await))
            .await;
    });
    let src = io.source.clone();
    let total_tx = tx.clone();
    tokio::spawn(async move {
        // The TUI has quit if the channel is closed: the count or its error is no longer wanted.
        match src.count().await {
            Ok(n) => {
                let _ = total_tx.send(Event::Total(n)).await;
            }
            Err(e) => {
                let _ = total_tx.send(Event::Notice(e.to_string())).await;
            }
        }
    });
    let mut last_frame = Instant::now() - FRAME;
    let (mut dirty, mut urgent) = (true, false);
    let mut batch = Vec::with_capacity(8);
    loop {
        while !pending.is_empty() {
            for e in std::mem::take(&mut pending) {
                if let Effect::Edit { id, text, json } = e {
                    // The editor gets the terminal; no key may be read meanwhile.
                    drop(input);
                    drop(terminal);
                    let result = console.edit(&text, json)?;
                    (terminal, input) = console.open()?;
                    pending.extend(app.update(Event::Edited { id, result }));
                    urgent = true;
                    continue;
                }
                io.run(e, &tx, &slow);
            }
        }
        if app.quit {
            break;
        }
        // A key is answered at once; what the engine sends is drawn at most every FRAME.
        if urgent || (dirty && last_frame.elapsed() >= FRAME) {
            terminal.draw(|f| draw(f, app, theme))?;
            last_frame = Instant::now();
            (dirty, urgent) = (false, false);
        }
        let next_frame = tokio::time::Instant::from_std(last_frame + FRAME);
        tokio::select! {
            biased;
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                    if let Some(a) = settings.keymap.action_for(k, app.dialog.is_some()) {
                        app.update(Event::Clock(chrono::Utc::now().timestamp_millis()));
                        pending = app.update(a);
                        urgent = true;
                    }
                }
                Some(Ok(TermEvent::Resize(w, h))) => {
                    terminal.autoresize()?;
                    pending = app.update(Event::Resize(h.saturating_sub(3), w));
                    urgent = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(a) = rx.recv() => {
                pending.extend(app.update(a));
                dirty = true;
            }
            // Few actions at a time (each may carry 512 letters), so a key never waits long.
            n = slow_rx.recv_many(&mut batch, 8) => {
                if n == 0 {
                    break;
                }
                for a in batch.drain(..) {
                    pending.extend(app.update(a));
                }
                dirty = true;
            }
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
            _ = tick.tick() => {
                // Redrawn on the tick too: a fetch's wait and ages move with the clock.
                app.update(Event::Clock(chrono::Utc::now().timestamp_millis()));
                dirty = true;
            }
        }
    }
    if let Some(h) = io.stream.take() {
        h.abort();
    }
    Ok(())
}

impl Io {
    /// Starts the task for one effect. Answers to what a key asked (a fetch, a plan, a
    /// write) come back on `tx`; the stream's letters and a bulk replay's progress on
    /// `slow`, which the loop reads only when `tx` is empty.
    fn run(&mut self, effect: Effect, tx: &mpsc::Sender<Event>, slow: &mpsc::Sender<Event>) {
        let (tx, slow) = (tx.clone(), slow.clone());
        match effect {
            Effect::Stream { generation, filter } => {
                if let Some(h) = self.stream.take() {
                    h.abort();
                }
                let (source, decoders) = (self.source.clone(), self.decoders.clone());
                self.stream = Some(tokio::spawn(stream(
                    source, decoders, generation, filter, slow,
                )));
            }
            Effect::Fetch(id) => {
                let (source, writer) = (self.source.clone(), self.writer.clone());
                let (group, dlq) = (self.group.clone(), self.dlq.clone());
                let decoders = self.decoders.clone();
                tokio::spawn(super::fetch::fetch(
                    source, writer, decoders, group, dlq, id, tx,
                ));
            }
            Effect::PlanReplay(id) => {
                let (source, writer) = (self.source.clone(), self.writer.clone());
                let decoders = self.decoders.clone();
                tokio::spawn(async move {
                    let a = async {
                        let l = source.fetch(&id).await.map_err(|e| e.to_string())?;
                        // Its schemas first: the dialog decodes the plan once, when it comes.
                        let one = std::slice::from_ref(&l);
                        crate::engine::decoders::prepare_letters(&decoders, one).await;
                        writer
                            .plan(&l, None, false)
                            .await
                            .map_err(|e| e.to_string())
                    };
                    let action = match a.await {
                        Ok(p) => Event::Planned(Box::new(p)),
                        Err(e) => Event::Notice(e),
                    };
                    // The TUI has quit if the channel is closed: the replay plan is no longer wanted.
                    let _ = tx.send(action).await;
                });
            }
            Effect::Replay { id, topic } => self.write(id, LetterWrite::Replay(topic), tx),
            Effect::Resolve(id) => self.write(id, LetterWrite::Resolve, tx),
            Effect::SaveEdit { id, value } => self.write(id, LetterWrite::SaveEdit(value), tx),
            Effect::DiscardEdit(id) => self.write(id, LetterWrite::DiscardEdit, tx),
            Effect::Highlight { id, text, syntax } => {
                if !Theme::of(&self.settings.palette).color {
                    return;
                }
                let theme = self.settings.palette.highlight.clone();
                if let Some(h) = self.highlight.take() {
                    h.abort();
                }
                self.highlight = Some(tokio::task::spawn_blocking(move || {
                    if let Some(lines) = super::highlight::highlight(&text, syntax, &theme) {
                        // The detail view moved on or the TUI quit: the highlighted lines are no longer wanted.
                        let _ = tx.blocking_send(Event::Highlighted { id, lines });
                    }
                }));
            }
            Effect::ReplayMany(ids) => {
                let (source, writer) = (self.source.clone(), self.writer.clone());
                tokio::spawn(super::bulk::replay_many(source, writer, ids, None, slow));
            }
            Effect::ReplayGroup { query, only } => {
                let (source, writer) = (self.source.clone(), self.writer.clone());
                let decoders = self.decoders.clone();
                tokio::spawn(super::bulk::replay_group(
                    source,
                    writer,
                    decoders,
                    (query, only),
                    None,
                    slow,
                ));
            }
            Effect::LoadTransform(scope) => {
                let (source, writer) = (self.source.clone(), self.writer.clone());
                let decoders = self.decoders.clone();
                self.transform.load(scope, source, writer, decoders, tx);
            }
            Effect::PreviewTransform { generation, expr } => {
                let decoders = self.decoders.clone();
                self.transform.preview(generation, expr, decoders, tx);
            }
            Effect::ReplayTransformed { scope, expr } => {
                let (source, writer) = (self.source.clone(), self.writer.clone());
                let decoders = self.decoders.clone();
                super::transform_io::replay(scope, expr, (source, writer, decoders), slow);
            }
            Effect::Edit { .. } => {
                // Handled by the event loop, which owns the terminal.
            }
            Effect::Copy { what, text } => {
                tokio::spawn(async move {
                    let how = copy(&text);
                    // The TUI has quit if the channel is closed: the copy already happened, only its notice is lost.
                    let _ = tx
                        .send(Event::Notice(format!(
                            "copied the {what} ({} bytes) {how}",
                            text.len()
                        )))
                        .await;
                });
            }
        }
    }
}

/// A write on one letter, carried out through the engine's writer (and so the ledger).
enum LetterWrite {
    Replay(String),
    Resolve,
    SaveEdit(Vec<u8>),
    DiscardEdit,
}

impl Io {
    /// Fetches letter `id`, does `w` with the writer, and reports the new state or the error.
    fn write(&self, id: LetterId, w: LetterWrite, tx: mpsc::Sender<Event>) {
        let (source, writer) = (self.source.clone(), self.writer.clone());
        let replay_key = self.settings.keymap.key("replay");
        tokio::spawn(async move {
            let what = match &w {
                LetterWrite::Replay(_) => "replay",
                LetterWrite::Resolve => "resolve",
                LetterWrite::SaveEdit(_) => "edit",
                LetterWrite::DiscardEdit => "discard",
            };
            let result = async {
                let l = source.fetch(&id).await.map_err(|e| e.to_string())?;
                let entry = match w {
                    LetterWrite::Replay(topic) => {
                        let done = writer.replay(std::slice::from_ref(&l), Some(&topic), false);
                        return match done.await.pop().map(|(_, o)| o) {
                            Some(ReplayOutcome::Replayed {
                                topic,
                                partition,
                                offset,
                                replay_id,
                                ..
                            }) => {
                                // Watched from now on, as a fresh session would from the ledger.
                                let watched = Event::Replayed {
                                    id: id.clone(),
                                    key: l.key.clone(),
                                    replay_id,
                                    topic: topic.clone(),
                                };
                                // A closed channel means the TUI is gone: nothing to tell.
                                let _ = tx.send(watched).await;
                                Ok((
                                    crate::engine::LetterState::Replayed,
                                    format!("replayed to {topic}:{partition}@{offset}"),
                                ))
                            }
                            Some(ReplayOutcome::SentUnconfirmed { why, .. }) => Err(format!(
                                "sent but not recorded ({why}); the next replay confirms it"
                            )),
                            Some(ReplayOutcome::Skipped(why) | ReplayOutcome::Failed(why)) => {
                                Err(why.message)
                            }
                            None => Err("nothing happened".into()),
                        };
                    }
                    LetterWrite::Resolve => writer.resolve(&l).await,
                    LetterWrite::SaveEdit(v) => writer.save_edit(&l, v).await,
                    LetterWrite::DiscardEdit => writer.discard_edit(&l).await,
                }
                .map_err(|e| e.to_string())?;
                let state = entry.shown_state();
                let message = match what {
                    "resolve" => format!("{id} resolved"),
                    "edit" => format!("edit of {id} kept; {replay_key} replays it"),
                    _ => format!("edit of {id} discarded"),
                };
                Ok((state, message))
            };
            let a = match result.await {
                Ok((state, message)) => Event::Done { id, state, message },
                Err(e) => Event::Refused {
                    id,
                    message: format!("{what} refused: {e}"),
                },
            };
            // The TUI has quit if the channel is closed; the write's outcome is already in the ledger.
            let _ = tx.send(a).await;
        });
    }
}

/// Reads the DLQ from the beginning and keeps following it, forwarding the letters
/// that match `filter` stamped with `generation`.
async fn stream(
    source: Arc<dyn DeadLetterSource>,
    decoders: Arc<crate::engine::decoders::Registry>,
    generation: u64,
    filter: Option<String>,
    tx: mpsc::Sender<Event>,
) {
    let f = filter
        .as_deref()
        .and_then(|q| Filter::parse(q, chrono::Utc::now().timestamp_millis()).ok())
        .map(|f| f.decoding(decoders));
    let (etx, mut erx) = mpsc::channel(crate::engine::read::source::AHEAD);
    let reader = tokio::spawn(async move { source.stream(StartAt::Beginning, true, etx).await });
    let mut live = false;
    while let Some(ev) = erx.recv().await {
        let a = match ev {
            SourceEvent::Letters(mut v) => {
                let count = v.len() as u64;
                if tx
                    .send(Event::Arrived {
                        generation,
                        count,
                        live,
                    })
                    .await
                    .is_err()
                {
                    return;
                }
                if let Some(f) = &f {
                    crate::engine::decoders::prepare_letters(f.decoders(), &v).await;
                    v.retain(|l| f.matches(l));
                }
                Event::Letters {
                    generation,
                    letters: v,
                }
            }
            SourceEvent::CaughtUp { .. } => {
                live = true;
                Event::CaughtUp { generation }
            }
            SourceEvent::Notice(n) => Event::Notice(n),
            SourceEvent::Silent { server, since_ms } => Event::Silent {
                generation,
                server,
                since_ms,
            },
            SourceEvent::Answering { server } => Event::Answering { generation, server },
        };
        if tx.send(a).await.is_err() {
            return;
        }
    }
    if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(1), reader).await {
        // The TUI has quit if the channel is closed: nobody is left to tell that reading stopped.
        let _ = tx
            .send(Event::Notice(format!("reading stopped: {e}")))
            .await;
    }
}

/// Puts `text` on the clipboard: the system clipboard where a display exists, else an
/// OSC 52 sequence (works over ssh, wrapped for tmux). Says which.
fn copy(text: &str) -> &'static str {
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    if display
        && arboard::Clipboard::new()
            .and_then(|mut c| c.set_text(text.to_string()))
            .is_ok()
    {
        return "to the system clipboard";
    }
    let seq = osc52(text, std::env::var_os("TMUX").is_some());
    let mut out = std::io::stdout();
    if out
        .write_all(seq.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
    {
        "through the terminal (OSC 52)"
    } else {
        "nowhere: the terminal could not be written"
    }
}

/// The OSC 52 "set clipboard" sequence for `text`, wrapped in tmux's passthrough
/// (escapes doubled) when running inside tmux.
pub fn osc52(text: &str, in_tmux: bool) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text);
    let osc = format!("\x1b]52;c;{b64}\x07");
    if in_tmux {
        format!("\x1bPtmux;{}\x1b\\", osc.replace('\x1b', "\x1b\x1b"))
    } else {
        osc
    }
}

#[cfg(test)]
mod tests {
    use super::osc52;

    #[test]
    fn osc52_plain_and_through_tmux() {
        assert_eq!(osc52("hi", false), "\x1b]52;c;aGk=\x07");
        assert_eq!(osc52("hi", true), "\x1bPtmux;\x1b\x1b]52;c;aGk=\x07\x1b\\");
    }
}
