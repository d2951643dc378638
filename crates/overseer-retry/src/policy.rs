//! How many times to try, how long to wait between tries, and when to stop.
//!
//! [`RetryPolicy::decide`] is a pure function: the attempt that just failed (its number, its
//! [`ErrorClass`], the time spent so far, the time left before the ask's deadline, the last
//! delay) and a caller-provided random generator in, a [`RetryDecision`] out. It sleeps
//! nothing; the agent layer sleeps on the tokio clock, so a paused clock drives it in tests.
//!
//! # Defaults and where they come from
//!
//! | setting | Overseer default | LangGraph `RetryPolicy` | OpenAI Agents SDK | backon `ExponentialBuilder` |
//! |---|---|---|---|---|
//! | attempts (incl. the first) | 3 | 3 | 1 (retries are opt-in, `max_retries`) | 4 (3 retries) |
//! | first delay | 0.5 s | 0.5 s | 0.25 s | 1 s |
//! | factor | ×2 | ×2 | ×2 | ×2 |
//! | cap | 128 s | 128 s | 2 s | 60 s |
//! | jitter | full: `U(0, delay)` | `+ U(0, 1 s)` | `× U(0.875, 1.125)` | off; on: `+ U(0, delay)` |
//! | total time bound | none (the ask's deadline) | none | none | none |
//! | Retry-After | honoured, may exceed the cap | not read | honoured, replaces the backoff | via `adjust` |
//!
//! Sources: LangGraph `langgraph/types.py` (`RetryPolicy`, a NamedTuple: `initial_interval=0.5,
//! backoff_factor=2.0, max_interval=128.0, max_attempts=3, jitter=True`) and
//! its Pregel retry loop (`run_with_retry`: the jitter adds `random.uniform(0, 1)` seconds); OpenAI Agents
//! SDK `src/agents/run_internal/model_retry.py` (`DEFAULT_INITIAL_DELAY_SECONDS = 0.25`,
//! `DEFAULT_MAX_DELAY_SECONDS = 2.0`, `DEFAULT_BACKOFF_MULTIPLIER = 2.0`, jitter
//! `base * (0.875 + random() * 0.25)`, a retry-after replacing the computed delay) and
//! `src/agents/retry.py` (`ModelRetrySettings.max_retries`, unset by default); backon 1.6.0
//! `src/backoff/exponential.rs`.
//!
//! The attempt count, first delay, factor and cap are LangGraph's, so a graph moved to
//! Overseer behaves alike. The jitter is not: LangGraph adds up to one second on top of the
//! delay, which is large against 0.5 s and negligible against 64 s; Overseer uses AWS's "full
//! jitter" (`U(0, min(cap, base·factor^n))`, from the AWS Architecture Blog's "Exponential
//! Backoff And Jitter"), which spreads synchronized clients best and never waits longer than
//! the un-jittered delay. [`Jitter::Decorrelated`] is the same article's
//! `min(cap, U(base, 3·previous))`.
//!
//! # Why not `backon`
//!
//! backon (maintained, Apache-2.0, MSRV 1.85) was read for this crate (1.6.0). It does not fit
//! the rule as it stands: its jitter draws from its own `fastrand` generator (only a `u64`
//! seed can be given, not the caller's RNG, so one seeded `StdRng` cannot drive a whole test);
//! its only jitter is additive `U(0, delay)` (so a jittered delay is up to twice the cap, and
//! there is neither full nor decorrelated jitter); a backoff is a stateful iterator (attempt
//! and previous delay live inside it, so the state cannot be journaled and resumed, and the
//! decision is not a function of the attempt); it knows neither error classes nor the ask's
//! deadline, and its `total_delay` counts sleeps only, not the attempts' own time. Its
//! `Retryable` driver would also own the sleep. The rule here is about sixty lines of
//! arithmetic; the agent layer does the sleeping.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ErrorClass;

/// How the delay before a retry is randomized, so that many callers failing together do not
/// retry together.
///
/// With `d = min(cap, base · factor^(n-1))` for the `n`-th failed attempt:
///
/// | jitter | delay |
/// |---|---|
/// | [`None`](Self::None) | `d` |
/// | [`Full`](Self::Full) | uniform in `[0, d]` |
/// | [`Decorrelated`](Self::Decorrelated) | `min(cap, uniform in [base, 3 · previous])`, `previous` = the last delay, or `base` before the first retry (the factor is not used) |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: exactly the exponential delay.
    None,
    /// AWS "full jitter": uniform between zero and the exponential delay.
    #[default]
    Full,
    /// AWS "decorrelated jitter": uniform between the base and three times the previous delay,
    /// capped.
    Decorrelated,
}

/// A retry policy's settings are inconsistent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// `max_attempts` was zero: there must be at least the first attempt.
    #[error("max_attempts must be at least 1 (the first attempt counts)")]
    ZeroAttempts,
    /// The growth factor was below 1 or not a finite number.
    #[error("factor must be a finite number of at least 1.0, got {0}")]
    BadFactor(f64),
    /// The first delay was longer than the cap.
    #[error("base_delay ({base:?}) is longer than max_delay ({cap:?})")]
    BaseAboveCap {
        /// The first delay.
        base: Duration,
        /// The cap.
        cap: Duration,
    },
    /// Decorrelated jitter grows from the base delay, so a zero base would never grow.
    #[error("decorrelated jitter needs a base_delay above zero")]
    DecorrelatedZeroBase,
    /// A total time bound of zero would forbid every retry; use `max_attempts(1)` for that.
    #[error("max_elapsed must be above zero (use max_attempts(1) for no retries)")]
    ZeroMaxElapsed,
    /// An attempt timeout of zero would time every attempt out at once.
    #[error("attempt_timeout must be above zero")]
    ZeroAttemptTimeout,
}

/// The attempt that just failed, as [`RetryPolicy::decide`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attempt {
    /// Which attempt failed, from 1 (the first call).
    pub number: u32,
    /// The failure's class.
    pub class: ErrorClass,
    /// Time since the first attempt started, attempts and waits included.
    pub elapsed: Duration,
    /// Time left before the ask's deadline, if it has one.
    pub remaining_deadline: Option<Duration>,
    /// The delay waited before this attempt (`None` for the first), for decorrelated jitter.
    pub previous_delay: Option<Duration>,
}

impl Attempt {
    /// The `number`-th attempt failed with `class`; no time spent, no deadline, no previous
    /// delay (set them with the `with_` methods).
    pub fn new(number: u32, class: ErrorClass) -> Self {
        Self {
            number,
            class,
            elapsed: Duration::ZERO,
            remaining_deadline: None,
            previous_delay: None,
        }
    }

    /// Sets the time spent since the first attempt started.
    pub fn with_elapsed(mut self, elapsed: Duration) -> Self {
        self.elapsed = elapsed;
        self
    }

    /// Sets the time left before the ask's deadline.
    pub fn with_remaining_deadline(mut self, remaining: Option<Duration>) -> Self {
        self.remaining_deadline = remaining;
        self
    }

    /// Sets the delay waited before this attempt.
    pub fn with_previous_delay(mut self, previous: Option<Duration>) -> Self {
        self.previous_delay = previous;
        self
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Do not try again with this policy.
    GiveUp(GiveUpReason),
}

/// Why a policy gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// The request itself is wrong (or its output failed a check): the same request would fail
    /// the same way. Covers [`ErrorClass::Permanent`] and [`ErrorClass::InvalidOutput`].
    Permanent,
    /// The step's effect may have happened.
    ReplayUnsafe,
    /// The work was stopped from outside.
    Cancelled,
    /// The spend budget refused the call.
    BudgetExhausted,
    /// `max_attempts` attempts were made.
    AttemptsExhausted,
    /// The next delay would end at or past the ask's deadline.
    DeadlineTooClose,
    /// The next delay would end past the policy's `max_elapsed`.
    ElapsedExhausted,
}

/// Attempts, backoff and time bounds for retrying one step. See the [module
/// documentation](self) for the defaults and their sources.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use rand::{rngs::StdRng, SeedableRng};
/// use overseer_retry::{Attempt, ErrorClass, GiveUpReason, Jitter, RetryDecision, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(4)
///     .base_delay(Duration::from_millis(100))
///     .jitter(Jitter::None)
///     .build()?;
/// let mut rng = StdRng::seed_from_u64(7);
///
/// let first = Attempt::new(1, ErrorClass::Transient);
/// assert_eq!(policy.decide(&first, &mut rng), RetryDecision::RetryAfter(Duration::from_millis(100)));
///
/// let third = Attempt::new(3, ErrorClass::Transient);
/// assert_eq!(policy.decide(&third, &mut rng), RetryDecision::RetryAfter(Duration::from_millis(400)));
///
/// // A deadline 300 ms away leaves no room for a 400 ms wait.
/// let late = third.with_remaining_deadline(Some(Duration::from_millis(300)));
/// assert_eq!(policy.decide(&late, &mut rng), RetryDecision::GiveUp(GiveUpReason::DeadlineTooClose));
///
/// let bad = Attempt::new(1, ErrorClass::Permanent);
/// assert_eq!(policy.decide(&bad, &mut rng), RetryDecision::GiveUp(GiveUpReason::Permanent));
/// # Ok::<(), overseer_retry::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RetryPolicyBuilder", into = "RetryPolicyBuilder")]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: Jitter,
    max_elapsed: Option<Duration>,
    attempt_timeout: Option<Duration>,
}

// `factor` is an `f64`, but `build` only admits finite values, so equality is reflexive.
impl Eq for RetryPolicy {}

impl Default for RetryPolicy {
    /// LangGraph's numbers with full jitter: 3 attempts, 0.5 s, ×2, cap 128 s, no total bound.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            factor: 2.0,
            max_delay: Duration::from_secs(128),
            jitter: Jitter::Full,
            max_elapsed: None,
            attempt_timeout: None,
        }
    }
}

impl RetryPolicy {
    /// A builder starting from the [defaults](Self::default).
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder::default()
    }

    /// A policy that never retries: one attempt.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay before the first retry (before jitter).
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The growth factor between retries.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The cap on a backoff delay (a provider's retry-after may exceed it).
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The jitter.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The bound on the time from the first attempt's start to the last retry's start.
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.max_elapsed
    }

    /// The most one attempt may take (within the ask's deadline, which bounds them all), or
    /// `None`: each attempt may take what is left of the deadline. With it, a hung attempt
    /// times out on its own and is retried, instead of taking the whole deadline.
    pub fn attempt_timeout(&self) -> Option<Duration> {
        self.attempt_timeout
    }

    /// Whether to retry after `attempt` failed, and after how long. Pure: the same attempt and
    /// the same generator state give the same answer; `rng` is drawn from only when a jittered
    /// delay is computed.
    ///
    /// The rules, in order:
    /// 1. only [`Transient`](ErrorClass::Transient) and
    ///    [`RateLimited`](ErrorClass::RateLimited) are retried; every other class gives up
    ///    with its reason;
    /// 2. after `max_attempts` attempts, give up;
    /// 3. the delay is the jittered backoff (see [`Jitter`]), at most `max_delay`;
    /// 4. a rate limit's `retry_after` is a floor: the delay is at least that long, even past
    ///    `max_delay` (the provider said so; waiting less only earns another 429);
    /// 5. if `elapsed + delay` would pass `max_elapsed`, give up (`ElapsedExhausted`);
    /// 6. if the delay would end at or past the deadline (`delay >= remaining_deadline`), give
    ///    up (`DeadlineTooClose`): a retry that starts with no time left cannot succeed, and no
    ///    caller waits past its deadline.
    pub fn decide<R: Rng + ?Sized>(&self, attempt: &Attempt, rng: &mut R) -> RetryDecision {
        if let Some(reason) = class_refusal(&attempt.class) {
            return RetryDecision::GiveUp(reason);
        }
        if attempt.number >= self.max_attempts {
            return RetryDecision::GiveUp(GiveUpReason::AttemptsExhausted);
        }
        let mut delay = self.backoff(attempt.number, attempt.previous_delay, rng);
        if let ErrorClass::RateLimited {
            retry_after: Some(floor),
        } = attempt.class
        {
            delay = delay.max(floor);
        }
        match self.time_refusal(attempt, delay) {
            Some(reason) => RetryDecision::GiveUp(reason),
            None => RetryDecision::RetryAfter(delay),
        }
    }

    /// The un-jittered exponential delay after the `number`-th failed attempt (from 1):
    /// `min(max_delay, base_delay · factor^(number-1))`.
    pub fn exponential_delay(&self, number: u32) -> Duration {
        if self.base_delay.is_zero() {
            return Duration::ZERO;
        }
        let exponent = number.saturating_sub(1);
        let cap = nanos(self.max_delay);
        let grown =
            nanos(self.base_delay) as f64 * self.factor.powi(exponent.min(i32::MAX as u32) as i32);
        if grown >= cap as f64 {
            self.max_delay
        } else {
            Duration::from_nanos(grown as u64)
        }
    }

    fn backoff<R: Rng + ?Sized>(
        &self,
        number: u32,
        previous: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        match self.jitter {
            Jitter::None => self.exponential_delay(number),
            Jitter::Full => {
                let top = nanos(self.exponential_delay(number));
                Duration::from_nanos(rng.random_range(0..=top))
            }
            Jitter::Decorrelated => {
                let low = nanos(self.base_delay);
                let previous = previous.map_or(low, nanos).max(low);
                let high = previous.saturating_mul(3);
                let drawn = rng.random_range(low..=high);
                Duration::from_nanos(drawn.min(nanos(self.max_delay)))
            }
        }
    }

    fn time_refusal(&self, attempt: &Attempt, delay: Duration) -> Option<GiveUpReason> {
        let resumes_at = attempt.elapsed.saturating_add(delay);
        if self.max_elapsed.is_some_and(|bound| resumes_at > bound) {
            return Some(GiveUpReason::ElapsedExhausted);
        }
        if attempt
            .remaining_deadline
            .is_some_and(|remaining| delay >= remaining)
        {
            return Some(GiveUpReason::DeadlineTooClose);
        }
        None
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            return Err(PolicyError::ZeroAttempts);
        }
        if !self.factor.is_finite() || self.factor < 1.0 {
            return Err(PolicyError::BadFactor(self.factor));
        }
        if self.base_delay > self.max_delay {
            return Err(PolicyError::BaseAboveCap {
                base: self.base_delay,
                cap: self.max_delay,
            });
        }
        if self.jitter == Jitter::Decorrelated && self.base_delay.is_zero() {
            return Err(PolicyError::DecorrelatedZeroBase);
        }
        if self.max_elapsed.is_some_and(|bound| bound.is_zero()) {
            return Err(PolicyError::ZeroMaxElapsed);
        }
        if self.attempt_timeout.is_some_and(|bound| bound.is_zero()) {
            return Err(PolicyError::ZeroAttemptTimeout);
        }
        Ok(())
    }
}

/// The reason a class is never retried by a policy, or `None` when it may be.
fn class_refusal(class: &ErrorClass) -> Option<GiveUpReason> {
    match class {
        ErrorClass::Transient | ErrorClass::RateLimited { .. } => None,
        ErrorClass::InvalidOutput | ErrorClass::Permanent => Some(GiveUpReason::Permanent),
        ErrorClass::ReplayUnsafe => Some(GiveUpReason::ReplayUnsafe),
        ErrorClass::Cancelled => Some(GiveUpReason::Cancelled),
        ErrorClass::BudgetExhausted => Some(GiveUpReason::BudgetExhausted),
    }
}

/// A duration in nanoseconds, saturating at `u64::MAX` (584 years).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Builds a [`RetryPolicy`], checking it on [`build`](Self::build). Starts from the
/// [defaults](RetryPolicy::default). Also the policy's serialized form.
///
/// ```
/// use std::time::Duration;
/// use overseer_retry::{Jitter, PolicyError, RetryPolicy};
///
/// let policy = RetryPolicy::builder()
///     .max_attempts(5)
///     .base_delay(Duration::from_millis(250))
///     .factor(3.0)
///     .max_delay(Duration::from_secs(10))
///     .jitter(Jitter::Decorrelated)
///     .max_elapsed(Some(Duration::from_secs(30)))
///     .build()?;
/// assert_eq!(policy.max_attempts(), 5);
///
/// let wrong = RetryPolicy::builder().factor(0.5).build();
/// assert_eq!(wrong, Err(PolicyError::BadFactor(0.5)));
/// # Ok::<(), PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicyBuilder {
    max_attempts: u32,
    base_delay: Duration,
    factor: f64,
    max_delay: Duration,
    jitter: Jitter,
    max_elapsed: Option<Duration>,
    attempt_timeout: Option<Duration>,
}

impl Default for RetryPolicyBuilder {
    fn default() -> Self {
        RetryPolicy::default().into()
    }
}

impl From<RetryPolicy> for RetryPolicyBuilder {
    fn from(p: RetryPolicy) -> Self {
        Self {
            max_attempts: p.max_attempts,
            base_delay: p.base_delay,
            factor: p.factor,
            max_delay: p.max_delay,
            jitter: p.jitter,
            max_elapsed: p.max_elapsed,
            attempt_timeout: p.attempt_timeout,
        }
    }
}

impl TryFrom<RetryPolicyBuilder> for RetryPolicy {
    type Error = PolicyError;

    fn try_from(b: RetryPolicyBuilder) -> Result<Self, PolicyError> {
        b.build()
    }
}

impl RetryPolicyBuilder {
    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The delay before the first retry, before jitter.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The growth factor between retries (at least 1.0).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// The cap on a backoff delay.
    pub fn max_delay(mut self, cap: Duration) -> Self {
        self.max_delay = cap;
        self
    }

    /// The jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The bound on the time from the first attempt's start to the last retry's start, or
    /// `None` for no bound but the ask's deadline.
    pub fn max_elapsed(mut self, bound: Option<Duration>) -> Self {
        self.max_elapsed = bound;
        self
    }

    /// The most one attempt may take, or `None` (the default) for what is left of the ask's
    /// deadline. An attempt that takes longer ends with a timeout, a transient failure that
    /// is retried; its handler, still running, is treated as hung (its agent stopped and
    /// restarted by its supervisor), as at any ask's deadline.
    pub fn attempt_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The policy, checked.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] for zero attempts, a factor below 1 (or not finite), a base delay
    /// above the cap, decorrelated jitter with a zero base, or a zero `max_elapsed` or
    /// `attempt_timeout`.
    pub fn build(self) -> Result<RetryPolicy, PolicyError> {
        let policy = RetryPolicy {
            max_attempts: self.max_attempts,
            base_delay: self.base_delay,
            factor: self.factor,
            max_delay: self.max_delay,
            jitter: self.jitter,
            max_elapsed: self.max_elapsed,
            attempt_timeout: self.attempt_timeout,
        };
        policy.validate()?;
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn exponential_delay_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let delays: Vec<_> = (1..=10).map(|n| policy.exponential_delay(n)).collect();
        let expected: Vec<_> = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 128.0]
            .into_iter()
            .map(secs)
            .collect();
        assert_eq!(delays, expected);
        assert_eq!(policy.exponential_delay(u32::MAX), Duration::from_secs(128));
    }

    #[test]
    fn invalid_settings_are_typed_errors() {
        let b = RetryPolicy::builder;
        assert_eq!(b().max_attempts(0).build(), Err(PolicyError::ZeroAttempts));
        assert_eq!(b().factor(0.9).build(), Err(PolicyError::BadFactor(0.9)));
        assert!(matches!(
            b().factor(f64::NAN).build(),
            Err(PolicyError::BadFactor(_))
        ));
        assert_eq!(
            b().base_delay(secs(3.0)).max_delay(secs(2.0)).build(),
            Err(PolicyError::BaseAboveCap {
                base: secs(3.0),
                cap: secs(2.0)
            })
        );
        assert_eq!(
            b().base_delay(Duration::ZERO)
                .jitter(Jitter::Decorrelated)
                .build(),
            Err(PolicyError::DecorrelatedZeroBase)
        );
        assert_eq!(
            b().max_elapsed(Some(Duration::ZERO)).build(),
            Err(PolicyError::ZeroMaxElapsed)
        );
        assert!(b().base_delay(Duration::ZERO).build().is_ok());
    }

    #[test]
    fn a_policy_round_trips_through_serde_and_is_checked_on_the_way_in() {
        let policy = RetryPolicy::builder().max_attempts(7).build().unwrap();
        let text = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<RetryPolicy>(&text).unwrap(), policy);
        let partial: RetryPolicy = serde_json::from_str(r#"{"max_attempts": 2}"#).unwrap();
        assert_eq!(partial.max_attempts(), 2);
        assert_eq!(partial.base_delay(), secs(0.5));
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"max_attempts": 0}"#).is_err());
    }

    #[test]
    fn rng_is_untouched_without_jitter() {
        let policy = RetryPolicy::builder().jitter(Jitter::None).build().unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let mut fresh = StdRng::seed_from_u64(1);
        policy.decide(&Attempt::new(1, ErrorClass::Transient), &mut rng);
        assert_eq!(rng.random::<u64>(), fresh.random::<u64>());
    }
}
