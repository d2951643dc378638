//! Runs shared through PostgreSQL: several Overseer processes, on several machines, with one
//! database, so that a dead machine's runs are taken up by another.
//!
//! Supervision stays local; what moves is the **run**. A process takes a run by bumping its
//! owner epoch in one transaction ([`PgStore::claim`], [`PgStore::next_claimable`]) under a
//! lease it renews while it works ([`PgStore::renew`]); a run whose lease has run out is
//! claimed by another process, which replays it from its journal ([`PgStore::load`]); every
//! append carries the writer's epoch and a stale owner's appends are refused
//! ([`PgJournalError::Fenced`]). Leases are judged by the database's clock, never a process's.
//! A shared budget limit is reserved and committed transactionally ([`PgStore::reserve`]);
//! [`FleetLimit`] makes it a budget's shared limit, so that the kill switch of every process is
//! the fleet's. [`PgStorage`] is a journal storage over the database, and [`Worker`] the loop a
//! process runs to take runs from the shared queue within its own limit.
//!
//! The claim rule is a pure function, [`decide_claim`], tested alone; [`PgStore`] carries it
//! out in SQL. The tables are created and migrated by the library ([`PgStore::migrate`]); a
//! database migrated by a newer version is [`PgJournalError::SchemaTooNew`].
//!
//! ```
//! use overseer_journal::Epoch;
//! use overseer_postgres::{decide_claim, ClaimDecision};
//!
//! // A run nobody has claimed is taken at the first epoch.
//! assert_eq!(decide_claim(None, 0, "machine-a"), ClaimDecision::Claimed { epoch: Epoch::FIRST });
//! ```
//!
//! With the `test-server` feature, `testing::PgServer` starts a throwaway server for tests.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// `$sql` prepared once per connection (the pool's statement cache): a statement run again
/// on the same connection costs one round trip instead of two.
macro_rules! cached {
    ($conn:expr, $sql:expr, $operation:expr) => {
        &$conn
            .prepare_cached($sql)
            .await
            .map_err($crate::PgJournalError::db($operation))?
    };
}

mod budget;
mod error;
mod fleet;
mod journal_storage;
mod lease;
mod schema;
mod shared;
mod store;
#[cfg(feature = "test-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-server")))]
pub mod testing;
mod worker;

pub use budget::{LimitState, Reservation, Reserve};
pub use error::PgJournalError;
pub use fleet::{FleetLimit, FleetTrip};
pub use journal_storage::{PgStorage, PgStorageOptions};
pub use lease::{decide_claim, ClaimDecision, LeaseHead, RunStatus};
pub use schema::{Migrated, SCHEMA_VERSION};
pub use store::{ClaimedRun, PgOptions, PgStore};
pub use worker::{RunQueue, Worker, WorkerOptions, WorkerReport};
