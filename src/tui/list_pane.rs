//! The list of letters. Only the rows on screen are built, and the columns are sized
//! from everything loaded: keys up to 40 characters (UUIDs included) and source topics up to 24
//! are shown whole while ERROR keeps at least [`ERROR_MIN`] columns; wider terminals
//! add the reason, the letter's id (what `morgue show` takes) and the attempts. A `!`
//! before the time flags a letter that retention deletes within a day.
//!
//! On a narrow terminal the columns give way in this order, KEY and ERROR staying:
//! the source shrinks (to 8), the key shrinks (to 12, cut in the middle so that its
//! start and end stay), SIZE goes, SOURCE goes, TIME keeps only the time of day, the
//! key shrinks to 10. ERROR keeps at least [`ERROR_FLOOR`] columns, and when it is too
//! narrow for the class and 15 characters of the message it shows the message alone.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Row, Table, Wrap};

use super::app::{App, DELETION_WARNING_MS};
use super::theme::Theme;
use super::words::{error_cell, time};
use crate::engine::LetterState;
use crate::engine::model::text::clip;
use crate::engine::read::index::IndexRow;

/// ERROR gets at least this many columns before optional columns are added.
const ERROR_MIN: u16 = 24;
/// ERROR keeps this many however narrow the terminal (columns give way first).
const ERROR_FLOOR: u16 = 15;
/// Optional columns are added only while ERROR keeps this many.
const ERROR_COMFORT: u16 = 40;
/// Longest key and source shown whole.
const KEY_MAX: usize = 40;
const SOURCE_MAX: usize = 24;
/// TIME (with the mark: date and time, or the time of day alone), STATE, SIZE.
const TIME_W: u16 = 15;
const TIME_SHORT_W: u16 = 9;
const STATE_W: u16 = 9;
const SIZE_W: u16 = 6;
const REASON_W: u16 = 21;
const ATTEMPTS_W: u16 = 3;

/// Which columns are drawn, and how wide the sized ones are.
#[derive(Debug, PartialEq, Eq)]
struct Columns {
    time: u16,
    /// 0: not drawn.
    source: u16,
    key: u16,
    error: u16,
    reason: bool,
    id: Option<u16>,
    attempts: bool,
    /// STATE: 9, or wider when a row on screen has a longer state (`failed-again`).
    state: u16,
    size: bool,
}

impl Columns {
    /// Fits the columns into `width` for rows whose widest source, key, id and state are given.
    fn fit(width: u16, source: usize, key: usize, id: usize, state: usize) -> Columns {
        let clamp = |n: usize, lo: usize, hi: usize| n.clamp(lo, hi) as u16;
        let mut c = Columns {
            time: TIME_W,
            source: clamp(source, 6, SOURCE_MAX),
            key: clamp(key, 3, KEY_MAX),
            error: 0,
            reason: false,
            id: None,
            attempts: false,
            state: clamp(state, usize::from(STATE_W), 16),
            size: true,
        };
        // What the drawn columns and their one-column gaps leave to ERROR.
        let left = |c: &Columns| {
            let drawn = [
                c.time,
                c.source,
                c.key,
                c.state,
                if c.size { SIZE_W } else { 0 },
            ];
            let used: u16 = drawn.iter().filter(|w| **w > 0).map(|w| w + 1).sum();
            width.saturating_sub(used)
        };
        // Too narrow: the source gives way first (to 8; topic names repeat, and the
        // preview names it in full), then the key (to 12; a key is what a person
        // copies and searches for).
        while left(&c) < ERROR_MIN && c.source > 8 {
            c.source -= 1;
        }
        while left(&c) < ERROR_MIN && c.key > 12 {
            c.key -= 1;
        }
        // Narrower still: whole columns go, so that KEY and ERROR stay.
        for step in 0..4 {
            if left(&c) >= ERROR_FLOOR {
                break;
            }
            match step {
                0 => c.size = false,
                1 => c.source = 0,
                2 => c.time = TIME_SHORT_W,
                _ => c.key = c.key.min(10),
            }
        }
        c.error = left(&c);
        // Then, while ERROR stays comfortable: the reason, the id, the attempts.
        let mut add = |w: u16| {
            let room = c.error > ERROR_COMFORT + w;
            if room {
                c.error -= w + 1;
            }
            room
        };
        let id_w = clamp(id, 2, 24);
        let reason = add(REASON_W);
        let id = reason && add(id_w);
        let attempts = id && add(ATTEMPTS_W);
        (c.reason, c.id, c.attempts) = (reason, id.then_some(id_w), attempts);
        c
    }
}

/// Draws the list pane.
pub fn draw(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    if app.visible_len() == 0 {
        let msg = if !app.caught_up {
            "reading the DLQ…"
        } else if app.filter.is_empty() {
            "The DLQ is empty. New dead letters appear here as they arrive."
        } else {
            "No letter matches the filter. / to change it, / then enter on an empty line to clear it."
        };
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let rows_visible = usize::from(area.height.saturating_sub(1));
    let end = (app.list.scroll + rows_visible).min(app.visible_len());
    // Display index, store position and row of each row on screen, with its texts.
    let shown: Vec<(usize, usize, &IndexRow, String, String)> = (app.list.scroll..end)
        .filter_map(|i| {
            let pos = app.position(i)?;
            let r = app.store.row(pos)?;
            let id = app
                .store
                .id(pos)
                .map(|id| id.to_string())
                .unwrap_or_default();
            Some((i, pos, r, key_text(app, r), id))
        })
        .collect();
    // Sized from everything loaded (so scrolling does not move them), ids from the screen.
    let (key_w, source_w) = app.store.widest();
    let id_w = shown.iter().map(|s| s.4.len()).max().unwrap_or(0);
    let state_w = shown.iter().map(|s| s.2.state.as_str().len()).max();
    let cols = Columns::fit(area.width, source_w, key_w, id_w, state_w.unwrap_or(0));
    let rows = shown.iter().map(|(i, pos, r, key, id)| {
        let marked = !app.marked.is_empty()
            && app
                .store
                .id(*pos)
                .is_some_and(|id| app.marked.contains(&id));
        let when = time(r.dlq_ts_ms);
        let when = match cols.time {
            TIME_W => when,
            // The time of day alone: `11:06:41`.
            _ => when.rsplit(' ').next().unwrap_or_default().to_string(),
        };
        let mut cells: Vec<ratatui::widgets::Cell> =
            vec![format!("{}{}", flag(app, marked, r), when).into()];
        if cols.source > 0 {
            cells.push(
                clip(app.store.topic(r).unwrap_or("?"), cols.source.into())
                    .into_owned()
                    .into(),
            );
        }
        cells.push(cut_middle(key, cols.key).into());
        cells.push(error_cell(app.store.error(r), app.store.said(r).as_deref(), cols.error).into());
        if cols.reason {
            cells.push(r.reason.as_str().into());
        }
        if let Some(w) = cols.id {
            cells.push(clip(id, w.into()).into_owned().into());
        }
        if cols.attempts {
            cells.push(match r.attempts {
                0 => "-".to_string().into(),
                n => n.to_string().into(),
            });
        }
        cells.push(Span::styled(r.state.as_str(), state_style(r.state, theme)).into());
        if cols.size {
            cells.push(size(r.size).into());
        }
        let style = if *i == app.list.selected {
            theme.selected()
        } else {
            Style::default()
        };
        Row::new(cells).style(style)
    });
    let mut widths = vec![Constraint::Length(cols.time)];
    let mut titles = vec!["TIME"];
    if cols.source > 0 {
        widths.push(Constraint::Length(cols.source));
        titles.push("SOURCE");
    }
    widths.extend([Constraint::Length(cols.key), Constraint::Fill(1)]);
    titles.extend(["KEY", "ERROR"]);
    if cols.reason {
        widths.push(Constraint::Length(REASON_W));
        titles.push("REASON");
    }
    if let Some(w) = cols.id {
        widths.push(Constraint::Length(w));
        titles.push("ID");
    }
    if cols.attempts {
        widths.push(Constraint::Length(ATTEMPTS_W));
        titles.push("ATT");
    }
    widths.push(Constraint::Length(cols.state));
    titles.push("STATE");
    if cols.size {
        widths.push(Constraint::Length(SIZE_W));
        titles.push("SIZE");
    }
    let head = Row::new(titles).style(theme.pick(Style::default().add_modifier(Modifier::BOLD)));
    f.render_widget(Table::new(rows, widths).header(head), area);
}

/// `•` for a marked letter, `!` for one that retention deletes within a day.
fn flag(app: &App, marked: bool, r: &IndexRow) -> &'static str {
    let soon = app
        .deleted_at(r.dlq_ts_ms)
        .is_some_and(|at| at - app.now_ms < DELETION_WARNING_MS);
    match (marked, soon) {
        (true, _) => "•",
        (false, true) => "!",
        (false, false) => " ",
    }
}

/// A key in at most `w` columns, cut in the middle (`…`) so that its start and its end
/// stay; two thirds go to the start, where counters and prefixes differ (unlike
/// [`crate::engine::model::text::clip_middle`]'s halves, made for names).
pub(super) fn cut_middle(s: &str, w: u16) -> String {
    // Two thirds for the start (where counters and prefixes differ), a third for the end.
    crate::engine::model::text::clip_ends(s, usize::from(w), |kept| kept - kept / 3).into_owned()
}

/// The key as text: `(null)`, the UTF-8 text, or hex for binary keys.
fn key_text(app: &App, r: &IndexRow) -> String {
    let Some((bytes, more)) = app.store.key(r) else {
        return "(null)".into();
    };
    let more = if more { "…" } else { "" };
    match std::str::from_utf8(&bytes) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s}{more}"),
        _ => format!("0x{}{more}", hex::encode(&bytes)),
    }
}

fn size(n: u32) -> String {
    match n {
        0..1000 => format!("{n}B"),
        1000..1_000_000 => format!("{:.1}K", f64::from(n) / 1e3),
        _ => format!("{:.1}M", f64::from(n) / 1e6),
    }
}

/// The colour of a state.
pub fn state_style(s: LetterState, theme: Theme) -> Style {
    theme.pick(match s {
        LetterState::New => Style::default().fg(Color::Yellow),
        LetterState::Claimed => Style::default().fg(Color::Magenta),
        LetterState::Edited => Style::default().fg(Color::Cyan),
        LetterState::Replaying => Style::default().fg(Color::LightBlue),
        LetterState::Replayed => Style::default().fg(Color::Green),
        LetterState::Resolved => Style::default().fg(Color::DarkGray),
        LetterState::Confirmed => Style::default()
            .fg(Color::Green)
            .add_modifier(Modifier::BOLD),
        LetterState::FailedAgain => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_keys_are_whole_at_120_columns_and_extras_come_with_width() {
        let c = Columns::fit(120, 8, 36, 8, 3);
        assert_eq!((c.source, c.key), (8, 36));
        assert!(c.error >= ERROR_MIN, "{c:?}");
        assert!(!c.reason && c.id.is_none());
        let c = Columns::fit(200, 8, 36, 8, 3);
        assert!(c.reason && c.id == Some(8) && c.attempts, "{c:?}");
        assert!(c.error >= ERROR_COMFORT, "{c:?}");
    }

    #[test]
    fn narrow_terminals_shrink_the_source_then_the_key() {
        let c = Columns::fit(80, 20, 36, 8, 3);
        assert_eq!(c.error, ERROR_MIN, "{c:?}");
        assert_eq!(c.source, 8, "{c:?}");
        assert!(c.key < 36 && c.key >= 12, "{c:?}");
        // Beside the preview the list keeps UUID keys whole, however long the source.
        let beside = Columns::fit(super::super::preview_pane::LIST_MIN_COLS, 24, 36, 8, 12);
        assert_eq!((beside.source, beside.key), (8, 36), "{beside:?}");
        assert!(beside.error >= ERROR_MIN, "{beside:?}");
        // A `failed-again` row on screen widens STATE.
        assert_eq!(Columns::fit(80, 20, 36, 8, 12).state, 12);
        assert_eq!(c.state, STATE_W);
        assert_eq!(clip("6f1c2a9e-3b4d-4e5f", 8), "6f1c2a9…");
        assert_eq!(clip("short", 8), "short");
    }

    #[test]
    fn at_50_columns_key_and_error_stay_and_columns_give_way_in_order() {
        let at = |w| Columns::fit(w, 12, 36, 8, 9);
        // 80: everything drawn, source and key shrunk.
        let c = at(80);
        assert!(c.size && c.source == 8 && c.time == TIME_W, "{c:?}");
        // 60: SIZE went first, then SOURCE.
        let c = at(60);
        assert!(!c.size && c.source == 0 && c.time == TIME_W, "{c:?}");
        assert!(c.error >= ERROR_FLOOR && c.key == 12, "{c:?}");
        // 50: the time of day alone; KEY and ERROR stay.
        let c = at(50);
        assert_eq!((c.time, c.key), (TIME_SHORT_W, 12), "{c:?}");
        assert!(c.error >= ERROR_FLOOR, "{c:?}");
        // The drawn columns and their gaps fit the width.
        let used = c.time + c.key + c.error + c.state + 3;
        assert!(used <= 50, "{c:?} uses {used}");
    }

    #[test]
    fn keys_are_cut_in_the_middle_and_narrow_errors_keep_the_message() {
        let key = "6f1c2a9e-3b4d-4e5f-8a7b-0123456789ab";
        assert_eq!(cut_middle(key, 12), "6f1c2a9e…9ab");
        assert_eq!(cut_middle(key, 12).chars().count(), 12);
        assert_eq!(cut_middle("ORD-1", 12), "ORD-1");
        use super::super::words::error_cell;
        let class = Some("com.acme.ValidationException");
        let said = Some("price must be positive: -#");
        assert_eq!(
            error_cell(class, said, 60),
            "ValidationException: price must be positive: -#"
        );
        assert_eq!(error_cell(class, said, 20), "price must be posit…");
        assert_eq!(error_cell(class, None, 12), "ValidationE…");
    }
}
