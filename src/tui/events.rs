//! What the engine, the editor and the terminal report, applied to the [`App`] whatever the screen
//! or dialog: letters read, catching up, counts, fetched letters, highlighting, the
//! results of writes, a replay's plan, an edit, notices, the clock, retention and resizes.

use super::action::{Effect, Event};
use super::app::{App, Fetching, Screen};
use super::highlight::highlight_effect;
use crate::engine::LetterId;

impl App {
    /// The effect that fetches letter `id`, noted so the screen can say what it waits for.
    pub(super) fn fetch(&mut self, id: LetterId) -> Effect {
        self.detail.fetching = Some(Fetching {
            id: id.clone(),
            since_ms: self.now_ms,
            waiting: "the letter".into(),
            failed: None,
        });
        Effect::Fetch(id)
    }

    /// What the detail view or the preview shows while letter `id` is not there yet.
    pub fn fetch_line(&self, id: Option<&LetterId>) -> String {
        let Some(f) = self.detail.fetching.as_ref().filter(|f| Some(&f.id) == id) else {
            return "fetching the letter…".into();
        };
        let waited = self.now_ms - f.since_ms;
        match &f.failed {
            Some(e) => format!("cannot fetch {}: {e}", f.id),
            None if waited >= 1_000 => format!(
                "fetching {}… {:.1} s, waiting for {}",
                f.id,
                waited as f64 / 1_000.0,
                f.waiting
            ),
            None => format!("fetching {}…", f.id),
        }
    }

    /// Applies one event; returns the I/O to do.
    pub(super) fn on_event(&mut self, event: Event) -> Vec<Effect> {
        match event {
            Event::Edited { id, result } => return self.edited(id, result),
            Event::Planned(plan) => self.planned(plan),
            Event::EditedValue { id, value } => {
                self.edits.insert(id, value);
                self.edit_serial += 1;
            }
            Event::Resize(rows, cols) => {
                self.cols = cols;
                self.list.page = usize::from(rows).max(1);
                self.select(self.list.selected);
            }
            Event::Letters {
                generation,
                letters,
            } if generation == self.generation => {
                let before = self.store.len();
                let shown = self.visible_len();
                // The selection belongs to a letter: its store position never changes.
                let anchor = self.position(self.list.selected);
                let following = self.following();
                for l in &letters {
                    let pos = self.store.insert(l);
                    if pos >= before && letters.len() <= 4 {
                        // Keep a few recent letters for an instant detail view.
                        self.store.cache_put(l.clone());
                    }
                }
                self.extend_view(before);
                let added = self.visible_len() - shown;
                if following {
                    self.select_newest();
                } else {
                    self.list.unseen += added;
                    self.keep_selected(anchor);
                }
            }
            Event::CaughtUp { generation } if generation == self.generation => {
                self.store.rescan_failures();
                if self.screen == Screen::Triage {
                    self.refresh_groups();
                }
                self.caught_up = true;
                self.status = "caught up; following live".to_string();
            }
            Event::Letters { .. } | Event::CaughtUp { .. } => {}
            Event::Silent {
                generation,
                server,
                since_ms,
            } if generation == self.generation => {
                self.notice = Some(format!("no answer from {server}; still waiting"));
                self.silent = Some((server, since_ms));
            }
            Event::Answering { generation, server } if generation == self.generation => {
                self.silent = None;
                // Only the notice of the silence goes; another stays until a key.
                if self
                    .notice
                    .as_deref()
                    .is_some_and(|n| n.starts_with("no answer from"))
                {
                    self.notice = None;
                }
                self.status = format!("{server} answers again; following live");
            }
            Event::Silent { .. } | Event::Answering { .. } => {}
            Event::Total(n) => self.total = Some(n),
            Event::Arrived {
                generation,
                count,
                live,
            } if generation == self.generation => {
                if live {
                    self.total = Some(self.total.unwrap_or(0) + count);
                } else {
                    self.scanned += count;
                }
            }
            Event::Arrived { .. } => {}
            Event::FetchWaiting { id, what } => {
                if let Some(f) = self.detail.fetching.as_mut().filter(|f| f.id == id) {
                    f.waiting = what;
                }
            }
            Event::FetchFailed { id, error } => {
                self.preview_fetch_ended();
                let error = error.lines().next().unwrap_or_default().to_string();
                self.status = format!("cannot fetch {id}: {error}");
                if let Some(f) = self.detail.fetching.as_mut().filter(|f| f.id == id) {
                    f.failed = Some(error);
                }
            }
            Event::Fetched(mut l) => {
                self.preview_fetch_ended();
                if self.detail.fetching.as_ref().map(|f| Some(&f.id)) == Some(l.id.as_ref()) {
                    self.detail.fetching = None;
                }
                self.store.settle(&mut l);
                // Kept for the detail view and the preview (which takes it from the cache).
                self.store.cache_put((*l).clone());
                if self.screen == Screen::Detail && l.id == self.selected_id() {
                    let effect = highlight_effect(&self.decoders, &l);
                    self.detail.letter = Some(*l);
                    return effect.into_iter().collect();
                }
            }
            Event::Highlighted { id, lines }
                if self
                    .detail
                    .letter
                    .as_ref()
                    .is_some_and(|d| d.id.as_ref() == Some(&id)) =>
            {
                self.detail.highlighted = Some((id, lines));
            }
            Event::Refused { id, message } => {
                self.saving.remove(&id);
                self.status = message;
            }
            Event::Done { id, state, message } => {
                self.saving.remove(&id);
                self.store.set_state(&id, state);
                self.status = message;
                // Its history changed: what is cached or shown is fetched again.
                self.store.uncache(&id);
                if self.preview.letter.as_ref().and_then(|l| l.id.as_ref()) == Some(&id) {
                    self.preview.letter = None;
                }
                if let Some(d) = self
                    .detail
                    .letter
                    .as_mut()
                    .filter(|d| d.id.as_ref() == Some(&id))
                {
                    d.state = state;
                    if self.screen == Screen::Detail {
                        return vec![self.fetch(id)];
                    }
                }
            }
            Event::Replayed {
                id,
                key,
                replay_id,
                topic,
            } => self.store.replayed(&id, key.as_deref(), &replay_id, &topic),
            Event::Notice(n) => self.status = n,
            Event::Clock(ms) => {
                self.now_ms = ms;
                self.store.tick(ms);
                if self.screen == Screen::Triage
                    && self.triage.of != self.store.len()
                    && ms - self.triage.ms >= 1000
                {
                    self.refresh_groups();
                }
            }
            Event::Retention(ms) => self.retention_ms = ms.filter(|r| *r >= 0),
            e @ (Event::TransformLoaded(_) | Event::TransformPreview { .. }) => {
                return self.on_transform_event(e);
            }
            _ => {}
        }
        Vec::new()
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
