//! What can go wrong talking to the shared database.

use std::time::Duration;

use overseer_journal::{Epoch, RunId};

/// Why an operation on the shared PostgreSQL database failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgJournalError {
    /// The connection string could not be parsed.
    #[error("invalid PostgreSQL connection string: {reason}")]
    InvalidUrl {
        /// What the parser said.
        reason: String,
    },
    /// The server could not be reached or refused the connection (nothing listening, wrong
    /// credentials, no such database).
    #[error("could not connect to PostgreSQL: {source}")]
    Connect {
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No connection was made, or none was free, within the configured time.
    #[error("no PostgreSQL connection within {after:?}")]
    ConnectTimeout {
        /// The bound that was reached.
        after: Duration,
    },
    /// The connection pool failed for another reason (closed).
    #[error("PostgreSQL connection pool: {message}")]
    Pool {
        /// What the pool said.
        message: String,
    },
    /// A statement failed (the connection dropped mid-transaction, a constraint, a deadlock).
    /// The transaction it belonged to was rolled back: nothing of it is stored.
    #[error("PostgreSQL: {operation}: {source}")]
    Database {
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A row another transaction held locked (a run being claimed or written elsewhere) stayed
    /// locked past the lock timeout ([`PgOptions::lock_timeout`](crate::PgOptions::lock_timeout)):
    /// nothing was done; the operation may be tried again.
    #[error(
        "PostgreSQL: {operation}: a row stayed locked by another transaction past the lock timeout"
    )]
    LockTimeout {
        /// What was being done.
        operation: &'static str,
    },
    /// The database was migrated by a newer version of this library: this one does not know
    /// its tables and does not touch them.
    #[error("the database's Overseer schema is at version {found}; this library knows up to {supported}")]
    SchemaTooNew {
        /// The version the database is at.
        found: i32,
        /// The newest version this library knows.
        supported: i32,
    },
    /// A write under an epoch that no longer holds the run: another process has claimed it
    /// since (or the run was handed back). The writer is a zombie and must stand down.
    #[error("run {run}: a write under {writer} refused, the run is held under {current:?}")]
    Fenced {
        /// The run.
        run: RunId,
        /// The epoch the write came with.
        writer: Epoch,
        /// The epoch that holds the run now (`None` when it was handed back and is free).
        current: Option<Epoch>,
    },
    /// An operation on a run the database has no row of.
    #[error("run {run} is not in the database")]
    UnknownRun {
        /// The run.
        run: RunId,
    },
    /// A write to a run that has finished.
    #[error("run {run} has finished: nothing more is written to it")]
    Finished {
        /// The run.
        run: RunId,
    },
    /// A start of a run the database holds unfinished with records: another process (or an
    /// earlier incarnation) started it.
    #[error("run {run} is already started and has not finished")]
    AlreadyStarted {
        /// The run.
        run: RunId,
    },
    /// An [`append_at`](crate::PgStore::append_at) whose position is not the run's next one:
    /// `found` past `expected` means records were stored there already (by an earlier
    /// attempt whose answer was lost, if it was this writer's).
    #[error("run {run}: an append at position {expected}, but the next position is {found}")]
    PositionMismatch {
        /// The run.
        run: RunId,
        /// The position the append expected.
        expected: u64,
        /// The run's next position.
        found: u64,
    },
    /// A budget operation on a limit that was never defined.
    #[error("no fleet budget limit named {name:?}")]
    UnknownLimit {
        /// The limit's name.
        name: String,
    },
    /// A commit or release of a reservation the database does not hold (already committed or
    /// released).
    #[error("no open budget reservation {id}")]
    UnknownReservation {
        /// The reservation's id.
        id: i64,
    },
    /// An amount that cannot be stored (negative, or beyond PostgreSQL's `bigint`).
    #[error("{what}: {value} is out of range")]
    OutOfRange {
        /// What the value was.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A row the library did not write that way (an invalid run id, a negative epoch): the
    /// tables were changed by hand.
    #[error("the database holds an unexpected value: {what}")]
    Corrupt {
        /// What was wrong.
        what: String,
    },
}

impl PgJournalError {
    /// A statement's failure, named.
    pub(crate) fn db(operation: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |source| {
            if source.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
                PgJournalError::LockTimeout { operation }
            } else {
                PgJournalError::Database { operation, source }
            }
        }
    }
}
