//! `App::update` without a terminal: navigation, the filter line, the replay and
//! resolve flows, and engine events.

use super::*;
use crate::engine::LetterState;
use crate::engine::write::plan::{ReplayPolicy, plan};
use crate::engine::{DeadLetter, Headers};

pub(crate) fn letter(offset: i64) -> DeadLetter {
    let mut h = Headers::default();
    h.push("kafka_dlt-original-topic", "trades");
    h.push("kafka_dlt-exception-fqcn", "x.Boom");
    DeadLetter::from_record(
        Some(LetterId::Kafka {
            partition: 0,
            offset,
        }),
        Some(1_795_000_000_000 + offset),
        Some(format!("K{offset}").into_bytes()),
        Some(format!("{{\"n\":{offset}}}").into_bytes()),
        h,
    )
}

/// An app that has read `n` letters in its first stream.
pub(crate) fn loaded(n: i64) -> App {
    let mut app = App::new("kafka://b/dlq".into(), false, false);
    let effects = app.start();
    assert_eq!(
        effects,
        vec![Effect::Stream {
            generation: 1,
            filter: None
        }]
    );
    app.update(Event::Resize(5, 100));
    app.update(Event::Letters {
        generation: 1,
        letters: (0..n).map(letter).collect(),
    });
    app.update(Event::CaughtUp { generation: 1 });
    app
}

pub(crate) fn selected_offset(app: &App) -> i64 {
    match app.selected_id() {
        Some(LetterId::Kafka { offset, .. }) => offset,
        other => panic!("{other:?}"),
    }
}

#[test]
fn navigation_is_newest_first_and_pages() {
    let mut app = loaded(20);
    assert_eq!(selected_offset(&app), 19, "newest first");
    app.update(Action::Down);
    assert_eq!(selected_offset(&app), 18);
    app.update(Action::PageDown);
    assert_eq!(selected_offset(&app), 13);
    assert_eq!(app.list.scroll, 2, "the selection stays on screen");
    app.update(Action::Bottom);
    assert_eq!(selected_offset(&app), 0);
    app.update(Action::Down);
    assert_eq!(selected_offset(&app), 0, "stops at the end");
    app.update(Action::Top);
    assert_eq!((selected_offset(&app), app.list.scroll), (19, 0));
    app.update(Action::ToggleOrder);
    assert_eq!(selected_offset(&app), 0, "oldest first");
    app.update(Action::Quit);
    assert!(app.quit);
}

#[test]
fn stale_stream_generations_are_dropped() {
    let mut app = loaded(3);
    app.update(Action::Filter);
    for c in "$.n=1".chars() {
        app.update(Action::Input(c));
    }
    let effects = app.update(Action::Submit);
    assert_eq!(
        effects,
        vec![Effect::Stream {
            generation: 2,
            filter: Some("$.n=1".into())
        }]
    );
    assert_eq!(app.store.len(), 0);
    app.update(Event::Letters {
        generation: 1,
        letters: vec![letter(9)],
    });
    assert_eq!(app.store.len(), 0, "a letter from the old stream");
    app.update(Event::Letters {
        generation: 2,
        letters: vec![letter(1)],
    });
    assert_eq!(app.store.len(), 1);
    assert_eq!(app.filter, "$.n=1");
}

#[test]
fn filter_errors_show_in_place_and_submit_nothing() {
    let mut app = loaded(3);
    app.update(Action::Filter);
    for c in "reason:bored".chars() {
        app.update(Action::Input(c));
    }
    let Some(Dialog::Filter { error: Some(e), .. }) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert!(e.message.contains("unknown reason 'bored'"), "{e}");
    assert_eq!(e.pos, 8, "the value's column");
    assert!(app.update(Action::Submit).is_empty());
    assert!(
        matches!(app.dialog, Some(Dialog::Filter { .. })),
        "stays open to fix"
    );
    app.update(Action::Back);
    assert!(app.dialog.is_none());
    assert_eq!(app.store.len(), 3, "nothing was restarted");
}

#[test]
fn opening_fetches_unless_cached() {
    let mut app = loaded(30);
    let effects = app.update(Action::Open);
    assert_eq!(
        effects,
        vec![Effect::Fetch(LetterId::Kafka {
            partition: 0,
            offset: 29
        })]
    );
    assert_eq!(app.screen, Screen::Detail);
    app.update(Event::Fetched(Box::new(letter(29))));
    assert_eq!(
        app.detail.letter.as_ref().and_then(|d| d.id.clone()),
        app.selected_id()
    );
    app.update(Action::NextTab);
    assert_eq!(app.detail.tab, Tab::Headers);
    app.update(Action::PrevTab);
    app.update(Action::PrevTab);
    assert_eq!(app.detail.tab, Tab::History);
    app.update(Action::Back);
    assert_eq!(app.screen, Screen::List);
    let effects = app.update(Action::Open);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Highlight { syntax: "json", .. }]
        ),
        "cached now, so only highlighting: {effects:?}"
    );
}

pub(crate) fn planned(app: &App) -> Box<ReplayPlan> {
    let mut l = letter(selected_offset(app));
    l.id = app.selected_id();
    let policy = ReplayPolicy {
        dlq_topic: "dlq".into(),
        ..ReplayPolicy::default()
    };
    Box::new(plan(&l, None, None, &policy, "rid".into(), false).unwrap())
}

#[test]
fn replay_is_planned_confirmed_then_sent() {
    let mut app = loaded(3);
    let id = app.selected_id().unwrap();
    assert_eq!(
        app.update(Action::Replay),
        vec![Effect::PlanReplay(id.clone())]
    );
    app.update(Event::Planned(planned(&app)));
    assert!(matches!(app.dialog, Some(Dialog::ConfirmReplay { .. })));
    let effects = app.update(Action::Submit);
    assert_eq!(
        effects,
        vec![Effect::Replay {
            id: id.clone(),
            topic: "trades".into()
        }]
    );
    app.update(Event::Done {
        id: id.clone(),
        state: LetterState::Replayed,
        message: "replayed to trades:0@7".into(),
    });
    let pos = app.store.find(&id).unwrap();
    assert_eq!(app.store.row(pos).unwrap().state, LetterState::Replayed);
    assert_eq!(app.status, "replayed to trades:0@7");
}

#[test]
fn production_replays_need_the_topic_typed() {
    let mut app = loaded(3);
    app.production = true;
    app.update(Action::Replay);
    app.update(Event::Planned(planned(&app)));
    assert!(app.update(Action::Submit).is_empty());
    assert!(app.status.contains("type 'trades'"), "{}", app.status);
    for c in "trades".chars() {
        app.update(Action::Input(c));
    }
    assert_eq!(app.update(Action::Submit).len(), 1);
}

#[test]
fn read_only_refuses_writes_and_esc_cancels() {
    let mut app = loaded(2);
    app.read_only = true;
    assert!(app.update(Action::Replay).is_empty());
    assert!(app.update(Action::Resolve).is_empty());
    assert!(app.status.contains("read-only"), "{}", app.status);
    app.read_only = false;
    app.update(Action::Resolve);
    assert!(matches!(app.dialog, Some(Dialog::ConfirmResolve(_))));
    assert!(app.update(Action::Back).is_empty());
    assert!(app.dialog.is_none());
    app.update(Action::Resolve);
    assert!(matches!(
        app.update(Action::Submit).as_slice(),
        [Effect::Resolve(_)]
    ));
}

#[test]
fn copying_needs_the_letter_open() {
    let mut app = loaded(2);
    assert!(app.update(Action::CopyPayload).is_empty());
    app.update(Action::Open);
    app.update(Event::Fetched(Box::new(letter(1))));
    let effects = app.update(Action::CopyPayload);
    assert_eq!(
        effects,
        vec![Effect::Copy {
            what: "payload".into(),
            text: "{\"n\":1}".into()
        }]
    );
    let Some(Effect::Copy { text, .. }) = app.update(Action::CopyLetter).pop() else {
        panic!()
    };
    assert!(text.contains("\"id\": \"0:1\""), "{text}");
    // A profile's mandatory redaction masks what is copied.
    app.redact = Some(crate::engine::export::redact::Redaction::parse("$.n").unwrap());
    let Some(Effect::Copy { text, .. }) = app.update(Action::CopyPayload).pop() else {
        panic!()
    };
    assert_eq!(text, "{\"n\":9}");
    let Some(Effect::Copy { text, .. }) = app.update(Action::CopyLetter).pop() else {
        panic!()
    };
    assert!(text.contains("{\\\"n\\\":9}"), "{text}");
}

#[test]
fn the_triage_board_filters_and_replays_a_group() {
    let mut app = loaded(4);
    app.update(Action::Triage);
    assert_eq!(app.screen, Screen::Triage);
    assert_eq!(app.triage.groups.len(), 1);
    assert_eq!(app.triage.groups[0].count, 4);
    app.update(Action::Replay);
    let Some(Dialog::ConfirmReplayGroup { query, only }) = app.dialog.clone() else {
        panic!("{:?}", app.dialog)
    };
    let fp = crate::engine::read::fingerprint::id(Some("x.Boom"), None);
    assert_eq!(
        (query.clone(), only.len()),
        (format!("topic:trades fingerprint:{fp}"), 4)
    );
    // A letter of the group arriving while the dialog is open is not in what was counted.
    let late = letter(4);
    let late_id = late.id.clone().unwrap();
    app.update(Event::Letters {
        generation: 1,
        letters: vec![late],
    });
    assert_eq!(
        app.matching_rows(&query).len(),
        5,
        "the late letter is of the group"
    );
    assert!(!only.contains(&late_id));
    assert_eq!(
        app.update(Action::Submit),
        vec![Effect::ReplayGroup {
            query: query.clone(),
            only: only.clone(),
        }]
    );
    // The group's query is answered from the index: no re-read.
    assert!(app.update(Action::Open).is_empty());
    assert_eq!((app.screen, app.filter.clone()), (Screen::List, query));
    assert_eq!(app.visible_len(), 5, "the list shows the late letter too");
}

#[test]
fn the_replay_target_can_be_changed_in_the_dialog() {
    let mut app = loaded(2);
    let id = app.selected_id().unwrap();
    app.update(Action::Replay);
    app.update(Event::Planned(planned(&app)));
    for _ in 0.."trades".len() {
        app.update(Action::Backspace);
    }
    assert!(
        app.update(Action::Submit).is_empty(),
        "an empty topic is not sent"
    );
    for c in "trades-v2".chars() {
        app.update(Action::Input(c));
    }
    assert_eq!(
        app.update(Action::Submit),
        vec![Effect::Replay {
            id,
            topic: "trades-v2".into()
        }]
    );
}

pub(crate) fn filter(app: &mut App, q: &str) -> Vec<Effect> {
    app.update(Action::Filter);
    for _ in 0..app.filter.len() {
        app.update(Action::Backspace);
    }
    for c in q.chars() {
        app.update(Action::Input(c));
    }
    app.update(Action::Submit)
}

#[test]
fn index_only_filters_apply_at_once_and_follow_new_letters() {
    let mut app = loaded(6);
    let resolved = {
        let mut l = letter(6);
        l.state = LetterState::Resolved;
        l
    };
    app.update(Event::Letters {
        generation: 1,
        letters: vec![resolved],
    });
    assert!(
        filter(&mut app, "state:resolved").is_empty(),
        "no re-read for an index-only filter"
    );
    assert_eq!(app.visible_len(), 1);
    assert_eq!(selected_offset(&app), 6);
    app.update(Event::Letters {
        generation: 1,
        letters: vec![letter(7)],
    });
    assert_eq!(
        app.visible_len(),
        1,
        "a new letter that does not match stays hidden"
    );
    assert!(filter(&mut app, "-state:resolved").is_empty());
    assert_eq!(app.visible_len(), 7);
    assert!(filter(&mut app, "").is_empty(), "clearing is instant too");
    assert_eq!(app.visible_len(), 8);

    // A payload filter re-reads the DLQ; after it, an index filter re-reads everything once.
    assert_eq!(
        filter(&mut app, "$.n>3"),
        vec![Effect::Stream {
            generation: 2,
            filter: Some("$.n>3".into())
        }]
    );
    assert_eq!(
        filter(&mut app, "topic:trades"),
        vec![Effect::Stream {
            generation: 3,
            filter: None
        }]
    );
    app.update(Event::Letters {
        generation: 3,
        letters: (0..3).map(letter).collect(),
    });
    assert_eq!(app.visible_len(), 3);
}

#[test]
fn marked_letters_are_replayed_together() {
    let mut app = loaded(5);
    app.update(Action::Mark);
    app.update(Action::Mark);
    assert_eq!(app.marked.len(), 2);
    let ids: Vec<LetterId> = app.marked.iter().cloned().collect();
    app.update(Action::Replay);
    assert!(matches!(&app.dialog, Some(Dialog::ConfirmReplayMany(v)) if v.len() == 2));
    assert_eq!(app.update(Action::Submit), vec![Effect::ReplayMany(ids)]);
    assert!(app.marked.is_empty());
    app.update(Action::Mark);
    app.update(Action::Back);
    assert!(app.marked.is_empty(), "esc unmarks");
    assert_eq!(app.screen, Screen::List);
}

#[test]
fn the_header_counts_what_was_read_once_caught_up() {
    use crate::tui::view::count_label;
    // A transactional DLQ: 400 offsets (a commit marker after each letter) hold 200.
    let mut app = App::new("kafka://b/dlq".into(), false, false);
    app.start();
    app.update(Event::Total(400));
    app.update(Event::Letters {
        generation: 1,
        letters: (0..120).map(|i| letter(2 * i)).collect(),
    });
    assert_eq!(
        count_label(&app),
        "120 of ~400 letters",
        "an estimate while loading"
    );
    app.update(Event::Letters {
        generation: 1,
        letters: (120..200).map(|i| letter(2 * i)).collect(),
    });
    app.update(Event::CaughtUp { generation: 1 });
    assert_eq!(count_label(&app), "200 letters", "exact once caught up");
    assert_eq!(count_label(&loaded(1)), "1 letter");
    let mut app = loaded(10);
    filter(&mut app, "state:resolved");
    assert_eq!(count_label(&app), "0 of 10 letters match");
}

#[test]
fn news_arriving_while_a_dialog_is_open_is_kept() {
    let mut app = loaded(3);
    app.update(Action::Filter);
    assert!(app.dialog.is_some());
    app.update(Event::Notice("reading stopped: broker gone".into()));
    assert_eq!(app.status, "reading stopped: broker gone");
    let id = LetterId::Kafka {
        partition: 0,
        offset: 1,
    };
    app.update(Event::EditedValue {
        id: id.clone(),
        value: b"{\"n\":9}".to_vec(),
    });
    assert_eq!(
        app.edits.get(&id).map(Vec::as_slice),
        Some(&b"{\"n\":9}"[..])
    );
    assert!(
        matches!(app.dialog, Some(Dialog::Filter { .. })),
        "the dialog stays open"
    );
}

#[test]
fn relative_times_in_filters_count_from_the_clock_given() {
    let mut app = loaded(20);
    // Letter n was written at 1_795_000_000_000 + n ms.
    app.update(Event::Clock(1_795_000_000_000 + 3_600_000 + 10));
    filter(&mut app, "since:1h");
    assert_eq!(app.visible_len(), 10, "letters 10..20 are within the hour");
    app.update(Event::Clock(1_795_000_000_000 + 3_600_000 + 15));
    filter(&mut app, "since:1h");
    assert_eq!(app.visible_len(), 5, "the same filter, a later clock");
}

#[test]
fn the_preview_follows_the_cursor_with_one_fetch_at_a_time() {
    let mut app = loaded(20);
    assert!(!app.preview_shown(), "too narrow at 100 columns");
    let fetch = |o: i64| {
        vec![Effect::Fetch(LetterId::Kafka {
            partition: 0,
            offset: o,
        })]
    };
    assert_eq!(app.update(Event::Resize(5, 160)), fetch(19));
    // Scrolling while the fetch is out asks for nothing more.
    for _ in 0..3 {
        assert!(app.update(Action::Down).is_empty());
    }
    // The answer for 19 comes back: the letter now under the cursor is fetched next.
    assert_eq!(app.update(Event::Fetched(Box::new(letter(19)))), fetch(16));
    assert_eq!(app.update(Event::Fetched(Box::new(letter(16)))), vec![]);
    assert_eq!(
        app.preview.letter.as_ref().and_then(|l| l.id.clone()),
        app.selected_id()
    );
    // Back up past 17 and 18 to 19: 17 is fetched, and once it is back, 19 comes
    // from the cache without a fetch.
    assert_eq!(app.update(Action::Up), fetch(17));
    assert!(app.update(Action::Up).is_empty());
    assert!(app.update(Action::Up).is_empty());
    assert_eq!(selected_offset(&app), 19);
    assert_eq!(app.update(Event::Fetched(Box::new(letter(17)))), vec![]);
    assert_eq!(
        app.preview.letter.as_ref().and_then(|l| l.id.clone()),
        app.selected_id()
    );
    // A failed fetch does not leave the preview waiting forever.
    app.update(Action::Down);
    app.update(Action::Down);
    app.update(Action::Down);
    app.update(Action::Down);
    let failed = Event::FetchFailed {
        id: LetterId::Kafka {
            partition: 0,
            offset: 18,
        },
        error: "broker gone".into(),
    };
    assert_eq!(app.update(failed), fetch(15));
    // Hidden: nothing is fetched.
    app.update(Action::TogglePreview);
    app.update(Event::Fetched(Box::new(letter(15))));
    assert!(app.update(Action::Down).is_empty());
}
