//! Draws the preview beside the list (its state: `preview`): the selected letter's
//! error, first application frame, replay outcome, then its payload.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::App;
use super::state::Shown;
use super::theme::Theme;
use super::words::error_line;
use crate::engine::model::letter::DeadLetter;
use crate::engine::read::fingerprint::first_app_frame;

/// The list keeps at least this many columns: TIME, STATE and SIZE, a source cut to 8,
/// a whole UUID key, the least ERROR, and room for a `failed-again` STATE.
pub(super) const LIST_MIN_COLS: u16 = 106;

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
        Some(l) => lines(app, l, theme),
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
fn lines(app: &App, l: &DeadLetter, theme: Theme) -> Vec<Line<'static>> {
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
    let owned;
    let shown = match app.shown_for(l) {
        Some(s) => s,
        None => {
            owned = Shown::of(&app.decoders, l, None);
            &owned
        }
    };
    out.extend(super::detail::payload(
        &app.settings.keymap,
        l,
        shown,
        None,
        theme,
    ));
    out
}
