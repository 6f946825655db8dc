//! Drawing the transform prompt and its confirmation (the lines inside the dialog box).

use ratatui::style::{Color, Style};
use ratatui::text::Line;

use super::state::{TransformPrompt, TransformScope};
use super::theme::Theme;
use crate::engine::transform::preview::Preview;

/// The prompt: the expression, its mistake or its preview.
pub(super) fn prompt(p: &TransformPrompt, theme: Theme) -> Vec<Line<'static>> {
    let red = theme.pick(Style::default().fg(Color::Red));
    let green = theme.pick(Style::default().fg(Color::Green));
    let mut l = vec![
        Line::from(format!("Fix {} with jq:", p.scope.describe())),
        Line::from(format!("jq> {}▏", p.input)),
    ];
    if let Some(e) = &p.error {
        // Drawn with a rule, not spaces: the box's wrapping trims leading spaces.
        l.push(Line::styled(format!("{}^", "─".repeat(3 + e.column)), red));
        l.push(Line::styled(
            format!("column {}: {}", e.column, e.message),
            red,
        ));
    }
    match (&p.preview, p.loaded) {
        // A preview is of an expression that compiled: not of this one.
        _ if p.error.is_some() => {}
        (_, None) => l.push(Line::from(format!(
            "loading the {} letter(s)…",
            p.scope.len()
        ))),
        (None, Some(_)) if p.input.trim().is_empty() => l.push(Line::from(
            "e.g. .price |= -.   .currency //= \"EUR\"   del(.debug)",
        )),
        (None, Some(_)) => {}
        (Some(Err(e)), _) => l.push(Line::styled(e.clone(), red)),
        (Some(Ok(v)), Some(n)) => {
            let updating = if p.stale { "  (updating…)" } else { "" };
            l.push(Line::from(format!("{}{updating}", counts(v, n, &p.scope))));
            for (id, changes) in &v.samples {
                let first = changes.first().cloned().unwrap_or_default();
                l.push(Line::styled(format!("{id}  {first}"), green));
                for more in changes.iter().skip(1).take(2) {
                    l.push(Line::styled(
                        format!("{:w$}  {more}", "", w = id.len()),
                        green,
                    ));
                }
            }
            if let Some((id, why)) = &v.first_failure {
                l.push(Line::styled(format!("fails for {id}: {why}"), red));
            }
        }
    }
    l.push(Line::from(""));
    l.push(Line::from(
        "enter: review the replay   esc: cancel   ($key $headers $topic $error …)",
    ));
    l
}

/// `N changed · M unchanged · K failing (skipped)`, the letters a replay skips
/// anyway, and over how many letters when not all were loaded.
fn counts(v: &Preview, (loaded, skipped): (usize, usize), scope: &TransformScope) -> String {
    let before = match skipped {
        0 => String::new(),
        n => format!(" · {n} replayed before or held (skipped)"),
    };
    let over = if loaded + skipped < scope.len() {
        format!(
            " — counted on the first {} of {}",
            loaded + skipped,
            scope.len()
        )
    } else {
        String::new()
    };
    format!(
        "{} changed · {} unchanged · {} failing (skipped){before}{over}",
        v.changed, v.unchanged, v.failed
    )
}

/// The confirmation: what will be replayed, made by what, with which counts.
pub(super) fn confirm(
    scope: &TransformScope,
    expr: &str,
    v: &Preview,
    skipped: usize,
) -> Vec<Line<'static>> {
    let which = match scope {
        TransformScope::Group { only, .. } => format!("exactly these: {}", only.bound()),
        TransformScope::Marked(_) => "exactly the marked letters".to_string(),
    };
    vec![
        Line::from(format!("Replay {}, each fixed by:", scope.describe())),
        Line::from(format!("  {expr}")),
        Line::from(counts(v, (v.total(), skipped), scope)),
        Line::from(which),
        Line::from("A letter it fails for is skipped and stays as it is; letters already"),
        Line::from("replayed are skipped; each goes to its source topic, once."),
        Line::from(""),
        Line::from("enter: replay   esc: cancel"),
    ]
}
