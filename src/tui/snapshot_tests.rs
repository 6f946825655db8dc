//! Screens rendered into ratatui's `TestBackend` at 80×24 and compared with the
//! snapshots under `src/tui/snapshots/` (insta). Colours are off, as with NO_COLOR.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{Action, App, Dialog, Event, Screen, Tab};
use super::view::{Theme, draw};
use crate::engine::write::plan::{ReplayPolicy, plan};
use crate::engine::{DeadLetter, Headers, LetterId};

const NO_COLOR: Theme = Theme {
    color: false,
    palette: None,
};

pub(super) fn render(app: &App, width: u16, height: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    t.draw(|f| draw(f, app, NO_COLOR)).expect("draw");
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        let line: String = (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(super) fn spring(offset: i64, value: &[u8]) -> DeadLetter {
    let mut h = Headers::default();
    h.push("kafka_dlt-original-topic", "trades");
    h.push("kafka_dlt-original-partition", 2i32.to_be_bytes());
    h.push("kafka_dlt-original-offset", (1000 + offset).to_be_bytes());
    h.push(
        "kafka_dlt-original-timestamp",
        1_732_700_000_000i64.to_be_bytes(),
    );
    h.push(
        "kafka_dlt-exception-fqcn",
        "com.acme.trades.ValidationException",
    );
    h.push("kafka_dlt-exception-message", "price must be positive: -3");
    h.push(
        "kafka_dlt-exception-stacktrace",
        "com.acme.trades.ValidationException: price must be positive\n\tat org.springframework.kafka.listener.X.invoke(X.java:10)\n\tat com.acme.trades.PriceCheck.validate(PriceCheck.java:42)\n\tat java.base/java.lang.Thread.run(Thread.java:840)",
    );
    DeadLetter::from_record(
        Some(LetterId::Kafka {
            partition: 0,
            offset,
        }),
        Some(1_795_000_000_000 + offset * 1000),
        Some(format!("T-{offset}").into_bytes()),
        Some(value.to_vec()),
        h,
    )
}

pub(super) fn app_with(letters: Vec<DeadLetter>) -> App {
    let mut app = App::new("kafka://127.0.0.1:9092/trades.DLT".into(), false, false);
    app.start();
    app.update(Event::Resize(21, 100));
    app.update(Event::Total(letters.len() as u64));
    app.update(Event::Letters {
        generation: 1,
        letters,
    });
    app.update(Event::CaughtUp { generation: 1 });
    app
}

pub(super) fn opened(value: &[u8]) -> App {
    let mut app = app_with(vec![spring(1, value)]);
    app.update(Action::Open);
    app.update(Event::Fetched(Box::new(spring(1, value))));
    app
}

#[test]
fn list() {
    let letters = (0..30).map(|i| spring(i, br#"{"price": -3}"#)).collect();
    insta::assert_snapshot!(render(&app_with(letters), 80, 24));
}

#[test]
fn list_wide_with_reason_column() {
    let letters = (0..3).map(|i| spring(i, b"{}")).collect();
    insta::assert_snapshot!(render(&app_with(letters), 110, 8));
}

/// Letters keyed by UUIDs from three source topics, with order ids in their messages.
pub(super) fn uuid_keyed() -> Vec<DeadLetter> {
    (0..40)
        .map(|i| {
            let mut l = spring(i, br#"{"price": -3}"#);
            l.key = Some(format!("{i:08x}-3b4d-4e5f-8a7b-9c0d1e2f3a4b").into_bytes());
            l.source.topic = Some(["trades", "orders.v2", "payments-eu"][(i % 3) as usize].into());
            l.failure.message = Some(format!("order {} rejected: price {} below 0", 9000 + i, -i));
            l.failure.attempts = Some(3);
            l
        })
        .collect()
}

#[test]
fn list_with_uuid_keys_at_80_120_and_200_columns() {
    for (w, h) in [(80, 24), (120, 30), (200, 50)] {
        let mut app = app_with(uuid_keyed());
        app.update(Event::Resize(h - 3, w));
        insta::assert_snapshot!(format!("list_uuid_{w}x{h}"), render(&app, w, h));
    }
}

#[test]
fn empty_dlq() {
    insta::assert_snapshot!(render(&app_with(Vec::new()), 80, 6));
}

#[test]
fn read_only_badge() {
    let mut app = app_with(vec![spring(1, b"{}")]);
    app.read_only = true;
    insta::assert_snapshot!(render(&app, 80, 4));
}

#[test]
fn detail_json_payload() {
    insta::assert_snapshot!(render(
        &opened(br#"{"trade_id":"T-1","price":-3,"legs":[{"qty":5}]}"#),
        80,
        16
    ));
}

#[test]
fn detail_binary_payload() {
    insta::assert_snapshot!(render(
        &opened(&[
            0xca, 0xfe, 0x00, 0x01, b'h', b'i', 0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70,
            0x80, 0x90, 0xa0
        ]),
        80,
        8
    ));
}

#[test]
fn detail_names_binary_formats_and_why_one_failed() {
    // MessagePack {"sym": "ACME", "px": -3}: decoded, and named in the header.
    let msgpack = render(&opened(b"\x82\xa3sym\xa4ACME\xa2px\xfd"), 80, 9);
    assert!(msgpack.contains("MessagePack"), "{msgpack}");
    insta::assert_snapshot!(msgpack);
    // A Confluent frame without any schema source: hex, and the reason.
    let framed = render(&opened(b"\x00\x00\x00\x00\x11\x06T-1"), 80, 9);
    assert!(framed.contains("no schema registry"), "{framed}");
    assert!(framed.contains("00000000  00 00 00 00 11"), "{framed}");
}

#[test]
fn a_binary_key_shows_decoded_with_its_format() {
    // A MessagePack key {"acct": 7}; the list shows its bytes, the detail its value.
    let mut l = spring(1, br#"{"price": -3}"#);
    l.key = Some(b"\x81\xa4acct\x07".to_vec());
    let mut app = app_with(vec![l.clone()]);
    app.update(Action::Open);
    app.update(Event::Fetched(Box::new(l)));
    let shown = render(&app, 100, 9);
    assert!(shown.contains(r#"key {"acct":7} (MessagePack)"#), "{shown}");
}

#[test]
fn detail_broken_json() {
    insta::assert_snapshot!(render(
        &opened(br#"{"trade_id": "T-1", "price": 12.5"#),
        80,
        7
    ));
}

#[test]
fn detail_huge_payload() {
    let huge = format!("\"{}\"", "z".repeat(300 * 1024));
    let app = opened(huge.as_bytes());
    let screen = render(&app, 80, 6);
    insta::assert_snapshot!(screen);
}

#[test]
fn detail_headers_decode_spring_numbers() {
    let mut app = opened(b"{}");
    app.update(Action::NextTab);
    assert_eq!(app.detail.tab, Tab::Headers);
    insta::assert_snapshot!(render(&app, 100, 11));
}

#[test]
fn detail_error_marks_the_first_application_frame() {
    let mut app = opened(b"{}");
    app.update(Action::NextTab);
    app.update(Action::NextTab);
    insta::assert_snapshot!(render(&app, 80, 22));
}

#[test]
fn filter_error_in_place() {
    let mut app = app_with(vec![spring(1, b"{}")]);
    app.update(Action::Filter);
    for c in "since:yesterday".chars() {
        app.update(Action::Input(c));
    }
    insta::assert_snapshot!(render(&app, 100, 4));
}

#[test]
fn confirm_replay_dialog() {
    let mut app = app_with(vec![spring(1, br#"{"price": -3}"#)]);
    app.production = true;
    app.update(Action::Replay);
    let policy = ReplayPolicy {
        dlq_topic: "trades.DLT".into(),
        ..ReplayPolicy::default()
    };
    let p = plan(
        &spring(1, br#"{"price": -3}"#),
        None,
        None,
        &policy,
        "rid".into(),
        false,
    )
    .expect("plan");
    app.update(Event::Planned(Box::new(p)));
    assert!(matches!(app.dialog, Some(Dialog::ConfirmReplay { .. })));
    insta::assert_snapshot!(render(&app, 80, 14));
}

#[test]
fn help_screen() {
    let mut app = app_with(Vec::new());
    app.update(Action::Help);
    assert_eq!(app.screen, Screen::Help);
    insta::assert_snapshot!(render(&app, 80, 30));
}

#[test]
fn tiny_terminal_does_not_panic() {
    let app = opened(b"{\"a\":1}");
    for (w, h) in [(1, 1), (10, 3), (20, 2), (0, 0)] {
        let _ = render(&app, w.max(1), h.max(1));
    }
}

#[test]
fn triage_board() {
    let mut letters: Vec<DeadLetter> = (0..12).map(|i| spring(i, b"{}")).collect();
    for i in 12..15 {
        let mut h = Headers::default();
        h.push("x-original-topic", "payments");
        h.push("x-exception-message", "Timeout after 30s");
        letters.push(DeadLetter::from_record(
            Some(LetterId::Kafka {
                partition: 1,
                offset: i,
            }),
            Some(1_795_000_000_000 + i * 60_000),
            None,
            None,
            h,
        ));
    }
    let mut app = app_with(letters);
    app.update(Action::Triage);
    assert_eq!(app.screen, Screen::Triage);
    insta::assert_snapshot!(render(&app, 100, 6));
}

#[test]
fn a_replaying_copy_shows_who_holds_it() {
    let mut l = spring(1, b"{}");
    l.state = crate::engine::LetterState::Replaying;
    l.held_by = Some("ann@jump-1 since 2026-11-28 10:02:03 UTC".into());
    l.copy_of = Some("0:17".into());
    let mut app = app_with(vec![l.clone()]);
    let list = render(&app, 100, 4);
    assert!(list.contains("replaying"), "{list}");
    app.update(Action::Open);
    app.update(Event::Fetched(Box::new(l)));
    for _ in 0..3 {
        app.update(Action::NextTab);
    }
    insta::assert_snapshot!(render(&app, 100, 8));
}

#[test]
fn overview_at_80_120_and_200_columns() {
    use crate::engine::read::overview::{DlqSummary, HOURS};
    use crate::tui::overview::{Overview, draw};
    let now = 1_795_000_000_000i64;
    let hour = 3_600_000i64;
    let dlq =
        |name: &str, letters: u64, per_hour: u64, oldest_h: i64, states: &[(&'static str, u64)]| {
            DlqSummary {
                name: name.into(),
                kind: "kafka",
                partitions: 6,
                letters,
                hourly: (0..HOURS as u64).map(|h| per_hour * (h % 5)).collect(),
                oldest_ms: Some(now - oldest_h * hour),
                retention_ms: Some(7 * 24 * hour),
                states: states.iter().copied().collect(),
                ..DlqSummary::default()
            }
        };
    let ov = Overview {
        cluster: "kafka://127.0.0.1:9092".into(),
        dlqs: vec![
            dlq(
                "orders.DLT",
                48_211,
                120,
                150,
                &[("replayed", 310), ("resolved", 12)],
            ),
            dlq("payments-eu-settlement-retry.dlq", 7, 0, 3, &[]),
            dlq(
                "deadletter-topic",
                1_204_331,
                2_000,
                160,
                &[("replaying", 1)],
            ),
        ],
        selected: 1,
        status: "enter opens a DLQ · r refreshes (also every 10s) · q quits".into(),
        fetched_ms: Some(now),
    };
    for (w, h) in [(80, 24), (120, 30), (200, 50)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("test backend");
        t.draw(|f| draw(f, &ov, NO_COLOR)).expect("draw");
        let buf = t.backend().buffer().clone();
        let text: String = (0..buf.area.height)
            .map(|y| {
                let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
                format!("{}\n", line.trim_end())
            })
            .collect();
        insta::assert_snapshot!(format!("overview_{w}x{h}"), text);
    }
}

#[test]
fn letters_near_deletion_by_retention_are_flagged() {
    let letters = (0..10).map(|i| spring(i, b"{}")).collect();
    let mut app = app_with(letters);
    // Retention two days; now is one day and 5 s after the first letter: letters
    // 0..=4 are deleted within a day.
    app.update(Event::Retention(Some(2 * 86_400_000)));
    app.update(Event::Clock(1_795_000_000_000 + 86_400_000 + 5_000));
    let screen = render(&app, 80, 16);
    let flagged = screen.lines().filter(|l| l.starts_with('!')).count();
    assert_eq!(flagged, 5, "{screen}");
    assert!(screen.contains("oldest deleted in 23h"), "{screen}");
    insta::assert_snapshot!(screen);
    // The triage board says when each group's oldest letter goes.
    app.update(Action::Triage);
    let board = render(&app, 120, 8);
    assert!(board.contains("DELETED"), "{board}");
    assert!(board.contains("!23h"), "{board}");
}

#[test]
fn preview_beside_the_list_at_160_columns() {
    let mut app = app_with(vec![
        spring(0, br#"{"sym":"ACME","price":-3}"#),
        spring(1, br#"{"sym":"INIT","price":-1}"#),
    ]);
    app.update(Event::Resize(27, 160));
    insta::assert_snapshot!(render(&app, 160, 30));
    // `v` hides it; the list takes the whole width again.
    app.update(Action::TogglePreview);
    let hidden = render(&app, 160, 30);
    assert!(!hidden.contains("preview (v hides)") && hidden.contains("preview off"));
}

#[test]
fn history_tab_with_a_replay_that_failed_again() {
    let mut first = spring(0, br#"{"price":-3}"#);
    first.state = crate::engine::LetterState::Replayed;
    first.history = vec![crate::engine::model::letter::ReplayRecord {
        replay_id: "r-1".into(),
        topic: "trades".into(),
        partition: 2,
        offset: 1200,
        by: "ann@jump".into(),
        at_ms: 1_795_000_010_000,
        edited: false,
        key: None,
        transform: None,
    }];
    let mut again = spring(1, br#"{"price":-3}"#);
    again.headers.push("morgue-replay-id", "r-1");
    let mut app = app_with(vec![first, again]);
    app.update(Action::Bottom);
    assert_eq!(
        app.store.row(0).map(|r| r.state),
        Some(crate::engine::LetterState::FailedAgain)
    );
    app.update(Action::Open);
    app.detail.tab = Tab::History;
    let screen = render(&app, 100, 14);
    insta::assert_snapshot!(screen);
}
