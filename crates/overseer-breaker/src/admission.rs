//! The answer to "may this call go?": a ticket to record later, or a rejection.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::State;
use crate::transition::Transition;

/// Proof that a [`CircuitBreaker`](crate::CircuitBreaker) admitted a call; hand it back to
/// [`record`](crate::CircuitBreaker::record_at) or [`cancel`](crate::CircuitBreaker::cancel)
/// on the same breaker.
///
/// A ticket carries the *generation* of the state period that admitted it. Every state
/// change starts a new generation (unique across all breakers in the process), and an
/// outcome whose ticket is from an older generation is ignored: a call admitted before the
/// breaker opened cannot count against the half-open trial, nor a probe reclaimed after
/// [`probe_timeout`](crate::BreakerConfig::probe_timeout) close the breaker late.
///
/// The registry wraps tickets in [`Permit`](crate::Permit)s, which also release a probe slot
/// when dropped unrecorded. A bare ticket that is dropped holds its probe slot until the
/// probe timeout.
#[derive(Debug)]
#[must_use = "a ticket must be recorded or cancelled, or a half-open probe slot stays taken"]
pub struct Ticket {
    pub(crate) generation: u64,
    pub(crate) probe: bool,
    pub(crate) transition: Option<Box<Transition>>,
}

impl Ticket {
    /// A ticket for an ordinary (non-probe) call.
    #[inline]
    pub(crate) fn call(generation: u64) -> Self {
        Self {
            generation,
            probe: false,
            transition: None,
        }
    }

    /// The generation of the state period that admitted the call.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether this call is a half-open probe whose outcome decides the breaker's fate.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The transition caused by admitting this call (open → half-open for the first probe).
    pub fn transition(&self) -> Option<&Transition> {
        self.transition.as_deref()
    }

    /// Takes the transition out of the ticket, to publish it.
    pub fn take_transition(&mut self) -> Option<Transition> {
        self.transition.take().map(|t| *t)
    }
}

/// A call the breaker refused: the agent is not asked at all.
///
/// `retry_after` says when asking again can succeed:
///
/// | state | `retry_after` |
/// |---|---|
/// | [`Open`](State::Open) | `Some`: the time left until the first probe is admitted |
/// | [`HalfOpen`](State::HalfOpen) | `Some`: a hint, the time left until the probes are presumed lost, at most the base open duration |
/// | [`ForcedOpen`](State::ForcedOpen) | `None`: not until an operator resets the breaker |
///
/// ```
/// use std::time::Duration;
/// use overseer_breaker::{Backoff, BreakerConfig, BreakerKey, CircuitBreaker, Outcome, State};
/// use tokio::time::Instant;
///
/// let config = BreakerConfig::default()
///     .consecutive_failures(Some(1))
///     .open_duration(Backoff::fixed(Duration::from_secs(12)));
/// let mut breaker = CircuitBreaker::new(BreakerKey::new("researcher", "search"), config)?;
/// let t0 = Instant::now();
/// let ticket = breaker.try_acquire_at(t0).unwrap();
/// breaker.record_at(ticket, Outcome::Failure, Duration::from_secs(1), t0);
///
/// let r = breaker.try_acquire_at(t0).unwrap_err();
/// assert_eq!((r.state, r.retry_after), (State::Open, Some(Duration::from_secs(12))));
/// assert_eq!(r.to_string(), "breaker is open: call rejected, retry after 12s");
/// # Ok::<(), overseer_breaker::BreakerConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Rejected {
    /// The state that rejected the call.
    pub state: State,
    /// When a retry can be admitted; `None` while forced open. `retry_after_ms` in JSON.
    #[serde(
        rename = "retry_after_ms",
        with = "overseer_serde::millis::option",
        default
    )]
    pub retry_after: Option<Duration>,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "breaker is {}: call rejected", self.state)?;
        match self.retry_after {
            Some(after) => write!(f, ", retry after {after:?}"),
            None => f.write_str(" until an operator resets it"),
        }
    }
}

impl std::error::Error for Rejected {}
