//! An agent's actor: it takes tasks from its slot, and survives its agent's failures so that
//! its supervisor can restart it in place (the agent rebuilt in the same actor).

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

use crate::slot::{Answer, Job, Slot};
use crate::spec::Factory;
use crate::{Agent, AgentContext, AgentError, AskError, BudgetWarningEvent, SystemEvent};

/// The messages an agent's actor gets.
pub(crate) enum AgentMsg {
    /// Work is waiting in the slot.
    Wake,
    /// Its supervisor restarts a group: drop the agent and wait.
    Park(oneshot::Sender<()>),
    /// Its supervisor restarts it: build the agent again.
    Rebuild(ExitReason, oneshot::Sender<Result<(), StartError>>),
}

impl std::fmt::Debug for AgentMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Wake => "Wake",
            Self::Park(_) => "Park",
            Self::Rebuild(..) => "Rebuild",
        })
    }
}

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

pub(crate) struct AgentState<A: Agent> {
    /// `None` while parked: after a failure, until the supervisor rebuilds it.
    agent: Option<A>,
    context: AgentContext,
    factory: Factory<A>,
}

/// The supervisor's handle for restarting an agent in place.
pub(crate) struct AgentInPlace(pub(crate) ActorRef<AgentMsg>);

impl InPlaceChild for AgentInPlace {
    fn park(&self) -> BoxFuture<'static, Result<(), StartError>> {
        let (done, parked) = oneshot::channel();
        child_reply(self.0.send_message(AgentMsg::Park(done)).is_ok(), parked)
    }

    fn rebuild(&self, previous_exit: ExitReason) -> BoxFuture<'static, Result<(), StartError>> {
        let (done, rebuilt) = oneshot::channel();
        let sent = self.0.send_message(AgentMsg::Rebuild(previous_exit, done));
        child_reply(sent.is_ok(), rebuilt)
            .map(|answer| answer.and_then(std::convert::identity))
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
        let mut context = AgentContext::new(
            self.slot.name.clone(),
            args.path,
            self.slot.shared.budget.clone(),
        );
        let agent = build(&args.factory, &mut context, args.previous_exit.as_ref())
            .await
            .map_err(|error| ChildExit::new(ExitReason::Failed(error.to_string())))?;
        Ok(AgentState {
            agent: Some(agent),
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
            // Boxed: ractor moves the handler's future as it polls it, and a task's future
            // (the agent's handler, the deadline) is large; a box is cheaper than the copies.
            AgentMsg::Wake => Box::pin(self.serve(&myself, state)).await,
            AgentMsg::Park(done) => {
                state.agent = None;
                let _ = done.send(());
                Ok(())
            }
            AgentMsg::Rebuild(previous_exit, done) => {
                // Boxed: a rare path, kept out of the per-task future's size.
                let rebuilt = Box::pin(self.rebuild(&myself, state, previous_exit)).await;
                let _ = done.send(rebuilt);
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
    /// Takes one task from the slot and runs it; on a failure, parks and reports it so the
    /// supervisor restarts the agent in place (or exits if the supervisor is gone).
    async fn serve(
        &self,
        myself: &ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.slot.clear_wake();
        let Some(agent) = state.agent.as_mut() else {
            // Parked: the work waits in the slot for the rebuilt agent.
            return Ok(());
        };
        if let Some(closed) = self.slot.shared.closed() {
            // Tripped or shut down: nothing queued runs any more.
            self.slot.fail_queued(&closed);
            return Ok(());
        }
        if let Some(job) = self.slot.take_job() {
            if let Err(reason) = self.run(agent, &mut state.context, job).await {
                state.agent = None;
                self.slot.record_exit(reason.clone());
                match self.reporter.failed(&myself.get_cell(), reason.clone()) {
                    AfterFailure::RebuildNow(restart) => {
                        // The supervisor's decision, carried out here: no message there and back.
                        let previous_exit = restart.previous_exit().clone();
                        let rebuilt = Box::pin(self.rebuild(myself, state, previous_exit)).await;
                        let failed = rebuilt.is_err();
                        restart.finish(rebuilt);
                        if failed {
                            // Parked until the supervisor stops this actor and starts another.
                            return Ok(());
                        }
                    }
                    AfterFailure::Reported => return Ok(()),
                    AfterFailure::SupervisorGone => {
                        self.slot.uninstall(myself, reason.clone());
                        return Err(ChildExit::new(reason).into());
                    }
                }
            }
        }
        if self.slot.has_work() {
            self.slot.wake();
        }
        Ok(())
    }

    /// Builds the agent again in this actor, and serves the slot again.
    async fn rebuild(
        &self,
        myself: &ActorRef<AgentMsg>,
        state: &mut AgentState<A>,
        previous_exit: ExitReason,
    ) -> Result<(), StartError> {
        state.agent = None;
        let agent = build(&state.factory, &mut state.context, Some(&previous_exit)).await?;
        state.agent = Some(agent);
        self.slot.install(myself.clone());
        Ok(())
    }

    /// Runs one task to its outcome. An `Err` is the reason the incarnation must exit: a panic,
    /// a fatal error, or a handler still running at the task's deadline (treated as hung).
    async fn run(
        &self,
        agent: &mut A,
        context: &mut AgentContext,
        job: Job<A>,
    ) -> Result<(), ExitReason> {
        let name = self.slot.name.clone();
        let Job {
            task,
            reply,
            deadline,
            asked_at,
            reservation,
            permit,
            injected,
            id,
        } = job;
        if reply.as_ref().is_some_and(|reply| reply.is_closed()) {
            return Ok(()); // the caller has given up; dropping the reservation releases it
        }
        let started = Instant::now();
        if started >= deadline {
            let after = deadline.saturating_duration_since(asked_at);
            let timeout = AskError::Timeout {
                agent: name.clone(),
                after,
            };
            let job = Job {
                task,
                reply,
                deadline,
                asked_at,
                reservation,
                permit,
                injected,
                id,
            };
            self.slot.fail_job(job, timeout);
            return Ok(());
        }
        let task_type = A::task_type(&task);
        context.begin_task(deadline, Arc::clone(&injected));
        self.slot.set_exit_cause(Some(id));
        let mut reply = reply;
        let work = AssertUnwindSafe(agent.handle(context, task)).catch_unwind();
        let shared = &self.slot.shared;
        let outcome = match &shared.budget {
            // Without a budget there is no kill switch to cancel the task.
            None => Some(within_deadline(work, deadline, reply.as_mut()).await),
            Some(_) => tokio::select! {
                outcome = within_deadline(work, deadline, reply.as_mut()) => Some(outcome),
                () = Box::pin(shared.cancelled()) => None,
            },
        };
        let usage = context.end_task();
        let path = self.slot.path();
        if let Some(reservation) = reservation {
            let report = crate::cause::during_ask(id, path, || reservation.commit(usage.into()));
            for warning in report.warnings {
                let meta = shared.meta(Some(id), path.cloned());
                shared.publish(SystemEvent::BudgetWarning(BudgetWarningEvent::new(
                    meta, warning,
                )));
            }
        }
        let answer = |outcome: Result<A::Output, AskError>| {
            let answer = Answer { outcome, usage };
            match reply {
                Some(reply) => {
                    let _ = reply.send(answer);
                }
                // A tell: nobody waits, its end is published here.
                None => {
                    self.slot.publish_ask_event(
                        id,
                        task_type,
                        &answer,
                        asked_at,
                        injected.get().copied(),
                    );
                }
            }
        };
        let Some(outcome) = outcome else {
            // The kill switch tripped and the in-flight policy cancels this task: it says
            // nothing about the agent's health, so the breaker does not count it.
            if let Some(permit) = permit {
                permit.cancel();
            }
            self.slot.set_exit_cause(None);
            answer(Err(shared.closed().unwrap_or(AskError::ShutDown)));
            return Ok(());
        };
        let (result, exit) = match outcome {
            Err(_elapsed) => {
                let after = deadline.saturating_duration_since(asked_at);
                (
                    Err(AskError::Timeout {
                        agent: name.clone(),
                        after,
                    }),
                    Some(ExitReason::TimedOut(after)),
                )
            }
            Ok(Err(payload)) => {
                let reason = ExitReason::Panicked(panic_text(payload));
                let error = AskError::Crashed {
                    agent: name,
                    reason: reason.clone(),
                };
                (Err(error), Some(reason))
            }
            Ok(Ok(Err(AgentError::Fatal(message)))) => {
                let reason = ExitReason::Failed(message);
                let error = AskError::Crashed {
                    agent: name,
                    reason: reason.clone(),
                };
                (Err(error), Some(reason))
            }
            Ok(Ok(Err(error))) => (Err(AskError::Failed { agent: name, error }), None),
            Ok(Ok(Ok(output))) => (Ok(output), None),
        };
        if let Some(budget) = &shared.budget {
            crate::cause::during_ask(id, path, || {
                budget.record_outcome(result.is_ok(), Instant::now())
            });
        }
        if let Some(permit) = permit {
            let outcome = self.slot.classifier.outcome(&result);
            if let Some(transition) = permit.record(outcome, started.elapsed()) {
                shared.publish_transition(&transition, id, path.cloned());
            }
        }
        answer(result);
        match exit {
            // The exit's `stopped` event names this ask as its cause.
            Some(reason) => Err(reason),
            None => {
                self.slot.set_exit_cause(None);
                Ok(())
            }
        }
    }
}

/// Runs a handler until it finishes or `deadline` passes (`Err(())`: treated as hung).
///
/// An ask's caller waits until the same deadline and then drops its end of `reply`, so for an
/// ask the closing of the reply stands for the deadline and no second timer is needed; a timer
/// is armed only for a tell, or if the caller stopped waiting before the deadline.
async fn within_deadline<F: std::future::Future>(
    work: F,
    deadline: Instant,
    reply: Option<&mut oneshot::Sender<impl Sized>>,
) -> Result<F::Output, ()> {
    let mut work = std::pin::pin!(work);
    if let Some(reply) = reply {
        tokio::select! {
            biased;
            outcome = &mut work => return Ok(outcome),
            () = reply.closed() => {}
        }
    }
    tokio::time::timeout_at(deadline, work)
        .await
        .map_err(|_| ())
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
