//! An agent's actor: it takes tasks from its slot, and survives its agent's failures so that
//! the agent is rebuilt in the same actor: by the actor itself when the supervisor's decision
//! can only be that (one_for_one), else by the supervisor ([`AgentInPlace`]). The agent value
//! is held by the slot, which the actor takes it from for each task.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use overseer_budget::Reservation;
use overseer_supervisor::{
    child_reply, panic_message, AfterFailure, ChildExit, ChildPath, ExitReason, FailureReporter,
    InPlaceChild, StartError,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument;

use crate::agent::Agent;
use crate::cancellation::unless_cancelled;
use crate::cause::{self, Lineage};
use crate::context::AgentContext;
use crate::durable::{DurableRun, LetterSource};
use crate::error::{AgentError, AskError, StepError};
use crate::event::SystemEvent;
use crate::feedback::Feedback;
use crate::health::{Health, HealthChange, HealthEvent};
use crate::message::AgentMsg;
use crate::outcome::{finish_run, judge, settle, Ended, Handled, Stall};
use crate::settlement::{Settlement, Verdict};
use crate::shared::Observers;
use crate::slot::{Answer, DurableJob, Job, JobExtras, ParkAttempt, Reply, Slot};
use crate::spec::Factory;
use crate::validation::check_judged;

pub(crate) struct AgentActor<A: Agent> {
    pub(crate) slot: Arc<Slot<A>>,
    /// Where a failure is reported instead of exiting (a restart in place).
    pub(crate) reporter: FailureReporter,
}

pub(crate) struct AgentArgs<A: Agent> {
    pub(crate) factory: Factory<A>,
    pub(crate) path: ChildPath,
    pub(crate) previous_exit: Option<ExitReason>,
}

/// The actor's own state; the agent itself is held by the slot.
pub(crate) struct AgentState<A: Agent> {
    context: AgentContext,
    factory: Factory<A>,
    /// The task that sends the actor its health checks, if the agent has one.
    health_checks: Option<tokio::task::AbortHandle>,
}

/// The supervisor's handle for restarting an agent in place. An idle agent is parked, and a
/// parked one rebuilt, by the supervisor itself (the agent is held by the slot): no message to
/// the actor and back. Only an agent that is working is parked by its actor, after the task.
pub(crate) struct AgentInPlace<A: Agent> {
    pub(crate) actor: ActorRef<AgentMsg>,
    pub(crate) slot: Arc<Slot<A>>,
    pub(crate) factory: Factory<A>,
    pub(crate) path: ChildPath,
}

impl<A: Agent> InPlaceChild for AgentInPlace<A> {
    fn stopping(&self) {
        // A polite stop is taken between messages: the serving loop returns to ractor.
        self.slot.request_yield();
    }

    fn park(&self) -> BoxFuture<'static, Result<(), StartError>> {
        match self.slot.park_idle() {
            ParkAttempt::Parked => futures::future::ready(Ok(())).boxed(),
            ParkAttempt::InUse => {
                let (done, parked) = oneshot::channel();
                // The message first, then the loop asked back to ractor: so the park is taken
                // before any wake the loop sends as it returns.
                let sent = self.actor.send_message(AgentMsg::Park(done)).is_ok();
                self.slot.request_yield();
                child_reply(sent, parked)
            }
        }
    }

    fn rebuild(&self, previous_exit: ExitReason) -> BoxFuture<'static, Result<(), StartError>> {
        if !self.slot.is_parked() {
            let error = StartError::failed("the agent to rebuild is not parked");
            return futures::future::ready(Err(error)).boxed();
        }
        let slot = Arc::clone(&self.slot);
        let factory = Arc::clone(&self.factory);
        let actor = self.actor.clone();
        let path = self.path.clone();
        async move {
            // On the supervisor's task, which waits for the rebuild anyway (as OTP's supervisor
            // waits for a child's `init`).
            let mut context = slot.context(path);
            let agent = build(&factory, &mut context, Some(&previous_exit)).await?;
            slot.put_agent(agent);
            slot.install(actor);
            Ok(())
        }
        .boxed()
    }
}

impl<A: Agent> Actor for AgentActor<A> {
    type Msg = AgentMsg;
    type State = AgentState<A>;
    type Arguments = AgentArgs<A>;

    async fn pre_start(
        &self,
        _myself: ActorRef<AgentMsg>,
        args: AgentArgs<A>,
    ) -> Result<AgentState<A>, ActorProcessingErr> {
        // A new actor is a new incarnation: what the one before it spawned (it was killed, so
        // nothing else ended its tasks) is aborted first.
        self.slot.tasks.abort_all();
        let mut context = self.slot.context(args.path);
        let agent = build(&args.factory, &mut context, args.previous_exit.as_ref())
            .await
            .map_err(|error| ChildExit::new(ExitReason::Failed(error.to_string())))?;
        self.slot.put_agent(agent);
        Ok(AgentState {
            context,
            factory: args.factory,
            health_checks: None,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        state.health_checks = self.schedule_health_checks(&myself);
        self.slot.install(myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(checks) = state.health_checks.take() {
            checks.abort();
        }
        self.slot.uninstall(&myself, ExitReason::Shutdown);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        message: AgentMsg,
        state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            AgentMsg::Wake => self.serve(&myself, state).await,
            AgentMsg::Park(done) => {
                self.slot.drop_agent();
                let _ = done.send(());
                Ok(())
            }
            AgentMsg::CheckHealth => self.check_health(&myself, state).await,
        }
    }
}

/// Makes an agent and runs its start hook (`on_restart` after an exit), catching a panic.
async fn build<A: Agent>(
    factory: &Factory<A>,
    context: &mut AgentContext,
    previous_exit: Option<&ExitReason>,
) -> Result<A, StartError> {
    let attempt = async {
        let mut agent = factory();
        let started = match previous_exit {
            Some(reason) => agent.on_restart(context, reason).await,
            None => agent.on_start(context).await,
        };
        started.map(|()| agent)
    };
    match AssertUnwindSafe(attempt).catch_unwind().await {
        Ok(Ok(agent)) => Ok(agent),
        Ok(Err(error)) => Err(StartError::Failed(error.to_string())),
        Err(payload) => Err(StartError::Panicked(panic_message(payload))),
    }
}

impl<A: Agent> AgentActor<A> {
    /// Starts the task that sends this actor a health check every interval, if the agent has
    /// one: at most one waits in the mailbox, and the task ends with the actor.
    fn schedule_health_checks(
        &self,
        myself: &ActorRef<AgentMsg>,
    ) -> Option<tokio::task::AbortHandle> {
        let check = self.slot.config.liveness.as_deref()?.health?;
        let slot = Arc::downgrade(&self.slot);
        let actor = myself.clone();
        let ticks = async move {
            let every = check.interval();
            let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(slot) = slot.upgrade() else { return };
                if slot.schedule_health_check() {
                    if actor.send_message(AgentMsg::CheckHealth).is_err() {
                        return;
                    }
                    // A serving loop returns to ractor for the check (taken if idle).
                    slot.request_yield();
                }
            }
        };
        Some(tokio::spawn(ticks).abort_handle())
    }

    /// Runs the agent's health check if it is idle (nothing queued, not parked, the system
    /// open): counts it, publishes a failure or a recovery, and after as many failures in a
    /// row as the check allows, fails the incarnation for its supervisor to restart.
    async fn check_health(
        &self,
        myself: &ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.slot.health_check_taken();
        let Some(check) = self.slot.config.liveness.as_deref().and_then(|l| l.health) else {
            return Ok(());
        };
        if self.slot.has_work() || !self.slot.shared.is_open() {
            return Ok(());
        }
        let Some(mut agent) = self.slot.take_agent() else {
            return Ok(());
        };
        let failure = health_check(&mut agent, &mut state.context, check.check_timeout()).await;
        let restart_after = check.failures_before_restart();
        let (change, health) = self.slot.record_health(failure.is_none(), restart_after);
        let restart = change == HealthChange::Restart;
        if failure.is_some() || change == HealthChange::Recovered {
            self.publish_health(health, failure.clone(), restart);
        }
        match failure {
            Some(failure) if restart => {
                let reason = ExitReason::Unhealthy(failure);
                Box::pin(self.failed(myself, state, agent, reason)).await
            }
            _ => {
                self.slot.put_agent(agent);
                Ok(())
            }
        }
    }

    /// Publishes a health check's result (and traces it).
    fn publish_health(&self, health: Health, failure: Option<String>, restarting: bool) {
        let path = self.slot.path().cloned();
        match &failure {
            Some(failure) => {
                tracing::warn!(agent = %self.slot.name, ?health, restarting, failure = %failure, "health check failed")
            }
            None => {
                tracing::info!(agent = %self.slot.name, "health check passed again: the agent takes work")
            }
        }
        let meta = self.slot.shared.meta(None, path);
        self.slot.shared.publish(SystemEvent::Health(HealthEvent {
            id: meta.id,
            caused_by: meta.caused_by,
            elapsed: meta.elapsed,
            path: meta.path,
            agent: self.slot.name.clone(),
            health,
            failure: failure.map(Cow::Owned),
            restarting,
        }));
    }

    /// Takes one task from the slot and runs it; on a failure, parks and reports it, and
    /// rebuilds the agent here when the supervisor's decision is this agent's restart alone.
    async fn serve(
        &self,
        myself: &ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.slot.clear_wake();
        // While the loop below serves, an ask wakes it through the slot's waker, not with a
        // message: one `Wake` through ractor's mailbox starts it, and it returns to ractor when
        // asked to (a stop, a park, a health check) or when it cannot serve.
        let serving = self.slot.begin_serving();
        let (ended, result) = self.serve_loop(myself, state).await;
        drop(serving);
        if ended.wakes_again() && self.slot.has_work() {
            // A task queued while the loop ended, whose wake only touched the waker.
            self.slot.wake();
        }
        result
    }

    /// Serves the queue until it must return to ractor, and says why.
    async fn serve_loop(
        &self,
        myself: &ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
    ) -> (LoopEnd, Result<(), ActorProcessingErr>) {
        loop {
            if self.slot.take_yield() {
                return (LoopEnd::Yielded, Ok(()));
            }
            if !self.slot.shared.is_open() {
                // Tripped or shut down: nothing queued runs any more.
                let closed = self.slot.shared.closed().unwrap_or(AskError::ShutDown);
                self.slot.fail_queued(&closed);
                return (LoopEnd::Closed, Ok(()));
            }
            let Some(mut agent) = self.slot.take_agent() else {
                // Parked: the work waits in the slot for the rebuilt agent.
                return (LoopEnd::Parked, Ok(()));
            };
            let more = match self.run(&mut agent, &mut state.context).await {
                Ok(more) => more,
                // Boxed: a rare path, kept out of the size of the future every task builds.
                Err(reason) => {
                    let failed = Box::pin(self.failed(myself, state, agent, reason)).await;
                    return (LoopEnd::Failed, failed);
                }
            };
            self.slot.put_agent(agent);
            if !more {
                self.slot.work_or_yield().await;
            }
        }
    }

    /// The agent failed: park it, and report the failure or carry out the restart here.
    async fn failed(
        &self,
        myself: &ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
        agent: A,
        reason: ExitReason,
    ) -> Result<(), ActorProcessingErr> {
        drop(agent);
        self.slot.drop_agent();
        self.slot.record_exit(reason.clone());
        match self.reporter.failed(&myself.get_cell(), reason) {
            AfterFailure::RebuildNow(restart) => {
                // The supervisor's decision, carried out here: no message there and back.
                let previous_exit = Some(restart.previous_exit());
                let built = build(&state.factory, &mut state.context, previous_exit).await;
                let rebuilt = built.map(|agent| {
                    self.slot.put_agent(agent);
                    self.slot.install(myself.clone());
                });
                // A failed rebuild leaves the agent parked until the supervisor stops this
                // actor and starts another.
                restart.finish(rebuilt);
                Ok(())
            }
            AfterFailure::Reported => Ok(()),
            AfterFailure::SupervisorGone => {
                let reason = self.slot.last_exit().unwrap_or(ExitReason::Shutdown);
                self.slot.uninstall(myself, reason.clone());
                Err(ChildExit::new(reason).into())
            }
        }
    }

    /// Takes the next task and runs it to its outcome; `Ok` says whether more tasks wait. An
    /// `Err` is the reason the incarnation must exit: a panic, a fatal error, or a handler still
    /// running at the task's deadline (treated as hung).
    ///
    /// The job is taken here and its fields used in place (not passed in or destructured): an
    /// async fn keeps every copy in its future, which is built for every task.
    async fn run(&self, agent: &mut A, context: &mut AgentContext) -> Result<bool, ExitReason> {
        // Take the task.
        let (Some(mut job), more) = self.slot.next_job() else {
            return Ok(false);
        };
        if self.slot.fleet_wide {
            if let Err(refusal) = self.hold_in_fleet(job.settlement.clone()).await {
                self.slot.fail_job(job, refusal);
                return Ok(more);
            }
        }
        let Some(started) = self.begin(&mut job, context) else {
            return Ok(more);
        };
        let judged = match job.extras.take() {
            // A task with extras (of a durable run, or a retry with feedback) takes its own
            // (boxed, out of line) path: `Err`, the task went back to be replayed by the next
            // incarnation.
            Some(extras) => {
                let attempt = Attempt {
                    deadline: job.deadline,
                    asked_at: job.asked_at,
                    id: job.id,
                    made_in: job.made_in,
                    started: started.at,
                    crashed: false,
                };
                self.extras_run(agent, context, *extras, job.task, &mut job.reply, attempt)
                    .await?
            }
            None => {
                // Run it under its deadline, and its watches (the kill switch, heartbeats).
                let reply = job.reply.as_mut();
                let handled = self
                    .handle_task(agent, context, job.task, job.deadline, reply)
                    .await;
                // Judge the outcome (and the output, by its validators).
                let mut judged = self.judge_handled(handled, job.deadline, job.asked_at);
                check_judged(&self.slot, job.id, started.task_type, &mut judged, false);
                judged
            }
        };
        let ended = Ended {
            id: job.id,
            task_type: started.task_type,
            asked_at: job.asked_at,
            started: started.at,
            report: context.end_task(),
            reply: job.reply,
        };
        self.conclude(ended, judged, more)
    }

    /// Settles a task that ended (budget, error rate, breaker, answer, event), and says whether
    /// the incarnation carries on (`Ok`, with whether more tasks wait) or exits.
    #[inline(always)]
    fn conclude(
        &self,
        ended: Ended<A::Output>,
        (result, exit, counted): Judged<A::Output>,
        more: bool,
    ) -> Result<bool, ExitReason> {
        settle(&self.slot, ended, result, counted);
        match exit {
            // The exit's `stopped` event names this ask as its cause.
            Some(reason) => Err(reason),
            None => {
                self.slot.set_exit_cause(None);
                Ok(more)
            }
        }
    }

    /// Starts `job` on the handler's context, or ends it here: a job whose caller gave up
    /// before it started never runs (dropping its settlement releases what admitting it
    /// reserved), and a tell past its deadline ends with a timeout. `None` if it ended.
    #[inline]
    fn begin(&self, job: &mut Job<A>, context: &mut AgentContext) -> Option<Started> {
        if job.reply.as_ref().is_some_and(Reply::is_closed) {
            return None;
        }
        // An ask's deadline is its caller's: a caller that gave up has closed its reply. The
        // clock is read for a tell's deadline and for the breaker's latency.
        let wants_latency = job
            .settlement
            .as_deref()
            .is_some_and(Settlement::wants_latency);
        let at = (job.reply.is_none() || wants_latency).then(Instant::now);
        let task_type = A::task_type(&job.task);
        if job.reply.is_none() && at.is_some_and(|at| at >= job.deadline) {
            let after = job.deadline.saturating_duration_since(job.asked_at);
            let timeout = AskError::Timeout {
                agent: self.slot.name.clone(),
                after,
            };
            let answer = Answer::<()>::error(timeout);
            let ended = (job.id, task_type, job.asked_at);
            self.slot.publish_tell_event(ended, job.made_in, &answer);
            return None;
        }
        let task = (job.id, job.made_in, task_type);
        context.begin_task(job.deadline, task, job.settlement.take());
        self.slot.set_exit_cause(Some(job.id));
        Some(Started { at, task_type })
    }
}

impl<A: Agent> AgentActor<A> {
    /// The ask's result, the incarnation's exit if it must, and whether the outcome counts for
    /// the breaker and the error rate (`handled` is `None` for a task the kill switch
    /// cancelled: it says nothing about the agent's health).
    #[inline(always)]
    fn judge_handled(
        &self,
        handled: Option<Handled<A::Output>>,
        deadline: Instant,
        asked_at: Instant,
    ) -> Judged<A::Output> {
        match handled {
            Some(handled) => {
                let (result, exit) = judge(&self.slot.name, handled, deadline, asked_at);
                (result, exit, true)
            }
            None => (
                Err(self.slot.shared.closed().unwrap_or(AskError::ShutDown)),
                None,
                false,
            ),
        }
    }

    /// The future of a task with extras, boxed and built out of line: a plain task's
    /// [`run`](Self::run) holds one pointer for it and none of its code. The handler sees the
    /// previous attempt's failure while it runs; a task of a durable run goes through
    /// [`run_durable`](Self::run_durable).
    #[cold]
    #[inline(never)]
    fn extras_run<'a>(
        &'a self,
        agent: &'a mut A,
        context: &'a mut AgentContext,
        extras: JobExtras<A>,
        task: A::Task,
        reply: &'a mut Option<Reply<A::Output>>,
        attempt: Attempt,
    ) -> BoxFuture<'a, Result<Judged<A::Output>, ExitReason>> {
        let JobExtras {
            durable,
            feedback,
            judged_later,
            sample,
            observed,
        } = extras;
        let work = async move {
            context.set_feedback(feedback);
            context.set_sample(sample);
            let judged = match durable {
                Some(durable) => {
                    self.run_durable(agent, context, durable, task, reply, attempt)
                        .await
                }
                None => {
                    let task_type = A::task_type(&task);
                    let handled = self
                        .handle_task(agent, context, task, attempt.deadline, reply.as_mut())
                        .await;
                    let mut judged =
                        self.judge_handled(handled, attempt.deadline, attempt.asked_at);
                    let id = attempt.id;
                    check_judged(&self.slot, id, task_type, &mut judged, judged_later);
                    Ok(judged)
                }
            };
            context.set_feedback(None);
            context.set_sample(false);
            judged
        };
        match observed {
            // Observed: the handler runs as the ask being handled (its own asks name it as their
            // parent), inside the ask's span (theirs are its children).
            Some(span) => {
                let lineage = Lineage::under(attempt.id, attempt.made_in);
                Box::pin(cause::handling(lineage, work).instrument(span))
            }
            None => Box::pin(work),
        }
    }

    /// [`run`](Self::run)'s middle for a task of a durable run: the run is claimed by this
    /// incarnation first, the handler runs and is judged; after a crash the task goes back to be
    /// replayed (`Err`, with the exit), otherwise the run's end is journaled before the answer.
    async fn run_durable(
        &self,
        agent: &mut A,
        context: &mut AgentContext,
        durable: Box<DurableJob<A>>,
        task: A::Task,
        reply: &mut Option<Reply<A::Output>>,
        mut attempt: Attempt,
    ) -> Result<Judged<A::Output>, ExitReason> {
        // Until the handler has ended, the task goes back to the queue if this future is
        // dropped: the incarnation was killed with the task in flight.
        let task_type = A::task_type(&task);
        let mut in_flight = InFlight {
            actor: self,
            settlement: context.settlement(),
            feedback: context.previous_failure().cloned(),
            job: Some((durable, reply, attempt)),
        };
        let Some((durable, reply, _)) = in_flight.job.as_mut() else {
            return Err(ExitReason::Shutdown);
        };
        let handled = match self.claim_run(durable, context, task_type).await {
            Err(error) => Some(Handled::Returned(Err(AgentError::step(error)))),
            Ok(()) => {
                self.handle_task(agent, context, task, attempt.deadline, reply.as_mut())
                    .await
            }
        };
        let Some((durable, reply)) = in_flight.disarm() else {
            return Err(ExitReason::Shutdown);
        };
        let mut judged = self.judge_handled(handled, attempt.deadline, attempt.asked_at);
        check_judged(&self.slot, attempt.id, task_type, &mut judged, false);
        let (result, exit, counted) = judged;
        attempt.crashed = exit.is_some();
        match self
            .end_durable(durable, reply, attempt, context, result)
            .await
        {
            Some(result) => Ok((result, exit, counted)),
            // Requeued: the next incarnation answers it.
            None => Err(exit.unwrap_or(ExitReason::Shutdown)),
        }
    }

    /// Holds a task's estimate in the budget's shared limit before it runs, if it was admitted
    /// without a hold there (a tell, a vote's sample, a replay: admitted without waiting), so
    /// that the processes sharing the limit never spend past it together. `Err`: refused (the
    /// fleet's limit, a trip, the limit unreachable); the task fails unrun.
    #[cold]
    #[inline(never)]
    fn hold_in_fleet(
        &self,
        settlement: Option<Arc<Settlement>>,
    ) -> BoxFuture<'_, Result<(), AskError>> {
        Box::pin(async move {
            let (Some(settlement), Some(budget)) = (settlement, &self.slot.shared.budget) else {
                return Ok(());
            };
            let Some(estimate) = settlement.unheld_estimate() else {
                return Ok(());
            };
            match budget.hold_shared(estimate).await {
                Ok(Some(hold)) => {
                    settlement.attach_shared(hold);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(refusal) => Err(self.slot.budget_refusal(refusal)),
            }
        })
    }

    /// Runs the handler on `task` under its deadline and, with a budget, the kill switch's
    /// cancellation (`None`: cancelled by a trip).
    #[inline]
    async fn handle_task(
        &self,
        agent: &mut A,
        context: &mut AgentContext,
        task: A::Task,
        deadline: Instant,
        reply: Option<&mut Reply<A::Output>>,
    ) -> Option<Handled<A::Output>> {
        let shared = &self.slot.shared;
        // With subscribers, the handler runs as the ask it handles: the asks it makes name it.
        let task = (task, shared.observers() & Observers::SUBSCRIBED != 0);
        if self.slot.beats_watched {
            // Boxed: kept out of the size of the future every task builds.
            let task_type = A::task_type(&task.0);
            self.guarded(agent, context, task, task_type, deadline, reply)
                .await
        } else if shared.budget.is_some() {
            // Only the kill switch to watch: inline, subscribed to once the handler waits.
            let work = within_deadline(agent, context, task, deadline, reply);
            unless_cancelled(std::pin::pin!(work), shared).await
        } else {
            Some(within_deadline(agent, context, task, deadline, reply).await)
        }
    }

    /// Runs the handler on `task` under its deadline (as its ask if `task.1`), beside its
    /// watches: the kill switch's cancellation (`None`: cancelled by a trip) with a budget,
    /// and the heartbeat watch ([`Handled::Stalled`] once its task type's heartbeat is silent
    /// past its timeout). Boxed and built out of line, as [`extras_run`](Self::extras_run) is:
    /// a plain task's future holds one pointer for it and none of its code.
    #[cold]
    #[inline(never)]
    fn guarded<'a>(
        &'a self,
        agent: &'a mut A,
        context: &'a mut AgentContext,
        task: (A::Task, bool),
        task_type: &'static str,
        deadline: Instant,
        reply: Option<&'a mut Reply<A::Output>>,
    ) -> BoxFuture<'a, Option<Handled<A::Output>>> {
        Box::pin(self.watched(agent, context, task, task_type, deadline, reply))
    }

    /// [`guarded`](Self::guarded)'s future.
    async fn watched(
        &self,
        agent: &mut A,
        context: &mut AgentContext,
        task: (A::Task, bool),
        task_type: &'static str,
        deadline: Instant,
        reply: Option<&mut Reply<A::Output>>,
    ) -> Option<Handled<A::Output>> {
        let shared = &self.slot.shared;
        let timeout = self.heartbeat_timeout(task_type);
        let pulse = timeout.map(|_| context.watch_beats(Instant::now()));
        let ended = {
            let work = within_deadline(agent, context, task, deadline, reply);
            watch(work, shared, pulse.as_deref(), timeout).await
        };
        context.stop_watching_beats();
        match ended? {
            Ok(handled) => Some(handled),
            Err(silent_for) => {
                let progress = context.last_progress();
                tracing::warn!(agent = %self.slot.name, task_type, silent_ms = silent_for.as_millis() as u64, progress = progress.as_ref().map(tracing::field::display), "agent went silent: no heartbeat within its timeout, stopped as hung");
                Some(Handled::Stalled(Box::new(Stall {
                    timeout: timeout.unwrap_or(silent_for),
                    silent_for,
                    progress,
                })))
            }
        }
    }

    /// The heartbeat timeout a task of `task_type` is watched with, if any.
    fn heartbeat_timeout(&self, task_type: &str) -> Option<std::time::Duration> {
        let liveness = self.slot.config.liveness.as_deref()?;
        liveness.heartbeats.of(task_type)
    }

    /// Claims the run of a durable task for this incarnation and hands it to the context.
    async fn claim_run(
        &self,
        durable: &DurableJob<A>,
        context: &mut AgentContext,
        task_type: &'static str,
    ) -> Result<(), StepError> {
        let Some(journal) = self.slot.shared.journal.clone() else {
            return Err(StepError::Journal {
                message: "the system has no journal".into(),
            });
        };
        let path = self
            .slot
            .path()
            .map_or_else(String::new, ToString::to_string);
        let run = DurableRun::claim(
            journal,
            durable.run.clone(),
            &path,
            0,
            self.slot.shared.step_durability,
            durable.retryable,
        )
        .await?
        .giving_up_to(LetterSource {
            shared: Arc::clone(&self.slot.shared),
            agent: self.slot.name.to_string(),
            agent_type: std::any::type_name::<A>(),
            task_type,
        });
        context.begin_durable(run);
        Ok(())
    }

    /// The budget's reservation for a replay of `task` (none without a budget).
    fn readmit(&self, task: &A::Task) -> Result<Option<Reservation>, overseer_budget::Refusal> {
        let Some(budget) = &self.slot.shared.budget else {
            return Ok(None);
        };
        let estimate = self.slot.estimate(task);
        budget
            .admit_to(self.slot.account(budget), estimate.into())
            .map(Some)
    }

    /// Ends a durable task: after a crash, the task goes back to be replayed (`None`) if its
    /// caller still waits; otherwise the run's end is journaled before the answer.
    async fn end_durable(
        &self,
        durable: Box<DurableJob<A>>,
        reply: &mut Option<Reply<A::Output>>,
        attempt: Attempt,
        context: &mut AgentContext,
        result: Result<A::Output, AskError>,
    ) -> Option<Result<A::Output, AskError>> {
        if attempt.crashed {
            if self
                .requeue_for_replay(reply, attempt, durable, context, &result)
                .is_ok()
            {
                return None;
            }
            // Not requeued (its caller left): the run stays unfinished, to be resumed.
            drop(context.take_durable());
            return Some(result);
        }
        let run = context.take_durable();
        Some(finish_run(&self.slot.name, run, &durable, result).await)
    }

    /// The incarnation crashed on a durable task whose caller still waits: the attempt is
    /// settled as a crash (the breaker counts it) and the task goes back first in the queue,
    /// for the next incarnation to replay the run. `Err` gives the run back when it cannot be
    /// requeued (its caller left, or its input no longer reads as a task).
    fn requeue_for_replay(
        &self,
        reply: &mut Option<Reply<A::Output>>,
        attempt: Attempt,
        durable: Box<DurableJob<A>>,
        context: &mut AgentContext,
        result: &Result<A::Output, AskError>,
    ) -> Result<(), Box<DurableJob<A>>> {
        let latency = attempt.started.map(|started| started.elapsed());
        let verdict = self.slot.verdict(result, latency.unwrap_or_default());
        let settlement = context.settlement();
        let feedback = context.take_feedback();
        self.requeue(durable, reply, attempt, settlement, Some(verdict), feedback)?;
        drop(context.end_task());
        drop(context.take_durable());
        Ok(())
    }

    /// Puts a durable task back first in the queue, for the next incarnation to replay its
    /// run, if its caller still waits: the attempt that ended is settled (with `verdict`, its
    /// outcome counted) and the ask's settlement opened again for the replay, which the budget
    /// admits again (not the breaker: the ask was admitted once). `Err` gives the run back
    /// when it cannot be requeued: its caller left or settled it, its input no longer reads as
    /// a task, or the budget refuses the replay. `Ok` holds nothing: the run went with the job.
    fn requeue(
        &self,
        durable: Box<DurableJob<A>>,
        reply: &mut Option<Reply<A::Output>>,
        attempt: Attempt,
        settlement: Option<Arc<Settlement>>,
        verdict: Option<Verdict>,
        feedback: Option<Feedback>,
    ) -> Result<(), Box<DurableJob<A>>> {
        if reply.as_ref().is_none_or(Reply::is_closed) {
            return Err(durable);
        }
        let Ok(task) = (durable.decode_task)(&durable.input) else {
            return Err(durable);
        };
        let path = self.slot.path();
        let readmitted = match settlement {
            Some(settlement) => settlement
                .rearm(&self.slot.shared, attempt.id, path, verdict, || {
                    self.readmit(&task)
                })
                .map(|()| Some(settlement)),
            None => self
                .readmit(&task)
                .map(|reservation| Settlement::new(None, reservation))
                .map_err(Some),
        };
        let settlement = match readmitted {
            Ok(settlement) => settlement,
            Err(refusal) => {
                if let Some(refusal) = refusal {
                    tracing::info!(agent = %self.slot.name, run = %durable.run, %refusal, "durable run: not replayed here, refused by the budget");
                }
                return Err(durable);
            }
        };
        tracing::info!(agent = %self.slot.name, run = %durable.run, "durable run: the ask goes to the next incarnation, to be replayed");
        self.slot.requeue_first(Job {
            task,
            reply: reply.take(),
            deadline: attempt.deadline,
            asked_at: attempt.asked_at,
            settlement,
            id: attempt.id,
            made_in: attempt.made_in,
            extras: Some(Box::new(JobExtras {
                durable: Some(durable),
                feedback,
                ..JobExtras::new()
            })),
        });
        Ok(())
    }
}

/// Why an incarnation's serve loop returned to ractor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LoopEnd {
    /// Asked to (a stop, a park, a health check is waiting in the mailbox).
    Yielded,
    /// The system closed: the queue was failed.
    Closed,
    /// The agent is parked: its rebuild wakes the queue again.
    Parked,
    /// The agent failed and was reported (or rebuilt here).
    Failed,
}

impl LoopEnd {
    /// Whether a task queued meanwhile must be woken by a message: after a yield or a failure
    /// (its wake may have only touched the waker), not for a parked agent (its rebuild wakes)
    /// or a closed system.
    fn wakes_again(self) -> bool {
        matches!(self, Self::Yielded | Self::Failed)
    }
}

/// A task's result, the incarnation's exit if it must, and whether the outcome counts.
type Judged<O> = (Result<O, AskError>, Option<ExitReason>, bool);

/// Where a task's answer goes, borrowed from its job.
type ReplySlot<'a, A> = &'a mut Option<Reply<<A as Agent>::Output>>;

/// A durable task in its handler: dropped before [`disarm`](Self::disarm) (the incarnation was
/// killed while the handler ran, by a group restart or a brutal shutdown, and its future with
/// it), it puts the task back first in the queue for the next incarnation to replay, as a crash
/// does, if its caller still waits. What the killed attempt reported is committed to the budget
/// (not counted by the breaker, as a kill is not), and the replay is admitted again.
struct InFlight<'a, A: Agent> {
    actor: &'a AgentActor<A>,
    /// The attempt's settlement (it holds the spend reported so far).
    settlement: Option<Arc<Settlement>>,
    /// The failure fed back to the attempt, fed to the replay too.
    feedback: Option<Feedback>,
    job: Option<(Box<DurableJob<A>>, ReplySlot<'a, A>, Attempt)>,
}

impl<'a, A: Agent> InFlight<'a, A> {
    /// The handler ended: nothing to requeue here.
    fn disarm(mut self) -> Option<(Box<DurableJob<A>>, ReplySlot<'a, A>)> {
        let (durable, reply, _) = self.job.take()?;
        Some((durable, reply))
    }
}

impl<A: Agent> Drop for InFlight<'_, A> {
    fn drop(&mut self) {
        let Some((durable, reply, attempt)) = self.job.take() else {
            return;
        };
        // Not counted by the breaker: a kill says nothing of the task.
        let (settlement, feedback) = (self.settlement.take(), self.feedback.take());
        if self
            .actor
            .requeue(durable, reply, attempt, settlement, None, feedback)
            .is_err()
        {
            tracing::info!(agent = %self.actor.slot.name, "durable run: killed in flight, left unfinished in the journal");
        }
    }
}

/// What a durable task's attempt was, for its requeue.
#[derive(Clone, Copy)]
struct Attempt {
    deadline: Instant,
    asked_at: Instant,
    id: overseer_supervisor::EventId,
    /// Where the task was made.
    made_in: Option<Lineage>,
    started: Option<Instant>,
    /// Whether the incarnation must exit after it.
    crashed: bool,
}

/// A task the handler started on.
struct Started {
    /// When, if the clock was read for it.
    at: Option<Instant>,
    task_type: &'static str,
}

/// Runs `work` (a handler under its deadline) beside its watches: the kill switch's
/// cancellation with a budget (`None`), and the heartbeat watch with a timeout (`Err` with how
/// long the handler was silent).
async fn watch<O>(
    work: impl std::future::Future<Output = Handled<O>>,
    shared: &crate::shared::Shared,
    pulse: Option<&crate::heartbeat::Pulse>,
    timeout: Option<std::time::Duration>,
) -> Option<Result<Handled<O>, std::time::Duration>> {
    let cancelled = async {
        match &shared.budget {
            Some(_) => shared.cancelled().await,
            None => std::future::pending().await,
        }
    };
    let silence = async {
        match (pulse, timeout) {
            (Some(pulse), Some(timeout)) => pulse.silence(timeout).await,
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        handled = work => Some(Ok(handled)),
        () = cancelled => None,
        silent_for = silence => Some(Err(silent_for)),
    }
}

/// Runs the agent's health check within `timeout`, catching a panic: `None` if it passed, else
/// why it failed.
async fn health_check<A: Agent>(
    agent: &mut A,
    context: &mut AgentContext,
    timeout: std::time::Duration,
) -> Option<String> {
    let check = AssertUnwindSafe(agent.health_check(context)).catch_unwind();
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(error))) => Some(error.to_string()),
        Ok(Err(payload)) => Some(format!("panicked: {}", panic_message(payload))),
        Err(_elapsed) => Some(format!("no answer within {timeout:?}")),
    }
}

/// Runs the agent's handler on `task`, catching a panic, until it finishes or `deadline` passes
/// ([`Handled::Overran`]: treated as hung); if `observed` (the system has subscribers), as the
/// task's ask (the asks and tells the handler makes name it: [`cause::handled_as`]).
///
/// An ask's caller waits until the same deadline and then drops its end of `reply`, so for an
/// ask the closing of the reply stands for the deadline and no second timer is needed; a timer
/// is armed only for a tell, or if the caller stopped waiting before the deadline.
async fn within_deadline<A: Agent>(
    agent: &mut A,
    context: &mut AgentContext,
    (task, observed): (A::Task, bool),
    deadline: Instant,
    reply: Option<&mut Reply<A::Output>>,
) -> Handled<A::Output> {
    let handling = if observed { context.lineage() } else { None };
    let work = cause::handled_as(handling, agent.handle(context, task));
    let mut work = std::pin::pin!(AssertUnwindSafe(work).catch_unwind());
    if let Some(reply) = reply {
        tokio::select! {
            biased;
            outcome = &mut work => return Handled::from(outcome),
            () = reply.closed() => {}
        }
    }
    // Boxed: a tell, or a caller that stopped waiting early, is rare; the timer is kept out of
    // the size of the future every task builds.
    let expired = Box::pin(tokio::time::sleep_until(deadline));
    tokio::select! {
        biased;
        outcome = &mut work => Handled::from(outcome),
        () = expired => Handled::Overran,
    }
}
