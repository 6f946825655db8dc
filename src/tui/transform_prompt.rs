//! The transform prompt (`|` on a triage group or on marked letters): a jq expression
//! typed, checked at every keystroke (a mistake is marked at its column, as the filter
//! line does), previewed by the runner off the UI task on the scope's letters (the
//! counts over all of them, the changes of the first three), then confirmed in a
//! dialog that names the expression and the counts; the replay sends exactly the
//! letters counted when the prompt opened, each made by the expression once.

use super::action::{Effect, Event};
use super::app::{Action, App, Dialog, Screen};
use super::state::{TransformPrompt, TransformScope};
use crate::engine::transform::Jq;

impl App {
    /// Opens the prompt on the selected triage group, or on the marked letters.
    pub(super) fn open_transform(&mut self) -> Vec<Effect> {
        let scope = if self.screen == Screen::Triage {
            let Some(query) = self
                .triage
                .groups
                .get(self.triage.selected)
                .map(|g| g.query())
            else {
                return Vec::new();
            };
            let only = std::sync::Arc::new(self.matching_rows(&query));
            TransformScope::Group { query, only }
        } else if !self.marked.is_empty() {
            TransformScope::Marked(self.marked.iter().cloned().collect())
        } else {
            self.status = format!(
                "a transform fixes a group ({} then {}) or marked letters ({})",
                self.key("triage"),
                self.key("transform"),
                self.key("mark")
            );
            return Vec::new();
        };
        if scope.is_empty() || self.write_refused("transform") {
            return Vec::new();
        }
        self.dialog = Some(Dialog::Transform(Box::new(TransformPrompt {
            scope: scope.clone(),
            input: String::new(),
            error: None,
            generation: 0,
            loaded: None,
            preview: None,
            stale: false,
        })));
        vec![Effect::LoadTransform(scope)]
    }

    /// A key in the prompt.
    pub(super) fn update_transform(&mut self, mut p: TransformPrompt, a: Action) -> Vec<Effect> {
        match a {
            Action::Input(c) => p.input.push(c),
            Action::Backspace => {
                p.input.pop();
            }
            Action::ClearInput => p.input.clear(),
            Action::Submit => return self.submit_transform(p),
            _ => {
                self.dialog = Some(Dialog::Transform(Box::new(p)));
                return Vec::new();
            }
        }
        let effects = ask_preview(&mut p);
        self.dialog = Some(Dialog::Transform(Box::new(p)));
        effects
    }

    fn submit_transform(&mut self, p: TransformPrompt) -> Vec<Effect> {
        let counted = match (&p.error, &p.preview, p.stale) {
            _ if p.input.trim().is_empty() => Err("type a jq expression, e.g. .price |= -."),
            (Some(_), _, _) => Err("the expression does not compile"),
            (None, Some(Ok(preview)), false) => Ok(preview.clone()),
            _ => Err("wait for the preview of this expression"),
        };
        match counted {
            Ok(preview) if preview.changed + preview.unchanged == 0 => {
                self.status = "the expression fails for every letter: nothing to replay".into();
                self.dialog = Some(Dialog::Transform(Box::new(p)));
            }
            Ok(preview) => {
                self.dialog = Some(Dialog::ConfirmTransform {
                    scope: p.scope,
                    expr: p.input,
                    preview: Box::new(preview),
                    skipped: p.loaded.map_or(0, |(_, s)| s),
                });
            }
            Err(why) => {
                self.status = why.into();
                self.dialog = Some(Dialog::Transform(Box::new(p)));
            }
        }
        Vec::new()
    }

    /// The prompt's letters loaded, or a preview of its expression.
    pub(super) fn on_transform_event(&mut self, event: Event) -> Vec<Effect> {
        let Some(Dialog::Transform(p)) = &mut self.dialog else {
            return Vec::new();
        };
        match event {
            Event::TransformLoaded(Ok(n)) => {
                p.loaded = Some(n);
                return ask_preview(p);
            }
            Event::TransformLoaded(Err(e)) => {
                p.preview = Some(Err(e));
                p.stale = false;
            }
            Event::TransformPreview {
                generation,
                preview,
            } if generation == p.generation => {
                p.preview = Some(preview);
                p.stale = false;
            }
            _ => {}
        }
        Vec::new()
    }
}

/// Checks the prompt's expression and, when it compiles and the letters are loaded,
/// asks for its preview under a new generation.
fn ask_preview(p: &mut TransformPrompt) -> Vec<Effect> {
    p.error = match p.input.trim().is_empty() {
        true => None,
        false => Jq::value(&p.input).err(),
    };
    p.stale = true;
    // Every change of the expression makes older previews stale, shown or not.
    p.generation += 1;
    if p.error.is_some() || p.input.trim().is_empty() || p.loaded.is_none() {
        return Vec::new();
    }
    vec![Effect::PreviewTransform {
        generation: p.generation,
        expr: p.input.clone(),
    }]
}
