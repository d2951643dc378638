//! `AgentRef`: a typed handle that always reaches an agent's current incarnation.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use overseer_budget::{FleetHold, Refusal, Reservation, Spend};
use tokio::time::Instant;
use tracing::Instrument;

use overseer_supervisor::EventId;

use crate::agent::Agent;
use crate::context::TaskNotes;
use crate::error::AskError;
use crate::event::{BudgetWarningEvent, SystemEvent};
use crate::feedback::Feedback;
use crate::name::AgentName;
use crate::reply::Waited;
use crate::retry_loop::{Attempts, Tried};
use crate::retry_plan::{CopyTask, RetryPlan};
use crate::settlement::Settlement;
use crate::slot::{Answer, Attempted, Job, JobExtras, JobPart, NotRetried, Slot};
use crate::usage::Metered;

/// A cheap, cloneable, typed handle to an agent, looked up by name from a running
/// [`System`](crate::System). It keeps working across restarts: asks go to the agent's queue,
/// which every incarnation serves in turn.
///
/// Every ask has a deadline (the per-call timeout, else the agent's, else the system's) and
/// ends by it with the output or a typed [`AskError`]:
///
/// | situation | outcome |
/// |---|---|
/// | answered in time | `Ok(output)` |
/// | no answer by the deadline | [`AskError::Timeout`]; a handler still running is treated as hung and the agent is stopped with reason `TimedOut` |
/// | the agent panics or returns a fatal error on this task | [`AskError::Crashed`] at once, with the panic message or error |
/// | the agent is restarting | the ask waits for the new incarnation, or fails with [`AskError::Restarting`] if the agent fails fast |
/// | queued behind a task that crashed | handled by the new incarnation |
/// | the agent is stopped for good | [`AskError::AgentStopped`] at once (queued asks too) |
/// | the system is starting | the ask waits for the agent to start |
/// | the running tree did not start the agent (never placed in it, or not added yet) | [`AskError::NotInTree`] at once (asks queued before the start too) |
/// | the system has shut down | [`AskError::ShutDown`] |
///
/// An agent declared with a retry policy ([`AgentSpec::retry`](crate::AgentSpec::retry)) has
/// its transient and rate-limited failures retried by it, within the same deadline; without
/// one an ask is made once.
pub struct AgentRef<A: Agent> {
    slot: Arc<Slot<A>>,
}

impl<A: Agent> Clone for AgentRef<A> {
    fn clone(&self) -> Self {
        Self {
            slot: Arc::clone(&self.slot),
        }
    }
}

impl<A: Agent> fmt::Debug for AgentRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentRef")
            .field("name", &self.slot.name)
            .field("agent", &std::any::type_name::<A>())
            .finish()
    }
}

impl<A: Agent> AgentRef<A> {
    pub(crate) fn new(slot: Arc<Slot<A>>) -> Self {
        Self { slot }
    }

    pub(crate) fn slot(&self) -> &Slot<A> {
        &self.slot
    }

    /// The agent's name.
    pub fn name(&self) -> &AgentName {
        &self.slot.name
    }

    /// Tasks waiting in the agent's queue now (the one being handled not counted); at most its
    /// capacity ([`AgentSpec::queue_capacity`](crate::AgentSpec::queue_capacity)), unless the
    /// agent lets asks wait for room ([`AgentSpec::wait_for_room`](crate::AgentSpec::wait_for_room)):
    /// those waiting are counted too.
    pub fn queue_len(&self) -> usize {
        self.slot.queue_len()
    }

    /// Asks the agent to handle `task` and waits for the output, at most the agent's default
    /// deadline ([`AgentSpec::ask_timeout`](crate::AgentSpec::ask_timeout), else the system's
    /// [`SystemBuilder::ask_timeout`](crate::SystemBuilder::ask_timeout)). The table on
    /// [`AgentRef`] says how each situation ends.
    ///
    /// # Errors
    /// Refused before the task is queued, so that no handler sees it:
    /// * [`AskError::ShutDown`] or [`AskError::KillSwitchTripped`]: the system is closed;
    /// * [`AskError::AgentStopped`], [`AskError::NotInTree`], or [`AskError::Restarting`] (an
    ///   agent that fails fast while it restarts): the agent takes no asks;
    /// * [`AskError::BreakerOpen`]: the breaker of (agent, task type) is open;
    /// * [`AskError::BudgetExceeded`]: the task's estimate would cross a budget limit;
    /// * [`AskError::QueueFull`]: the agent's queue holds its capacity (what admitting the
    ///   task took is released at once); an agent that lets asks wait for room
    ///   ([`AgentSpec::wait_for_room`](crate::AgentSpec::wait_for_room)) keeps it in line
    ///   instead, until room comes or its deadline ([`AskError::Timeout`]).
    ///
    /// Once queued:
    /// * [`AskError::Timeout`]: no answer by the deadline (a handler still running is treated
    ///   as hung: the agent is stopped with [`ExitReason::TimedOut`]);
    /// * [`AskError::Crashed`]: the handler panicked or failed fatally on this task, or its
    ///   incarnation was killed while it held the task;
    /// * [`AskError::Failed`]: the handler failed the task;
    /// * [`AskError::AgentStopped`], [`AskError::NotInTree`] or [`AskError::Restarting`]: the
    ///   agent stopped for good, the tree started without it, or (an agent that fails fast)
    ///   another ask came while it restarted, as the task waited in its queue;
    /// * [`AskError::ShutDown`] or [`AskError::KillSwitchTripped`]: the system closed while the
    ///   task waited or ran (a trip cancels tasks in flight as its in-flight policy says).
    ///
    /// With a retry policy ([`AgentSpec::retry`](crate::AgentSpec::retry)), the error of the
    /// last attempt when the policy gives up, or [`AskError::RetryRefused`] when the system's
    /// retry budget refuses a retry.
    ///
    /// Never [`AskError::UnknownAgent`] or [`AskError::WrongAgentType`]: those are the errors
    /// of looking an agent up.
    ///
    /// # Cancel safety
    /// Dropping the future gives the ask up; what becomes of its task depends on how far it
    /// got:
    /// * not polled yet: nothing was done (an ask is made when its future is first polled);
    /// * queued: the task is never run, and what admitting it took is given back (the
    ///   budget's reservation released, the breaker's admission returned uncounted);
    /// * in its handler: the handler is not interrupted. It runs on under the ask's deadline
    ///   (past which it is treated as hung and its agent stopped, as if the caller still
    ///   waited); the spend it reports is committed, and its outcome is not counted by the
    ///   breaker or the error-rate window.
    ///
    /// No [`AskEvent`](crate::AskEvent) is published for an ask given up (the waiting caller
    /// publishes it), though a crash it causes still names it as its cause.
    ///
    /// # Panics
    /// When an admitted ask is polled outside a Tokio runtime with the time driver enabled:
    /// its deadline is a Tokio timer.
    ///
    /// [`ExitReason::TimedOut`]: overseer_supervisor::ExitReason::TimedOut
    // Not an `async fn`: that would wrap `ask_within`'s future in one more state machine.
    #[allow(clippy::manual_async_fn)]
    pub fn ask(
        &self,
        task: A::Task,
    ) -> impl std::future::Future<Output = Result<A::Output, AskError>> + Send + '_ {
        self.ask_within(task, self.default_timeout())
    }

    /// Asks with an explicit deadline for this call: `timeout` from now, instead of the
    /// agent's default. A deadline too far for the clock (`Duration::MAX`) never comes.
    ///
    /// # Errors
    /// As [`ask`](Self::ask); the [`AskError::Timeout`] says `after: timeout`.
    ///
    /// # Cancel safety
    /// As [`ask`](Self::ask).
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    // Not an `async fn`: that would wrap `ask_traced`'s future in one more state machine.
    #[allow(clippy::manual_async_fn)]
    pub fn ask_within(
        &self,
        task: A::Task,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<A::Output, AskError>> + Send + '_ {
        self.ask_traced(task, timeout, (), Answer::into_outcome)
    }

    /// Asks as [`ask`](Self::ask) does, and returns with the output what the ask cost: the
    /// usage its handler reported (its model calls), for a caller that accounts for it, as
    /// [`AgentContext::step_with_spend`](crate::AgentContext::step_with_spend) does for a
    /// sub-ask inside a durable step. One attempt: the agent's retry policy does not apply (its
    /// attempts' usage would be one ask's).
    ///
    /// # Errors
    /// As [`ask`](Self::ask).
    ///
    /// # Cancel safety
    /// As [`ask`](Self::ask).
    ///
    /// # Panics
    /// As [`ask`](Self::ask).
    pub async fn ask_metered(&self, task: A::Task) -> Result<Metered<A::Output>, AskError> {
        let timeout = self.default_timeout();
        self.ask_traced(task, timeout, NotRetried, Answer::into_metered)
            .await
    }

    /// An ask under the agent's retry policies: boxed and out of line, so that a plain ask
    /// holds one pointer for it and none of its code.
    #[cold]
    #[inline(never)]
    fn ask_retried<'a>(
        &'a self,
        task: A::Task,
        timeout: Duration,
        plan: &'a RetryPlan<A>,
        first_id: Option<EventId>,
    ) -> BoxFuture<'a, Result<A::Output, AskError>> {
        let policy = plan.policy_for(A::task_type(&task));
        let deadline = overseer_supervisor::deadline_after(Instant::now(), timeout);
        Box::pin(async move {
            let run = Attempts {
                policy,
                deadline,
                timeout,
                first_deposits: true,
                retry_invalid_output: false,
                first_id,
            };
            self.attempts(task, run, Some(plan.copy), None).await.result
        })
    }

    /// Asks `task` under `run`'s policy (copied by `copy` for each attempt but the last; tried
    /// once without it), the failure of the attempt before fed to the next (`feedback` to the
    /// first), and reports every attempt.
    pub(crate) async fn attempts(
        &self,
        task: A::Task,
        run: Attempts<'_>,
        copy: Option<CopyTask<A>>,
        feedback: Option<Feedback>,
    ) -> Tried<A::Output> {
        crate::retry_loop::run_attempts(self.slot(), run, task, copy, feedback, move |attempt| {
            let part = Attempted {
                id: attempt.id,
                durable: None,
                feedback: attempt.feedback,
            };
            self.ask_traced(attempt.task, attempt.timeout, part, Answer::into_spent)
        })
        .await
    }

    /// An ask with its tracing span and its event: the body of every ask. `finish` makes the
    /// caller's result of the answer.
    pub(crate) async fn ask_traced<R>(
        &self,
        task: A::Task,
        timeout: Duration,
        durable: impl JobPart<A>,
        finish: impl FnOnce(Answer<A::Output>) -> R,
    ) -> R {
        // An ask of an agent with a retry policy goes round its retry loop (whose attempts
        // come back here, with a part that is not retried again): one branch, and one pointer
        // in this future, for a plain ask.
        if durable.retried_here() && self.slot.routed {
            // While flagged as over-confident, its outputs go to an inspector (`inspector_route`).
            if let Some(watch) = &self.slot.shared.semantic {
                let routed =
                    crate::inspector_route::flagged_route(watch, &self.slot, A::task_type(&task));
                if let Some((route, flag)) = routed {
                    let result = route.ask(Arc::clone(&self.slot), task, flag).await;
                    return finish(Answer::of_result(result));
                }
            }
            if let Some(plan) = &self.slot.classifier.retry {
                // A preassigned id (a cohort's member) names the first attempt.
                let first = durable.preassigned_id();
                let result = self.ask_retried(task, timeout, plan, first).await;
                return finish(Answer::of_result(result));
            }
        }
        let task_type = A::task_type(&task);
        let span = tracing::info_span!(
            "ask",
            agent = %self.slot.name,
            task_type,
            event_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
            latency_us = tracing::field::Empty,
            input_tokens = tracing::field::Empty,
            output_tokens = tracing::field::Empty,
            cost_micros = tracing::field::Empty,
            model = tracing::field::Empty,
        );
        let asked_at = Instant::now();
        let id = match durable.preassigned_id() {
            Some(id) => id,
            None => self.slot.shared.ids.next(),
        };
        // The ask event's id, so the span's lines (the handler's among them) join the stream.
        span.record("event_id", id.get());
        let round_trip = self.round_trip(task, id, asked_at, timeout, durable);
        // Without a subscriber the span is disabled: skip the wrapper's cost.
        let answer = if span.is_disabled() {
            round_trip.await
        } else {
            round_trip.instrument(span.clone()).await
        };
        self.record(&span, id, task_type, &answer, asked_at);
        finish(answer)
    }

    /// Sends `task` without waiting for the outcome. The task still has a deadline (the
    /// agent's default), past which its handler is treated as hung. Nobody is answered: a
    /// tell's end is published as an [`AskEvent`](crate::AskEvent) by the agent (its spend and
    /// outcome count for budgets and breakers as an ask's do).
    ///
    /// # Errors
    /// At once, the refusals of [`ask`](Self::ask): [`AskError::ShutDown`],
    /// [`AskError::KillSwitchTripped`], [`AskError::AgentStopped`], [`AskError::NotInTree`],
    /// [`AskError::Restarting`], [`AskError::BreakerOpen`], [`AskError::BudgetExceeded`],
    /// [`AskError::QueueFull`] (a tell never waits for room). What happens after the task is
    /// queued is published, not returned: a task that races
    /// with the agent stopping for good, for one, is failed with its queue.
    pub fn tell(&self, task: A::Task) -> Result<(), AskError> {
        let id = self.slot.shared.ids.next();
        // A tell holds nothing in a shared limit (it does not wait): its spend is charged there.
        let settlement = self.admit(&task, id, &mut (), None)?;
        let asked_at = Instant::now();
        let job = Job {
            task,
            reply: None,
            deadline: overseer_supervisor::deadline_after(asked_at, self.default_timeout()),
            asked_at,
            settlement,
            id,
            made_in: self.slot.shared.lineage_here(),
            extras: None,
        };
        // A tell never waits for room: nobody would.
        if self.slot.enqueue(job, self.slot.config.queue_capacity) {
            Ok(())
        } else {
            Err(self.queue_full())
        }
    }

    /// The admission checks before a task is queued, in order: the system is open (kill
    /// switch, shutdown), the agent takes asks, the breaker of (agent, task type) admits it,
    /// and the budget holds the task's estimate (reserved until the task ends; by the ask
    /// itself, or before it for a vote's sample: `part`'s reservation), with `shared`, the
    /// task's hold on the budget's shared limit, attached to it.
    // Not inlined into the plain path when shared with a retry loop's attempts unless asked:
    // `reserve` and `record` are forced, this one hinted.
    #[inline]
    fn admit<D: JobPart<A>>(
        &self,
        task: &A::Task,
        id: EventId,
        part: &mut D,
        shared: Option<FleetHold>,
    ) -> Result<Option<Arc<Settlement>>, AskError> {
        if let Some(refusal) = self.slot.refusal() {
            return Err(refusal);
        }
        let permit = match self.slot.breaker(A::task_type(task)) {
            None => None,
            Some(breaker) => match breaker.try_acquire() {
                Ok(mut permit) => {
                    if let Some(transition) = permit.take_transition() {
                        let path = self.slot.path().cloned();
                        self.slot.shared.publish_transition(&transition, id, path);
                    }
                    Some(permit)
                }
                Err(rejected) => {
                    return Err(AskError::BreakerOpen {
                        agent: self.slot.name.clone(),
                        task_type: Cow::Borrowed(A::task_type(task)),
                        state: rejected.state,
                        retry_after: rejected.retry_after,
                    })
                }
            },
        };
        let mut reservation = if D::PREPAID {
            part.take_reservation()
        } else {
            self.reserve(task, id)?
        };
        if let Some(hold) = shared {
            if let Some(reservation) = &mut reservation {
                reservation.attach_shared(hold);
            }
        }
        Ok(Settlement::new(permit, reservation))
    }

    /// Holds a task's `estimate` in the budget's shared limit, if it has one: before the local
    /// admission, so that the processes sharing the limit never reserve past it together.
    async fn hold_shared(&self, estimate: Spend) -> Result<Option<FleetHold>, AskError> {
        let Some(budget) = &self.slot.shared.budget else {
            return Ok(None);
        };
        if let Some(refusal) = self.slot.refusal() {
            return Err(refusal);
        }
        budget
            .hold_shared(estimate)
            .await
            .map_err(|refusal| self.refused(refusal))
    }

    #[inline(always)]
    pub(crate) fn reserve(
        &self,
        task: &A::Task,
        id: EventId,
    ) -> Result<Option<Reservation>, AskError> {
        let Some(budget) = &self.slot.shared.budget else {
            return Ok(None);
        };
        let estimate = self.slot.estimate(task);
        // An admission can trip the kill switch (past the deadline): this ask caused it.
        let account = self.slot.account(budget);
        let admitted = crate::cause::during_ask(id, self.slot.path(), || {
            budget.admit_to(account, estimate.into())
        });
        match admitted {
            Ok(reservation) => {
                // Tiers are reached by reservations: warn now, before the task runs.
                for warning in reservation.warnings() {
                    let meta = self.slot.shared.meta(Some(id), self.slot.path().cloned());
                    self.slot.shared.publish(SystemEvent::BudgetWarning(
                        BudgetWarningEvent::stamped(meta, warning.clone()),
                    ));
                }
                Ok(Some(reservation))
            }
            Err(Refusal::Tripped { reason }) => Err(AskError::KillSwitchTripped { reason }),
            Err(refusal) => Err(self.refused(refusal)),
        }
    }

    /// `count` reservations of `task`'s estimate at once (a vote's worst case), all or none;
    /// empty without a budget.
    pub(crate) fn reserve_many(
        &self,
        task: &A::Task,
        id: EventId,
        count: usize,
    ) -> Result<Vec<Reservation>, AskError> {
        let Some(budget) = &self.slot.shared.budget else {
            return Ok(Vec::new());
        };
        let estimate = self.slot.estimate(task);
        let admitted = crate::cause::during_ask(id, self.slot.path(), || {
            budget.admit_many(self.slot.name.as_str(), estimate.into(), count)
        });
        let reservations = admitted.map_err(|refusal| self.refused(refusal))?;
        for reservation in &reservations {
            self.warn(reservation, id);
        }
        Ok(reservations)
    }

    /// Publishes the budget tiers `reservation` reached: warned now, before the task runs.
    fn warn(&self, reservation: &Reservation, id: EventId) {
        for warning in reservation.warnings() {
            let meta = self.slot.shared.meta(Some(id), self.slot.path().cloned());
            self.slot
                .shared
                .publish(SystemEvent::BudgetWarning(BudgetWarningEvent::stamped(
                    meta,
                    warning.clone(),
                )));
        }
    }

    /// The ask error of a budget refusal.
    #[cold]
    fn refused(&self, refusal: Refusal) -> AskError {
        self.slot.budget_refusal(refusal)
    }

    /// An ask as inspections and votes make it, under the agent's default deadline: its id,
    /// and its answer with the usage reported (its event published, without a span).
    pub(crate) async fn ask_answer<D: JobPart<A>>(
        &self,
        task: A::Task,
        part: D,
    ) -> (EventId, Answer<A::Output>) {
        let task_type = A::task_type(&task);
        let asked_at = Instant::now();
        let id = self.slot.shared.ids.next();
        let timeout = self.default_timeout();
        let answer = self.round_trip(task, id, asked_at, timeout, part).await;
        self.record(&tracing::Span::none(), id, task_type, &answer, asked_at);
        (id, answer)
    }

    pub(crate) fn default_timeout(&self) -> Duration {
        self.slot
            .config
            .ask_timeout
            .unwrap_or(self.slot.shared.default_ask_timeout)
    }

    pub(crate) async fn round_trip<D: JobPart<A>>(
        &self,
        task: A::Task,
        id: EventId,
        asked_at: Instant,
        timeout: Duration,
        mut durable: D,
    ) -> Answer<A::Output> {
        // Only a budget with a shared limit waits for a hold (the plain path never polls it).
        let shared = if self.slot.fleet_wide {
            // The estimate is read before the wait: a task need not be `Sync`.
            let estimate = self.slot.estimate(&task).into();
            // Boxed: the plain path's future does not carry the hold's (a database round trip).
            match Box::pin(self.hold_shared(estimate)).await {
                Ok(hold) => hold,
                Err(refusal) => return Answer::error(refusal),
            }
        } else {
            None
        };
        let settlement = match self.admit(&task, id, &mut durable, shared) {
            Ok(admitted) => admitted,
            Err(refusal) => return Answer::error(refusal),
        };
        let deadline = overseer_supervisor::deadline_after(asked_at, timeout);
        let (reply, mut answer) = crate::reply::channel();
        let job = Job {
            task,
            reply: Some(reply),
            deadline,
            asked_at,
            settlement: settlement.clone(),
            id,
            made_in: self.slot.shared.lineage_here(),
            extras: observed(durable.into_extras()),
        };
        if !self.slot.enqueue(job, self.slot.ask_limit) {
            return Answer::error(self.queue_full());
        }
        // The agent's one timer watches this deadline with the others in flight.
        self.slot.deadlines().watch(deadline, answer.expiring());
        let unanswered = match answer.wait().await {
            Waited::Answered(answered) => return answered,
            // The incarnation was killed while it held the task.
            Waited::Dropped => self.killed(settlement.as_deref(), id),
            Waited::Expired => {
                let timeout = AskError::Timeout {
                    agent: self.slot.name.clone(),
                    after: timeout,
                };
                if self.settle_timeout(settlement.as_deref(), id, &timeout, deadline - asked_at) {
                    // The incarnation settled the ask as its deadline passed: its answer is on
                    // its way (it is sent right after the settlement, without a wait).
                    answer.ignore_expiry();
                    if let Waited::Answered(answered) = answer.wait().await {
                        return answered;
                    }
                }
                timeout
            }
        };
        // The handler may have marked the task before it hung or was killed.
        Answer {
            notes: TaskNotes::of_injected(self.slot.injected.of(id)),
            ..Answer::error(unanswered)
        }
    }

    /// The refusal of an ask or tell that found the queue full.
    fn queue_full(&self) -> AskError {
        AskError::QueueFull {
            agent: self.slot.name.clone(),
            capacity: self.slot.config.queue_capacity,
        }
    }

    /// Settles an ask whose deadline passed before its answer came, unless the incarnation
    /// did already; returns whether it did (its answer is then on its way). Recorded before
    /// the caller hears of the timeout, so that a retry meets a breaker that has counted it.
    fn settle_timeout(
        &self,
        settlement: Option<&Settlement>,
        id: EventId,
        timeout: &AskError,
        waited: Duration,
    ) -> bool {
        let Some(settlement) = settlement else {
            return false;
        };
        let Some(taken) = settlement.take() else {
            return true;
        };
        let verdict = self.slot.error_verdict(timeout, waited);
        taken.settle(&self.slot.shared, id, self.slot.path(), Some(verdict));
        false
    }

    /// The error of an ask whose incarnation was killed while it held the task; the spend
    /// its handler reported is committed now, and the kill is not counted by the breaker.
    fn killed(&self, settlement: Option<&Settlement>, id: EventId) -> AskError {
        if let Some(taken) = settlement.and_then(Settlement::take) {
            taken.settle(&self.slot.shared, id, self.slot.path(), None);
        }
        // Killed by a shutdown or by the kill switch: say so, not that the agent crashed.
        if let Some(closed) = self.slot.shared.closed() {
            return closed;
        }
        AskError::Crashed {
            agent: self.slot.name.clone(),
            reason: self
                .slot
                .last_exit()
                .unwrap_or(overseer_supervisor::ExitReason::Killed),
        }
    }

    #[inline(always)]
    pub(crate) fn record(
        &self,
        span: &tracing::Span,
        id: EventId,
        task_type: &'static str,
        answer: &Answer<A::Output>,
        asked_at: Instant,
    ) {
        self.slot.publish_ask_event(id, task_type, answer, asked_at);
        if span.is_disabled() {
            return;
        }
        let usage = answer.usage;
        let outcome = match &answer.outcome {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        span.record("outcome", outcome);
        span.record("latency_us", asked_at.elapsed().as_micros() as u64);
        span.record("input_tokens", usage.input_tokens);
        span.record("output_tokens", usage.output_tokens);
        span.record("cost_micros", usage.cost_micros);
        if let Some(model) = answer.model() {
            span.record("model", model);
        }
    }
}

/// A job's extras, with the ask marked observed when a tracing subscriber is set: its handler
/// then runs as the ask being handled, inside the ask's span (the current span of the round
/// trip), so the asks it makes are its children. One atomic load for an ask nobody traces.
/// (Events need no extras: with subscribers, the agent runs the handler as the ask itself.)
#[inline(always)]
fn observed<A: Agent>(extras: Option<Box<JobExtras<A>>>) -> Option<Box<JobExtras<A>>> {
    if tracing::dispatcher::has_been_set() {
        return mark_observed(extras);
    }
    extras
}

#[cold]
#[inline(never)]
fn mark_observed<A: Agent>(extras: Option<Box<JobExtras<A>>>) -> Option<Box<JobExtras<A>>> {
    let mut extras = extras.unwrap_or_else(|| Box::new(JobExtras::new()));
    extras.observed = Some(tracing::Span::current());
    Some(extras)
}

/// An output and the agent that produced it (see [`AgentRef::ask_with_fallback`] and
/// [`AgentRef::ask_escalating`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Answered<O> {
    /// The agent that answered.
    pub by: AgentName,
    /// Its output.
    pub output: O,
}
