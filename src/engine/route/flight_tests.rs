//! The flight's rules: same key in order and one at a time, offsets stored only past a
//! contiguous prefix, a revoked partition forgotten.

use super::*;

fn msg(p: i32, offset: i64, key: Option<&str>) -> Incoming {
    Incoming {
        topic: "t".into(),
        partition: p,
        offset,
        key: key.map(|k| k.as_bytes().to_vec()),
        ..Incoming::default()
    }
}

#[test]
fn the_offset_moves_only_past_a_contiguous_prefix_of_finished_messages() {
    let mut f = Flight::default();
    for o in 0..4 {
        assert!(f.admit(msg(0, o, None)).is_some(), "null keys run at once");
    }
    assert_eq!(f.len(), 4);
    assert_eq!(
        f.finish(&msg(0, 2, None)),
        (None, None),
        "0 and 1 still run"
    );
    assert_eq!(f.finish(&msg(0, 1, None)), (None, None));
    assert_eq!(
        f.finish(&msg(0, 0, None)).1,
        Some(2),
        "0, 1, 2 done: store 2"
    );
    assert_eq!(f.finish(&msg(0, 3, None)).1, Some(3));
    assert!(f.is_empty());
}

#[test]
fn a_key_runs_one_message_at_a_time_in_offset_order() {
    let mut f = Flight::default();
    let k = Some("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b");
    assert!(f.admit(msg(0, 10, k)).is_some());
    assert!(f.admit(msg(0, 11, k)).is_none(), "waits behind 10");
    assert!(
        f.admit(msg(0, 12, Some("other"))).is_some(),
        "another key runs"
    );
    assert!(f.admit(msg(0, 13, k)).is_none());
    let (next, store) = f.finish(&msg(0, 10, k));
    assert_eq!((next.map(|m| m.offset), store), (Some(11), Some(10)));
    let (next, store) = f.finish(&msg(0, 12, Some("other")));
    assert_eq!((next, store), (None, None), "11 still runs");
    let (next, store) = f.finish(&msg(0, 11, k));
    assert_eq!((next.map(|m| m.offset), store), (Some(13), Some(12)));
    let (next, store) = f.finish(&msg(0, 13, k));
    assert_eq!((next.map(|m| m.offset), store), (None, Some(13)));
    assert!(f.admit(msg(0, 14, k)).is_some(), "the key is free again");
}

#[test]
fn partitions_are_apart_and_a_forgotten_one_drops_its_waiting_messages() {
    let mut f = Flight::default();
    let k = Some("k");
    assert!(f.admit(msg(0, 5, k)).is_some());
    assert!(f.admit(msg(1, 7, None)).is_some());
    assert!(f.admit(msg(0, 6, k)).is_none());
    assert_eq!(f.finish(&msg(1, 7, None)).1, Some(7), "partition 1 alone");
    assert_eq!(f.forget(&("t".into(), 0)), 2, "5 running and 6 waiting");
    assert!(f.is_empty());
    // 5 finishes after its partition was revoked: nothing to store, nothing to start,
    // and its key is free for the partition read again.
    assert_eq!(f.finish(&msg(0, 5, k)), (None, None));
    assert!(f.admit(msg(0, 5, k)).is_some(), "5 read again runs at once");
}

#[test]
fn a_message_delivered_again_while_held_is_dropped() {
    let mut f = Flight::default();
    assert!(f.admit(msg(0, 3, None)).is_some());
    assert!(f.admit(msg(0, 3, None)).is_none());
    assert_eq!(f.len(), 1);
    assert_eq!(f.drop_waiting(), 0);
}

#[test]
fn a_parked_message_holds_its_offset_but_not_a_place_in_flight() {
    let mut f = Flight::default();
    assert!(f.admit(msg(0, 0, Some("k"))).is_some());
    assert!(f.admit(msg(0, 1, None)).is_some());
    f.park(&msg(0, 0, Some("k")));
    assert_eq!(f.len(), 1, "only 1 runs");
    assert!(
        f.admit(msg(0, 2, Some("k"))).is_none(),
        "the key still waits for 0"
    );
    assert_eq!(f.finish(&msg(0, 1, None)).1, None, "0 is not done");
    let (next, store) = f.finish(&msg(0, 0, Some("k")));
    assert_eq!((next.map(|m| m.offset), store), (Some(2), Some(1)));
    assert_eq!(f.len(), 1, "2 runs now");
}

#[test]
fn a_message_running_when_its_partition_is_forgotten_is_stale_once() {
    let mut f = Flight::default();
    let running = f.admit(msg(0, 4, Some("k"))).unwrap();
    assert!(f.admit(msg(0, 5, Some("k"))).is_none(), "5 waits behind k");
    assert!(f.admit(msg(0, 6, None)).is_some());
    f.finish(&msg(0, 6, None));
    assert_eq!(f.forget(&(String::from("t"), 0)), 2, "4 runs, 5 waits");
    assert!(f.is_empty());
    // Read again from 4 after a rewind: the copy of 4 waits behind the stale run's key.
    assert!(f.admit(msg(0, 4, Some("k"))).is_none());
    assert!(f.holds(&("t".into(), 0), 4));
    assert!(f.take_stale(&running), "the run from before the rewind");
    assert!(!f.take_stale(&running), "stale once");
    assert!(!f.take_stale(&msg(0, 5, Some("k"))), "5 never ran");
    assert!(!f.take_stale(&msg(0, 6, None)), "6 had finished");
    let copy = f.release_key(&running).unwrap();
    assert_eq!(copy.offset, 4, "the copy starts when the stale run ends");
    assert_eq!(f.finish(&copy), (None, Some(4)), "and its outcome stores 4");
}
