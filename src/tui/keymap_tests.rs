use super::*;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, KeyList> {
    pairs
        .iter()
        .map(|(a, k)| (a.to_string(), KeyList::One(k.to_string())))
        .collect()
}

#[test]
fn the_shipped_keymap_binds_every_action_and_no_key_twice() {
    let shipped: Shipped = toml::from_str(DEFAULT_KEYMAP).expect("assets/keymap.toml parses");
    for c in COMMANDS {
        assert!(shipped.keys.contains_key(c.name), "{} has no key", c.name);
    }
    let map = Keymap::defaults();
    let mut seen = Vec::new();
    for ks in &map.keys {
        assert!(!ks.is_empty());
        for k in ks {
            assert!(!seen.contains(k), "{k:?} bound twice");
            seen.push(*k);
        }
    }
}

#[test]
fn ctrl_u_clears_a_dialog_line_and_other_control_keys_type_nothing() {
    let map = Keymap::defaults();
    let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
    assert!(matches!(
        map.action_for(ctrl('u'), true),
        Some(Action::ClearInput)
    ));
    assert!(map.action_for(ctrl('w'), true).is_none());
    assert!(matches!(
        map.action_for(ctrl('c'), true),
        Some(Action::Quit)
    ));
}

#[test]
fn keys_map_to_actions_and_dialogs_take_text() {
    let map = Keymap::defaults();
    assert!(matches!(
        map.action_for(key(KeyCode::Char('j')), false),
        Some(Action::Down)
    ));
    assert!(matches!(
        map.action_for(key(KeyCode::Char('q')), false),
        Some(Action::Quit)
    ));
    assert!(matches!(
        map.action_for(key(KeyCode::Char('q')), true),
        Some(Action::Input('q'))
    ));
    assert!(matches!(
        map.action_for(key(KeyCode::Esc), true),
        Some(Action::Back)
    ));
    assert!(map.action_for(key(KeyCode::F(5)), false).is_none());
    // Terminals report shift with capitals: G is still "bottom".
    let shift_g = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
    assert!(matches!(
        map.action_for(shift_g, false),
        Some(Action::Bottom)
    ));
}

#[test]
fn an_override_replaces_the_action_keys_and_takes_its_key_from_others() {
    let map = Keymap::with(&overrides(&[
        ("replay", "R"),
        ("copy_payload", "ctrl-y"),
        ("quit", "x"),
    ]))
    .expect("valid overrides");
    assert!(matches!(
        map.action_for(key(KeyCode::Char('R')), false),
        Some(Action::Replay)
    ));
    assert!(
        map.action_for(key(KeyCode::Char('r')), false).is_none(),
        "r is free now"
    );
    let ctrl_y = KeyEvent::new(KeyCode::Char('y'), KeyModifiers::CONTROL);
    assert!(matches!(
        map.action_for(ctrl_y, false),
        Some(Action::CopyPayload)
    ));
    assert!(map.action_for(key(KeyCode::Char('y')), false).is_none());
    // x was resolve's: quit takes it, resolve has no key and leaves the help.
    assert!(matches!(
        map.action_for(key(KeyCode::Char('x')), false),
        Some(Action::Quit)
    ));
    let help = map.help();
    assert!(
        help.contains(&("R".to_string(), "replay the letter (asks first)")),
        "{help:?}"
    );
    assert!(
        help.contains(&("C-y".to_string(), "copy the payload")),
        "{help:?}"
    );
    assert!(
        !help.iter().any(|(_, d)| d.starts_with("mark resolved")),
        "{help:?}"
    );
}

#[test]
fn bad_overrides_are_named() {
    let e = Keymap::with(&overrides(&[("replya", "R")])).unwrap_err();
    assert!(
        e.starts_with("unknown action 'replya' (actions: down, up,"),
        "{e}"
    );
    let e = Keymap::with(&overrides(&[("replay", "ctrl-")])).unwrap_err();
    assert_eq!(e, "unknown key 'ctrl-'");
    let e = Keymap::with(&overrides(&[("replay", "ctrl-c")])).unwrap_err();
    assert_eq!(e, "'ctrl-c' always quits and cannot be bound");
    assert_eq!(Key::parse("f5").unwrap().label(), "F5");
    assert_eq!(Key::parse("alt-shift-tab").unwrap().label(), "M-S-tab");
}

#[test]
fn hints_name_the_keys_the_user_has() {
    let shipped = Keymap::defaults();
    assert_eq!(shipped.key("replay"), "r");
    assert_eq!(shipped.key("open"), "enter");
    assert_eq!(shipped.key("copy_letter"), "Y");
    let map = Keymap::with(&overrides(&[("replay", "R"), ("help", "ctrl-h")])).unwrap();
    assert_eq!(map.key("replay"), "R");
    assert_eq!(map.key("help"), "C-h");
    // `r` went to replay's old place only if given; an action left keyless says so.
    let map = Keymap::with(&overrides(&[("edit", "r")])).unwrap();
    assert_eq!(map.key("edit"), "r");
    assert_eq!(map.key("replay"), "[keys] replay");
}
