//! Where the journal's records live: a [`Storage`] keeps an ordered list of encoded records and
//! makes a batch of them durable in one commit.
//!
//! Two are provided: [`LogStorage`], a file (an append-only log of checksummed frames, one
//! write and one `fdatasync` per commit), and [`MemStorage`], in memory, with crash injection
//! for tests. With the `redb` feature, `RedbStorage` keeps the journal in a redb database
//! instead.

mod log_file;
mod memory;
#[cfg(feature = "redb")]
mod redb_file;

pub use log_file::LogStorage;
pub use memory::{CrashPlan, MemStorage};
#[cfg(feature = "redb")]
#[cfg_attr(docsrs, doc(cfg(feature = "redb")))]
pub use redb_file::RedbStorage;

use std::time::Duration;

use crate::{Epoch, RunId};

/// What a storage holds when it is opened.
#[derive(Debug, Default)]
pub struct Stored {
    /// The journal format it was written in; `None` for a new, empty storage.
    pub format_version: Option<u32>,
    /// Every record, in the order appended.
    pub records: Vec<Vec<u8>>,
    /// Whether something followed the last record that is not one: what a crash in the middle
    /// of an append leaves (an incomplete record, never acknowledged). The journal drops it
    /// with [`Storage::truncate`] (keeping every record), with an event, before it appends.
    pub torn_tail: bool,
}

/// Why a storage failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The file or directory could not be read or written (missing, unwritable, disk full).
    #[error("journal storage: {operation}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is held by another journal (another process, or another handle in this one):
    /// one journal file has one writer.
    #[error("journal storage is already open elsewhere (another process or journal holds it)")]
    Locked,
    /// The file is not a journal, or is damaged beyond what a torn last write explains.
    #[error("journal storage is corrupted: {0}")]
    Corrupted(String),
    /// The file is in a layout (the storage's own format, not the journal's) this version
    /// does not read: written by a newer version.
    #[error("journal storage is in layout {found}; this version reads layout {supported}")]
    UnsupportedFormat {
        /// The layout found.
        found: u32,
        /// The layout this version reads and writes.
        supported: u32,
    },
    /// Records were appended to a storage not yet marked with a format version
    /// ([`Storage::initialize`]).
    #[error("journal storage is not initialized: no format version before its first record")]
    NotInitialized,
    /// A record is longer than the storage can frame.
    #[error("a journal record of {bytes} bytes is longer than the {limit} a storage holds")]
    RecordTooLarge {
        /// The record's length.
        bytes: usize,
        /// The longest the storage holds.
        limit: usize,
    },
    /// The storage engine failed.
    #[error("journal storage: {operation}: {message}")]
    Engine {
        /// What was being done.
        operation: &'static str,
        /// The engine's error.
        message: String,
    },
    /// A shared storage refused a write under an epoch that no longer holds the run: another
    /// process has claimed it since (or it was handed back). The writer must stand down; the
    /// journal reports it as [`Refusal::Stale`](crate::Refusal::Stale).
    #[error("run {run}: a write under {writer} refused by the shared storage, the run is held under {holder:?}")]
    Fenced {
        /// The run.
        run: RunId,
        /// The epoch the write came with.
        writer: Epoch,
        /// The epoch that holds the run now, if any.
        holder: Option<Epoch>,
    },
    /// A shared storage's run is held by another process under a lease that has not run out.
    #[error("run {run} is held by {owner} for {remaining:?} more")]
    Held {
        /// The run.
        run: RunId,
        /// Who holds it.
        owner: String,
        /// How long its lease still runs.
        remaining: Duration,
    },
    /// Injected by [`MemStorage`]: the process "died" here.
    #[error("journal storage crashed (injected after {records} records)")]
    Crashed {
        /// How many records it held when it crashed.
        records: u64,
    },
}

/// An ordered, durable list of records. Implementations are called from the journal's writer
/// thread only (they may block on I/O) and must make each [`append`](Self::append) atomic or,
/// at worst, keep a prefix of it: every prefix of a journal is a state its runs resume from.
pub trait Storage: Send + 'static {
    /// Everything stored so far.
    ///
    /// # Errors
    ///
    /// When the storage cannot be read, or is corrupted.
    fn load(&mut self) -> Result<Stored, StorageError>;

    /// Marks a new storage with the journal's format version.
    ///
    /// # Errors
    ///
    /// When it cannot be written.
    fn initialize(&mut self, format_version: u32) -> Result<(), StorageError>;

    /// Appends `records` after those stored, in one commit; with `sync`, durably (on disk)
    /// before it returns.
    ///
    /// # Errors
    ///
    /// When the commit fails; then none of `records`, or a prefix of them, is stored.
    fn append(&mut self, records: &[Vec<u8>], sync: bool) -> Result<(), StorageError>;

    /// Drops every record from position `keep` on, durably: how a torn last record is removed
    /// before anything is appended after it.
    ///
    /// # Errors
    ///
    /// When the storage cannot be written.
    fn truncate(&mut self, keep: u64) -> Result<(), StorageError>;

    /// Makes every record appended so far durable.
    ///
    /// # Errors
    ///
    /// When the storage cannot be synced.
    fn sync(&mut self) -> Result<(), StorageError>;

    /// Whether its calls may block on I/O (the default). A storage that never blocks (in
    /// memory) is written by a task on the tokio runtime the journal was opened on, instead of
    /// a thread of its own, so that tests on a paused tokio clock see the journal's work as the
    /// runtime's and the clock does not jump past an append.
    fn blocks(&self) -> bool {
        true
    }

    /// Whether the storage is **shared** by several processes (PostgreSQL): runs are loaded one
    /// at a time when claimed ([`claim_run`](Self::claim_run)), epochs are decided by the
    /// storage, and appends go to [`append_runs`](Self::append_runs), one batch per run, each
    /// fenced by the storage. `false` (the default): one ordered list of records, read whole at
    /// open.
    ///
    /// [`load`](Self::load) of a shared storage returns only what this process may take up: the
    /// records of the dead letters, and of the unfinished runs nobody else holds, run by run.
    fn shared(&self) -> bool {
        false
    }

    /// Of a shared storage: claims `run` for this process, at the next epoch, journaling the
    /// claim's [`Entry::RunClaimed`](crate::Entry::RunClaimed) record in the same commit, and
    /// returns the run's records as stored now (the claim's last).
    ///
    /// # Errors
    ///
    /// When the storage cannot be reached; [`StorageError::Engine`] from a storage that is not
    /// shared.
    fn claim_run(&mut self, run: &RunId) -> Result<SharedClaim, StorageError> {
        Err(not_shared("claim a run", run))
    }

    /// Of a shared storage: commits each batch in one transaction of its own, fenced by the
    /// batch's epoch; one result per batch, in order. A batch that failed left nothing of it
    /// stored; the others are committed all the same.
    fn append_runs(&mut self, batches: &[RunBatch]) -> Vec<Result<(), StorageError>> {
        batches
            .iter()
            .map(|batch| {
                Err(StorageError::Engine {
                    operation: "append a run's batch",
                    message: format!("not a shared storage ({} records)", batch.records.len()),
                })
            })
            .collect()
    }

    /// Of a shared storage: the records of `run` as stored now (`None`: it has no such run), to
    /// answer an ask of a run id another process started.
    ///
    /// # Errors
    ///
    /// When the storage cannot be read.
    fn load_run(&mut self, run: &RunId) -> Result<Option<Vec<Vec<u8>>>, StorageError> {
        let _ = run;
        Ok(None)
    }

    /// Called once as the journal closes, before the storage is dropped: a shared storage hands
    /// the runs it holds back, so that another process takes them at once.
    ///
    /// # Errors
    ///
    /// When the storage cannot be written.
    fn release(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

fn not_shared(operation: &'static str, run: &RunId) -> StorageError {
    StorageError::Engine {
        operation,
        message: format!("run {run}: not a shared storage"),
    }
}

/// What a shared storage's claim of a run found ([`Storage::claim_run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedClaim {
    /// The run is this process's under `epoch`; `records` are its records, the claim's last.
    Claimed {
        /// The epoch claimed.
        epoch: Epoch,
        /// The run's records.
        records: Vec<Vec<u8>>,
    },
    /// The run has finished: nothing was claimed; `records` are its records.
    Finished {
        /// The run's records.
        records: Vec<Vec<u8>>,
    },
    /// Another process holds the run under a lease that has not run out.
    Held {
        /// Who holds it.
        owner: String,
        /// How long its lease still runs.
        remaining: Duration,
    },
}

/// The records one group commit appends to one run of a shared storage
/// ([`Storage::append_runs`]): committed whole or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunBatch {
    /// The run (`None`: records that belong to no run, dead letters).
    pub run: Option<RunId>,
    /// The writer's epoch, when the batch holds fenced entries: the storage stores the batch
    /// only if this epoch still holds the run.
    pub epoch: Option<Epoch>,
    /// Whether the batch starts the run ([`Entry::RunStarted`](crate::Entry::RunStarted)).
    pub starts: bool,
    /// The run's outcome record, when the batch finishes it
    /// ([`Entry::RunFinished`](crate::Entry::RunFinished)).
    pub finishes: Option<Vec<u8>>,
    /// The run's records, in order.
    pub records: Vec<Vec<u8>>,
    /// Records that belong to no run (dead letters), committed with the run's.
    pub letters: Vec<Vec<u8>>,
}
