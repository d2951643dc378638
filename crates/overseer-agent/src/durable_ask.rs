//! Durable asks: an ask that belongs to a run with a stable id, journaled so that a restart is
//! a replay, a second ask of the same run gets its outcome, and a dead process resumes it.

use std::time::{Duration, SystemTime};

use overseer_journal::{Entry, Payload, Recorded, RunAdmission, RunId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::time::Instant;

use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::error::AskError;
use crate::feedback::Feedback;
use crate::retry_loop::{Attempts, Try};
use crate::slot::{Answer, Attempted, DurableJob};
use crate::usage::Usage;

/// What a retried attempt of a durable ask carries.
struct Retried {
    id: overseer_supervisor::EventId,
    feedback: Option<Feedback>,
    retryable: bool,
}

impl<A: Agent> AgentRef<A>
where
    A::Task: Serialize + DeserializeOwned,
    A::Output: Serialize + DeserializeOwned,
{
    /// Asks the agent to handle `task` as the run `run`, journaled in the system's journal
    /// ([`SystemBuilder::journal`](crate::SystemBuilder::journal)), within the agent's default
    /// deadline.
    ///
    /// The run's id is the ask's idempotency key, with Stripe's semantics:
    ///
    /// | the journal holds | outcome |
    /// |---|---|
    /// | nothing under `run` (or a finished run past the journal's retention) | the run starts: journaled, then asked |
    /// | the run, finished | its recorded outcome, without running anything: `Ok(output)`, or [`AskError::RunFailed`] |
    /// | the run, unfinished, handled by an ask of this process | [`AskError::RunInProgress`] |
    /// | the run, unfinished, not handled here (a dead process left it) | it resumes: replayed from the journal, then carried on |
    /// | the run, with another input | [`AskError::RunConflict`] |
    ///
    /// Inside the handler, the steps it takes with
    /// [`AgentContext::step`](crate::AgentContext::step) and
    /// [`AgentContext::model`](crate::AgentContext::model) are journaled and replayed. If the
    /// agent crashes on the task, the ask goes to the next incarnation, which replays the run
    /// (the steps done are not run or paid for again), within the same deadline.
    ///
    /// Under the agent's retry policy ([`AgentSpec::retry`](crate::AgentSpec::retry)), a
    /// failed attempt asks the run again within the same deadline: the steps journaled replay
    /// (not run or paid for again) and the failed step runs again. A transient or rate-limited
    /// failure of an attempt that may be retried is not journaled as the step's or the run's
    /// outcome; the attempt the policy gives up on is (if it gives up for the deadline or the
    /// retry budget before its last attempt, the run stays unfinished, to be resumed).
    ///
    /// # Errors
    ///
    /// Those of [`ask`](Self::ask), and: [`AskError::NoJournal`] without a journal;
    /// [`AskError::RunConflict`], [`AskError::RunInProgress`], [`AskError::RunFailed`] as
    /// above; [`AskError::Journal`] when the journal cannot record the run, or its recorded
    /// input or outcome does not read as this agent's types.
    ///
    /// # Cancel safety
    ///
    /// As [`ask`](Self::ask); a run whose ask is dropped is left unfinished in the journal (its
    /// recorded steps are replayed when it is asked again).
    pub async fn ask_run(&self, run: RunId, task: A::Task) -> Result<A::Output, AskError> {
        self.ask_run_within(run, task, self.default_timeout()).await
    }

    /// As [`ask_run`](Self::ask_run), with a deadline for this call: `timeout` from now.
    ///
    /// # Errors
    ///
    /// As [`ask_run`](Self::ask_run).
    ///
    /// # Cancel safety
    ///
    /// As [`ask_run`](Self::ask_run).
    pub async fn ask_run_within(
        &self,
        run: RunId,
        task: A::Task,
        timeout: Duration,
    ) -> Result<A::Output, AskError> {
        let plan = self.slot().classifier.retry.as_deref();
        let Some((plan, policy)) =
            plan.and_then(|plan| Some((plan, plan.policy_for(A::task_type(&task))?)))
        else {
            return self.ask_run_once(run, task, timeout, None).await;
        };
        // Retried by the policy: each attempt asks the run again, which replays the steps
        // recorded and takes the failed one again.
        let attempts = Attempts {
            policy: Some(policy),
            deadline: overseer_supervisor::deadline_after(Instant::now(), timeout),
            timeout,
            first_deposits: true,
            retry_invalid_output: false,
            first_id: None,
        };
        let run = &run;
        let make = move |attempt: Try<A>| {
            let retried = Retried {
                id: attempt.id,
                feedback: attempt.feedback,
                retryable: attempt.retryable,
            };
            let once = self.ask_run_once(run.clone(), attempt.task, attempt.timeout, Some(retried));
            // A run's spend is journaled with its steps, not reported per attempt.
            futures::FutureExt::map(once, |result| (result, Usage::default()))
        };
        crate::retry_loop::run_attempts(self.slot(), attempts, task, Some(plan.copy), None, make)
            .await
            .result
    }

    /// A durable ask whose event id was assigned before it (a cohort's member): under the
    /// agent's retry policy as [`ask_run_within`](Self::ask_run_within) (whose attempts have
    /// their own ids), else asked once with `id`.
    pub(crate) async fn ask_run_as(
        &self,
        run: RunId,
        task: A::Task,
        timeout: Duration,
        id: overseer_supervisor::EventId,
    ) -> Result<A::Output, AskError> {
        let retried = self
            .slot()
            .classifier
            .retry
            .as_deref()
            .and_then(|plan| plan.policy_for(A::task_type(&task)))
            .is_some();
        if retried {
            return self.ask_run_within(run, task, timeout).await;
        }
        let first = Retried {
            id,
            feedback: None,
            retryable: false,
        };
        self.ask_run_once(run, task, timeout, Some(first)).await
    }

    /// One attempt of a durable ask.
    async fn ask_run_once(
        &self,
        run: RunId,
        task: A::Task,
        timeout: Duration,
        retried: Option<Retried>,
    ) -> Result<A::Output, AskError> {
        let shared = &self.slot().shared;
        let Some(journal) = shared.journal.as_ref() else {
            return Err(AskError::NoJournal {
                agent: self.name().clone(),
            });
        };
        let input = Payload::encode(&task).map_err(|error| AskError::Journal {
            run: run.clone(),
            message: format!("the task does not write as JSON: {error}"),
        })?;
        let Some(_live) = shared.take_up_run(&run) else {
            return Err(AskError::RunInProgress { run });
        };
        // What the run held reserved since a crash is given back as it is asked again: the ask's
        // own reservation covers what it spends from here.
        drop(shared.take_held_reservation(&run));
        // Over a shared journal (PostgreSQL), the run as the database has it: another process
        // may have started or finished it. Nothing to do over a journal of this process's own.
        journal
            .refresh(&run)
            .await
            .map_err(|error| AskError::Journal {
                run: run.clone(),
                message: error.to_string(),
            })?;
        match journal.admit_run(&run, input.fingerprint(), now_ms()) {
            RunAdmission::Start => {
                let started = Entry::RunStarted {
                    run: run.clone(),
                    agent: self.name().to_string(),
                    fingerprint: input.fingerprint(),
                    input: input.clone(),
                    started_at_ms: now_ms(),
                };
                journal
                    .append(vec![started], overseer_journal::Durability::Sync)
                    .await
                    .map_err(|error| AskError::Journal {
                        run: run.clone(),
                        message: error.to_string(),
                    })?;
            }
            RunAdmission::Finished(outcome) => return recorded_outcome(run, outcome),
            RunAdmission::Conflict { .. } => return Err(AskError::RunConflict { run }),
            // Left unfinished by an ask that is gone: taken up again, and replayed.
            _ => {}
        }
        let (id, feedback, retryable) = match retried {
            Some(retried) => (retried.id, retried.feedback, retried.retryable),
            None => (shared.ids.next(), None, false),
        };
        let durable = Box::new(DurableJob {
            run,
            input,
            decode_task: Payload::decode::<A::Task>,
            encode_output: Payload::encode::<A::Output>,
            retryable,
        });
        let part = Attempted {
            id,
            durable: Some(durable),
            feedback,
        };
        self.ask_traced(task, timeout, part, Answer::into_outcome)
            .await
    }
}

impl<A: Agent> AgentRef<A>
where
    A::Task: Serialize + DeserializeOwned,
    A::Output: Serialize + DeserializeOwned,
{
    /// Delivers the signal `name` with `value` to the run `run`, durably, and resumes the run
    /// (it was asked of this agent, and waits in
    /// [`AgentContext::wait_for`](crate::AgentContext::wait_for)): the run is asked again with its
    /// journaled input, replays to where it waited, and goes on. Returns the run's outcome.
    ///
    /// Over a shared journal (PostgreSQL) the run is read from the database first, so a run
    /// another process started can be signalled; if another process holds it, the signal is
    /// recorded and the ask is refused as held: the holder sees the signal at its next look
    /// (`overseer_postgres::Worker` resumes it).
    ///
    /// # Errors
    ///
    /// [`AskError::NoJournal`]; [`AskError::Journal`] when the journal holds no such run, or
    /// cannot record the signal; then those of [`ask_run`](Self::ask_run).
    pub async fn signal<V: Serialize>(
        &self,
        run: RunId,
        name: &str,
        value: &V,
    ) -> Result<A::Output, AskError> {
        let journal = self.journal()?;
        let journal_error = |run: &RunId, message: String| AskError::Journal {
            run: run.clone(),
            message,
        };
        let value = Payload::encode(value).map_err(|error| {
            journal_error(&run, format!("the signal does not write as JSON: {error}"))
        })?;
        let delivered = Entry::SignalDelivered {
            run: run.clone(),
            name: name.to_string(),
            value,
        };
        journal
            .refresh(&run)
            .await
            .map_err(|error| journal_error(&run, error.to_string()))?;
        journal
            .append(vec![delivered], overseer_journal::Durability::Sync)
            .await
            .map_err(|error| journal_error(&run, error.to_string()))?;
        let task = self.journaled_task(&run)?;
        self.ask_run(run, task).await
    }

    /// Resumes every run the journal holds unfinished for this agent (a process that died left
    /// them so): each is asked again with its journaled input, replays what it had done and goes
    /// on. What a restarted process calls for each durable agent once its system has started.
    /// Returns each run with its outcome, in the order the runs started.
    ///
    /// # Errors
    ///
    /// [`AskError::NoJournal`] without a journal. Each run's own outcome is in the list: those
    /// of [`ask_run`](Self::ask_run).
    pub async fn resume_unfinished(
        &self,
    ) -> Result<Vec<(RunId, Result<A::Output, AskError>)>, AskError> {
        let journal = self.journal()?;
        let mine: Vec<RunId> = journal
            .unfinished()
            .into_iter()
            .filter(|run| {
                journal.with_run(run, |record| {
                    record.is_some_and(|record| record.agent == self.name().as_str())
                })
            })
            .collect();
        tracing::info!(agent = %self.name(), runs = mine.len(), "durable runs: resuming the unfinished");
        let asks = mine.into_iter().map(|run| async move {
            let outcome = match self.journaled_task(&run) {
                Ok(task) => self.ask_run(run.clone(), task).await,
                Err(error) => Err(error),
            };
            (run, outcome)
        });
        Ok(futures::future::join_all(asks).await)
    }

    fn journal(&self) -> Result<&overseer_journal::Journal, AskError> {
        self.slot()
            .shared
            .journal
            .as_ref()
            .ok_or_else(|| AskError::NoJournal {
                agent: self.name().clone(),
            })
    }

    /// The task a run was started with, read back from the journal.
    fn journaled_task(&self, run: &RunId) -> Result<A::Task, AskError> {
        let journal = self.journal()?;
        let input = journal.with_run(run, |record| record.map(|record| record.input.clone()));
        let Some(input) = input else {
            return Err(AskError::Journal {
                run: run.clone(),
                message: "the journal holds no such run".into(),
            });
        };
        input.decode().map_err(|error| AskError::Journal {
            run: run.clone(),
            message: format!("the journaled task does not read as this agent's: {error}"),
        })
    }
}

/// A finished run's recorded outcome, as the ask's.
fn recorded_outcome<O: DeserializeOwned>(run: RunId, outcome: Recorded) -> Result<O, AskError> {
    match outcome {
        Recorded::Value(value) => value.decode().map_err(|error| AskError::Journal {
            run,
            message: format!("the recorded output does not read as this agent's: {error}"),
        }),
        Recorded::Failed(error)
        | Recorded::Permanent(error)
        | Recorded::InvalidOutput(error)
        | Recorded::ReplayUnsafe(error) => Err(AskError::RunFailed { run, error }),
    }
}

/// Milliseconds since the Unix epoch, for the journal's retention of finished runs (wall-clock
/// time, which outlives the process; a clock before 1970 reads as 0).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
