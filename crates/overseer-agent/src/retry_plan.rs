//! An agent's retry policies: one for the agent, one per task type, and how its tasks are
//! copied for another attempt.

use std::collections::HashMap;

use overseer_retry::RetryPolicy;

use crate::agent::Agent;

/// Copies a task for another attempt.
pub(crate) type CopyTask<A> = fn(&<A as Agent>::Task) -> <A as Agent>::Task;

/// The retry policies an agent was declared with
/// ([`AgentSpec::retry`](crate::AgentSpec::retry),
/// [`AgentSpec::retry_task_type`](crate::AgentSpec::retry_task_type)).
pub(crate) struct RetryPlan<A: Agent> {
    /// The policy of task types without one of their own.
    pub(crate) default: Option<RetryPolicy>,
    /// The policies of task types.
    pub(crate) by_task_type: HashMap<&'static str, RetryPolicy>,
    /// Copies a task for another attempt: `Clone::clone`, fixed where the task type is known
    /// to be `Clone`, so that a plain ask needs no such bound.
    pub(crate) copy: CopyTask<A>,
}

impl<A: Agent> Clone for RetryPlan<A> {
    fn clone(&self) -> Self {
        Self {
            default: self.default.clone(),
            by_task_type: self.by_task_type.clone(),
            copy: self.copy,
        }
    }
}

impl<A: Agent> RetryPlan<A>
where
    A::Task: Clone,
{
    /// No policy yet.
    pub(crate) fn new() -> Self {
        Self {
            default: None,
            by_task_type: HashMap::new(),
            copy: Clone::clone,
        }
    }
}

impl<A: Agent> RetryPlan<A> {
    /// The policy for tasks of `task_type`: its own, else the agent's, else none.
    pub(crate) fn policy_for(&self, task_type: &str) -> Option<&RetryPolicy> {
        self.by_task_type.get(task_type).or(self.default.as_ref())
    }
}
