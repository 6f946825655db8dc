//! `morgue info`: how many letters the DLQ holds (per partition for Kafka), and how
//! many of them have a state in the ledger — one JSON object.

use serde_json::json;

use super::BackendArgs;
use super::backend::Dlq;

/// Prints the DLQ's size and ledger size.
pub async fn run(backend: &BackendArgs) -> anyhow::Result<()> {
    let target = backend.target()?;
    let opened = target.dlq.open().await?;
    let with_state = opened.ledger.count().await?;
    let mut out = json!({
        "dlq": opened.ledger.dlq(),
        "letters": opened.source.count().await?,
        "letters_with_state": with_state,
        "read_only": target.read_only,
    });
    if let Dlq::Kafka { cfg, topic } = &target.dlq {
        let (c, t) = (cfg.clone(), topic.clone());
        let marks = tokio::task::spawn_blocking(move || {
            let consumer = c.browse_consumer()?;
            c.watermarks(&consumer, &t)
        })
        .await??;
        out["partitions"] = marks
            .iter()
            .map(|&(p, lo, hi)| json!({"partition": p, "low": lo, "high": hi, "letters": hi - lo}))
            .collect();
    }
    super::print_line(out)
}
