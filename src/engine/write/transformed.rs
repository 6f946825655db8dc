//! A replay's transform (`--transform`, the TUI's transform prompt): what a letter
//! becomes before it is planned, for a fresh claim and for a takeover alike.
//!
//! The transform starts from the letter's kept edit when it has one, else from its
//! value as it arrived: never from an earlier send, so no value is transformed twice.
//! The expression is kept in the claim (`PendingReplay::transform`); a session that
//! takes the claim over compiles it again and computes the same bytes from the same
//! start. A takeover that cannot (the value's schema unreachable now) still looks for
//! the message: found, it is confirmed; not found, the letter stays `replaying` with its
//! expression and fails with `transform-failed` for this run: nothing else is ever sent
//! in its place, and the next run (the schema back) sends it.

use std::collections::HashMap;
use std::sync::Arc;

use super::verdict::{NotDone, Reason};
use crate::engine::decoders::Registry;
use crate::engine::model::letter::DeadLetter;
use crate::engine::transform::{Applied, Jq, Spec, apply};

/// The letter to plan: `l` with the transform's value, key and headers in place.
pub(super) fn transformed(
    jq: &Jq,
    l: &DeadLetter,
    edited: Option<&[u8]>,
    reg: &Registry,
) -> Result<DeadLetter, NotDone> {
    let applied = apply(jq, l, edited.or(l.value.as_deref()), reg);
    made(jq, l, edited, applied)
}

/// `l` as `applied` (what `jq` made of it, from `edited` or its value) leaves it.
pub(super) fn made(
    jq: &Jq,
    l: &DeadLetter,
    edited: Option<&[u8]>,
    applied: Applied,
) -> Result<DeadLetter, NotDone> {
    let id = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
    let mut out = l.clone();
    out.value = edited.or(l.value.as_deref()).map(<[u8]>::to_vec);
    match applied {
        Applied::Unchanged => {}
        Applied::Changed(c) => c.apply_to(&mut out),
        Applied::Failed(why) => {
            return Err(NotDone::new(
                Reason::TransformFailed,
                format!("{id}: transform '{}' failed: {why}", jq.spec().expr),
            ));
        }
    }
    Ok(out)
}

/// The compiled transforms a run meets: its own, and those of claims it takes over.
pub(super) struct Compiled<'a> {
    given: Option<&'a Jq>,
    kept: HashMap<String, Arc<Jq>>,
}

impl<'a> Compiled<'a> {
    /// Starts with the run's own transform.
    pub(super) fn new(given: Option<&'a Jq>) -> Self {
        Compiled {
            given,
            kept: HashMap::new(),
        }
    }

    /// The run's own transform.
    pub(super) fn given(&self) -> Option<&'a Jq> {
        self.given
    }

    /// The transform a claim kept (its ledger text), compiled once per run.
    pub(super) fn kept(&mut self, text: &str) -> Result<Arc<Jq>, String> {
        if let Some(jq) = self.kept.get(text) {
            return Ok(jq.clone());
        }
        let jq = Arc::new(Jq::compile(Spec::from_ledger(text)).map_err(|e| e.to_string())?);
        self.kept.insert(text.to_string(), jq.clone());
        Ok(jq)
    }
}
