//! `--transform EXPR` (and `--transform-envelope`) on `replay` and `export`: the
//! expression compiled once (a mistake is a usage error with its column), the dry
//! run's per-letter diffs, and the closing count: changed, unchanged, failed.

use serde_json::json;

use super::UsageError;
use crate::engine::model::encoding::EncodedBytes;
use crate::engine::transform::diff::diff;
use crate::engine::transform::{Applied, Jq, Spec};
use crate::engine::write::plan::ReplayPlan;

/// The transform options shared by `replay` and `export`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TransformArgs {
    /// Fix each letter with a jq expression (jaq) first: `.` is its decoded value (a
    /// replay starts from its kept edit, if any), and `$key`, `$headers`, `$topic`,
    /// `$partition`, `$offset`, `$id`, `$timestamp`, `$error` its context; the result is
    /// written back in the value's own format (under its schema for Avro, Protobuf,
    /// JSON Schema). A letter it fails for (an error, no value, several, null, a result
    /// the schema refuses) is not sent: replay skips it with reason `transform-failed`,
    /// export leaves it out; the others go on
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
    pub transform: Option<String>,
    /// With --transform: `.` is `{key, value, headers}` and the result's fields
    /// replace the letter's (one left out stays as it was)
    #[arg(long, requires = "transform")]
    pub transform_envelope: bool,
}

impl TransformArgs {
    /// The compiled expression, or None without `--transform`.
    pub fn compile(&self) -> Result<Option<Jq>, UsageError> {
        let Some(expr) = &self.transform else {
            return Ok(None);
        };
        let spec = Spec {
            expr: expr.clone(),
            envelope: self.transform_envelope,
        };
        Jq::compile(spec)
            .map(Some)
            .map_err(|e| UsageError(format!("--transform: {e}")))
    }
}

/// How many letters a transform changed, left alone and failed for.
#[derive(Debug, Default)]
pub struct TransformTally {
    changed: u64,
    unchanged: u64,
    failed: u64,
    /// The first few failures, `id: why`.
    first: Vec<String>,
}

/// Failures quoted in the closing line.
const QUOTED: usize = 3;

impl TransformTally {
    /// Counts one letter's result.
    pub fn add(&mut self, id: &str, a: &Applied) {
        match a {
            Applied::Changed(_) => self.changed += 1,
            Applied::Unchanged => self.unchanged += 1,
            Applied::Failed(why) => {
                self.failed += 1;
                if self.first.len() < QUOTED {
                    self.first.push(format!("{id}: {why}"));
                }
            }
        }
    }

    /// `transform 'EXPR': N changed, M unchanged, K failed (first: …)`.
    pub fn line(&self, jq: &Jq) -> String {
        let mut line = format!(
            "transform '{}': {} changed, {} unchanged, {} failed",
            jq.spec(),
            self.changed,
            self.unchanged,
            self.failed
        );
        if !self.first.is_empty() {
            line.push_str(&format!(" (first: {})", self.first.join("; ")));
        }
        line
    }
}

/// A dry run's line for one letter: what would be sent, and what the transform
/// changes, path by path (a failed letter is reported as the replay would).
pub fn dry_json(p: &ReplayPlan, a: &Applied) -> serde_json::Value {
    match a {
        Applied::Failed(why) => json!({
            "id": p.letter_id, "status": "skipped", "reason": "transform-failed", "error": why,
        }),
        Applied::Unchanged => json!({
            "id": p.letter_id, "status": "dry-run", "topic": p.topic, "edited": p.edited,
            "transform": "unchanged",
        }),
        Applied::Changed(c) => {
            let mut v = json!({
                "id": p.letter_id, "status": "dry-run", "topic": p.topic, "edited": p.edited,
                "transform": "changed",
                "changes": diff(&c.before, &c.after).iter().map(|e| e.to_json()).collect::<Vec<_>>(),
            });
            if let Some(k) = &c.key {
                v["key"] = json!(k.as_deref().map(EncodedBytes::of));
            }
            if c.headers.is_some() {
                v["headers"] = p.headers.iter().map(|h| json!({"name": h.name, "value": h.value.as_deref().map(EncodedBytes::of)})).collect();
            }
            v
        }
    }
}
