//! Switching profile inside the TUI (`P`, as k9s switches context): a dialog lists the
//! config file's profiles with their DLQs; `enter` ends this DLQ's session and the
//! command line opens the chosen profile's DLQ in its place (its own read-only,
//! production and redaction settings, schemas and ledger).

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;

use super::app::{Action, App, Dialog, Effect};
use super::theme::Theme;

pub use super::settings::ProfileRow;

impl App {
    /// Opens the picker on the current profile (or says there is none to pick).
    pub(super) fn pick_profile(&mut self) {
        let rows = &self.settings.profiles;
        if rows.is_empty() {
            self.status = "no profiles in the config file (see `morgue profiles`)".into();
            return;
        }
        let selected = rows
            .iter()
            .position(|r| Some(&r.name) == self.profile.as_ref())
            .unwrap_or(0);
        self.dialog = Some(Dialog::Profiles { selected });
    }

    /// Moves in the picker, or switches to the selected profile.
    pub(super) fn update_profiles(&mut self, selected: usize, action: Action) -> Vec<Effect> {
        let last = self.settings.profiles.len().saturating_sub(1);
        let selected = match action {
            Action::Down | Action::Input('j') => (selected + 1).min(last),
            Action::Up | Action::Input('k') => selected.saturating_sub(1),
            Action::Submit => {
                if let Some(r) = self.settings.profiles.get(selected) {
                    if Some(&r.name) == self.profile.as_ref() {
                        self.status = format!("already on profile {}", r.name);
                    } else {
                        self.status = format!("switching to profile {}…", r.name);
                        self.switch_to = Some(r.name.clone());
                        self.quit = true;
                    }
                }
                return Vec::new();
            }
            _ => selected,
        };
        self.dialog = Some(Dialog::Profiles { selected });
        Vec::new()
    }
}

/// The picker's lines.
pub(super) fn lines(app: &App, selected: usize, theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for (i, r) in app.settings.profiles.iter().enumerate() {
        // A marker first: the box trims a line's leading spaces.
        let current = if Some(&r.name) == app.profile.as_ref() {
            "●"
        } else {
            "○"
        };
        let text = format!("{current} {:<16} {}", r.name, r.dlq);
        out.push(if i == selected {
            Line::styled(text, theme.selected())
        } else {
            Line::from(text)
        });
    }
    out.push(Line::from(""));
    out.push(Line::styled(
        "j/k: choose   enter: switch (this DLQ closes)   esc: stay   ● current",
        theme.pick(
            Style::default()
                .fg(Color::DarkGray)
                .add_modifier(Modifier::DIM),
        ),
    ));
    out
}
