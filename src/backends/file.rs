//! An exported file (`morgue export`, see [`bundle`](crate::engine::export::bundle)) as a DLQ
//! to read: the letters stream from the file, their states come from the manifest's
//! ledger entries, and every write is refused (`morgue open` is read-only).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::engine::export::bundle::{Manifest, parse_letter};
use crate::engine::model::error::FailureKind;
use crate::engine::model::ledger::{Conflict, LedgerEntry, LedgerError, LedgerState, LedgerStore};
use crate::engine::read::source::{DeadLetterSource, SourceError, SourceEvent, StartAt};
use crate::engine::{DeadLetter, LetterId};

/// Letters read per batch.
const BATCH: usize = 512;

/// An exported file, opened.
#[derive(Debug, Clone)]
pub struct FileDlq {
    path: PathBuf,
    manifest: Manifest,
    state: LedgerState,
}

impl FileDlq {
    /// Reads the manifest of the export at `path`; the error names the file.
    pub fn open(path: &Path) -> Result<FileDlq, String> {
        let f = std::fs::File::open(path).map_err(|e| format!("'{}': {e}", path.display()))?;
        let mut first = String::new();
        BufReader::new(f)
            .read_line(&mut first)
            .map_err(|e| format!("'{}': {e}", path.display()))?;
        let manifest = Manifest::parse(&first).map_err(|e| format!("'{}': {e}", path.display()))?;
        let mut state = LedgerState::default();
        for e in &manifest.ledger {
            state.insert(e.clone());
        }
        Ok(FileDlq {
            path: path.to_path_buf(),
            manifest,
            state,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Calls `each` on every letter of the file, in order, with its state; stops early
    /// when it returns false. A line that is not a letter is an error naming its number.
    pub fn for_each(&self, mut each: impl FnMut(DeadLetter) -> bool) -> Result<(), String> {
        let f = std::fs::File::open(&self.path)
            .map_err(|e| format!("'{}': {e}", self.path.display()))?;
        for (i, line) in BufReader::new(f).lines().enumerate().skip(1) {
            let line = line.map_err(|e| format!("'{}': {e}", self.path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut l = parse_letter(&line)
                .map_err(|e| format!("'{}' line {}: {e}", self.path.display(), i + 1))?;
            self.state.apply(&mut l);
            if !each(l) {
                break;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl DeadLetterSource for FileDlq {
    fn describe(&self) -> String {
        format!(
            "file '{}' (exported from {})",
            self.path.display(),
            self.manifest.dlq
        )
    }

    async fn count(&self) -> Result<u64, SourceError> {
        Ok(self.manifest.letters)
    }

    async fn stream(
        &self,
        from: StartAt,
        _follow: bool,
        tx: mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(BATCH);
            let mut delivered = 0u64;
            let mut open = true;
            me.for_each(|l| {
                let wanted = match from {
                    StartAt::Beginning | StartAt::Offset(_) => true,
                    StartAt::End => false,
                    StartAt::Time(t) => l.dlq_timestamp_ms.is_some_and(|ts| ts >= t),
                };
                if wanted {
                    batch.push(l);
                    delivered += 1;
                }
                if batch.len() >= BATCH {
                    open = tx
                        .blocking_send(SourceEvent::Letters(std::mem::take(&mut batch)))
                        .is_ok();
                }
                open
            })?;
            if open && !batch.is_empty() {
                // The reader hung up (the command or view ended): there is no one left to deliver to.
                let _ = tx.blocking_send(SourceEvent::Letters(batch));
            }
            let _ = tx.blocking_send(SourceEvent::CaughtUp { delivered });
            Ok::<_, String>(())
        })
        .await
        .map_err(|e| SourceError::new(FailureKind::Other, e.to_string()))?
        .map_err(|e| SourceError::new(FailureKind::BadData, e))
    }

    async fn fetch(&self, id: &LetterId) -> Result<DeadLetter, SourceError> {
        let me = self.clone();
        let want = id.clone();
        let found = tokio::task::spawn_blocking(move || {
            let mut found = None;
            me.for_each(|l| {
                if l.id.as_ref() == Some(&want) {
                    found = Some(l);
                    return false;
                }
                true
            })?;
            Ok::<_, String>(found)
        })
        .await
        .map_err(|e| SourceError::new(FailureKind::Other, e.to_string()))?
        .map_err(|e| SourceError::new(FailureKind::BadData, e))?;
        found.ok_or_else(|| {
            SourceError::new(
                FailureKind::NotFound,
                format!("no letter '{id}' in '{}'", self.path.display()),
            )
        })
    }

    async fn ledger(&self) -> Result<LedgerState, SourceError> {
        Ok(self.state.clone())
    }
}

#[async_trait]
impl LedgerStore for FileDlq {
    async fn load(&self) -> Result<LedgerState, LedgerError> {
        Ok(self.state.clone())
    }

    async fn current(
        &self,
        ids: &[String],
        sources: &[String],
    ) -> Result<LedgerState, LedgerError> {
        Ok(self.state.subset(ids, sources))
    }

    async fn write(
        &self,
        _entries: Vec<LedgerEntry>,
    ) -> Result<Vec<Result<(), Conflict>>, LedgerError> {
        Err(LedgerError::Refused(format!(
            "'{}' is an exported file: it is read-only (import it into a DLQ to act on it)",
            self.path.display()
        )))
    }

    fn dlq(&self) -> String {
        format!("file://{}", self.path.display())
    }
}
