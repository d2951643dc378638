//! Durable members of a cohort: each member is a durable run of its own, so that a cohort run
//! again after its process died replays the members that had answered (from the journal,
//! without asking their agents) and asks again those that had not.

use overseer_fanout::Criticality;
use overseer_journal::RunId;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::cohort::{Cohort, MemberAsk};

impl<O: Send + 'static> Cohort<O>
where
    O: Serialize + DeserializeOwned,
{
    /// Adds a critical member asked as the durable run `run`
    /// ([`AgentRef::ask_run`]): journaled, so that the same cohort run again (after a
    /// restart of the process, say) gets this member's recorded answer without asking its
    /// agent, or resumes its run if it had not finished. Give each member a run id of its own,
    /// derived from the cohort's (`"{job}/researcher-1"`).
    ///
    /// A member whose run finished with a failure fails the same way again
    /// ([`AskError::RunFailed`](crate::AskError::RunFailed)); one that had answered is counted
    /// as answered, whatever the barrier decided the first time. An agent without a journal
    /// fails the member with [`AskError::NoJournal`](crate::AskError::NoJournal).
    ///
    /// A member answered from the journal has no [`AskEvent`](crate::AskEvent) of its own (it
    /// was not asked): the cohort's member event names it.
    pub fn member_run<A>(self, agent: &AgentRef<A>, run: RunId, task: A::Task) -> Self
    where
        A: Agent<Output = O>,
        A::Task: Serialize + DeserializeOwned,
    {
        let ask = durable_ask(agent, run, task);
        self.push_ask(agent, Criticality::Critical, ask)
    }

    /// Adds an optional member asked as the durable run `run`, as
    /// [`member_run`](Self::member_run) does; its failure (or silence at the decision) is
    /// replaced by `default`, as for [`optional`](Self::optional).
    pub fn optional_run<A>(self, agent: &AgentRef<A>, run: RunId, task: A::Task, default: O) -> Self
    where
        A: Agent<Output = O>,
        A::Task: Serialize + DeserializeOwned,
    {
        let ask = durable_ask(agent, run, task);
        self.push_ask(agent, Criticality::Optional { default }, ask)
    }
}

/// The ask of a durable member: its run asked under the cohort's timeout, with the id the
/// cohort assigned it.
fn durable_ask<A>(agent: &AgentRef<A>, run: RunId, task: A::Task) -> MemberAsk<A::Output>
where
    A: Agent,
    A::Task: Serialize + DeserializeOwned,
    A::Output: Serialize + DeserializeOwned,
{
    let agent = agent.clone();
    Box::new(move |timeout, id| {
        Box::pin(async move {
            let result = agent.ask_run_as(run, task, timeout, id).await;
            (result, agent.slot().path().cloned())
        })
    })
}
