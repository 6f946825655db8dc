//! `morgue dlqs`: every DLQ topic of a Kafka cluster and DLQ collection of a MongoDB
//! database at a glance, one JSON object per DLQ
//! (or a table): letters, arrivals in the last hour and day, the oldest letter's age,
//! time left before retention deletes it, letters by state, and arrivals per hour.

use clap::Args;
use serde_json::json;

use super::{BackendArgs, Output, print_line};
use crate::engine::read::overview::group;
use crate::engine::read::overview::{DlqSummary, age, sparkline};

/// Options of `morgue dlqs`.
#[derive(Debug, Args)]
pub struct DlqsArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Json)]
    pub output: Output,
}

/// Prints the overview of the cluster's DLQs.
pub async fn run(backend: &BackendArgs, args: &DlqsArgs) -> anyhow::Result<()> {
    let clusters = backend.clusters()?;
    let dlqs = clusters.overview().await?;
    let now = chrono::Utc::now().timestamp_millis();
    match args.output {
        Output::Json => {
            for d in &dlqs {
                print_line(summary_json(d, now))?;
            }
        }
        Output::Table if !dlqs.is_empty() => {
            print_line(format!(
                "{:<40} {:>10} {:>7} {:>8} {:>8} {:>10}  {:<24} {}",
                "DLQ", "LETTERS", "1H", "24H", "OLDEST", "DELETED IN", "STATES", "PER HOUR (24H)"
            ))?;
            for d in &dlqs {
                print_line(summary_row(d, now))?;
            }
        }
        Output::Table => {}
    }
    if dlqs.is_empty() {
        eprintln!(
            "morgue: no topic or collection of {} matches {} (--pattern GLOB, or dlq_patterns in the profile)",
            clusters.label(),
            clusters.names.globs.join(" ")
        );
    }
    Ok(())
}

/// One DLQ as JSON.
pub fn summary_json(d: &DlqSummary, now_ms: i64) -> serde_json::Value {
    json!({
        "dlq": d.name,
        "kind": d.kind,
        "partitions": d.partitions,
        "letters": d.letters,
        "exact": d.exact,
        "last_hour": d.last_hour(),
        "last_day": d.last_day(),
        "hourly": d.hourly,
        "oldest": d.oldest_ms.and_then(crate::engine::export::json::rfc3339),
        "oldest_age_s": d.oldest_ms.map(|o| (now_ms - o) / 1000),
        "retention_ms": d.retention_ms,
        "deleted_in_s": d.deleted_in_ms(now_ms).map(|ms| ms / 1000),
        "states": d.states,
    })
}

fn summary_row(d: &DlqSummary, now_ms: i64) -> String {
    format!(
        "{:<40} {:>10} {:>7} {:>8} {:>8} {:>10}  {:<24} {}",
        d.label(),
        format!("{}{}", if d.exact { "" } else { "~" }, group(d.letters)),
        group(d.last_hour()),
        group(d.last_day()),
        d.oldest_ms.map_or("-".into(), |o| age(now_ms - o)),
        d.deleted_in_ms(now_ms).map_or("-".into(), age),
        d.states_text(),
        sparkline(&d.hourly)
    )
}
