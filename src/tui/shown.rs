//! The letter on screen (the open one, or the preview's) decoded once: its key and
//! payload (an edit kept with it in place of the value) are decoded when the letter
//! or its edit changes, not on every frame.

use super::app::{App, Screen};
use crate::engine::decoders::Registry;
use crate::engine::model::conventions::quote_bytes;
use crate::engine::read::decode::{DEFAULT_CAP, Decoded, decode};
use crate::engine::{DeadLetter, LetterId};

/// A letter's key and payload, decoded for display.
#[derive(Debug)]
pub struct Shown {
    /// The letter.
    pub id: Option<LetterId>,
    /// The app's edit serial when decoded (a new edit decodes again).
    serial: u64,
    /// The key as shown: decoded with its format, or quoted bytes.
    pub key: String,
    /// The payload is the kept edit rather than the letter's value.
    pub edited: bool,
    /// The payload (the edit, when there is one).
    pub payload: Decoded,
}

impl Shown {
    /// Decodes `l`'s key and `edit` (or else its value).
    pub fn of(reg: &Registry, l: &DeadLetter, edit: Option<&[u8]>) -> Shown {
        // A key in a binary format (a framed Avro key, …) shows decoded, with its format.
        let key = match l.key.as_deref() {
            None => "(null)".to_string(),
            Some(k) => match reg.decode(k, None) {
                crate::engine::decoders::Attempt::Decoded(s) => {
                    format!("{} ({})", s.value, s.format)
                }
                _ => quote_bytes(k),
            },
        };
        let payload = decode(
            reg,
            edit.or(l.value.as_deref()),
            l.source.topic.as_deref(),
            DEFAULT_CAP,
        );
        Shown {
            id: l.id.clone(),
            serial: 0,
            key,
            edited: edit.is_some(),
            payload,
        }
    }
}

impl App {
    /// The letter the screen shows now: the open one, or the preview's.
    fn on_screen(&self) -> Option<&DeadLetter> {
        let selected = self.selected_id();
        match self.screen {
            Screen::Detail => self.detail.as_ref().filter(|d| d.id == selected),
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
            .shown
            .as_ref()
            .is_some_and(|s| s.id == l.id && s.serial == self.edit_serial);
        if fresh {
            return;
        }
        let edit = l.id.as_ref().and_then(|id| self.edits.get(id));
        let mut s = Shown::of(&self.decoders, l, edit.map(Vec::as_slice));
        s.serial = self.edit_serial;
        self.shown = Some(s);
    }

    /// `l` decoded, when it is the letter decoded last.
    pub fn shown_for(&self, l: &DeadLetter) -> Option<&Shown> {
        self.shown
            .as_ref()
            .filter(|s| s.id == l.id && s.serial == self.edit_serial)
    }
}
