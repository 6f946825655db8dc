//! `morgue info`: how many letters the DLQ holds, per partition, and how many the
//! ledger has a state for — one JSON object.

use serde_json::json;

use super::BackendArgs;
use crate::backends::kafka::replay::load_ledger;
use crate::engine::ledger::LEDGER_SUFFIX;

/// Prints the DLQ's watermarks and ledger size.
pub async fn run(backend: &BackendArgs) -> anyhow::Result<()> {
    let (cfg, topic) = backend.kafka()?;
    let ledger_topic = format!("{topic}{LEDGER_SUFFIX}");
    let ledger = load_ledger(&cfg, &ledger_topic).await?;
    let (c, t) = (cfg.clone(), topic.clone());
    let marks = tokio::task::spawn_blocking(move || {
        let consumer = c.browse_consumer()?;
        c.watermarks(&consumer, &t)
    })
    .await??;
    let total: i64 = marks.iter().map(|m| m.2 - m.1).sum();
    let partitions: Vec<_> = marks
        .iter()
        .map(|&(p, lo, hi)| json!({"partition": p, "low": lo, "high": hi, "letters": hi - lo}))
        .collect();
    let out = json!({
        "topic": topic,
        "brokers": cfg.brokers,
        "letters": total,
        "partitions": partitions,
        "ledger": {"topic": ledger_topic, "letters_with_state": ledger.len()},
    });
    println!("{out}");
    Ok(())
}
