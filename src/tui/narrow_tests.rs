//! Every screen at 50, 80, 120 and 200 columns: what must stay does (the list's KEY
//! and ERROR, the header's live state and `N new`, the triage board's ERROR, the
//! overview's DLQ names, the dialogs' last line), with snapshots at 50×20 and 80×24.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{Action, App, Dialog, Event};
use super::snapshot_tests::{app_with, opened, render, spring, uuid_keyed};
use super::view::Theme;

const SIZES: [(u16, u16); 4] = [(50, 20), (80, 24), (120, 30), (200, 50)];

/// The list of UUID-keyed letters, with the cursor moved off the newest and two
/// letters arrived since.
fn busy_list(w: u16, h: u16) -> App {
    let mut letters = uuid_keyed();
    let late = letters.split_off(38);
    let mut app = app_with(letters);
    app.update(Event::Resize(h - 3, w));
    app.update(Action::Down);
    app.update(Event::Letters {
        generation: 1,
        letters: late,
    });
    app
}

#[test]
fn the_list_keeps_key_error_live_state_and_news_at_every_width() {
    for (w, h) in SIZES {
        let app = busy_list(w, h);
        let screen = render(&app, w, h);
        let mut lines = screen.lines();
        let header = lines.next().unwrap_or_default();
        assert!(
            header.contains("live ●") && header.contains("2 new ↑"),
            "{w}: {header}"
        );
        assert!(header.contains("trades.DLT"), "{w}: {header}");
        let titles = lines.next().unwrap_or_default();
        assert!(
            titles.contains("KEY") && titles.contains("ERROR"),
            "{w}: {titles}"
        );
        // The letter at the cursor (0x24, the 37th): the start and end of its key and
        // at least 15 characters of its message.
        let row = lines
            .find(|l| l.contains("order 9036"))
            .unwrap_or_else(|| panic!("{w}: no row of letter 36:\n{screen}"));
        assert!(row.contains("00000024"), "{w}: {row}");
        assert!(row.contains("order 9036 reje"), "{w}: {row}");
        if w <= 80 {
            insta::assert_snapshot!(format!("narrow_list_{w}x{h}"), screen);
        }
    }
}

#[test]
fn the_header_says_when_the_server_stops_answering() {
    for (w, h) in SIZES {
        let mut app = busy_list(w, h);
        app.update(Event::Clock(1_795_000_100_000));
        app.update(Event::Silent {
            generation: 1,
            server: "127.0.0.1:9092".into(),
            since_ms: 1_795_000_093_000,
        });
        let screen = render(&app, w, h);
        let header = screen.lines().next().unwrap_or_default();
        assert!(header.contains("no answer 7 s"), "{w}: {header}");
        assert!(!header.contains("live"), "{w}: {header}");
        assert!(
            screen.contains("no answer from 127.0.0.1:9092"),
            "{w}:\n{screen}"
        );
        app.update(Event::Answering {
            generation: 1,
            server: "127.0.0.1:9092".into(),
        });
        let header = render(&app, w, h)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(header.contains("live ●"), "{w}: {header}");
        if w == 50 {
            app.update(Event::Silent {
                generation: 1,
                server: "127.0.0.1:9092".into(),
                since_ms: 1_795_000_093_000,
            });
            insta::assert_snapshot!("narrow_silent_50x20", render(&app, w, h));
        }
        // A new stream (a new filter) starts without the old silence.
        app.update(Event::Silent {
            generation: 1,
            server: "127.0.0.1:9092".into(),
            since_ms: 1_795_000_093_000,
        });
        app.restream(None);
        let generation = app.generation;
        app.update(Event::CaughtUp { generation });
        let header = render(&app, w, h)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(!header.contains("no answer"), "{w}: {header}");
    }
}

#[test]
fn the_triage_board_keeps_error_first_at_every_width() {
    for (w, h) in SIZES {
        let mut app = app_with(uuid_keyed());
        app.update(Event::Resize(h - 3, w));
        app.update(Action::Triage);
        let screen = render(&app, w, h);
        let titles = screen.lines().nth(1).unwrap_or_default();
        assert!(titles.starts_with("COUNT    ERROR"), "{w}: {titles}");
        assert!(titles.contains("SOURCE"), "{w}: {titles}");
        assert!(screen.contains("order # rejected"), "{w}:\n{screen}");
        if w <= 80 {
            insta::assert_snapshot!(format!("narrow_triage_{w}x{h}"), screen);
        }
    }
}

#[test]
fn the_detail_and_the_dialogs_fit_every_width() {
    for (w, h) in SIZES {
        let mut app = opened(br#"{"price": -3, "trade_id": "T-000334"}"#);
        app.update(Event::Resize(h - 3, w));
        let screen = render(&app, w, h);
        assert!(screen.contains("key 'T-1'"), "{w}:\n{screen}");
        assert!(screen.contains("T-000334"), "{w}:\n{screen}");
        app.update(Action::NextTab);
        app.update(Action::NextTab);
        let error = render(&app, w, h);
        assert!(error.contains("price must be positive"), "{w}:\n{error}");
        if w <= 80 {
            insta::assert_snapshot!(format!("narrow_detail_{w}x{h}"), screen);
        }
        // The group replay's question, whole down to its last line.
        let mut app = app_with((0..5).map(|i| spring(i, b"{}")).collect());
        app.update(Event::Resize(h - 3, w));
        app.update(Action::Triage);
        app.update(Action::Replay);
        assert!(matches!(
            app.dialog,
            Some(Dialog::ConfirmReplayGroup { .. })
        ));
        let screen = render(&app, w, h);
        let flat: String = screen
            .split(['│', '\n'])
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(flat.contains("Replay 5 letter(s)"), "{w}:\n{screen}");
        assert!(flat.contains("esc: cancel"), "{w}:\n{screen}");
        if w <= 80 {
            insta::assert_snapshot!(format!("narrow_group_dialog_{w}x{h}"), screen);
        }
    }
}

#[test]
fn the_overview_keeps_the_dlq_names_at_every_width() {
    use crate::engine::read::overview::DlqSummary;
    use crate::tui::overview::{Overview, draw};
    let dlq = |name: &str, letters: u64| DlqSummary {
        name: name.into(),
        kind: "kafka",
        partitions: 3,
        letters,
        ..DlqSummary::default()
    };
    let ov = Overview {
        cluster: "kafka://127.0.0.1:9092".into(),
        dlqs: vec![
            dlq("trades.DLT", 5_000),
            dlq("payments-eu-settlement-retry.dlq", 7),
        ],
        selected: 0,
        status: "enter opens a DLQ".into(),
        fetched_ms: Some(1_795_000_000_000),
    };
    for (w, h) in SIZES {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("test backend");
        t.draw(|f| {
            draw(
                f,
                &ov,
                Theme {
                    color: false,
                    palette: None,
                },
            )
        })
        .expect("draw");
        let buf = t.backend().buffer().clone();
        let screen: String = (0..buf.area.height)
            .map(|y| {
                let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                format!("{}\n", line.trim_end())
            })
            .collect();
        assert!(screen.contains("trades.DLT "), "{w}:\n{screen}");
        assert!(screen.contains("payments-eu"), "{w}:\n{screen}");
        assert!(screen.contains("retry.dlq"), "{w}:\n{screen}");
        assert!(screen.contains("LETTERS"), "{w}:\n{screen}");
        if w <= 80 {
            insta::assert_snapshot!(format!("narrow_overview_{w}x{h}"), screen);
        }
    }
}

#[test]
fn any_text_at_any_size_draws_without_a_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let text = || {
        prop_oneof![
            ".{0,80}",
            "[é😀\u{301}\u{200b}a-z0-9 :.\\-]{0,120}",
            "[\u{0}-\u{1f}\u{7f}]{0,10}",
        ]
    };
    let letter = (
        proptest::collection::vec(any::<u8>(), 0..60),
        text(),
        text(),
        text(),
        text(),
    );
    let case = (
        proptest::collection::vec(letter, 1..6),
        10u16..220,
        3u16..40,
        text(),
    );
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    runner
        .run(&case, |(letters, w, h, query)| {
            let letters = letters
                .into_iter()
                .enumerate()
                .map(|(i, (key, class, message, topic, value))| {
                    let mut l = spring(i as i64, value.as_bytes());
                    l.key = Some(key);
                    l.failure.exception_class = Some(class);
                    l.failure.message = Some(message);
                    l.source.topic = Some(topic);
                    l.headers.push("tenant", value.as_bytes());
                    l
                })
                .collect::<Vec<_>>();
            let first = letters[0].clone();
            let mut app = app_with(letters);
            app.update(Event::Resize(h.saturating_sub(3), w));
            render(&app, w, h);
            app.update(Action::Triage);
            render(&app, w, h);
            app.update(Action::Triage);
            app.update(Action::Filter);
            for c in query.chars() {
                app.update(Action::Input(c));
            }
            render(&app, w, h);
            app.update(Action::Back);
            app.update(Action::Open);
            app.update(Event::Fetched(Box::new(first)));
            for _ in 0..4 {
                render(&app, w, h);
                app.update(Action::NextTab);
            }
            Ok(())
        })
        .expect("no panic on any text at any size");
}
