//! What a handler can see and report while it works.

use std::time::Duration;

use overseer_budget::{Budget, Remaining, Tier};
use std::borrow::Cow;
use std::sync::Arc;

use overseer_supervisor::{ChildPath, EventId};
use tokio::time::Instant;

use crate::injected_mark::InjectedMark;
use crate::name::AgentName;
use crate::settlement::Settlement;
use crate::tasks::IncarnationTasks;
use crate::usage::Usage;

/// The context a handler works in: who it is, how long it has, and where it reports usage.
#[derive(Debug)]
pub struct AgentContext {
    name: AgentName,
    path: ChildPath,
    deadline: Option<Instant>,
    usage: Usage,
    /// The current task's ask, while one runs.
    task: Option<EventId>,
    /// The fault marked on the current task.
    injected: Option<&'static str>,
    /// The model the current task named.
    model: Option<Cow<'static, str>>,
    /// Where the mark is also left for a caller that stopped waiting.
    marks: Arc<InjectedMark>,
    /// The current task's settlement, where reported spend is also added (so that it is
    /// committed whatever ends the task).
    settlement: Option<Arc<Settlement>>,
    budget: Option<Budget>,
    tasks: Arc<IncarnationTasks>,
}

impl AgentContext {
    pub(crate) fn new(
        name: AgentName,
        path: ChildPath,
        budget: Option<Budget>,
        marks: Arc<InjectedMark>,
        tasks: Arc<IncarnationTasks>,
    ) -> Self {
        Self {
            name,
            path,
            deadline: None,
            usage: Usage::default(),
            task: None,
            injected: None,
            model: None,
            marks,
            settlement: None,
            budget,
            tasks,
        }
    }

    /// The highest budget warning tier reached by this agent's or the process's spend, if
    /// any: a signal to wrap up. `None` without a budget or below the first tier.
    pub fn budget_tier(&self) -> Option<Tier> {
        self.budget.as_ref()?.tier(self.name.as_str())
    }

    /// What this agent may still spend (the smaller of its own and the process's remaining
    /// budget, per dimension; `None` in a dimension without a limit). `None` without a budget.
    pub fn budget_remaining(&self) -> Option<Remaining> {
        Some(self.budget.as_ref()?.remaining(self.name.as_str()))
    }

    /// The agent's name.
    pub fn name(&self) -> &AgentName {
        &self.name
    }

    /// The agent's path in the supervision tree.
    pub fn path(&self) -> &ChildPath {
        &self.path
    }

    /// When the current task must be answered; past it the handler is treated as hung.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long the current task has left.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Adds usage (tokens, cost) to the current task's account. It is returned with the
    /// outcome of the ask, published in the ask's event, and charged to budgets.
    pub fn report_usage(&mut self, usage: Usage) {
        self.usage += usage;
        if let Some(settlement) = &self.settlement {
            settlement.report(usage);
        }
    }

    /// Spawns `task` on the current tokio runtime, tied to this incarnation of the agent: it
    /// is aborted when the incarnation ends (its agent crashes, fails a task fatally, hangs,
    /// is restarted with its group, stopped or killed, or the system shuts down), as an Erlang
    /// process linked to its parent dies with it. Use it for work a handler starts and does
    /// not wait for (a heartbeat, a prefetch, a watcher): a task spawned with `tokio::spawn`
    /// is not tied to anything and outlives the agent's crashes, restarts and the system
    /// itself.
    ///
    /// The handle can abort the task earlier; the task's output is not kept.
    ///
    /// # Panics
    /// Outside a tokio runtime (a handler always runs inside one).
    ///
    /// ```
    /// use overseer_agent::{Agent, AgentContext, AgentError};
    ///
    /// struct Watcher;
    /// impl Agent for Watcher {
    ///     type Task = ();
    ///     type Output = ();
    ///     async fn handle(&mut self, ctx: &mut AgentContext, _: ()) -> Result<(), AgentError> {
    ///         // Ends with this incarnation, whatever ends it.
    ///         ctx.spawn(async {
    ///             loop {
    ///                 tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    ///             }
    ///         });
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn spawn<F>(&mut self, task: F) -> tokio::task::AbortHandle
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// How many tasks this incarnation spawned with [`spawn`](Self::spawn) are still running.
    pub fn live_tasks(&self) -> usize {
        self.tasks.live()
    }

    /// Names the model the current task used (`"gpt-4o"`, `"claude-sonnet-4"`; the last name
    /// counts if it used several). It is published in the ask's event
    /// ([`AskEvent::model`](crate::AskEvent::model)) and exported as `gen_ai.request.model` on
    /// the ask's OpenTelemetry span.
    pub fn report_model(&mut self, model: impl Into<Cow<'static, str>>) {
        self.model = Some(model.into());
    }

    /// The usage reported so far for the current task.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Marks the current task's outcome as caused by an injected fault (fault injection does
    /// this), so events tell injected failures from real ones.
    /// The first mark of a task counts.
    pub fn mark_injected(&mut self, fault: &'static str) {
        let Some(task) = self.task else { return };
        if self.injected.is_none() {
            self.injected = Some(fault);
            self.marks.set(task, fault);
        }
    }

    pub(crate) fn begin_task(
        &mut self,
        deadline: Instant,
        task: EventId,
        settlement: Option<Arc<Settlement>>,
    ) {
        if let Some(settlement) = &settlement {
            settlement.begin();
        }
        self.settlement = settlement;
        self.deadline = Some(deadline);
        self.usage = Usage::default();
        self.task = Some(task);
        self.injected = None;
        self.model = None;
    }

    /// Ends the task: what it reported (usage, model) and the fault it was marked with.
    pub(crate) fn end_task(&mut self) -> TaskReport {
        self.deadline = None;
        self.task = None;
        TaskReport {
            usage: std::mem::take(&mut self.usage),
            injected: self.injected.take(),
            model: self.model.take(),
            settlement: self.settlement.take(),
        }
    }
}

/// What a finished task reported, for its answer.
pub(crate) struct TaskReport {
    pub(crate) usage: Usage,
    pub(crate) injected: Option<&'static str>,
    pub(crate) model: Option<Cow<'static, str>>,
    pub(crate) settlement: Option<Arc<Settlement>>,
}
