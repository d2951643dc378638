//! The kill switch: armed until it trips, then tripped for good.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::BudgetConfigError;
use crate::error_rate::{ErrorRateStatus, ErrorRateTrigger, ErrorWindow};
use crate::ledger::{Ledger, LedgerStatus};
use crate::tier::write_percent;
use crate::usage::Dimension;

/// Why the kill switch tripped.
///
/// | reason | trips when |
/// |---|---|
/// | [`LimitReached`](Self::LimitReached) | a commit takes the process ledger's committed spend to or past a limit |
/// | [`HardTierReached`](Self::HardTierReached) | a commit takes the process ledger's committed spend to or past the [hard tier](crate::BudgetBuilder::hard_tier) of a limit |
/// | [`DeadlinePassed`](Self::DeadlinePassed) | [`check_deadline`](KillSwitch::check_deadline) (or an admission) sees `now ≥ deadline` |
/// | [`ErrorRate`](Self::ErrorRate) | [`record_outcome`](KillSwitch::record_outcome) leaves the window at or above its threshold with at least `min_calls` calls |
/// | [`Manual`](Self::Manual) | someone calls [`trip`](KillSwitch::trip) with it |
/// | [`Fleet`](Self::Fleet) | the budget's [shared limit](crate::SharedLimit) tripped, in this process or another |
///
/// A refused reservation never trips the switch, whatever the scope and whether or not the
/// estimate could ever fit: it refuses that call with
/// [`Refusal::LimitExceeded`](crate::Refusal::LimitExceeded). Only spend that really happened
/// (committed), time and errors stop the run. Agent limits never trip the switch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum TripReason {
    /// Committed process spend reached a limit.
    LimitReached {
        /// Which limit.
        dimension: Dimension,
        /// Committed spend after the commit that reached it.
        committed: u64,
        /// The limit.
        limit: u64,
    },
    /// Committed process spend reached the hard tier of a limit.
    HardTierReached {
        /// Which limit.
        dimension: Dimension,
        /// Committed spend after the commit that reached it.
        committed: u64,
        /// The committed figure that trips: ⌈limit · fraction⌉.
        threshold: u64,
        /// The limit.
        limit: u64,
        /// The hard tier, in parts per million of the limit (900 000 = 90 %).
        fraction_ppm: u32,
    },
    /// The wall-clock deadline passed.
    DeadlinePassed {
        /// The time allowed from the start; `time_limit_ms` in JSON.
        #[serde(rename = "time_limit_ms", with = "overseer_serde::millis")]
        time_limit: Duration,
    },
    /// Too many recent calls failed.
    ErrorRate {
        /// Failed calls in the window.
        failures: u32,
        /// Calls in the window.
        calls: u32,
        /// The threshold, in parts per million.
        threshold_ppm: u32,
    },
    /// Someone tripped it by hand.
    Manual {
        /// What they said.
        reason: String,
    },
    /// The fleet's [shared limit](crate::SharedLimit) tripped: its committed spend reached
    /// it, or another process's kill switch tripped.
    Fleet {
        /// The shared limit's name.
        limit: Box<str>,
        /// Why, as the fleet recorded it.
        reason: Box<str>,
    },
}

impl TripReason {
    /// A manual trip with this reason.
    pub fn manual(reason: impl Into<String>) -> Self {
        TripReason::Manual {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for TripReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TripReason::LimitReached {
                dimension,
                committed,
                limit,
            } => write!(
                f,
                "process {dimension} limit reached: {committed} of {limit} committed"
            ),
            TripReason::HardTierReached {
                dimension,
                committed,
                limit,
                fraction_ppm,
                ..
            } => {
                write!(f, "process {dimension} hard tier (")?;
                write_percent(f, *fraction_ppm)?;
                write!(f, ") reached: {committed} of {limit} committed")
            }
            TripReason::DeadlinePassed { time_limit } => {
                write!(f, "wall-clock deadline passed ({time_limit:?} allowed)")
            }
            TripReason::ErrorRate {
                failures,
                calls,
                threshold_ppm,
            } => {
                write!(
                    f,
                    "error rate: {failures} of the last {calls} calls failed (threshold "
                )?;
                write_percent(f, *threshold_ppm)?;
                f.write_str(")")
            }
            TripReason::Manual { reason } => write!(f, "manual trip: {reason}"),
            TripReason::Fleet { limit, reason } => {
                write!(f, "fleet limit {limit:?} tripped: {reason}")
            }
        }
    }
}

/// What happens to calls already in flight when the switch trips. The switch only holds
/// this; the agent layer enforces it.
///
/// | policy | in-flight calls | budget |
/// |---|---|---|
/// | [`Finish`](Self::Finish) | run to completion | stays within their reservations, bar overruns |
/// | [`CancelNow`](Self::CancelNow) | cancelled at once | spend so far is lost work |
/// | [`CancelAfter(grace)`](Self::CancelAfter) | finish if they can within `grace`, then cancelled | as `Finish`, bounded in time |
///
/// The default is `CancelAfter(5 s)`, like OTP's default worker shutdown of 5 000 ms: in-flight
/// calls already hold their budget, so letting them finish costs nothing more, but a stuck
/// call must not hold the shutdown open forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InFlightPolicy {
    /// Let in-flight calls finish.
    Finish,
    /// Cancel in-flight calls now.
    CancelNow,
    /// Let in-flight calls finish for at most this long, then cancel them (in JSON,
    /// milliseconds: `{"cancel_after":5000}`).
    #[serde(with = "overseer_serde::millis")]
    CancelAfter(Duration),
}

impl InFlightPolicy {
    /// How long in-flight calls may go on after the trip: `None` for no bound.
    pub fn grace(&self) -> Option<Duration> {
        match self {
            InFlightPolicy::Finish => None,
            InFlightPolicy::CancelNow => Some(Duration::ZERO),
            InFlightPolicy::CancelAfter(grace) => Some(*grace),
        }
    }
}

impl Default for InFlightPolicy {
    fn default() -> Self {
        InFlightPolicy::CancelAfter(Duration::from_secs(5))
    }
}

/// The kill switch's configuration: the triggers it watches besides the ledger, and the
/// in-flight policy.
///
/// ```
/// use std::time::Duration;
/// use overseer_budget::{ErrorRateTrigger, InFlightPolicy, KillSwitchConfig};
///
/// let config = KillSwitchConfig::new()
///     .time_limit(Duration::from_secs(15 * 60))
///     .error_rate(ErrorRateTrigger::new(0.5, 50, 10)?)
///     .in_flight(InFlightPolicy::CancelNow);
/// # Ok::<(), overseer_budget::BudgetConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KillSwitchConfig {
    time_limit: Option<Duration>,
    error_rate: Option<ErrorRateTrigger>,
    in_flight: InFlightPolicy,
}

impl KillSwitchConfig {
    /// No deadline, no error-rate trigger, the default in-flight policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trips once this much time has passed since the switch started (must not be zero).
    pub fn time_limit(mut self, time_limit: Duration) -> Self {
        self.time_limit = Some(time_limit);
        self
    }

    /// Trips on this error rate.
    pub fn error_rate(mut self, trigger: ErrorRateTrigger) -> Self {
        self.error_rate = Some(trigger);
        self
    }

    /// What to do with in-flight calls on a trip.
    pub fn in_flight(mut self, policy: InFlightPolicy) -> Self {
        self.in_flight = policy;
        self
    }
}

/// Everything known about a trip, recorded once, at the moment of the trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TripReport {
    /// Why it tripped (the first reason: later trips do not change it).
    pub reason: TripReason,
    /// Time from the switch's start to the trip; `after_ms` in JSON.
    #[serde(rename = "after_ms", with = "overseer_serde::millis")]
    pub after: Duration,
    /// The process ledger at the trip: tokens, cost and steps, each committed, reserved
    /// and limit. `None` for a switch not attached to a ledger.
    pub process: Option<LedgerStatus>,
    /// The error-rate window at the trip, if there is an error-rate trigger.
    pub error_rate: Option<ErrorRateStatus>,
    /// What the agent layer should do with in-flight calls.
    pub in_flight: InFlightPolicy,
}

/// Whether a call to [`trip`](KillSwitch::trip) tripped the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TripOutcome {
    /// This call tripped it: its reason is the one recorded.
    Tripped,
    /// It had already tripped; nothing changed.
    AlreadyTripped,
}

impl TripOutcome {
    /// Whether this call was the one that tripped it.
    pub fn tripped_now(self) -> bool {
        matches!(self, TripOutcome::Tripped)
    }
}

type Callback = Box<dyn Fn(&TripReport) + Send + Sync>;

struct Callbacks {
    /// Set, under the lock, by the tripping call as it takes `pending`.
    fired: bool,
    pending: Vec<Callback>,
}

struct Trip {
    report: TripReport,
    at: Instant,
}

struct SwitchInner {
    /// The hot-path flag. Set only after `trip` holds the report.
    tripped: AtomicBool,
    trip: OnceLock<Trip>,
    callbacks: Mutex<Callbacks>,
    started_at: Instant,
    time_limit: Option<Duration>,
    deadline: Option<Instant>,
    window: Option<Mutex<ErrorWindow>>,
    in_flight: InFlightPolicy,
    ledger: Option<Ledger>,
}

/// The process-wide kill switch: **armed**, then **tripped** for good.
///
/// | state | [`is_tripped`](Self::is_tripped) | [`trip`](Self::trip) | admission through [`Budget`](crate::Budget) |
/// |---|---|---|---|
/// | armed | `false` (one atomic load) | records reason, figures and time; runs every `on_trip` callback once; returns [`TripOutcome::Tripped`] | allowed |
/// | tripped | `true` | nothing changes; returns [`TripOutcome::AlreadyTripped`] | refused with [`Refusal::Tripped`](crate::Refusal::Tripped) |
///
/// A cheap-to-clone handle: clones share one switch. Under concurrent trips exactly one
/// call wins, its reason is the one recorded, and the callbacks run exactly once, on the
/// winning thread, before its `trip` returns. Once any `trip` call has returned,
/// `is_tripped()` is `true` on every thread.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use overseer_budget::{KillSwitch, KillSwitchConfig, TripOutcome, TripReason};
///
/// let switch = KillSwitch::new(KillSwitchConfig::new())?;
/// let calls = Arc::new(AtomicUsize::new(0));
/// let seen = calls.clone();
/// switch.on_trip(move |report| {
///     seen.fetch_add(1, Ordering::SeqCst);
///     println!("stopping the tree: {}", report.reason);
/// });
///
/// assert_eq!(switch.trip(TripReason::manual("operator")), TripOutcome::Tripped);
/// assert_eq!(switch.trip(TripReason::manual("again")), TripOutcome::AlreadyTripped);
/// assert!(switch.is_tripped());
/// assert_eq!(switch.reason(), Some(&TripReason::manual("operator")));
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
/// # Ok::<(), overseer_budget::BudgetConfigError>(())
/// ```
#[derive(Clone)]
pub struct KillSwitch {
    inner: Arc<SwitchInner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run_callback(callback: &(dyn Fn(&TripReport) + Send + Sync), report: &TripReport) {
    if catch_unwind(AssertUnwindSafe(|| callback(report))).is_err() {
        tracing::error!(reason = %report.reason, "an on_trip callback panicked; the others still run");
    }
}

impl KillSwitch {
    /// An armed switch, started now.
    ///
    /// # Errors
    /// [`BudgetConfigError::ZeroTimeLimit`] or [`BudgetConfigError::TimeLimitTooLong`].
    pub fn new(config: KillSwitchConfig) -> Result<Self, BudgetConfigError> {
        Self::new_at(config, Instant::now())
    }

    /// An armed switch, started at `started_at` (the deadline counts from there).
    ///
    /// # Errors
    /// [`BudgetConfigError::ZeroTimeLimit`] or [`BudgetConfigError::TimeLimitTooLong`].
    pub fn new_at(
        config: KillSwitchConfig,
        started_at: Instant,
    ) -> Result<Self, BudgetConfigError> {
        Self::with_ledger(config, started_at, None)
    }

    pub(crate) fn with_ledger(
        config: KillSwitchConfig,
        started_at: Instant,
        ledger: Option<Ledger>,
    ) -> Result<Self, BudgetConfigError> {
        let deadline = match config.time_limit {
            None => None,
            Some(limit) if limit.is_zero() => return Err(BudgetConfigError::ZeroTimeLimit),
            Some(limit) => Some(started_at.checked_add(limit).ok_or(
                BudgetConfigError::TimeLimitTooLong {
                    seconds: limit.as_secs(),
                },
            )?),
        };
        Ok(Self {
            inner: Arc::new(SwitchInner {
                tripped: AtomicBool::new(false),
                trip: OnceLock::new(),
                callbacks: Mutex::new(Callbacks {
                    fired: false,
                    pending: Vec::new(),
                }),
                started_at,
                time_limit: config.time_limit,
                deadline,
                window: config.error_rate.map(|t| Mutex::new(ErrorWindow::new(t))),
                in_flight: config.in_flight,
                ledger,
            }),
        })
    }

    /// Whether the switch has tripped: a single atomic load, for every ask's hot path.
    #[inline]
    pub fn is_tripped(&self) -> bool {
        self.inner.tripped.load(Ordering::Acquire)
    }

    /// Trips the switch now (reads the clock).
    ///
    /// Returns whether this call tripped it. A second trip is harmless: it changes nothing
    /// and the recorded reason stays the first one.
    pub fn trip(&self, reason: TripReason) -> TripOutcome {
        self.trip_at(reason, Instant::now())
    }

    /// Trips the switch as of `now`. See [`trip`](Self::trip).
    pub fn trip_at(&self, reason: TripReason, now: Instant) -> TripOutcome {
        if self.is_tripped() {
            return TripOutcome::AlreadyTripped;
        }
        let report = self.report_at(reason, now);
        let won = self.inner.trip.set(Trip { report, at: now }).is_ok();
        // Every caller sets the flag before returning, so once any `trip` returns the
        // switch reads as tripped everywhere; the report is always in place first.
        self.inner.tripped.store(true, Ordering::Release);
        if !won {
            return TripOutcome::AlreadyTripped;
        }
        if let Some(trip) = self.inner.trip.get() {
            let report = &trip.report;
            tracing::error!(
                reason = %report.reason,
                after_ms = u64::try_from(report.after.as_millis()).unwrap_or(u64::MAX),
                in_flight = ?report.in_flight,
                tokens_committed = ?report.process.as_ref().map(|p| p.tokens.committed),
                cost_committed_micros = ?report.process.as_ref().map(|p| p.cost.committed),
                steps_committed = ?report.process.as_ref().map(|p| p.steps.committed),
                "kill switch tripped"
            );
            let pending = {
                let mut callbacks = lock(&self.inner.callbacks);
                callbacks.fired = true;
                std::mem::take(&mut callbacks.pending)
            };
            for callback in &pending {
                run_callback(callback.as_ref(), report);
            }
        }
        TripOutcome::Tripped
    }

    /// Registers a callback to run once when the switch trips, on the tripping thread
    /// (keep it short: signal a shutdown, do not perform it). If the switch has already
    /// tripped, it runs now, on this thread. A panicking callback is caught and logged, and
    /// the other callbacks still run.
    pub fn on_trip<F>(&self, callback: F)
    where
        F: Fn(&TripReport) + Send + Sync + 'static,
    {
        {
            let mut callbacks = lock(&self.inner.callbacks);
            if !callbacks.fired {
                callbacks.pending.push(Box::new(callback));
                return;
            }
        }
        if let Some(trip) = self.inner.trip.get() {
            run_callback(&callback, &trip.report);
        }
    }

    /// The trip's report, once tripped.
    pub fn report(&self) -> Option<&TripReport> {
        self.inner.trip.get().map(|t| &t.report)
    }

    /// Why it tripped, once tripped.
    pub fn reason(&self) -> Option<&TripReason> {
        self.report().map(|r| &r.reason)
    }

    /// When it tripped, once tripped.
    pub fn tripped_at(&self) -> Option<Instant> {
        self.inner.trip.get().map(|t| t.at)
    }

    /// When the switch started (the deadline counts from here).
    pub fn started_at(&self) -> Instant {
        self.inner.started_at
    }

    /// The time allowed from the start, if there is a deadline.
    pub fn time_limit(&self) -> Option<Duration> {
        self.inner.time_limit
    }

    /// The wall-clock deadline, if any: a timer elsewhere can sleep until it and then call
    /// [`check_deadline`](Self::check_deadline).
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// Trips the switch if the deadline has passed (`now ≥ deadline`).
    ///
    /// `None` if there is no deadline or it has not passed; otherwise the trip's outcome.
    pub fn check_deadline(&self, now: Instant) -> Option<TripOutcome> {
        let deadline = self.inner.deadline?;
        if now < deadline {
            return None;
        }
        let time_limit = self.inner.time_limit.unwrap_or_default();
        Some(self.trip_at(TripReason::DeadlinePassed { time_limit }, now))
    }

    /// Records one call's outcome (of any agent) in the error-rate window, and trips the
    /// switch if the window is now over its threshold.
    ///
    /// `None` if there is no error-rate trigger or the window is under its threshold;
    /// otherwise the trip's outcome.
    pub fn record_outcome(&self, success: bool, now: Instant) -> Option<TripOutcome> {
        self.record_outcome_with(success, || now)
    }

    /// Whether outcomes are counted ([`record_outcome`](Self::record_outcome) does nothing
    /// without an error-rate trigger): a caller need not judge or time them otherwise.
    #[inline]
    pub fn counts_outcomes(&self) -> bool {
        self.inner.window.is_some()
    }

    /// [`record_outcome`](Self::record_outcome), reading the clock (`now`) only if the outcome
    /// trips the switch.
    pub fn record_outcome_with(
        &self,
        success: bool,
        now: impl FnOnce() -> Instant,
    ) -> Option<TripOutcome> {
        let window = self.inner.window.as_ref()?;
        let over = {
            let mut window = lock(window);
            window.record(success).then(|| window.status())
        }?;
        Some(self.trip_at(
            TripReason::ErrorRate {
                failures: over.failures,
                calls: over.calls,
                threshold_ppm: over.threshold_ppm,
            },
            now(),
        ))
    }

    /// The error-rate window's figures, if there is an error-rate trigger.
    pub fn error_rate(&self) -> Option<ErrorRateStatus> {
        self.inner.window.as_ref().map(|w| lock(w).status())
    }

    /// What the agent layer should do with in-flight calls on a trip.
    pub fn in_flight_policy(&self) -> InFlightPolicy {
        self.inner.in_flight
    }

    fn report_at(&self, reason: TripReason, now: Instant) -> TripReport {
        TripReport {
            reason,
            after: now.saturating_duration_since(self.inner.started_at),
            process: self.inner.ledger.as_ref().map(Ledger::status),
            error_rate: self.error_rate(),
            in_flight: self.inner.in_flight,
        }
    }
}

impl fmt::Debug for KillSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KillSwitch")
            .field("tripped", &self.is_tripped())
            .field("reason", &self.reason())
            .field("deadline", &self.inner.deadline)
            .field("in_flight", &self.inner.in_flight)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let reached = TripReason::LimitReached {
            dimension: Dimension::Steps,
            committed: 40,
            limit: 40,
        };
        assert_eq!(
            reached.to_string(),
            "process steps limit reached: 40 of 40 committed"
        );
        let hard = TripReason::HardTierReached {
            dimension: Dimension::Tokens,
            committed: 135,
            threshold: 135,
            limit: 150,
            fraction_ppm: 900_000,
        };
        assert_eq!(
            hard.to_string(),
            "process tokens hard tier (90%) reached: 135 of 150 committed"
        );
        let rate = TripReason::ErrorRate {
            failures: 6,
            calls: 10,
            threshold_ppm: 500_000,
        };
        assert_eq!(
            rate.to_string(),
            "error rate: 6 of the last 10 calls failed (threshold 50%)"
        );
    }

    #[test]
    fn in_flight_policy_defaults_to_a_five_second_grace() {
        assert_eq!(
            InFlightPolicy::default().grace(),
            Some(Duration::from_secs(5))
        );
        assert_eq!(InFlightPolicy::Finish.grace(), None);
        assert_eq!(InFlightPolicy::CancelNow.grace(), Some(Duration::ZERO));
    }

    #[test]
    fn trip_reason_serializes_with_a_kind_tag() {
        let json = serde_json::to_value(TripReason::manual("stop")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "manual", "reason": "stop"})
        );
    }
}
