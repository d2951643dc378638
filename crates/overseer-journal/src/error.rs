//! The journal's errors.

use std::sync::Arc;

use crate::{Refusal, StorageError};

/// Why the journal could not open, append or answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The storage failed (I/O, disk full, a lock held elsewhere, an injected crash). After a
    /// failed write the journal takes no more writes ([`Failed`](Self::Failed)): what was
    /// acknowledged before is on disk, what failed was not acknowledged; reopen it to go on.
    #[error(transparent)]
    Storage(Arc<StorageError>),
    /// The storage was written by a journal format this version cannot read.
    #[error("the journal is in format {found}; this version reads format {supported}")]
    UnsupportedVersion {
        /// The format found.
        found: u32,
        /// The format this version reads and writes.
        supported: u32,
    },
    /// A record other than the last cannot be read, or breaks the journal's rules: the storage
    /// was damaged or written by something else. Nothing is dropped silently: the journal does
    /// not open.
    #[error("journal record {position} is corrupted: {reason}")]
    Corrupt {
        /// The record's position (0 for the first).
        position: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The append breaks a rule of the journal (a stale epoch, a second result...): nothing of
    /// it was written.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A write failed earlier: the journal takes no more writes until it is reopened.
    #[error("an earlier write to the journal failed; reopen it to go on")]
    Failed,
    /// The journal's writer has stopped (every handle but this future's was dropped, or it
    /// failed to start).
    #[error("the journal is closed")]
    Closed,
    /// An entry could not be encoded.
    #[error("a journal entry could not be encoded: {0}")]
    Encode(String),
}

impl From<StorageError> for JournalError {
    fn from(error: StorageError) -> Self {
        Self::Storage(Arc::new(error))
    }
}
