//! Engine events: a fetch that waits says for what, a failed one says why once; the
//! scan's progress and live arrivals are counted apart.

use super::super::app::tests::{loaded, selected_offset};
use crate::tui::app::{Action, App, Effect, Event, Screen};

#[test]
fn a_slow_fetch_says_what_it_waits_for_and_a_failed_one_why() {
    let mut app = loaded(30);
    app.update(Event::Clock(1_000_000));
    app.update(Action::Bottom);
    let effects = app.update(Action::Open);
    let Some(Effect::Fetch(id)) = effects.first().cloned() else {
        panic!("{effects:?}")
    };
    assert_eq!(app.screen, Screen::Detail);
    assert_eq!(app.fetch_line(Some(&id)), format!("fetching {id}…"));
    app.update(Event::FetchWaiting {
        id: id.clone(),
        what: "its schema from the schema registry".into(),
    });
    app.update(Event::Clock(1_002_500));
    assert_eq!(
        app.fetch_line(Some(&id)),
        format!("fetching {id}… 2.5 s, waiting for its schema from the schema registry")
    );
    // Letters arriving meanwhile change nothing of it.
    app.update(Event::Letters {
        generation: app.generation,
        letters: vec![super::super::app::tests::letter(30)],
    });
    assert_eq!(selected_offset(&app), 0);
    app.update(Event::FetchFailed {
        id: id.clone(),
        error: "broker '127.0.0.1:1' unreachable\nsecond line".into(),
    });
    let line = format!("cannot fetch {id}: broker '127.0.0.1:1' unreachable");
    assert_eq!(app.fetch_line(Some(&id)), line);
    assert_eq!(app.status, line);
}

#[test]
fn the_preview_does_not_ask_again_for_a_letter_that_failed() {
    let mut app = loaded(30);
    let effects = app.update(Event::Resize(20, 200));
    let Some(Effect::Fetch(id)) = effects.first().cloned() else {
        panic!("the preview fetches: {effects:?}")
    };
    let error = "no such letter".to_string();
    let again = app.update(Event::FetchFailed { id, error });
    assert!(again.is_empty(), "{again:?}");
    assert!(app.update(Event::Clock(5)).is_empty());
    let next = app.update(Action::Down);
    assert!(
        matches!(next.first(), Some(Effect::Fetch(_))),
        "another letter is fetched: {next:?}"
    );
}

#[test]
fn no_replay_while_the_edit_is_being_kept() {
    use crate::tui::app::Dialog;
    let mut app = loaded(3);
    let id = app.selected_id().unwrap();
    app.dialog = Some(Dialog::ReviewEdit {
        id: id.clone(),
        text: "{\"n\":9}".into(),
        diff: Vec::new(),
        encoded: None,
    });
    let effects = app.update(Action::Submit);
    assert!(matches!(effects.first(), Some(Effect::SaveEdit { .. })));
    assert!(app.update(Action::Replay).is_empty(), "refused until kept");
    assert!(app.status.contains("being kept"), "{}", app.status);
    app.update(Event::Done {
        id: id.clone(),
        state: crate::engine::LetterState::Edited,
        message: "kept".into(),
    });
    assert_eq!(app.update(Action::Replay), vec![Effect::PlanReplay(id)]);
}

#[test]
fn a_write_on_the_open_letter_fetches_it_again_for_its_history() {
    let mut app = loaded(3);
    let id = app.selected_id().unwrap();
    let mut l = super::super::app::tests::letter(2);
    l.id = Some(id.clone());
    app.store.cache_put(l);
    assert!(
        app.update(Action::Open)
            .iter()
            .all(|e| !matches!(e, Effect::Fetch(_))),
        "from the cache"
    );
    let effects = app.update(Event::Done {
        id: id.clone(),
        state: crate::engine::LetterState::Replayed,
        message: "replayed to trades:0@7".into(),
    });
    assert_eq!(
        effects,
        vec![Effect::Fetch(id.clone())],
        "the history changed"
    );
    app.update(Action::Back);
    let again = app.update(Action::Open);
    assert_eq!(again, vec![Effect::Fetch(id)], "not from the stale cache");
}

#[test]
fn scan_progress_and_live_growth_are_counted_apart() {
    let mut app = App::new("d".into(), false, false);
    app.start();
    app.update(Event::Total(1000));
    app.update(Event::Arrived {
        generation: 1,
        count: 250,
        live: false,
    });
    assert_eq!((app.scanned, app.total), (250, Some(1000)));
    app.update(Event::CaughtUp { generation: 1 });
    app.update(Event::Arrived {
        generation: 1,
        count: 3,
        live: true,
    });
    assert_eq!(app.total, Some(1003));
    app.update(Event::Arrived {
        generation: 7,
        count: 99,
        live: true,
    });
    assert_eq!(app.total, Some(1003), "another stream's counts are ignored");
}

#[test]
fn a_letter_replayed_in_this_session_shows_failing_again_live() {
    use crate::engine::{LetterId, LetterState};
    let mut app = loaded(3);
    app.update(Event::Clock(1_795_000_000_100));
    let id = LetterId::Kafka {
        partition: 0,
        offset: 1,
    };
    // This session replays letter 0:1 (a group replay reports the same two actions).
    app.update(Event::Replayed {
        id: id.clone(),
        key: Some(b"K1".to_vec()),
        replay_id: "r-1".into(),
        topic: "trades".into(),
    });
    app.update(Event::Done {
        id: id.clone(),
        state: LetterState::Replayed,
        message: "replayed to trades:0@7".into(),
    });
    let state = |app: &App| {
        let pos = app.store.find(&id).unwrap();
        app.store.row(pos).unwrap().state
    };
    assert_eq!(state(&app), LetterState::Replayed);
    // The replayed message fails again: a new letter carrying its replay id arrives.
    let mut again = super::super::app::tests::letter(3);
    again.key = Some(b"K1".to_vec());
    again.headers.push("morgue-replay-id", "r-1");
    app.update(Event::Letters {
        generation: 1,
        letters: vec![again],
    });
    assert_eq!(state(&app), LetterState::FailedAgain);
    // Filtering by the state finds it, in this session as in a fresh one.
    super::super::app::tests::filter(&mut app, "state:failed-again");
    assert_eq!(app.visible_len(), 1);
}
