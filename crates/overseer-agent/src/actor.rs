//! One incarnation of an agent: a ractor actor that takes tasks from its slot.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use overseer_supervisor::{ChildExit, ChildPath, ExitReason};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

use crate::slot::{Answer, Job, Slot};
use crate::spec::Factory;
use crate::{Agent, AgentContext, AgentError, AskError, BudgetWarningEvent, SystemEvent};

/// The messages an incarnation gets: work is waiting in the slot.
#[derive(Debug)]
pub(crate) enum AgentMsg {
    Wake,
}

pub(crate) struct AgentActor<A: Agent> {
    pub(crate) slot: Arc<Slot<A>>,
}

pub(crate) struct AgentArgs<A: Agent> {
    pub(crate) factory: Factory<A>,
    pub(crate) path: ChildPath,
    pub(crate) previous_exit: Option<ExitReason>,
}

pub(crate) struct AgentState<A: Agent> {
    agent: A,
    context: AgentContext,
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
        let mut agent = (args.factory)();
        let mut context = AgentContext::new(
            self.slot.name.clone(),
            args.path,
            self.slot.shared.budget.clone(),
        );
        let started = match &args.previous_exit {
            Some(reason) => agent.on_restart(&mut context, reason).await,
            None => agent.on_start(&mut context).await,
        };
        started.map_err(|error| ChildExit::new(ExitReason::Failed(error.to_string())))?;
        Ok(AgentState { agent, context })
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
        AgentMsg::Wake: AgentMsg,
        state: &mut AgentState<A>,
    ) -> Result<(), ActorProcessingErr> {
        self.slot.clear_wake();
        if let Some(closed) = self.slot.shared.closed() {
            // Tripped or shut down: nothing queued runs any more.
            self.slot.fail_queued(&closed);
            return Ok(());
        }
        if let Some(job) = self.slot.take_job() {
            if let Err(reason) = self.run(state, job).await {
                self.slot.uninstall(&myself, reason.clone());
                return Err(ChildExit::new(reason).into());
            }
        }
        if self.slot.has_work() {
            self.slot.wake();
        }
        Ok(())
    }
}

impl<A: Agent> AgentActor<A> {
    /// Runs one task to its outcome. An `Err` is the reason the incarnation must exit: a panic,
    /// a fatal error, or a handler still running at the task's deadline (treated as hung).
    async fn run(&self, state: &mut AgentState<A>, job: Job<A>) -> Result<(), ExitReason> {
        let agent = self.slot.name.clone();
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
        if Instant::now() >= deadline {
            let after = deadline.saturating_duration_since(asked_at);
            if let Some(reply) = reply {
                let _ = reply.send(Answer::error(AskError::Timeout { agent, after }));
            }
            return Ok(());
        }
        state.context.begin_task(deadline, injected);
        self.slot.set_exit_cause(Some(id));
        let started = Instant::now();
        let work = AssertUnwindSafe(state.agent.handle(&mut state.context, task)).catch_unwind();
        let shared = &self.slot.shared;
        let outcome = tokio::select! {
            outcome = tokio::time::timeout_at(deadline, work) => Some(outcome),
            () = shared.cancelled() => None,
        };
        let usage = state.context.end_task();
        let path = self.slot.path();
        if let Some(reservation) = reservation {
            let report = crate::cause::during_ask(id, path, || reservation.commit(usage.into()));
            for warning in report.warnings {
                let meta = shared.meta(Some(id), path.cloned());
                shared.publish(SystemEvent::BudgetWarning(BudgetWarningEvent {
                    id: meta.id,
                    caused_by: meta.caused_by,
                    elapsed: meta.elapsed,
                    path: meta.path,
                    warning,
                }));
            }
        }
        let answer = |outcome: Result<A::Output, AskError>| {
            if let Some(reply) = reply {
                let _ = reply.send(Answer { outcome, usage });
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
        let latency = started.elapsed();
        let (result, exit) = match outcome {
            Err(_elapsed) => {
                let after = deadline.saturating_duration_since(asked_at);
                (
                    Err(AskError::Timeout { agent, after }),
                    Some(ExitReason::TimedOut(after)),
                )
            }
            Ok(Err(payload)) => {
                let reason = ExitReason::Panicked(panic_text(payload));
                let error = AskError::Crashed {
                    agent,
                    reason: reason.clone(),
                };
                (Err(error), Some(reason))
            }
            Ok(Ok(Err(AgentError::Fatal(message)))) => {
                let reason = ExitReason::Failed(message);
                let error = AskError::Crashed {
                    agent,
                    reason: reason.clone(),
                };
                (Err(error), Some(reason))
            }
            Ok(Ok(Err(error))) => (Err(AskError::Failed { agent, error }), None),
            Ok(Ok(Ok(output))) => (Ok(output), None),
        };
        if let Some(budget) = &shared.budget {
            crate::cause::during_ask(id, path, || {
                budget.record_outcome(result.is_ok(), Instant::now())
            });
        }
        if let Some(permit) = permit {
            let outcome = self.slot.classifier.outcome(&result);
            if let Some(transition) = permit.record(outcome, latency) {
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

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_string(),
            Err(_) => "panic with a non-string payload".to_string(),
        },
    }
}
