//! What a TUI session is set up with from the config file — its key map, its colours
//! and the profiles the picker offers — built once by the command line and passed to
//! the runner, the overview and the [`App`](super::app::App), never kept in process
//! state (two sessions in one process, as in the tests, each have their own).

use super::keymap::Keymap;
use super::theme::Palette;

/// The key map, the palette and the profiles of one TUI session.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which key does what.
    pub keymap: Keymap,
    /// What the named colours are.
    pub palette: Palette,
    /// The config file's profiles, for the picker (`P`).
    pub profiles: Vec<ProfileRow>,
}

impl Default for Settings {
    /// The shipped keys and dark theme, and no profiles.
    fn default() -> Self {
        Settings {
            keymap: Keymap::defaults(),
            palette: Palette::plain(),
            profiles: Vec::new(),
        }
    }
}

/// A profile as the picker shows it: its name and where its DLQ is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileRow {
    /// The profile's name.
    pub name: String,
    /// Its DLQ, as `morgue profiles` says it (`kafka 10.0.0.5:9092 topic trades.DLT`).
    pub dlq: String,
}
