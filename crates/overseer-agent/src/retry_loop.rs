//! The retry loop of one ask: attempts made by a [`RetryPolicy`], within the ask's one
//! deadline, on the tokio clock, bounded by the system's retry budget, each failure fed to the
//! next attempt, each decision an event.
//!
//! The decision is the pure [`RetryPolicy::decide`]; this module sleeps, checks the kill
//! switch, withdraws from the budget and publishes. The attempt itself is the caller's (a
//! plain ask, or an ask of a durable run), given as a closure.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use overseer_retry::{Attempt, Classify, ErrorClass, RetryDecision, RetryPolicy};
use overseer_supervisor::EventId;
use tokio::time::Instant;

use crate::agent::Agent;
use crate::error::{AskError, AttemptRecord};
use crate::event::SystemEvent;
use crate::feedback::Feedback;
use crate::retry_event::{RetryEvent, RetryStep};
use crate::retry_plan::CopyTask;
use crate::slot::Slot;
use crate::usage::Usage;

/// How one run of attempts is bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempts<'p> {
    /// The policy; `None` for a single attempt.
    pub(crate) policy: Option<&'p RetryPolicy>,
    /// The one deadline of every attempt and wait.
    pub(crate) deadline: Instant,
    /// The ask's timeout, for the error of a deadline that passed between attempts.
    pub(crate) timeout: Duration,
    /// Whether the first attempt is a request that deposits into the retry budget (a rung of
    /// a ladder is not: it is an escalation of a request already counted).
    pub(crate) first_deposits: bool,
    /// Whether an invalid output is retried as a transient failure is: on the ladder's
    /// same-agent rung, where the agent is told what was wrong.
    pub(crate) retry_invalid_output: bool,
    /// The first attempt's event id, when the ask's was assigned before it (a cohort's member,
    /// whose events name it); the later attempts get their own.
    pub(crate) first_id: Option<EventId>,
}

/// One attempt, as the retry loop hands it to the closure that makes it.
pub(crate) struct Try<A: Agent> {
    pub(crate) task: A::Task,
    /// The time left before the deadline.
    pub(crate) timeout: Duration,
    /// The attempt's ask event id, assigned here so that the retry's event names it.
    pub(crate) id: EventId,
    /// The previous attempt's failure.
    pub(crate) feedback: Option<Feedback>,
    /// Whether the policy may retry a failure of this attempt (it is not the last allowed).
    pub(crate) retryable: bool,
}

/// How a run of attempts ended.
pub(crate) struct Tried<O> {
    /// The output, or the error the run ended with.
    pub(crate) result: Result<O, AskError>,
    /// Every attempt that failed, in order.
    pub(crate) failures: Vec<Failed>,
}

/// A failed attempt.
pub(crate) struct Failed {
    /// Its ask event id (`None` for a failure of no ask: a merger's).
    pub(crate) id: Option<EventId>,
    pub(crate) attempt: u32,
    pub(crate) error: AskError,
    /// What the attempt spent, as its agent reported it.
    pub(crate) usage: Usage,
}

impl Failed {
    /// The attempt as the exhausted ladder's error reports it.
    pub(crate) fn record(
        &self,
        rung: Option<usize>,
        agent: &crate::name::AgentName,
    ) -> AttemptRecord {
        AttemptRecord {
            rung,
            agent: agent.clone(),
            attempt: self.attempt,
            class: self.error.class(),
            error: self.error.clone(),
            usage: self.usage,
        }
    }
}

/// Makes attempts at `task` with `make` until one answers or `run`'s policy gives up.
///
/// Without a policy, or without `copy` (the task cannot be copied for another attempt), one
/// attempt is made. After a failure, in order: the system closed (tripped, shut down) ends
/// it; the policy decides (no retry at or past the deadline); the retry budget is asked for
/// a retry (a refusal ends it with [`AskError::RetryRefused`]); the wait is on the tokio
/// clock, after which the system is checked again.
pub(crate) async fn run_attempts<A, F, Fut>(
    slot: &Slot<A>,
    run: Attempts<'_>,
    task: A::Task,
    copy: Option<CopyTask<A>>,
    feedback: Option<Feedback>,
    mut make: F,
) -> Tried<A::Output>
where
    A: Agent,
    F: FnMut(Try<A>) -> Fut + Send,
    Fut: Future<Output = (Result<A::Output, AskError>, Usage)> + Send,
{
    let started = Instant::now();
    let retries = &slot.shared.retries;
    if run.first_deposits {
        if let Some(budget) = &retries.budget {
            budget.deposit_at(started);
        }
    }
    let task_type = A::task_type(&task);
    // A task that cannot be copied is tried once.
    let policy = run.policy.filter(|_| copy.is_some());
    let max_attempts = policy.map_or(1, RetryPolicy::max_attempts);
    let mut task = Some(task);
    let mut feedback = feedback;
    let mut failures = Vec::new();
    let mut previous_delay = None;
    let mut number = 1;
    loop {
        let left = run.deadline.saturating_duration_since(Instant::now());
        let Some(this) = next_task(&mut task, copy, number < max_attempts) else {
            break;
        };
        if left.is_zero() && number > 1 {
            break;
        }
        let id = match run.first_id.filter(|_| number == 1) {
            Some(first) => first,
            None => slot.shared.ids.next(),
        };
        // Each attempt within the one deadline, and within the policy's attempt timeout.
        let timeout = policy
            .and_then(RetryPolicy::attempt_timeout)
            .map_or(left, |bound| bound.min(left));
        let attempt = Try {
            task: this,
            timeout,
            id,
            feedback: feedback.take(),
            retryable: number < max_attempts,
        };
        let (result, usage) = make(attempt).await;
        let error = match result {
            Ok(output) => {
                return Tried {
                    result: Ok(output),
                    failures,
                }
            }
            Err(error) => error,
        };
        let failed = Failed {
            id: Some(id),
            attempt: number,
            error,
            usage,
        };
        let now = Instant::now();
        let decision = match policy {
            Some(policy) => {
                let timing = Timing {
                    started,
                    deadline: run.deadline,
                    previous_delay,
                    now,
                };
                decide(slot, policy, &failed, timing, run.retry_invalid_output)
            }
            None => Decision::GiveUp(overseer_retry::GiveUpReason::AttemptsExhausted),
        };
        let notice = Notice {
            slot,
            task_type,
            failed: &failed,
        };
        match decision {
            Decision::GiveUp(reason) => {
                if policy.is_some() {
                    notice.publish(RetryStep::GaveUp { reason });
                }
                failures.push(failed);
                return ended(failures);
            }
            Decision::Retry(delay) => {
                if let Some(budget) = &retries.budget {
                    if let Err(refused) = budget.withdraw_at(now) {
                        notice.publish(RetryStep::Refused {
                            balance: refused.balance,
                        });
                        let last = Box::new(failed.error.clone());
                        failures.push(failed);
                        return Tried {
                            result: Err(AskError::RetryRefused {
                                agent: slot.name.clone(),
                                last,
                            }),
                            failures,
                        };
                    }
                }
                notice.publish(RetryStep::Retrying { delay });
                tracing::debug!(agent = %slot.name, task_type, attempt = number, ?delay, error = %failed.error, "retrying");
                // A trip during the wait ends it at once: no retry follows a trip.
                tokio::select! {
                    () = tokio::time::sleep_until(now + delay) => {}
                    () = slot.shared.tripped() => {}
                }
                if !slot.shared.is_open() {
                    let reason = overseer_retry::GiveUpReason::Cancelled;
                    Notice {
                        slot,
                        task_type,
                        failed: &failed,
                    }
                    .publish(RetryStep::GaveUp { reason });
                    failures.push(failed);
                    return ended(failures);
                }
                feedback = Some(Feedback::new(number, failed.error.clone()));
                failures.push(failed);
                previous_delay = Some(delay);
                number += 1;
            }
        }
    }
    // The deadline passed between attempts (never, as no wait ends at or past it, but a
    // deadline is a deadline).
    let timeout = AskError::Timeout {
        agent: slot.name.clone(),
        after: run.timeout,
    };
    Tried {
        result: Err(timeout),
        failures,
    }
}

/// The task for the next attempt: a copy while more attempts may follow, else the task itself.
fn next_task<T>(task: &mut Option<T>, copy: Option<fn(&T) -> T>, more: bool) -> Option<T> {
    match (more, copy, task.as_ref()) {
        (true, Some(copy), Some(kept)) => Some(copy(kept)),
        _ => task.take(),
    }
}

/// A run that ended on its last failure.
fn ended<O>(failures: Vec<Failed>) -> Tried<O> {
    let error = failures
        .last()
        .map_or(AskError::ShutDown, |last| last.error.clone());
    Tried {
        result: Err(error),
        failures,
    }
}

/// What to do after a failed attempt.
enum Decision {
    Retry(Duration),
    GiveUp(overseer_retry::GiveUpReason),
}

/// When a failed attempt stands.
struct Timing {
    started: Instant,
    deadline: Instant,
    previous_delay: Option<Duration>,
    now: Instant,
}

/// The policy's decision after `failed`, unless the system has closed (no retry once the kill
/// switch has tripped or the system shut down).
fn decide<A: Agent>(
    slot: &Slot<A>,
    policy: &RetryPolicy,
    failed: &Failed,
    timing: Timing,
    retry_invalid_output: bool,
) -> Decision {
    if !slot.shared.is_open() {
        return Decision::GiveUp(overseer_retry::GiveUpReason::Cancelled);
    }
    let class = match failed.error.class() {
        ErrorClass::InvalidOutput if retry_invalid_output => ErrorClass::Transient,
        class => class,
    };
    let attempt = Attempt::new(failed.attempt, class)
        .with_elapsed(timing.now.saturating_duration_since(timing.started))
        .with_remaining_deadline(Some(timing.deadline.saturating_duration_since(timing.now)))
        .with_previous_delay(timing.previous_delay);
    match slot.shared.retries.decide(policy, &attempt) {
        RetryDecision::RetryAfter(delay) => Decision::Retry(delay),
        RetryDecision::GiveUp(reason) => Decision::GiveUp(reason),
    }
}

/// The facts a retry event is made of.
pub(crate) struct Notice<'a, A: Agent> {
    pub(crate) slot: &'a Slot<A>,
    pub(crate) task_type: &'static str,
    pub(crate) failed: &'a Failed,
}

impl<A: Agent> Notice<'_, A> {
    /// Publishes `step` about the failed attempt, caused by its ask (nothing is built if
    /// nobody subscribes).
    pub(crate) fn publish(&self, step: RetryStep) {
        let shared = &self.slot.shared;
        if !shared.has_subscribers() {
            return;
        }
        let meta = shared.meta(self.failed.id, self.slot.path().cloned());
        let class: ErrorClass = self.failed.error.class();
        shared.publish(SystemEvent::Retry(RetryEvent {
            id: meta.id,
            caused_by: meta.caused_by,
            elapsed: meta.elapsed,
            path: meta.path,
            agent: self.slot.name.clone(),
            task_type: Cow::Borrowed(self.task_type),
            attempt: self.failed.attempt,
            class,
            message: self.failed.error.to_string(),
            step,
        }));
    }
}
