//! Editing the open letter: the editor's text, the check and the diff, what is kept
//! and sent (one-line JSON as one line, untouched tokens as they came), and what the
//! replay dialog shows of an edit.

use super::super::app::tests::{letter, loaded};
use crate::engine::LetterState;
use crate::engine::write::plan::{ReplayPolicy, plan};
use crate::tui::app::{Action, Dialog, Effect, Event};

#[test]
fn editing_checks_json_shows_a_diff_and_keeps_the_edit() {
    let mut app = loaded(2);
    assert!(app.update(Action::Edit).is_empty(), "needs the letter open");
    app.update(Action::Open);
    app.update(Event::Fetched(Box::new(letter(1))));
    let id = app.selected_id().unwrap();
    let effects = app.update(Action::Edit);
    assert_eq!(
        effects,
        vec![Effect::Edit {
            id: id.clone(),
            text: "{\n  \"n\": 1\n}".into(),
            json: true
        }]
    );

    app.update(Event::Edited {
        id: id.clone(),
        result: Ok("{\"n\": ".into()),
    });
    let Some(Dialog::EditInvalid { error, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert!(error.starts_with("not valid JSON"), "{error}");
    let retry = app.update(Action::Input('e'));
    assert_eq!(
        retry,
        vec![Effect::Edit {
            id: id.clone(),
            text: "{\"n\": ".into(),
            json: true
        }],
        "the typed text comes back"
    );

    app.update(Event::Edited {
        id: id.clone(),
        result: Ok("{\n  \"n\": 2\n}".into()),
    });
    let Some(Dialog::ReviewEdit { diff, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert!(
        diff.contains(&('-', "  \"n\": 1".to_string()))
            && diff.contains(&('+', "  \"n\": 2".to_string()))
    );
    let effects = app.update(Action::Submit);
    assert_eq!(
        effects,
        vec![Effect::SaveEdit {
            id: id.clone(),
            value: b"{\"n\":2}".to_vec()
        }],
        "one-line JSON is kept as one line"
    );
    assert!(app.edits.contains_key(&id));
    // The replay dialog of the edited letter shows what the edit changes, whole lines.
    app.update(Event::Done {
        id: id.clone(),
        state: LetterState::Edited,
        message: "edit kept".into(),
    });
    app.update(Event::Fetched(Box::new(letter(1))));
    assert_eq!(
        app.update(Action::Replay),
        vec![Effect::PlanReplay(id.clone())]
    );
    let mut l = letter(1);
    l.id = Some(id.clone());
    let policy = ReplayPolicy {
        dlq_topic: "dlq".into(),
        ..ReplayPolicy::default()
    };
    let edited = Some(b"{\"n\":2}".to_vec());
    let p = plan(&l, None, edited, &policy, "rid".into(), false).unwrap();
    app.update(Event::Planned(Box::new(p)));
    let Some(Dialog::ConfirmReplay { changes, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(
        changes,
        &vec![
            ('-', "  \"n\": 1".to_string()),
            ('+', "  \"n\": 2".to_string())
        ]
    );
    app.update(Action::Back);
    assert_eq!(
        app.update(Action::DiscardEdit),
        vec![Effect::DiscardEdit(id.clone())]
    );

    app.update(Event::Edited {
        id,
        result: Err("editor 'vi' exited with exit status: 1".into()),
    });
    assert!(app.status.contains("exited"), "{}", app.status);
}

#[test]
fn an_edit_sends_the_untouched_fields_as_they_came() {
    let mut app = loaded(2);
    app.update(Action::Open);
    let original = br#"{"id":123456789012345678901234,"px":1.10,"e":"\u00e9","n":1}"#;
    let mut l = letter(1);
    l.value = Some(original.to_vec());
    app.update(Event::Fetched(Box::new(l)));
    let id = app.selected_id().unwrap();
    let Some(Effect::Edit { text, .. }) = app.update(Action::Edit).pop() else {
        panic!("no edit")
    };
    // The editor shows the tokens as written.
    assert!(
        text.contains("\"px\": 1.10") && text.contains("123456789012345678901234"),
        "{text}"
    );
    app.update(Event::Edited {
        id: id.clone(),
        result: Ok(text.replace("\"n\": 1", "\"n\": 2")),
    });
    let Some(Dialog::ReviewEdit { diff, .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    let changed: Vec<_> = diff.iter().filter(|(c, _)| *c != ' ').collect();
    assert_eq!(changed.len(), 2, "only the field edited: {changed:?}");
    assert_eq!(
        app.update(Action::Submit),
        vec![Effect::SaveEdit {
            id,
            value: br#"{"id":123456789012345678901234,"px":1.10,"e":"\u00e9","n":2}"#.to_vec()
        }]
    );
}
