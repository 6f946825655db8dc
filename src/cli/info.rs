//! `morgue info`: how many letters the DLQ holds (per partition for Kafka), and how
//! many of them have a state in the ledger — one JSON object. A Kafka count from
//! offsets is an upper bound (transaction markers and compaction leave gaps) and says
//! so (`"exact": false`); `--exact` reads the topic and counts.

use serde_json::json;
use tokio::sync::mpsc;

use super::BackendArgs;
use super::backend::Dlq;
use crate::engine::read::source::{SourceEvent, StartAt};

/// Prints the DLQ's size and ledger size.
pub async fn run(backend: &BackendArgs, exact: bool) -> anyhow::Result<()> {
    let target = backend.target()?;
    let opened = target.dlq.open().await?;
    let with_state = opened.ledger.count().await?;
    let kafka = matches!(target.dlq, Dlq::Kafka { .. });
    let letters = if exact && kafka {
        count_by_reading(&opened).await?
    } else {
        opened.source.count().await?
    };
    let mut out = json!({
        "dlq": opened.ledger.dlq(),
        "letters": letters,
        "exact": exact || !kafka,
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
            .map(|&(p, lo, hi)| json!({"partition": p, "low": lo, "high": hi, "offsets": hi - lo}))
            .collect();
    }
    super::print_line(out)
}

/// Reads the whole DLQ (index fields only are kept) and counts its letters.
async fn count_by_reading(opened: &super::backend::Opened) -> anyhow::Result<u64> {
    let (tx, mut rx) = mpsc::channel(crate::engine::read::source::AHEAD);
    let source = opened.source.clone();
    let reader = tokio::spawn(async move { source.stream(StartAt::Beginning, false, tx).await });
    let mut n = 0u64;
    while let Some(event) = rx.recv().await {
        if let SourceEvent::Letters(batch) = event {
            n += batch.len() as u64;
        }
    }
    reader.await??;
    Ok(n)
}
