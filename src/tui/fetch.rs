//! Fetching one letter in full for the detail view or the preview, off the UI task.
//! Each step says what it waits for ([`Event::FetchWaiting`]), so a fetch that takes
//! more than a second can be explained on screen; a failed fetch ends with one line
//! that says why ([`Event::FetchFailed`]). Its answers go on the runner's fast
//! channel: a fetch never waits behind the live tail or a bulk replay.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::action::Event;
use crate::engine::LetterId;
use crate::engine::read::source::DeadLetterSource;
use crate::engine::write::Writer;

/// Fetches letter `id` of DLQ `dlq`: the letter with its ledger state, its schemas,
/// a kept edit; then, for a replayed letter, whether `group` has read the replay.
pub(super) async fn fetch(
    source: Arc<dyn DeadLetterSource>,
    writer: Arc<Writer>,
    decoders: Arc<crate::engine::decoders::Registry>,
    group: Option<String>,
    dlq: String,
    id: LetterId,
    tx: mpsc::Sender<Event>,
) {
    let waiting = |what: String| Event::FetchWaiting {
        id: id.clone(),
        what,
    };
    // Sends on the fast channel fail only once the TUI has quit: nobody is left to show the fetch to.
    let _ = tx
        .send(waiting(format!(
            "the letter from {dlq} and its state from the ledger"
        )))
        .await;
    let mut l = match source.fetch(&id).await {
        Ok(l) => l,
        Err(e) => {
            let error = e.to_string();
            let _ = tx.send(Event::FetchFailed { id, error }).await;
            return;
        }
    };
    let _ = tx
        .send(waiting("its schema from the schema registry".into()))
        .await;
    // Schemas are fetched here, off the UI task.
    crate::engine::decoders::prepare_letters(&decoders, std::slice::from_ref(&l)).await;
    let _ = tx
        .send(waiting("its kept edit from the ledger".into()))
        .await;
    if let Some(value) = writer.edited_value(&l).await.ok().flatten() {
        let id = id.clone();
        let _ = tx.send(Event::EditedValue { id, value }).await;
    }
    let replayed = !l.history.is_empty();
    let _ = tx.send(Event::Fetched(Box::new(l.clone()))).await;
    // Then, for a replayed letter, whether its group has read the replay.
    if replayed {
        l.consumed = writer.consumed(&l, group.as_deref()).await;
        if l.consumed.is_some() {
            let _ = tx.send(Event::Fetched(Box::new(l))).await;
        }
    }
}
