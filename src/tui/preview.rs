//! The preview beside the list on wide terminals (≥ [`PREVIEW_MIN_COLS`] columns):
//! the selected letter's error and payload, following the cursor. `v` toggles it.
//!
//! Letters come from the store's cache, else from one fetch at a time: while a fetch
//! is out, moving the cursor only records where it is, and the letter under the cursor
//! when the fetch returns is fetched next. Scrolling fast never queues a fetch per row.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::action::Effect;
use super::app::{App, Screen};
use super::view::{Theme, error_line};
use crate::engine::model::letter::{DeadLetter, LetterId};
use crate::engine::read::fingerprint::first_app_frame;

/// Terminals at least this wide show the preview beside the list.
pub const PREVIEW_MIN_COLS: u16 = 140;
/// The list keeps at least this many columns (UUID keys stay whole).
const LIST_MIN_COLS: u16 = 92;

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

/// Splits the list screen's `area` into the list and the preview.
pub fn split(area: Rect) -> (Rect, Rect) {
    let list = (area.width * 3 / 5).max(LIST_MIN_COLS).min(area.width);
    let preview = Rect {
        x: area.x + list,
        width: area.width - list,
        ..area
    };
    (
        Rect {
            width: list,
            ..area
        },
        preview,
    )
}

/// Draws the preview of the selected letter.
pub fn draw(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let block = Block::default()
        .borders(Borders::LEFT)
        .title(" preview (v hides) ");
    let selected = app.selected_id();
    let lines = match app.preview.letter.as_ref().filter(|l| l.id == selected) {
        Some(l) => lines(l, theme),
        None if selected.is_some() => vec![Line::from(app.fetch_line(selected.as_ref()))],
        None => Vec::new(),
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// The error (class and message, first application frame, replay outcome), then the payload.
fn lines(l: &DeadLetter, theme: Theme) -> Vec<Line<'static>> {
    let fail = &l.failure;
    let bold = theme.pick(Style::default().add_modifier(Modifier::BOLD));
    let mut out = vec![Line::styled(
        error_line(fail.exception_class.as_deref(), fail.message.as_deref()),
        theme.pick(Style::default().fg(Color::Red)).patch(bold),
    )];
    if let Some(frame) = fail.stack_trace.as_deref().and_then(first_app_frame) {
        out.push(Line::from(format!("  {frame}")));
    }
    let src = &l.source;
    if let (Some(t), Some(p), Some(o)) = (&src.topic, src.partition, src.offset) {
        let attempts = fail.attempts.map(|a| format!(", attempts {a}"));
        out.push(Line::from(format!(
            "from {t}:{p}@{o}{}",
            attempts.unwrap_or_default()
        )));
    }
    if let Some(o) = &l.outcome {
        out.push(Line::styled(
            o.text(),
            theme.pick(Style::default().fg(Color::Yellow)),
        ));
    }
    out.push(Line::from(""));
    out.extend(super::detail::payload(l, None, None, theme));
    out
}
