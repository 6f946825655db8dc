use super::*;
use crate::backends::kafka::KafkaConfig;
use crate::engine::model::ledger::{EntryState, PendingReplay};
use crate::engine::model::letter::ReplayRecord;

/// A view with no broker behind it (nothing here reads one).
fn view() -> View {
    View::new(KafkaConfig::new("127.0.0.1:1"), "dlq.morgue-ledger")
}

/// A small deterministic random source.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const LETTERS: usize = 9000;

/// A window of writes on random letters, at the versions `v` holds (some stale, some
/// forced copies): claims, confirms, releases, resolves and edits.
fn window(v: &mut View, rng: &mut Lcg, n: usize) -> Vec<LedgerEntry> {
    let mut out = Vec::new();
    for _ in 0..n {
        let i = rng.below(LETTERS as u64) as usize;
        let id = format!("0:{i}");
        let cur = v.fold.slot(&id);
        let prev = cur.map_or(0, |s| u64::from(s.version));
        let stale = rng.below(10) == 0;
        let state = match (cur.map(|s| s.state), rng.below(4)) {
            (Some(EntryState::Replaying), 0) => EntryState::New,
            (Some(EntryState::Replaying), _) => EntryState::Replayed,
            (_, 0) => EntryState::Resolved,
            (_, 1) => EntryState::Edited,
            _ => EntryState::Replaying,
        };
        // Letters 0..49 and 50..99 are copies of the same 50 source messages; letters
        // 100..199 of 60 others, named (as the writer does) from their first claim on.
        let source = match i {
            0..100 => Some(format!("orders/0/{}", i % 50)),
            100..200 => (cur.is_some() || state == EntryState::Replaying)
                .then(|| format!("orders/1/{}", i % 60)),
            _ => None,
        };
        let history = match cur {
            Some(s) if s.history || state == EntryState::Replayed => {
                let e = v.clone_entry(&id);
                let mut h = e.map(|e| e.history).unwrap_or_default();
                if state == EntryState::Replayed {
                    h.push(ReplayRecord {
                        replay_id: format!("r-{i}-{prev}"),
                        topic: "orders".into(),
                        partition: 0,
                        offset: i as i64,
                        by: "ann@jump".into(),
                        at_ms: 1,
                        edited: false,
                        key: None,
                        transform: None,
                    });
                }
                h
            }
            _ => Vec::new(),
        };
        out.push(LedgerEntry {
            id,
            state,
            by: "ann@jump".into(),
            at_ms: 1,
            version: if stale { prev } else { prev + 1 },
            session: "s".into(),
            source,
            force: rng.below(8) == 0,
            pending: (state == EntryState::Replaying).then(|| PendingReplay {
                replay_id: format!("r-{i}-{prev}"),
                topic: "orders".into(),
                partition: 0,
                from_offset: 0,
                edited: false,
                key: None,
                txn: "t".into(),
                earlier: Vec::new(),
                transform: None,
            }),
            history,
            edited_value: None,
        });
    }
    out
}

impl View {
    fn clone_entry(&mut self, id: &str) -> Option<LedgerEntry> {
        let at = self.fold.slot(id)?.at;
        self.entries(&[at]).unwrap().remove(&at)
    }
}

/// Folds `entries` as the records a write of them makes, from `offset` on; their
/// verdicts, and the next offset.
fn fold(v: &mut View, mut offset: i64, entries: &[LedgerEntry]) -> (Vec<bool>, i64) {
    let mut out = Vec::new();
    for (bytes, _) in crate::backends::kafka::ledger_codec::encode(entries).unwrap() {
        let Ok(crate::backends::kafka::ledger_codec::Decoded::Batch(lean)) =
            crate::backends::kafka::ledger_codec::decode(&bytes)
        else {
            panic!("not a format-2 record")
        };
        out.extend(v.fold_record(offset, &bytes, &lean, true).unwrap());
        offset += 1;
    }
    (out, offset)
}

/// Every letter's entry and every source's holder, as `v` answers them.
fn everything(v: &mut View) -> (Vec<Option<LedgerEntry>>, Vec<Option<String>>) {
    let ids: Vec<String> = (0..LETTERS).map(|i| format!("0:{i}")).collect();
    let sources: Vec<String> = (0..50)
        .map(|i| format!("orders/0/{i}"))
        .chain((0..60).map(|i| format!("orders/1/{i}")))
        .collect();
    let s = v.subset(&ids, &[]).unwrap();
    let entries = ids.iter().map(|id| s.get(id).cloned()).collect();
    let holders = sources
        .iter()
        .map(|src| {
            v.fold
                .source_holder(src)
                .map(|_| v.subset(&[], std::slice::from_ref(src)))
        })
        .map(|s| s.and_then(|s| s.unwrap().entries().next().map(|e| e.id.clone())))
        .collect();
    (entries, holders)
}

/// A new view that loaded the checkpoint of `letters` letters made of `parts`, up to `upto`.
fn loaded(parts: &[Vec<u8>], upto: i64, letters: usize) -> View {
    let mut v = view();
    let mut cand = Candidate::new(Head {
        id: format!("c-{upto}"),
        upto,
        parts: parts.len() as u32,
        letters: letters as u64,
        by: "ann@jump".into(),
        at_ms: 1,
    });
    for (i, p) in parts.iter().enumerate() {
        v.load_part(&mut cand, i, p).unwrap();
    }
    v.install(cand.ready().unwrap());
    v
}

#[test]
fn a_checkpoint_and_the_log_after_it_decide_as_the_whole_log_does() {
    let mut rng = Lcg(7);
    let mut whole = view();
    let mut offset = 0;
    for _ in 0..40 {
        let w = window(&mut whole, &mut rng, 400);
        offset = fold(&mut whole, offset, &w).1;
        whole.next = offset;
    }
    // A checkpoint of the first records, loaded into a new session's view.
    let parts = whole.checkpoint_parts().unwrap();
    assert!(
        parts.len() > 1,
        "{} letters in {} part(s)",
        whole.fold.len(),
        parts.len()
    );
    let mut from_ckpt = loaded(&parts, offset, whole.fold.len());
    assert_eq!(from_ckpt.fold.len(), whole.fold.len());
    assert_eq!(everything(&mut from_ckpt), everything(&mut whole));
    // The same records after it get the same verdicts in both, and the same state.
    let mut refused = 0;
    for _ in 0..40 {
        let w = window(&mut whole, &mut rng, 400);
        let (a, next) = fold(&mut whole, offset, &w);
        let (b, _) = fold(&mut from_ckpt, offset, &w);
        assert_eq!(a, b, "record {offset}");
        refused += a.iter().filter(|ok| !**ok).count();
        offset = next;
    }
    assert!(refused > 0, "the log should hold refused writes too");
    // A checkpoint of the view that started from one (its base and what came since),
    // loaded into a third view, holds the same state again.
    from_ckpt.next = offset;
    let parts = from_ckpt.checkpoint_parts().unwrap();
    let mut third = loaded(&parts, offset, from_ckpt.fold.len());
    assert_eq!(everything(&mut third), everything(&mut whole));
    whole.recent.clear();
    from_ckpt.recent.clear();
    from_ckpt.part_cache = None;
    assert_eq!(everything(&mut from_ckpt), everything(&mut whole));
}

#[test]
fn a_place_outside_any_part_is_an_error_not_a_wrong_entry() {
    let mut v = view();
    let e = v
        .part_entry(BASE_AT | (3 * PART_LETTERS as u64 + 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("in no loaded checkpoint part"), "{e}");
    assert_eq!(v.part_entry(42).unwrap(), None);
}
