use super::*;
use crate::engine::Headers;
use crate::engine::read::store::Store;

const KEY: &str = "4f1c2a9e-7b3d-4e5f-9a8b-1c2d3e4f5a6b";
const MIN: i64 = 60_000;

fn record(replay_id: &str, at_ms: i64) -> ReplayRecord {
    ReplayRecord {
        replay_id: replay_id.into(),
        topic: "orders".into(),
        partition: 0,
        offset: 7,
        by: "ann@jump".into(),
        at_ms,
        edited: false,
        key: None,
        transform: None,
    }
}

fn letter(partition: i32, offset: i64, ts: i64, key: &str, tag: Option<&str>) -> DeadLetter {
    let mut h = Headers::default();
    h.push("kafka_dlt-original-topic", "orders");
    if let Some(t) = tag {
        h.push(MORGUE_REPLAY_ID, t);
    }
    DeadLetter::from_record(
        Some(LetterId::Kafka { partition, offset }),
        Some(ts),
        Some(key.as_bytes().to_vec()),
        Some(b"{}".to_vec()),
        h,
    )
}

fn replayed(partition: i32, offset: i64, at_ms: i64, replay_id: &str) -> DeadLetter {
    let mut l = letter(partition, offset, 1_000, KEY, None);
    l.state = LetterState::Replayed;
    l.history = vec![record(replay_id, at_ms)];
    l
}

fn id(p: i32, o: i64) -> LetterId {
    LetterId::Kafka {
        partition: p,
        offset: o,
    }
}

#[test]
fn a_letter_carrying_the_replay_id_is_the_message_failing_again() {
    let mut w = Watch::new(10 * MIN);
    let x = replayed(0, 1, 100 * MIN, "r-1");
    w.register(&id(0, 1), x.key.as_deref(), &x.history);
    // Another key, long after the window: the replay id alone links it.
    let y = letter(1, 9, 500 * MIN, "other-key", Some("r-1"));
    assert_eq!(w.observe(&y), vec![id(0, 1)]);
    // Seeing it twice counts it once.
    assert!(w.observe(&y).is_empty());
    let o = w.outcome(&id(0, 1), 501 * MIN).unwrap();
    assert_eq!(
        o,
        AfterReplay::FailedAgain {
            letters: vec!["1:9".into()]
        }
    );
    assert_eq!(o.text(), "failed again ×1 (latest 1:9)");
    let mut x = x;
    w.settle(&mut x, 501 * MIN);
    assert_eq!(x.state, LetterState::FailedAgain);
}

#[test]
fn the_same_key_and_topic_counts_only_within_the_window_after_the_replay() {
    let mut w = Watch::new(10 * MIN);
    let x = replayed(0, 1, 100 * MIN, "r-1");
    w.register(&id(0, 1), x.key.as_deref(), &x.history);
    // Before the replay, after the window, another topic, another key: not it.
    assert!(w.observe(&letter(0, 2, 99 * MIN, KEY, None)).is_empty());
    assert!(w.observe(&letter(0, 3, 111 * MIN, KEY, None)).is_empty());
    let mut other_topic = letter(0, 4, 101 * MIN, KEY, None);
    other_topic.source.topic = Some("payments".into());
    assert!(w.observe(&other_topic).is_empty());
    assert!(
        w.observe(&letter(0, 5, 101 * MIN, "another", None))
            .is_empty()
    );
    // The letter itself is never its own failure.
    assert!(w.observe(&replayed(0, 1, 100 * MIN, "r-1")).is_empty());
    assert_eq!(
        w.outcome(&id(0, 1), 105 * MIN),
        Some(AfterReplay::Watching {
            until_ms: 110 * MIN
        })
    );
    assert_eq!(
        w.outcome(&id(0, 1), 110 * MIN),
        Some(AfterReplay::Confirmed {
            since_ms: 110 * MIN
        })
    );
    assert_eq!(w.confirmed_by(110 * MIN), vec![id(0, 1)]);
    // Within the window: it failed again, and is no longer confirmed.
    assert_eq!(
        w.observe(&letter(1, 6, 109 * MIN, KEY, None)),
        vec![id(0, 1)]
    );
    assert!(matches!(
        w.outcome(&id(0, 1), 200 * MIN),
        Some(AfterReplay::FailedAgain { .. })
    ));
    assert!(w.confirmed_by(200 * MIN).is_empty());
}

#[test]
fn a_new_replay_is_watched_afresh_and_keeps_the_count() {
    let mut w = Watch::new(10 * MIN);
    let x = replayed(0, 1, 100 * MIN, "r-1");
    w.register(&id(0, 1), x.key.as_deref(), &x.history);
    w.observe(&letter(1, 6, 101 * MIN, "k", Some("r-1")));
    let mut again = x.history.clone();
    again.push(record("r-2", 120 * MIN));
    w.register(&id(0, 1), x.key.as_deref(), &again);
    assert_eq!(
        w.outcome(&id(0, 1), 125 * MIN),
        Some(AfterReplay::Watching {
            until_ms: 130 * MIN
        })
    );
    w.observe(&letter(1, 8, 126 * MIN, "k", Some("r-2")));
    assert_eq!(
        w.outcome(&id(0, 1), 126 * MIN),
        Some(AfterReplay::FailedAgain {
            letters: vec!["1:6".into(), "1:8".into()]
        })
    );
}

#[test]
fn a_failure_read_before_its_replayed_letter_still_counts() {
    let mut w = Watch::new(10 * MIN);
    // Partition 1 is read before partition 0.
    assert!(
        w.observe(&letter(1, 6, 101 * MIN, "k", Some("r-1")))
            .is_empty()
    );
    let x = replayed(0, 1, 100 * MIN, "r-1");
    w.register(&id(0, 1), x.key.as_deref(), &x.history);
    assert!(matches!(
        w.outcome(&id(0, 1), 101 * MIN),
        Some(AfterReplay::FailedAgain { .. })
    ));
}

#[test]
fn pending_work_keeps_its_state_and_the_ledger_key_is_used() {
    let o = AfterReplay::FailedAgain { letters: vec![] };
    assert_eq!(shown_state(LetterState::Edited, &o), LetterState::Edited);
    assert_eq!(
        shown_state(LetterState::Replaying, &o),
        LetterState::Replaying
    );
    assert_eq!(
        shown_state(LetterState::Confirmed, &o),
        LetterState::FailedAgain
    );
    // From the ledger: the key comes from the replay record.
    let mut state = LedgerState::default();
    let mut r = record("r-1", 100 * MIN);
    r.key = Some(crate::engine::model::encoding::EncodedBytes::of(
        KEY.as_bytes(),
    ));
    state.insert(crate::engine::model::ledger::LedgerEntry {
        id: "0:1".into(),
        state: crate::engine::model::ledger::EntryState::Replayed,
        by: "ann@jump".into(),
        at_ms: 100 * MIN,
        version: 2,
        session: String::new(),
        source: None,
        force: false,
        pending: None,
        history: vec![r],
        edited_value: None,
    });
    let mut w = Watch::of_ledger(&state, 10 * MIN);
    assert_eq!(w.earliest_ms(), Some(100 * MIN));
    assert_eq!(
        w.observe(&letter(2, 3, 104 * MIN, KEY, None)),
        vec![id(0, 1)]
    );
}

#[test]
fn the_store_moves_rows_as_failures_arrive_and_windows_end() {
    let mut s = Store::new();
    s.set_confirm_after(10 * MIN);
    s.tick(100 * MIN);
    // Partition 1's new failure is read before partition 0's replayed letter.
    s.insert(&letter(1, 6, 102 * MIN, KEY, None));
    s.insert(&replayed(0, 1, 101 * MIN, "r-1"));
    s.insert(&replayed(0, 2, 101 * MIN, "r-2"));
    let state = |s: &Store, i: LetterId| s.row(s.find(&i).unwrap()).unwrap().state;
    assert_eq!(state(&s, id(0, 1)), LetterState::Replayed);
    s.rescan_failures();
    assert_eq!(state(&s, id(0, 1)), LetterState::FailedAgain);
    // Tagged, arriving live.
    s.insert(&letter(1, 7, 103 * MIN, "k", Some("r-2")));
    assert_eq!(state(&s, id(0, 2)), LetterState::FailedAgain);
    // A third replay passes its window without a failure.
    s.insert(&replayed(0, 3, 101 * MIN, "r-3"));
    let mut other = replayed(0, 3, 101 * MIN, "r-3");
    other.key = Some(b"third".to_vec());
    s.insert(&other);
    s.tick(105 * MIN);
    assert_eq!(state(&s, id(0, 3)), LetterState::Replayed);
    s.tick(111 * MIN);
    assert_eq!(state(&s, id(0, 3)), LetterState::Confirmed);
    assert_eq!(state(&s, id(0, 1)), LetterState::FailedAgain);
    let mut fetched = replayed(0, 3, 101 * MIN, "r-3");
    s.settle(&mut fetched);
    assert_eq!(fetched.state, LetterState::Confirmed);
    assert!(fetched.outcome.unwrap().text().starts_with("confirmed"));
}
