//! What a transform would do to a set of letters, for the TUI's transform prompt: the
//! counts (changed, unchanged, failed) over every letter, and the changes of the first
//! few changed ones, line by line. Pure computation: the caller runs it off the UI
//! thread, again for every keystroke.

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

/// `jq` applied to each of `letters`, with the changes of the first `samples` changed.
pub fn preview(jq: &Jq, letters: &[Start], reg: &Registry, samples: usize) -> Preview {
    let mut p = Preview::default();
    for (l, start) in letters {
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
