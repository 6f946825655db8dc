//! Keys → actions. One table drives both the key handling and the `?` help screen,
//! so the help can never drift from what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::Action;

/// One binding: the keys, the action, and what the help says.
pub struct Binding {
    /// Key names as shown in the help.
    pub keys: &'static str,
    /// What it does.
    pub desc: &'static str,
    /// The action it sends.
    pub action: fn() -> Action,
    /// Key codes that trigger it.
    pub codes: &'static [KeyCode],
}

/// Every binding outside dialogs, in help order.
pub const KEYS: &[Binding] = &[
    Binding {
        keys: "j ↓",
        desc: "next letter (scroll in detail)",
        action: || Action::Down,
        codes: &[KeyCode::Char('j'), KeyCode::Down],
    },
    Binding {
        keys: "k ↑",
        desc: "previous letter (scroll in detail)",
        action: || Action::Up,
        codes: &[KeyCode::Char('k'), KeyCode::Up],
    },
    Binding {
        keys: "g Home",
        desc: "first letter",
        action: || Action::Top,
        codes: &[KeyCode::Char('g'), KeyCode::Home],
    },
    Binding {
        keys: "G End",
        desc: "last letter",
        action: || Action::Bottom,
        codes: &[KeyCode::Char('G'), KeyCode::End],
    },
    Binding {
        keys: "PgUp",
        desc: "page up",
        action: || Action::PageUp,
        codes: &[KeyCode::PageUp],
    },
    Binding {
        keys: "PgDn",
        desc: "page down",
        action: || Action::PageDown,
        codes: &[KeyCode::PageDown],
    },
    Binding {
        keys: "enter",
        desc: "open the letter / back to the list",
        action: || Action::Open,
        codes: &[KeyCode::Enter],
    },
    Binding {
        keys: "esc",
        desc: "back, close a dialog",
        action: || Action::Back,
        codes: &[KeyCode::Esc],
    },
    Binding {
        keys: "tab l",
        desc: "next detail tab",
        action: || Action::NextTab,
        codes: &[KeyCode::Tab, KeyCode::Char('l')],
    },
    Binding {
        keys: "S-tab h",
        desc: "previous detail tab",
        action: || Action::PrevTab,
        codes: &[KeyCode::BackTab, KeyCode::Char('h')],
    },
    Binding {
        keys: "/",
        desc: "filter (esc in the line cancels)",
        action: || Action::Filter,
        codes: &[KeyCode::Char('/')],
    },
    Binding {
        keys: "o",
        desc: "newest first ⇄ oldest first",
        action: || Action::ToggleOrder,
        codes: &[KeyCode::Char('o')],
    },
    Binding {
        keys: "f",
        desc: "follow the live tail",
        action: || Action::ToggleFollow,
        codes: &[KeyCode::Char('f')],
    },
    Binding {
        keys: "r",
        desc: "replay the letter (asks first)",
        action: || Action::Replay,
        codes: &[KeyCode::Char('r')],
    },
    Binding {
        keys: "space",
        desc: "mark the letter (r then replays the marked ones; esc unmarks all)",
        action: || Action::Mark,
        codes: &[KeyCode::Char(' ')],
    },
    Binding {
        keys: "x",
        desc: "mark resolved without replaying (asks first)",
        action: || Action::Resolve,
        codes: &[KeyCode::Char('x')],
    },
    Binding {
        keys: "y",
        desc: "copy the payload",
        action: || Action::CopyPayload,
        codes: &[KeyCode::Char('y')],
    },
    Binding {
        keys: "Y",
        desc: "copy the whole letter as JSON",
        action: || Action::CopyLetter,
        codes: &[KeyCode::Char('Y')],
    },
    Binding {
        keys: "e",
        desc: "edit the payload in $VISUAL/$EDITOR (kept until replayed)",
        action: || Action::Edit,
        codes: &[KeyCode::Char('e')],
    },
    Binding {
        keys: "u",
        desc: "discard the kept edit",
        action: || Action::DiscardEdit,
        codes: &[KeyCode::Char('u')],
    },
    Binding {
        keys: "t",
        desc: "triage board: groups by topic and error (enter filters, r replays a group)",
        action: || Action::Triage,
        codes: &[KeyCode::Char('t')],
    },
    Binding {
        keys: "v",
        desc: "preview beside the list (terminals of 140 columns or more)",
        action: || Action::TogglePreview,
        codes: &[KeyCode::Char('v')],
    },
    Binding {
        keys: "?",
        desc: "this help",
        action: || Action::Help,
        codes: &[KeyCode::Char('?')],
    },
    Binding {
        keys: "q",
        desc: "quit",
        action: || Action::Quit,
        codes: &[KeyCode::Char('q')],
    },
];

/// The action for `key`; in a dialog, typed characters are input.
pub fn action_for(key: KeyEvent, in_dialog: bool) -> Option<Action> {
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
            KeyCode::Char(c) => Some(Action::Input(c)),
            _ => None,
        };
    }
    KEYS.iter()
        .find(|b| b.codes.contains(&key.code))
        .map(|b| (b.action)())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn ctrl_u_clears_a_dialog_line_and_other_control_keys_type_nothing() {
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert!(matches!(
            action_for(ctrl('u'), true),
            Some(Action::ClearInput)
        ));
        assert!(action_for(ctrl('w'), true).is_none());
        assert!(matches!(action_for(ctrl('c'), true), Some(Action::Quit)));
    }

    #[test]
    fn keys_map_to_actions_and_dialogs_take_text() {
        assert!(matches!(
            action_for(key(KeyCode::Char('j')), false),
            Some(Action::Down)
        ));
        assert!(matches!(
            action_for(key(KeyCode::Char('q')), false),
            Some(Action::Quit)
        ));
        assert!(matches!(
            action_for(key(KeyCode::Char('q')), true),
            Some(Action::Input('q'))
        ));
        assert!(matches!(
            action_for(key(KeyCode::Esc), true),
            Some(Action::Back)
        ));
        assert!(action_for(key(KeyCode::F(5)), false).is_none());
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(matches!(action_for(ctrl_c, true), Some(Action::Quit)));
    }

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = Vec::new();
        for b in KEYS {
            for c in b.codes {
                assert!(!seen.contains(c), "{c:?} bound twice");
                seen.push(*c);
            }
        }
    }
}
