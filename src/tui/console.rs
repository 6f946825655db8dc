//! Where the TUI's loop draws and reads keys. [`Crossterm`] is the real terminal;
//! the soak benchmark (`benches/tui_soak.rs`) supplies its own console to run the
//! very same loop on a `TestBackend` with scripted keys.

use crossterm::event::{Event, EventStream};
use futures::Stream;
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};

/// A screen and its key events, handed to the loop and taken back for the editor.
pub trait Console {
    /// What frames are drawn on.
    type Backend: Backend<Error = std::io::Error>;
    /// Terminal events (keys, resizes).
    type Input: Stream<Item = std::io::Result<Event>> + Unpin;
    /// A terminal to draw on and the events to read from it.
    fn open(&mut self) -> anyhow::Result<(Terminal<Self::Backend>, Self::Input)>;
    /// Runs the external editor on `text`; the loop has dropped its terminal and input.
    fn edit(&mut self, text: &str, json: bool) -> anyhow::Result<Result<String, String>>;
}

/// The process's own terminal (stdout, crossterm's event reader).
pub struct Crossterm;

impl Console for Crossterm {
    type Backend = CrosstermBackend<std::io::Stdout>;
    type Input = EventStream;

    fn open(&mut self) -> anyhow::Result<(Terminal<Self::Backend>, Self::Input)> {
        let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
        Ok((terminal, EventStream::new()))
    }

    fn edit(&mut self, text: &str, json: bool) -> anyhow::Result<Result<String, String>> {
        super::terminal::restore(false);
        let result = tokio::task::block_in_place(|| super::editor::edit(text, json));
        super::terminal::resume(false)?;
        // A fresh terminal redraws everything. (`Terminal::clear` would ask the
        // terminal for the cursor position, racing the input reader for stdin.)
        crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
        )?;
        Ok(result)
    }
}
