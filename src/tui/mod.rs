//! The terminal UI, in The Elm Architecture: `app` holds the state and the pure
//! `update(Action) -> Vec<Effect>`, `runner` does the I/O and the event loop
//! (on a `console`: the real terminal, or the soak benchmark's),
//! `view`, `list_pane`, `preview_pane` and `detail` draw (from `words` and `theme`),
//! `keymap` binds keys (and generates the help), and `terminal` restores the terminal
//! on exit and on panic. The state side (`app` with `events`, `dialogs`, `selection`,
//! `preview`, `shown`, `filtering`, `letter_ops`, `transform_prompt`) never imports a
//! drawing file: a new dialog is its `Dialog` variant, its arm in `dialogs` and its arm
//! in `view::dialog`. The transform prompt's I/O is `transform_io` (the runner's side)
//! and its drawing `transform_view`.

pub mod action;
pub mod app;
mod bulk;
pub mod console;
pub mod detail;
mod dialogs;
pub mod editor;
mod events;
mod fetch;
mod filtering;
pub mod highlight;
pub mod keymap;
mod letter_ops;
mod list_pane;
pub mod overview;
pub mod preview;
mod preview_pane;
pub mod profiles;
pub mod runner;
mod selection;
pub mod settings;
pub mod shown;
pub mod state;
pub mod terminal;
pub mod theme;
mod transform_io;
mod transform_prompt;
mod transform_view;
pub mod view;
mod words;

#[cfg(test)]
mod narrow_tests;
#[cfg(test)]
mod snapshot_tests;
#[cfg(test)]
mod transform_tests;
