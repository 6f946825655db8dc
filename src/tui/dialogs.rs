//! What keys and events do while a dialog is open: the filter line (checked as it is
//! typed), the replay and resolve confirmations, and the edit review.

use super::app::{Action, App, Dialog, Effect, Screen};
use crate::engine::read::filter::Filter;

impl App {
    /// The plan of the replay the `Planning` dialog waits for opens its confirmation;
    /// a plan for another letter (the dialog was left) is dropped.
    pub(super) fn planned(&mut self, plan: Box<crate::engine::write::plan::ReplayPlan>) {
        let id = match &self.dialog {
            Some(Dialog::Planning(id)) if plan.letter_id == id.to_string() => id.clone(),
            _ => return,
        };
        let topic = plan.topic.clone();
        let confirming = self.production;
        let changes = self.edit_changes(&plan);
        // A binary format shows decoded: decoded here, once, not on every frame.
        let decoded =
            plan.value
                .as_deref()
                .and_then(|v| match self.decoders.decode(v, Some(&plan.topic)) {
                    crate::engine::decoders::Attempt::Decoded(s) => {
                        Some((s.format, s.value.to_string()))
                    }
                    _ => None,
                });
        self.dialog = Some(Dialog::ConfirmReplay {
            plan,
            id,
            topic,
            changes,
            decoded,
            typed: String::new(),
            confirming,
        });
    }

    /// Applies `action` to the open `dialog`.
    pub(super) fn update_dialog(&mut self, dialog: Dialog, action: Action) -> Vec<Effect> {
        match (dialog, action) {
            (_, Action::Back) => self.status = "cancelled".into(),
            (Dialog::Filter { mut input, .. }, Action::Input(c)) => {
                input.push(c);
                let error = Filter::parse(&input, self.now_ms).err();
                self.dialog = Some(Dialog::Filter { input, error });
            }
            (Dialog::Filter { mut input, .. }, a @ (Action::Backspace | Action::ClearInput)) => {
                if matches!(a, Action::ClearInput) {
                    input.clear();
                } else {
                    input.pop();
                }
                let error = Filter::parse(&input, self.now_ms).err();
                self.dialog = Some(Dialog::Filter { input, error });
            }
            (Dialog::Filter { input, .. }, Action::Submit) => {
                return match Filter::parse(&input, self.now_ms) {
                    Err(e) => {
                        self.dialog = Some(Dialog::Filter {
                            input,
                            error: Some(e),
                        });
                        Vec::new()
                    }
                    Ok(_) => {
                        self.screen = Screen::List;
                        self.apply_filter(input.trim().to_string())
                    }
                };
            }
            (
                d @ Dialog::ConfirmReplay { .. },
                a @ (Action::Input(_)
                | Action::Backspace
                | Action::ClearInput
                | Action::NextTab
                | Action::PrevTab
                | Action::Submit),
            ) => return self.confirm_replay(d, a),
            (Dialog::EditInvalid { text, .. }, Action::Input('e') | Action::Submit) => {
                return self.start_edit(Some(text));
            }
            (
                Dialog::ReviewEdit {
                    id, text, encoded, ..
                },
                Action::Submit | Action::Input('y'),
            ) => {
                self.status = format!("keeping the edit of {id}…");
                let value = encoded.unwrap_or_else(|| text.into_bytes());
                self.edits.insert(id.clone(), value.clone());
                self.edit_serial += 1;
                self.saving.insert(id.clone());
                return vec![Effect::SaveEdit { id, value }];
            }
            (Dialog::ConfirmReplayMany(ids), Action::Submit) => {
                self.status = format!("replaying {} marked letter(s)…", ids.len());
                self.marked.clear();
                return vec![Effect::ReplayMany(ids)];
            }
            (Dialog::ConfirmReplayGroup { query, only }, Action::Submit) => {
                self.status = format!("replaying {} letter(s) of {query}…", only.len());
                return vec![Effect::ReplayGroup { query, only }];
            }
            (Dialog::ConfirmResolve(id), Action::Submit | Action::Input('y')) => {
                self.status = format!("resolving {id}…");
                return vec![Effect::Resolve(id)];
            }
            (Dialog::Profiles { selected }, a) => return self.update_profiles(selected, a),
            (Dialog::Transform(p), a) => return self.update_transform(*p, a),
            (Dialog::ConfirmTransform { scope, expr, .. }, Action::Submit) => {
                self.status = format!("replaying {} transformed by {expr}…", scope.describe());
                if matches!(scope, super::state::TransformScope::Marked(_)) {
                    self.marked.clear();
                }
                return vec![Effect::ReplayTransformed { scope, expr }];
            }
            (d, _) => self.dialog = Some(d),
        }
        Vec::new()
    }

    /// Typing, switching fields and confirming in the replay dialog `d`.
    fn confirm_replay(&mut self, mut d: Dialog, action: Action) -> Vec<Effect> {
        let Dialog::ConfirmReplay {
            id,
            topic,
            typed,
            confirming,
            ..
        } = &mut d
        else {
            return Vec::new();
        };
        let field = if *confirming {
            &mut *typed
        } else {
            &mut *topic
        };
        match action {
            Action::Input(c) => field.push(c),
            Action::Backspace => {
                field.pop();
            }
            Action::ClearInput => field.clear(),
            Action::NextTab | Action::PrevTab => *confirming = self.production && !*confirming,
            Action::Submit if topic.trim().is_empty() => self.status = "name a target topic".into(),
            Action::Submit if self.production && typed != topic => {
                self.status = format!("type '{topic}' to confirm a replay in production");
                *confirming = true;
            }
            Action::Submit => {
                self.status = format!("replaying {id} to '{topic}'…");
                return vec![Effect::Replay {
                    id: id.clone(),
                    topic: topic.clone(),
                }];
            }
            _ => {}
        }
        self.dialog = Some(d);
        Vec::new()
    }
}
