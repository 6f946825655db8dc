//! The TUI as a person uses it over ssh: tmux sessions driven with send-keys and
//! read with capture-pane.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use super::unique;

/// A detached tmux session running one command, killed when dropped.
pub struct Tmux {
    session: String,
}

impl Tmux {
    /// Starts `cmd` in a detached 110×30 session.
    pub fn start(cmd: &str) -> Tmux {
        let session = unique("morgue-tui");
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "110",
                "-y",
                "30",
                cmd,
            ])
            .status()
            .unwrap();
        assert!(ok.success(), "tmux new-session failed");
        Tmux { session }
    }

    /// Resizes the session's window to `cols`×`rows` (the program sees a resize event).
    pub fn resize(&self, cols: u16, rows: u16) {
        let ok = Command::new("tmux")
            .args(["resize-window", "-t", &self.session])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .status()
            .unwrap();
        assert!(ok.success(), "tmux resize-window failed");
    }

    /// Types `keys`, one tmux key name or string each.
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["send-keys", "-t", &self.session, k])
                .status()
                .unwrap();
            assert!(ok.success());
            std::thread::sleep(Duration::from_millis(60));
        }
    }

    /// The visible screen as text.
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The visible screen with its colours as SGR escape sequences.
    pub fn screen_ansi(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-e", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains `text`; returns the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "'{text}' never appeared; the screen was:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Tmux {
    /// Waits until the screen no longer contains `text` (30 s at most, then fails).
    pub fn wait_gone(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if !s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "'{text}' stayed on the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}
