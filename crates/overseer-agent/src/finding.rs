//! Publishing what the semantic checks found, and the breaker they may open: shared by the
//! validators, the loop detector, inspections and votes.

use overseer_breaker::BreakerKey;
use overseer_supervisor::{ChildPath, EventId};

use crate::event::SystemEvent;
use crate::semantic_event::{Finding, SemanticEvent};
use crate::shared::Shared;

/// Forces the (agent, `task_type`) breaker open.
pub(crate) fn open_breaker(
    shared: &Shared,
    agent: &str,
    task_type: &'static str,
    id: Option<EventId>,
    path: Option<ChildPath>,
) {
    let Some(registry) = &shared.breakers else {
        return;
    };
    if let Some(transition) = registry.force_open(&BreakerKey::new(agent, task_type)) {
        match id {
            Some(id) => shared.publish_transition(&transition, id, path),
            None => tracing::warn!(agent, task_type, "breaker forced open"),
        }
    }
}

/// Publishes a finding about `agent` (nothing is built if nobody listens).
pub(crate) fn publish_about(
    shared: &Shared,
    agent: &str,
    path: Option<ChildPath>,
    caused_by: Option<EventId>,
    task_type: &str,
    finding: Finding,
) {
    if !shared.has_subscribers() {
        return;
    }
    let meta = shared.meta(caused_by, path);
    shared.publish(SystemEvent::Semantic(SemanticEvent {
        id: meta.id,
        caused_by: meta.caused_by,
        elapsed: meta.elapsed,
        path: meta.path,
        agent: agent.to_owned(),
        task_type: task_type.to_owned(),
        finding,
    }));
}
