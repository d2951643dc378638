//! Durable runs for Overseer: the journal that makes a restart a replay, an effect happen once,
//! and a dead process resume where it stopped.
//!
//! A **run** ([`RunId`]) is the work one ask starts; its **steps** ([`StepId`], assigned in
//! program order by a [`ReplayCursor`]) are the non-deterministic or side-effecting things it does
//! (a model call, a tool, a payment), each declaring its [`Effect`]. The journal records each
//! step's result; a replay gets the result back instead of running the step again
//! ([`decide_step`]). Keyed and unsafe effects write an intent first, so a crash between the
//! effect and its result is never a blind re-run. Each incarnation that takes a run up claims an
//! [`Epoch`]; appends from an older one are refused ([`admit_entry`]). A second ask of the same run
//! id gets the first run's outcome ([`admit_run`], Stripe's semantics).
//!
//! The rules are pure functions over values ([`admit_entry`], [`decide_step`], [`admit_run`]),
//! tested alone; [`Journal`] carries them out over a [`Storage`] ([`LogStorage`], an append-only
//! file, or [`MemStorage`], in memory with crash injection), with a writer thread that commits
//! the appends of many agents in one fsync.
//!
//! ```
//! use overseer_journal::{decide_step, Effect, RunId, StepDecision, StepId};
//!
//! let run = RunId::new("order-7")?;
//! let step = StepId::new("root/payer", 0, 0);
//! // Nothing recorded yet: the step runs.
//! assert_eq!(decide_step(&run, &step, "charge", Effect::Keyed, None), StepDecision::Execute);
//! # Ok::<(), overseer_journal::RunIdError>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admission;
mod entry;
mod error;
mod fence;
mod journal;
mod key;
mod record;
mod replay;
mod run;
mod step;
mod storage;
mod writer;

pub use admission::{admit_run, Retention, RunAdmission};
pub use entry::{Entry, Epoch, Payload, Recorded, Spent};
pub use error::JournalError;
pub use fence::{admit_entry, Refusal, RunHead};
pub use journal::{Durability, Journal, JournalConfig, Lsn, Opened, FORMAT_VERSION};
pub use key::{Fingerprint, IdempotencyKey};
pub use record::{Index, RunRecord, StepRecord};
pub use replay::{decide_step, Divergence, ReplayCursor, StepDecision};
pub use run::{RunId, RunIdError, MAX_RUN_ID_LEN};
pub use step::{Effect, StepId};
#[cfg(feature = "redb")]
#[cfg_attr(docsrs, doc(cfg(feature = "redb")))]
pub use storage::RedbStorage;
pub use storage::{
    CrashPlan, LogStorage, MemStorage, RunBatch, SharedClaim, Storage, StorageError, Stored,
};
