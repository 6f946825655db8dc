//! The overview: every DLQ of the cluster at a glance, refreshed every
//! [`REFRESH`]; `enter` opens the selected DLQ in the list (whose `esc` comes back
//! here), `r` refreshes now, `q` quits. The figures are those of `morgue dlqs`
//! (`engine::read::overview`), fetched off the UI task.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{Event, KeyCode, KeyEventKind};
use futures::StreamExt;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Row, Table};
use tokio::sync::mpsc;

use super::app::Action;
use super::console::{Console, Crossterm};
use super::settings::Settings;
use super::terminal::TerminalGuard;
use super::theme::Theme;
use crate::backends::open::{Clusters, Target};
use crate::engine::read::overview::group;
use crate::engine::read::overview::{DlqSummary, age, sparkline};

/// How often the figures are fetched again.
pub const REFRESH: Duration = Duration::from_secs(10);

/// What the overview shows.
#[derive(Debug, Default)]
pub struct Overview {
    /// `kafka://BROKERS`.
    pub cluster: String,
    /// The DLQs, by name.
    pub dlqs: Vec<DlqSummary>,
    /// The selected row.
    pub selected: usize,
    /// The last line of news (errors included).
    pub status: String,
    /// When the figures were fetched (epoch ms), None before the first answer.
    pub fetched_ms: Option<i64>,
}

/// Runs the overview of the DLQs of `clusters`; `target` makes the target of a DLQ
/// for opening it. Returns the profile chosen with `P` in a DLQ opened from here.
pub async fn run(
    clusters: Clusters,
    settings: Arc<Settings>,
    target: impl Fn(&DlqSummary) -> anyhow::Result<Target>,
) -> anyhow::Result<Option<String>> {
    let guard = TerminalGuard::enter(false)?;
    let result = overview_loop(clusters, settings, target).await;
    drop(guard);
    result
}

async fn overview_loop(
    clusters: Clusters,
    settings: Arc<Settings>,
    target: impl Fn(&DlqSummary) -> anyhow::Result<Target>,
) -> anyhow::Result<Option<String>> {
    let theme = Theme::of(&settings.palette);
    let mut ov = Overview {
        cluster: clusters.label(),
        status: "reading the cluster…".into(),
        ..Overview::default()
    };
    let (tx, mut rx) = mpsc::channel(4);
    let fetch = |tx: mpsc::Sender<Result<Vec<DlqSummary>, String>>| {
        let clusters = clusters.clone();
        tokio::spawn(async move {
            let got = clusters.overview().await;
            // The overview screen has closed (receiver dropped): its refresh is no longer wanted.
            let _ = tx.send(got.map_err(|e| e.to_string())).await;
        });
    };
    fetch(tx.clone());
    let mut next = Instant::now() + REFRESH;
    let (mut terminal, mut input) = Crossterm.open()?;
    loop {
        terminal.draw(|f| draw(f, &ov, theme))?;
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    // The keymap's moves, open and quit; `r` refreshes.
                    match settings.keymap.action_for(k, false) {
                        Some(Action::Quit) => break,
                        Some(Action::Down) => ov.select(ov.selected + 1),
                        Some(Action::Up) => ov.select(ov.selected.saturating_sub(1)),
                        Some(Action::Top) => ov.select(0),
                        Some(Action::Bottom) => ov.select(usize::MAX),
                        _ if k.code == KeyCode::Char('r') => {
                            ov.status = "refreshing…".into();
                            fetch(tx.clone());
                        }
                        Some(Action::Open) => {
                            let Some(d) = ov.dlqs.get(ov.selected).cloned() else {
                                continue;
                            };
                            // The DLQ's own loop reads the keys until `esc` brings us back.
                            drop(input);
                            drop(terminal);
                            clear_screen()?;
                            let (status, switch) = open(&d, &settings, &target).await;
                            if switch.is_some() {
                                return Ok(switch);
                            }
                            ov.status = status;
                            clear_screen()?;
                            (terminal, input) = Crossterm.open()?;
                            fetch(tx.clone());
                        }
                        _ => {}
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            got = rx.recv() => match got {
                Some(Ok(dlqs)) => {
                    // The selection stays on its DLQ when rows come and go.
                    let chosen = ov.dlqs.get(ov.selected).map(|d| d.name.clone());
                    ov.dlqs = dlqs;
                    let row = chosen.and_then(|n| ov.dlqs.iter().position(|d| d.name == n));
                    ov.select(row.unwrap_or(ov.selected));
                    ov.fetched_ms = Some(chrono::Utc::now().timestamp_millis());
                    // News (back from a DLQ) stays; a failed read gives way once it answers.
                    if ov.status.ends_with('…') || ov.status.starts_with("cannot read") {
                        ov.status = help(&settings.keymap);
                    }
                }
                Some(Err(e)) => ov.status = format!("cannot read the cluster: {e}"),
                None => break,
            },
            _ = tokio::time::sleep_until(next.into()) => {
                next = Instant::now() + REFRESH;
                fetch(tx.clone());
            }
        }
    }
    Ok(None)
}

/// Opens DLQ `name` in the list until the user goes back; what to say then, and the
/// profile chosen there with `P`.
async fn open(
    d: &DlqSummary,
    settings: &Arc<Settings>,
    target: &impl Fn(&DlqSummary) -> anyhow::Result<Target>,
) -> (String, Option<String>) {
    let name = &d.name;
    let run = async {
        let t = target(d)?;
        let opened = t.dlq.open().await?;
        super::runner::run_on(&t, &opened, Crossterm, true, settings.clone()).await
    };
    match run.await {
        Ok(switch) => (format!("back from {name}"), switch),
        Err(e) => (format!("cannot open {name}: {e}"), None),
    }
}

/// The keys, for the status line.
fn help(keys: &super::keymap::Keymap) -> String {
    format!(
        "{} opens a DLQ · r refreshes (also every {}s) · {} quits",
        keys.key("open"),
        REFRESH.as_secs(),
        keys.key("quit")
    )
}

/// Blanks the screen for a fresh `Terminal`, which draws only what differs from a
/// blank one. (`Terminal::clear` would ask the terminal for the cursor position,
/// racing the input reader for stdin.)
fn clear_screen() -> std::io::Result<()> {
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
    )
}

impl Overview {
    fn select(&mut self, i: usize) {
        self.selected = i.min(self.dlqs.len().saturating_sub(1));
    }
}

/// Draws the overview: a header, one row per DLQ, the status line.
pub fn draw(f: &mut Frame, ov: &Overview, theme: Theme) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let total: u64 = ov.dlqs.iter().map(|d| d.letters).sum();
    let day: u64 = ov.dlqs.iter().map(DlqSummary::last_day).sum();
    f.render_widget(
        Paragraph::new(Line::from(format!(
            "morgue {}  {} DLQs  ~{} letters, {} in the last day",
            ov.cluster,
            ov.dlqs.len(),
            group(total),
            group(day)
        )))
        .style(theme.pick(Style::default().add_modifier(Modifier::BOLD))),
        head,
    );
    f.render_widget(Paragraph::new(ov.status.clone()), foot);
    if ov.dlqs.is_empty() {
        let msg = if ov.fetched_ms.is_some() {
            "No DLQ topic or collection matches the patterns (--pattern GLOB, or dlq_patterns in the profile)."
        } else {
            "reading the cluster…"
        };
        f.render_widget(Paragraph::new(msg), body);
        return;
    }
    let now = ov
        .fetched_ms
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    // The name whole (up to 48), then the sparkline, then the states, as width allows.
    let name_w = ov
        .dlqs
        .iter()
        .map(|d| d.label().chars().count())
        .max()
        .unwrap_or(3)
        .clamp(3, 48) as u16;
    // The name keeps its width (at least 20 when it is longer); the other columns give
    // way from the last of these, most wanted first.
    let columns = [
        ("LETTERS", 10),
        ("24H", 8),
        ("OLDEST", 7),
        ("DELETED IN", 10),
        ("1H", 7),
        ("PER HOUR (24H)", 24),
        ("STATES", 28),
    ];
    let widths: Vec<u16> = columns.iter().map(|(_, w)| *w).collect();
    // The figures may cut a long name down to 20 columns; the sparkline and the states
    // come only beside the whole name.
    let mut shown = super::words::give_way(body.width, name_w.min(20), &widths[..5]);
    let used: u16 = widths[..5]
        .iter()
        .zip(&shown)
        .filter(|(_, s)| **s)
        .map(|(w, _)| w + 1)
        .sum();
    shown.extend(super::words::give_way(
        body.width.saturating_sub(used),
        name_w,
        &widths[5..],
    ));
    // Drawn in this order (indexes into `columns`).
    let order = [0, 4, 1, 2, 3, 6, 5];
    let used: u16 = order
        .iter()
        .filter(|&&i| shown[i])
        .map(|&i| widths[i] + 1)
        .sum();
    let name_room = name_w.min(body.width.saturating_sub(used));
    let visible = usize::from(body.height.saturating_sub(1));
    let skip = ov.selected.saturating_sub(visible.saturating_sub(1));
    let rows = ov
        .dlqs
        .iter()
        .enumerate()
        .skip(skip)
        .take(visible)
        .map(|(i, d)| {
            let all = [
                format!("~{}", group(d.letters)),
                group(d.last_day()),
                d.oldest_ms.map_or("-".into(), |o| age(now - o)),
                d.deleted_in_ms(now).map_or("-".into(), age),
                group(d.last_hour()),
                sparkline(&d.hourly),
                d.states_text(),
            ];
            // A long name keeps both ends: `payments-eu…retry.dlq`.
            let name = crate::engine::model::text::clip_middle(&d.label(), usize::from(name_room))
                .into_owned();
            let mut cells = vec![name];
            cells.extend(order.iter().filter(|&&c| shown[c]).map(|&c| all[c].clone()));
            let style = if i == ov.selected {
                theme.selected()
            } else {
                Style::default()
            };
            Row::new(cells).style(style)
        });
    let mut widths = vec![Constraint::Length(name_room)];
    let mut titles = vec!["DLQ"];
    for &c in order.iter().filter(|&&c| shown[c]) {
        widths.push(Constraint::Length(columns[c].1));
        titles.push(columns[c].0);
    }
    let header = Row::new(titles).style(theme.pick(Style::default().add_modifier(Modifier::BOLD)));
    f.render_widget(Table::new(rows, widths).header(header), body);
}
