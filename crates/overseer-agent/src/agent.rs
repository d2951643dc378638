//! The `Agent` trait: an LLM agent as a plain Rust type.

use std::future::Future;

use overseer_supervisor::ExitReason;

use crate::context::AgentContext;
use crate::error::AgentError;
use crate::usage::Usage;

/// An agent: its state is the Rust type, its work is typed tasks and outputs.
///
/// Each incarnation is made fresh by the factory given to [`AgentSpec`](crate::AgentSpec);
/// after a crash the supervisor makes a new one and tells it why the previous one died
/// ([`on_restart`](Self::on_restart)). Tasks are handled one at a time.
///
/// ```
/// use overseer_agent::{Agent, AgentContext, AgentError, Usage};
///
/// struct Summarizer { summaries: u32 }
///
/// enum Task { Summarize(String), Count }
///
/// impl Agent for Summarizer {
///     type Task = Task;
///     type Output = String;
///
///     fn task_type(task: &Task) -> &'static str {
///         match task { Task::Summarize(_) => "summarize", Task::Count => "count" }
///     }
///
///     async fn handle(&mut self, ctx: &mut AgentContext, task: Task) -> Result<String, AgentError> {
///         match task {
///             Task::Summarize(text) => {
///                 ctx.report_usage(Usage::new(text.len() as u64 / 4, 10, 30));
///                 self.summaries += 1;
///                 Ok(text.chars().take(20).collect())
///             }
///             Task::Count => Ok(self.summaries.to_string()),
///         }
///     }
/// }
/// ```
pub trait Agent: Send + 'static {
    /// The work this agent accepts.
    type Task: Send + 'static;
    /// What it answers.
    type Output: Send + 'static;

    /// The kind of a task. Circuit breakers and statistics are kept per (agent, task type), so
    /// an agent failing at one kind keeps serving the others.
    fn task_type(task: &Self::Task) -> &'static str {
        let _ = task;
        "default"
    }

    /// Handles one task. Return [`AgentError::Failed`] or [`AgentError::InvalidOutput`] to fail
    /// the task and carry on; return [`AgentError::Fatal`] or panic to crash the agent (its
    /// supervisor decides whether to restart it). Usage is reported through `ctx`.
    fn handle(
        &mut self,
        ctx: &mut AgentContext,
        task: Self::Task,
    ) -> impl Future<Output = Result<Self::Output, AgentError>> + Send;

    /// Runs when an incarnation starts for the first time (load memory, open clients). An
    /// error fails the start.
    fn on_start(
        &mut self,
        ctx: &mut AgentContext,
    ) -> impl Future<Output = Result<(), AgentError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs instead of [`on_start`](Self::on_start) when the agent is restarted, with the
    /// reason its previous incarnation exited. An error fails the start.
    ///
    /// It runs before the agent takes its next task, and its supervisor waits for it: in the
    /// agent's own actor after its own failure under a one_for_one supervisor, on the
    /// supervisor's task otherwise (a group restart rebuilds its agents there, in start order).
    fn on_restart(
        &mut self,
        ctx: &mut AgentContext,
        previous_exit: &ExitReason,
    ) -> impl Future<Output = Result<(), AgentError>> + Send {
        let _ = (ctx, previous_exit);
        async { Ok(()) }
    }

    /// A cheap self-test (its model client reachable, its tool's credentials valid), run by the
    /// system while the agent is idle when its spec asks for it
    /// ([`AgentSpec::health_check`](crate::AgentSpec::health_check)); never beside a task. An
    /// error, a panic, or no answer within the check's timeout is a failure. Passes by default.
    fn health_check(
        &mut self,
        ctx: &mut AgentContext,
    ) -> impl Future<Output = Result<(), AgentError>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// What a task is expected to cost, reserved against budgets before it runs.
    fn estimate(task: &Self::Task) -> Usage {
        let _ = task;
        Usage::default()
    }
}
