//! `replay --dry-run`: what each letter would be sent as (or, with `--transform`, what
//! the expression changes in it), and what matched, with nothing written.

use std::cell::RefCell;

use serde_json::json;

use super::super::backend::{Opened, Target};
use super::super::transform::{TransformTally, dry_json};
use super::{ReplayArgs, Windows, fetch, id_of, plan_json, print};
use crate::engine::DeadLetter;
use crate::engine::read::counted::Counted;
use crate::engine::read::filter::Filter;
use crate::engine::transform::Jq;
use crate::engine::write::Writer;

/// Prints the dry run of `args` (letters by id, or matching `filter`).
pub(super) async fn dry_run(
    args: &ReplayArgs,
    filter: Option<Filter>,
    (target, opened, writer): (&Target, &Opened, &Writer),
    jq: Option<Jq>,
) -> anyhow::Result<()> {
    let to = args.to.as_deref();
    let tally = RefCell::new(TransformTally::default());
    let dry = |letters: Vec<DeadLetter>| {
        let (decoders, jq, tally) = (&target.decoders, jq.as_ref(), &tally);
        async move {
            for l in &letters {
                let planned = match jq {
                    None => writer
                        .plan(l, to, args.force)
                        .await
                        .map(|p| plan_json(&p, decoders)),
                    Some(jq) => writer.plan_with(l, to, args.force, jq).await.map(|(p, a)| {
                        tally.borrow_mut().add(&p.letter_id, &a);
                        dry_json(&p, &a)
                    }),
                };
                match planned {
                    Ok(line) => print(&line)?,
                    Err(e) => print(
                        &json!({"id": id_of(l), "status": "refused", "error": e.to_string()}),
                    )?,
                }
            }
            Ok::<(), anyhow::Error>(())
        }
    };
    let said = |jq: Option<&Jq>| {
        if let Some(jq) = jq {
            eprintln!("morgue: dry run: {}", tally.borrow().line(jq));
        }
    };
    match filter {
        Some(f) => {
            let mut counted = Counted::default();
            let mut w = Windows::open(opened, &f, None);
            while let Some(letters) = w.next().await? {
                letters
                    .iter()
                    .filter_map(|l| l.id.as_ref())
                    .for_each(|id| counted.insert(id));
                dry(letters).await?;
            }
            let q = args.filter.as_deref().unwrap_or_default();
            said(jq.as_ref());
            eprintln!(
                "morgue: dry run: {} letter(s) match '{q}' now ({}); nothing was written",
                counted.len(),
                counted.bound()
            );
            Ok(())
        }
        None => {
            dry(fetch(target, opened, writer, &args.ids).await?).await?;
            said(jq.as_ref());
            Ok(())
        }
    }
}
