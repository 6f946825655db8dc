//! The detail view of one letter: tabs for the decoded payload, the headers (Spring's
//! binary numbers decoded), the failure context with the stack trace's first
//! application frame marked, and the replay history.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs, Wrap};

use super::app::{App, Tab};
use super::keymap::Keymap;
use super::state::Shown;
use super::theme::Theme;
use crate::engine::DeadLetter;
use crate::engine::export::json::rfc3339;
use crate::engine::model::after_replay::AfterReplay;
use crate::engine::model::conventions::{convention_of, quote_bytes};
use crate::engine::read::decode::Kind;

/// Draws the selected letter (or says it is being fetched).
pub fn draw(f: &mut Frame, app: &App, area: Rect, theme: Theme) {
    let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let titles: Vec<&str> = Tab::ALL.iter().map(|t| t.title()).collect();
    let selected = Tab::ALL
        .iter()
        .position(|t| *t == app.detail.tab)
        .unwrap_or(0);
    f.render_widget(
        Tabs::new(titles).select(selected).highlight_style(
            theme.pick(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
        ),
        tabs,
    );
    let Some(l) = app.open_letter() else {
        let line = app.fetch_line(app.selected_id().as_ref());
        f.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), body);
        return;
    };
    let lines = match app.detail.tab {
        Tab::Payload => {
            let edit = l.id.as_ref().and_then(|id| app.edits.get(id));
            let owned;
            let shown = match app.shown_for(l) {
                Some(s) => s,
                None => {
                    owned = Shown::of(&app.decoders, l, edit.map(Vec::as_slice));
                    &owned
                }
            };
            let highlighted =
                l.id.as_ref()
                    .and_then(|id| app.highlighted_for(id))
                    .filter(|_| !shown.edited);
            payload(&app.settings.keymap, l, shown, highlighted, theme)
        }
        Tab::Headers => headers(l),
        Tab::Error => error(&app.settings.keymap, l, theme),
        Tab::History => history(l, theme),
    };
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((app.detail.scroll, 0)),
        body,
    );
}

pub(super) fn payload(
    keys: &Keymap,
    l: &DeadLetter,
    shown: &Shown,
    highlighted: Option<&[Line<'static>]>,
    theme: Theme,
) -> Vec<Line<'static>> {
    let (d, key) = (&shown.payload, &shown.key);
    let kind = match (&d.format, d.kind) {
        (Some(f), _) => f.as_str(),
        (None, Kind::Json) => "JSON",
        (None, Kind::Xml) => "XML",
        (None, Kind::Text) => "text",
        (None, Kind::Binary) => "binary",
        (None, Kind::Empty) => "empty",
    };
    let mut out = vec![Line::from(format!(
        "{}  key {key}  {kind}, {} bytes  state {}",
        l.id.as_ref().map(ToString::to_string).unwrap_or_default(),
        l.value.as_ref().map_or(0, Vec::len),
        l.state.as_str()
    ))];
    if shown.edited {
        out.push(Line::styled(
            "edited: this is what a replay sends (u discards the edit)",
            theme.pick(Style::default().fg(Color::Cyan)),
        ));
    }
    if let Some(n) = &d.note {
        out.push(Line::styled(
            format!("note: {n}"),
            theme.pick(Style::default().fg(Color::Yellow)),
        ));
    }
    out.push(Line::from(""));
    if let Some(h) = highlighted.filter(|_| theme.color) {
        out.extend(h.iter().cloned());
        return out;
    }
    for line in d.text.lines().take(MAX_LINES) {
        // Wrapping one enormous line every frame would stall the UI: cut it for display.
        let shown: String = line.chars().take(MAX_LINE).collect();
        let cut = shown.len() < line.len();
        out.push(if d.kind == Kind::Json && !cut {
            json_line(line, theme)
        } else {
            Line::from(shown)
        });
        if cut {
            let more = line.chars().count() - MAX_LINE;
            out.push(Line::styled(
                format!(
                    "… {more} more characters on this line ({} copies all)",
                    keys.key("copy_payload")
                ),
                theme.pick(Style::default().fg(Color::Yellow)),
            ));
        }
    }
    let lines = d.text.lines().count();
    if lines > MAX_LINES {
        out.push(Line::from(format!(
            "… {} more lines ({} copies all)",
            lines - MAX_LINES,
            keys.key("copy_payload")
        )));
    }
    out
}

/// Lines of payload drawn at most.
const MAX_LINES: usize = 5000;
/// Characters of one payload line drawn at most.
const MAX_LINE: usize = 2000;

/// Colours one line of pretty-printed JSON: keys, strings, numbers and literals.
fn json_line(line: &str, theme: Theme) -> Line<'static> {
    let indent = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    let mut spans = vec![Span::raw(" ".repeat(indent))];
    let (key, value) = match rest.find("\": ") {
        Some(i) if rest.starts_with('"') => (Some(&rest[..=i]), &rest[i + 2..]),
        _ => (None, rest),
    };
    if let Some(k) = key {
        spans.push(Span::styled(
            k.to_string(),
            theme.pick(Style::default().fg(Color::Cyan)),
        ));
        spans.push(Span::raw(":"));
    }
    let v = value.trim_end_matches(',');
    let style = if v.starts_with(" \"") || v.starts_with('"') {
        Style::default().fg(Color::Green)
    } else if v.trim().parse::<f64>().is_ok() {
        Style::default().fg(Color::Magenta)
    } else if matches!(v.trim(), "true" | "false" | "null") {
        Style::default().fg(Color::Yellow)
    } else {
        Style::default()
    };
    spans.push(Span::styled(v.to_string(), theme.pick(style)));
    if value.ends_with(',') {
        spans.push(Span::raw(","));
    }
    Line::from(spans)
}

/// A header value for people: text, or a Spring binary number decoded, or hex.
fn header_value(name: &str, v: &[u8]) -> String {
    let numeric = name.ends_with("-partition")
        || name.ends_with("-offset")
        || name.ends_with("-timestamp")
        || name.ends_with("-attempts");
    if let Ok(s) = std::str::from_utf8(v) {
        if !s.chars().any(char::is_control) {
            return s.to_string();
        }
        let lines = s.lines().count();
        if lines > 1 && !numeric {
            let first: String = s.lines().next().unwrap_or("").chars().take(80).collect();
            return format!("{first} … ({lines} lines; see the error tab)");
        }
    }
    match (numeric, v.len()) {
        (true, 4) => format!(
            "{} (4-byte int)",
            i32::from_be_bytes([v[0], v[1], v[2], v[3]])
        ),
        (true, 8) => {
            let mut b = [0u8; 8];
            b.copy_from_slice(v);
            let n = i64::from_be_bytes(b);
            match rfc3339(n).filter(|_| name.ends_with("-timestamp")) {
                Some(t) => format!("{n} = {t} (8-byte long)"),
                None => format!("{n} (8-byte long)"),
            }
        }
        _ => quote_bytes(v),
    }
}

fn headers(l: &DeadLetter) -> Vec<Line<'static>> {
    if l.headers.is_empty() {
        return vec![Line::from(
            "no headers: the source is unknown (a plain re-publish?)",
        )];
    }
    let width = l
        .headers
        .iter()
        .map(|h| h.name.len())
        .max()
        .unwrap_or(0)
        .min(40);
    l.headers
        .iter()
        .map(|h| {
            let v = h
                .value
                .as_deref()
                .map_or_else(|| "(null)".to_string(), |v| header_value(&h.name, v));
            let family = convention_of(&h.name)
                .map(|c| format!("  [{c}]"))
                .unwrap_or_default();
            Line::from(format!("{:<width$}  {v}{family}", h.name))
        })
        .collect()
}

fn field(name: &str, v: Option<String>) -> Line<'static> {
    Line::from(format!("{name:<16}{}", v.unwrap_or_else(|| "-".into())))
}

fn error(keys: &Keymap, l: &DeadLetter, theme: Theme) -> Vec<Line<'static>> {
    let f = &l.failure;
    let s = &l.source;
    let mut out = vec![
        field("exception", f.exception_class.clone()),
        field("message", f.message.clone()),
        field("cause", f.cause_class.clone().or(f.cause_message.clone())),
        field("reason", Some(f.reason.as_str().to_string())),
        field("attempts", f.attempts.map(|a| a.to_string())),
        field("processor", f.processor.clone()),
        field(
            "source topic",
            s.topic
                .clone()
                .or(Some("unknown (no convention header)".into())),
        ),
        field("partition", s.partition.map(|p| p.to_string())),
        field("offset", s.offset.map(|o| o.to_string())),
        field("timestamp", s.timestamp_ms.and_then(rfc3339)),
        field("group", s.consumer_group.clone()),
        field(
            "written by",
            (!f.conventions.is_empty()).then(|| f.conventions.join(", ")),
        ),
    ];
    for n in &f.notes {
        out.push(Line::styled(
            format!("note: {n}"),
            theme.pick(Style::default().fg(Color::Yellow)),
        ));
    }
    if let Some(trace) = &f.stack_trace {
        out.push(Line::from(""));
        let mut marked = false;
        for (i, line) in trace.lines().enumerate() {
            // Folded: the first 12 frames, the first application frame marked.
            let app_frame =
                !marked && i > 0 && crate::engine::read::fingerprint::is_app_frame(line);
            if i >= 12 && !app_frame {
                continue;
            }
            marked |= app_frame;
            out.push(if app_frame {
                Line::styled(
                    format!("▶ {line}"),
                    theme.pick(Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)),
                )
            } else {
                Line::from(format!("  {line}"))
            });
        }
        let total = trace.lines().count();
        if total > 12 {
            out.push(Line::from(format!(
                "  … {} more frames ({} copies the letter)",
                total - 12,
                keys.key("copy_letter")
            )));
        }
    }
    out
}

fn history(l: &DeadLetter, theme: Theme) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if let Some(who) = &l.held_by {
        out.push(Line::from(format!(
            "being replayed by {who} (unconfirmed: the next write verifies it in the target)"
        )));
    }
    if let Some(other) = &l.copy_of {
        out.push(Line::from(format!(
            "a copy of {other} (same source message): its replay counts for this one"
        )));
    }
    if l.history.is_empty() {
        out.push(Line::from(format!(
            "not replayed (state: {})",
            l.state.as_str()
        )));
        return out;
    }
    for r in &l.history {
        out.push(Line::from(format!(
            "{}  {} → {}:{}@{}  by {}{}",
            rfc3339(r.at_ms).unwrap_or_default(),
            r.replay_id,
            r.topic,
            r.partition,
            r.offset,
            r.by,
            if r.edited { "  (edited)" } else { "" }
        )));
        if let Some(t) = &r.transform {
            let spec = crate::engine::transform::Spec::from_ledger(t);
            out.push(Line::from(format!("    transformed by {spec}")));
        }
    }
    if let Some(o) = &l.outcome {
        let colour = match o {
            AfterReplay::FailedAgain { .. } => Color::Red,
            AfterReplay::Confirmed { .. } => Color::Green,
            AfterReplay::Watching { .. } => Color::Yellow,
        };
        out.push(Line::styled(
            o.text(),
            theme.pick(Style::default().fg(colour)),
        ));
    }
    if let Some(c) = &l.consumed {
        out.push(Line::from(c.text()));
    }
    out
}
