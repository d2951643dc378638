//! A policy on the confidence tracker's flags: while an (agent, task type) is flagged as
//! over-confident, the agent's plain asks of that type have their outputs reviewed by an
//! inspector, as [`AgentRef::ask_inspected`] does, until the flag clears.

use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use overseer_semantic::confidence::Flag;

use crate::agent::Agent;
use crate::agent_ref::AgentRef;
use crate::error::AskError;
use crate::inspection::{Inspection, Verdict};
use crate::inspector_route::InspectorRoute;
use crate::slot::Slot;

/// The route to inspector agent `I`.
struct ToInspector<A, I: Agent> {
    inspector: AgentRef<I>,
    _producer: PhantomData<fn(A)>,
}

impl<A, I> InspectorRoute<A> for ToInspector<A, I>
where
    A: Agent,
    A::Task: Clone,
    A::Output: Clone,
    I: Agent<Task = Inspection<A::Task, A::Output>, Output = Verdict<A::Output>>,
{
    fn ask(
        &self,
        producer: Arc<Slot<A>>,
        task: A::Task,
        flag: Flag,
    ) -> BoxFuture<'static, Result<A::Output, AskError>> {
        let inspector = self.inspector.clone();
        Box::pin(async move {
            let producer = AgentRef::new(producer);
            producer.inspect(task, &inspector, Some(flag)).await
        })
    }
}

/// What [`AgentRef::inspect_when_flagged`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The system tracks no confidence
    /// ([`SemanticConfig::confidence`](crate::SemanticConfig::confidence)), so nothing is ever
    /// flagged.
    #[error(
        "the system tracks no confidence: nothing is ever flagged (SemanticConfig::confidence)"
    )]
    NoConfidenceTracker,
    /// The agent reports no confidence
    /// ([`AgentSpec::confidence`](crate::AgentSpec::confidence)), so it is never flagged.
    #[error("agent {agent} reports no confidence (AgentSpec::confidence): it is never flagged")]
    NoConfidence {
        /// The agent.
        agent: String,
    },
}

impl<A: Agent> AgentRef<A> {
    /// From now on, while the confidence tracker flags (this agent, a task type) as
    /// over-confident ([`Finding::OverConfident`](crate::Finding::OverConfident)), this
    /// agent's plain asks of that type ([`ask`](Self::ask), [`ask_within`](Self::ask_within))
    /// have their outputs reviewed by `inspector` before they are returned, exactly as
    /// [`ask_inspected`](Self::ask_inspected) does (asked once: its retry policy does not
    /// apply). Each routed ask publishes a [`Finding::RoutedToInspector`](crate::Finding::RoutedToInspector)
    /// that says why (the flag, in words), then the inspector's verdict; the verdicts are
    /// recorded by the tracker, so the flag clears, and the routing stops, once the agent's
    /// high-confidence outputs are right often enough. Asks of task types not flagged go as
    /// before. Installing another inspector replaces this one.
    ///
    /// A system without it pays one branch per plain ask; one with semantic watches but no
    /// route, an atomic load more.
    ///
    /// # Errors
    ///
    /// [`RouteError::NoConfidenceTracker`] when the system tracks no confidence, and
    /// [`RouteError::NoConfidence`] when the agent reports none: the route could never be
    /// taken.
    pub fn inspect_when_flagged<I>(&self, inspector: &AgentRef<I>) -> Result<(), RouteError>
    where
        A::Task: Clone,
        A::Output: Clone,
        I: Agent<Task = Inspection<A::Task, A::Output>, Output = Verdict<A::Output>>,
    {
        let slot = self.slot();
        let watch = slot
            .shared
            .semantic
            .as_ref()
            .filter(|watch| watch.tracks_confidence())
            .ok_or(RouteError::NoConfidenceTracker)?;
        if !crate::validation::tracks_confidence(slot) {
            return Err(RouteError::NoConfidence {
                agent: slot.name.to_string(),
            });
        }
        let route: Arc<dyn InspectorRoute<A>> = Arc::new(ToInspector {
            inspector: inspector.clone(),
            _producer: PhantomData,
        });
        watch.install_route(slot.name.clone(), Arc::new(route));
        Ok(())
    }
}
