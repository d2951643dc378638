//! The pure rules of fan-out.
//!
//! A parent that fans work out to a cohort of members must know when to go on, and what to go
//! on with when some of them fail. This crate holds those rules as values: it owns no actor,
//! spawns nothing, and its decisions read no clock (they are given the time). The agent layer (`overseer-agent`'s `Cohort`) feeds them
//! its members' outcomes and acts on their answers.
//!
//! - [`barrier`]: a [`Barrier`] over n members that decides when
//!   [`All`](Mode::All), [`Any`](Mode::Any) or a [`Quorum`](Mode::Quorum) of them answered,
//!   when that can no longer happen, and what its deadline means
//!   ([`OnDeadline::Partial`] or [`OnDeadline::Fail`]).
//! - [`degrade`](mod@degrade): graceful degradation: a [`Criticality`] per member, and the rule that turns
//!   members' results into a failed cohort or an ok one, degraded by the optional members
//!   replaced by their declared defaults.
//! - [`bulkhead`]: a [`Bulkhead`], a named concurrency limit shared across agents, whose
//!   permit waits end at a deadline. The one part that waits: on the tokio clock.
//!
//! The repository's `docs/coordination.md` explains each mechanism and its defaults.
//!
//! # Example
//!
//! A quorum of 2 of 3 that is decided on the second answer, not at the deadline:
//!
//! ```
//! use overseer_fanout::{Barrier, BarrierSpec, Decision, Mode, Observed, Reached};
//! use tokio::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let spec = BarrierSpec::new(Mode::Quorum(2), 3, start + Duration::from_secs(10));
//! let mut barrier = Barrier::new(spec)?;
//! barrier.observe(0, Observed::Answered)?;
//! assert_eq!(barrier.decide(start), Decision::Continue);
//! barrier.observe(2, Observed::Answered)?;
//! assert_eq!(barrier.decide(start), Decision::Decided(Reached::Quorum));
//! # Ok::<(), overseer_fanout::BarrierError>(())
//! ```

pub mod barrier;
pub mod bulkhead;
pub mod degrade;

pub use barrier::{
    Barrier, BarrierError, BarrierSpec, Decision, MemberState, Mode, Observed, OnDeadline, Reached,
};
pub use bulkhead::{Bulkhead, BulkheadError, BulkheadPermit, BulkheadSnapshot};
pub use degrade::{degrade, Criticality, Degraded, Missing, Settled};
