//! A durable run as the incarnation handling it holds it: the journal, the run, the epoch it
//! claimed, and the cursor that numbers its steps in program order. The step itself
//! ([`AgentContext::step`](crate::AgentContext::step)) asks it what to do and records what
//! happened.

use overseer_journal::{
    Durability, Effect, Entry, Epoch, IdempotencyKey, Journal, JournalError, Payload, Recorded,
    Refusal, ReplayCursor, RunId, Spent, StepDecision, StepId,
};
use std::sync::Arc;

use overseer_retry::Classify;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dead_letter::{DeadLetter, DeadLetterChange, FailedAttempt, LetterOrigin, LetterQueue};
use crate::error::{AgentError, StepError};
use crate::shared::{Shared, StepDurability};
use crate::usage::Usage;

/// The run an incarnation handles, from its claim to its end.
#[derive(Debug)]
pub(crate) struct DurableRun {
    journal: Journal,
    run: RunId,
    epoch: Epoch,
    cursor: ReplayCursor,
    durability: StepDurability,
    /// What replayed steps had spent: already paid, reported apart.
    replayed: Usage,
    /// Where a step given up goes, and the facts its letter names.
    letters: Option<LetterSource>,
    /// Whether a retry policy may retry this attempt: a retryable failure of a step is then
    /// not journaled (the retry takes the step again instead of replaying the failure).
    retryable: bool,
}

/// The dead-letter queue a durable run's steps in doubt go to, and who the run was asked of.
pub(crate) struct LetterSource {
    pub(crate) shared: Arc<Shared>,
    pub(crate) agent: String,
    pub(crate) agent_type: &'static str,
    pub(crate) task_type: &'static str,
}

impl std::fmt::Debug for LetterSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LetterSource")
            .field("agent", &self.agent)
            .field("task_type", &self.task_type)
            .finish_non_exhaustive()
    }
}

/// Where a step stands once the journal has been asked about it.
pub(crate) enum Prepared<T> {
    /// The step's recorded outcome: return it without running anything.
    Replayed(Result<T, AgentError>),
    /// Run it with this key (its intent already written if it needed one).
    Run(IdempotencyKey),
    /// An unsafe effect in doubt: ask the user's check with this key.
    Reconcile(IdempotencyKey),
}

impl DurableRun {
    /// Takes `run` up for a new incarnation: claims the next epoch, which fences every older
    /// incarnation off.
    pub(crate) async fn claim(
        journal: Journal,
        run: RunId,
        path: &str,
        ask: u32,
        durability: StepDurability,
        retryable: bool,
    ) -> Result<Self, StepError> {
        let epoch = journal
            .claim(&run)
            .await
            .map_err(|error| journal_error(&run, Epoch::FIRST, error))?;
        Ok(Self {
            journal,
            run,
            epoch,
            cursor: ReplayCursor::new(path, ask),
            durability,
            replayed: Usage::default(),
            letters: None,
            retryable,
        })
    }

    /// The run, whose steps given up go to `letters`'s dead-letter queue.
    pub(crate) fn giving_up_to(mut self, letters: LetterSource) -> Self {
        self.letters = Some(letters);
        self
    }

    pub(crate) fn run(&self) -> &RunId {
        &self.run
    }

    /// What the replayed steps had spent.
    pub(crate) fn replayed(&self) -> Usage {
        self.replayed
    }

    /// The value of signal `name`, once delivered to the run.
    pub(crate) fn signal(&self, name: &str) -> Option<overseer_journal::Payload> {
        self.journal.with_run(&self.run, |record| {
            record.and_then(|r| r.signal(name).cloned())
        })
    }

    /// The value of the last completed step named `name` (in step order), read as a `T`.
    pub(crate) fn last_recorded<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        self.journal.with_run(&self.run, |record| {
            record?
                .steps()
                .filter(|(_, step)| step.name == name)
                .filter_map(|(_, step)| match &step.completed {
                    Some((overseer_journal::Recorded::Value(value), _)) => value.decode().ok(),
                    _ => None,
                })
                .last()
        })
    }

    /// The next step, named `name`, with `effect`: replayed from the journal, or to be run (its
    /// intent written first when it needs one), or to be reconciled.
    pub(crate) async fn prepare<T: DeserializeOwned>(
        &mut self,
        name: &str,
        effect: Effect,
        reserved: Spent,
    ) -> Result<(StepId, Prepared<T>), StepError> {
        let step = self.cursor.next_step();
        let prepared = match self.journal.decide_step(&self.run, &step, name, effect) {
            StepDecision::Replay { outcome, spent } => {
                self.replayed += Usage::from(spent);
                Prepared::Replayed(decode(&step, outcome)?)
            }
            StepDecision::Execute => {
                if effect.needs_intent() || !reserved.is_none() {
                    self.write_intent(&step, name, effect, reserved).await?;
                }
                Prepared::Run(IdempotencyKey::derive(&self.run, &step))
            }
            StepDecision::RetryWithKey { key, .. } => Prepared::Run(key),
            StepDecision::Reconcile { key, .. } => Prepared::Reconcile(key),
            StepDecision::DeadLettered { reason } => {
                return Err(StepError::DeadLettered {
                    run: self.run.clone(),
                    step,
                    reason,
                })
            }
            StepDecision::Diverged(divergence) => {
                return Err(StepError::Diverged {
                    run: self.run.clone(),
                    step,
                    recorded: format!(
                        "{} ({})",
                        divergence.recorded_name, divergence.recorded_effect
                    ),
                    requested: format!("{name} ({effect})"),
                })
            }
            _ => Prepared::Run(IdempotencyKey::derive(&self.run, &step)),
        };
        Ok((step, prepared))
    }

    async fn write_intent(
        &self,
        step: &StepId,
        name: &str,
        effect: Effect,
        reserved: Spent,
    ) -> Result<(), StepError> {
        let intent = Entry::StepIntent {
            run: self.run.clone(),
            epoch: self.epoch,
            step: step.clone(),
            name: name.to_string(),
            effect,
            reserved,
        };
        self.append(intent, Durability::Sync).await
    }

    /// Records the step's outcome: a value, or a task failure (replayed as the same failure; a
    /// replay-unsafe one as replay-unsafe).
    /// A fatal error or a durability error is not recorded: the step is taken again; nor is a
    /// transient or rate-limited failure of an attempt a retry policy may retry: the retry
    /// takes the step again.
    pub(crate) async fn complete<T: Serialize>(
        &self,
        step: StepId,
        name: &str,
        effect: Effect,
        model_call: bool,
        outcome: &Result<T, AgentError>,
        spent: Spent,
    ) -> Result<(), StepError> {
        let recorded = match outcome {
            Ok(value) => {
                Recorded::Value(Payload::encode(value).map_err(|error| StepError::Encoding {
                    step: step.clone(),
                    message: error.to_string(),
                })?)
            }
            Err(error) if self.retryable && error.class().is_retryable() => return Ok(()),
            Err(error) => match recorded_failure(error) {
                Some(recorded) => recorded,
                None => return Ok(()),
            },
        };
        let completed = Entry::StepCompleted {
            run: self.run.clone(),
            epoch: self.epoch,
            step,
            name: name.to_string(),
            effect,
            outcome: recorded,
            spent,
        };
        let durability = self.durability.of(effect, model_call);
        self.append(completed, durability).await
    }

    /// Gives an unsafe step in doubt up: a dead letter holding its place in the journal.
    pub(crate) async fn dead_letter(&self, step: StepId, key: &IdempotencyKey) -> StepError {
        let entry = Entry::StepDeadLettered {
            run: self.run.clone(),
            epoch: self.epoch,
            step: step.clone(),
            reason: format!("an unsafe effect in doubt after a crash (key {key})"),
        };
        if let Err(error) = self.dead_letter_entry(entry, &step).await {
            return error;
        }
        tracing::warn!(run = %self.run, %step, %key, "durable run: an unsafe effect in doubt went to the dead letters");
        StepError::InDoubt {
            run: self.run.clone(),
            step,
            key: key.to_string(),
        }
    }

    /// Journals `entry` (a step given up) and, with a queue to give up to, the step's dead
    /// letter in the same append, then queues the letter.
    async fn dead_letter_entry(&self, entry: Entry, step: &StepId) -> Result<(), StepError> {
        let Some(letters) = &self.letters else {
            return self.append(entry, Durability::Sync).await;
        };
        let Entry::StepDeadLettered { reason, .. } = &entry else {
            return self.append(entry, Durability::Sync).await;
        };
        let found = self.journal.with_run(&self.run, |record| {
            record.map(|record| (record.input.clone(), Usage::from(record.spent())))
        });
        let Some((input, cost)) = found else {
            return self.append(entry, Durability::Sync).await;
        };
        let step_name = self
            .journal
            .with_run(&self.run, |record| {
                record.and_then(|r| r.step(step).map(|s| s.name.clone()))
            })
            .unwrap_or_default();
        let letter = DeadLetter::new(letters.agent.clone(), letters.task_type, input)
            .agent_type(letters.agent_type)
            .attempt(FailedAttempt::new(
                overseer_retry::ErrorClass::ReplayUnsafe,
                reason.clone(),
            ))
            .run(self.run.clone())
            .step(step.clone())
            .cost(cost)
            .origin(LetterOrigin::StepInDoubt { step_name });
        let queue = &letters.shared.dead_letters;
        let letter = queue.numbered(letter);
        let lettered = LetterQueue::entry(&letter).map_err(|error| StepError::Encoding {
            step: step.clone(),
            message: error.to_string(),
        })?;
        // One append: the step is given up if and only if its letter is queued.
        self.journal
            .append(vec![entry, lettered], Durability::Sync)
            .await
            .map(drop)
            .map_err(|error| journal_error(&self.run, self.epoch, error))?;
        let len = queue.insert(letter.clone());
        letters
            .shared
            .publish_dead_letter(DeadLetterChange::Pushed, &letter, len);
        Ok(())
    }

    /// Records the run's end.
    pub(crate) async fn finish(&self, outcome: Recorded) -> Result<(), StepError> {
        let finished = Entry::RunFinished {
            run: self.run.clone(),
            epoch: self.epoch,
            outcome,
        };
        self.append(finished, Durability::Sync).await
    }

    async fn append(&self, entry: Entry, durability: Durability) -> Result<(), StepError> {
        self.journal
            .append(vec![entry], durability)
            .await
            .map(drop)
            .map_err(|error| journal_error(&self.run, self.epoch, error))
    }
}

/// A journal error as a step error: a stale epoch is a fenced incarnation.
fn journal_error(run: &RunId, epoch: Epoch, error: JournalError) -> StepError {
    match error {
        JournalError::Refused(Refusal::Stale { .. }) => StepError::Fenced {
            run: run.clone(),
            epoch: epoch.0,
        },
        other => StepError::Journal {
            message: other.to_string(),
        },
    }
}

/// A recorded outcome read back as the step's result.
fn decode<T: DeserializeOwned>(
    step: &StepId,
    outcome: Recorded,
) -> Result<Result<T, AgentError>, StepError> {
    match outcome {
        Recorded::Value(value) => value.decode().map(Ok).map_err(|error| StepError::Encoding {
            step: step.clone(),
            message: format!("the recorded result does not read as the step's type: {error}"),
        }),
        Recorded::Failed(message) => Ok(Err(AgentError::Failed(message))),
        Recorded::Permanent(message) => Ok(Err(AgentError::Permanent(message))),
        Recorded::InvalidOutput(message) => Ok(Err(AgentError::InvalidOutput(message))),
        Recorded::ReplayUnsafe(message) => Ok(Err(AgentError::ReplayUnsafe(message))),
    }
}

/// How a handler's failure is journaled as a step's or a run's outcome, its class kept: `None`
/// for the failures that are not (a fatal error crashes the incarnation, which replays the
/// step; a rate-limited one or a durable step's own error leaves it to be taken again).
pub(crate) fn recorded_failure(error: &AgentError) -> Option<Recorded> {
    match error {
        AgentError::Failed(message) => Some(Recorded::Failed(message.clone())),
        AgentError::Permanent(message) => Some(Recorded::Permanent(message.clone())),
        AgentError::InvalidOutput(message) => Some(Recorded::InvalidOutput(message.clone())),
        AgentError::ReplayUnsafe(message) => Some(Recorded::ReplayUnsafe(message.clone())),
        _ => None,
    }
}
