//! Everything that can happen to the TUI — what a key asks ([`Action`]) and what the
//! engine, the editor and the terminal report ([`Event`]), each defined once — and
//! everything it can ask for ([`Effect`]: I/O the runner carries out).

use crate::engine::write::plan::ReplayPlan;
use crate::engine::{DeadLetter, LetterId, LetterState};

/// What a key asks of the TUI (see the key map).
#[derive(Debug, Clone)]
pub enum Action {
    /// Select the previous row (or scroll up in the detail view).
    Up,
    /// Select the next row (or scroll down in the detail view).
    Down,
    /// Go to the first row.
    Top,
    /// Go to the last row.
    Bottom,
    /// One page up.
    PageUp,
    /// One page down.
    PageDown,
    /// Open the selected letter.
    Open,
    /// Leave the current screen or dialog.
    Back,
    /// Quit morgue.
    Quit,
    /// Newest first ⇄ oldest first.
    ToggleOrder,
    /// Keep the newest letter selected as letters arrive.
    ToggleFollow,
    /// Open the filter line.
    Filter,
    /// Show the keys.
    Help,
    /// The triage board: letters grouped by topic and error.
    Triage,
    /// Show or hide the preview beside the list (wide terminals).
    TogglePreview,
    /// Next detail tab.
    NextTab,
    /// Previous detail tab.
    PrevTab,
    /// Replay the selected letter, or the marked ones (asks first).
    Replay,
    /// Mark or unmark the selected letter for a replay of several.
    Mark,
    /// Mark the selected letter resolved (asks first).
    Resolve,
    /// Edit the open letter's payload in $EDITOR.
    Edit,
    /// Drop the edit kept with the open letter.
    DiscardEdit,
    /// Copy the payload.
    CopyPayload,
    /// Copy the whole letter as JSON.
    CopyLetter,
    /// A character typed into a dialog.
    Input(char),
    /// Delete the last character of a dialog's input.
    Backspace,
    /// Clear a dialog's input (ctrl-u, as in a shell).
    ClearInput,
    /// Open the list of the config file's profiles, to switch to one.
    PickProfile,
    /// Confirm a dialog.
    Submit,
    /// Fix a triage group or the marked letters with a jq expression (previewed, asks first).
    Transform,
}

/// What the engine, the editor and the terminal report: applied whatever the screen
/// or dialog, and never dropped.
#[derive(Debug, Clone)]
pub enum Event {
    /// The editor returned this text for `id` (or why it failed).
    Edited {
        /// The letter.
        id: LetterId,
        /// What was saved, or why nothing was.
        result: Result<String, String>,
    },
    /// Highlighted lines of a letter's payload (from the runner, off the UI task).
    Highlighted {
        /// The letter.
        id: LetterId,
        /// The lines, styled.
        lines: Vec<ratatui::text::Line<'static>>,
    },
    /// The edited value kept with a letter (from the ledger).
    EditedValue {
        /// The letter.
        id: LetterId,
        /// The value.
        value: Vec<u8>,
    },
    /// The terminal has this many rows for the list.
    Resize(u16, u16),
    /// Letters read for stream `generation`.
    Letters {
        /// Which stream they belong to (stale ones are dropped).
        generation: u64,
        /// The letters.
        letters: Vec<DeadLetter>,
    },
    /// Stream `generation` has delivered everything present when it started.
    CaughtUp {
        /// Which stream.
        generation: u64,
    },
    /// The DLQ holds this many letters.
    Total(u64),
    /// Stream `generation` read this many letters (matching the filter or not):
    /// scan progress before it caught up, live arrivals after.
    Arrived {
        /// Which stream.
        generation: u64,
        /// How many.
        count: u64,
        /// After the catch-up: these are new letters, and the DLQ grew.
        live: bool,
    },
    /// A letter fetched in full.
    Fetched(Box<DeadLetter>),
    /// The fetch of letter `id` waits for `what` now.
    FetchWaiting {
        /// The letter.
        id: LetterId,
        /// What it waits for (`its schema from the schema registry`).
        what: String,
    },
    /// The fetch of letter `id` failed.
    FetchFailed {
        /// The letter.
        id: LetterId,
        /// Why, in one line.
        error: String,
    },
    /// A replay planned for the confirm dialog.
    Planned(Box<ReplayPlan>),
    /// A write finished: the letter's new state and a line for the status bar.
    Done {
        /// The letter.
        id: LetterId,
        /// Its state now.
        state: LetterState,
        /// What happened.
        message: String,
    },
    /// This session replayed letter `id` (key `key`) to `topic` as `replay_id`: it is
    /// watched for failing again from now on.
    Replayed {
        /// The letter.
        id: LetterId,
        /// Its key, to recognise it failing again.
        key: Option<Vec<u8>>,
        /// The `morgue-replay-id` stamped on the message.
        replay_id: String,
        /// Where it went.
        topic: String,
    },
    /// A write on letter `id` was refused or failed.
    Refused {
        /// The letter.
        id: LetterId,
        /// Why, for the status line.
        message: String,
    },
    /// Something to say in the status line.
    Notice(String),
    /// Stream `generation`'s server stopped answering (nothing heard since `since_ms`).
    Silent {
        /// Which stream.
        generation: u64,
        /// The server.
        server: String,
        /// When it last answered, epoch ms.
        since_ms: i64,
    },
    /// Stream `generation`'s server answers again.
    Answering {
        /// Which stream.
        generation: u64,
        /// The server.
        server: String,
    },
    /// The DLQ's retention (ms; -1 forever), for flagging letters about to be deleted.
    Retention(Option<i64>),
    /// The wall clock now (epoch ms), for filters with relative times: `update`
    /// never reads the clock itself.
    Clock(i64),
    /// The transform prompt's letters are loaded (how many a replay would send, how
    /// many it would skip as replayed before or held), or could not be.
    TransformLoaded(Result<(usize, usize), String>),
    /// A preview of the transform prompt's expression `generation`.
    TransformPreview {
        /// Which expression it is of (older ones are dropped).
        generation: u64,
        /// Counts and samples, or why there are none.
        preview: Result<crate::engine::transform::preview::Preview, String>,
    },
}

/// Whatever [`App::update`](super::app::App::update) takes: a key's action or an event.
#[derive(Debug, Clone)]
pub enum Input {
    /// What a key asks.
    Key(Action),
    /// What happened.
    Event(Event),
}

impl From<Action> for Input {
    fn from(a: Action) -> Self {
        Input::Key(a)
    }
}

impl From<Event> for Input {
    fn from(e: Event) -> Self {
        Input::Event(e)
    }
}

/// I/O for the runner to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// (Re)start reading the DLQ from the beginning, following it, keeping matches of `filter`.
    Stream {
        /// Generation stamped on the letters it sends.
        generation: u64,
        /// The filter query (already checked).
        filter: Option<String>,
    },
    /// Fetch a letter in full.
    Fetch(LetterId),
    /// Plan a replay for the confirm dialog.
    PlanReplay(LetterId),
    /// Replay a letter to a topic.
    Replay {
        /// The letter.
        id: LetterId,
        /// The target topic.
        topic: String,
    },
    /// Mark a letter resolved.
    Resolve(LetterId),
    /// Replay these letters, one by one.
    ReplayMany(Vec<LetterId>),
    /// Replay the letters `only` (counted when the dialog opened) that match `query`
    /// and were not replayed yet.
    ReplayGroup {
        /// The group's filter.
        query: String,
        /// The letters counted for the confirmation: no other is replayed.
        only: std::sync::Arc<crate::engine::read::counted::Counted>,
    },
    /// Hand the terminal to the editor with `text` (the runner answers with `Edited`).
    Edit {
        /// The letter.
        id: LetterId,
        /// The text to start from.
        text: String,
        /// The original was JSON: the result must be too.
        json: bool,
    },
    /// Keep an edited value with the letter (ledger state `edited`).
    SaveEdit {
        /// The letter.
        id: LetterId,
        /// The new value.
        value: Vec<u8>,
    },
    /// Drop the edited value kept with a letter.
    DiscardEdit(LetterId),
    /// Highlight a payload (the latest request wins).
    Highlight {
        /// The letter.
        id: LetterId,
        /// The pretty-printed text.
        text: String,
        /// `json` or `xml`.
        syntax: &'static str,
    },
    /// Load the letters of a transform prompt (the runner keeps them for previews).
    LoadTransform(super::state::TransformScope),
    /// Preview `expr` (valid) on the loaded letters, stamped `generation`.
    PreviewTransform {
        /// Stamp of the answer.
        generation: u64,
        /// The expression.
        expr: String,
    },
    /// Replay the scope's letters, each made by `expr` first (confirmed).
    ReplayTransformed {
        /// The letters.
        scope: super::state::TransformScope,
        /// The expression.
        expr: String,
    },
    /// Put text on the clipboard.
    Copy {
        /// What it is, for the status line.
        what: String,
        /// The text.
        text: String,
    },
}
