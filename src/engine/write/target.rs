//! Where replays go: what the writer needs of a target cluster. Every claim (a window
//! of letters announced together) sends under a transactional id of its own, named by
//! a token kept in the ledger, so whoever takes the claim over can fence exactly that
//! sender; a token is never used again after a send under it failed.

use async_trait::async_trait;
use thiserror::Error;

use crate::engine::model::ledger::PendingReplay;
use crate::engine::write::plan::ReplayPlan;

/// One message to send: the plan and the partition announced for it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// What to send.
    pub plan: ReplayPlan,
    /// Where.
    pub partition: i32,
}

/// A send that did not complete.
#[derive(Debug, Error)]
pub enum TargetError {
    /// Nothing reached the target (the transaction was aborted or never begun).
    #[error("{0}")]
    NotSent(String),
    /// The outcome is unknown: look for the replay ids before sending again.
    #[error("{0}")]
    Unknown(String),
    /// The target refuses (missing topic, authorisation, size): retrying will not help.
    #[error("{0}")]
    Refused(String),
}

/// Where replays go: a Kafka cluster, written with fenced transactional producers.
#[async_trait]
pub trait ReplayTarget: Send + Sync {
    /// The partition a message with `key` goes to in `topic`, and that partition's end offset now.
    async fn place(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        source_partition: Option<i32>,
    ) -> Result<(i32, i64), TargetError>;

    /// Initialises the sender of claim `txn`, fencing any other sender of it (its open
    /// transaction is aborted, its later commits refused).
    async fn open(&self, txn: &str) -> Result<(), TargetError>;

    /// Drops the sender of claim `txn` unused (nothing of the claim was left to send).
    async fn close(&self, txn: &str);

    /// Fences the sender of claim `txn` without keeping a sender of it (a takeover).
    async fn fence(&self, txn: &str) -> Result<(), TargetError>;

    /// Sends `msgs` in one transaction as the sender of claim `txn` (opened first); their
    /// offsets. After any error the sender is dropped: `txn` is never used again.
    async fn send(&self, txn: &str, msgs: &[Outgoing]) -> Result<Vec<i64>, TargetError>;

    /// For each pending replay, the offset of its message if it was committed to its target.
    async fn find(&self, pending: &[PendingReplay]) -> Result<Vec<Option<i64>>, TargetError>;

    /// The offset `group` has committed on `topic` partition `partition` (None: nothing).
    async fn committed(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, TargetError>;
}
