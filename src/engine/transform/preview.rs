//! What a transform would do to a set of letters, for the TUI's transform prompt: the
//! counts (changed, unchanged, failed) over every letter, and the changes of the first
//! few changed ones, line by line. Pure computation: the caller runs it off the UI
//! thread, again for every keystroke.

use std::sync::atomic::{AtomicBool, Ordering};

use super::diff::diff;
use super::{Applied, Jq, apply};
use crate::engine::decoders::Registry;
use crate::engine::model::letter::DeadLetter;

/// A letter as a preview reads it: the letter, and the value a replay would start
/// from (its kept edit, else its value as it arrived).
pub type Start = (DeadLetter, Option<Vec<u8>>);

/// A transform's effect on a set of letters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preview {
    /// Letters the result differs for.
    pub changed: usize,
    /// Letters sent as they are.
    pub unchanged: usize,
    /// Letters it fails for (not sent).
    pub failed: usize,
    /// The first changed letters: id, then one line per change (`$.price: -3 → 3`).
    pub samples: Vec<(String, Vec<String>)>,
    /// The first failure: id and why.
    pub first_failure: Option<(String, String)>,
}

impl Preview {
    /// How many letters it was worked out on.
    pub fn total(&self) -> usize {
        self.changed + self.unchanged + self.failed
    }
}

/// `jq` applied to each of `letters`, with the changes of the first `samples` changed;
/// the letters are split over the machine's cores (a keystroke's answer is awaited).
pub fn preview(jq: &Jq, letters: &[Start], reg: &Registry, samples: usize) -> Preview {
    preview_until(jq, letters, reg, samples, &AtomicBool::new(false))
}

/// [`preview`], given up between two letters once `stop` is set (the expression
/// typed on): what was counted until then is returned, and not meant to be shown.
pub fn preview_until(
    jq: &Jq,
    letters: &[Start],
    reg: &Registry,
    samples: usize,
    stop: &AtomicBool,
) -> Preview {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 || letters.len() < 256 {
        return preview_one(jq, letters, reg, samples, stop);
    }
    let chunk = letters.len().div_ceil(cores);
    let parts: Vec<Preview> = std::thread::scope(|s| {
        let handles: Vec<_> = letters
            .chunks(chunk)
            .map(|part| s.spawn(move || preview_one(jq, part, reg, samples, stop)))
            .collect();
        handles
            .into_iter()
            // A part that panicked is not a count of zero: the panic goes on.
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut all = Preview::default();
    for p in parts {
        all.changed += p.changed;
        all.unchanged += p.unchanged;
        all.failed += p.failed;
        let room = samples.saturating_sub(all.samples.len());
        all.samples.extend(p.samples.into_iter().take(room));
        if all.first_failure.is_none() {
            all.first_failure = p.first_failure;
        }
    }
    all
}

/// [`preview_until`] on one thread.
fn preview_one(
    jq: &Jq,
    letters: &[Start],
    reg: &Registry,
    samples: usize,
    stop: &AtomicBool,
) -> Preview {
    let mut p = Preview::default();
    for (l, start) in letters {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let id = l.id.as_ref().map(ToString::to_string).unwrap_or_default();
        match apply(jq, l, start.as_deref(), reg) {
            Applied::Unchanged => p.unchanged += 1,
            Applied::Changed(c) => {
                p.changed += 1;
                if p.samples.len() < samples {
                    let mut lines: Vec<String> =
                        diff(&c.before, &c.after).iter().map(|e| e.line()).collect();
                    if let Some(k) = &c.key {
                        let shown = super::vars::bytes_json(k.as_deref());
                        lines.push(format!("key → {}", super::vars::short(&shown)));
                    }
                    if let Some(h) = &c.headers {
                        let names: Vec<&str> = h.0.iter().map(|h| h.name.as_str()).collect();
                        lines.push(format!("headers → {}", names.join(", ")));
                    }
                    p.samples.push((id, lines));
                }
            }
            Applied::Failed(why) => {
                p.failed += 1;
                p.first_failure.get_or_insert((id, why));
            }
        }
    }
    p
}
