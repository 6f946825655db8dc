//! The letter on screen (the open one, or the preview's) decoded once: its key and
//! payload (an edit kept with it in place of the value) are decoded when the letter
//! or its edit changes, not on every frame.

use super::app::{App, Screen, Shown};
use crate::engine::DeadLetter;

impl App {
    /// The letter the screen shows now: the open one, or the preview's.
    fn on_screen(&self) -> Option<&DeadLetter> {
        let selected = self.selected_id();
        match self.screen {
            Screen::Detail => self.detail.letter.as_ref().filter(|d| d.id == selected),
            Screen::List if self.preview_shown() => {
                self.preview.letter.as_ref().filter(|l| l.id == selected)
            }
            _ => None,
        }
    }

    /// Decodes the letter on screen when it (or its edit) changed since last time.
    pub(super) fn sync_shown(&mut self) {
        let Some(l) = self.on_screen() else {
            return;
        };
        let fresh = self
            .detail
            .shown
            .as_ref()
            .is_some_and(|s| s.id == l.id && s.serial == self.edit_serial);
        if fresh {
            return;
        }
        let edit = l.id.as_ref().and_then(|id| self.edits.get(id));
        let mut s = Shown::of(&self.decoders, l, edit.map(Vec::as_slice));
        s.serial = self.edit_serial;
        self.detail.shown = Some(s);
    }

    /// `l` decoded, when it is the letter decoded last.
    pub fn shown_for(&self, l: &DeadLetter) -> Option<&Shown> {
        self.detail
            .shown
            .as_ref()
            .filter(|s| s.id == l.id && s.serial == self.edit_serial)
    }
}
