//! What a router did, counted as outcomes come in: the closing line of `morgue route`
//! and the figures an embedding service reports. Pure bookkeeping: no I/O.

use crate::engine::model::letter::Reason;
use crate::engine::route::router::Routed;

/// Counts of what the router did, printed when it stops.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouterStats {
    /// Messages processed successfully.
    pub processed: u64,
    /// Retries: a failed attempt retried in place, or a message written to a retry
    /// topic (`--retry-topics`).
    pub retried: u64,
    /// Dead letters written with reason `failed`.
    pub failed: u64,
    /// Dead letters written with reason `max-attempts-exceeded`.
    pub max_attempts_exceeded: u64,
    /// Dead letters written with reason `expired`.
    pub expired: u64,
    /// Times the DLQ refused a write after all attempts (the partition was paused).
    pub dlq_stalls: u64,
    /// Messages left uncommitted at shutdown (consumed again on restart).
    pub abandoned: u64,
}

impl RouterStats {
    /// Counts one finished message's outcome.
    pub fn count(&mut self, outcome: &Routed) {
        match outcome {
            Routed::Processed { .. } => self.processed += 1,
            Routed::Retrying { .. } => self.retried += 1,
            Routed::DeadLettered { reason, .. } => match reason {
                Reason::Expired => self.expired += 1,
                Reason::MaxAttemptsExceeded => self.max_attempts_exceeded += 1,
                _ => self.failed += 1,
            },
            Routed::Abandoned | Routed::DlqUnavailable { .. } => self.abandoned += 1,
        }
    }
}
