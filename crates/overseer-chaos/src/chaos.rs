//! `Chaos`: an agent wrapped so that faults are injected into it.

use std::fmt;

use overseer_agent::{Agent, AgentContext, AgentError, Usage};
use overseer_supervisor::ExitReason;

use crate::{Fault, FaultInjector, FaultKind};

/// An agent with faults injected into it: an [`Agent`] with the same tasks, outputs, task types
/// and estimates, which asks its [`FaultInjector`] before each call and each start whether to
/// misbehave, and otherwise lets the wrapped agent work.
///
/// Every injected fault is marked on the task's context
/// ([`AgentContext::mark_injected`]) *before* it acts, so the ask's
/// [`AskEvent::injected`](overseer_agent::AskEvent::injected) names it even when the handler
/// panics or hangs, and is logged as a `tracing` warning with `agent`, `fault` and `call` (or
/// `attempt`) fields. Asks with no injected fault have `injected == None`.
///
/// The mark is shared with the caller, so an ask answered by its own deadline (a
/// [`Hang`](Fault::Hang), or a [`Slow`](Fault::Slow) delay past the deadline) is marked too.
///
/// Make incarnations with [`FaultInjector::wrap`] and look the agent up as a `Chaos<A>`:
/// `system.agent_ref::<Chaos<MyAgent>>("name")`.
pub struct Chaos<A: Agent> {
    agent: A,
    injector: FaultInjector<A>,
}

impl<A: Agent> Chaos<A> {
    pub(crate) fn new(agent: A, injector: FaultInjector<A>) -> Self {
        Self { agent, injector }
    }

    /// The wrapped agent.
    pub fn inner(&self) -> &A {
        &self.agent
    }

    /// The wrapped agent, mutably.
    pub fn inner_mut(&mut self) -> &mut A {
        &mut self.agent
    }

    /// Unwraps the agent.
    pub fn into_inner(self) -> A {
        self.agent
    }

    /// The injector deciding the faults.
    pub fn injector(&self) -> &FaultInjector<A> {
        &self.injector
    }

    /// Marks, counts and logs a fault about to be injected into call number `call`.
    fn inject(&self, ctx: &mut AgentContext, kind: FaultKind, call: u64) {
        ctx.mark_injected(kind.as_str());
        self.injector.record(kind);
        tracing::warn!(agent = %ctx.name(), fault = kind.as_str(), call, "injected fault");
    }

    /// Fails the start if the plan says so; otherwise lets the wrapped agent start.
    fn start_fault(&self, ctx: &mut AgentContext) -> Result<(), AgentError> {
        let (attempt, fails) = self.injector.next_start();
        if !fails {
            return Ok(());
        }
        let kind = FaultKind::FailStart;
        ctx.mark_injected(kind.as_str());
        self.injector.record(kind);
        tracing::warn!(agent = %ctx.name(), fault = kind.as_str(), attempt, "injected fault");
        Err(AgentError::failed(format!(
            "injected start failure (attempt {attempt})"
        )))
    }
}

impl<A: Agent> Agent for Chaos<A> {
    type Task = A::Task;
    type Output = A::Output;

    fn task_type(task: &A::Task) -> &'static str {
        A::task_type(task)
    }

    fn estimate(task: &A::Task) -> Usage {
        A::estimate(task)
    }

    async fn handle(
        &mut self,
        ctx: &mut AgentContext,
        task: A::Task,
    ) -> Result<A::Output, AgentError> {
        let decision = self.injector.next_call(A::task_type(&task));
        let call = decision.call;
        let Some(fault) = decision.fault else {
            return self.agent.handle(ctx, task).await;
        };
        match fault {
            Fault::Panic => {
                self.inject(ctx, FaultKind::Panic, call);
                panic!("injected panic (call {call})");
            }
            Fault::Error => {
                self.inject(ctx, FaultKind::Error, call);
                Err(AgentError::failed(format!("injected error (call {call})")))
            }
            Fault::Fatal => {
                self.inject(ctx, FaultKind::Fatal, call);
                Err(AgentError::fatal(format!(
                    "injected fatal error (call {call})"
                )))
            }
            Fault::Hang => {
                self.inject(ctx, FaultKind::Hang, call);
                std::future::pending().await
            }
            Fault::Slow(delay) => {
                self.inject(ctx, FaultKind::Slow, call);
                tokio::time::sleep(delay).await;
                self.agent.handle(ctx, task).await
            }
            Fault::Corrupt => {
                let output = self.agent.handle(ctx, task).await?;
                match self.injector.corrupt(output, call) {
                    Ok(corrupted) => {
                        self.inject(ctx, FaultKind::Corrupt, call);
                        Ok(corrupted)
                    }
                    // Unreachable: an injector without a corruptor refuses plans that corrupt.
                    Err(untouched) => Ok(untouched),
                }
            }
            Fault::InflateUsage(factor) => {
                let output = self.agent.handle(ctx, task).await?;
                self.inject(ctx, FaultKind::InflateUsage, call);
                let reported = ctx.usage();
                ctx.report_usage(scale(reported, u64::from(factor).saturating_sub(1)));
                Ok(output)
            }
        }
    }

    async fn on_start(&mut self, ctx: &mut AgentContext) -> Result<(), AgentError> {
        self.start_fault(ctx)?;
        self.agent.on_start(ctx).await
    }

    async fn on_restart(
        &mut self,
        ctx: &mut AgentContext,
        previous_exit: &ExitReason,
    ) -> Result<(), AgentError> {
        self.start_fault(ctx)?;
        self.agent.on_restart(ctx, previous_exit).await
    }
}

/// `usage` times `factor`, saturating.
fn scale(usage: Usage, factor: u64) -> Usage {
    Usage::new(
        usage.input_tokens.saturating_mul(factor),
        usage.output_tokens.saturating_mul(factor),
        usage.cost_micros.saturating_mul(factor),
    )
}

impl<A: Agent> fmt::Debug for Chaos<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("agent", &std::any::type_name::<A>())
            .field("injector", &self.injector)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_scales_every_field_and_saturates() {
        assert_eq!(scale(Usage::new(10, 2, 7), 3), Usage::new(30, 6, 21));
        assert_eq!(
            scale(Usage::new(u64::MAX, 1, 0), 2),
            Usage::new(u64::MAX, 2, 0)
        );
    }
}
