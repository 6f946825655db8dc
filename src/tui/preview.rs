//! The preview's state: on wide terminals (≥ [`PREVIEW_MIN_COLS`] columns) the list
//! shows the selected letter's error and payload beside it, following the cursor
//! (`v` toggles it; `preview_pane` draws it).
//!
//! Letters come from the store's cache, else from one fetch at a time: while a fetch
//! is out, moving the cursor only records where it is, and the letter under the cursor
//! when the fetch returns is fetched next. Scrolling fast never queues a fetch per row.

use super::action::Effect;
use super::app::{App, PREVIEW_MIN_COLS, Screen};

impl App {
    /// True when the list screen shows the preview now.
    pub fn preview_shown(&self) -> bool {
        self.preview.on && self.cols >= PREVIEW_MIN_COLS && self.screen == Screen::List
    }

    /// Turns the preview on or off.
    pub(super) fn toggle_preview(&mut self) {
        self.preview.on = !self.preview.on;
        self.status = if !self.preview.on {
            "preview off (v shows it)".to_string()
        } else if self.cols < PREVIEW_MIN_COLS {
            format!(
                "preview on from {PREVIEW_MIN_COLS} columns (this terminal has {})",
                self.cols
            )
        } else {
            "preview on".to_string()
        };
    }

    /// A fetch for the preview ended (with a letter or an error).
    pub(super) fn preview_fetch_ended(&mut self) {
        self.preview.in_flight = None;
    }

    /// Brings the preview to the selected letter: from the cache at once, else by a
    /// fetch when none is out.
    pub(super) fn sync_preview(&mut self) -> Vec<Effect> {
        if !self.preview_shown() {
            return Vec::new();
        }
        let Some(id) = self.selected_id() else {
            self.preview.letter = None;
            return Vec::new();
        };
        if self.preview.letter.as_ref().and_then(|l| l.id.as_ref()) == Some(&id) {
            return Vec::new();
        }
        let cached = self
            .position(self.list.selected)
            .and_then(|p| self.store.cached(p))
            .cloned();
        if let Some(mut l) = cached {
            self.store.settle(&mut l);
            self.preview.letter = Some(l);
            return Vec::new();
        }
        let failed = self
            .detail
            .fetching
            .as_ref()
            .is_some_and(|f| f.id == id && f.failed.is_some());
        if self.preview.in_flight.is_some() || failed {
            return Vec::new();
        }
        self.preview.in_flight = Some(id.clone());
        vec![self.fetch(id)]
    }
}
