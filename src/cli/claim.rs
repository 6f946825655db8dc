//! `morgue claim` and `morgue release`: MongoDB letters claimed as a processor would
//! (`processed: true`) so that none picks them up, or released again; each change is
//! written to the audit log and printed as one JSON line.

use serde_json::json;

use super::replay::{ResolveArgs, confirm, open, parse_id, refuse_early};
use super::{BackendArgs, UsageError};

/// `morgue claim` / `morgue release` (MongoDB only), refused by the engine's policy in a read-only profile.
pub async fn run(backend: &BackendArgs, args: &ResolveArgs, claim: bool) -> anyhow::Result<()> {
    let verb = if claim { "claim" } else { "release" };
    refuse_early(backend, verb, args.ids.len())?;
    let (target, opened, writer) = open(backend, Vec::new(), &args.ids).await?;
    let Some(dlq) = opened.mongo.clone() else {
        return Err(UsageError(format!(
            "{verb} works on MongoDB DLQs (the processed/process_time claim pattern)"
        ))
        .into());
    };
    writer
        .policy()
        .check_writable(&format!("{verb} of {} letters", args.ids.len()))?;
    confirm(
        args.yes,
        &format!("{verb} {} letter(s) in {}", args.ids.len(), dlq.describe()),
    )?;
    let who = crate::engine::model::names::whoami();
    for raw in &args.ids {
        let id = parse_id(raw, &target)?;
        let changed = if claim {
            dlq.claim(&id).await
        } else {
            dlq.release(&id).await
        }?;
        let status = match (claim, changed) {
            (true, true) => "claimed",
            (true, false) => "already-claimed",
            (false, true) => "released",
            (false, false) => "not-claimed",
        };
        if changed {
            let record = crate::engine::write::audit::AuditRecord {
                at: crate::engine::write::audit::now_rfc3339(),
                by: &who,
                action: verb,
                dlq: &dlq.describe(),
                id: raw,
                topic: None,
                partition: None,
                offset: None,
                replay_id: None,
                edited: false,
                transform: None,
            };
            target
                .audit
                .append(&record)
                .await
                .map_err(anyhow::Error::msg)?;
        }
        super::print_line(json!({"id": raw, "status": status}))?;
    }
    Ok(())
}
