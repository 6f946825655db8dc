//! The TUI's state and its one pure function, [`App::update`]: an [`Action`] (what a
//! key asks) or an [`Event`] (what the engine, the editor or the terminal reports)
//! changes the state and returns the [`Effect`]s (I/O) that the runner carries out.
//! Nothing here touches the terminal or the network.

pub use super::action::{Action, Effect, Event, Input};
use super::highlight::highlight_effect;
pub use super::state::{
    DetailState, Fetching, ListState, PREVIEW_MIN_COLS, Preview, Screen, Shown, Tab, TriageState,
};
use crate::engine::LetterId;
use crate::engine::read::store::Store;
use crate::engine::write::plan::ReplayPlan;

/// A dialog over the current screen.
#[derive(Debug, Clone)]
pub enum Dialog {
    /// The filter line: what is typed, and the parse error if any.
    Filter {
        /// The query being typed.
        input: String,
        /// Why it does not parse, and where.
        error: Option<crate::engine::read::filter::FilterError>,
    },
    /// A replay waiting for its plan.
    Planning(LetterId),
    /// A replay to confirm. Typing edits the target topic; production profiles must
    /// also type the topic name into the confirmation field (`tab` switches).
    ConfirmReplay {
        /// What will be sent.
        plan: Box<ReplayPlan>,
        /// The letter.
        id: LetterId,
        /// The target topic (starts as the plan's).
        topic: String,
        /// An edited payload's changed lines against the original (`-`/`+`, pretty
        /// JSON), worked out once when the plan arrived; empty when not edited.
        changes: Vec<(char, String)>,
        /// A binary payload's format and decoded value (one line of JSON), decoded
        /// once when the plan arrived; None for bytes no decoder reads.
        decoded: Option<(String, String)>,
        /// The confirmation typed (production only).
        typed: String,
        /// Typing goes to the confirmation field rather than the topic.
        confirming: bool,
    },
    /// A resolve to confirm.
    ConfirmResolve(LetterId),
    /// The replay of the marked letters to confirm.
    ConfirmReplayMany(Vec<LetterId>),
    /// The replay of a whole triage group to confirm.
    ConfirmReplayGroup {
        /// The group's filter.
        query: String,
        /// The letters it held when the dialog opened: exactly these are replayed.
        only: std::sync::Arc<crate::engine::read::counted::Counted>,
    },
    /// An edit that is not valid JSON: edit again or drop it.
    EditInvalid {
        /// The letter.
        id: LetterId,
        /// What was typed (kept for the next try).
        text: String,
        /// Why it is not valid.
        error: String,
    },
    /// The profile picker (`P`): the selected row.
    Profiles {
        /// Index into the config file's profiles.
        selected: usize,
    },
    /// The transform prompt (see `transform_prompt.rs`).
    Transform(Box<super::state::TransformPrompt>),
    /// A transformed replay to confirm: the scope, the expression, its preview's counts.
    ConfirmTransform {
        /// The letters.
        scope: super::state::TransformScope,
        /// The expression.
        expr: String,
        /// What it does to them.
        preview: Box<crate::engine::transform::preview::Preview>,
        /// Letters of the scope the replay skips anyway (replayed before, held).
        skipped: usize,
    },
    /// An edit to review as a diff before it is kept.
    ReviewEdit {
        /// The letter.
        id: LetterId,
        /// The new value.
        text: String,
        /// Line diff against the current value.
        diff: Vec<(char, String)>,
        /// The bytes kept: the text re-encoded in the payload's format (Avro, Protobuf,
        /// …) under its schema, or None for the text itself.
        encoded: Option<Vec<u8>>,
    },
}

/// The TUI's whole state.
#[derive(Debug)]
pub struct App {
    /// The letters of the current stream (the filter's matches).
    pub store: Store,
    /// The list's cursor and order.
    pub list: ListState,
    /// The open letter.
    pub detail: DetailState,
    /// The triage board.
    pub triage: TriageState,
    /// The current screen.
    pub screen: Screen,
    /// An open dialog.
    pub dialog: Option<Dialog>,
    /// The status line.
    pub status: String,
    /// The DLQ's name.
    pub dlq: String,
    /// Writes are refused.
    pub read_only: bool,
    /// Replays need the topic typed.
    pub production: bool,
    /// Letters in the DLQ.
    pub total: Option<u64>,
    /// The current stream has caught up.
    pub caught_up: bool,
    /// The server that stopped answering, and since when (epoch ms): the header says
    /// `no answer N s` instead of `live` until it answers again.
    pub silent: Option<(String, i64)>,
    /// The filter applied.
    pub filter: String,
    /// The current stream's generation.
    pub generation: u64,
    /// The current stream carries only a payload filter's matches.
    pub stream_filtered: bool,
    /// Letters the current stream has read while catching up (for the progress shown).
    pub scanned: u64,
    /// Quit after this frame.
    pub quit: bool,
    /// Opened from the overview: `esc` on the list goes back to it.
    pub from_overview: bool,
    /// The wall clock as last told by [`Event::Clock`] (epoch ms).
    pub now_ms: i64,
    /// How long a replayed letter is watched for failing again, ms.
    confirm_after_ms: i64,
    /// Terminal width in columns.
    pub cols: u16,
    /// The preview beside the list.
    pub preview: Preview,
    /// A redaction the profile makes mandatory for copies (`y`, `Y`).
    pub redact: Option<crate::engine::export::redact::Redaction>,
    /// The DLQ's retention in ms (None: unknown or none).
    pub retention_ms: Option<i64>,
    /// Edited values kept with letters (from the ledger or this session).
    pub edits: std::collections::HashMap<LetterId, Vec<u8>>,
    /// Letters marked for a replay of several.
    pub marked: std::collections::BTreeSet<LetterId>,
    /// The profile this DLQ was opened with.
    pub profile: Option<String>,
    /// The profile to open next, chosen in the picker (the session then ends).
    pub switch_to: Option<String>,
    /// Shown in place of the status until the next key (why a chosen profile did not open).
    pub notice: Option<String>,
    /// The session's key map, colours and profiles (the shipped ones by default).
    pub settings: std::sync::Arc<super::settings::Settings>,
    /// The decoders of the DLQ's profile (its schemas): every payload the TUI decodes
    /// is decoded with these, never with process-wide state.
    pub decoders: std::sync::Arc<crate::engine::decoders::Registry>,
    /// Counts changes to `edits`, so a new edit is decoded again.
    pub edit_serial: u64,
    /// Letters whose edit is being written to the ledger: no replay until it is.
    pub saving: std::collections::BTreeSet<LetterId>,
}

/// Letters this close to deletion by retention are flagged in the list.
pub const DELETION_WARNING_MS: i64 = 24 * 3_600_000;

impl App {
    /// When retention deletes a letter written at `ts_ms` (None: no retention known).
    pub fn deleted_at(&self, ts_ms: i64) -> Option<i64> {
        self.retention_ms
            .filter(|_| ts_ms != crate::engine::read::index::NO_TIME)
            .map(|r| ts_ms + r)
    }

    /// A new app for the DLQ `dlq`; start it with the effects of [`App::start`].
    pub fn new(dlq: String, read_only: bool, production: bool) -> Self {
        App {
            store: Store::new(),
            list: ListState::default(),
            detail: DetailState::default(),
            triage: TriageState::default(),
            screen: Screen::List,
            dialog: None,
            status: "loading…".into(),
            dlq,
            read_only,
            production,
            total: None,
            caught_up: false,
            silent: None,
            filter: String::new(),
            generation: 0,
            scanned: 0,
            stream_filtered: false,
            quit: false,
            from_overview: false,
            now_ms: 0,
            cols: 0,
            preview: Preview::default(),
            redact: None,
            confirm_after_ms: crate::engine::read::outcome::DEFAULT_CONFIRM_AFTER_MS,
            retention_ms: None,
            edits: std::collections::HashMap::new(),
            marked: std::collections::BTreeSet::new(),
            profile: None,
            switch_to: None,
            notice: None,
            settings: Default::default(),
            decoders: crate::engine::decoders::builtin(),
            edit_serial: 0,
            saving: std::collections::BTreeSet::new(),
        }
    }

    /// How long a replayed letter is watched for failing again (`--confirm-after`).
    pub fn set_confirm_after(&mut self, window_ms: i64) {
        self.confirm_after_ms = window_ms;
        self.store.set_confirm_after(window_ms);
    }

    /// The first effect: read the DLQ.
    pub fn start(&mut self) -> Vec<Effect> {
        self.restream(None)
    }

    pub(super) fn restream(&mut self, filter: Option<String>) -> Vec<Effect> {
        self.generation += 1;
        self.store = Store::new();
        self.store.set_confirm_after(self.confirm_after_ms);
        self.store.tick(self.now_ms);
        self.list.selected = 0;
        self.list.scroll = 0;
        self.list.unseen = 0;
        self.caught_up = false;
        // A new stream says again if its server does not answer.
        if self.silent.take().is_some() {
            self.notice = None;
        }
        self.scanned = 0;
        self.list.view = None;
        self.list.row_filter = None;
        self.stream_filtered = filter.is_some();
        vec![Effect::Stream {
            generation: self.generation,
            filter,
        }]
    }

    /// The first key bound to command `name`, for hints.
    pub fn key(&self, name: &str) -> String {
        self.settings.keymap.key(name)
    }

    pub(super) fn write_refused(&mut self, what: &str) -> bool {
        if self.read_only {
            self.status = format!("refused {what}: the profile is read-only");
        }
        self.read_only
    }

    /// Applies a key's action or an event; returns the I/O to do.
    pub fn update(&mut self, input: impl Into<Input>) -> Vec<Effect> {
        let mut effects = match input.into() {
            // Events apply whatever the screen or dialog; none is dropped.
            Input::Event(e) => self.on_event(e),
            Input::Key(a) => self.handle(a),
        };
        effects.extend(self.sync_preview());
        self.sync_shown();
        effects
    }

    fn handle(&mut self, action: Action) -> Vec<Effect> {
        self.notice = None;
        if let Some(d) = self.dialog.take() {
            return self.update_dialog(d, action);
        }
        match action {
            Action::Up if self.screen == Screen::Help => {
                self.detail.scroll = self.detail.scroll.saturating_sub(1)
            }
            Action::Down if self.screen == Screen::Help => {
                self.detail.scroll = self.detail.scroll.saturating_add(1)
            }
            Action::Up if self.screen == Screen::Detail => {
                self.detail.scroll = self.detail.scroll.saturating_sub(1)
            }
            Action::Down if self.screen == Screen::Detail => {
                self.detail.scroll = self.detail.scroll.saturating_add(1)
            }
            Action::Up if self.screen == Screen::Triage => {
                self.triage.selected = self.triage.selected.saturating_sub(1)
            }
            Action::Down if self.screen == Screen::Triage => {
                self.triage.selected =
                    (self.triage.selected + 1).min(self.triage.groups.len().saturating_sub(1));
            }
            Action::Open if self.screen == Screen::Triage => {
                if let Some(g) = self.triage.groups.get(self.triage.selected) {
                    let query = g.query();
                    self.screen = Screen::List;
                    // Topic and fingerprint are in the index: the list filters at once.
                    return self.apply_filter(query);
                }
            }
            Action::Replay if self.screen == Screen::Triage => {
                let group = self
                    .triage
                    .groups
                    .get(self.triage.selected)
                    .map(|g| g.query());
                if let Some(query) = group
                    && !self.write_refused("replay")
                {
                    // The count asked about is bound to the letters counted now.
                    let only = std::sync::Arc::new(self.matching_rows(&query));
                    self.dialog = Some(Dialog::ConfirmReplayGroup { query, only });
                }
            }
            Action::Triage => {
                if self.screen == Screen::Triage {
                    self.screen = Screen::List;
                } else {
                    self.refresh_groups();
                    self.screen = Screen::Triage;
                }
            }
            Action::Up => self.select(self.list.selected.saturating_sub(1)),
            Action::Down => self.select(self.list.selected + 1),
            Action::Top => self.select(0),
            Action::Bottom => self.select(self.visible_len().saturating_sub(1)),
            Action::PageUp => self.select(self.list.selected.saturating_sub(self.list.page)),
            Action::PageDown => self.select(self.list.selected + self.list.page),
            Action::Open if self.screen == Screen::List => {
                if let Some(id) = self.selected_id() {
                    self.screen = Screen::Detail;
                    self.detail.scroll = 0;
                    if let Some(l) = self
                        .position(self.list.selected)
                        .and_then(|p| self.store.cached(p))
                        .cloned()
                    {
                        let mut l = l;
                        self.store.settle(&mut l);
                        let effect = highlight_effect(&self.decoders, &l);
                        self.detail.letter = Some(l);
                        return effect.into_iter().collect();
                    } else {
                        self.detail.letter = None;
                        return vec![self.fetch(id)];
                    }
                }
            }
            Action::Back if self.screen == Screen::List && !self.marked.is_empty() => {
                self.marked.clear();
                self.status = "marks cleared".into();
            }
            Action::Back
                if self.from_overview && self.screen == Screen::List && self.dialog.is_none() =>
            {
                self.quit = true;
            }
            Action::Back | Action::Open => self.screen = Screen::List,
            Action::Quit => self.quit = true,
            Action::ToggleOrder => {
                self.list.newest_first = !self.list.newest_first;
                self.select(0);
            }
            Action::ToggleFollow => self.toggle_follow(),
            Action::Filter => {
                self.dialog = Some(Dialog::Filter {
                    input: self.filter.clone(),
                    error: None,
                });
            }
            Action::Help => {
                self.detail.scroll = 0;
                self.screen = if self.screen == Screen::Help {
                    Screen::List
                } else {
                    Screen::Help
                };
            }
            Action::NextTab | Action::PrevTab if self.screen == Screen::Detail => {
                let i = Tab::ALL
                    .iter()
                    .position(|t| *t == self.detail.tab)
                    .unwrap_or(0);
                let n = Tab::ALL.len();
                let next = if matches!(action, Action::NextTab) {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.detail.tab = Tab::ALL[next];
                self.detail.scroll = 0;
            }
            Action::Mark => {
                if let Some(id) = self.selected_id() {
                    if !self.marked.remove(&id) {
                        self.marked.insert(id);
                    }
                    self.status = format!(
                        "{} marked; {} replays them, {} unmarks",
                        self.marked.len(),
                        self.key("replay"),
                        self.key("back")
                    );
                    self.select(self.list.selected + 1);
                }
            }
            Action::Replay if self.screen == Screen::List && !self.marked.is_empty() => {
                if !self.write_refused("replay") {
                    self.dialog = Some(Dialog::ConfirmReplayMany(
                        self.marked.iter().cloned().collect(),
                    ));
                }
            }
            Action::Replay
                if self
                    .selected_id()
                    .is_some_and(|id| self.saving.contains(&id)) =>
            {
                // What the dialog shows must be what is sent: the edit first.
                self.status = "the edit is being kept; replay once it is".into();
            }
            Action::Replay => {
                if let Some(id) = self.selected_id()
                    && !self.write_refused("replay")
                {
                    self.dialog = Some(Dialog::Planning(id.clone()));
                    return vec![Effect::PlanReplay(id)];
                }
            }
            Action::Resolve => {
                if let Some(id) = self.selected_id()
                    && !self.write_refused("resolve")
                {
                    self.dialog = Some(Dialog::ConfirmResolve(id));
                }
            }
            Action::CopyPayload | Action::CopyLetter => {
                return self.copy(matches!(action, Action::CopyLetter));
            }
            Action::Edit => return self.start_edit(None),
            Action::DiscardEdit => {
                if let Some(id) = self.open_id()
                    && self.edits.contains_key(&id)
                    && !self.write_refused("discarding an edit")
                {
                    return vec![Effect::DiscardEdit(id)];
                }
                if !self.read_only {
                    self.status = "no edit to discard".into();
                }
            }
            Action::TogglePreview => self.toggle_preview(),
            Action::Transform => return self.open_transform(),
            Action::PickProfile => self.pick_profile(),
            Action::Input(_)
            | Action::Backspace
            | Action::ClearInput
            | Action::Submit
            | Action::NextTab
            | Action::PrevTab => {}
        }
        Vec::new()
    }

    /// The highlighted lines for the open letter, when the runner has made them.
    pub fn highlighted_for(&self, id: &LetterId) -> Option<&[ratatui::text::Line<'static>]> {
        self.detail
            .highlighted
            .as_ref()
            .filter(|(h, _)| h == id)
            .map(|(_, l)| l.as_slice())
    }

    /// The id of the letter open in the detail view.
    fn open_id(&self) -> Option<LetterId> {
        self.open_letter().and_then(|d| d.id.clone())
    }

    /// The letter fetched in full, when it is still the selected one.
    pub fn open_letter(&self) -> Option<&crate::engine::DeadLetter> {
        self.detail
            .letter
            .as_ref()
            .filter(|d| d.id == self.selected_id())
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
pub(crate) mod tests;
