//! The preview's state: on wide terminals (≥ [`PREVIEW_MIN_COLS`] columns) the list
//! shows the selected letter's error and payload beside it, following the cursor
//! (`v` toggles it; `preview_pane` draws it).
//!
//! Letters come from the store's cache, else from one fetch at a time: while a fetch
//! is out, moving the cursor only records where it is, and the letter under the cursor
//! when the fetch returns is fetched next. Scrolling fast never queues a fetch per row.

use super::action::Effect;
use super::app::{App, Screen};
use crate::engine::model::letter::{DeadLetter, LetterId};

/// Terminals at least this wide show the preview beside the list.
pub const PREVIEW_MIN_COLS: u16 = 140;

/// The preview's state.
#[derive(Debug)]
pub struct Preview {
    /// Shown when the terminal is wide enough (`v` toggles).
    pub on: bool,
    /// The letter shown (the selected one once fetched).
    pub letter: Option<DeadLetter>,
    /// The letter being fetched for it.
    in_flight: Option<LetterId>,
}

impl Default for Preview {
    fn default() -> Self {
        Preview {
            on: true,
            letter: None,
            in_flight: None,
        }
    }
}

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
            .position(self.selected)
            .and_then(|p| self.store.cached(p))
            .cloned();
        if let Some(mut l) = cached {
            self.store.settle(&mut l);
            self.preview.letter = Some(l);
            return Vec::new();
        }
        let failed = self
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
