//! Drawing the App: a header line, the list (only visible rows are built) or the
//! detail view or the help, a status line, and any dialog on top. Pure: the same App
//! draws the same frame. `NO_COLOR` turns every style off.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Wrap};

use super::app::{App, Dialog, Screen};
use super::detail;
use super::words::time;
use crate::engine::model::text::clip_middle;
use crate::engine::read::overview::group;

pub use super::theme::Theme;

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App, theme: Theme) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(header(app, theme, top.width)), top);
    match app.screen {
        Screen::List if app.preview_shown() => {
            let (list, preview) = super::preview_pane::split(body);
            super::list_pane::draw(f, app, list, theme);
            super::preview_pane::draw(f, app, preview, theme);
        }
        Screen::List => super::list_pane::draw(f, app, body, theme),
        Screen::Detail => detail::draw(f, app, body, theme),
        Screen::Help => help(f, app, body, app.detail.scroll),
        Screen::Triage => triage(f, app, body, theme),
    }
    f.render_widget(Paragraph::new(status(app, theme)), bottom);
    if let Some(d) = &app.dialog {
        dialog(f, app, d, theme);
    }
}

/// The header: what is open on the left, the live state on the right. When the width
/// is short, the left gives way first, in this order: the DLQ's address (its name
/// stays), the retention warning's words, the filter, the word `morgue`, the middle
/// of the name; the live state and `N new` are always shown.
fn header(app: &App, theme: Theme, width: u16) -> Line<'static> {
    let right = Span::styled(
        live_state(app),
        theme.pick(Style::default().fg(live_color(app))),
    );
    let room = usize::from(width).saturating_sub(right.width());
    let bold = theme.pick(Style::default().add_modifier(Modifier::BOLD));
    let ro = Span::styled(
        "READ-ONLY ",
        theme.pick(Style::default().fg(Color::Black).bg(Color::Yellow)),
    );
    let deletion = app
        .store
        .oldest_ms()
        .and_then(|o| app.deleted_at(o))
        .map(|at| {
            let left = at - app.now_ms;
            let style = if left < super::app::DELETION_WARNING_MS {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            };
            (crate::engine::read::overview::age(left), theme.pick(style))
        });
    let filter = theme.pick(Style::default().fg(Color::Cyan));
    // The DLQ's name without its scheme and server: `trades.DLT`.
    let name = app.dlq.rsplit('/').next().unwrap_or(&app.dlq).to_string();
    let count = format!("  {}", count_label(app));
    let mut rest = 0;
    for step in 0..6 {
        // Last: the name cut in the middle to what the rest of the line leaves.
        let name = if step == 5 {
            clip_middle(&name, room.saturating_sub(rest).max(8)).into_owned()
        } else {
            name.clone()
        };
        let mut spans = Vec::new();
        if step < 4 {
            spans.push(Span::styled("morgue ", bold));
        }
        if app.read_only {
            spans.push(ro.clone());
        }
        spans.push(Span::raw(if step < 1 {
            app.dlq.clone()
        } else {
            name.clone()
        }));
        spans.push(Span::raw(count.clone()));
        if let Some((age, style)) = &deletion {
            let words = if step < 2 {
                "  oldest deleted in "
            } else {
                "  gone in "
            };
            spans.push(Span::styled(format!("{words}{age}"), *style));
        }
        if !app.filter.is_empty() && step < 3 {
            spans.push(Span::styled(format!("  /{}", app.filter), filter));
        } else if !app.filter.is_empty() {
            spans.push(Span::styled("  /…", filter));
        }
        let line = Line::from(spans);
        rest = line.width().saturating_sub(name.chars().count());
        if line.width() <= room || step == 5 {
            let wide = line.width() > room;
            let mut spans = line.spans;
            if wide {
                // Still too long: cut the left, keeping its start.
                let text: String = Line::from(spans)
                    .to_string()
                    .chars()
                    .take(room.saturating_sub(1))
                    .collect();
                spans = vec![Span::styled(format!("{text}…"), bold)];
            }
            spans.push(right);
            return Line::from(spans);
        }
    }
    Line::from(right)
}

fn live_color(app: &App) -> Color {
    if app.silent.is_some() {
        Color::Red
    } else {
        Color::Green
    }
}

/// `  live ●  12 new ↑`, `  loading 40%`, `  no answer 7 s`.
fn live_state(app: &App) -> String {
    let state = if let Some((_, since)) = &app.silent {
        format!("  no answer {} s", (app.now_ms - since).max(0) / 1000)
    } else if !app.caught_up {
        let verb = if app.filter.is_empty() {
            "loading"
        } else {
            "searching"
        };
        match app.total.filter(|t| *t > 0) {
            Some(t) => format!("  {verb} {}%", (app.scanned * 100 / t).min(100)),
            None => format!("  {verb}…"),
        }
    } else if app.list.follow {
        "  live ●".to_string()
    } else {
        "  live".to_string()
    };
    if app.list.unseen > 0 {
        let arrow = if app.list.newest_first { '↑' } else { '↓' };
        format!("{state}  {} new {arrow}", group(app.list.unseen as u64))
    } else {
        state
    }
}

/// The header's text at `width` columns, without styles.
#[cfg(test)]
pub(crate) fn header_text_at(app: &App, width: u16) -> String {
    header(app, Theme::of(&app.settings.palette), width).to_string()
}

/// The header's text, without styles, on a wide terminal.
#[cfg(test)]
pub(crate) fn header_text(app: &App) -> String {
    header_text_at(app, u16::MAX)
}

/// `1 letter`, `2,000 letters`.
pub fn plural(n: u64, word: &str) -> String {
    format!("{} {word}{}", group(n), if n == 1 { "" } else { "s" })
}

/// The header's count. Once caught up it is what was read, exact on transactional and
/// compacted topics; while loading, the offset span (`~`) is only an upper bound.
pub(crate) fn count_label(app: &App) -> String {
    let (shown, read) = (app.visible_len() as u64, app.store.len() as u64);
    let estimate = app.total.filter(|t| !app.caught_up && *t > read);
    match (app.filter.is_empty(), app.list.view.is_some(), estimate) {
        (true, _, None) => plural(read, "letter"),
        (true, _, Some(t)) => format!("{} of ~{}", group(read), plural(t, "letter")),
        (false, true, _) => format!("{} of {} match", group(shown), plural(read, "letter")),
        // A payload filter's stream holds only its matches: the total is the offsets'.
        (false, false, _) => match app.total {
            Some(t) => format!("{} of ~{} match", group(shown), group(t)),
            None => format!("{} match", group(shown)),
        },
    }
}

fn status(app: &App, theme: Theme) -> Line<'static> {
    if let Some(Dialog::Filter { input, error }) = &app.dialog {
        let red = theme.pick(Style::default().fg(Color::Red));
        let mut spans = vec![Span::raw("/")];
        // The character the parser stopped at is marked (past the end: the cursor).
        let at = error.as_ref().map(|e| e.pos - 1);
        let chars: Vec<char> = input.chars().collect();
        match at.filter(|&a| a < chars.len()) {
            Some(a) => {
                spans.push(Span::raw(chars[..a].iter().collect::<String>()));
                spans.push(Span::styled(
                    chars[a].to_string(),
                    red.add_modifier(Modifier::REVERSED),
                ));
                spans.push(Span::raw(chars[a + 1..].iter().collect::<String>()));
            }
            None => spans.push(Span::raw(input.clone())),
        }
        spans.push(Span::styled(
            "▏",
            theme.pick(Style::default().fg(Color::Cyan)),
        ));
        if let Some(e) = error {
            spans.push(Span::styled(format!("  at {}: {}", e.pos, e.message), red));
        }
        return Line::from(spans);
    }
    // A notice (a profile that would not open) stays until the next key.
    let text = match &app.notice {
        Some(n) => Span::styled(n.clone(), theme.pick(Style::default().fg(Color::Red))),
        None => Span::raw(app.status.clone()),
    };
    Line::from(vec![
        text,
        Span::styled(
            format!("  {} keys", app.key("help")),
            theme.pick(Style::default().fg(Color::DarkGray)),
        ),
    ])
}

fn triage(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    if app.triage.groups.is_empty() {
        f.render_widget(Paragraph::new("No letters to group yet."), area);
        return;
    }
    // ERROR comes first; the other columns give way in this order: RATE, FIRST,
    // DELETED, LAST, SOURCE.
    let deleted_w = if app.retention_ms.is_some() { 9 } else { 0 };
    let optional = [
        ("SOURCE", 16),
        ("LAST", 14),
        ("DELETED", deleted_w),
        ("FIRST", 14),
        ("RATE", 16),
    ];
    // Drawn in this order (indexes into `optional`).
    const ORDER: [usize; 5] = [0, 3, 1, 4, 2];
    let widths: Vec<u16> = optional.iter().map(|(_, w)| *w).collect();
    // ERROR keeps half the room beside COUNT, at least 24 and at most 40 columns.
    let room = area.width.saturating_sub(9);
    let shown = super::words::give_way(room, (room / 2).clamp(24, 40), &widths);
    let error_w = room
        - widths
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|(w, _)| w + 1)
            .sum::<u16>();
    let visible = usize::from(area.height.saturating_sub(1));
    let skip = app
        .triage
        .selected
        .saturating_sub(visible.saturating_sub(1));
    let rows = app
        .triage
        .groups
        .iter()
        .enumerate()
        .skip(skip)
        .take(visible)
        .map(|(i, g)| {
            let style = if i == app.triage.selected {
                theme.selected()
            } else {
                Style::default()
            };
            // When retention deletes the group's oldest letter (`!` within a day).
            let deleted = app.deleted_at(g.first_ms).map(|at| {
                let left = at - app.now_ms;
                let soon = if left < super::app::DELETION_WARNING_MS {
                    "!"
                } else {
                    " "
                };
                format!("{soon}{}", crate::engine::read::overview::age(left))
            });
            let all = [
                g.topic.clone().unwrap_or_else(|| "?".into()),
                time(g.last_ms),
                deleted.unwrap_or_default(),
                time(g.first_ms),
                crate::engine::read::overview::sparkline(&g.spark),
            ];
            let mut cells = vec![
                group(g.count),
                super::words::error_cell(g.error.as_deref(), g.message.as_deref(), error_w),
            ];
            cells.extend(ORDER.iter().filter(|&&c| shown[c]).map(|&c| all[c].clone()));
            Row::new(cells).style(style)
        });
    let mut widths = vec![Constraint::Length(8), Constraint::Fill(1)];
    let mut titles = vec!["COUNT", "ERROR"];
    for &c in ORDER.iter().filter(|&&c| shown[c]) {
        widths.push(Constraint::Length(optional[c].1));
        titles.push(optional[c].0);
    }
    let head = Row::new(titles).style(theme.pick(Style::default().add_modifier(Modifier::BOLD)));
    f.render_widget(Table::new(rows, widths).header(head), area);
}

fn help(f: &mut Frame, app: &App, area: Rect, scroll: u16) {
    let k = |name| app.key(name);
    let mut lines = vec![Line::from(format!(
        "Keys: the shipped ones with the config file's [keys] ({}/{} scroll, {} or {} closes)",
        k("down"),
        k("up"),
        k("help"),
        k("back")
    ))];
    for (keys, desc) in app.settings.keymap.help() {
        lines.push(Line::from(format!("  {keys:<10} {desc}")));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(
        "Filter: key:ABC*  topic:trades  error:Timeout  reason:expired  state:new",
    ));
    lines.push(Line::from(
        "        header.NAME:v  $.price<0  jq:.price<0  since:15m  /regex/  text  -negate  a or b",
    ));
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn dialog(f: &mut Frame, app: &App, d: &Dialog, theme: Theme) {
    let (title, lines): (&str, Vec<Line>) = match d {
        Dialog::Filter { .. } => return,
        Dialog::Profiles { selected } => {
            ("profiles", super::profiles::lines(app, *selected, theme))
        }
        Dialog::Planning(id) => (
            "replay",
            vec![Line::from(format!("planning the replay of {id}…"))],
        ),
        Dialog::EditInvalid { error, .. } => (
            "edit",
            vec![
                Line::styled(error.clone(), theme.pick(Style::default().fg(Color::Red))),
                Line::from(""),
                Line::from("e or enter: edit again   esc: drop the edit"),
            ],
        ),
        Dialog::ReviewEdit { id, diff, .. } => {
            let mut l = vec![Line::from(format!(
                "Keep this edit of {id}? A replay sends it instead of the original."
            ))];
            let changed: Vec<(char, String)> =
                diff.iter().filter(|(c, _)| *c != ' ').cloned().collect();
            l.extend(changed_lines(&changed, 12, theme));
            l.push(Line::from(""));
            l.push(Line::from("enter: keep the edit   esc: drop it"));
            ("edit", l)
        }
        Dialog::ConfirmReplayMany(ids) => (
            "replay marked",
            vec![
                Line::from(format!(
                    "Replay the {} marked letter(s) to their source topics?",
                    ids.len()
                )),
                Line::from("Letters already replayed are skipped."),
                Line::from(""),
                Line::from("enter: replay all   esc: cancel"),
            ],
        ),
        Dialog::ConfirmReplayGroup { query, only } => (
            "replay group",
            vec![
                Line::from(format!("Replay {} letter(s) matching: {query}", only.len())),
                Line::from(format!("exactly these: {}", only.bound())),
                Line::from("Each goes to its source topic; letters already replayed are skipped;"),
                Line::from("letters arriving from now on are not included."),
                Line::from(""),
                Line::from("enter: replay all   esc: cancel"),
            ],
        ),
        Dialog::Transform(p) => ("transform", super::transform_view::prompt(p, theme)),
        Dialog::ConfirmTransform {
            scope,
            expr,
            preview,
            skipped,
        } => (
            "replay transformed",
            super::transform_view::confirm(scope, expr, preview, *skipped),
        ),
        Dialog::ConfirmResolve(id) => (
            "resolve",
            vec![
                Line::from(format!("Mark {id} resolved without replaying it?")),
                Line::from("It is recorded in the ledger and the audit log."),
                Line::from(""),
                Line::from("enter: resolve   esc: cancel"),
            ],
        ),
        Dialog::ConfirmReplay {
            plan,
            id,
            topic,
            changes,
            decoded,
            typed,
            confirming,
        } => {
            let sent: Vec<&str> = plan.headers.iter().map(|h| h.name.as_str()).collect();
            let stripped: Vec<String> = plan.stripped.iter().map(|(n, _)| n.clone()).collect();
            let value = plan.value.as_deref();
            // A binary format shows decoded (when the plan came), with the start of the bytes sent.
            let preview = match (decoded, value) {
                (Some((_, json)), _) => json.chars().take(60).collect(),
                (None, Some(v)) => {
                    String::from_utf8_lossy(&v[..v.len().min(60)]).replace(char::is_control, " ")
                }
                (None, None) => "(null)".into(),
            };
            let mut l = vec![Line::from(format!(
                "Replay {id} to topic: {topic}{}",
                if *confirming { "" } else { "▏" }
            ))];
            let format = decoded
                .as_ref()
                .map_or(String::new(), |(f, _)| format!(", {f}"));
            if changes.is_empty() {
                let kind = if plan.edited { "edited" } else { "original" };
                l.push(Line::from(format!("payload ({kind}{format}): {preview}")));
            } else {
                // An edit is confirmed by what it changes, whole lines, never a cut prefix.
                l.push(Line::from(format!(
                    "payload (edited{format}), what the edit changes:"
                )));
                l.extend(changed_lines(changes, 10, theme));
            }
            if let (Some(_), Some(v)) = (decoded, value) {
                l.push(Line::from(format!(
                    "encoded: {} bytes, {}{}",
                    v.len(),
                    hex::encode(&v[..v.len().min(16)]),
                    if v.len() > 16 { "…" } else { "" }
                )));
            }
            l.extend([
                Line::from(format!("headers sent: {}", sent.join(", "))),
                Line::from(format!(
                    "stripped: {}",
                    if stripped.is_empty() {
                        "none".into()
                    } else {
                        stripped.join(", ")
                    }
                )),
                Line::from(""),
            ]);
            if app.production {
                l.push(Line::styled(
                    format!("production: type '{topic}' to confirm (tab edits the topic)"),
                    theme.pick(Style::default().fg(Color::Red)),
                ));
                l.push(Line::from(format!(
                    "> {typed}{}",
                    if *confirming { "▏" } else { "" }
                )));
            } else {
                l.push(Line::from(
                    "type to change the topic   enter: replay   esc: cancel",
                ));
            }
            ("replay", l)
        }
    };
    // Room for the lines as they wrap inside the box.
    // Word wrapping breaks early: count on a narrower width than the box has.
    // The profile list is as wide as its longest line can use.
    let width = match d {
        Dialog::Profiles { .. } => f.area().width.saturating_sub(4).clamp(76, 140),
        _ => 76,
    };
    let inner = usize::from(f.area().width.min(width).saturating_sub(14)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
    let area = centered(f.area(), width, u16::try_from(rows + 2).unwrap_or(u16::MAX));
    f.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {title} "));
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

/// Up to `max` changed lines of a diff, `-` in red and `+` in green, then how many more.
fn changed_lines(changed: &[(char, String)], max: usize, theme: Theme) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = changed
        .iter()
        .take(max)
        .map(|(c, line)| {
            let color = if *c == '+' { Color::Green } else { Color::Red };
            Line::styled(
                format!("{c} {line}"),
                theme.pick(Style::default().fg(color)),
            )
        })
        .collect();
    if changed.len() > max {
        out.push(Line::from(format!(
            "… {} more changed lines",
            changed.len() - max
        )));
    }
    out
}
