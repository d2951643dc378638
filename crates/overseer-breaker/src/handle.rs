//! A shared, thread-safe reference to one breaker in a registry.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::admission::{Rejected, Ticket};
use crate::breaker::{CircuitBreaker, LazyNow};
use crate::key::BreakerKey;
use crate::outcome::Outcome;
use crate::permit::Permit;
use crate::snapshot::BreakerSnapshot;
use crate::state::State;
use crate::transition::Transition;

/// One breaker's cell. Aligned to two cache lines so that breakers used by different threads
/// never share one.
#[repr(align(128))]
struct Shared {
    /// [`CircuitBreaker::fast_path_word`], republished under the lock after every change:
    /// while its low bit is set, admission is one atomic load and takes no lock.
    fast: AtomicU64,
    key: BreakerKey,
    /// Whether outcomes need their latency (a slow-call threshold is configured).
    measures_latency: bool,
    breaker: Mutex<CircuitBreaker>,
}

/// A cheap, cloneable handle to one breaker of a [`BreakerRegistry`](crate::BreakerRegistry).
///
/// Every method of the registry that takes a key looks the breaker up and calls the handle.
/// A caller that sends many calls to the same `(agent, task type)` can keep the handle and
/// skip the lookup. Handles stay valid for the registry's whole life (breakers are never
/// removed), so operator actions through the registry reach the same breaker.
///
/// Admission in the closed and disabled states is a single atomic load; everything else
/// takes the breaker's mutex for a few dozen nanoseconds. Transition events are emitted after
/// the mutex is released.
///
/// ```
/// use std::time::Duration;
/// use overseer_breaker::{BreakerRegistry, BreakerKey, Outcome};
///
/// let registry = BreakerRegistry::default();
/// let handle = registry.handle(&BreakerKey::new("coder", "patch"));
/// let permit = handle.try_acquire().expect("a new breaker is closed");
/// permit.record(Outcome::Success, Duration::from_secs(4));
/// assert_eq!(handle.snapshot().calls_in_window, 1);
/// ```
#[derive(Clone)]
pub struct BreakerHandle {
    shared: Arc<Shared>,
}

impl BreakerHandle {
    pub(crate) fn new(breaker: CircuitBreaker) -> Self {
        Self {
            shared: Arc::new(Shared {
                fast: AtomicU64::new(breaker.fast_path_word()),
                key: breaker.key().clone(),
                measures_latency: breaker.config().slow_call_threshold.is_some(),
                breaker: Mutex::new(breaker),
            }),
        }
    }

    /// The breaker's key.
    pub fn key(&self) -> &BreakerKey {
        &self.shared.key
    }

    /// Whether the latency given with an outcome counts: only with a
    /// [slow-call threshold](crate::BreakerConfig::slow_call_threshold). Without one, a caller
    /// need not read the clock to time its calls (any latency may be recorded).
    ///
    /// ```
    /// use std::time::Duration;
    /// use overseer_breaker::{BreakerConfig, BreakerKey, BreakerRegistry};
    ///
    /// let plain = BreakerRegistry::default().handle(&BreakerKey::new("coder", "patch"));
    /// assert!(!plain.measures_latency());
    /// let config = BreakerConfig::default().slow_call_threshold(Some(Duration::from_secs(60)));
    /// let timed = BreakerRegistry::new(config)?.handle(&BreakerKey::new("coder", "patch"));
    /// assert!(timed.measures_latency());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn measures_latency(&self) -> bool {
        self.shared.measures_latency
    }

    /// The breaker's current state.
    pub fn state(&self) -> State {
        self.lock().state()
    }

    /// Asks to send a call now (reads the clock only when not closed).
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, Rejected> {
        self.acquire_with(Instant::now)
    }

    /// Asks to send a call at `now`.
    #[inline]
    pub fn try_acquire_at(&self, now: Instant) -> Result<Permit, Rejected> {
        self.acquire_with(move || now)
    }

    /// Holds the breaker open until reset.
    pub fn force_open(&self) -> Option<Transition> {
        self.force_open_at(Instant::now())
    }

    /// [`force_open`](Self::force_open) at `now`.
    pub fn force_open_at(&self, now: Instant) -> Option<Transition> {
        self.operate(|b| b.force_open_with(&mut LazyNow::new(|| now)))
    }

    /// Admits everything and counts nothing until reset.
    pub fn disable(&self) -> Option<Transition> {
        self.disable_at(Instant::now())
    }

    /// [`disable`](Self::disable) at `now`.
    pub fn disable_at(&self, now: Instant) -> Option<Transition> {
        self.operate(|b| b.disable_with(&mut LazyNow::new(|| now)))
    }

    /// Back to closed with an empty window and the backoff reset.
    pub fn reset(&self) -> Option<Transition> {
        self.reset_at(Instant::now())
    }

    /// [`reset`](Self::reset) at `now`.
    pub fn reset_at(&self, now: Instant) -> Option<Transition> {
        self.operate(|b| b.reset_with(&mut LazyNow::new(|| now)))
    }

    /// The breaker as it is now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.snapshot_at(Instant::now())
    }

    /// The breaker as it is at `now`.
    pub fn snapshot_at(&self, now: Instant) -> BreakerSnapshot {
        self.lock().snapshot_at(now)
    }

    // ---- used by permits ----

    #[inline]
    fn acquire_with<F: FnOnce() -> Instant>(&self, now: F) -> Result<Permit, Rejected> {
        let word = self.shared.fast.load(Ordering::Acquire);
        if word & 1 == 1 {
            return Ok(Permit::new(self.clone(), Ticket::call(word >> 1)));
        }
        self.acquire_slow(now)
    }

    #[cold]
    fn acquire_slow<F: FnOnce() -> Instant>(&self, now: F) -> Result<Permit, Rejected> {
        let ticket = {
            let mut breaker = self.lock();
            let ticket = breaker.try_acquire_with(&mut LazyNow::new(now));
            self.publish(&breaker);
            ticket?
        };
        if let Some(transition) = ticket.transition() {
            transition.emit();
        }
        Ok(Permit::new(self.clone(), ticket))
    }

    #[inline]
    pub(crate) fn record_ticket<F: FnOnce() -> Instant>(
        &self,
        ticket: Ticket,
        outcome: Outcome,
        latency: Duration,
        now: F,
    ) -> Option<Transition> {
        let transition = {
            let mut breaker = self.lock();
            let transition = breaker.record_with(ticket, outcome, latency, &mut LazyNow::new(now));
            if transition.is_some() {
                self.publish(&breaker);
            }
            transition
        };
        if let Some(transition) = &transition {
            transition.emit();
        }
        transition
    }

    pub(crate) fn release_ticket(&self, ticket: &Ticket) {
        self.lock().release(ticket);
    }

    // ---- internals ----

    fn operate(
        &self,
        op: impl FnOnce(&mut CircuitBreaker) -> Option<Transition>,
    ) -> Option<Transition> {
        let transition = {
            let mut breaker = self.lock();
            let transition = op(&mut breaker);
            self.publish(&breaker);
            transition
        };
        if let Some(transition) = &transition {
            transition.emit();
        }
        transition
    }

    /// Republishes the admission word; called with the lock held so words are stored in the
    /// order the changes happened.
    #[inline]
    fn publish(&self, breaker: &CircuitBreaker) {
        self.shared
            .fast
            .store(breaker.fast_path_word(), Ordering::Release);
    }

    #[inline]
    fn lock(&self) -> MutexGuard<'_, CircuitBreaker> {
        // Nothing panics while the lock is held; if something ever did, the breaker's state
        // is still consistent (every mutation is a single assignment), so keep going.
        self.shared
            .breaker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether both handles point at the same breaker.
    pub fn same_breaker(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flowing = self.shared.fast.load(Ordering::Relaxed) & 1 == 1;
        f.debug_struct("BreakerHandle")
            .field("key", &self.shared.key)
            .field("admits_without_lock", &flowing)
            .finish()
    }
}
