//! An agent's actor: it takes tasks from its slot, and survives its agent's failures so that
//! the agent is rebuilt in the same actor: by the actor itself when the supervisor's decision
//! can only be that (one_for_one), else by the supervisor ([`AgentInPlace`]). The agent value
//! is held by the slot, which the actor takes it from for each task.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use overseer_supervisor::{
    child_reply, AfterFailure, ChildExit, ChildPath, ExitReason, FailureReporter, InPlaceChild,
    StartError,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::agent::Agent;
use crate::context::{AgentContext, TaskReport};
use crate::error::{AgentError, AskError};
use crate::message::AgentMsg;
use crate::settlement::{Settlement, Verdict};
use crate::slot::{Answer, ParkAttempt, Reply, Slot};
use crate::spec::Factory;
use overseer_supervisor::EventId;

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
    fn park(&self) -> BoxFuture<'static, Result<(), StartError>> {
        match self.slot.park_idle() {
            ParkAttempt::Parked => futures::future::ready(Ok(())).boxed(),
            ParkAttempt::InUse => {
                let (done, parked) = oneshot::channel();
                child_reply(
                    self.actor.send_message(AgentMsg::Park(done)).is_ok(),
                    parked,
                )
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
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<AgentMsg>,
        _state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.slot.install(myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<AgentMsg>,
        _state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
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
        Err(payload) => Err(StartError::Panicked(panic_text(payload))),
    }
}

impl<A: Agent> AgentActor<A> {
    /// Takes one task from the slot and runs it; on a failure, parks and reports it, and
    /// rebuilds the agent here when the supervisor's decision is this agent's restart alone.
    async fn serve(
        &self,
        myself: &ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.slot.clear_wake();
        if !self.slot.shared.is_open() {
            // Tripped or shut down: nothing queued runs any more.
            let closed = self.slot.shared.closed().unwrap_or(AskError::ShutDown);
            self.slot.fail_queued(&closed);
            return Ok(());
        }
        let Some(mut agent) = self.slot.take_agent() else {
            // Parked: the work waits in the slot for the rebuilt agent.
            return Ok(());
        };
        let more = match self.run(&mut agent, &mut state.context).await {
            Ok(more) => more,
            // Boxed: a rare path, kept out of the size of the future every task builds.
            Err(reason) => return Box::pin(self.failed(myself, state, agent, reason)).await,
        };
        self.slot.put_agent(agent);
        if more {
            self.slot.wake();
        }
        Ok(())
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
        let (Some(mut job), more) = self.slot.next_job() else {
            return Ok(false);
        };
        if job.reply.as_ref().is_some_and(|reply| reply.is_closed()) {
            // The caller gave up before the task started: it never runs, and dropping its
            // settlement releases what admitting it reserved.
            return Ok(more);
        }
        let (deadline, asked_at, id) = (job.deadline, job.asked_at, job.id);
        // An ask's deadline is its caller's: a caller that gave up has closed its reply. The
        // clock is read for a tell's deadline and for the breaker's latency.
        let wants_latency = job
            .settlement
            .as_deref()
            .is_some_and(Settlement::has_permit);
        let started = (job.reply.is_none() || wants_latency).then(Instant::now);
        let task_type = A::task_type(&job.task);
        if job.reply.is_none() && started.is_some_and(|started| started >= deadline) {
            let after = deadline.saturating_duration_since(asked_at);
            let timeout = AskError::Timeout {
                agent: self.slot.name.clone(),
                after,
            };
            self.slot
                .publish_ask_event(id, task_type, &Answer::<()>::error(timeout), asked_at);
            return Ok(more);
        }
        context.begin_task(deadline, id, job.settlement.take());
        self.slot.set_exit_cause(Some(id));
        let shared = &self.slot.shared;
        let reply = job.reply.as_mut();
        let performed =
            match &shared.budget {
                // Without a budget there is no kill switch to cancel the task.
                None => Some(within_deadline(agent, context, job.task, deadline, reply).await),
                // Boxed: kept out of the size of the future every task builds.
                Some(_) => Box::pin(async {
                    tokio::select! {
                        outcome = within_deadline(agent, context, job.task, deadline, reply) => {
                            Some(outcome)
                        }
                        () = shared.cancelled() => None,
                    }
                })
                .await,
            };
        let TaskReport {
            usage,
            injected,
            model,
            settlement,
        } = context.end_task();
        let reply = job.reply;
        // The caller stopped waiting while the handler ran (and did not settle the ask, as a
        // caller whose deadline passed does): the outcome is not counted.
        let abandoned =
            settlement.is_some() && reply.as_ref().is_some_and(|reply| reply.is_closed());
        let answer = |outcome: Result<A::Output, AskError>| {
            let answer = |outcome: Result<A::Output, AskError>| Answer {
                outcome: outcome.map_err(Box::new),
                usage,
                injected,
                model,
            };
            match reply {
                Some(reply) => {
                    let _ = reply.send(answer(outcome));
                }
                // A tell: nobody waits, its end is published here (if anyone listens).
                None if self.slot.shared.has_subscribers() => {
                    self.slot
                        .publish_ask_event(id, task_type, &answer(outcome), asked_at)
                }
                None => {}
            }
        };
        let Some(outcome) = performed else {
            // The kill switch tripped and the in-flight policy cancels this task: it says
            // nothing about the agent's health, so the breaker does not count it.
            self.settle(settlement.as_deref(), id, None);
            self.slot.set_exit_cause(None);
            answer(Err(shared.closed().unwrap_or(AskError::ShutDown)));
            return Ok(more);
        };
        let (result, exit) = self.judge(outcome, deadline, asked_at);
        if settlement.is_some() {
            let latency = started.map(|started| started.elapsed()).unwrap_or_default();
            let verdict = (!abandoned).then(|| self.slot.verdict(&result, latency));
            self.settle(settlement.as_deref(), id, verdict);
        }
        answer(result);
        match exit {
            // The exit's `stopped` event names this ask as its cause.
            Some(reason) => Err(reason),
            None => {
                self.slot.set_exit_cause(None);
                Ok(more)
            }
        }
    }

    /// Settles a task that ended here, unless its caller did already (its deadline passed
    /// first); spend reported after that is charged on its own.
    fn settle(&self, settlement: Option<&Settlement>, id: EventId, verdict: Option<Verdict>) {
        let Some(settlement) = settlement else { return };
        let shared = &self.slot.shared;
        if let Some(taken) = settlement.take() {
            taken.settle(shared, id, self.slot.path(), verdict);
        }
        if let Some(budget) = &shared.budget {
            settlement.charge_late(budget, self.slot.name.as_str());
        }
    }

    /// The ask's result and, if the incarnation must exit, why.
    fn judge(
        &self,
        outcome: Result<std::thread::Result<Result<A::Output, AgentError>>, ()>,
        deadline: Instant,
        asked_at: Instant,
    ) -> (Result<A::Output, AskError>, Option<ExitReason>) {
        let name = || self.slot.name.clone();
        match outcome {
            Err(()) => {
                let after = deadline.saturating_duration_since(asked_at);
                let error = AskError::Timeout {
                    agent: name(),
                    after,
                };
                (Err(error), Some(ExitReason::TimedOut(after)))
            }
            Ok(Err(payload)) => {
                let reason = ExitReason::Panicked(panic_text(payload));
                let error = AskError::Crashed {
                    agent: name(),
                    reason: reason.clone(),
                };
                (Err(error), Some(reason))
            }
            Ok(Ok(Err(AgentError::Fatal(message)))) => {
                let reason = ExitReason::Failed(message);
                let error = AskError::Crashed {
                    agent: name(),
                    reason: reason.clone(),
                };
                (Err(error), Some(reason))
            }
            Ok(Ok(Err(error))) => (
                Err(AskError::Failed {
                    agent: name(),
                    error,
                }),
                None,
            ),
            Ok(Ok(Ok(output))) => (Ok(output), None),
        }
    }
}

/// Runs the agent's handler on `task`, catching a panic, until it finishes or `deadline` passes
/// (`Err(())`: treated as hung).
///
/// An ask's caller waits until the same deadline and then drops its end of `reply`, so for an
/// ask the closing of the reply stands for the deadline and no second timer is needed; a timer
/// is armed only for a tell, or if the caller stopped waiting before the deadline.
async fn within_deadline<A: Agent>(
    agent: &mut A,
    context: &mut AgentContext,
    task: A::Task,
    deadline: Instant,
    reply: Option<&mut Reply<A::Output>>,
) -> Result<std::thread::Result<Result<A::Output, AgentError>>, ()> {
    let mut work = std::pin::pin!(AssertUnwindSafe(agent.handle(context, task)).catch_unwind());
    if let Some(reply) = reply {
        tokio::select! {
            biased;
            outcome = &mut work => return Ok(outcome),
            () = reply.closed() => {}
        }
    }
    // Boxed: a tell, or a caller that stopped waiting early, is rare; the timer is kept out of
    // the size of the future every task builds.
    let expired = Box::pin(tokio::time::sleep_until(deadline));
    tokio::select! {
        biased;
        outcome = &mut work => Ok(outcome),
        () = expired => Err(()),
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_string(),
            Err(_) => "panic with a non-string payload".to_string(),
        },
    }
}
