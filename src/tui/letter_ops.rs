//! What the open letter offers beyond reading it: editing its payload (checked and
//! diffed before it is kept), copying it, and the request to highlight it.

use super::app::{App, Dialog, Effect};
use crate::engine::LetterId;
use crate::engine::decoders::Registry;
use crate::engine::write::plan::ReplayPlan;

impl App {
    /// Opens the editor on the open letter's value (or its kept edit, or `retry` text).
    pub(super) fn start_edit(&mut self, retry: Option<String>) -> Vec<Effect> {
        if self.write_refused("edit") {
            return Vec::new();
        }
        let Some(l) = self.open_letter() else {
            self.status = format!(
                "open the letter first ({}), then {} to edit",
                self.key("open"),
                self.key("edit")
            );
            return Vec::new();
        };
        let Some(id) = l.id.clone() else {
            return Vec::new();
        };
        let original = l.value.clone().unwrap_or_default();
        let current = self.edits.get(&id).cloned().unwrap_or(original);
        let Some((shown, json)) = editable(&self.decoders, &current, l.source.topic.as_deref())
        else {
            self.status = "binary payloads cannot be edited as text".into();
            return Vec::new();
        };
        let text = retry.unwrap_or(shown);
        vec![Effect::Edit { id, text, json }]
    }

    pub(super) fn edited(&mut self, id: LetterId, result: Result<String, String>) -> Vec<Effect> {
        let text = match result {
            Ok(t) => t,
            Err(e) => {
                self.status = e;
                return Vec::new();
            }
        };
        let Some(l) = self
            .detail
            .letter
            .as_ref()
            .filter(|d| d.id.as_ref() == Some(&id))
        else {
            return Vec::new();
        };
        let original = l.value.clone().unwrap_or_default();
        let topic = l.source.topic.clone();
        let structured = matches!(
            self.decoders.decode(&original, topic.as_deref()),
            crate::engine::decoders::Attempt::Decoded(_)
        );
        let json = structured || serde_json::from_slice::<serde_json::Value>(&original).is_ok();
        if let Some(error) = super::editor::invalid_json(&text, json) {
            self.dialog = Some(Dialog::EditInvalid { id, text, error });
            return Vec::new();
        }
        // A binary format is written back under its schema: a mismatch is refused here.
        let encoded = if structured {
            let value = serde_json::from_str(&text).unwrap_or_default();
            let reg = self.decoders.clone();
            match crate::engine::decoders::encode::reencode(
                &original,
                &value,
                &reg,
                topic.as_deref(),
                reg.schemas.wants_latest(),
            ) {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    self.dialog = Some(Dialog::EditInvalid {
                        id,
                        text,
                        error: error.message,
                    });
                    return Vec::new();
                }
            }
        } else if json && !original.trim_ascii_end().contains(&b'\n') {
            // One-line JSON is sent as one line, every token as the editor showed it.
            crate::engine::model::json_text::compact(&text).map(String::into_bytes)
        } else {
            None
        };
        let current = self.edits.get(&id).unwrap_or(&original);
        let before = editable(&self.decoders, current, topic.as_deref())
            .map(|(t, _)| t)
            .unwrap_or_default();
        if before == text {
            self.status = "no change".into();
            return Vec::new();
        }
        let diff = super::editor::diff(&before, &text);
        self.dialog = Some(Dialog::ReviewEdit {
            id,
            text,
            diff,
            encoded,
        });
        Vec::new()
    }

    /// The lines an edited plan's payload changes in the open letter's original
    /// (`-` and `+`, on the pretty JSON the editor showed); empty when not edited.
    pub(super) fn edit_changes(&self, plan: &ReplayPlan) -> Vec<(char, String)> {
        let Some(l) = self.detail.letter.as_ref().filter(|d| {
            plan.edited && d.id.as_ref().map(LetterId::to_string).as_ref() == Some(&plan.letter_id)
        }) else {
            return Vec::new();
        };
        let topic = l.source.topic.as_deref();
        let text = |b: Option<&[u8]>| {
            editable(&self.decoders, b.unwrap_or_default(), topic)
                .map(|(t, _)| t)
                .unwrap_or_default()
        };
        super::editor::diff(&text(l.value.as_deref()), &text(plan.value.as_deref()))
            .into_iter()
            .filter(|(c, _)| *c != ' ')
            .collect()
    }

    pub(super) fn copy(&mut self, whole: bool) -> Vec<Effect> {
        let Some(l) = self.open_letter() else {
            self.status = format!("open the letter first ({}), then copy", self.key("open"));
            return Vec::new();
        };
        // A profile's mandatory redaction applies to what leaves through the clipboard.
        let redacted;
        let l = match &self.redact {
            Some(r) => {
                let mut c = l.clone();
                r.letter(&mut c, &self.decoders);
                redacted = c;
                &redacted
            }
            None => l,
        };
        let (what, text) = if whole {
            let json = serde_json::to_string_pretty(&crate::engine::export::json::LetterJson::of(
                l,
                &self.decoders,
            ))
            .unwrap_or_default();
            ("letter as JSON", json)
        } else {
            // A binary format copies as its decoded JSON; other bytes as they are.
            let decoded = l.value.as_deref().and_then(|v| {
                match self.decoders.decode(v, l.source.topic.as_deref()) {
                    crate::engine::decoders::Attempt::Decoded(s) => {
                        serde_json::to_string_pretty(&s.value).ok()
                    }
                    _ => None,
                }
            });
            let text = match (decoded, l.value.as_deref()) {
                (Some(json), _) => json,
                (None, Some(v)) => String::from_utf8(v.to_vec())
                    .unwrap_or_else(|_| crate::engine::model::encoding::EncodedBytes::of(v).data),
                (None, None) => String::new(),
            };
            ("payload", text)
        };
        vec![Effect::Copy {
            what: what.into(),
            text,
        }]
    }
}

/// The text an editor gets for `bytes` and whether it must stay JSON: a binary
/// format's decoded value pretty-printed, a JSON payload laid out with its tokens as
/// written (see [`crate::engine::model::json_text`]), other text as it is; None for
/// bytes that are neither.
fn editable(decoders: &Registry, bytes: &[u8], topic: Option<&str>) -> Option<(String, bool)> {
    if let crate::engine::decoders::Attempt::Decoded(s) = decoders.decode(bytes, topic) {
        return Some((
            serde_json::to_string_pretty(&s.value).unwrap_or_default(),
            true,
        ));
    }
    // JSON text laid out, its tokens as written (a parse would respell numbers).
    if let Some(p) = std::str::from_utf8(bytes)
        .ok()
        .and_then(crate::engine::model::json_text::pretty)
    {
        return Some((p, true));
    }
    std::str::from_utf8(bytes)
        .ok()
        .map(|t| (t.to_string(), false))
}

#[cfg(test)]
#[path = "edit_tests.rs"]
mod tests;
