//! The selection under arrivals: at the top, from other partitions, under a filter,
//! with a dialog or the detail open, oldest first, and on the triage board.

use super::super::app::tests::{letter, loaded, planned, selected_offset};
use crate::engine::{DeadLetter, Headers, LetterId};
use crate::tui::app::{Action, App, Effect, Event, Screen};

/// A letter of partition `p` from source topic `topic`.
fn on(p: i32, offset: i64, topic: &str) -> DeadLetter {
    let mut h = Headers::default();
    h.push("kafka_dlt-original-topic", topic);
    h.push("kafka_dlt-exception-fqcn", "x.Boom");
    DeadLetter::from_record(
        Some(LetterId::Kafka {
            partition: p,
            offset,
        }),
        Some(1_795_000_000_000 + offset),
        Some(format!("K{p}-{offset}").into_bytes()),
        Some(b"{}".to_vec()),
        h,
    )
}

fn arrive(app: &mut App, letters: Vec<DeadLetter>) {
    app.update(Event::Letters {
        generation: app.generation,
        letters,
    });
}

fn selected(app: &App) -> Option<LetterId> {
    app.selected_id()
}

#[test]
fn following_on_the_newest_letter_keeps_the_newest_selected() {
    let mut app = loaded(5);
    arrive(&mut app, vec![letter(5)]);
    assert_eq!(selected_offset(&app), 5);
    assert_eq!(app.list.unseen, 0);
}

#[test]
fn off_the_newest_letter_arrivals_never_move_the_selection() {
    let mut app = loaded(10);
    app.update(Action::Down);
    app.update(Action::Down);
    app.update(Action::Down);
    assert_eq!(selected_offset(&app), 6);
    let line = app.list.selected - app.list.scroll;
    for batch in 0..5 {
        arrive(
            &mut app,
            (10 + batch * 3..13 + batch * 3).map(letter).collect(),
        );
        assert_eq!(selected_offset(&app), 6, "batch {batch}");
        assert_eq!(
            app.list.selected - app.list.scroll,
            line,
            "the row stays on its line"
        );
    }
    assert_eq!(app.list.unseen, 15);
    assert!(crate::tui::view::header_text(&app).contains("15 new ↑"));
    app.update(Action::Top);
    assert_eq!(
        (selected_offset(&app), app.list.unseen),
        (24, 0),
        "g jumps to them"
    );
}

#[test]
fn letters_of_other_partitions_never_move_the_selection() {
    let mut app = loaded(0);
    arrive(&mut app, (0..6).map(|o| on(0, o, "trades")).collect());
    app.update(Action::Down);
    let chosen = selected(&app);
    // Partition 1's letters have lower offsets and older timestamps.
    arrive(&mut app, (0..4).map(|o| on(1, o, "trades")).collect());
    arrive(&mut app, vec![on(0, 6, "trades"), on(1, 4, "trades")]);
    assert_eq!(selected(&app), chosen);
}

#[test]
fn under_a_filter_the_selection_stays_and_a_kept_letter_stays_selected() {
    let mut app = loaded(0);
    arrive(
        &mut app,
        (0..8)
            .map(|o| on(0, o, if o % 2 == 0 { "a" } else { "b" }))
            .collect(),
    );
    for _ in 0..3 {
        app.update(Action::Down);
    }
    let chosen = selected(&app);
    assert_eq!(
        chosen,
        Some(LetterId::Kafka {
            partition: 0,
            offset: 4
        })
    );
    // The filter keeps the selected letter: it stays selected.
    app.update(Action::Filter);
    for c in "topic:a".chars() {
        app.update(Action::Input(c));
    }
    app.update(Action::Submit);
    assert_eq!(app.visible_len(), 4);
    assert_eq!(selected(&app), chosen);
    arrive(
        &mut app,
        (8..20)
            .map(|o| on(0, o, if o % 3 == 0 { "a" } else { "b" }))
            .collect(),
    );
    assert_eq!(selected(&app), chosen, "matching and other letters arrived");
    assert_eq!(app.list.unseen, 4, "only matches are new: 9, 12, 15, 18");
}

#[test]
fn a_dialog_or_the_detail_holds_its_letter_while_letters_arrive() {
    let mut app = loaded(5);
    let chosen = selected(&app);
    assert!(app.list.follow && app.at_newest());
    app.update(Action::Replay);
    arrive(&mut app, vec![letter(5), letter(6)]);
    assert_eq!(selected(&app), chosen, "an open dialog stops following");
    app.update(Event::Planned(planned(&app)));
    let effects = app.update(Action::Submit);
    let Some(Effect::Replay { id, .. }) = effects.first() else {
        panic!("{effects:?}")
    };
    assert_eq!(
        Some(id.clone()),
        chosen,
        "the replay sends the chosen letter"
    );
    assert_eq!(selected(&app), chosen, "closing the dialog stays on it");
    assert_eq!(app.list.unseen, 2);

    app.update(Action::Open);
    assert_eq!(app.screen, Screen::Detail);
    arrive(&mut app, vec![letter(7)]);
    assert_eq!(selected(&app), chosen);
    app.update(Action::Back);
    assert_eq!(selected(&app), chosen);
}

#[test]
fn f_jumps_to_the_newest_and_follows_and_again_stops_following() {
    let mut app = loaded(5);
    app.update(Action::Down);
    arrive(&mut app, vec![letter(5)]);
    assert_eq!((selected_offset(&app), app.list.unseen), (3, 1));
    app.update(Action::ToggleFollow);
    assert!(app.list.follow);
    assert_eq!((selected_offset(&app), app.list.unseen), (5, 0));
    app.update(Action::ToggleFollow);
    assert!(!app.list.follow);
    arrive(&mut app, vec![letter(6)]);
    assert_eq!(
        selected_offset(&app),
        5,
        "not following, even on the newest"
    );
}

#[test]
fn oldest_first_keeps_the_row_and_counts_new_letters_below() {
    let mut app = loaded(5);
    app.update(Action::ToggleOrder);
    assert_eq!(selected_offset(&app), 0);
    arrive(&mut app, vec![letter(5), letter(6)]);
    assert_eq!((selected_offset(&app), app.list.unseen), (0, 2));
    assert!(crate::tui::view::header_text(&app).contains("2 new ↓"));
    app.update(Action::Bottom);
    arrive(&mut app, vec![letter(7)]);
    assert_eq!(selected_offset(&app), 7, "on the newest, following");
}

#[test]
fn the_triage_board_keeps_its_group_as_counts_reorder() {
    let mut app = loaded(0);
    arrive(&mut app, (0..6).map(|o| on(0, o, "a")).collect());
    arrive(&mut app, (6..9).map(|o| on(0, o, "b")).collect());
    app.update(Action::Triage);
    app.update(Action::Down);
    let chosen = app.triage.groups[app.triage.selected].query();
    assert!(chosen.contains("topic:b"), "{chosen}");
    // b overtakes a: the board re-sorts; the selection stays on b.
    arrive(&mut app, (9..20).map(|o| on(0, o, "b")).collect());
    app.update(Event::Clock(app.now_ms + 2_000));
    assert_eq!(app.triage.groups[0].query(), chosen, "b is first now");
    assert_eq!(app.triage.groups[app.triage.selected].query(), chosen);
}

#[test]
fn a_short_list_keeps_the_chosen_letter_on_its_line_as_letters_arrive() {
    let mut app = crate::tui::app::tests::loaded(12);
    app.update(Event::Resize(37, 130));
    app.update(Action::Top);
    for _ in 0..3 {
        app.update(Action::Down);
    }
    let chosen = app.selected_id();
    let line = app.list.selected - app.list.scroll;
    assert_eq!(line, 3);
    for batch in 0..40 {
        let letters = (0..7)
            .map(|i| crate::tui::app::tests::letter(100 + batch * 7 + i))
            .collect();
        app.update(Event::Letters {
            generation: 1,
            letters,
        });
        assert_eq!(app.selected_id(), chosen, "batch {batch}");
        assert_eq!(app.list.selected - app.list.scroll, line, "batch {batch}");
    }
}
