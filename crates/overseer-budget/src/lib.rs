//! Budget ledger and kill switch for Overseer: limits on tokens, cost, steps, wall-clock
//! time and error rate, enforced **before** a call reaches an agent.
//!
//! This crate is pure bookkeeping: atomics, two small mutexes (the error-rate window and
//! the callback list) and no actors, tasks or I/O. The agent layer calls it on every ask:
//!
//! ```text
//! kill switch ─► breaker ─► deadline ─► actor ─► outcome recorded
//!  Budget::admit                                   Reservation::commit / release
//!                                                   Budget::record_outcome
//! ```
//!
//! # The ledger
//!
//! A [`Ledger`] keeps, for one [`Scope`] (the process, or one agent) and each
//! [`Dimension`] (tokens, cost in integer micro-units, steps), what has been **committed**
//! (really spent) and what is **reserved** (held by calls in flight), against optional
//! [`Limits`]. There are no floats in it: cost is a `u64` of micro-units. An agent's spend
//! counts in its own ledger and in the process ledger.
//!
//! # Reservations
//!
//! Before a billable call, [`Budget::admit`] reserves its estimate (tokens, cost) and one
//! step in the agent's ledger and then the process ledger. The call then ends its
//! [`Reservation`] one way:
//!
//! - [`commit(actual)`](Reservation::commit): the actual usage (or the partial usage of a
//!   failed call) is committed, the rest released;
//! - [`release()`](Reservation::release): a call that used nothing returns all of it;
//! - dropping it: the same as `release`, so a reservation never leaks.
//!
//! `commit` and `release` consume the reservation, so it cannot be settled twice.
//! Admission **fails closed**: a reservation that would cross any limit, in either scope,
//! is refused with a [`Refusal`] naming the scope, the dimension, what was requested, what
//! remained and what was committed, and the call never reaches the agent. A refusal
//! refuses **that call only**: it never trips the kill switch, and other agents, or smaller
//! estimates, go on.
//!
//! # The guarantee, precisely
//!
//! For every scope and every limited dimension with limit `L`, at every instant and under
//! any concurrency:
//!
//! > `committed + reserved ≤ L + overrun`
//!
//! where `overrun` is the total that commits reported beyond their own estimates. A
//! reservation is a compare-and-swap on `committed + reserved` that only succeeds when the
//! result is at most `L`; a multi-dimension, two-scope reservation takes its parts one by
//! one and rolls back the parts already taken when a later one is refused. So reservations
//! never overshoot, and if calls stay within their estimates (steps always do)
//! `committed + reserved ≤ L` holds exactly. A call that used more than it reserved has
//! spent it: the ledger records the truth, reports the excess in
//! [`CommitReport::overrun`], and refuses every reservation in that dimension for as long
//! as `committed + reserved` stays over the limit (for good if committed spend alone is
//! over it; until calls in flight return their holds otherwise).
//!
//! Refusals are conservative: a reservation being rolled back may, for a moment, make a
//! concurrent one be refused that would have fit. Never the reverse.
//!
//! # Tiers
//!
//! Each limit warns at fractions of it ([`Tiers`], default 70 %, 85 % and 90 %), measured on
//! **committed + reserved** spend: the reservation that first takes a scope to a tier fires
//! it, before its call runs, so the warning comes before the refusal of any later
//! estimate of up to `limit − tier` (30 % of the limit for the 70 % tier). Each tier fires
//! **exactly once** per dimension and scope, even under concurrency and when the
//! reservation that reached it is released: every tier check owns a disjoint interval of
//! the high-water mark of committed + reserved (`fetch_max`), and the tier fires in the
//! check whose interval holds its threshold. A [`BudgetWarning`] is held by the
//! reservation ([`Reservation::warnings`]) or, for an overrun, returned in
//! [`CommitReport::warnings`], and logged as a `tracing` event with structured fields.
//! Agents read their standing cheaply with [`Budget::remaining`], [`Budget::tier`] and
//! [`Ledger::status`], and wrap up. Warnings never stop anything.
//!
//! # The kill switch
//!
//! [`KillSwitch`] is armed, then tripped for good. It trips on:
//!
//! | trigger | rule |
//! |---|---|
//! | limit reached | a commit takes committed **process** spend to or past a limit |
//! | hard tier | a commit takes committed **process** spend to or past the [hard tier](BudgetBuilder::hard_tier) of a limit (e.g. 90 %), if one is configured |
//! | deadline | `now ≥ deadline`, seen by [`KillSwitch::check_deadline`] or by an admission |
//! | error rate | over the last `window` calls of all agents, at least `min_calls` seen and failures ≥ threshold |
//! | manual | [`KillSwitch::trip`] with [`TripReason::Manual`] |
//! | fleet | the budget's [`SharedLimit`] tripped, in this process or another ([`TripReason::Fleet`]) |
//!
//! A refused reservation, in any scope, and any agent limit refuse the call without
//! tripping. [`KillSwitch::is_tripped`] is one atomic load.
//! The first trip records a [`TripReport`] (reason, the process figures, the error rate,
//! when) and runs the `on_trip` callbacks exactly once; later trips change nothing. The
//! [`InFlightPolicy`] it holds tells the agent layer what to do with calls in flight.
//!
//! # A limit shared by a fleet
//!
//! With [`BudgetBuilder::shared_limit`], one limit is shared by every process of a fleet: a
//! call holds its estimate in it before it runs ([`Budget::admit_shared`]), so that the
//! processes together never reserve past it, and the kill switch becomes fleet-wide. The
//! limit's backend (a database) implements [`SharedLimit`]; see the [`fleet`] module.
//!
//! # Time
//!
//! Time is [`tokio::time::Instant`]. Methods that need the time take it as a `now`
//! parameter ([`Budget::admit_at`], [`KillSwitch::check_deadline`],
//! [`KillSwitch::record_outcome`], [`KillSwitch::trip_at`]), so tests drive them on a
//! paused clock; the convenience forms ([`Budget::admit`], [`KillSwitch::trip`]) read
//! `tokio::time::Instant::now()`.
//!
//! # Example
//!
//! ```
//! use overseer_budget::prelude::*;
//!
//! let budget = Budget::builder()
//!     .process_limits(Limits::new().tokens(10_000).cost_micros(50_000))
//!     .build()?;
//! budget.kill_switch().on_trip(|report| eprintln!("stop every agent: {}", report.reason));
//!
//! // A call reserves its estimate, then commits what it really used.
//! let call = budget.admit("researcher", Spend::new(4_000, 20_000))?;
//! let report = call.commit(Spend::new(7_200, 36_000)); // the model talked a lot
//! assert_eq!(report.overrun, Some(Spend::new(3_200, 16_000)));
//! assert_eq!(report.warnings.len(), 2); // 70 % of the tokens and of the cost
//! assert_eq!(budget.tier("researcher").map(|t| t.level), Some(1));
//!
//! // A failed call that used nothing gives its reservation back.
//! let call = budget.admit("critic", Spend::new(1_000, 5_000))?;
//! call.release();
//! assert_eq!(budget.remaining("critic").tokens, Some(2_800));
//!
//! // An estimate the budget can no longer cover refuses that call, and only that call.
//! let refused = budget.admit("critic", Spend::new(3_000, 5_000)).unwrap_err();
//! assert!(matches!(refused, Refusal::LimitExceeded { requested: 3_000, remaining: 2_800, .. }));
//! assert!(!refused.may_fit_later()); // 7 200 of 10 000 spent: 3 000 will never fit
//! assert!(!budget.is_tripped());
//! let last = budget.admit("critic", Spend::new(2_800, 5_000))?; // the 85 % and 90 % tiers
//! assert_eq!(last.warnings().len(), 2);
//!
//! // Spend that reaches a limit ends the run.
//! assert!(last.commit(Spend::new(2_800, 5_000)).tripped);
//! assert!(matches!(budget.admit("critic", Spend::ZERO), Err(Refusal::Tripped { .. })));
//! let trip = budget.trip_report().unwrap();
//! assert_eq!(trip.process.as_ref().unwrap().tokens.committed, 10_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod budget;
pub mod error;
pub mod error_rate;
pub mod fleet;
pub mod kill_switch;
pub mod ledger;
pub mod limits;
pub mod reservation;
pub mod scope;
pub mod tier;
pub mod usage;

pub use budget::{AgentAccount, Budget, BudgetBuilder, BudgetStatus};
pub use error::{BudgetConfigError, Refusal};
pub use error_rate::{ErrorRateStatus, ErrorRateTrigger, ErrorWindow, MAX_WINDOW};
pub use fleet::{FleetHold, HoldFuture, SharedHold, SharedLimit, SharedRefusal, TripCallback};
pub use kill_switch::{
    InFlightPolicy, KillSwitch, KillSwitchConfig, TripOutcome, TripReason, TripReport,
};
pub use ledger::{DimensionStatus, Ledger, LedgerStatus, Remaining};
pub use limits::Limits;
pub use reservation::{CommitReport, LimitReached, Reservation};
pub use scope::{AgentId, Scope};
pub use tier::{BudgetWarning, Tier, Tiers, DEFAULT_TIERS, MAX_TIERS};
pub use usage::{Dimension, Spend};

/// The examples of `GUIDE.md`, run as doctests so the guide cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../GUIDE.md")]
struct GuideExamples;

/// What a user types every day.
pub mod prelude {
    pub use crate::{
        Budget, BudgetWarning, CommitReport, Dimension, InFlightPolicy, KillSwitch, Limits,
        Refusal, Reservation, Scope, Spend, TripReason, TripReport,
    };
}
