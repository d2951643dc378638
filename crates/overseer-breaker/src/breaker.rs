//! The breaker itself: a pure state machine driven by outcomes and a clock you pass in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio::time::Instant;

use crate::admission::{Rejected, Ticket};
use crate::config::BreakerConfig;
use crate::error::BreakerConfigError;
use crate::key::BreakerKey;
use crate::outcome::Outcome;
use crate::snapshot::BreakerSnapshot;
use crate::state::State;
use crate::transition::{Transition, Trigger};
use crate::window::Window;

/// Generations are unique across every breaker in the process, so a ticket can never be
/// mistaken for one issued by another breaker.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Reads the clock at most once, and only if a decision needs it.
///
/// The closed-state hot path (admit, record a success) never looks at the time, so the
/// convenience methods pass `Instant::now` here and pay for it only on state changes.
pub(crate) struct LazyNow<F> {
    read: Option<F>,
    value: Option<Instant>,
}

impl<F: FnOnce() -> Instant> LazyNow<F> {
    pub(crate) fn new(read: F) -> Self {
        Self {
            read: Some(read),
            value: None,
        }
    }

    pub(crate) fn get(&mut self) -> Instant {
        if let Some(now) = self.value {
            return now;
        }
        let now = match self.read.take() {
            Some(read) => read(),
            None => Instant::now(),
        };
        self.value = Some(now);
        now
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen {
        in_flight: u32,
        succeeded: u32,
        /// When outstanding probes are presumed lost: `probe_timeout` after the latest
        /// probe was admitted.
        deadline: Instant,
    },
    ForcedOpen,
    Disabled,
}

/// One circuit breaker as a pure state machine: no locks, no tasks, no clock of its own.
///
/// Every method takes `&mut self`; the `_at` methods take the current time as a
/// [`tokio::time::Instant`], and their plain twins read `Instant::now()` (only when the
/// decision needs the time), so tests can drive a breaker with a paused tokio clock or with
/// hand-made instants. For sharing between tasks, use [`BreakerRegistry`](crate::BreakerRegistry).
///
/// A call goes `try_acquire` → (the call) → `record` with its [`Outcome`] and latency, or
/// `cancel` if it never ran. See [`State`] for the rules.
///
/// ```
/// use std::time::Duration;
/// use overseer_breaker::{Backoff, BreakerConfig, BreakerKey, CircuitBreaker, Outcome, State};
/// use tokio::time::Instant;
///
/// let config = BreakerConfig::default()
///     .consecutive_failures(Some(3))
///     .open_duration(Backoff::exponential(Duration::from_secs(30), 2.0, Duration::from_secs(300)));
/// let mut breaker = CircuitBreaker::new(BreakerKey::new("researcher", "search"), config)?;
/// let t0 = Instant::now();
/// let latency = Duration::from_secs(2);
///
/// // Three failures in a row open it, even below the 5 calls the failure rate needs.
/// for _ in 0..2 {
///     let ticket = breaker.try_acquire_at(t0).unwrap();
///     assert!(breaker.record_at(ticket, Outcome::Failure, latency, t0).is_none());
/// }
/// let ticket = breaker.try_acquire_at(t0).unwrap();
/// let opened = breaker.record_at(ticket, Outcome::Failure, latency, t0).unwrap();
/// assert_eq!((opened.from, opened.to), (State::Closed, State::Open));
/// assert_eq!(opened.open_for, Some(Duration::from_secs(30)));
///
/// // Open: rejected, and told when to come back.
/// let rejected = breaker.try_acquire_at(t0 + Duration::from_secs(10)).unwrap_err();
/// assert_eq!(rejected.retry_after, Some(Duration::from_secs(20)));
///
/// // After the open duration, one probe is admitted; its success closes the breaker.
/// let mut probe = breaker.try_acquire_at(t0 + Duration::from_secs(30)).unwrap();
/// assert!(probe.is_probe());
/// assert_eq!(probe.take_transition().map(|t| t.to), Some(State::HalfOpen));
/// let t1 = t0 + Duration::from_secs(32);
/// let closed = breaker.record_at(probe, Outcome::Success, latency, t1).unwrap();
/// assert_eq!(closed.to, State::Closed);
/// # Ok::<(), overseer_breaker::BreakerConfigError>(())
/// ```
#[derive(Debug)]
pub struct CircuitBreaker {
    key: BreakerKey,
    config: BreakerConfig,
    phase: Phase,
    generation: u64,
    window: Window,
    consecutive_failures: u32,
    consecutive_opens: u32,
    rng: SmallRng,
}

impl CircuitBreaker {
    /// A closed breaker for `key`, or the first rule `config` breaks.
    pub fn new(key: BreakerKey, config: BreakerConfig) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(key, config))
    }

    /// A closed breaker from a config already validated.
    pub(crate) fn with_valid_config(key: BreakerKey, config: BreakerConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed ^ key.stable_hash()),
            None => SmallRng::from_rng(&mut rand::rng()),
        };
        Self {
            window: Window::new(config.window_size),
            key,
            config,
            phase: Phase::Closed,
            generation: next_generation(),
            consecutive_failures: 0,
            consecutive_opens: 0,
            rng,
        }
    }

    /// The breaker's key.
    pub fn key(&self) -> &BreakerKey {
        &self.key
    }

    /// The breaker's (validated) configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state. An open breaker whose duration has passed is still `Open` until a
    /// call asks to be admitted.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Closed => State::Closed,
            Phase::Open { .. } => State::Open,
            Phase::HalfOpen { .. } => State::HalfOpen,
            Phase::ForcedOpen => State::ForcedOpen,
            Phase::Disabled => State::Disabled,
        }
    }

    /// The generation of the current state period (see [`Ticket`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Asks to send a call now (reads the clock only when open or half-open).
    pub fn try_acquire(&mut self) -> Result<Ticket, Rejected> {
        self.try_acquire_with(&mut LazyNow::new(Instant::now))
            .inspect(emit_ticket_transition)
    }

    /// Asks to send a call at `now`.
    ///
    /// Open → half-open happens here: the call that finds the open duration passed is
    /// admitted as the first probe, and its ticket carries the transition.
    pub fn try_acquire_at(&mut self, now: Instant) -> Result<Ticket, Rejected> {
        self.try_acquire_with(&mut LazyNow::new(|| now))
            .inspect(emit_ticket_transition)
    }

    /// Records the outcome of an admitted call, `latency` after it was sent (reads the clock
    /// only on a state change).
    pub fn record(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        latency: Duration,
    ) -> Option<Transition> {
        let transition =
            self.record_with(ticket, outcome, latency, &mut LazyNow::new(Instant::now));
        emit(transition.as_ref());
        transition
    }

    /// Records the outcome of an admitted call at `now`.
    ///
    /// Outcomes of tickets from an earlier generation are ignored, as are all outcomes while
    /// disabled. Returns the transition the outcome caused, if any.
    pub fn record_at(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        latency: Duration,
        now: Instant,
    ) -> Option<Transition> {
        let transition = self.record_with(ticket, outcome, latency, &mut LazyNow::new(|| now));
        emit(transition.as_ref());
        transition
    }

    /// Gives back a ticket whose call never ran: nothing is counted, and a probe's slot is
    /// freed for another probe. Same as recording [`Outcome::Ignored`].
    pub fn cancel(&mut self, ticket: Ticket) {
        self.release(&ticket);
    }

    /// Holds the breaker open until [`reset`](Self::reset), whatever happens.
    pub fn force_open(&mut self) -> Option<Transition> {
        self.force_open_at(Instant::now())
    }

    /// [`force_open`](Self::force_open) at `now`.
    pub fn force_open_at(&mut self, now: Instant) -> Option<Transition> {
        let transition = self.force_open_with(&mut LazyNow::new(|| now));
        emit(transition.as_ref());
        transition
    }

    /// Admits everything and counts nothing until [`reset`](Self::reset). The window is
    /// cleared.
    pub fn disable(&mut self) -> Option<Transition> {
        self.disable_at(Instant::now())
    }

    /// [`disable`](Self::disable) at `now`.
    pub fn disable_at(&mut self, now: Instant) -> Option<Transition> {
        let transition = self.disable_with(&mut LazyNow::new(|| now));
        emit(transition.as_ref());
        transition
    }

    /// Back to closed with an empty window, no consecutive failures and the backoff reset.
    /// Outstanding tickets become stale. Returns `None` if it was already closed (the window
    /// is still cleared).
    pub fn reset(&mut self) -> Option<Transition> {
        self.reset_at(Instant::now())
    }

    /// [`reset`](Self::reset) at `now`.
    pub fn reset_at(&mut self, now: Instant) -> Option<Transition> {
        let transition = self.reset_with(&mut LazyNow::new(|| now));
        emit(transition.as_ref());
        transition
    }

    /// The breaker as it is now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.snapshot_at(Instant::now())
    }

    /// The breaker as it is at `now` (`now` only affects `retry_after`).
    pub fn snapshot_at(&self, now: Instant) -> BreakerSnapshot {
        let (open_until, probes_in_flight, probes_succeeded) = match self.phase {
            Phase::Open { until } => (Some(until), 0, 0),
            Phase::HalfOpen {
                in_flight,
                succeeded,
                ..
            } => (None, in_flight, succeeded),
            _ => (None, 0, 0),
        };
        let retry_after = match self.phase {
            Phase::Open { until } => Some(until.saturating_duration_since(now)),
            Phase::HalfOpen { deadline, .. } => Some(self.half_open_hint(deadline, now)),
            _ => None,
        };
        BreakerSnapshot {
            key: self.key.clone(),
            state: self.state(),
            failure_rate: self.window.failure_rate(),
            calls_in_window: self.window.len(),
            failures_in_window: self.window.failures(),
            slow_calls_in_window: self.window.slow_calls(),
            consecutive_failures: self.consecutive_failures,
            consecutive_opens: self.consecutive_opens,
            open_until,
            retry_after,
            probes_in_flight,
            probes_succeeded,
        }
    }

    // ---- the decisions, without tracing (the registry emits after unlocking) ----

    /// The word the registry publishes for lock-free admission: `generation << 1 | 1` while
    /// every call is admitted as an ordinary call (closed, disabled), 0 otherwise.
    pub(crate) fn fast_path_word(&self) -> u64 {
        match self.phase {
            Phase::Closed | Phase::Disabled => (self.generation << 1) | 1,
            _ => 0,
        }
    }

    pub(crate) fn try_acquire_with<F: FnOnce() -> Instant>(
        &mut self,
        now: &mut LazyNow<F>,
    ) -> Result<Ticket, Rejected> {
        match self.phase {
            Phase::Closed | Phase::Disabled => Ok(Ticket::call(self.generation)),
            Phase::ForcedOpen => Err(Rejected {
                state: State::ForcedOpen,
                retry_after: None,
            }),
            Phase::Open { until } => {
                let now = now.get();
                if now < until {
                    return Err(Rejected {
                        state: State::Open,
                        retry_after: Some(until.saturating_duration_since(now)),
                    });
                }
                let transition = self.transition(
                    State::HalfOpen,
                    Trigger::OpenElapsed,
                    self.window.failure_rate(),
                    None,
                    now,
                );
                self.enter(Phase::HalfOpen {
                    in_flight: 1,
                    succeeded: 0,
                    deadline: self.probe_deadline(now),
                });
                Ok(Ticket {
                    generation: self.generation,
                    probe: true,
                    transition: Some(Box::new(transition)),
                })
            }
            Phase::HalfOpen {
                in_flight,
                succeeded,
                deadline,
            } => {
                let now = now.get();
                if in_flight + succeeded < self.config.half_open_probes {
                    self.phase = Phase::HalfOpen {
                        in_flight: in_flight + 1,
                        succeeded,
                        deadline: self.probe_deadline(now),
                    };
                    return Ok(self.probe_ticket());
                }
                if in_flight > 0 && now >= deadline {
                    // The outstanding probes neither reported nor were cancelled within
                    // `probe_timeout`: presume them lost. A new generation makes their late
                    // reports stale; successes already counted are kept.
                    tracing::warn!(
                        agent = &*self.key.agent,
                        task_type = &*self.key.task_type,
                        lost_probes = in_flight,
                        "breaker reclaimed half-open probe slots that were never reported"
                    );
                    self.generation = next_generation();
                    self.phase = Phase::HalfOpen {
                        in_flight: 1,
                        succeeded,
                        deadline: self.probe_deadline(now),
                    };
                    return Ok(self.probe_ticket());
                }
                Err(Rejected {
                    state: State::HalfOpen,
                    retry_after: Some(self.half_open_hint(deadline, now)),
                })
            }
        }
    }

    pub(crate) fn record_with<F: FnOnce() -> Instant>(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        latency: Duration,
        now: &mut LazyNow<F>,
    ) -> Option<Transition> {
        if ticket.generation != self.generation {
            return None;
        }
        let slow = self
            .config
            .slow_call_threshold
            .is_some_and(|threshold| latency >= threshold);
        let failed = match outcome {
            Outcome::Success => slow,
            Outcome::Failure => true,
            Outcome::Ignored => {
                self.release(&ticket);
                return None;
            }
        };
        match self.phase {
            Phase::Closed => {
                self.window.push(failed, slow);
                if failed {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                    return self.judge_closed(now);
                }
                self.consecutive_failures = 0;
                // A success never raises the failure rate, so after every outcome the rate
                // is below the threshold or the breaker opened. A success can still be the
                // call that brings the window up to `minimum_calls`: judge that one.
                if self.window.len() == self.config.minimum_calls {
                    return self.judge_closed(now);
                }
                None
            }
            Phase::HalfOpen {
                in_flight,
                succeeded,
                deadline,
            } if ticket.probe => {
                let now = now.get();
                if failed {
                    let probe_rate = 1.0 / f64::from(succeeded + 1);
                    return Some(self.open(Trigger::ProbeFailed, probe_rate, now));
                }
                let succeeded = succeeded + 1;
                if succeeded >= self.config.half_open_probes {
                    return Some(self.close(Trigger::ProbesSucceeded, 0.0, now));
                }
                self.phase = Phase::HalfOpen {
                    in_flight: in_flight.saturating_sub(1),
                    succeeded,
                    deadline,
                };
                None
            }
            // Disabled counts nothing; open and forced-open issue no tickets of their own.
            _ => None,
        }
    }

    pub(crate) fn force_open_with<F: FnOnce() -> Instant>(
        &mut self,
        now: &mut LazyNow<F>,
    ) -> Option<Transition> {
        if matches!(self.phase, Phase::ForcedOpen) {
            return None;
        }
        let transition = self.transition(
            State::ForcedOpen,
            Trigger::ForcedOpen,
            self.window.failure_rate(),
            None,
            now.get(),
        );
        self.enter(Phase::ForcedOpen);
        Some(transition)
    }

    pub(crate) fn disable_with<F: FnOnce() -> Instant>(
        &mut self,
        now: &mut LazyNow<F>,
    ) -> Option<Transition> {
        if matches!(self.phase, Phase::Disabled) {
            return None;
        }
        let transition = self.transition(
            State::Disabled,
            Trigger::Disabled,
            self.window.failure_rate(),
            None,
            now.get(),
        );
        self.window.clear();
        self.consecutive_failures = 0;
        self.enter(Phase::Disabled);
        Some(transition)
    }

    pub(crate) fn reset_with<F: FnOnce() -> Instant>(
        &mut self,
        now: &mut LazyNow<F>,
    ) -> Option<Transition> {
        let was_closed = matches!(self.phase, Phase::Closed);
        let transition = self.close(Trigger::Reset, self.window.failure_rate(), now.get());
        (!was_closed).then_some(transition)
    }

    /// Frees the slot of a probe that will never report.
    pub(crate) fn release(&mut self, ticket: &Ticket) {
        if !ticket.probe || ticket.generation != self.generation {
            return;
        }
        if let Phase::HalfOpen { in_flight, .. } = &mut self.phase {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    // ---- helpers ----

    /// After an outcome in the closed state: open if a rule says so.
    fn judge_closed<F: FnOnce() -> Instant>(&mut self, now: &mut LazyNow<F>) -> Option<Transition> {
        let rate = self.window.failure_rate();
        if self.window.len() >= self.config.minimum_calls
            && rate >= self.config.failure_rate_threshold
        {
            return Some(self.open(Trigger::FailureRate, rate, now.get()));
        }
        if self
            .config
            .consecutive_failures
            .is_some_and(|limit| self.consecutive_failures >= limit)
        {
            return Some(self.open(Trigger::ConsecutiveFailures, rate, now.get()));
        }
        None
    }

    fn open(&mut self, trigger: Trigger, failure_rate: f64, now: Instant) -> Transition {
        let duration = self
            .config
            .open_duration
            .sample(self.consecutive_opens, &mut self.rng);
        self.consecutive_opens = self.consecutive_opens.saturating_add(1);
        let transition = self.transition(State::Open, trigger, failure_rate, Some(duration), now);
        // `duration` is at most MAX_DURATION (validated), so this cannot overflow in practice.
        let until = now.checked_add(duration).unwrap_or(now);
        self.enter(Phase::Open { until });
        transition
    }

    fn close(&mut self, trigger: Trigger, failure_rate: f64, now: Instant) -> Transition {
        let transition = self.transition(State::Closed, trigger, failure_rate, None, now);
        self.window.clear();
        self.consecutive_failures = 0;
        self.consecutive_opens = 0;
        self.enter(Phase::Closed);
        transition
    }

    /// Enters `phase` with a new generation: every outstanding ticket becomes stale.
    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.generation = next_generation();
    }

    fn probe_ticket(&self) -> Ticket {
        Ticket {
            generation: self.generation,
            probe: true,
            transition: None,
        }
    }

    fn probe_deadline(&self, now: Instant) -> Instant {
        now.checked_add(self.config.probe_timeout).unwrap_or(now)
    }

    /// What a call rejected while half-open is told: the time until the probes are presumed
    /// lost, but never more than the base open duration (probes usually answer much sooner).
    fn half_open_hint(&self, deadline: Instant, now: Instant) -> Duration {
        deadline
            .saturating_duration_since(now)
            .min(self.config.open_duration.base)
    }

    fn transition(
        &self,
        to: State,
        trigger: Trigger,
        failure_rate: f64,
        open_for: Option<Duration>,
        at: Instant,
    ) -> Transition {
        Transition {
            key: self.key.clone(),
            from: self.state(),
            to,
            trigger,
            failure_rate,
            calls_in_window: self.window.len(),
            consecutive_failures: self.consecutive_failures,
            open_for,
            at,
        }
    }
}

fn emit(transition: Option<&Transition>) {
    if let Some(transition) = transition {
        transition.emit();
    }
}

fn emit_ticket_transition(ticket: &Ticket) {
    emit(ticket.transition());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(config: BreakerConfig) -> CircuitBreaker {
        CircuitBreaker::new(BreakerKey::new("a", "t"), config.seed(Some(1))).unwrap()
    }

    #[test]
    fn lazy_now_reads_the_clock_once_and_only_when_asked() {
        let mut reads = 0;
        let t = Instant::now();
        {
            let mut now = LazyNow::new(|| {
                reads += 1;
                t
            });
            assert_eq!(now.get(), t);
            assert_eq!(now.get(), t);
        }
        assert_eq!(reads, 1);
        let mut never = 0;
        {
            let _unused = LazyNow::new(|| {
                never += 1;
                t
            });
        }
        assert_eq!(never, 0);
    }

    #[test]
    fn closed_admission_and_recording_never_read_the_clock() {
        let mut b = breaker(BreakerConfig::default());
        let mut now =
            LazyNow::new(|| -> Instant { unreachable!("the closed path must not read the clock") });
        let ticket = b.try_acquire_with(&mut now).unwrap();
        assert!(b
            .record_with(ticket, Outcome::Success, Duration::from_secs(1), &mut now)
            .is_none());
        let ticket = b.try_acquire_with(&mut now).unwrap();
        assert!(b
            .record_with(ticket, Outcome::Failure, Duration::from_secs(1), &mut now)
            .is_none());
    }

    #[test]
    fn fast_path_word_is_published_only_while_calls_flow_freely() {
        let mut b = breaker(BreakerConfig::default());
        let t = Instant::now();
        assert_eq!(b.fast_path_word(), (b.generation() << 1) | 1);
        b.force_open_at(t);
        assert_eq!(b.fast_path_word(), 0);
        b.disable_at(t);
        assert_eq!(b.fast_path_word() & 1, 1);
    }

    #[test]
    fn generations_are_unique_across_breakers() {
        let a = breaker(BreakerConfig::default());
        let b = breaker(BreakerConfig::default());
        assert_ne!(a.generation(), b.generation());
    }

    #[test]
    fn a_ticket_from_another_breaker_is_ignored() {
        let t = Instant::now();
        let config = BreakerConfig::default().consecutive_failures(Some(1));
        let mut a = breaker(config.clone());
        let mut b = breaker(config);
        let foreign = a.try_acquire_at(t).unwrap();
        assert!(b
            .record_at(foreign, Outcome::Failure, Duration::ZERO, t)
            .is_none());
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.snapshot_at(t).calls_in_window, 0);
    }
}
