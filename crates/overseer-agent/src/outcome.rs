//! The end of a task the agent ran: [`judge`] says what the handler's outcome means (the ask's
//! result, and whether the incarnation must exit), [`settle`] records it (budget, error rate,
//! breaker) and delivers it (the caller's answer, or a tell's event). Plain functions: the actor
//! calls them and acts on what they return.

use std::time::Duration;

use overseer_journal::Recorded;
use overseer_retry::Classify;
use overseer_supervisor::{panic_message, EventId, ExitReason};
use tokio::time::Instant;

use crate::agent::Agent;
use crate::context::TaskReport;
use crate::durable::DurableRun;
use crate::error::{AgentError, AskError};
use crate::heartbeat::Progress;
use crate::name::AgentName;
use crate::settlement::{Settlement, Verdict};
use crate::slot::{Answer, DurableJob, Reply, Slot};

/// How a handler ended a task.
pub(crate) enum Handled<O> {
    /// It returned.
    Returned(Result<O, AgentError>),
    /// It panicked, with this payload.
    Panicked(Box<dyn std::any::Any + Send>),
    /// It was still running at the task's deadline: treated as hung.
    Overran,
    /// It gave no heartbeat for its heartbeat timeout before its deadline: treated as hung.
    /// Boxed: a rare outcome, kept out of the size of the one every task returns.
    Stalled(Box<Stall>),
}

/// A handler that went silent: its heartbeat timeout, how long it was silent, and the last
/// progress it reported.
pub(crate) struct Stall {
    pub(crate) timeout: Duration,
    pub(crate) silent_for: Duration,
    pub(crate) progress: Option<Progress>,
}

impl<O> From<std::thread::Result<Result<O, AgentError>>> for Handled<O> {
    /// A handler's future run under `catch_unwind`, finished.
    #[inline]
    fn from(finished: std::thread::Result<Result<O, AgentError>>) -> Self {
        match finished {
            Ok(returned) => Self::Returned(returned),
            Err(payload) => Self::Panicked(payload),
        }
    }
}

/// What a handler's outcome means: the ask's result and, if the incarnation must exit, why.
///
/// | handler | result | incarnation |
/// |---|---|---|
/// | returned `Ok(output)` | `Ok(output)` | carries on |
/// | returned [`AgentError::Failed`], [`AgentError::InvalidOutput`] or another task failure ([`AgentError::Permanent`], [`AgentError::RateLimited`], [`AgentError::ReplayUnsafe`]) | [`AskError::Failed`] | carries on |
/// | returned [`AgentError::Fatal`] | [`AskError::Crashed`] | exits: [`ExitReason::Failed`] |
/// | panicked | [`AskError::Crashed`] | exits: [`ExitReason::Panicked`] |
/// | ran past the deadline | [`AskError::Timeout`] | exits: [`ExitReason::TimedOut`] |
/// | gave no heartbeat within its heartbeat timeout | [`AskError::Stalled`] | exits: [`ExitReason::Stalled`] |
#[inline(always)]
pub(crate) fn judge<O>(
    agent: &AgentName,
    handled: Handled<O>,
    deadline: Instant,
    asked_at: Instant,
) -> (Result<O, AskError>, Option<ExitReason>) {
    let crashed = |reason: ExitReason| {
        let error = AskError::Crashed {
            agent: agent.clone(),
            reason: reason.clone(),
        };
        (Err(error), Some(reason))
    };
    match handled {
        Handled::Overran => {
            let after = deadline.saturating_duration_since(asked_at);
            let error = AskError::Timeout {
                agent: agent.clone(),
                after,
            };
            (Err(error), Some(ExitReason::TimedOut(after)))
        }
        Handled::Stalled(stall) => {
            let Stall {
                timeout,
                silent_for,
                progress,
            } = *stall;
            let error = AskError::Stalled {
                agent: agent.clone(),
                silent_for,
                progress,
            };
            (Err(error), Some(ExitReason::Stalled(timeout)))
        }
        Handled::Panicked(payload) => crashed(ExitReason::Panicked(panic_message(payload))),
        Handled::Returned(Err(AgentError::Fatal(message))) => crashed(ExitReason::Failed(message)),
        Handled::Returned(Err(error)) => (
            Err(AskError::Failed {
                agent: agent.clone(),
                error,
            }),
            None,
        ),
        Handled::Returned(Ok(output)) => (Ok(output), None),
    }
}

/// Settles what admitting a task took (the budget's reservation committed with the spend
/// reported; with `counted`, the outcome counted by the error-rate window and the breaker).
#[inline]
pub(crate) fn settle_admission<A: Agent>(
    slot: &Slot<A>,
    settlement: Option<&Settlement>,
    id: EventId,
    started: Option<Instant>,
    counted: bool,
    result: &Result<A::Output, AskError>,
) {
    let Some(settlement) = settlement else {
        return;
    };
    let verdict = counted.then(|| {
        // The handler was timed (`started`) only for a breaker that measures latency; the
        // breaker and the error-rate window read the clock themselves when they need it.
        let now = started.map(|_| Instant::now());
        let latency = started
            .zip(now)
            .map(|(started, now)| now.saturating_duration_since(started));
        Verdict {
            at: now,
            ..slot.verdict(result, latency.unwrap_or_default())
        }
    });
    settlement.settle_ended(&slot.shared, slot.name.as_str(), id, slot.path(), verdict);
}

/// A task that ended here, as the actor hands it over to be settled.
pub(crate) struct Ended<O> {
    /// The ask's event id.
    pub(crate) id: EventId,
    pub(crate) task_type: &'static str,
    pub(crate) asked_at: Instant,
    /// When the handler started, if the clock was read for it (a tell, or a breaker that
    /// wants the latency).
    pub(crate) started: Option<Instant>,
    /// What the handler reported.
    pub(crate) report: TaskReport,
    /// Where the answer goes; `None` for a tell.
    pub(crate) reply: Option<Reply<O>>,
}

/// Settles a task that ended here with `result`, in order: its admission (the budget's
/// reservation committed with the spend reported; with `counted`, the outcome counted by the
/// error-rate window and the breaker), then its answer (sent to the caller, or a tell's end
/// published).
///
/// Not counted: a task the kill switch cancelled (`counted` false: it says nothing about the
/// agent's health), and an ask whose caller stopped waiting while the handler ran. An ask whose
/// caller settled it already (its deadline passed first) only has its late spend charged.
#[inline]
pub(crate) fn settle<A: Agent>(
    slot: &Slot<A>,
    ended: Ended<A::Output>,
    result: Result<A::Output, AskError>,
    counted: bool,
) {
    let TaskReport {
        usage,
        notes,
        settlement,
        made_in,
    } = ended.report;
    // The caller stopped waiting while the handler ran (and did not settle the ask, as a
    // caller whose deadline passed does): the outcome is not counted.
    let abandoned = ended.reply.as_ref().is_some_and(Reply::is_closed);
    settle_admission(
        slot,
        settlement.as_deref(),
        ended.id,
        ended.started,
        counted && !abandoned,
        &result,
    );
    let answer = |result: Result<A::Output, AskError>| Answer {
        outcome: result.map_err(Box::new),
        usage,
        notes,
    };
    match ended.reply {
        Some(reply) => {
            let _ = reply.send(answer(result));
        }
        // A tell: nobody waits, its end is published here if anyone listens or tallies (the
        // answer, with its boxed error, is built only then).
        None if slot.shared.observers() != 0 => {
            let told = (ended.id, ended.task_type, ended.asked_at);
            slot.publish_tell_event(told, made_in, &answer(result));
        }
        None => {}
    }
}

/// Ends the durable run of a task that ended with `result`: an output or a task failure is
/// journaled as the run's outcome (a second ask of the run gets it without running anything);
/// the answer waits for that record, so nothing acknowledged is lost. Any other error leaves
/// the run unfinished, to be resumed, and so does a transient or rate-limited failure of an
/// attempt a retry policy may retry (the retry replays the run). A run whose end cannot be
/// journaled fails the ask.
pub(crate) async fn finish_run<A: Agent>(
    agent: &AgentName,
    run: Option<Box<DurableRun>>,
    job: &DurableJob<A>,
    result: Result<A::Output, AskError>,
) -> Result<A::Output, AskError> {
    let Some(run) = run else {
        return result;
    };
    let recorded = match &result {
        Err(error) if job.retryable && error.class().is_retryable() => return result,
        Ok(output) => match (job.encode_output)(output) {
            Ok(payload) => Recorded::Value(payload),
            Err(error) => {
                return Err(AskError::Journal {
                    run: job.run.clone(),
                    message: format!("the output does not write as JSON: {error}"),
                })
            }
        },
        Err(AskError::Failed { error, .. }) => match crate::durable::recorded_failure(error) {
            Some(recorded) => recorded,
            None => return result,
        },
        Err(_) => return result,
    };
    match run.finish(recorded).await {
        Ok(()) => result,
        Err(error) => Err(AskError::Failed {
            agent: agent.clone(),
            error: AgentError::step(error),
        }),
    }
}
