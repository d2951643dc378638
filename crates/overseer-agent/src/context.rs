//! What a handler can see and report while it works.

use std::time::Duration;

use overseer_budget::{Budget, Remaining, Tier};
use overseer_supervisor::ChildPath;
use tokio::time::Instant;

use crate::slot::InjectedMark;
use crate::{AgentName, Usage};

/// The context a handler works in: who it is, how long it has, and where it reports usage.
#[derive(Debug)]
pub struct AgentContext {
    name: AgentName,
    path: ChildPath,
    deadline: Option<Instant>,
    usage: Usage,
    injected: Option<InjectedMark>,
    budget: Option<Budget>,
}

impl AgentContext {
    pub(crate) fn new(name: AgentName, path: ChildPath, budget: Option<Budget>) -> Self {
        Self {
            name,
            path,
            deadline: None,
            usage: Usage::default(),
            injected: None,
            budget,
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
    }

    /// The usage reported so far for the current task.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Marks the current task's outcome as caused by an injected fault (fault injection does
    /// this), so events tell injected failures from real ones.
    pub fn mark_injected(&mut self, fault: &'static str) {
        if let Some(mark) = &self.injected {
            let _ = mark.set(fault);
        }
    }

    pub(crate) fn begin_task(&mut self, deadline: Instant, injected: InjectedMark) {
        self.deadline = Some(deadline);
        self.usage = Usage::default();
        self.injected = Some(injected);
    }

    /// Ends the task: the usage it reported.
    pub(crate) fn end_task(&mut self) -> Usage {
        self.deadline = None;
        self.injected = None;
        std::mem::take(&mut self.usage)
    }
}
