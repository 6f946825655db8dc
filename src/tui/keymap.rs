//! Keys → actions. The default keys are `assets/keymap.toml` (compiled in); the config
//! file's `[keys]` table overrides them per action. One [`Keymap`] drives both the key
//! handling and the `?` help screen, so the help shows the keys that work.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// The default keymap, as shipped.
pub const DEFAULT_KEYMAP: &str = include_str!("../../assets/keymap.toml");

/// An action a key can be bound to, by its name in the keymap.
pub struct Command {
    /// Its name in `[keys]`.
    pub name: &'static str,
    /// What the help says.
    pub desc: &'static str,
    /// The action it sends.
    pub action: fn() -> Action,
}

/// Every command outside dialogs, in help order.
pub const COMMANDS: &[Command] = &[
    cmd("down", "next letter (scroll in detail)", || Action::Down),
    cmd("up", "previous letter (scroll in detail)", || Action::Up),
    cmd("top", "first letter", || Action::Top),
    cmd("bottom", "last letter", || Action::Bottom),
    cmd("page_up", "page up", || Action::PageUp),
    cmd("page_down", "page down", || Action::PageDown),
    cmd("open", "open the letter / back to the list", || {
        Action::Open
    }),
    cmd("back", "back, close a dialog", || Action::Back),
    cmd("next_tab", "next detail tab", || Action::NextTab),
    cmd("previous_tab", "previous detail tab", || Action::PrevTab),
    cmd("filter", "filter (esc in the line cancels)", || {
        Action::Filter
    }),
    cmd("order", "newest first ⇄ oldest first", || {
        Action::ToggleOrder
    }),
    cmd("follow", "follow the live tail", || Action::ToggleFollow),
    cmd("replay", "replay the letter (asks first)", || {
        Action::Replay
    }),
    cmd(
        "mark",
        "mark the letter (replay then sends the marked ones; esc unmarks)",
        || Action::Mark,
    ),
    cmd(
        "transform",
        "fix a triage group or the marked letters with jq (previewed)",
        || Action::Transform,
    ),
    cmd(
        "resolve",
        "mark resolved without replaying (asks first)",
        || Action::Resolve,
    ),
    cmd("copy_payload", "copy the payload", || Action::CopyPayload),
    cmd("copy_letter", "copy the whole letter as JSON", || {
        Action::CopyLetter
    }),
    cmd(
        "edit",
        "edit the payload in $VISUAL/$EDITOR (kept until replayed)",
        || Action::Edit,
    ),
    cmd("discard_edit", "discard the kept edit", || {
        Action::DiscardEdit
    }),
    cmd(
        "triage",
        "triage board: groups by topic and error (enter filters)",
        || Action::Triage,
    ),
    cmd(
        "preview",
        "preview beside the list (terminals of 140 columns or more)",
        || Action::TogglePreview,
    ),
    cmd(
        "profile",
        "switch to another profile of the config file",
        || Action::PickProfile,
    ),
    cmd("help", "this help", || Action::Help),
    cmd("quit", "quit", || Action::Quit),
];

const fn cmd(name: &'static str, desc: &'static str, action: fn() -> Action) -> Command {
    Command { name, desc, action }
}

/// A key and its modifiers (ctrl, alt; shift is part of the character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    code: KeyCode,
    mods: KeyModifiers,
}

impl Key {
    /// Parses `j`, `G`, `space`, `shift-tab`, `ctrl-r`, `f5`…; the error quotes the name.
    pub fn parse(name: &str) -> Result<Key, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = name;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-").filter(|r| !r.is_empty()) {
                mods |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-").filter(|r| !r.is_empty()) {
                mods |= KeyModifiers::ALT;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "space" => KeyCode::Char(' '),
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "shift-tab" | "backtab" => KeyCode::BackTab,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pgup" => KeyCode::PageUp,
            "pgdn" => KeyCode::PageDown,
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            f if f.len() > 1
                && f.starts_with('f')
                && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
            {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
            _ => return Err(format!("unknown key '{name}'")),
        };
        if code == KeyCode::Char('c') && mods == KeyModifiers::CONTROL {
            return Err(format!("'{name}' always quits and cannot be bound"));
        }
        Ok(Key { code, mods })
    }

    fn of(e: KeyEvent) -> Key {
        Key {
            code: e.code,
            mods: e.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT),
        }
    }

    /// The key as the help shows it.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "enter".into(),
            KeyCode::Esc => "esc".into(),
            KeyCode::Tab => "tab".into(),
            KeyCode::BackTab => "S-tab".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Backspace => "backspace".into(),
            KeyCode::Delete => "delete".into(),
            KeyCode::F(n) => format!("F{n}"),
            other => format!("{other:?}"),
        };
        let ctrl = if self.mods.contains(KeyModifiers::CONTROL) {
            "C-"
        } else {
            ""
        };
        let alt = if self.mods.contains(KeyModifiers::ALT) {
            "M-"
        } else {
            ""
        };
        format!("{ctrl}{alt}{base}")
    }
}

/// One action's name or key list in `[keys]`: `"R"` or `["R", "ctrl-r"]`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum KeyList {
    /// One key.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl KeyList {
    fn names(&self) -> Vec<&str> {
        match self {
            KeyList::One(k) => vec![k.as_str()],
            KeyList::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// The keys of each [`COMMANDS`] entry.
#[derive(Debug, Clone)]
pub struct Keymap {
    keys: Vec<Vec<Key>>,
}

#[derive(serde::Deserialize)]
struct Shipped {
    keys: BTreeMap<String, KeyList>,
}

impl Keymap {
    /// The shipped keys (`assets/keymap.toml`).
    pub fn defaults() -> Keymap {
        let shipped: Result<Shipped, _> = toml::from_str(DEFAULT_KEYMAP);
        let mut map = Keymap {
            keys: vec![Vec::new(); COMMANDS.len()],
        };
        // The shipped file is checked by a test; a broken one leaves actions unbound.
        if let Ok(s) = shipped {
            for (name, list) in &s.keys {
                // The shipped keymap is checked by a test; a name it does not know just stays unbound.
                let _ = map.bind(name, list);
            }
        }
        map
    }

    /// The shipped keys with `overrides` (the config file's `[keys]`) put over them; the
    /// error names the action or the key.
    pub fn with(overrides: &BTreeMap<String, KeyList>) -> Result<Keymap, String> {
        let mut map = Keymap::defaults();
        for (name, list) in overrides {
            map.bind(name, list)?;
        }
        Ok(map)
    }

    /// Gives `list` to action `name`, taking its keys from any other action.
    fn bind(&mut self, name: &str, list: &KeyList) -> Result<(), String> {
        let i = COMMANDS
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
                format!("unknown action '{name}' (actions: {})", known.join(", "))
            })?;
        let keys = list
            .names()
            .into_iter()
            .map(Key::parse)
            .collect::<Result<Vec<_>, _>>()?;
        for other in &mut self.keys {
            other.retain(|k| !keys.contains(k));
        }
        self.keys[i] = keys;
        Ok(())
    }

    /// The action for `key`; in a dialog, typed characters are input.
    pub fn action_for(&self, key: KeyEvent, in_dialog: bool) -> Option<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        if in_dialog {
            if key.modifiers.contains(KeyModifiers::CONTROL) {
                // ctrl-u clears the line, as in a shell; other control keys type nothing.
                return (key.code == KeyCode::Char('u')).then_some(Action::ClearInput);
            }
            return match key.code {
                KeyCode::Esc => Some(Action::Back),
                KeyCode::Enter => Some(Action::Submit),
                KeyCode::Backspace => Some(Action::Backspace),
                KeyCode::Tab | KeyCode::BackTab => Some(Action::NextTab),
                KeyCode::Up => Some(Action::Up),
                KeyCode::Down => Some(Action::Down),
                KeyCode::Char(c) => Some(Action::Input(c)),
                _ => None,
            };
        }
        let k = Key::of(key);
        let i = self.keys.iter().position(|ks| ks.contains(&k))?;
        Some((COMMANDS[i].action)())
    }

    /// The first key of action `name` as shown (`R`, `C-r`), for hints in the status
    /// line; `[keys] name` when the action has none.
    pub fn key(&self, name: &str) -> String {
        COMMANDS
            .iter()
            .position(|c| c.name == name)
            .and_then(|i| self.keys[i].first())
            .map_or_else(|| format!("[keys] {name}"), Key::label)
    }

    /// The help rows: keys as shown, and what they do (unbound actions left out).
    pub fn help(&self) -> Vec<(String, &'static str)> {
        COMMANDS
            .iter()
            .zip(&self.keys)
            .filter(|(_, ks)| !ks.is_empty())
            .map(|(c, ks)| {
                let labels: Vec<String> = ks.iter().map(Key::label).collect();
                (labels.join(" "), c.desc)
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "keymap_tests.rs"]
mod tests;
