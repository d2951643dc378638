//! Sagas: a sequence of steps, each with a compensating action, undone in reverse order when a
//! later step fails for good.
//!
//! A [`Saga`] is a pure state machine; the agent layer runs the steps and the compensations
//! and reports back. While the saga runs, each completed step is pushed with its compensation
//! (any serializable value: what to undo and how to find it, such as a booking number). When a
//! step fails for good, [`Saga::fail`] turns it around: [`Saga::compensations`] lists the
//! compensations still to run, last step first, and [`Saga::next_compensation`] is the one to
//! run now. A compensation that succeeds is recorded as compensated; one that fails is retried
//! by its own [`RetryPolicy`] (the step's, or the saga's default), and when that policy gives
//! up the compensation becomes a [`DeadLetter`] holding every attempt's error. None is ever
//! skipped silently: the [`SagaOutcome`] lists each step as compensated or dead-lettered.
//!
//! The state (the stack, the attempts of the compensation in progress, the outcome so far) is
//! serializable, so the agent layer can journal it after each report and, after a crash,
//! restore it and run exactly the compensations that remain, in the same reverse order. A
//! compensation that was running when the process died is run again after the restore, so
//! compensations must be idempotent (as Temporal, Restate and DBOS also require).
//!
//! Restate warns that killing an invocation skips its compensations; here a kill switch
//! tripping mid-compensation is reported as a failure of class
//! [`Cancelled`](crate::ErrorClass::Cancelled), which the policy does not retry, so the
//! compensation becomes a dead letter (visible, redrivable) rather than vanishing.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::{Attempt, ErrorClass, GiveUpReason, RetryDecision, RetryPolicy};

/// A completed step and how to undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step<C> {
    name: String,
    compensation: C,
    policy: Option<RetryPolicy>,
}

impl<C> Step<C> {
    /// The step `name`, undone by `compensation`, retried with the saga's default policy.
    pub fn new(name: impl Into<String>, compensation: C) -> Self {
        Self {
            name: name.into(),
            compensation,
            policy: None,
        }
    }

    /// Retries this step's compensation with `policy` instead of the saga's default.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What undoes the step.
    pub fn compensation(&self) -> &C {
        &self.compensation
    }
}

/// A compensation that failed for good, with every attempt's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter<C> {
    /// The step that could not be undone, and its compensation.
    pub step: Step<C>,
    /// Each failed attempt's error message, in order.
    pub errors: Vec<String>,
    /// Why its policy gave up.
    pub reason: GiveUpReason,
}

/// How a finished saga ended. Every completed step appears once, in `compensated` or in
/// `dead_lettered`, in the order they were compensated (last step first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaOutcome<C> {
    /// Whether the saga's steps all completed (`true`) or it failed and was compensated.
    pub completed: bool,
    /// The steps undone, by name, last step first.
    pub compensated: Vec<String>,
    /// The steps whose compensation failed for good.
    pub dead_lettered: Vec<DeadLetter<C>>,
}

/// A compensation attempt's failure, as reported to [`Saga::compensation_failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The failure's class.
    pub class: ErrorClass,
    /// The error's message, kept in the dead letter.
    pub message: String,
    /// Time since this compensation's first attempt started.
    pub elapsed: Duration,
    /// Time left before a deadline, if the compensation has one.
    pub remaining_deadline: Option<Duration>,
}

impl Failure {
    /// A failure of `class` with `message`, no time spent, no deadline.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            elapsed: Duration::ZERO,
            remaining_deadline: None,
        }
    }

    /// Sets the time since this compensation's first attempt started.
    pub fn with_elapsed(mut self, elapsed: Duration) -> Self {
        self.elapsed = elapsed;
        self
    }

    /// Sets the time left before the compensation's deadline.
    pub fn with_remaining_deadline(mut self, remaining: Option<Duration>) -> Self {
        self.remaining_deadline = remaining;
        self
    }
}

/// What to do after a compensation attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompensationNext {
    /// Wait this long, then run the same compensation again.
    RetryAfter(Duration),
    /// The compensation is now a dead letter; go on with the next one.
    DeadLettered(GiveUpReason),
}

/// A report that does not fit the saga's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SagaError {
    /// A step was reported, or the saga failed or finished, after it had already failed or
    /// finished.
    #[error("the saga is no longer running (it failed or finished)")]
    NotRunning,
    /// A compensation was reported while the saga was not compensating.
    #[error("the saga is not compensating")]
    NotCompensating,
    /// A compensation was reported but none is left.
    #[error("no compensation is left to report on")]
    NothingToCompensate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    Running,
    Compensating,
    /// Every step completed.
    Completed,
    /// A step failed and every compensation was reported.
    Compensated,
}

/// The compensation being tried: attempts so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Trying {
    errors: Vec<String>,
    previous_delay: Option<Duration>,
}

/// A saga's state; see the [module documentation](self).
///
/// # Example
///
/// ```
/// use rand::{rngs::StdRng, SeedableRng};
/// use overseer_retry::{CompensationNext, ErrorClass, Failure, RetryPolicy, Saga, Step};
///
/// let mut saga = Saga::new(RetryPolicy::never());
/// saga.push(Step::new("book flight", "cancel flight AF123"))?;
/// saga.push(Step::new("book hotel", "cancel hotel H-77"))?;
/// // Booking the car failed for good: undo the rest, last first.
/// saga.fail()?;
/// let plan: Vec<_> = saga.compensations().map(|s| *s.compensation()).collect();
/// assert_eq!(plan, ["cancel hotel H-77", "cancel flight AF123"]);
///
/// saga.compensation_succeeded()?;
/// let mut rng = StdRng::seed_from_u64(0);
/// let next = saga.compensation_failed(Failure::new(ErrorClass::Permanent, "flight already flown"), &mut rng)?;
/// assert!(matches!(next, CompensationNext::DeadLettered(_)));
///
/// let outcome = saga.outcome().unwrap();
/// assert_eq!(outcome.compensated, ["book hotel"]);
/// assert_eq!(outcome.dead_lettered[0].step.name(), "book flight");
/// # Ok::<(), overseer_retry::SagaError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saga<C> {
    policy: RetryPolicy,
    phase: Phase,
    /// Completed steps not yet compensated; the last is undone first.
    stack: Vec<Step<C>>,
    trying: Trying,
    compensated: Vec<String>,
    dead_lettered: Vec<DeadLetter<C>>,
}

impl<C> Saga<C> {
    /// A running saga with no step yet; compensations are retried by `policy` unless their step
    /// has its own.
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            phase: Phase::Running,
            stack: Vec::new(),
            trying: Trying::default(),
            compensated: Vec::new(),
            dead_lettered: Vec::new(),
        }
    }

    /// Records a completed step.
    ///
    /// # Errors
    ///
    /// [`SagaError::NotRunning`] once the saga has failed or finished.
    pub fn push(&mut self, step: Step<C>) -> Result<(), SagaError> {
        if self.phase != Phase::Running {
            return Err(SagaError::NotRunning);
        }
        self.stack.push(step);
        Ok(())
    }

    /// A step failed for good: start compensating the completed steps, last first.
    ///
    /// # Errors
    ///
    /// [`SagaError::NotRunning`] if the saga already failed or finished.
    pub fn fail(&mut self) -> Result<(), SagaError> {
        if self.phase != Phase::Running {
            return Err(SagaError::NotRunning);
        }
        self.phase = if self.stack.is_empty() {
            Phase::Compensated
        } else {
            Phase::Compensating
        };
        Ok(())
    }

    /// Every step completed: nothing is compensated.
    ///
    /// # Errors
    ///
    /// [`SagaError::NotRunning`] if the saga already failed or finished.
    pub fn finish(&mut self) -> Result<(), SagaError> {
        if self.phase != Phase::Running {
            return Err(SagaError::NotRunning);
        }
        self.phase = Phase::Completed;
        Ok(())
    }

    /// The compensations still to run, in the order to run them (last completed step first).
    /// Empty unless the saga is compensating.
    pub fn compensations(&self) -> impl Iterator<Item = &Step<C>> + '_ {
        let pending = match self.phase {
            Phase::Compensating => self.stack.as_slice(),
            _ => &[],
        };
        pending.iter().rev()
    }

    /// The compensation to run now, if the saga is compensating.
    pub fn next_compensation(&self) -> Option<&Step<C>> {
        self.compensations().next()
    }

    /// Failed attempts of the compensation to run now.
    pub fn attempts_so_far(&self) -> u32 {
        self.trying.errors.len() as u32
    }

    /// Whether the saga is compensating.
    pub fn is_compensating(&self) -> bool {
        self.phase == Phase::Compensating
    }

    /// The current compensation succeeded.
    ///
    /// # Errors
    ///
    /// [`SagaError::NotCompensating`] unless the saga is compensating.
    pub fn compensation_succeeded(&mut self) -> Result<(), SagaError> {
        let step = self.pop_current()?;
        self.compensated.push(step.name);
        Ok(())
    }

    /// The current compensation failed: its policy says whether to run it again (after a delay)
    /// or to give it up as a dead letter.
    ///
    /// # Errors
    ///
    /// [`SagaError::NotCompensating`] unless the saga is compensating.
    pub fn compensation_failed<R: Rng + ?Sized>(
        &mut self,
        failure: Failure,
        rng: &mut R,
    ) -> Result<CompensationNext, SagaError> {
        let step = self.next_compensation().ok_or(SagaError::NotCompensating)?;
        let policy = step.policy.as_ref().unwrap_or(&self.policy);
        let attempt = Attempt::new(self.attempts_so_far() + 1, failure.class)
            .with_elapsed(failure.elapsed)
            .with_remaining_deadline(failure.remaining_deadline)
            .with_previous_delay(self.trying.previous_delay);
        let decision = policy.decide(&attempt, rng);
        self.trying.errors.push(failure.message);
        match decision {
            RetryDecision::RetryAfter(delay) => {
                self.trying.previous_delay = Some(delay);
                Ok(CompensationNext::RetryAfter(delay))
            }
            RetryDecision::GiveUp(reason) => {
                let errors = std::mem::take(&mut self.trying.errors);
                let step = self.pop_current()?;
                self.dead_lettered.push(DeadLetter {
                    step,
                    errors,
                    reason,
                });
                Ok(CompensationNext::DeadLettered(reason))
            }
        }
    }

    /// How the saga ended, once it has: all steps completed, or every compensation reported
    /// as compensated or dead-lettered.
    pub fn outcome(&self) -> Option<SagaOutcome<C>>
    where
        C: Clone,
    {
        let completed = match self.phase {
            Phase::Running | Phase::Compensating => return None,
            Phase::Completed => true,
            Phase::Compensated => false,
        };
        Some(SagaOutcome {
            completed,
            compensated: self.compensated.clone(),
            dead_lettered: self.dead_lettered.clone(),
        })
    }

    fn pop_current(&mut self) -> Result<Step<C>, SagaError> {
        if self.phase != Phase::Compensating {
            return Err(SagaError::NotCompensating);
        }
        let step = self.stack.pop().ok_or(SagaError::NothingToCompensate)?;
        self.trying = Trying::default();
        if self.stack.is_empty() {
            self.phase = Phase::Compensated;
        }
        Ok(step)
    }
}
