//! The TUI's state in named parts, apart from the logic that changes it: the screens
//! and tabs, the list's cursor and order, the open letter, the triage board, the
//! preview and the letter on screen decoded once. [`App`](super::app::App) holds one of
//! each; this file imports nothing of the TUI's, so no state file imports back.

use crate::engine::decoders::Registry;
use crate::engine::model::conventions::quote_bytes;
use crate::engine::read::decode::{DEFAULT_CAP, Decoded, decode};
use crate::engine::read::filter::Filter;
use crate::engine::read::triage::Group;
use crate::engine::{DeadLetter, LetterId};

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The list of letters.
    List,
    /// One letter.
    Detail,
    /// The keys.
    Help,
    /// Letters grouped by topic and error.
    Triage,
}

/// The detail view's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// The decoded payload.
    Payload,
    /// The headers.
    Headers,
    /// The failure context.
    Error,
    /// Replays.
    History,
}

impl Tab {
    /// All tabs in order.
    pub const ALL: [Tab; 4] = [Tab::Payload, Tab::Headers, Tab::Error, Tab::History];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Payload => "payload",
            Tab::Headers => "headers",
            Tab::Error => "error",
            Tab::History => "history",
        }
    }
}

/// The list: its cursor, its order, what follows the newest letter, and the rows an
/// index-only filter shows.
#[derive(Debug)]
pub struct ListState {
    /// Display index of the selected row.
    pub selected: usize,
    /// Display index of the first visible row.
    pub scroll: usize,
    /// Rows the list shows at once.
    pub page: usize,
    /// Newest first (the default) or oldest first.
    pub newest_first: bool,
    /// Keep the newest letter selected as letters arrive (while it is selected).
    pub follow: bool,
    /// Letters arrived since the cursor left the newest one (`N new` in the header).
    pub unseen: usize,
    /// Display order over the store when an index-only filter applies (store positions).
    pub view: Option<Vec<u32>>,
    /// The index-only filter behind `view`.
    pub row_filter: Option<Filter>,
}

impl Default for ListState {
    fn default() -> Self {
        ListState {
            selected: 0,
            scroll: 0,
            page: 20,
            newest_first: true,
            follow: true,
            unseen: 0,
            view: None,
            row_filter: None,
        }
    }
}

/// The open letter: its tab and scroll, the letter fetched in full, the fetch out for
/// it (or the preview's), its payload highlighted and the letter on screen decoded.
#[derive(Debug)]
pub struct DetailState {
    /// The tab shown.
    pub tab: Tab,
    /// Lines scrolled (the help screen scrolls with it too).
    pub scroll: u16,
    /// The selected letter, fetched in full.
    pub letter: Option<DeadLetter>,
    /// The last fetch asked for (detail or preview), until its letter arrives.
    pub fetching: Option<Fetching>,
    /// The open letter's payload, highlighted.
    pub highlighted: Option<(LetterId, Vec<ratatui::text::Line<'static>>)>,
    /// The letter on screen, decoded (see `shown.rs`).
    pub shown: Option<Shown>,
}

impl Default for DetailState {
    fn default() -> Self {
        DetailState {
            tab: Tab::Payload,
            scroll: 0,
            letter: None,
            fetching: None,
            highlighted: None,
            shown: None,
        }
    }
}

/// The triage board: the groups, the one selected, and when they were computed.
#[derive(Debug, Default)]
pub struct TriageState {
    /// The groups (computed when the board opens and as letters arrive).
    pub groups: Vec<Group>,
    /// The selected group.
    pub selected: usize,
    /// Letters in the store when the groups were computed.
    pub of: usize,
    /// When they were computed (epoch ms).
    pub ms: i64,
}

/// A fetch out for the detail view or the preview.
#[derive(Debug, Clone)]
pub struct Fetching {
    /// The letter.
    pub id: LetterId,
    /// When it was asked for (epoch ms).
    pub since_ms: i64,
    /// What it waits for now.
    pub waiting: String,
    /// Why it failed, once it has.
    pub failed: Option<String>,
}

/// Terminals at least this wide show the preview beside the list.
pub const PREVIEW_MIN_COLS: u16 = 140;

/// The preview's state.
#[derive(Debug)]
pub struct Preview {
    /// Shown when the terminal is wide enough (`v` toggles).
    pub on: bool,
    /// The letter shown (the selected one once fetched).
    pub letter: Option<DeadLetter>,
    /// The letter being fetched for it.
    pub(super) in_flight: Option<LetterId>,
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

/// A letter's key and payload, decoded for display.
#[derive(Debug)]
pub struct Shown {
    /// The letter.
    pub id: Option<LetterId>,
    /// The app's edit serial when decoded (a new edit decodes again).
    pub(super) serial: u64,
    /// The key as shown: decoded with its format, or quoted bytes.
    pub key: String,
    /// The payload is the kept edit rather than the letter's value.
    pub edited: bool,
    /// The payload (the edit, when there is one).
    pub payload: Decoded,
}

impl Shown {
    /// Decodes `l`'s key and `edit` (or else its value).
    pub fn of(reg: &Registry, l: &DeadLetter, edit: Option<&[u8]>) -> Shown {
        // A key in a binary format (a framed Avro key, …) shows decoded, with its format.
        let key = match l.key.as_deref() {
            None => "(null)".to_string(),
            Some(k) => match reg.decode(k, None) {
                crate::engine::decoders::Attempt::Decoded(s) => {
                    format!("{} ({})", s.value, s.format)
                }
                _ => quote_bytes(k),
            },
        };
        let payload = decode(
            reg,
            edit.or(l.value.as_deref()),
            l.source.topic.as_deref(),
            DEFAULT_CAP,
        );
        Shown {
            id: l.id.clone(),
            serial: 0,
            key,
            edited: edit.is_some(),
            payload,
        }
    }
}

/// The letters a transform prompt works on: exactly those the replay will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransformScope {
    /// A triage group: its filter, and the letters it held when the prompt opened.
    Group {
        /// The group's filter.
        query: String,
        /// The letters counted then: no other is previewed or replayed.
        only: std::sync::Arc<crate::engine::read::counted::Counted>,
    },
    /// The marked letters.
    Marked(Vec<LetterId>),
}

impl TransformScope {
    /// How many letters it holds.
    pub fn len(&self) -> usize {
        match self {
            TransformScope::Group { only, .. } => only.len(),
            TransformScope::Marked(ids) => ids.len(),
        }
    }

    /// True when it holds no letter.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `N letter(s) of QUERY` or `N marked letter(s)`, for the prompt's title.
    pub fn describe(&self) -> String {
        match self {
            TransformScope::Group { query, only } => {
                format!("{} letter(s) of {query}", only.len())
            }
            TransformScope::Marked(ids) => format!("{} marked letter(s)", ids.len()),
        }
    }
}

/// The transform prompt: the expression typed, checked and previewed as it is typed.
#[derive(Debug, Clone)]
pub struct TransformPrompt {
    /// The letters.
    pub scope: TransformScope,
    /// The expression typed.
    pub input: String,
    /// Why it does not compile (column, message), if it does not.
    pub error: Option<crate::engine::transform::ParseError>,
    /// Stamped on the preview asked for last: older answers are dropped.
    pub generation: u64,
    /// How many letters were loaded for previews, and how many of the scope a replay
    /// would skip (replayed before, held); None while they load.
    pub loaded: Option<(usize, usize)>,
    /// The latest preview of `input`, or why it could not be made.
    pub preview: Option<Result<crate::engine::transform::preview::Preview, String>>,
    /// The preview is of an older expression than `input`.
    pub stale: bool,
}
