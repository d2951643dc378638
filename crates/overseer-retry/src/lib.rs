//! Safe retries for multi-agent LLM systems, as pure rules.
//!
//! An LLM retry is not a replay: the model may take another path, call another tool, or burn
//! the same budget for the same failure. This crate decides what to do after a failure; it
//! sleeps nothing, spawns nothing and sends nothing (the agent layer does, on the tokio clock).
//!
//! - [`ErrorClass`] and [`Classify`] (module [`class`]): whether a failure is transient,
//!   rate-limited, invalid output, permanent, replay-unsafe, cancelled or over budget, and so
//!   who fixes it; with HTTP status and `Retry-After` mapping.
//! - [`RetryPolicy`] (module [`policy`]): attempts, exponential backoff with full or
//!   decorrelated jitter from a caller's seeded RNG, a total time bound, the ask's deadline,
//!   retry-after; [`RetryPolicy::decide`] is one pure function.
//! - [`RetryBudget`] (module [`budget`]): tower's `TpsBudget` semantics, so retries stay a
//!   share of recent requests however many layers retry.
//! - [`Ladder`] (module [`ladder`]): the escalation ladder (same agent with feedback, another
//!   agent, decompose, a stronger model) as data and a pure next-rung function.
//! - [`Saga`] (module [`saga`]): completed steps and their compensations, undone in reverse
//!   order, with dead letters for compensations that fail for good; serializable to journal.
//!
//! The repository's `docs/retries.md` gathers the rules, the defaults and their sources.
//!
//! # Example
//!
//! One step's retry loop, as the agent layer runs it (here with a scripted failure sequence and
//! a seeded generator, so it is exact):
//!
//! ```
//! use std::time::Duration;
//! use rand::{rngs::StdRng, SeedableRng};
//! use overseer_retry::prelude::*;
//!
//! let policy = RetryPolicy::builder().jitter(Jitter::None).build()?;
//! let budget = RetryBudget::default();
//! let mut rng = StdRng::seed_from_u64(42);
//! let outcomes = [Err(ErrorClass::Transient), Err(ErrorClass::Transient), Ok("answer")];
//!
//! budget.deposit(); // the first attempt is a request
//! let mut waited = Vec::new();
//! let mut previous_delay = None;
//! for (i, outcome) in outcomes.into_iter().enumerate() {
//!     let class = match outcome {
//!         Ok(answer) => { assert_eq!(answer, "answer"); break; }
//!         Err(class) => class,
//!     };
//!     let attempt = Attempt::new(i as u32 + 1, class).with_previous_delay(previous_delay);
//!     match policy.decide(&attempt, &mut rng) {
//!         RetryDecision::RetryAfter(delay) => {
//!             budget.withdraw().expect("the floor allows a few retries");
//!             waited.push(delay); // the agent layer sleeps `delay` on the tokio clock
//!             previous_delay = Some(delay);
//!         }
//!         RetryDecision::GiveUp(reason) => panic!("gave up: {reason:?}"),
//!     }
//! }
//! assert_eq!(waited, [Duration::from_millis(500), Duration::from_secs(1)]);
//! # Ok::<(), PolicyError>(())
//! ```

pub mod budget;
pub mod class;
pub mod ladder;
pub mod policy;
pub mod saga;

pub use budget::{BudgetError, RetryBudget, RetryRefused};
pub use class::{parse_retry_after, Classify, ErrorClass};
pub use ladder::{
    ClassSet, Conditions, Ladder, LadderState, Next, Rung, RungKind, Skip, SkipReason, StopReason,
};
pub use policy::{
    Attempt, GiveUpReason, Jitter, PolicyError, RetryDecision, RetryPolicy, RetryPolicyBuilder,
};
pub use saga::{CompensationNext, DeadLetter, Failure, Saga, SagaError, SagaOutcome, Step};

/// What a user types every day: `use overseer_retry::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Attempt, ClassSet, Classify, Conditions, ErrorClass, GiveUpReason, Jitter, Ladder,
        LadderState, Next, PolicyError, RetryBudget, RetryDecision, RetryPolicy, RetryRefused,
        Rung, Saga, Step, StopReason,
    };
}
