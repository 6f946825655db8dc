use super::*;

fn entry(i: usize, state: EntryState) -> LedgerEntry {
    LedgerEntry {
        id: format!("3:{i}"),
        state,
        by: "ann@jump".into(),
        at_ms: 1_765_000_000_000 + i as i64,
        version: 2,
        session: "s-1".into(),
        source: Some(format!("orders/1/{i}")),
        force: i.is_multiple_of(2),
        pending: None,
        history: Vec::new(),
        edited_value: None,
    }
}

fn full(i: usize) -> LedgerEntry {
    let key = Some(EncodedBytes::of(b"5f0c7d2e-9a41-4b6e-8c3d-000000000042"));
    let mut e = entry(i, EntryState::Replaying);
    e.pending = Some(PendingReplay {
        replay_id: format!("r-{i}"),
        topic: "orders".into(),
        partition: 4,
        from_offset: 99,
        edited: true,
        key: key.clone(),
        txn: "tok".into(),
        earlier: vec!["old-1".into(), "old-2".into()],
        transform: None,
    });
    e.history = vec![ReplayRecord {
        replay_id: "r-0".into(),
        topic: "orders-retry".into(),
        partition: 1,
        offset: 7,
        by: "bob@jump".into(),
        at_ms: 5,
        edited: false,
        key,
        transform: None,
    }];
    e.edited_value = Some(EncodedBytes::of(&[0xff, 0x00, 0x7f]));
    e
}

/// A format-2 record's entries, read whole, checked against what the lean read judges.
fn batch(bytes: &[u8]) -> Vec<LedgerEntry> {
    let whole = entries(bytes).unwrap();
    match decode(bytes).unwrap() {
        Decoded::Batch(lean) => {
            assert_eq!(lean.len(), whole.len());
            for (r, e) in lean.iter().zip(&whole) {
                let of = Record::of(e);
                assert_eq!(
                    (
                        &r.id,
                        r.state,
                        r.version,
                        &r.source,
                        r.force,
                        !r.history.is_empty()
                    ),
                    (
                        &of.id,
                        of.state,
                        of.version,
                        &of.source,
                        of.force,
                        !e.history.is_empty()
                    )
                );
            }
        }
        _ => panic!("not a batch: {}", String::from_utf8_lossy(bytes)),
    }
    whole
}

#[test]
fn every_field_of_every_state_round_trips() {
    let mut entries = vec![full(0), full(1)];
    for (i, s) in EntryState::ALL.iter().enumerate() {
        entries.push(entry(10 + i, *s));
    }
    entries[3].source = None;
    entries[4].at_ms -= 50_000;
    let records = encode(&entries).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].1, entries.len());
    assert!(records[0].0.starts_with(b"{\"format\":2,"));
    assert_eq!(batch(&records[0].0), entries);
}

#[test]
fn a_transformed_replay_keeps_its_expression_in_format_3() {
    let expr = ".price |= -.";
    let mut entries: Vec<_> = (0..20).map(full).collect();
    for e in &mut entries {
        if let Some(p) = &mut e.pending {
            p.transform = Some(expr.into());
        }
        e.history[0].replay_id = format!("h-{}", e.id);
        e.history[0].transform = Some(format!("envelope:{expr}"));
    }
    let records = encode(&entries).unwrap();
    assert_eq!(records.len(), 1);
    let text = String::from_utf8_lossy(&records[0].0);
    assert!(text.starts_with("{\"format\":3,"), "{text}");
    // Each expression once, however many letters carry it.
    assert_eq!(text.matches(expr).count(), 2, "{text}");
    assert_eq!(batch(&records[0].0), entries);
    // A record without a transform stays format 2, readable by a format-2 morgue.
    let plain = encode(&[full(1)]).unwrap();
    assert!(plain[0].0.starts_with(b"{\"format\":2,"));
}

#[test]
fn shared_strings_are_written_once() {
    let entries: Vec<_> = (0..50).map(full).collect();
    let (bytes, n) = &encode(&entries).unwrap()[0];
    assert_eq!(*n, 50);
    let text = String::from_utf8_lossy(bytes);
    for s in [
        "\"orders\"",
        "\"tok\"",
        "\"old-1\"",
        "\"bob@jump\"",
        "\"ann@jump\"",
    ] {
        assert_eq!(text.matches(s).count(), 1, "{s} in {text}");
    }
    // Field names are not repeated per letter either.
    assert_eq!(text.matches("replay_id").count(), 0);
}

#[test]
fn a_large_write_is_split_in_order_and_sessions_start_a_record() {
    let mut entries: Vec<_> = (0..3000).map(full).collect();
    entries[2000].session = "s-2".into();
    let records = encode(&entries).unwrap();
    assert!(records.len() >= 3, "{}", records.len());
    assert!(records.iter().all(|(b, _)| b.len() <= MAX_RECORD + 4096));
    let mut back = Vec::new();
    for (bytes, n) in &records {
        let b = batch(bytes);
        assert_eq!(b.len(), *n);
        let sessions: std::collections::HashSet<_> = b.iter().map(|e| e.session.clone()).collect();
        assert_eq!(sessions.len(), 1);
        back.extend(b);
    }
    assert_eq!(back, entries);
}

#[test]
fn format_1_records_are_read_and_newer_ones_recognised() {
    let e = full(3);
    let v1 = serde_json::to_vec(&e).unwrap();
    match decode(&v1).unwrap() {
        Decoded::One(r) => assert_eq!((r.id.as_ref(), r.version), ("3:3", 2)),
        _ => panic!("format 1 not read as one entry"),
    }
    let newer = br#"{"format":4,"anything":[1,2]}"#;
    assert!(matches!(decode(newer).unwrap(), Decoded::Newer(4)));
    // Whitespace before the marker changes nothing.
    let spaced = br#"{ "format" : 4 }"#;
    assert!(matches!(decode(spaced).unwrap(), Decoded::Newer(4)));
}

#[test]
fn broken_records_are_refused_with_what_is_wrong() {
    for (bytes, says) in [
        (&br#"{"format":2,"by":"a","at_ms":1,"entries":[["0:1",1,9,null,0,0,null,[],null]]}"#[..], "unknown state 9"),
        (br#"{"format":2,"by":"a","at_ms":1,"entries":[["0:1",1,1,null,0,0,["r",4,0,0,0,null,0,[]],[],null]]}"#, "string #4"),
        (br#"{"format":2,"by":"a"}"#, "missing field"),
        (b"not json", "expected"),
        (br#"{"other":1}"#, "missing field"),
    ] {
        let err = decode(bytes).err().unwrap_or_else(|| panic!("accepted {}", String::from_utf8_lossy(bytes)));
        assert!(err.contains(says), "{err} (wanted {says})");
    }
}

#[test]
fn the_format_1_fixture_reads_as_single_entries() {
    let text = include_str!("../../../tests/fixtures/ledger_v1.jsonl");
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let bytes = serde_json::to_vec(&v["value"]).unwrap();
        assert!(matches!(decode(&bytes).unwrap(), Decoded::One(_)), "{line}");
        let e: LedgerEntry = serde_json::from_slice(&bytes).unwrap();
        // Written again in format 2, the entry is the same.
        let (b2, _) = &encode(std::slice::from_ref(&e)).unwrap()[0];
        assert_eq!(batch(b2), vec![e]);
        n += 1;
    }
    assert_eq!(n, 13);
}
