//! The route a plain ask takes while its (agent, task type) is flagged as over-confident: to
//! an inspector, its agent type erased, installed by
//! [`AgentRef::inspect_when_flagged`](crate::AgentRef::inspect_when_flagged) (`flagged_route`).

use std::sync::Arc;

use futures::future::BoxFuture;
use overseer_semantic::confidence::Flag;

use crate::agent::Agent;
use crate::error::AskError;
use crate::semantic_watch::SemanticWatch;
use crate::slot::Slot;

/// An inspector that reviews the outputs of agent `A`.
pub(crate) trait InspectorRoute<A: Agent>: Send + Sync {
    /// Asks the agent of `producer` for `task` and has the inspector review the output,
    /// because of `flag`.
    fn ask(
        &self,
        producer: Arc<Slot<A>>,
        task: A::Task,
        flag: Flag,
    ) -> BoxFuture<'static, Result<A::Output, AskError>>;
}

/// The route a plain ask of `task_type` to `producer` takes, and the flag that sends it there:
/// `None` (the ask goes as usual) unless a route is installed and the pair is flagged.
pub(crate) fn flagged_route<A: Agent>(
    watch: &SemanticWatch,
    producer: &Slot<A>,
    task_type: &'static str,
) -> Option<(Arc<dyn InspectorRoute<A>>, Flag)> {
    let route = watch.route(&producer.name)?;
    let route = route.downcast_ref::<Arc<dyn InspectorRoute<A>>>()?.clone();
    let flag = watch.flag(&(producer.name.clone(), task_type))?;
    Some((route, flag))
}
