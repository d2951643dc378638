//! Circuit breakers for multi-agent LLM systems.
//!
//! An agent that keeps failing (its model provider is down, a tool it depends on times out,
//! its prompt no longer fits) should stop being asked for a while, so callers fail fast
//! instead of waiting seconds for an answer that will not come, and the agent gets room to
//! recover. This crate decides *when*; it sends nothing, spawns nothing and owns no clock.
//!
//! - [`CircuitBreaker`] is the decision as a pure state machine: closed, open, half-open,
//!   plus forced-open and disabled for operators (see [`State`]). Feed it outcomes and the
//!   current time; it answers with [`Ticket`]s, [`Rejected`]s and [`Transition`]s.
//! - [`BreakerRegistry`] holds one breaker per [`BreakerKey`] `(agent, task type)`, created
//!   on first use, shared between threads. Admitting a call to a closed breaker is one map
//!   lookup and one atomic load; recording its outcome is one uncontended mutex.
//!
//! Opening follows a count-based sliding window (the last `window_size` outcomes, judged
//! once `minimum_calls` are in, open when the failure rate reaches the threshold), a
//! consecutive-failure fast path for agents that see few calls, and optionally counts slow
//! calls as failures. Open durations grow exponentially on each re-open, are capped, carry
//! jitter from a seedable generator, and reset when the breaker closes. Every state change
//! is returned as a [`Transition`] and emitted as a `tracing` event.
//!
//! The defaults ([`BreakerConfig::default`]) are tuned for LLM call volumes; the repository's
//! `docs/breakers.md` explains them and compares them with resilience4j, Polly and failsafe.
//!
//! # Example
//!
//! The agent layer checks the breaker before an ask is sent and records the outcome after:
//!
//! ```
//! use std::time::Duration;
//! use overseer_breaker::prelude::*;
//!
//! let registry = BreakerRegistry::new(BreakerConfig::default())?;
//! let key = BreakerKey::new("researcher", "summarize");
//!
//! fn ask_agent() -> Result<String, String> {
//!     Err("provider returned 529 overloaded".into())
//! }
//!
//! for _ in 0..5 {
//!     match registry.try_acquire(&key) {
//!         Ok(permit) => {
//!             let result = ask_agent();
//!             let outcome = Outcome::from_result(&result);
//!             if let Some(transition) = permit.record(outcome, Duration::from_secs(2)) {
//!                 // Publish it on the event stream; it was also traced.
//!                 assert_eq!(transition.to, State::Open);
//!             }
//!         }
//!         Err(rejected) => {
//!             // The agent was not asked: fail fast, or come back later.
//!             assert_eq!(rejected.state, State::Open);
//!             assert!(rejected.retry_after.unwrap() <= Duration::from_secs(30));
//!         }
//!     }
//! }
//! # Ok::<(), BreakerConfigError>(())
//! ```
//!
//! Tests drive time explicitly with the `_at` methods, or with a paused tokio clock
//! (`#[tokio::test(start_paused = true)]` and `tokio::time::advance`) through the plain ones.

mod admission;
mod backoff;
mod breaker;
mod config;
mod error;
mod handle;
mod key;
mod outcome;
mod permit;
mod registry;
mod snapshot;
mod state;
mod transition;
mod window;

pub use admission::{Rejected, Ticket};
pub use backoff::{Backoff, MAX_DURATION};
pub use breaker::CircuitBreaker;
pub use config::{BreakerConfig, MAX_WINDOW_SIZE};
pub use error::BreakerConfigError;
pub use handle::BreakerHandle;
pub use key::BreakerKey;
pub use outcome::Outcome;
pub use permit::Permit;
pub use registry::{BreakerRegistry, RegistryBuilder};
pub use snapshot::BreakerSnapshot;
pub use state::State;
pub use transition::{Transition, Trigger};

/// What a caller of the registry types every day.
pub mod prelude {
    pub use crate::{
        Backoff, BreakerConfig, BreakerConfigError, BreakerKey, BreakerRegistry, BreakerSnapshot,
        Outcome, Permit, Rejected, State, Transition,
    };
}
