//! Syntax highlighting of the selected payload with syntect: run off the UI task by
//! the runner, for payloads up to [`MAX_BYTES`]; the latest request wins.

use std::sync::OnceLock;

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use syntect::easy::HighlightLines;
use syntect::highlighting::{Theme, ThemeSet};
use syntect::parsing::SyntaxSet;

use super::action::Effect;
use crate::engine::DeadLetter;
use crate::engine::decoders::Registry;

/// Payloads larger than this are shown with the plain colouring.
pub const MAX_BYTES: usize = 64 * 1024;

/// syntect's shipped syntaxes and themes, loaded once (library data, the same for
/// every session; which theme is used is the caller's).
fn assets() -> &'static (SyntaxSet, ThemeSet) {
    static ASSETS: OnceLock<(SyntaxSet, ThemeSet)> = OnceLock::new();
    ASSETS.get_or_init(|| {
        (
            SyntaxSet::load_defaults_newlines(),
            ThemeSet::load_defaults(),
        )
    })
}

/// Highlights `text` with the syntax for `extension` (`json`, `xml`) in syntect theme
/// `theme` (the palette's `highlight`; another shipped one when unknown); `None` when
/// it is too big, the syntax is unknown, or highlighting fails.
pub fn highlight(text: &str, extension: &str, theme: &str) -> Option<Vec<Line<'static>>> {
    if text.len() > MAX_BYTES {
        return None;
    }
    let (ss, themes) = assets();
    let fallback = Theme::default();
    let theme = themes
        .themes
        .get(theme)
        .or_else(|| themes.themes.values().next())
        .unwrap_or(&fallback);
    let syntax = ss.find_syntax_by_extension(extension)?;
    let mut h = HighlightLines::new(syntax, theme);
    let mut out = Vec::new();
    for line in syntect::util::LinesWithEndings::from(text) {
        let ranges = h.highlight_line(line, ss).ok()?;
        let spans: Vec<Span<'static>> = ranges
            .into_iter()
            .map(|(style, piece)| {
                let c = style.foreground;
                Span::styled(
                    piece.trim_end_matches('\n').to_string(),
                    Style::default().fg(Color::Rgb(c.r, c.g, c.b)),
                )
            })
            .collect();
        out.push(Line::from(spans));
    }
    Some(out)
}

/// The highlight request for a letter's payload: pretty JSON or XML under the size cap.
pub(super) fn highlight_effect(decoders: &Registry, l: &DeadLetter) -> Option<Effect> {
    let id = l.id.clone()?;
    let v = l.value.as_deref()?;
    if v.len() > MAX_BYTES {
        return None;
    }
    let d = crate::engine::read::decode::decode(
        decoders,
        Some(v),
        l.source.topic.as_deref(),
        MAX_BYTES,
    );
    let syntax = match d.kind {
        crate::engine::read::decode::Kind::Json => "json",
        crate::engine::read::decode::Kind::Xml => "xml",
        _ => return None,
    };
    Some(Effect::Highlight {
        id,
        text: d.text,
        syntax,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_gets_colours_and_keeps_its_text() {
        let text = "{\n  \"price\": -3\n}";
        let lines = highlight(text, "json", "base16-eighties.dark").unwrap();
        assert_eq!(lines.len(), 3);
        let second: String = lines[1].spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(second, "  \"price\": -3");
        let colours: std::collections::HashSet<_> =
            lines[1].spans.iter().map(|s| s.style.fg).collect();
        assert!(
            colours.len() > 1,
            "keys and numbers are coloured differently"
        );
    }

    #[test]
    fn too_big_or_unknown_is_left_alone() {
        assert!(highlight(&"x".repeat(MAX_BYTES + 1), "json", "base16-eighties.dark").is_none());
        assert!(highlight("a", "no-such-syntax", "base16-eighties.dark").is_none());
    }
}
