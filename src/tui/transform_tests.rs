//! The transform prompt without a terminal: opening on a group or marked letters,
//! checking as it is typed, previews by generation, and the confirmed replay.

use super::action::{Action, Effect, Event};
use super::app::Dialog;
use super::app::tests::loaded;
use super::state::{TransformPrompt, TransformScope};
use crate::engine::transform::preview::Preview;

fn prompt(app: &super::app::App) -> &TransformPrompt {
    match &app.dialog {
        Some(Dialog::Transform(p)) => p,
        other => panic!("no transform prompt: {other:?}"),
    }
}

fn typed(app: &mut super::app::App, text: &str) -> Vec<Effect> {
    let mut last = Vec::new();
    for c in text.chars() {
        last = app.update(Action::Input(c));
    }
    last
}

fn counts(changed: usize, unchanged: usize, failed: usize) -> Preview {
    Preview {
        changed,
        unchanged,
        failed,
        samples: vec![("0:1".into(), vec!["$.n: 1 → 2".into()])],
        first_failure: None,
    }
}

#[test]
fn a_group_is_previewed_as_typed_and_replayed_exactly_as_counted() {
    let mut app = loaded(4);
    app.update(Action::Triage);
    let effects = app.update(Action::Transform);
    let [Effect::LoadTransform(scope)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let TransformScope::Group { only, .. } = scope else {
        panic!("{scope:?}")
    };
    assert_eq!(only.len(), 4);
    // Typed before the letters are loaded: checked, not previewed.
    assert!(typed(&mut app, ".n += 1").is_empty());
    assert_eq!(prompt(&app).error, None);
    // Loaded: the expression typed so far is previewed.
    let asked = app.update(Event::TransformLoaded(Ok((4, 0))));
    let first = prompt(&app).generation;
    assert_eq!(
        asked,
        vec![Effect::PreviewTransform {
            generation: first,
            expr: ".n += 1".into()
        }]
    );
    // A mistake is marked, not previewed; enter does nothing but say why.
    assert!(typed(&mut app, " |").is_empty());
    let e = prompt(&app).error.clone().unwrap();
    assert_eq!(e.column, 10, "{e}");
    assert!(app.update(Action::Submit).is_empty());
    assert!(
        matches!(app.dialog, Some(Dialog::Transform(_))),
        "{}",
        app.status
    );
    app.update(Action::Backspace);
    let asked = app.update(Action::Backspace);
    let now = prompt(&app).generation;
    // One more per change of the expression: ` `, `|` and two backspaces.
    assert_eq!(now, first + 4);
    assert_eq!(
        asked,
        vec![Effect::PreviewTransform {
            generation: now,
            expr: ".n += 1".into()
        }]
    );
    // An answer for an older expression is dropped; enter waits for the current one.
    app.update(Event::TransformPreview {
        generation: first,
        preview: Ok(counts(9, 9, 9)),
    });
    assert!(prompt(&app).stale);
    app.update(Action::Submit);
    assert!(app.status.contains("wait"), "{}", app.status);
    app.update(Event::TransformPreview {
        generation: now,
        preview: Ok(counts(3, 1, 0)),
    });
    assert_eq!(prompt(&app).preview, Some(Ok(counts(3, 1, 0))));
    // Enter opens the confirmation, which sends exactly the letters counted at first.
    assert!(app.update(Action::Submit).is_empty());
    assert!(matches!(app.dialog, Some(Dialog::ConfirmTransform { .. })));
    assert_eq!(
        app.update(Action::Submit),
        vec![Effect::ReplayTransformed {
            scope: scope.clone(),
            expr: ".n += 1".into()
        }]
    );
}

#[test]
fn marked_letters_are_a_scope_and_a_read_only_profile_refuses() {
    let mut app = loaded(5);
    assert!(app.update(Action::Transform).is_empty(), "nothing marked");
    assert!(app.status.contains("marked"), "{}", app.status);
    app.update(Action::Mark);
    app.update(Action::Mark);
    let effects = app.update(Action::Transform);
    assert!(
        matches!(effects.as_slice(), [Effect::LoadTransform(TransformScope::Marked(ids))] if ids.len() == 2),
        "{effects:?}"
    );
    // An expression failing for every letter has nothing to replay.
    app.update(Event::TransformLoaded(Ok((2, 0))));
    typed(&mut app, "error");
    let g = prompt(&app).generation;
    app.update(Event::TransformPreview {
        generation: g,
        preview: Ok(counts(0, 0, 2)),
    });
    app.update(Action::Submit);
    assert!(
        matches!(app.dialog, Some(Dialog::Transform(_))),
        "{}",
        app.status
    );
    app.update(Action::Back);
    assert!(app.dialog.is_none());

    // A read-only profile: the group is there, the prompt is refused.
    let mut ro = loaded(3);
    ro.read_only = true;
    ro.update(Action::Triage);
    assert_eq!(ro.triage.groups.len(), 1);
    assert!(ro.update(Action::Transform).is_empty());
    assert!(ro.dialog.is_none());
    assert!(ro.status.contains("read-only"), "{}", ro.status);
}

#[test]
fn the_prompt_counts_what_a_replay_skips_and_a_stopped_preview_counts_nothing_more() {
    use crate::engine::transform::Jq;
    use crate::engine::transform::preview::preview_until;
    let mut app = loaded(5);
    app.update(Action::Triage);
    app.update(Action::Transform);
    app.update(Event::TransformLoaded(Ok((3, 2))));
    typed(&mut app, ".n");
    let g = prompt(&app).generation;
    app.update(Event::TransformPreview {
        generation: g,
        preview: Ok(counts(3, 0, 0)),
    });
    let lines = super::transform_view::prompt(
        prompt(&app),
        super::theme::Theme {
            color: false,
            palette: None,
        },
    );
    let text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    assert!(
        text.iter().any(|l| l.contains(
            "3 changed · 0 unchanged · 0 failing (skipped) · 2 replayed before or held (skipped)"
        )),
        "{text:?}"
    );
    // A preview told to stop counts no further letter.
    let letters: Vec<_> = (0..300)
        .map(|i| {
            let l = super::app::tests::letter(i);
            let v = l.value.clone();
            (l, v)
        })
        .collect();
    let jq = Jq::value(".n += 1").unwrap();
    let reg = crate::engine::decoders::builtin();
    let stopped = std::sync::atomic::AtomicBool::new(true);
    assert_eq!(preview_until(&jq, &letters, &reg, 3, &stopped).total(), 0);
    let running = std::sync::atomic::AtomicBool::new(false);
    assert_eq!(preview_until(&jq, &letters, &reg, 3, &running).changed, 300);
}
