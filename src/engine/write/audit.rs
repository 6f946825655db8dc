//! The local audit log: one JSON line per write (replay, resolve, edit), appended
//! and synced to disk before the write is reported as done.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One audited write.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord<'a> {
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Who, `user@host`.
    pub by: &'a str,
    /// `replay`, `resolve`, …
    pub action: &'a str,
    /// The DLQ (`kafka://brokers/topic` or `mongodb://…/db.collection`).
    pub dlq: &'a str,
    /// Letter id.
    pub id: &'a str,
    /// Target topic of a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<&'a str>,
    /// Target partition of a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// Target offset of a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// The replay's `morgue-replay-id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_id: Option<&'a str>,
    /// True when an edited value was sent.
    pub edited: bool,
    /// The transform the payload was made with, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform: Option<&'a str>,
}

/// An append-only JSON-lines file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The log at `path` (created with its directory on first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AuditLog { path: path.into() }
    }

    /// `$MORGUE_AUDIT_LOG`, else `$XDG_STATE_HOME/morgue/audit.jsonl`, else
    /// `~/.local/state/morgue/audit.jsonl`.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("MORGUE_AUDIT_LOG") {
            return PathBuf::from(p);
        }
        let state = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("."));
        state.join("morgue").join("audit.jsonl")
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it to disk; the error names the file.
    pub async fn append(&self, record: &AuditRecord<'_>) -> Result<(), String> {
        self.append_all(std::slice::from_ref(record)).await
    }

    /// Appends records in one write and one sync (a bulk replay's window). The file is
    /// written and synced on a blocking thread, never on the async runtime's.
    pub async fn append_all(&self, records: &[AuditRecord<'_>]) -> Result<(), String> {
        if records.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(records.len() * 256);
        for r in records {
            serde_json::to_writer(&mut lines, r).map_err(|e| format!("audit record: {e}"))?;
            lines.push(b'\n');
        }
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_synced(&path, &lines))
            .await
            .map_err(|e| format!("audit log: background task failed: {e}"))?
    }
}

/// Appends `lines` to the file at `path` (created with its directory) and syncs it.
fn write_synced(path: &Path, lines: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write audit log '{}': {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(fail)?;
    f.write_all(lines).map_err(fail)?;
    f.sync_data().map_err(fail)
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_one_line_per_record() {
        let dir = std::env::temp_dir().join(format!("morgue-audit-{}", std::process::id()));
        let log = AuditLog::new(dir.join("sub/audit.jsonl"));
        for id in ["0:1", "0:2"] {
            log.append(&AuditRecord {
                at: now_rfc3339(),
                by: "ann@jump",
                action: "replay",
                dlq: "kafka://b/orders.DLT",
                id,
                topic: Some("orders"),
                partition: Some(0),
                offset: Some(7),
                replay_id: Some("r"),
                edited: false,
                transform: None,
            })
            .await
            .unwrap();
        }
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["id"], "0:2");
        assert_eq!(lines[1]["action"], "replay");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn an_unwritable_path_is_named() {
        let log = AuditLog::new("/proc/morgue-cannot/audit.jsonl");
        let rec = AuditRecord {
            at: now_rfc3339(),
            by: "a",
            action: "resolve",
            dlq: "d",
            id: "0:1",
            topic: None,
            partition: None,
            offset: None,
            replay_id: None,
            edited: false,
            transform: None,
        };
        assert!(
            log.append(&rec)
                .await
                .unwrap_err()
                .contains("'/proc/morgue-cannot/audit.jsonl'")
        );
    }
}
