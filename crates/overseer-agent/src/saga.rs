//! Sagas: steps, each with a compensating action, undone in reverse order when a later step
//! fails for good; with a journal, a durable run that resumes its compensation after a crash.
//!
//! The decisions are [`overseer_retry::Saga`]'s (which compensation runs next, whether a failed
//! one is retried, when it is a dead letter); this module runs the actions on the tokio clock,
//! journals each step and each compensation as a step of a durable run, and turns the
//! compensations that fail for good into [`DeadLetters`](crate::DeadLetters).
//!
//! Why a durable run and not a journal entry of the saga's own: a durable run already has what
//! a crash in the middle of a saga needs. Each action is a keyed step, so its intent is
//! journaled before it runs and an action whose intent has no result (the process died during
//! it) runs again with the **same idempotency key**; a finished saga asked again returns its
//! recorded outcome; an incarnation that outlived its replacement is fenced off by its epoch.
//! The pure [`overseer_retry::Saga`] state is journaled with each compensation's result, so a
//! resumed saga continues with exactly the compensations left, in the same order.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use overseer_journal::{
    Effect, Entry, Payload, Recorded, ReplayCursor, RunAdmission, RunId, Spent, StepId,
};
use overseer_retry::{
    Attempt, Classify, CompensationNext, ErrorClass, Failure, RetryDecision, RetryPolicy,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::dead_letter::{DeadLetter, DeadLetterChange, DeadLetterId, FailedAttempt, LetterOrigin};
use crate::durable::{DurableRun, Prepared};
use crate::error::StepError;
use crate::shared::Shared;
use crate::system::System;

/// What a saga's action is given: which saga, step and attempt, and the idempotency key to
/// pass to the service it calls (the same key when the action runs again after a crash).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SagaContext {
    /// The saga's name.
    pub saga: String,
    /// The step's name.
    pub step: String,
    /// This attempt's number, from 1 (retries of the same action count up; a run resumed after
    /// a crash starts again at 1).
    pub attempt: u32,
    /// The action's idempotency key: stable across retries and across a crash with a journal.
    pub key: String,
}

type Action =
    Arc<dyn Fn(SagaContext) -> BoxFuture<'static, Result<Payload, FailedAttempt>> + Send + Sync>;
type Undo = Arc<
    dyn Fn(SagaContext, Payload) -> BoxFuture<'static, Result<(), FailedAttempt>> + Send + Sync,
>;

/// One step of a [`Saga`]: a forward action, the compensation that undoes it (given the
/// forward action's output), and their retry policies.
#[derive(Clone)]
pub struct SagaStep {
    name: String,
    forward: Action,
    compensate: Undo,
    retry: RetryPolicy,
    compensation_retry: Option<RetryPolicy>,
}

impl fmt::Debug for SagaStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SagaStep")
            .field("name", &self.name)
            .field("retry", &self.retry)
            .field("compensation_retry", &self.compensation_retry)
            .finish_non_exhaustive()
    }
}

impl SagaStep {
    /// The step `name`: `forward` does it and returns what `compensate` needs to undo it (a
    /// booking number); both may fail with any error that says its class ([`Classify`]), such
    /// as [`AskError`](crate::AskError) or [`AgentError`](crate::AgentError). The forward action
    /// is tried once and the compensation retried by the saga's default policy, unless set.
    pub fn new<T, E, F, FFut, C, CFut>(name: impl Into<String>, forward: F, compensate: C) -> Self
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Classify + fmt::Display + Send + 'static,
        F: Fn(SagaContext) -> FFut + Send + Sync + 'static,
        FFut: Future<Output = Result<T, E>> + Send + 'static,
        C: Fn(SagaContext, T) -> CFut + Send + Sync + 'static,
        CFut: Future<Output = Result<(), E>> + Send + 'static,
    {
        let forward: Action = Arc::new(move |ctx| {
            let done = forward(ctx);
            Box::pin(async move {
                let value = done.await.map_err(|error| FailedAttempt::of(&error))?;
                Payload::encode(&value).map_err(|error| {
                    FailedAttempt::new(
                        ErrorClass::Permanent,
                        format!("the step's output does not write as JSON: {error}"),
                    )
                })
            })
        });
        let compensate = Arc::new(compensate);
        let compensate: Undo = Arc::new(move |ctx, output: Payload| {
            let compensate = Arc::clone(&compensate);
            Box::pin(async move {
                let output = output.decode::<T>().map_err(|error| {
                    FailedAttempt::new(
                        ErrorClass::Permanent,
                        format!("the step's output does not read back: {error}"),
                    )
                })?;
                compensate(ctx, output)
                    .await
                    .map_err(|error| FailedAttempt::of(&error))
            })
        });
        Self {
            name: name.into(),
            forward,
            compensate,
            retry: RetryPolicy::never(),
            compensation_retry: None,
        }
    }

    /// Retries the forward action with `policy` before the step counts as failed for good.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Retries this step's compensation with `policy` instead of the saga's default.
    pub fn compensation_retry(mut self, policy: RetryPolicy) -> Self {
        self.compensation_retry = Some(policy);
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A sequence of steps, each with a compensating action: run with [`run`](Self::run) (in
/// memory) or [`run_durable`](Self::run_durable) (journaled, resumed after a crash).
///
/// The steps run in order. When one fails for good (its forward action failed and its
/// [`retry`](SagaStep::retry) policy gave up), the steps completed before it are compensated
/// in reverse order. A compensation that fails is retried by its policy; if it still fails it
/// becomes a [dead letter](crate::DeadLetters) (with every attempt's error, and an event) and
/// the compensations before it still run: none is skipped silently.
///
/// ```
/// use overseer_agent::{AgentError, Saga, SagaOutcome, System};
/// use std::sync::{Arc, Mutex};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::builder().build()?;
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
/// let saga = Saga::builder("book-trip")
///     .step(
///         "flight",
///         move |_| { let l = l1.clone(); async move { l.lock().unwrap().push("book flight"); Ok::<_, AgentError>("AF123".to_string()) } },
///         move |_, booking: String| { let l = l2.clone(); async move { l.lock().unwrap().push("cancel flight"); assert_eq!(booking, "AF123"); Ok(()) } },
///     )
///     .step(
///         "car",
///         |_| async { Err::<String, _>(AgentError::permanent("no car left")) },
///         move |_, _: String| { let l = l3.clone(); async move { l.lock().unwrap().push("never"); Ok(()) } },
///     )
///     .build();
///
/// let outcome = saga.run(&system).await?;
/// assert!(matches!(&outcome, SagaOutcome::Compensated { failed_step, .. } if failed_step == "car"));
/// assert_eq!(*log.lock().unwrap(), ["book flight", "cancel flight"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Saga {
    name: String,
    steps: Vec<SagaStep>,
    compensation_retry: RetryPolicy,
    seed: u64,
}

/// Builds a [`Saga`]: [`Saga::builder`].
#[derive(Debug, Clone)]
pub struct SagaBuilder {
    saga: Saga,
}

impl SagaBuilder {
    /// Adds the step `name`, done by `forward` and undone by `compensate` (see
    /// [`SagaStep::new`]).
    pub fn step<T, E, F, FFut, C, CFut>(
        self,
        name: impl Into<String>,
        forward: F,
        compensate: C,
    ) -> Self
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Classify + fmt::Display + Send + 'static,
        F: Fn(SagaContext) -> FFut + Send + Sync + 'static,
        FFut: Future<Output = Result<T, E>> + Send + 'static,
        C: Fn(SagaContext, T) -> CFut + Send + Sync + 'static,
        CFut: Future<Output = Result<(), E>> + Send + 'static,
    {
        self.then(SagaStep::new(name, forward, compensate))
    }

    /// Adds `step`, with its own policies.
    pub fn then(mut self, step: SagaStep) -> Self {
        self.saga.steps.push(step);
        self
    }

    /// The policy compensations are retried by, unless their step has its own (default:
    /// [`RetryPolicy::default`], 3 attempts with backoff).
    pub fn compensation_retry(mut self, policy: RetryPolicy) -> Self {
        self.saga.compensation_retry = policy;
        self
    }

    /// Seeds the generator the policies' jitter draws from (default 0), so that delays are
    /// the same from run to run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.saga.seed = seed;
        self
    }

    /// The saga.
    pub fn build(self) -> Saga {
        self.saga
    }
}

/// How a saga ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SagaOutcome {
    /// Every step completed.
    Completed {
        /// The steps, in order.
        steps: Vec<String>,
    },
    /// A step failed for good and every completed step was undone.
    Compensated {
        /// The step that failed.
        failed_step: String,
        /// Its attempts' errors.
        failure: Vec<FailedAttempt>,
        /// The steps undone, last step first.
        compensated: Vec<String>,
    },
    /// A step failed for good and some compensations failed for good too: those steps stay
    /// done, each a dead letter.
    PartiallyCompensated {
        /// The step that failed.
        failed_step: String,
        /// Its attempts' errors.
        failure: Vec<FailedAttempt>,
        /// The steps undone, last step first.
        compensated: Vec<String>,
        /// The steps not undone, with their dead letters, in the order they were tried.
        dead_lettered: Vec<(String, DeadLetterId)>,
    },
}

/// Why a saga could not be run to an outcome. The steps' own failures are not errors: they
/// are the [`SagaOutcome`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SagaError {
    /// [`run_durable`](Saga::run_durable) without a journal.
    #[error("saga {saga}: the system has no journal")]
    NoJournal {
        /// The saga.
        saga: String,
    },
    /// The run is being run by another call of this process.
    #[error("saga run {run} is already in progress")]
    RunInProgress {
        /// The run.
        run: RunId,
    },
    /// The run id was used by another saga (or another list of steps).
    #[error("run {run} was started by another saga or with other steps")]
    RunConflict {
        /// The run.
        run: RunId,
    },
    /// The journal failed (a crash, a refused write, a recorded value that does not read
    /// back): the run is left where it was, to be resumed by running it again.
    #[error("saga run {run}: {error}")]
    Journal {
        /// The run.
        run: RunId,
        /// What failed.
        error: StepError,
    },
    /// A compensation failed for good and its dead letter could not be queued (the journal
    /// failed): the run is left unfinished.
    #[error("saga {saga}: a dead letter could not be queued: {message}")]
    DeadLetter {
        /// The saga.
        saga: String,
        /// Why.
        message: String,
    },
}

/// A forward step's journaled result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Forward {
    Done(Payload),
    Failed(Vec<FailedAttempt>),
}

/// A compensation's journaled result: the pure saga's state after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Undone {
    saga: overseer_retry::Saga<usize>,
    dead_letter: Option<(String, DeadLetterId)>,
}

impl Saga {
    /// A saga named `name` with no step yet.
    pub fn builder(name: impl Into<String>) -> SagaBuilder {
        SagaBuilder {
            saga: Saga {
                name: name.into(),
                steps: Vec::new(),
                compensation_retry: RetryPolicy::default(),
                seed: 0,
            },
        }
    }

    /// The saga's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the saga in memory (nothing journaled): steps, then, if one fails for good,
    /// compensations. A compensation that fails for good is pushed to `system`'s dead letters.
    ///
    /// # Errors
    ///
    /// [`SagaError::DeadLetter`] when a dead letter cannot be queued (a journal failure).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped, the saga stops where it is, compensations not run. Use
    /// [`run_durable`](Self::run_durable) to resume.
    pub async fn run(&self, system: &System) -> Result<SagaOutcome, SagaError> {
        let run = RunId::mint();
        let mut journal = Journaling::memory(&self.name);
        self.drive(system.shared(), &run, &mut journal).await
    }

    /// Runs the saga as the durable run `run` of `system`'s journal: every action is a keyed
    /// step, journaled before and after it runs, and each compensation's result carries the
    /// saga's state. Run again with the same `run` after a crash, it replays what was done and
    /// carries on; an action that was running when the process died runs again with the same
    /// [key](SagaContext::key), so actions must be idempotent under their key. A finished run
    /// returns its recorded outcome without running anything.
    ///
    /// # Errors
    ///
    /// [`SagaError::NoJournal`], [`SagaError::RunInProgress`], [`SagaError::RunConflict`];
    /// [`SagaError::Journal`] when the journal fails (the run is left to be resumed);
    /// [`SagaError::DeadLetter`].
    ///
    /// # Cancel safety
    ///
    /// Dropped, the run is left unfinished in the journal: running it again resumes it.
    pub async fn run_durable(&self, system: &System, run: RunId) -> Result<SagaOutcome, SagaError> {
        let shared = system.shared();
        let Some(journal) = shared.journal.clone() else {
            return Err(SagaError::NoJournal {
                saga: self.name.clone(),
            });
        };
        let Some(_live) = shared.take_up_run(&run) else {
            return Err(SagaError::RunInProgress { run });
        };
        let journal_error = |error: StepError| SagaError::Journal {
            run: run.clone(),
            error,
        };
        let names: Vec<&str> = self.steps.iter().map(SagaStep::name).collect();
        let input = Payload::encode(&(&self.name, &names)).map_err(|error| {
            journal_error(StepError::Journal {
                message: error.to_string(),
            })
        })?;
        match journal.admit_run(&run, input.fingerprint(), now_ms()) {
            RunAdmission::Start => {
                let started = Entry::RunStarted {
                    run: run.clone(),
                    agent: self.agent(),
                    fingerprint: input.fingerprint(),
                    input,
                    started_at_ms: now_ms(),
                };
                journal
                    .append(vec![started], overseer_journal::Durability::Sync)
                    .await
                    .map_err(|error| {
                        journal_error(StepError::Journal {
                            message: error.to_string(),
                        })
                    })?;
            }
            RunAdmission::Finished(outcome) => return self.recorded(&run, outcome),
            RunAdmission::Conflict { .. } => return Err(SagaError::RunConflict { run }),
            _ => {}
        }
        let durable = DurableRun::claim(
            journal,
            run.clone(),
            &self.agent(),
            0,
            shared.step_durability,
            false,
        )
        .await
        .map_err(journal_error)?;
        let mut journaling = Journaling::Durable(Box::new(durable));
        let outcome = self.drive(shared, &run, &mut journaling).await?;
        if let Journaling::Durable(durable) = &journaling {
            let value = Payload::encode(&outcome).map_err(|error| {
                journal_error(StepError::Journal {
                    message: error.to_string(),
                })
            })?;
            durable
                .finish(Recorded::Value(value))
                .await
                .map_err(journal_error)?;
        }
        Ok(outcome)
    }

    /// The name its runs are journaled under.
    fn agent(&self) -> String {
        format!("saga:{}", self.name)
    }

    fn recorded(&self, run: &RunId, outcome: Recorded) -> Result<SagaOutcome, SagaError> {
        let message = match outcome {
            Recorded::Value(value) => match value.decode() {
                Ok(outcome) => return Ok(outcome),
                Err(error) => format!("the recorded outcome does not read back: {error}"),
            },
            Recorded::Failed(message)
            | Recorded::Permanent(message)
            | Recorded::InvalidOutput(message)
            | Recorded::ReplayUnsafe(message) => message,
        };
        Err(SagaError::Journal {
            run: run.clone(),
            error: StepError::Journal { message },
        })
    }

    /// The steps, then the compensations, each journaled as `journal` says.
    async fn drive(
        &self,
        shared: &Arc<Shared>,
        run: &RunId,
        journal: &mut Journaling,
    ) -> Result<SagaOutcome, SagaError> {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut state = overseer_retry::Saga::new(self.compensation_retry.clone());
        let mut outputs = Vec::new();
        let mut failed = None;
        for (index, step) in self.steps.iter().enumerate() {
            let forward = journal
                .step(run, &step.name, |key| self.forward(step, key, &mut rng))
                .await?;
            match forward.0 {
                Forward::Done(output) => {
                    let mut pure = overseer_retry::Step::new(step.name.clone(), index);
                    if let Some(policy) = &step.compensation_retry {
                        pure = pure.with_policy(policy.clone());
                    }
                    push_or_log(&mut state, pure);
                    outputs.push(output);
                }
                Forward::Failed(failure) => {
                    tracing::warn!(saga = %self.name, step = %step.name, "saga: a step failed for good; compensating");
                    failed = Some((step.name.clone(), failure));
                    break;
                }
            }
        }
        let Some((failed_step, failure)) = failed else {
            let _ = state.finish();
            return Ok(SagaOutcome::Completed {
                steps: self.steps.iter().map(|s| s.name.clone()).collect(),
            });
        };
        let _ = state.fail();
        let mut dead_lettered = Vec::new();
        while let Some(next) = state.next_compensation() {
            let index = *next.compensation();
            let step = &self.steps[index];
            let name = format!("compensate {}", step.name);
            let undo = journal
                .step(run, &name, |key| {
                    self.compensate(
                        shared,
                        run,
                        step,
                        &outputs[index],
                        state.clone(),
                        key,
                        &mut rng,
                    )
                })
                .await?;
            let (Undone { saga, dead_letter }, _) = undo;
            state = saga;
            dead_lettered.extend(dead_letter);
        }
        let compensated = state.outcome().map(|o| o.compensated).unwrap_or_default();
        Ok(if dead_lettered.is_empty() {
            SagaOutcome::Compensated {
                failed_step,
                failure,
                compensated,
            }
        } else {
            SagaOutcome::PartiallyCompensated {
                failed_step,
                failure,
                compensated,
                dead_lettered,
            }
        })
    }

    /// A step's forward action, retried by its policy.
    async fn forward(
        &self,
        step: &SagaStep,
        key: StepKey,
        rng: &mut StdRng,
    ) -> Result<Forward, SagaError> {
        let started = Instant::now();
        let mut failures = Vec::new();
        let mut previous_delay = None;
        loop {
            let ctx = self.context(step, failures.len() as u32 + 1, &key);
            let failure = match (step.forward)(ctx).await {
                Ok(output) => return Ok(Forward::Done(output)),
                Err(failure) => failure,
            };
            let attempt = Attempt::new(failures.len() as u32 + 1, failure.class)
                .with_elapsed(started.elapsed())
                .with_previous_delay(previous_delay);
            tracing::info!(saga = %self.name, step = %step.name, attempt = attempt.number, class = ?failure.class, error = %failure.message, "saga: a step's attempt failed");
            failures.push(failure);
            match step.retry.decide(&attempt, rng) {
                RetryDecision::RetryAfter(delay) => {
                    previous_delay = Some(delay);
                    tokio::time::sleep(delay).await;
                }
                RetryDecision::GiveUp(_) => return Ok(Forward::Failed(failures)),
            }
        }
    }

    /// The next compensation, retried by its policy (through the pure saga); a dead letter if
    /// it fails for good. Returns the pure saga's state after it.
    #[allow(clippy::too_many_arguments)]
    async fn compensate(
        &self,
        shared: &Arc<Shared>,
        run: &RunId,
        step: &SagaStep,
        output: &Payload,
        mut state: overseer_retry::Saga<usize>,
        key: StepKey,
        rng: &mut StdRng,
    ) -> Result<Undone, SagaError> {
        let started = Instant::now();
        let mut failures = Vec::new();
        loop {
            let ctx = self.context(step, failures.len() as u32 + 1, &key);
            let failure = match (step.compensate)(ctx, output.clone()).await {
                Ok(()) => {
                    let _ = state.compensation_succeeded();
                    tracing::info!(saga = %self.name, step = %step.name, "saga: a step was compensated");
                    return Ok(Undone {
                        saga: state,
                        dead_letter: None,
                    });
                }
                Err(failure) => failure,
            };
            let reported = Failure::new(failure.class, failure.message.clone())
                .with_elapsed(started.elapsed());
            failures.push(failure);
            match state.compensation_failed(reported, rng) {
                Ok(CompensationNext::RetryAfter(delay)) => tokio::time::sleep(delay).await,
                Ok(CompensationNext::DeadLettered(reason)) => {
                    tracing::error!(saga = %self.name, step = %step.name, ?reason, "saga: a compensation failed for good; a dead letter");
                    let id = self
                        .dead_letter(shared, run, step, output, failures, key.step)
                        .await?;
                    return Ok(Undone {
                        saga: state,
                        dead_letter: Some((step.name.clone(), id)),
                    });
                }
                // Not compensating: cannot happen, as the loop only runs for a next compensation.
                Err(_) => {
                    return Ok(Undone {
                        saga: state,
                        dead_letter: None,
                    })
                }
            }
        }
    }

    async fn dead_letter(
        &self,
        shared: &Arc<Shared>,
        run: &RunId,
        step: &SagaStep,
        output: &Payload,
        failures: Vec<FailedAttempt>,
        at: Option<StepId>,
    ) -> Result<DeadLetterId, SagaError> {
        let mut letter = DeadLetter::new(
            self.agent(),
            format!("compensate {}", step.name),
            output.clone(),
        )
        .attempts(failures)
        .origin(LetterOrigin::Compensation {
            saga: self.name.clone(),
            step: step.name.clone(),
        });
        if let Some(at) = at {
            letter = letter.run(run.clone()).step(at);
        }
        let (letter, len) = shared
            .dead_letters
            .push(shared.journal.as_ref(), letter, Vec::new())
            .await
            .map_err(|error| SagaError::DeadLetter {
                saga: self.name.clone(),
                message: error.to_string(),
            })?;
        shared.publish_dead_letter(DeadLetterChange::Pushed, &letter, len);
        Ok(letter.id)
    }

    fn context(&self, step: &SagaStep, attempt: u32, key: &StepKey) -> SagaContext {
        SagaContext {
            saga: self.name.clone(),
            step: step.name.clone(),
            attempt,
            key: key.key.clone(),
        }
    }
}

/// An action's key, and its step in the run's journal when the saga is durable.
struct StepKey {
    key: String,
    step: Option<StepId>,
}

/// Where a saga's actions are recorded: nowhere (keys still derived in program order), or as
/// the steps of a durable run.
enum Journaling {
    Memory(ReplayCursor),
    Durable(Box<DurableRun>),
}

impl Journaling {
    fn memory(saga: &str) -> Self {
        Self::Memory(ReplayCursor::new(format!("saga:{saga}"), 0))
    }

    /// Runs `work` as the next step `name`, or replays its journaled result.
    async fn step<T, F, Fut>(
        &mut self,
        run: &RunId,
        name: &str,
        work: F,
    ) -> Result<(T, bool), SagaError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(StepKey) -> Fut,
        Fut: Future<Output = Result<T, SagaError>>,
    {
        let journal_error = |error: StepError| SagaError::Journal {
            run: run.clone(),
            error,
        };
        let durable = match self {
            Self::Memory(cursor) => {
                let step = cursor.next_step();
                let key = overseer_journal::IdempotencyKey::derive(run, &step).to_string();
                return Ok((work(StepKey { key, step: None }).await?, false));
            }
            Self::Durable(durable) => durable,
        };
        let (step, prepared) = durable
            .prepare::<T>(name, Effect::Keyed, Spent::NONE)
            .await
            .map_err(journal_error)?;
        let key = match prepared {
            Prepared::Replayed(Ok(value)) => return Ok((value, true)),
            Prepared::Replayed(Err(error)) => {
                return Err(journal_error(StepError::Journal {
                    message: format!("a saga action was journaled as failed: {error}"),
                }))
            }
            Prepared::Run(key) | Prepared::Reconcile(key) => key,
        };
        let value = work(StepKey {
            key: key.to_string(),
            step: Some(step.clone()),
        })
        .await?;
        durable
            .complete(step, name, Effect::Keyed, false, &Ok(&value), Spent::NONE)
            .await
            .map_err(journal_error)?;
        Ok((value, false))
    }
}

fn push_or_log(state: &mut overseer_retry::Saga<usize>, step: overseer_retry::Step<usize>) {
    if let Err(error) = state.push(step) {
        tracing::error!(%error, "saga: a step could not be recorded");
    }
}

/// Milliseconds since the Unix epoch (a clock before 1970 reads as 0).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
