use super::*;
use crate::backends::kafka::ledger_codec::{Decoded, decode};
use crate::engine::model::ledger::EntryState;

fn entry(id: &str, version: u64) -> LedgerEntry {
    LedgerEntry {
        id: id.into(),
        state: EntryState::Resolved,
        by: "ann@jump".into(),
        at_ms: 1,
        version,
        session: String::new(),
        source: None,
        force: false,
        pending: None,
        history: Vec::new(),
        edited_value: None,
    }
}

fn view() -> View {
    View::new(KafkaConfig::new("127.0.0.1:1"), "dlq.morgue-ledger")
}

fn fold(v: &mut View, offset: i64, e: LedgerEntry) -> bool {
    let bytes = serde_json::to_vec(&e).unwrap();
    v.fold(offset, &bytes, &Record::of(&e), Some(e.clone()))
        .unwrap()
}

#[test]
fn verdicts_are_kept_per_offset_with_gaps_for_markers() {
    let mut v = view();
    assert!(fold(&mut v, 10, entry("0:1", 1)));
    // Offset 11 is a commit marker of an older version's transaction: no record.
    assert!(!fold(&mut v, 12, entry("0:1", 1)));
    assert!(fold(&mut v, 13, entry("0:1", 2)));
    assert_eq!(v.verdicts(10), Some(vec![true]));
    assert_eq!(v.verdicts(11), None);
    assert_eq!(v.verdicts(12), Some(vec![false]));
    assert_eq!(v.verdicts(13), Some(vec![true]));
    assert_eq!(v.verdicts(9), None);
    assert_eq!(v.verdicts(14), None);
    // A format-2 record at 15 holds three entries; the second repeats a version.
    let batch = vec![entry("0:1", 3), entry("0:1", 3), entry("0:2", 1)];
    assert_eq!(fold_entries(&mut v, 15, &batch), vec![true, false, true]);
    assert_eq!(v.verdicts(15), Some(vec![true, false, true]));
    assert_eq!(v.verdicts(14), None);
    assert_eq!(v.fold.slot("0:1").map(|s| s.version), Some(3));
    // Entries of a batch are read back from memory, then from the spill file.
    assert_eq!(v.subset(&["0:2".into()], &[]).unwrap().len(), 1);
    v.recent.clear();
    let s = v.subset(&["0:1".into(), "0:2".into()], &[]).unwrap();
    assert_eq!(s.get("0:1").map(|e| e.version), Some(3));
    assert_eq!(s.get("0:2").map(|e| e.version), Some(1));
}

#[test]
fn recent_entries_are_read_from_memory_and_checked_for_their_id() {
    let mut v = view();
    let mut held = entry("0:1", 1);
    held.state = EntryState::Replaying;
    held.source = Some("orders/0/7".into());
    assert!(fold(&mut v, 3, held));
    assert!(fold(&mut v, 4, entry("0:2", 1)));
    // No broker at 127.0.0.1:1: these come from memory and the spill file.
    let s = v
        .subset(&["0:2".into(), "0:9".into()], &["orders/0/7".into()])
        .unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(
        s.copy_holder("orders/0/7", "1:1").map(|e| e.id.as_str()),
        Some("0:1")
    );
    assert!(s.get("0:9").is_none());
    // Dropped from memory, entries are read back from the spill file.
    v.recent.clear();
    let s = v.subset(&["0:1".into(), "0:2".into()], &[]).unwrap();
    assert_eq!(s.get("0:1").map(|e| e.state), Some(EntryState::Replaying));
    assert_eq!(s.get("0:2").map(|e| e.version), Some(1));
    // An entry found under another letter's slot is refused, not returned.
    let at = v.fold.slot("0:2").unwrap().at;
    v.recent.push(at, entry("0:3", 1));
    let e = v.subset(&["0:2".into()], &[]).unwrap_err().to_string();
    assert!(e.contains("'0:2' and letter '0:3' share a hash"), "{e}");
}

/// Folds `entries` as the one format-2 record a write of them makes, at `offset`.
pub(super) fn fold_entries(v: &mut View, offset: i64, entries: &[LedgerEntry]) -> Vec<bool> {
    let records = ledger_codec::encode(entries).unwrap();
    assert_eq!(records.len(), 1);
    let bytes = &records[0].0;
    let Ok(Decoded::Batch(lean)) = decode(bytes) else {
        panic!("not a format-2 record")
    };
    v.fold_record(offset, bytes, &lean, true).unwrap()
}
