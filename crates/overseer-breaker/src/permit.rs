//! A registry admission: record its outcome, cancel it, or drop it.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::admission::Ticket;
use crate::handle::BreakerHandle;
use crate::key::BreakerKey;
use crate::outcome::Outcome;
use crate::transition::Transition;

/// Permission to send one call, from a [`BreakerRegistry`](crate::BreakerRegistry) or a
/// [`BreakerHandle`].
///
/// Consume it exactly once:
///
/// - [`record`](Self::record) with the call's [`Outcome`] and latency once the agent answered;
/// - [`cancel`](Self::cancel) if the call was never sent (nothing is counted);
/// - or just drop it, which is the same as `cancel`: a half-open probe slot is released, so a
///   caller that panics or a future that is dropped mid-call cannot wedge the breaker.
///
/// A permit holds a reference to its breaker, so recording never looks the key up again.
/// Its outcome is ignored if the breaker changed state since it was issued (see [`Ticket`]).
#[must_use = "record the call's outcome with `record`, or `cancel` the permit"]
pub struct Permit {
    handle: BreakerHandle,
    ticket: Option<Ticket>,
}

impl Permit {
    #[inline]
    pub(crate) fn new(handle: BreakerHandle, ticket: Ticket) -> Self {
        Self {
            handle,
            ticket: Some(ticket),
        }
    }

    /// The breaker this permit belongs to.
    pub fn key(&self) -> &BreakerKey {
        self.handle.key()
    }

    /// A handle to the breaker this permit belongs to.
    pub fn handle(&self) -> &BreakerHandle {
        &self.handle
    }

    /// Whether the outcome's latency counts ([`BreakerHandle::measures_latency`]).
    #[inline]
    pub fn measures_latency(&self) -> bool {
        self.handle.measures_latency()
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.ticket.as_ref().is_some_and(Ticket::is_probe)
    }

    /// The generation of the state period that admitted the call.
    pub fn generation(&self) -> u64 {
        self.ticket.as_ref().map_or(0, Ticket::generation)
    }

    /// The transition caused by admitting this call (open → half-open for the first probe).
    pub fn transition(&self) -> Option<&Transition> {
        self.ticket.as_ref().and_then(Ticket::transition)
    }

    /// Takes the transition out of the permit, to publish it.
    pub fn take_transition(&mut self) -> Option<Transition> {
        self.ticket.as_mut().and_then(Ticket::take_transition)
    }

    /// Records the call's outcome (reads the clock only on a state change).
    #[inline]
    pub fn record(self, outcome: Outcome, latency: Duration) -> Option<Transition> {
        self.record_with(outcome, latency, Instant::now)
    }

    /// Records the call's outcome at `now`.
    #[inline]
    pub fn record_at(
        self,
        outcome: Outcome,
        latency: Duration,
        now: Instant,
    ) -> Option<Transition> {
        self.record_with(outcome, latency, move || now)
    }

    /// Gives the permit back without counting anything.
    pub fn cancel(self) {
        drop(self);
    }

    #[inline]
    fn record_with<F: FnOnce() -> Instant>(
        mut self,
        outcome: Outcome,
        latency: Duration,
        now: F,
    ) -> Option<Transition> {
        let ticket = self.ticket.take()?;
        if outcome == Outcome::Ignored && !ticket.is_probe() {
            // Nothing to count and no slot to free: skip the lock.
            return None;
        }
        self.handle.record_ticket(ticket, outcome, latency, now)
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            if ticket.is_probe() {
                self.handle.release_ticket(&ticket);
            }
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("key", self.key())
            .field("generation", &self.generation())
            .field("probe", &self.is_probe())
            .finish()
    }
}
