//! An agent as a supervisor child: the start function that claims the agent's name and spawns
//! its actor, and the watcher that tells its slot what the supervisor decided.

use std::sync::Arc;
use std::time::Duration;

use overseer_supervisor::{ChildSpec, StartContext, StartError};

use super::registry::Registry;
use crate::actor::{AgentActor, AgentArgs, AgentInPlace};
use crate::agent::Agent;
use crate::error::SystemError;
use crate::spec::AgentSpec;

/// Checks what the system needs of an agent's spec: a valid name, a deadline and a queue
/// capacity that are not zero.
pub(super) fn check<A: Agent>(spec: &AgentSpec<A>) -> Result<(), SystemError> {
    spec.name
        .validate()
        .map_err(|error| SystemError::InvalidAgentName {
            name: spec.name.to_string(),
            error,
        })?;
    if spec.config.ask_timeout == Some(Duration::ZERO) {
        return Err(SystemError::ZeroTimeout(spec.name.to_string()));
    }
    if spec.config.queue_capacity == 0 {
        return Err(SystemError::ZeroQueueCapacity(spec.name.to_string()));
    }
    if let Some(liveness) = &spec.config.liveness {
        let health = liveness
            .health
            .iter()
            .flat_map(|check| [check.interval(), check.check_timeout()]);
        if liveness.heartbeats.all().chain(health).any(|d| d.is_zero()) {
            return Err(SystemError::ZeroTimeout(spec.name.to_string()));
        }
    }
    Ok(())
}

/// The supervisor child running `spec`: a declared agent's (`declared`) or a template's.
pub(super) fn agent_child<A: Agent>(
    registry: &Arc<Registry>,
    spec: AgentSpec<A>,
    declared: bool,
) -> ChildSpec {
    // The tree keeps these closures: they refer to the system weakly.
    let claims = Arc::downgrade(registry);
    let factory = spec.factory;
    let config = spec.config;
    let classifier = spec.classifier;
    let name = spec.name.clone();
    let start = move |context: StartContext| {
        let factory = Arc::clone(&factory);
        let slot = match claims.upgrade() {
            // A declared agent's spec names one agent: not a template, nor renamed.
            Some(_) if declared && context.id() != &name => Err(StartError::InvalidSpec(format!(
                "agent '{name}' is declared with System::agent and cannot run as '{}'; \
                 use System::agent_template for a dynamic supervisor",
                context.id()
            ))),
            Some(registry) => registry.claim::<A>(
                context.id(),
                context.path(),
                declared,
                config.clone(),
                &classifier,
            ),
            None => Err(StartError::failed("the system is gone")),
        };
        async move {
            let slot = slot?;
            slot.place(context.path(), context.exit_cause());
            let args = AgentArgs {
                factory: Arc::clone(&factory),
                path: context.path().clone(),
                previous_exit: context.previous_exit().cloned(),
            };
            let reporter = context.failure_reporter();
            let in_place_slot = Arc::clone(&slot);
            let actor = context.spawn(AgentActor { slot, reporter }, args).await?;
            context.restart_in_place(AgentInPlace {
                actor: actor.clone(),
                slot: in_place_slot,
                factory: Arc::clone(&factory),
                path: context.path().clone(),
            });
            Ok(actor)
        }
    };
    let watcher = Arc::downgrade(registry);
    let mut child = ChildSpec::worker(spec.name, start)
        .restart(spec.restart)
        .unique_in_tree(declared)
        .watch(move |path, fate| {
            if let Some(registry) = watcher.upgrade() {
                registry.on_fate(path, fate);
            }
        });
    if let Some(shutdown) = spec.shutdown {
        child = child.shutdown(shutdown);
    }
    child
}
