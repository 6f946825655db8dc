//! Entering and leaving the full-screen terminal: raw mode and the alternate screen
//! are restored when the guard drops and from a panic hook that chains the previous one.

use std::io::{self, Write};
use std::sync::Once;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

/// Holds the terminal in full-screen raw mode; dropping it gives the terminal back.
pub struct TerminalGuard {
    mouse: bool,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen (and mouse capture when `mouse`),
    /// installing the restoring panic hook first.
    pub fn enter(mouse: bool) -> io::Result<Self> {
        install_panic_hook();
        enable_raw_mode()?;
        let guard = TerminalGuard { mouse };
        let mut out = io::stdout();
        execute!(out, EnterAlternateScreen)?;
        if mouse {
            execute!(out, EnableMouseCapture)?;
        }
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore(self.mouse);
    }
}

/// Puts the terminal back in cooked mode on the main screen; safe to call twice.
pub fn restore(mouse: bool) {
    let mut out = io::stdout();
    // Restoring the terminal is best effort: it runs on the way out (Drop, console, panic), where a failure has nowhere to be reported.
    if mouse {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(out, LeaveAlternateScreen, crossterm::cursor::Show);
    let _ = disable_raw_mode();
    let _ = out.flush();
}

/// Takes the terminal back after [`restore`] (e.g. when an external editor exits).
pub fn resume(mouse: bool) -> io::Result<()> {
    enable_raw_mode()?;
    let mut out = io::stdout();
    execute!(out, EnterAlternateScreen)?;
    if mouse {
        execute!(out, EnableMouseCapture)?;
    }
    Ok(())
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore(true);
            previous(info);
        }));
    });
}
